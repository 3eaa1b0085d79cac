import Foundation
import InfinityChunks
import InfinityCrypto

/// The note one agent leaves in another's inbox when it shares a commit: the commit's reference
/// (the capability to read that snapshot and its history), sealed so that only the recipient can
/// open it, and signed by the sender.
///
/// The chunks the recipient lacks travel beside the envelope as packs whose trailers are sealed
/// under a one-time ``bundleKey`` carried inside it; the chunks in them are the sender's sealed
/// chunks as they are, never re-encrypted.
///
/// ## Sealed form (version 1)
///
///     version (u8 = 1) | ephemeral X25519 public key (32) | nonce (12) | AES-256-GCM ciphertext | tag (16)
///
/// The key is HKDF-SHA256 of the X25519 secret shared by the ephemeral key and the recipient's
/// agreement key, with salt = ephemeral public key ‖ recipient public key and info
/// `"infinitydb/v1/share-envelope"`; the version byte and ephemeral key are authenticated. The key
/// is used once, so the random nonce can never repeat under it.
///
/// ## Plaintext
///
///     version (u8 = 1)
///     recipient agent id (32)
///     sender's agent card (varint length, then the card: see ``AgentCard``)
///     commit ChunkRef (72)
///     ref name (varint length, UTF-8, ≤ 255): the branch as the sender calls it
///     time: milliseconds since 1970 UTC (zigzag varint)
///     bundle key (32)
///     bundle pack count (varint, ≤ 1,000,000), then each pack's object name (varint length, UTF-8)
///     chunk count (varint), bundle bytes (varint)
///     signature (64): Ed25519 by the card's key over "infinitydb-share-envelope-v1",
///                     the ephemeral public key, and everything above
///
/// Signing the recipient's id and the ephemeral key inside the sealed payload means an envelope
/// can neither be re-addressed to someone else nor re-sealed by its recipient as if it came
/// straight from the sender. An observer of the store sees only sizes and times.
public struct ShareEnvelope: Sendable {
    public static let formatVersion: UInt8 = 1
    public static let signatureDomain = Array("infinitydb-share-envelope-v1".utf8)
    static let keyInfo = Array("infinitydb/v1/share-envelope".utf8)
    /// Larger sealed envelopes are refused before they are opened.
    public static let maximumSealedByteCount = 64 << 20
    static let maximumPackCount = 1_000_000
    static let sealedHeaderLength = 1 + X25519.keyByteCount + AES256GCM.nonceByteCount

    /// Who shares: identity and store location, as signed by the sender.
    public let sender: AgentCard
    /// Whom the envelope is for.
    public let recipient: AgentID
    /// The shared commit: the capability to read it and everything it reaches.
    public let commit: ChunkRef
    /// The branch name the sender gives the commit; the recipient installs it as `sender/name`.
    public let refName: String
    /// When the envelope was made, in milliseconds since 1970 UTC.
    public let timeMilliseconds: Int64
    /// Seals the trailers of the bundle packs.
    public let bundleKey: SecureBytes
    /// The object names, in the recipient's store, of the packs holding the chunks sent.
    public let bundlePacks: [String]
    /// How many chunks the bundle holds, and their sealed bytes.
    public let chunkCount: Int
    public let bundleByteCount: Int

    public var time: Date { Milliseconds.date(timeMilliseconds) }

    public init(
        sender: AgentCard, recipient: AgentID, commit: ChunkRef, refName: String, time: Date,
        bundleKey: SecureBytes, bundlePacks: [String], chunkCount: Int, bundleByteCount: Int
    ) throws {
        guard let milliseconds = Milliseconds.since1970(time) else {
            throw HistoryError(.invalidArgument, "the time \(time) cannot be stored in an envelope")
        }
        guard !refName.isEmpty, refName.utf8.count <= RefName.maximumByteCount else {
            throw HistoryError(.invalidArgument, "a shared ref name must be 1 to \(RefName.maximumByteCount) bytes long")
        }
        guard bundleKey.count == 32, bundlePacks.count <= Self.maximumPackCount else {
            throw HistoryError(.invalidArgument, "an envelope needs a 32-byte bundle key and at most \(Self.maximumPackCount) packs")
        }
        self.sender = sender
        self.recipient = recipient
        self.commit = commit
        self.refName = refName
        timeMilliseconds = milliseconds
        self.bundleKey = bundleKey
        self.bundlePacks = bundlePacks
        self.chunkCount = chunkCount
        self.bundleByteCount = bundleByteCount
    }

    func unsignedPayload() -> [UInt8] {
        var writer = ByteWriter(reservingCapacity: 512 + bundlePacks.count * 96)
        writer.append(Self.formatVersion)
        writer.append(contentsOf: recipient.bytes)
        writer.appendLengthPrefixed(sender.encoded())
        writer.append(contentsOf: commit.serialized)
        writer.appendLengthPrefixed(Array(refName.utf8))
        writer.appendSignedVarint(timeMilliseconds)
        bundleKey.withUnsafeBytes { writer.append(contentsOf: $0) }
        writer.appendVarint(UInt64(bundlePacks.count))
        for name in bundlePacks { writer.appendLengthPrefixed(Array(name.utf8)) }
        writer.appendVarint(UInt64(chunkCount))
        writer.appendVarint(UInt64(bundleByteCount))
        return writer.bytes
    }

    private static func signedMessage(ephemeralKey: [UInt8], payload: some Collection<UInt8>) -> [UInt8] {
        signatureDomain + ephemeralKey + payload
    }

    /// Signs the envelope with the sender's keys and seals it to the recipient.
    ///
    /// - Throws: ``HistoryError/Code/invalidArgument`` when the keys are not the card's or the
    ///   recipient is not the one the envelope names.
    public func sealed(to recipientIdentity: AgentIdentity, senderKeys: AgentKeys) throws -> [UInt8] {
        guard senderKeys.signingKey.publicKey == sender.identity.signingPublicKey else {
            throw HistoryError(.invalidArgument, "an envelope must be signed by the agent of its sender card")
        }
        guard recipientIdentity.id == recipient else {
            throw HistoryError(.invalidArgument, "the envelope is addressed to another agent than \(recipientIdentity.name)")
        }
        return try seal(to: recipientIdentity, signingKey: senderKeys.signingKey)
    }

    /// Signs with `signingKey` and seals, unchecked: tests use it to forge envelopes.
    func seal(to recipientIdentity: AgentIdentity, signingKey: Ed25519.PrivateKey) throws -> [UInt8] {
        let ephemeral = X25519.PrivateKey()
        let ephemeralPublic = ephemeral.publicKey.rawRepresentation
        let payload = unsignedPayload()
        let signature = try signingKey.signature(for: Self.signedMessage(ephemeralKey: ephemeralPublic, payload: payload))
        let key = try Self.sealingKey(
            secret: ephemeral.sharedSecret(with: recipientIdentity.agreementPublicKey), ephemeralKey: ephemeralPublic,
            recipientKey: recipientIdentity.agreementPublicKey.rawRepresentation)
        let nonce = AES256GCM.randomNonce()
        let header = [Self.formatVersion] + ephemeralPublic
        let ciphertext = try AES256GCM.seal(payload + signature, key: key, nonce: nonce, authenticating: header)
        return header + nonce + ciphertext
    }

    private static func sealingKey(secret: SecureBytes, ephemeralKey: [UInt8], recipientKey: [UInt8]) throws -> SecureBytes {
        try HKDF.deriveKey(inputKeyMaterial: secret, salt: ephemeralKey + recipientKey, info: keyInfo, outputByteCount: 32)
    }

    /// Opens an envelope with the recipient's keys and verifies the sender's signature.
    ///
    /// - Parameter name: the envelope's object name, for messages.
    /// - Throws: ``HistoryError`` naming the envelope: ``HistoryError/Code/unsupportedFormat`` for
    ///   a newer version, ``HistoryError/Code/corrupt`` when it is malformed, was not sealed to
    ///   these keys, was altered, is addressed to another agent or its signature does not verify.
    public static func open(_ sealed: [UInt8], keys: AgentKeys, name: String) throws -> ShareEnvelope {
        guard sealed.count <= maximumSealedByteCount else {
            throw HistoryError(.corrupt, "envelope \(name) is \(sealed.count) bytes, more than any envelope holds")
        }
        guard sealed.count >= sealedHeaderLength + AES256GCM.tagByteCount else {
            throw HistoryError(.corrupt, "envelope \(name) is truncated (\(sealed.count) bytes)")
        }
        guard sealed[0] == formatVersion else {
            throw HistoryError(
                .unsupportedFormat, "envelope \(name) has format \(sealed[0]); this build reads format \(formatVersion)")
        }
        let ephemeralKey = Array(sealed[1..<(1 + X25519.keyByteCount)])
        let nonce = Array(sealed[(1 + X25519.keyByteCount)..<sealedHeaderLength])
        let plaintext: [UInt8]
        do {
            let key = try sealingKey(
                secret: keys.agreementKey.sharedSecret(with: X25519.PublicKey(rawRepresentation: ephemeralKey)),
                ephemeralKey: ephemeralKey, recipientKey: keys.agreementKey.publicKey.rawRepresentation)
            plaintext = try AES256GCM.open(
                Array(sealed[sealedHeaderLength...]), key: key, nonce: nonce,
                authenticating: Array(sealed[0..<(1 + X25519.keyByteCount)]))
        } catch {
            throw HistoryError(.corrupt, "envelope \(name) does not open: it was altered, damaged or sealed to another agent")
        }
        guard plaintext.count > Ed25519.signatureByteCount else {
            throw HistoryError(.corrupt, "envelope \(name) is too short to hold a signature")
        }
        let payload = plaintext[..<(plaintext.count - Ed25519.signatureByteCount)]
        let signature = Array(plaintext[(plaintext.count - Ed25519.signatureByteCount)...])
        let envelope = try decodePayload(Array(payload), name: name)
        guard envelope.recipient == keys.identity(name: "").id else {
            throw HistoryError(.corrupt, "envelope \(name) is addressed to agent \(envelope.recipient), not to this one")
        }
        guard
            envelope.sender.identity.signingPublicKey.isValidSignature(
                signature, for: signedMessage(ephemeralKey: ephemeralKey, payload: payload))
        else {
            throw HistoryError(
                .corrupt, "the signature of envelope \(name) does not verify for its sender '\(envelope.sender.identity.name)' (forged or altered)")
        }
        return envelope
    }

    static func decodePayload(_ payload: [UInt8], name: String) throws -> ShareEnvelope {
        var reader = ByteReader(payload, subject: "envelope \(name)")
        let version = try reader.byte("version")
        guard version == formatVersion else {
            throw HistoryError(.unsupportedFormat, "envelope \(name) holds payload format \(version); this build reads \(formatVersion)")
        }
        let recipient = try AgentID(bytes: Array(try reader.bytes(count: AgentID.byteCount, "recipient")))
        let sender: AgentCard
        do {
            sender = try AgentCard.decode(Array(try reader.lengthPrefixed("sender card", maximum: 8192)))
        } catch let error as HistoryError {
            throw HistoryError(.corrupt, "envelope \(name) holds a bad sender card", cause: error)
        }
        let commit = try ChunkRef(serialized: try reader.bytes(count: ChunkRef.serializedByteCount, "commit"))
        let refName = try reader.utf8("ref name", maximum: RefName.maximumByteCount)
        let time = try reader.signedVarint("time")
        let bundleKey = SecureBytes(copying: try reader.bytes(count: 32, "bundle key"))
        let packCount = try reader.count("bundle pack count", maximum: maximumPackCount)
        var packs: [String] = []
        for _ in 0..<packCount { packs.append(try reader.utf8("bundle pack name", maximum: 1024)) }
        let chunkCount = try reader.count("chunk count", maximum: Int(Int32.max))
        let byteCount = try reader.count("bundle bytes", maximum: Int.max)
        guard reader.isAtEnd else { throw reader.corrupt("\(reader.remainingCount) bytes follow the last field") }
        return try ShareEnvelope(
            sender: sender, recipient: recipient, commit: commit, refName: refName, time: Milliseconds.date(time),
            bundleKey: bundleKey, bundlePacks: packs, chunkCount: chunkCount, bundleByteCount: byteCount)
    }
}
