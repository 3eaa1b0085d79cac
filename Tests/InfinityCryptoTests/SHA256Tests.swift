import InfinityCrypto
import Testing

@Suite struct SHA256Tests {
    // FIPS 180-2 appendix B and the NIST example values.
    @Test func abc() {
        #expect(SHA256.hash(bytes("abc")) == hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
    }

    @Test func empty() {
        #expect(SHA256.hash([]) == hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
    }

    @Test func fourHundredFortyEightBitMessage() {
        let message = bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
        #expect(SHA256.hash(message) == hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"))
    }

    @Test func oneMillionA() {
        let expected = hex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hash(message) == expected)
        message.withUnsafeBytes { #expect(SHA256.hash($0) == expected) }

        // The same digest when the data arrives in uneven pieces.
        var hasher = SHA256Hasher()
        var offset = 0
        var pieceCount = 1
        while offset < message.count {
            let end = min(offset + pieceCount, message.count)
            hasher.update(Array(message[offset..<end]))
            offset = end
            pieceCount = pieceCount * 3 + 1
        }
        #expect(hasher.finalize() == expected)
    }

    @Test func hasherOverNothingIsTheEmptyDigest() {
        let hasher = SHA256Hasher()
        #expect(hasher.finalize() == SHA256.hash([]))
    }
}
