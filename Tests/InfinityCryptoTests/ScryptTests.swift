import InfinityCrypto
import Testing

/// RFC 7914 section 12.
@Suite struct ScryptTests {
    struct Case: Sendable, CustomStringConvertible {
        let passphrase: String
        let salt: String
        let parameters: Scrypt.Parameters
        let key: [UInt8]
        var description: String { "N=\(parameters.n) r=\(parameters.r) p=\(parameters.p)" }
    }

    static let cases: [Case] = [
        Case(
            passphrase: "", salt: "", parameters: .init(n: 16, r: 1, p: 1),
            key: hex("""
                77 d6 57 62 38 65 7b 20 3b 19 ca 42 c1 8a 04 97 f1 6b 48 44 e3 07 4a e8 df df fa 3f ed e2 14 42
                fc d0 06 9d ed 09 48 f8 32 6a 75 3a 0f c8 1f 17 e8 d3 e0 fb 2e 0d 36 28 cf 35 e2 0c 38 d1 89 06
                """)),
        Case(
            passphrase: "password", salt: "NaCl", parameters: .init(n: 1024, r: 8, p: 16),
            key: hex("""
                fd ba be 1c 9d 34 72 00 78 56 e7 19 0d 01 e9 fe 7c 6a d7 cb c8 23 78 30 e7 73 76 63 4b 37 31 62
                2e af 30 d9 2e 22 a3 88 6f f1 09 27 9d 98 30 da c7 27 af b9 4a 83 ee 6d 83 60 cb df a2 cc 06 40
                """)),
        Case(
            passphrase: "pleaseletmein", salt: "SodiumChloride", parameters: .init(n: 16384, r: 8, p: 1),
            key: hex("""
                70 23 bd cb 3a fd 73 48 46 1c 06 cd 81 fd 38 eb fd a8 fb ba 90 4f 8e 3e a9 b5 43 f6 54 5d a1 f2
                d5 43 29 55 61 3f 0f cf 62 d4 97 05 24 2a 9a f9 e6 1e 85 dc 0d 65 1e 40 df cf 01 7b 45 57 58 87
                """)),
        // The fourth vector (N = 2^20, r = 8: 1 GiB) takes about 3 s here, quick enough to keep.
        Case(
            passphrase: "pleaseletmein", salt: "SodiumChloride", parameters: .init(n: 1_048_576, r: 8, p: 1),
            key: hex("""
                21 01 cb 9b 6a 51 1a ae ad db be 09 cf 70 f8 81 ec 56 8d 57 4a 2f fd 4d ab e5 ee 98 20 ad aa 47
                8e 56 fd 8f 4b a5 d0 9f fa 1c 6d 92 7c 40 f4 c3 37 30 40 49 e8 a9 52 fb cb f4 5c 6f a7 7a 41 a4
                """)),
    ]

    @Test(arguments: cases) func rfc7914(_ vector: Case) throws {
        let key = try Scrypt.deriveKey(
            passphrase: SecureBytes(utf8: vector.passphrase), salt: bytes(vector.salt),
            parameters: vector.parameters, outputByteCount: 64)
        #expect(key.exposed == vector.key)
    }

    @Test(arguments: [
        Scrypt.Parameters(n: 0, r: 8, p: 1),
        Scrypt.Parameters(n: 1, r: 8, p: 1),
        Scrypt.Parameters(n: 1000, r: 8, p: 1),
        Scrypt.Parameters(n: 1024, r: 0, p: 1),
        Scrypt.Parameters(n: 1024, r: 8, p: 0),
        Scrypt.Parameters(n: 1 << 22, r: 8, p: 1),  // 4 GiB
        Scrypt.Parameters(n: 1 << 62, r: 1 << 31, p: 1 << 31),  // 128·n·r·p overflows 64 bits
        Scrypt.Parameters(n: 1 << 16, r: 1, p: 1),  // RFC 7914: N < 2^(16·r)
        Scrypt.Parameters(n: 2, r: 1 << 23, p: 1),  // passes 128·n·r·p = 2 GiB, but allocates 5 GiB
    ])
    func absurdParametersAreInvalidInput(_ parameters: Scrypt.Parameters) {
        let error = thrownCryptoError {
            _ = try Scrypt.deriveKey(
                passphrase: SecureBytes(utf8: "x"), salt: [1], parameters: parameters, outputByteCount: 32)
        }
        #expect(error?.code == .invalidInput)
        #expect(error?.message.contains("scrypt parameter") == true)
    }

    @Test func defaultsAreValid() throws {
        try Scrypt.Parameters.interactive.validate()
        try Scrypt.Parameters.minimal.validate()
        // A guesser's memory × time, N²·p, at least that of N = 2^15, p = 4.
        let (n, p) = (Scrypt.Parameters.interactive.n, UInt64(Scrypt.Parameters.interactive.p))
        #expect(n * n * p >= 1 << 32)
        #expect(128 * Scrypt.Parameters.interactive.n * UInt64(Scrypt.Parameters.interactive.r) <= 64 << 20)
    }

    @Test func outputLengthIsChecked() {
        #expect(cryptoErrorCode {
            _ = try Scrypt.deriveKey(
                passphrase: SecureBytes(utf8: "x"), salt: [1], parameters: .minimal, outputByteCount: 0)
        } == .invalidInput)
    }
}
