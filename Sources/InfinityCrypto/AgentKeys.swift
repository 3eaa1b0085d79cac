/// The keys of one agent, all derived from its 256-bit master secret (DESIGN.md "Keys").
///
/// Derivation: HKDF-SHA256 with the fixed salt ``hkdfSalt`` (`"infinitydb-agent-keys-v1"`),
/// the master secret as input key material, and one info label per key. The labels carry a
/// version so a future scheme can live next to this one; changing any of them changes every
/// key, id and sealed chunk, so they are part of the storage format.
///
/// Every field is zeroed when the last copy is dropped (they are all ``SecureBytes`` or keys
/// built on it).
public struct AgentKeys: Sendable {
    public static let masterSecretByteCount = 32

    /// The HKDF salt: fixed, because the master secret is already uniformly random; it only
    /// separates these derivations from any other use of the same secret.
    public static let hkdfSalt = Array("infinitydb-agent-keys-v1".utf8)

    /// HKDF info labels, one per derived key.
    public enum Label {
        public static let contentKey = "infinitydb/v1/content-key"
        public static let chunkerSecret = "infinitydb/v1/chunker-secret"
        public static let metadataKey = "infinitydb/v1/metadata-key"
        public static let ed25519Seed = "infinitydb/v1/ed25519-seed"
        public static let x25519Seed = "infinitydb/v1/x25519-seed"
        public static let recordsKey = "infinitydb/v1/records-key"
    }

    /// Keys chunk keys and chunk ids (a keyed hash of the plaintext). 32 bytes.
    public let contentKey: SecureBytes
    /// Keys the content-defined chunker's boundary hash, so boundaries reveal nothing. 32 bytes.
    public let chunkerSecret: SecureBytes
    /// Seals pack trailers and refs. 32 bytes.
    public let metadataKey: SecureBytes
    /// Signs commits and share envelopes.
    public let signingKey: Ed25519.PrivateKey
    /// Receives shares (envelopes sealed to this key).
    public let agreementKey: X25519.PrivateKey
    /// Authenticates (HMAC-SHA256) the records a store keeps in clear that decide what it
    /// trusts: contacts, the times of accepted shares, and a remote store's history version. 32 bytes.
    public let recordsKey: SecureBytes

    /// 32 bytes from the CSPRNG: a new agent.
    public static func generateMasterSecret() -> SecureBytes {
        SecureBytes.random(count: masterSecretByteCount)
    }

    /// Derives every key; deterministic, so the master secret is all an agent needs to keep.
    public init(masterSecret: SecureBytes) throws {
        guard masterSecret.count == Self.masterSecretByteCount else {
            throw CryptoError.invalidInput(
                "agent master secret must be \(Self.masterSecretByteCount) bytes, got \(masterSecret.count)")
        }
        func derive(_ label: String) throws -> SecureBytes {
            try HKDF.deriveKey(
                inputKeyMaterial: masterSecret, salt: Self.hkdfSalt, info: Array(label.utf8), outputByteCount: 32)
        }
        contentKey = try derive(Label.contentKey)
        chunkerSecret = try derive(Label.chunkerSecret)
        metadataKey = try derive(Label.metadataKey)
        signingKey = try Ed25519.PrivateKey(seed: derive(Label.ed25519Seed))
        agreementKey = try X25519.PrivateKey(rawRepresentation: derive(Label.x25519Seed))
        recordsKey = try derive(Label.recordsKey)
    }

    /// The public identity other agents use to verify this agent and share with it.
    public func identity(name: String) -> AgentIdentity {
        AgentIdentity(name: name, signingPublicKey: signingKey.publicKey, agreementPublicKey: agreementKey.publicKey)
    }
}
