import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks

/// One signed snapshot in the history: the index root it seals, the commits it follows, who made
/// it, when and why.
///
/// A commit is stored as one metadata chunk; the ``ChunkRef`` of that chunk names the commit and
/// is the capability to read it and everything below ``root``. Opening a commit reads that one
/// chunk: nothing in history is replayed.
///
/// ## Encoding (format version 1)
///
/// Deterministic, so the same commit always has the same bytes and therefore the same chunk id:
///
///     version (u8 = 1)
///     parent count (varint, ≤ 64), then each parent's ChunkRef (72 bytes)
///     root ChunkRef (72 bytes)
///     generation (varint)
///     time: milliseconds since 1970 UTC (zigzag varint)
///     author name (varint length, UTF-8, ≤ 256 bytes)
///     author Ed25519 public key (32) | author X25519 public key (32)
///     message (varint length, UTF-8, ≤ 1 MiB)
///     signature (64): Ed25519 over "infinitydb-commit-v1" followed by everything above
///
/// Varints are unsigned LEB128 in their shortest form; anything else, trailing bytes included,
/// is refused as corrupt.
public struct Commit: Sendable, Hashable {
    /// The encoding this build writes and the newest it reads.
    public static let formatVersion: UInt8 = 1
    /// A merge of more parents than this is refused.
    public static let maximumParentCount = 64
    /// The longest message, in UTF-8 bytes (1 MiB).
    public static let maximumMessageByteCount = 1 << 20
    /// The longest author name, in UTF-8 bytes.
    public static let maximumAuthorNameByteCount = 256
    /// Signed in front of the encoding, so a commit signature can never pass for the signature
    /// of anything else the same key signs (share envelopes, for one).
    public static let signatureDomain = Array("infinitydb-commit-v1".utf8)

    /// The commits this one follows: none for a root commit, two or more for a merge. The first
    /// parent is the branch the commit was made on.
    public let parents: [ChunkRef]
    /// The root of the committed index: an opaque tree-node chunk to this layer.
    public let root: ChunkRef
    /// Who made and signed the commit.
    public let author: AgentIdentity
    /// When the commit was made, in whole milliseconds since 1970-01-01 UTC (as stored).
    public let timeMilliseconds: Int64
    /// Why the commit was made.
    public let message: String
    /// 1 for a root commit, else one more than the highest generation among the parents. A
    /// commit's ancestors all have lower generations, which bounds ancestry and merge-base walks.
    public let generation: UInt64
    /// Ed25519 signature (64 bytes) by ``author`` over ``signatureDomain`` and the encoding
    /// without the signature.
    public let signature: [UInt8]

    /// When the commit was made.
    public var time: Date { Milliseconds.date(timeMilliseconds) }

    /// The fields as they are, unchecked: ``signed(parents:root:time:message:generation:authorName:keys:)``
    /// and ``decode(_:id:)`` are the ways in that check them.
    init(
        parents: [ChunkRef], root: ChunkRef, author: AgentIdentity, timeMilliseconds: Int64, message: String,
        generation: UInt64, signature: [UInt8]
    ) {
        self.parents = parents
        self.root = root
        self.author = author
        self.timeMilliseconds = timeMilliseconds
        self.message = message
        self.generation = generation
        self.signature = signature
    }

    /// Makes and signs a commit.
    ///
    /// - Throws: ``HistoryError/Code/invalidArgument`` when a limit is exceeded (parents,
    ///   message or name size), a parent is repeated, the generation does not fit the parents
    ///   (1 exactly for a root commit, at least 2 otherwise), or the time cannot be stored.
    public static func signed(
        parents: [ChunkRef], root: ChunkRef, time: Date, message: String, generation: UInt64,
        authorName: String, keys: AgentKeys
    ) throws -> Commit {
        guard let milliseconds = Milliseconds.since1970(time) else {
            throw HistoryError(.invalidArgument, "commit time \(time) cannot be stored in milliseconds since 1970")
        }
        let unsigned = Commit(
            parents: parents, root: root, author: keys.identity(name: authorName), timeMilliseconds: milliseconds,
            message: message, generation: generation, signature: [])
        if let problem = unsigned.problem() { throw HistoryError(.invalidArgument, "cannot make a commit: \(problem)") }
        let signature: [UInt8]
        do {
            signature = try keys.signingKey.signature(for: unsigned.signedMessage())
        } catch {
            throw HistoryError(.invalidArgument, "cannot sign a commit", cause: error)
        }
        return Commit(
            parents: parents, root: root, author: unsigned.author, timeMilliseconds: milliseconds, message: message,
            generation: generation, signature: signature)
    }

    /// The stored form: the encoding followed by the signature.
    public func encoded() -> [UInt8] {
        var writer = unsignedWriter()
        writer.append(contentsOf: signature)
        return writer.bytes
    }

    /// Whether ``signature`` is the author's signature of exactly these fields.
    public var hasValidSignature: Bool {
        author.signingPublicKey.isValidSignature(signature, for: signedMessage())
    }

    /// Reads and verifies a stored commit.
    ///
    /// - Parameter id: the chunk the bytes came from, to name it in errors.
    /// - Throws: ``HistoryError`` naming the commit: ``HistoryError/Code/unsupportedFormat`` for a
    ///   newer format version, ``HistoryError/Code/corrupt`` for truncated, malformed or trailing
    ///   bytes, broken limits, or a signature that does not verify against the author's key.
    public static func decode(_ bytes: [UInt8], id: ChunkID) throws -> Commit {
        var reader = ByteReader(bytes, subject: "commit \(id.shortDescription)")
        let version = try reader.byte("format version")
        guard version <= formatVersion else {
            throw HistoryError(
                .unsupportedFormat,
                "commit \(id.shortDescription) has format version \(version); this build reads version \(formatVersion) (upgrade to read it)")
        }
        guard version == formatVersion else { throw reader.corrupt("format version \(version) was never written") }

        let parentCount = try reader.count("parent count", maximum: maximumParentCount)
        var parents: [ChunkRef] = []
        parents.reserveCapacity(parentCount)
        for index in 0..<parentCount {
            parents.append(try chunkRef(&reader, "parent \(index + 1)"))
        }
        let root = try chunkRef(&reader, "root")
        let generation = try reader.varint("generation")
        let milliseconds = try reader.signedVarint("time")
        let name = try reader.utf8("author name", maximum: maximumAuthorNameByteCount)
        let signingKey = try reader.bytes(count: Ed25519.publicKeyByteCount, "author signing key")
        let agreementKey = try reader.bytes(count: X25519.keyByteCount, "author agreement key")
        let message = try reader.utf8("message", maximum: maximumMessageByteCount)
        let signature = Array(try reader.bytes(count: Ed25519.signatureByteCount, "signature"))
        guard reader.isAtEnd else { throw reader.corrupt("\(reader.remainingCount) unexpected bytes after the signature") }

        let author: AgentIdentity
        do {
            author = AgentIdentity(
                name: name, signingPublicKey: try Ed25519.PublicKey(rawRepresentation: Array(signingKey)),
                agreementPublicKey: try X25519.PublicKey(rawRepresentation: Array(agreementKey)))
        } catch {
            throw reader.corrupt("the author's keys cannot be read")
        }
        let commit = Commit(
            parents: parents, root: root, author: author, timeMilliseconds: milliseconds, message: message,
            generation: generation, signature: signature)
        if let problem = commit.problem() { throw reader.corrupt(problem) }
        guard commit.hasValidSignature else {
            throw HistoryError(
                .corrupt, "commit \(id.shortDescription): signature does not verify against the key of its author '\(name)'")
        }
        return commit
    }

    /// The bytes the signature covers.
    func signedMessage() -> [UInt8] {
        Self.signatureDomain + unsignedWriter().bytes
    }

    private func unsignedWriter() -> ByteWriter {
        let nameBytes = Array(author.name.utf8)
        let messageBytes = Array(message.utf8)
        var writer = ByteWriter(
            reservingCapacity: 1 + (parents.count + 1) * ChunkRef.serializedByteCount + nameBytes.count
                + messageBytes.count + 3 * 32 + Ed25519.signatureByteCount + 32)
        writer.append(Self.formatVersion)
        writer.appendVarint(UInt64(parents.count))
        for parent in parents { writer.append(contentsOf: parent.serialized) }
        writer.append(contentsOf: root.serialized)
        writer.appendVarint(generation)
        writer.appendSignedVarint(timeMilliseconds)
        writer.appendLengthPrefixed(nameBytes)
        writer.append(contentsOf: author.signingPublicKey.rawRepresentation)
        writer.append(contentsOf: author.agreementPublicKey.rawRepresentation)
        writer.appendLengthPrefixed(messageBytes)
        return writer
    }

    /// What breaks the rules every commit keeps, or nil. Shared by signing and decoding so a
    /// commit this build writes is always one it reads.
    private func problem() -> String? {
        if parents.count > Self.maximumParentCount {
            return "\(parents.count) parents; at most \(Self.maximumParentCount) are allowed"
        }
        if Set(parents.map(\.id)).count != parents.count { return "a parent is listed twice" }
        if author.name.utf8.count > Self.maximumAuthorNameByteCount {
            return "the author name is \(author.name.utf8.count) bytes; at most \(Self.maximumAuthorNameByteCount) are allowed"
        }
        if message.utf8.count > Self.maximumMessageByteCount {
            return "the message is \(message.utf8.count) bytes; at most \(Self.maximumMessageByteCount) are allowed"
        }
        if parents.isEmpty && generation != 1 { return "a root commit has generation 1, not \(generation)" }
        if !parents.isEmpty && generation < 2 { return "a commit with parents has generation 2 or more, not \(generation)" }
        if generation == .max { return "generation \(generation) is out of range" }
        return nil
    }

    private static func chunkRef(_ reader: inout ByteReader, _ field: String) throws -> ChunkRef {
        let bytes = try reader.bytes(count: ChunkRef.serializedByteCount, field)
        do {
            return try ChunkRef(serialized: bytes)
        } catch {
            throw reader.corrupt("the \(field) reference is malformed")
        }
    }
}

extension Commit: CustomStringConvertible {
    /// The author, the time and the first line of the message; never a key.
    public var description: String {
        let subject = message.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return "commit by \(author.name) at \(time) (generation \(generation)): \(subject)"
    }
}
