import CInfinityOpenSSL

/// Ed25519 signatures (RFC 8032, pure mode) through OpenSSL's EVP_PKEY "ED25519" and
/// EVP_DigestSign / EVP_DigestVerify with no separate digest.
public enum Ed25519 {
    public static let seedByteCount = 32
    public static let publicKeyByteCount = 32
    public static let signatureByteCount = 64

    /// A signing key; its 32-byte seed is held in ``SecureBytes`` and zeroed on drop.
    public struct PrivateKey: Sendable {
        public let seed: SecureBytes
        public let publicKey: PublicKey

        /// A new random key.
        public init() {
            do {
                try self.init(seed: SecureBytes.random(count: seedByteCount))
            } catch {
                // Every 32-byte seed is valid: only a broken libcrypto fails here.
                fatalError("Ed25519 key generation failed: \(error)")
            }
        }

        /// The key for a 32-byte seed (RFC 8032's "private key").
        public init(seed: SecureBytes) throws {
            guard seed.count == seedByteCount else {
                throw CryptoError.invalidInput("Ed25519 seed must be \(seedByteCount) bytes, got \(seed.count)")
            }
            let key = try PKey(privateKey: seed, type: "ED25519")
            self.seed = seed
            self.publicKey = try PublicKey(
                rawRepresentation: key.rawPublicKey(byteCount: publicKeyByteCount, type: "ED25519"))
        }

        /// The 64-byte signature of `message` (deterministic, as RFC 8032 specifies).
        public func signature(for message: [UInt8]) throws -> [UInt8] {
            let key = try PKey(privateKey: seed, type: "ED25519")
            let context = DigestContext()
            try LibCrypto.check(
                EVP_DigestSignInit_ex(context.pointer, nil, nil, nil, nil, key.pointer, nil),
                "Ed25519 signing setup failed")
            return try [UInt8](unsafeUninitializedCapacity: signatureByteCount) { signature, initialized in
                var length = signatureByteCount
                try message.withUnsafeBytes { message in
                    try LibCrypto.check(
                        EVP_DigestSign(context.pointer, signature.baseAddress, &length, LibCrypto.bytes(message), message.count),
                        "Ed25519 signing failed")
                }
                initialized = length
            }
        }
    }

    /// A verification key (32 bytes). Codable as a base64 string.
    public struct PublicKey: Hashable, Sendable, Codable {
        public let rawRepresentation: [UInt8]

        public init(rawRepresentation: [UInt8]) throws {
            guard rawRepresentation.count == publicKeyByteCount else {
                throw CryptoError.invalidInput(
                    "Ed25519 public key must be \(publicKeyByteCount) bytes, got \(rawRepresentation.count)")
            }
            self.rawRepresentation = rawRepresentation
        }

        /// True only for a valid signature of exactly `message` by this key. Malformed
        /// signatures and keys that are not curve points give false, never an error.
        public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
            guard signature.count == signatureByteCount else { return false }
            let verified = verify(signature, message)
            // A rejected signature leaves reasons on the queue; they must not leak into the
            // next failure reported on this thread.
            if !verified { _ = LibCrypto.drainErrors() }
            return verified
        }

        private func verify(_ signature: [UInt8], _ message: [UInt8]) -> Bool {
            guard let key = try? PKey(publicKey: rawRepresentation, type: "ED25519") else { return false }
            let context = DigestContext()
            guard EVP_DigestVerifyInit_ex(context.pointer, nil, nil, nil, nil, key.pointer, nil) == 1 else { return false }
            return signature.withUnsafeBytes { signature in
                message.withUnsafeBytes { message in
                    EVP_DigestVerify(
                        context.pointer, LibCrypto.bytes(signature), signature.count,
                        LibCrypto.bytes(message), message.count) == 1
                }
            }
        }

        public init(from decoder: any Decoder) throws {
            rawRepresentation = try Base64Field.decode(from: decoder, what: "Ed25519 public key", count: publicKeyByteCount)
        }

        public func encode(to encoder: any Encoder) throws {
            try Base64Field.encode(rawRepresentation, to: encoder)
        }
    }
}
