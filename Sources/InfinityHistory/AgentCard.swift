import Foundation
import InfinityCrypto

/// What one agent hands another so that they can share: its public identity and where its store
/// is, signed by the agent itself so that neither can be altered on the way.
///
/// A card carries no secret. Whoever imports it can verify the agent's commits and envelopes,
/// seal envelopes to it and write shares into its store; trusting the card is trusting the
/// agent's id (``AgentIdentity/id``), which both sides can compare out of band.
///
/// ## Encoding (version 1)
///
///     version (u8 = 1)
///     name (varint length, UTF-8, 1…256 bytes)
///     Ed25519 public key (32) | X25519 public key (32)
///     store location (varint length, UTF-8, ≤ 4096 bytes; may be empty)
///     signature (64): Ed25519 over "infinitydb-agent-card-v1" followed by everything above
///
/// The text form is ``textPrefix`` followed by the encoding in unpadded base64url: one line,
/// safe in a chat message or a shell argument.
public struct AgentCard: Sendable, Hashable {
    public static let formatVersion: UInt8 = 1
    public static let signatureDomain = Array("infinitydb-agent-card-v1".utf8)
    /// The start of every card's text form.
    public static let textPrefix = "infinity-agent:"
    public static let maximumLocationByteCount = 4096

    /// The agent: name and public keys.
    public let identity: AgentIdentity
    /// Where the agent's store is: a path, or a store URL. Empty when the agent keeps it private.
    public let location: String
    let signature: [UInt8]

    /// Makes a card for the agent whose keys are given, signed with them.
    public static func signed(name: String, location: String, keys: AgentKeys) throws -> AgentCard {
        let unsigned = AgentCard(identity: keys.identity(name: name), location: location, signature: [])
        if let problem = unsigned.problem() { throw HistoryError(.invalidArgument, "cannot make an agent card: \(problem)") }
        let signature = try keys.signingKey.signature(for: unsigned.signedMessage())
        return AgentCard(identity: unsigned.identity, location: location, signature: signature)
    }

    init(identity: AgentIdentity, location: String, signature: [UInt8]) {
        self.identity = identity
        self.location = location
        self.signature = signature
    }

    private func problem() -> String? {
        let nameLength = identity.name.utf8.count
        if nameLength == 0 || nameLength > Commit.maximumAuthorNameByteCount {
            return "the agent name must be 1 to \(Commit.maximumAuthorNameByteCount) bytes long"
        }
        if location.utf8.count > Self.maximumLocationByteCount {
            return "the store location is longer than \(Self.maximumLocationByteCount) bytes"
        }
        // Names and locations are printed on terminals: no control characters (escape sequences).
        if (identity.name + location).unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "the agent name or store location holds control characters"
        }
        return nil
    }

    private func unsignedWriter() -> ByteWriter {
        var writer = ByteWriter(reservingCapacity: 256)
        writer.append(Self.formatVersion)
        writer.appendLengthPrefixed(Array(identity.name.utf8))
        writer.append(contentsOf: identity.signingPublicKey.rawRepresentation)
        writer.append(contentsOf: identity.agreementPublicKey.rawRepresentation)
        writer.appendLengthPrefixed(Array(location.utf8))
        return writer
    }

    private func signedMessage() -> [UInt8] { Self.signatureDomain + unsignedWriter().bytes }

    /// The binary form.
    public func encoded() -> [UInt8] {
        var writer = unsignedWriter()
        writer.append(contentsOf: signature)
        return writer.bytes
    }

    /// The one-line text form: `infinity-agent:` and base64url.
    public var text: String { Self.textPrefix + Base64URL.encode(encoded()) }

    /// Reads and verifies a card in binary form.
    ///
    /// - Throws: ``HistoryError`` with ``HistoryError/Code/corrupt`` when it is malformed or its
    ///   signature does not verify, ``HistoryError/Code/unsupportedFormat`` for a newer version.
    public static func decode(_ bytes: [UInt8]) throws -> AgentCard {
        var reader = ByteReader(bytes, subject: "agent card")
        let version = try reader.byte("version")
        guard version == formatVersion else {
            throw HistoryError(
                .unsupportedFormat, "the agent card has format \(version); this build reads format \(formatVersion)")
        }
        let name = try reader.utf8("name", maximum: Commit.maximumAuthorNameByteCount)
        let signing = try Ed25519.PublicKey(rawRepresentation: Array(try reader.bytes(count: 32, "signing key")))
        let agreement = try X25519.PublicKey(rawRepresentation: Array(try reader.bytes(count: 32, "agreement key")))
        let location = try reader.utf8("store location", maximum: maximumLocationByteCount)
        let signature = Array(try reader.bytes(count: Ed25519.signatureByteCount, "signature"))
        guard reader.isAtEnd else { throw reader.corrupt("\(reader.remainingCount) bytes follow the signature") }
        let card = AgentCard(
            identity: AgentIdentity(name: name, signingPublicKey: signing, agreementPublicKey: agreement),
            location: location, signature: signature)
        if let problem = card.problem() { throw HistoryError(.corrupt, "the agent card is malformed: \(problem)") }
        guard signing.isValidSignature(signature, for: card.signedMessage()) else {
            throw HistoryError(.corrupt, "the agent card of '\(name)' is not signed by its own key (altered or damaged)")
        }
        return card
    }

    /// Reads a card from its text form (surrounding white space is ignored).
    public init(text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix(Self.textPrefix) else {
            throw HistoryError(.invalidArgument, "an agent card starts with '\(Self.textPrefix)'; this text does not")
        }
        guard let bytes = Base64URL.decode(String(trimmed.dropFirst(Self.textPrefix.count))) else {
            throw HistoryError(.corrupt, "the agent card is not valid base64url after '\(Self.textPrefix)'")
        }
        self = try Self.decode(bytes)
    }
}

/// Unpadded base64url (RFC 4648 §5), the alphabet safe in URLs, file names and shell words.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Nil when the text is not base64url.
    public static func decode(_ text: String) -> [UInt8]? {
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: standard).map { Array($0) }
    }
}
