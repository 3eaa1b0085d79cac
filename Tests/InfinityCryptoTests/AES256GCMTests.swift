import InfinityCrypto
import Testing

/// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13–16 (256-bit keys),
/// the vectors NIST published with the GCM specification.
@Suite struct AES256GCMTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let key: [UInt8]
        let nonce: [UInt8]
        let plaintext: [UInt8]
        let aad: [UInt8]
        let ciphertext: [UInt8]
        let tag: [UInt8]
        var description: String { name }
    }

    static let zeroKey = [UInt8](repeating: 0, count: 32)
    static let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
    static let nonce = hex("cafebabefacedbaddecaf888")
    static let plaintext64 = hex("""
        d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
        1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255
        """)
    static let ciphertext64 = hex("""
        522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
        8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad
        """)

    static let cases: [Case] = [
        Case(
            name: "test case 13", key: zeroKey, nonce: [UInt8](repeating: 0, count: 12), plaintext: [], aad: [],
            ciphertext: [], tag: hex("530f8afbc74536b9a963b4f1c4cb738b")),
        Case(
            name: "test case 14", key: zeroKey, nonce: [UInt8](repeating: 0, count: 12),
            plaintext: [UInt8](repeating: 0, count: 16), aad: [],
            ciphertext: hex("cea7403d4d606b6e074ec5d3baf39d18"), tag: hex("d0d1c8a799996bf0265b98b5d48ab919")),
        Case(
            name: "test case 15", key: key, nonce: nonce, plaintext: plaintext64, aad: [],
            ciphertext: ciphertext64, tag: hex("b094dac5d93471bdec1a502270e3cc6c")),
        Case(
            name: "test case 16 (with AAD)", key: key, nonce: nonce, plaintext: Array(plaintext64.prefix(60)),
            aad: hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
            ciphertext: Array(ciphertext64.prefix(60)), tag: hex("76fc6ece0f4e1768cddf8853bb2d551b")),
    ]

    @Test(arguments: cases) func published(_ vector: Case) throws {
        let key = SecureBytes(copying: vector.key)
        let sealed = try AES256GCM.seal(vector.plaintext, key: key, nonce: vector.nonce, authenticating: vector.aad)
        #expect(sealed == vector.ciphertext + vector.tag)
        let opened = try AES256GCM.open(sealed, key: key, nonce: vector.nonce, authenticating: vector.aad)
        #expect(opened == vector.plaintext)
    }

    @Test func inPlaceSealAndOpen() throws {
        let vector = Self.cases[3]
        var buffer = vector.plaintext + [UInt8](repeating: 0, count: 16)
        try buffer.withUnsafeMutableBytes { buffer in
            try vector.key.withUnsafeBytes { key in
                try vector.nonce.withUnsafeBytes { nonce in
                    try vector.aad.withUnsafeBytes { aad in
                        try AES256GCM.seal(
                            UnsafeRawBufferPointer(rebasing: buffer[..<60]), key: key, nonce: nonce,
                            authenticating: aad, into: buffer)
                    }
                }
            }
        }
        #expect(buffer == vector.ciphertext + vector.tag)
        try buffer.withUnsafeMutableBytes { buffer in
            try vector.key.withUnsafeBytes { key in
                try vector.nonce.withUnsafeBytes { nonce in
                    try vector.aad.withUnsafeBytes { aad in
                        try AES256GCM.open(
                            UnsafeRawBufferPointer(buffer), key: key, nonce: nonce, authenticating: aad,
                            into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<60]))
                    }
                }
            }
        }
        #expect(Array(buffer.prefix(60)) == vector.plaintext)
    }

    @Test func largeBufferRoundTrip() throws {
        let key = SecureBytes.random(count: 32)
        let nonce = SecureRandom.bytes(count: 12)
        let plaintext = SecureRandom.bytes(count: (1 << 20) + 3)
        let sealed = try AES256GCM.seal(plaintext, key: key, nonce: nonce, authenticating: [1, 2, 3])
        #expect(sealed.count == plaintext.count + 16)
        #expect(try AES256GCM.open(sealed, key: key, nonce: nonce, authenticating: [1, 2, 3]) == plaintext)
    }

    // MARK: - Tampering

    static let sealedCase16: [UInt8] = cases[3].ciphertext + cases[3].tag

    private func openCase16(sealed: [UInt8] = sealedCase16, aad: [UInt8] = cases[3].aad, nonce: [UInt8] = nonce, key: [UInt8] = key) -> CryptoError.Code? {
        cryptoErrorCode {
            _ = try AES256GCM.open(sealed, key: SecureBytes(copying: key), nonce: nonce, authenticating: aad)
        }
    }

    @Test func tamperedCiphertextFails() {
        for index in [0, 30, 59] {
            var sealed = Self.sealedCase16
            sealed[index] ^= 0x01
            #expect(openCase16(sealed: sealed) == .authenticationFailed)
        }
    }

    @Test func tamperedTagFails() {
        for index in 60..<76 {
            var sealed = Self.sealedCase16
            sealed[index] ^= 0x80
            #expect(openCase16(sealed: sealed) == .authenticationFailed)
        }
    }

    @Test func tamperedAADFails() {
        var aad = Self.cases[3].aad
        aad[0] ^= 1
        #expect(openCase16(aad: aad) == .authenticationFailed)
        #expect(openCase16(aad: []) == .authenticationFailed)
        #expect(openCase16(aad: Self.cases[3].aad + [0]) == .authenticationFailed)
    }

    @Test func wrongNonceOrKeyFails() {
        var nonce = Self.nonce
        nonce[11] ^= 1
        #expect(openCase16(nonce: nonce) == .authenticationFailed)
        var key = Self.key
        key[0] ^= 1
        #expect(openCase16(key: key) == .authenticationFailed)
    }

    @Test func truncatedSealedDataFails() {
        #expect(openCase16(sealed: Array(Self.sealedCase16.dropLast())) == .authenticationFailed)
        #expect(openCase16(sealed: Array(Self.sealedCase16.prefix(15))) == .invalidInput)
    }

    @Test func failedOpenZeroesTheOutput() throws {
        var sealed = Self.sealedCase16
        sealed[0] ^= 1
        var output = [UInt8](repeating: 0xee, count: 60)
        let code = cryptoErrorCode {
            try output.withUnsafeMutableBytes { output in
                try sealed.withUnsafeBytes { sealed in
                    try Self.key.withUnsafeBytes { key in
                        try Self.nonce.withUnsafeBytes { nonce in
                            try Self.cases[3].aad.withUnsafeBytes { aad in
                                try AES256GCM.open(sealed, key: key, nonce: nonce, authenticating: aad, into: output)
                            }
                        }
                    }
                }
            }
        }
        #expect(code == .authenticationFailed)
        #expect(output == [UInt8](repeating: 0, count: 60))
    }

    // MARK: - Bad arguments never crash

    @Test(arguments: [0, 16, 31, 33, 64]) func wrongKeyLengthIsInvalidInput(_ length: Int) {
        let key = SecureBytes(copying: [UInt8](repeating: 7, count: length))
        #expect(cryptoErrorCode { _ = try AES256GCM.seal([1, 2, 3], key: key, nonce: Self.nonce) } == .invalidInput)
        #expect(cryptoErrorCode { _ = try AES256GCM.open(Self.sealedCase16, key: key, nonce: Self.nonce) } == .invalidInput)
    }

    @Test(arguments: [0, 8, 11, 13, 16]) func wrongNonceLengthIsInvalidInput(_ length: Int) {
        let nonce = [UInt8](repeating: 7, count: length)
        let key = SecureBytes(copying: Self.key)
        #expect(cryptoErrorCode { _ = try AES256GCM.seal([1, 2, 3], key: key, nonce: nonce) } == .invalidInput)
        #expect(cryptoErrorCode { _ = try AES256GCM.open(Self.sealedCase16, key: key, nonce: nonce) } == .invalidInput)
    }

    @Test func wrongOutputSizeIsInvalidInput() {
        var output = [UInt8](repeating: 0, count: 10)
        let code = cryptoErrorCode {
            try output.withUnsafeMutableBytes { output in
                try Self.key.withUnsafeBytes { key in
                    try Self.nonce.withUnsafeBytes { nonce in
                        try AES256GCM.seal(UnsafeRawBufferPointer(output), key: key, nonce: nonce,
                                           authenticating: UnsafeRawBufferPointer(start: nil, count: 0), into: output)
                    }
                }
            }
        }
        #expect(code == .invalidInput)
    }
}
