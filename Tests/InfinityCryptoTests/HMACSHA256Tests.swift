import InfinityCrypto
import Testing

/// RFC 4231 section 4, HMAC-SHA-256 results.
@Suite struct HMACSHA256Tests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let key: [UInt8]
        let data: [UInt8]
        let mac: [UInt8]
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "test case 1", key: [UInt8](repeating: 0x0b, count: 20), data: bytes("Hi There"),
            mac: hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")),
        Case(
            name: "test case 2", key: bytes("Jefe"), data: bytes("what do ya want for nothing?"),
            mac: hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")),
        Case(
            name: "test case 3", key: [UInt8](repeating: 0xaa, count: 20), data: [UInt8](repeating: 0xdd, count: 50),
            mac: hex("773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe")),
        Case(
            name: "test case 4", key: hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
            data: [UInt8](repeating: 0xcd, count: 50),
            mac: hex("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b")),
        Case(
            name: "test case 6", key: [UInt8](repeating: 0xaa, count: 131),
            data: bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
            mac: hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")),
        Case(
            name: "test case 7", key: [UInt8](repeating: 0xaa, count: 131),
            data: bytes(
                "This is a test using a larger than block-size key and a larger than block-size data. "
                    + "The key needs to be hashed before being used by the HMAC algorithm."),
            mac: hex("9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2")),
    ]

    @Test(arguments: cases) func rfc4231(_ vector: Case) {
        let key = SecureBytes(copying: vector.key)
        #expect(HMACSHA256.authenticate(vector.data, key: key) == vector.mac)
        vector.data.withUnsafeBytes { #expect(HMACSHA256.authenticate($0, key: key) == vector.mac) }
        let prepared = HMACSHA256.PreparedKey(key)
        #expect(prepared.authenticate(vector.data) == vector.mac)
        #expect(prepared.authenticate(vector.data) == vector.mac, "a prepared key gives the same tag every time")
    }

    /// A prepared key tags from many threads at once, each tag as the one-shot call gives it.
    @Test func preparedKeyFromManyTasks() async {
        let key = SecureBytes(copying: [UInt8](repeating: 0x0b, count: 20))
        let prepared = HMACSHA256.PreparedKey(key)
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var mismatches = 0
                    for round in 0..<200 {
                        let message = [UInt8](repeating: UInt8(truncatingIfNeeded: task * 31 + round), count: round * 7)
                        if prepared.authenticate(message) != HMACSHA256.authenticate(message, key: key) { mismatches += 1 }
                    }
                    return mismatches
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    /// Case 5 specifies only the first 128 bits of the tag.
    @Test func rfc4231TruncatedCase5() {
        let mac = HMACSHA256.authenticate(
            bytes("Test With Truncation"), key: SecureBytes(copying: [UInt8](repeating: 0x0c, count: 20)))
        #expect(Array(mac.prefix(16)) == hex("a3b6167473100ee06e0c796c2955552b"))
    }

    /// An empty key is legal HMAC; OpenSSL needs a non-NULL pointer for it.
    @Test func emptyKeyAndMessage() {
        #expect(
            HMACSHA256.authenticate([], key: SecureBytes(copying: []))
                == hex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"))
    }
}
