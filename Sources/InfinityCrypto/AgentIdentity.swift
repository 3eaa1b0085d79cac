/// An agent as others see it: a name and its two public keys.
///
/// The ``id`` depends only on the keys, so renaming an agent keeps its id.
public struct AgentIdentity: Codable, Hashable, Sendable {
    public let name: String
    public let signingPublicKey: Ed25519.PublicKey
    public let agreementPublicKey: X25519.PublicKey

    public init(name: String, signingPublicKey: Ed25519.PublicKey, agreementPublicKey: X25519.PublicKey) {
        self.name = name
        self.signingPublicKey = signingPublicKey
        self.agreementPublicKey = agreementPublicKey
    }

    /// Domain label at the front of the hashed encoding; the "v1" versions the encoding.
    public static let idDomain = Array("infinitydb-agent-id-v1".utf8)

    /// SHA-256 over `"infinitydb-agent-id-v1" || Ed25519 public key (32) || X25519 public key (32)`.
    /// Both keys have a fixed length, so the concatenation is unambiguous.
    public var id: AgentID {
        var hasher = SHA256Hasher()
        hasher.update(Self.idDomain)
        hasher.update(signingPublicKey.rawRepresentation)
        hasher.update(agreementPublicKey.rawRepresentation)
        return AgentID(validated: hasher.finalize())
    }
}

/// The 32-byte id of an agent. Shown and encoded as 64 lowercase hex digits.
public struct AgentID: Hashable, Sendable, Codable, CustomStringConvertible {
    public static let byteCount = 32

    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == Self.byteCount else {
            throw CryptoError.invalidInput("agent id must be \(Self.byteCount) bytes, got \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// Parses the 64-hex-digit form.
    public init(hex: String) throws {
        guard let bytes = Hex.decode(hex) else {
            throw CryptoError.invalidInput("agent id must be \(Self.byteCount * 2) hex digits, got \"\(hex)\"")
        }
        try self.init(bytes: bytes)
    }

    init(validated bytes: [UInt8]) {
        self.bytes = bytes
    }

    public var description: String { Hex.encode(bytes) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let bytes = Hex.decode(text), bytes.count == Self.byteCount else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "agent id must be \(Self.byteCount * 2) hex digits")
        }
        self.bytes = bytes
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
