import InfinityCrypto
import Testing

@Suite struct SecureBytesTests {
    @Test func equalityComparesContentsAndLength() {
        let a = SecureBytes(copying: [1, 2, 3])
        #expect(a == SecureBytes(copying: [1, 2, 3]))
        #expect(a != SecureBytes(copying: [1, 2, 4]))
        #expect(a != SecureBytes(copying: [1, 2]))
        #expect(a != SecureBytes(copying: [1, 2, 3, 0]))
        #expect(SecureBytes(copying: []) == SecureBytes(copying: []))
        #expect(SecureBytes(utf8: "pässword") == SecureBytes(copying: Array("pässword".utf8)))
    }

    @Test func copiesAnySequence() {
        let fromRange = SecureBytes(copying: (1...5).lazy.map { UInt8($0) })
        #expect(fromRange.exposed == [1, 2, 3, 4, 5])
        #expect(fromRange.count == 5)
        #expect(SecureBytes(copying: [UInt8]()).count == 0)
        #expect(SecureBytes(copying: [UInt8]()).withUnsafeBytes { $0.count } == 0)
    }

    @Test func neverPrintsItsBytes() {
        let key = SecureBytes(copying: [0xde, 0xad, 0xbe, 0xef])
        for text in [key.description, key.debugDescription, "\(key)", String(reflecting: key)] {
            #expect(!text.lowercased().contains("de"))
            #expect(!text.contains("222"))
            #expect(text.contains("4 bytes"))
        }
        var dumped = ""
        dump(key, to: &dumped)
        #expect(!dumped.contains("222"))
        #expect(!dumped.lowercased().contains("dead"))
    }

    @Test func randomBytesDiffer() {
        let a = SecureBytes.random(count: 32)
        let b = SecureBytes.random(count: 32)
        #expect(a.count == 32)
        #expect(a != b)
        #expect(SecureRandom.bytes(count: 16) != SecureRandom.bytes(count: 16))
        #expect(SecureRandom.bytes(count: 0).isEmpty)
    }

    /// Nonces come from a reserve of 4 KiB: across several reserves, from several threads at
    /// once, no byte of it is handed out twice (no half of one nonce is found in another, as it
    /// would be if two nonces overlapped), and none is all zeros (an unfilled reserve).
    @Test func nonceBytesAreNeverHandedOutTwice() async {
        let nonces = await withTaskGroup(of: [[UInt8]].self) { group in
            for _ in 0..<4 { group.addTask { (0..<1000).map { _ in AES256GCM.randomNonce() } } }
            return await group.reduce(into: []) { $0 += $1 }
        }
        let size = AES256GCM.nonceByteCount
        #expect(nonces.count == 4000)
        #expect(nonces.allSatisfy { $0.count == size && $0 != [UInt8](repeating: 0, count: size) })
        let halves = nonces.flatMap { [Array($0.prefix(size / 2)), Array($0.suffix(size / 2))] }
        #expect(Set(halves).count == halves.count)
        #expect(SecureRandom.nonceBytes(count: 0).isEmpty)
    }

    @Test func hexRoundTrip() {
        #expect(Hex.encode([0x00, 0x01, 0xab, 0xff]) == "0001abff")
        #expect(Hex.decode("0001ABff") == [0x00, 0x01, 0xab, 0xff])
        #expect(Hex.decode("") == [])
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.decode("0g") == nil)
        let random = SecureRandom.bytes(count: 100)
        #expect(Hex.decode(Hex.encode(random)) == random)
    }

    @Test func errorsDescribeThemselves() {
        let error = CryptoError(code: .invalidInput, message: "key must be 32 bytes", openSSLErrors: ["error:1"])
        #expect(error.description.contains("key must be 32 bytes"))
        #expect(error.description.contains("error:1"))
        #expect(CryptoError.Code.wrongPassphrase != CryptoError.Code.corruptKeyFile)
    }
}
