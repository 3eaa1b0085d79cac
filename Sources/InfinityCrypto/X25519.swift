import CInfinityOpenSSL

/// X25519 key agreement (RFC 7748) through OpenSSL's EVP_PKEY "X25519".
public enum X25519 {
    public static let keyByteCount = 32

    /// A private key; its 32 raw bytes are held in ``SecureBytes`` and zeroed on drop.
    public struct PrivateKey: Sendable {
        public let rawRepresentation: SecureBytes
        public let publicKey: PublicKey

        /// A new random key.
        public init() {
            do {
                try self.init(rawRepresentation: SecureBytes.random(count: keyByteCount))
            } catch {
                // Every 32-byte string is a valid X25519 private key: only a broken libcrypto fails here.
                fatalError("X25519 key generation failed: \(error)")
            }
        }

        /// A key from its 32 raw bytes (RFC 7748 scalar; clamping happens inside X25519).
        public init(rawRepresentation: SecureBytes) throws {
            guard rawRepresentation.count == keyByteCount else {
                throw CryptoError.invalidInput(
                    "X25519 private key must be \(keyByteCount) bytes, got \(rawRepresentation.count)")
            }
            let key = try PKey(privateKey: rawRepresentation, type: "X25519")
            self.rawRepresentation = rawRepresentation
            self.publicKey = try PublicKey(rawRepresentation: key.rawPublicKey(byteCount: keyByteCount, type: "X25519"))
        }

        /// The 32-byte shared secret with `peer`. Throws (with OpenSSL's reason) for a peer key of
        /// small order, whose result would be all zeros and carry no secret.
        public func sharedSecret(with peer: PublicKey) throws -> SecureBytes {
            let key = try PKey(privateKey: rawRepresentation, type: "X25519")
            let peerKey = try PKey(publicKey: peer.rawRepresentation, type: "X25519")
            let context = try PKeyContext(key)
            try LibCrypto.check(EVP_PKEY_derive_init(context.pointer), "X25519 key agreement setup failed")
            try LibCrypto.check(
                EVP_PKEY_derive_set_peer(context.pointer, peerKey.pointer), "X25519 peer public key was rejected")
            return try SecureBytes.filling(count: keyByteCount) { secret in
                var length = secret.count
                try LibCrypto.check(
                    EVP_PKEY_derive(context.pointer, LibCrypto.mutableBytes(secret), &length),
                    "X25519 key agreement failed")
                guard length == keyByteCount else {
                    throw LibCrypto.failure("X25519 key agreement produced \(length) bytes")
                }
            }
        }
    }

    /// A public key (a Montgomery u-coordinate, 32 bytes). Codable as a base64 string.
    public struct PublicKey: Hashable, Sendable, Codable {
        public let rawRepresentation: [UInt8]

        public init(rawRepresentation: [UInt8]) throws {
            guard rawRepresentation.count == keyByteCount else {
                throw CryptoError.invalidInput(
                    "X25519 public key must be \(keyByteCount) bytes, got \(rawRepresentation.count)")
            }
            self.rawRepresentation = rawRepresentation
        }

        public init(from decoder: any Decoder) throws {
            rawRepresentation = try Base64Field.decode(from: decoder, what: "X25519 public key", count: keyByteCount)
        }

        public func encode(to encoder: any Encoder) throws {
            try Base64Field.encode(rawRepresentation, to: encoder)
        }
    }
}
