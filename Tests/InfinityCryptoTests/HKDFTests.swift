import InfinityCrypto
import Testing

/// RFC 5869 appendix A, the SHA-256 cases.
@Suite struct HKDFTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let ikm: [UInt8]
        let salt: [UInt8]
        let info: [UInt8]
        let length: Int
        let prk: [UInt8]
        let okm: [UInt8]
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "A.1 basic", ikm: [UInt8](repeating: 0x0b, count: 22), salt: hex("000102030405060708090a0b0c"),
            info: hex("f0f1f2f3f4f5f6f7f8f9"), length: 42,
            prk: hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"),
            okm: hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")),
        Case(
            name: "A.2 longer inputs", ikm: Array(0x00...0x4f), salt: Array(0x60...0xaf), info: Array(0xb0...0xff),
            length: 82,
            prk: hex("06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244"),
            okm: hex("""
                b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c
                59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71
                cc30c58179ec3e87c14c01d5c1f3434f1d87
                """)),
        Case(
            name: "A.3 empty salt and info", ikm: [UInt8](repeating: 0x0b, count: 22), salt: [], info: [], length: 42,
            prk: hex("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"),
            okm: hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")),
    ]

    @Test(arguments: cases) func rfc5869(_ vector: Case) throws {
        let ikm = SecureBytes(copying: vector.ikm)
        let okm = try HKDF.deriveKey(
            inputKeyMaterial: ikm, salt: vector.salt, info: vector.info, outputByteCount: vector.length)
        #expect(okm.exposed == vector.okm)

        let prk = try HKDF.extract(inputKeyMaterial: ikm, salt: vector.salt)
        #expect(prk.exposed == vector.prk)
        let expanded = try HKDF.expand(pseudoRandomKey: prk, info: vector.info, outputByteCount: vector.length)
        #expect(expanded.exposed == vector.okm)
    }

    @Test func outputLengthOutOfRangeIsInvalidInput() {
        let ikm = SecureBytes(copying: [UInt8](repeating: 1, count: 32))
        for count in [0, -1, 255 * 32 + 1] {
            #expect(cryptoErrorCode {
                _ = try HKDF.deriveKey(inputKeyMaterial: ikm, salt: [], info: [], outputByteCount: count)
            } == .invalidInput)
        }
        #expect((try? HKDF.deriveKey(inputKeyMaterial: ikm, salt: [], info: [], outputByteCount: 255 * 32))?.count == 255 * 32)
    }

    @Test func shortPseudoRandomKeyIsInvalidInput() {
        #expect(cryptoErrorCode {
            _ = try HKDF.expand(pseudoRandomKey: SecureBytes(copying: [1, 2, 3]), info: [], outputByteCount: 32)
        } == .invalidInput)
    }
}
