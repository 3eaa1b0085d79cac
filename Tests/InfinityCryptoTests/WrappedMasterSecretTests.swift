import Foundation
import InfinityCrypto
import Testing

@Suite struct WrappedMasterSecretTests {
    static let passphrase = SecureBytes(utf8: "correct horse battery staple")

    private func wrapped(_ secret: SecureBytes = AgentKeys.generateMasterSecret()) throws -> WrappedMasterSecret {
        try WrappedMasterSecret.wrap(secret, passphrase: Self.passphrase, parameters: .minimal)
    }

    /// The key file as a JSON object, to tamper with.
    private func json(_ file: WrappedMasterSecret) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(file.encoded())) as! [String: Any]
    }

    private func bytes(_ object: [String: Any]) throws -> [UInt8] {
        [UInt8](try JSONSerialization.data(withJSONObject: object))
    }

    @Test func wrapUnwrapRoundTrip() throws {
        let secret = AgentKeys.generateMasterSecret()
        let file = try wrapped(secret)
        #expect(file.version == 1)
        #expect(file.kdf == "scrypt")
        #expect(file.parameters == .minimal)
        #expect(file.salt.count >= 16)
        #expect(file.nonce.count == 12)
        #expect(file.sealedSecret.count == 48)
        #expect(try file.unwrap(passphrase: Self.passphrase) == secret)

        let decoded = try WrappedMasterSecret.decode(file.encoded())
        #expect(decoded == file)
        #expect(try decoded.unwrap(passphrase: Self.passphrase) == secret)
    }

    @Test func wrappingTwiceUsesFreshSaltAndNonce() throws {
        let secret = AgentKeys.generateMasterSecret()
        let a = try wrapped(secret)
        let b = try wrapped(secret)
        #expect(a.salt != b.salt)
        #expect(a.nonce != b.nonce)
        #expect(a.sealedSecret != b.sealedSecret)
    }

    @Test func keyFileIsReadableJSON() throws {
        let object = try json(wrapped())
        #expect(Set(object.keys) == ["version", "kdf", "n", "r", "p", "salt", "nonce", "sealedSecret"])
        #expect(object["version"] as? Int == 1)
        #expect(object["kdf"] as? String == "scrypt")
        #expect(object["n"] as? Int == 1024)
        #expect(Data(base64Encoded: object["salt"] as! String)?.count == WrappedMasterSecret.saltByteCount)
    }

    @Test func wrongPassphrase() throws {
        let error = thrownCryptoError { _ = try wrapped().unwrap(passphrase: SecureBytes(utf8: "wrong")) }
        #expect(error?.code == .wrongPassphrase)
        #expect(error?.message.contains("wrong passphrase") == true)
        #expect(error?.message.contains("correct horse") == false)
    }

    @Test func rewrapKeepsTheSecretAndDropsTheOldPassphrase() throws {
        let secret = AgentKeys.generateMasterSecret()
        let newPassphrase = SecureBytes(utf8: "new passphrase")
        let file = try wrapped(secret)
        let rewrapped = try file.rewrapped(
            oldPassphrase: Self.passphrase, newPassphrase: newPassphrase, parameters: .minimal)
        #expect(try rewrapped.unwrap(passphrase: newPassphrase) == secret)
        #expect(cryptoErrorCode { _ = try rewrapped.unwrap(passphrase: Self.passphrase) } == .wrongPassphrase)
        #expect(cryptoErrorCode {
            _ = try file.rewrapped(oldPassphrase: newPassphrase, newPassphrase: newPassphrase, parameters: .minimal)
        } == .wrongPassphrase)
        // The old file still opens with the old passphrase: several wrappings may coexist.
        #expect(try file.unwrap(passphrase: Self.passphrase) == secret)
    }

    @Test func tamperedSaltFails() throws {
        var object = try json(wrapped())
        var salt = Data(base64Encoded: object["salt"] as! String)!
        salt[0] ^= 1
        object["salt"] = salt.base64EncodedString()
        let file = try WrappedMasterSecret.decode(bytes(object))
        #expect(cryptoErrorCode { _ = try file.unwrap(passphrase: Self.passphrase) } == .wrongPassphrase)
    }

    /// Another valid n derives another key; the AAD binds n as well.
    @Test func tamperedCostParametersFail() throws {
        for (field, value) in [("n", 2048), ("r", 4), ("p", 2)] {
            var object = try json(wrapped())
            object[field] = value
            let file = try WrappedMasterSecret.decode(bytes(object))
            #expect(cryptoErrorCode { _ = try file.unwrap(passphrase: Self.passphrase) } == .wrongPassphrase)
        }
    }

    @Test func tamperedNonceAndSealedSecretFail() throws {
        for field in ["nonce", "sealedSecret"] {
            var object = try json(wrapped())
            var value = Data(base64Encoded: object[field] as! String)!
            value[value.count - 1] ^= 0x40
            object[field] = value.base64EncodedString()
            let file = try WrappedMasterSecret.decode(bytes(object))
            #expect(cryptoErrorCode { _ = try file.unwrap(passphrase: Self.passphrase) } == .wrongPassphrase)
        }
    }

    @Test(arguments: [0, 1, 1000, 1 << 40]) func invalidNIsInvalidInput(_ n: Int) throws {
        var object = try json(wrapped())
        object["n"] = n
        let error = thrownCryptoError { _ = try WrappedMasterSecret.decode(bytes(object)) }
        #expect(error?.code == .invalidInput)
        #expect(error?.message.contains("key file has unusable scrypt parameters: scrypt parameter") == true)
    }

    @Test func unknownVersionNamesBothVersions() throws {
        var object = try json(wrapped())
        object["version"] = 2
        object["kdf"] = "argon2id"
        let error = thrownCryptoError { _ = try WrappedMasterSecret.decode(bytes(object)) }
        #expect(error?.code == .unsupportedFormat)
        #expect(error?.message.contains("version 2") == true)
        #expect(error?.message.contains("version 1") == true)
    }

    @Test func unknownKDFIsUnsupported() throws {
        var object = try json(wrapped())
        object["kdf"] = "argon2id"
        let error = thrownCryptoError { _ = try WrappedMasterSecret.decode(bytes(object)) }
        #expect(error?.code == .unsupportedFormat)
        #expect(error?.message.contains("argon2id") == true)
    }

    @Test func garbageIsCorrupt() throws {
        for text in ["", "not json", "[]", "{}", "{\"version\": \"1\"}", "{\"version\": 1}"] {
            let error = thrownCryptoError { _ = try WrappedMasterSecret.decode(Array(text.utf8)) }
            #expect(error?.code == .corruptKeyFile, "\(text)")
        }
        let truncated = try Array(wrapped().encoded().dropLast(20))
        #expect(cryptoErrorCode { _ = try WrappedMasterSecret.decode(truncated) } == .corruptKeyFile)
    }

    @Test func badFieldLengthsAreCorrupt() throws {
        let cases: [(String, Int)] = [("salt", 8), ("salt", 2000), ("nonce", 16), ("sealedSecret", 47), ("sealedSecret", 64)]
        for (field, length) in cases {
            var object = try json(wrapped())
            object[field] = Data(repeating: 1, count: length).base64EncodedString()
            let error = thrownCryptoError { _ = try WrappedMasterSecret.decode(bytes(object)) }
            #expect(error?.code == .corruptKeyFile, "\(field) \(length)")
            #expect(error?.message.contains(field) == true)
        }
        var object = try json(wrapped())
        object["nonce"] = "!!not base64!!"
        let error = thrownCryptoError { _ = try WrappedMasterSecret.decode(bytes(object)) }
        #expect(error?.code == .corruptKeyFile)
        #expect(error?.message.contains("nonce") == true)
    }

    @Test func missingFieldIsNamed() throws {
        var object = try json(wrapped())
        object["salt"] = nil
        let error = thrownCryptoError { _ = try WrappedMasterSecret.decode(bytes(object)) }
        #expect(error?.code == .corruptKeyFile)
        #expect(error?.message.contains("salt") == true)
    }

    @Test func wrapRejectsBadInput() {
        #expect(cryptoErrorCode {
            _ = try WrappedMasterSecret.wrap(SecureBytes(copying: [1, 2, 3]), passphrase: Self.passphrase, parameters: .minimal)
        } == .invalidInput)
        #expect(cryptoErrorCode {
            _ = try WrappedMasterSecret.wrap(
                AgentKeys.generateMasterSecret(), passphrase: Self.passphrase, parameters: .init(n: 3, r: 1, p: 1))
        } == .invalidInput)
    }
}
