#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An agent's master secret sealed under a passphrase: the key file (JSON, format version 1).
///
/// The passphrase goes through scrypt with a fresh random salt; the result is an AES-256-GCM
/// key that seals the 32-byte master secret under a fresh random nonce. The AEAD's associated
/// data binds the format version, the KDF name, n, r, p and the salt, so changing any of them
/// makes the file fail to open instead of silently weakening it. Several key files may wrap
/// the same secret (one per passphrase); changing a passphrase re-encrypts nothing else.
///
/// ```json
/// {"kdf": "scrypt", "n": 131072, "nonce": "<base64, 12 bytes>", "p": 1, "r": 8,
///  "salt": "<base64, 32 bytes>", "sealedSecret": "<base64, 32 + 16 bytes>", "version": 1}
/// ```
///
/// A decoded value is always well formed: decoding checks the version, the KDF, the scrypt
/// parameters and every length.
public struct WrappedMasterSecret: Codable, Hashable, Sendable {
    public static let formatVersion = 1
    public static let kdfName = "scrypt"
    /// Salt length written by `wrap`; files with 16...1024 bytes are read.
    public static let saltByteCount = 32
    static let acceptedSaltByteCounts = 16...1024

    public let version: Int
    public let kdf: String
    public let parameters: Scrypt.Parameters
    public let salt: [UInt8]
    public let nonce: [UInt8]
    /// The encrypted master secret followed by the GCM tag.
    public let sealedSecret: [UInt8]

    private init(parameters: Scrypt.Parameters, salt: [UInt8], nonce: [UInt8], sealedSecret: [UInt8]) {
        self.version = Self.formatVersion
        self.kdf = Self.kdfName
        self.parameters = parameters
        self.salt = salt
        self.nonce = nonce
        self.sealedSecret = sealedSecret
    }

    /// Seals `masterSecret` under `passphrase` with a new salt and nonce.
    public static func wrap(
        _ masterSecret: SecureBytes, passphrase: SecureBytes, parameters: Scrypt.Parameters = .interactive
    ) throws -> WrappedMasterSecret {
        guard masterSecret.count == AgentKeys.masterSecretByteCount else {
            throw CryptoError.invalidInput(
                "master secret must be \(AgentKeys.masterSecretByteCount) bytes, got \(masterSecret.count)")
        }
        let salt = SecureRandom.bytes(count: saltByteCount)
        let nonce = AES256GCM.randomNonce()
        let key = try Scrypt.deriveKey(
            passphrase: passphrase, salt: salt, parameters: parameters, outputByteCount: AES256GCM.keyByteCount)
        let associatedData = Self.associatedData(version: formatVersion, kdf: kdfName, parameters: parameters, salt: salt)
        var sealed = [UInt8](repeating: 0, count: masterSecret.count + AES256GCM.tagByteCount)
        try sealed.withUnsafeMutableBytes { output in
            try masterSecret.withUnsafeBytes { secret in
                try key.withUnsafeBytes { key in
                    try nonce.withUnsafeBytes { nonce in
                        try associatedData.withUnsafeBytes { associatedData in
                            try AES256GCM.seal(secret, key: key, nonce: nonce, authenticating: associatedData, into: output)
                        }
                    }
                }
            }
        }
        return WrappedMasterSecret(parameters: parameters, salt: salt, nonce: nonce, sealedSecret: sealed)
    }

    /// The master secret. A wrong passphrase, or a file whose fields were altered, throws
    /// `.wrongPassphrase`: the two cannot be told apart, by design of the AEAD.
    public func unwrap(passphrase: SecureBytes) throws -> SecureBytes {
        let key = try Scrypt.deriveKey(
            passphrase: passphrase, salt: salt, parameters: parameters, outputByteCount: AES256GCM.keyByteCount)
        let associatedData = Self.associatedData(version: version, kdf: kdf, parameters: parameters, salt: salt)
        do {
            return try SecureBytes.filling(count: sealedSecret.count - AES256GCM.tagByteCount) { output in
                try sealedSecret.withUnsafeBytes { sealed in
                    try key.withUnsafeBytes { key in
                        try nonce.withUnsafeBytes { nonce in
                            try associatedData.withUnsafeBytes { associatedData in
                                try AES256GCM.open(sealed, key: key, nonce: nonce, authenticating: associatedData, into: output)
                            }
                        }
                    }
                }
            }
        } catch let error as CryptoError where error.code == .authenticationFailed {
            throw CryptoError(
                code: .wrongPassphrase,
                message: "wrong passphrase (the key file could not be unlocked; "
                    + "if the passphrase is right, the key file has been altered)",
                cause: error)
        }
    }

    /// The same master secret under a new passphrase (and new salt, nonce and parameters).
    public func rewrapped(
        oldPassphrase: SecureBytes, newPassphrase: SecureBytes, parameters: Scrypt.Parameters = .interactive
    ) throws -> WrappedMasterSecret {
        try Self.wrap(unwrap(passphrase: oldPassphrase), passphrase: newPassphrase, parameters: parameters)
    }

    /// The key file's bytes: pretty-printed JSON with sorted keys and a final newline.
    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(self)) + [UInt8(ascii: "\n")]
    }

    /// Reads a key file. Unknown version or KDF: `.unsupportedFormat`; not JSON, missing fields,
    /// bad base64 or wrong lengths: `.corruptKeyFile`; out-of-range scrypt parameters:
    /// `.invalidInput`.
    public static func decode(_ bytes: [UInt8]) throws -> WrappedMasterSecret {
        do {
            return try JSONDecoder().decode(WrappedMasterSecret.self, from: Data(bytes))
        } catch let error as CryptoError {
            throw error
        } catch let error as DecodingError {
            throw CryptoError(
                code: .corruptKeyFile, message: "corrupt key file: \(Self.describe(error))", cause: error)
        } catch {
            throw CryptoError(code: .corruptKeyFile, message: "corrupt key file: \(error)", cause: error)
        }
    }

    private enum CodingKeys: String, CodingKey {
        case version, kdf, n, r, p, salt, nonce, sealedSecret
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // The version first: a newer file gets a clear "unsupported version", whatever else changed.
        let version = try container.decode(Int.self, forKey: .version)
        guard version == Self.formatVersion else {
            throw CryptoError(
                code: .unsupportedFormat,
                message: "key file format version \(version) is not supported; "
                    + "this version of InfinityDB reads key file version \(Self.formatVersion)")
        }
        let kdf = try container.decode(String.self, forKey: .kdf)
        guard kdf == Self.kdfName else {
            throw CryptoError(
                code: .unsupportedFormat,
                message: "key file uses key derivation \"\(kdf)\"; only \"\(Self.kdfName)\" is supported")
        }
        let parameters = Scrypt.Parameters(
            n: try container.decode(UInt64.self, forKey: .n),
            r: try container.decode(UInt32.self, forKey: .r),
            p: try container.decode(UInt32.self, forKey: .p))
        do {
            try parameters.validate()
        } catch let error as CryptoError {
            throw CryptoError(code: error.code, message: "key file has unusable scrypt parameters: \(error.message)")
        }
        let salt = try container.decodeBase64(forKey: .salt)
        let nonce = try container.decodeBase64(forKey: .nonce)
        let sealedSecret = try container.decodeBase64(forKey: .sealedSecret)
        guard Self.acceptedSaltByteCounts.contains(salt.count) else {
            throw Self.corrupt("salt must be \(Self.acceptedSaltByteCounts) bytes, got \(salt.count)")
        }
        guard nonce.count == AES256GCM.nonceByteCount else {
            throw Self.corrupt("nonce must be \(AES256GCM.nonceByteCount) bytes, got \(nonce.count)")
        }
        let sealedCount = AgentKeys.masterSecretByteCount + AES256GCM.tagByteCount
        guard sealedSecret.count == sealedCount else {
            throw Self.corrupt("sealedSecret must be \(sealedCount) bytes, got \(sealedSecret.count)")
        }
        self.init(parameters: parameters, salt: salt, nonce: nonce, sealedSecret: sealedSecret)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(version, forKey: .version)
        try container.encode(kdf, forKey: .kdf)
        try container.encode(parameters.n, forKey: .n)
        try container.encode(parameters.r, forKey: .r)
        try container.encode(parameters.p, forKey: .p)
        try container.encodeBase64(salt, forKey: .salt)
        try container.encodeBase64(nonce, forKey: .nonce)
        try container.encodeBase64(sealedSecret, forKey: .sealedSecret)
    }

    /// The AEAD's associated data: a domain label, then every field that shapes the key, each
    /// fixed-width big-endian or length-prefixed so no two field sets encode alike:
    /// `"infinitydb-wrapped-master-secret" || u32 version || u32 len(kdf) || kdf || u64 n ||
    /// u32 r || u32 p || u32 len(salt) || salt`.
    static func associatedData(version: Int, kdf: String, parameters: Scrypt.Parameters, salt: [UInt8]) -> [UInt8] {
        var data = Array("infinitydb-wrapped-master-secret".utf8)
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.bigEndian) { data.append(contentsOf: $0) }
        }
        append(UInt32(truncatingIfNeeded: version))
        append(UInt32(kdf.utf8.count))
        data.append(contentsOf: kdf.utf8)
        append(parameters.n)
        append(parameters.r)
        append(parameters.p)
        append(UInt32(salt.count))
        data.append(contentsOf: salt)
        return data
    }

    private static func corrupt(_ detail: String) -> CryptoError {
        CryptoError(code: .corruptKeyFile, message: "corrupt key file: \(detail)")
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, _):
            return "missing field \"\(key.stringValue)\""
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "field \"\(path(context))\" has the wrong type (\(context.debugDescription))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "not valid JSON (\(context.debugDescription))"
                : "field \"\(path(context))\": \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
