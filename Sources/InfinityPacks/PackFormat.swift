import InfinityCrypto

/// What a pack holds. Tree and metadata chunks live apart from file data so that metadata packs
/// stay small, hot and cheap to cache, and file data can be fetched without touching them.
public enum PackKind: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case data = 0
    case metadata = 1

    public var description: String { self == .data ? "data" : "metadata" }
}

/// One sealed chunk inside a pack, as listed by the pack's trailer.
public struct PackEntry: Sendable, Hashable {
    public var id: ChunkID
    /// Byte offset of the sealed chunk from the start of the pack.
    public var offset: Int
    /// Length of the sealed chunk.
    public var length: Int
    /// Length of the chunk's plaintext, kept for statistics.
    public var plaintextLength: Int

    public init(id: ChunkID, offset: Int, length: Int, plaintextLength: Int) {
        self.id = id
        self.offset = offset
        self.length = length
        self.plaintextLength = plaintextLength
    }
}

/// The on-disk layout of a pack (see Docs/FORMAT.md):
///
///     sealed chunk 0 | sealed chunk 1 | … | sealed trailer | trailer length (u32 LE) | "INFPACK1"
///
/// The trailer lists every chunk (id, offset, length, plaintext length) and is sealed with
/// AES-256-GCM under the store owner's metadata key, so the index can be rebuilt from packs alone
/// while a storage provider learns nothing but sizes.
public enum PackFormat {
    public static let version: UInt8 = 1
    public static let magic: [UInt8] = Array("INFPACK1".utf8)
    /// Trailer length (4 bytes) and magic (8 bytes).
    public static let footerLength = 12
    static let trailerEntryLength = ChunkID.byteCount + 4 + 4 + 4
    static let trailerAssociatedData: [UInt8] = Array("infinitydb-pack-trailer-v1".utf8)
    /// A pack larger than this is refused: offsets in the trailer are 32-bit.
    public static let maximumPackSize = Int(UInt32.max)

    /// The backend object name of a pack: `packs/<2 hex>/<64 hex>`, named by the SHA-256 of its
    /// sealed trailer (unique, because the trailer's nonce is random).
    public static func objectName(forSealedTrailer sealedTrailer: [UInt8]) -> String {
        let hex = Hex.encode(SHA256.hash(sealedTrailer))
        return "packs/\(hex.prefix(2))/\(hex)"
    }

    /// What the trailer of a whole pack says, after checking that the pack is the one its name
    /// names (its last component is the SHA-256 of the sealed trailer) and that the trailer
    /// authenticates under `metadataKey`.
    ///
    /// - Throws: ``PackError`` naming the pack when either fails.
    public static func verifiedTrailer(
        ofPack name: String, bytes: [UInt8], metadataKey: SecureBytes
    ) throws -> (kind: PackKind, entries: [PackEntry]) {
        try verifiedTrailer(ofPack: name, tail: bytes, packSize: bytes.count, metadataKey: metadataKey)
    }

    /// The same check from the end of a pack only (`tail`: its last bytes, holding at least the
    /// sealed trailer and footer), so a large pack need not be read whole.
    public static func verifiedTrailer(
        ofPack name: String, tail: [UInt8], packSize: Int, metadataKey: SecureBytes
    ) throws -> (kind: PackKind, entries: [PackEntry]) {
        let sealedLength = try sealedTrailerLength(tail: tail, packSize: packSize, packName: name)
        guard tail.count >= sealedLength + footerLength else {
            throw PackError(.malformedPack, "pack \(name) is truncated: its trailer is cut off")
        }
        let sealedEnd = tail.count - footerLength
        let expectedName = objectName(forSealedTrailer: Array(tail[(sealedEnd - sealedLength)..<sealedEnd]))
        // Packs kept elsewhere (a share's inbox, another agent's store) keep the last component.
        guard name == expectedName || name.split(separator: "/").last == expectedName.split(separator: "/").last else {
            throw PackError(.malformedPack, "pack \(name) does not match its name: its trailer hashes to \(expectedName)")
        }
        return try decodeTrailer(tail: tail, packSize: packSize, packName: name, metadataKey: metadataKey)
    }

    /// The folder under which all packs live.
    public static let objectPrefix = "packs/"

    /// The folders inside it that packs are spread over, `00` to `ff`: the first two hex
    /// digits of a pack's name (see ``objectName(forSealedTrailer:)``).
    public static let folderNames = (0...255).map { Hex.encode([UInt8($0)]) }

    /// The size of a pack holding `count` sealed chunks of `chunkBytes` bytes in all: the chunks,
    /// the sealed trailer that lists them, and the footer.
    public static func packSize(chunkBytes: Int, count: Int) -> Int {
        let sealedTrailer = 1 + AES256GCM.nonceByteCount + 6 + count * trailerEntryLength + AES256GCM.tagByteCount
        return chunkBytes + sealedTrailer + footerLength
    }

    static func encodeTrailer(kind: PackKind, entries: [PackEntry]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(6 + entries.count * trailerEntryLength)
        out.append(version)
        out.append(kind.rawValue)
        appendUInt32(UInt32(entries.count), to: &out)
        for entry in entries {
            out.append(contentsOf: entry.id.bytes)
            appendUInt32(UInt32(entry.offset), to: &out)
            appendUInt32(UInt32(entry.length), to: &out)
            appendUInt32(UInt32(entry.plaintextLength), to: &out)
        }
        return out
    }

    /// Seals a trailer: version (1) | nonce (12) | ciphertext | tag (16).
    static func sealTrailer(_ plaintext: [UInt8], metadataKey: SecureBytes) throws -> [UInt8] {
        let nonce = AES256GCM.randomNonce()
        let sealed = try AES256GCM.seal(
            plaintext, key: metadataKey, nonce: nonce, authenticating: trailerAssociatedData)
        return [version] + nonce + sealed
    }

    /// Reads the trailer of a pack, given the pack's final bytes (at least the footer and the
    /// sealed trailer). `packName` only names the pack in errors.
    public static func decodeTrailer(
        tail: [UInt8], packSize: Int, packName: String, metadataKey: SecureBytes
    ) throws -> (kind: PackKind, entries: [PackEntry]) {
        let sealedLength = try sealedTrailerLength(tail: tail, packSize: packSize, packName: packName)
        guard tail.count >= sealedLength + footerLength else {
            throw PackError(.malformedPack, "pack \(packName) is truncated: its trailer is cut off")
        }
        let sealedStart = tail.count - footerLength - sealedLength
        let sealed = Array(tail[sealedStart..<(tail.count - footerLength)])
        guard sealed.count >= 1 + AES256GCM.nonceByteCount + AES256GCM.tagByteCount else {
            throw PackError(.malformedPack, "pack \(packName) has a trailer too short to be sealed")
        }
        guard sealed[0] == version else {
            throw PackError(
                .unsupportedFormat,
                "pack \(packName) has trailer format \(sealed[0]); this build reads format \(version)")
        }
        let nonce = Array(sealed[1..<(1 + AES256GCM.nonceByteCount)])
        let body = Array(sealed[(1 + AES256GCM.nonceByteCount)...])
        let plaintext: [UInt8]
        do {
            plaintext = try AES256GCM.open(
                body, key: metadataKey, nonce: nonce, authenticating: trailerAssociatedData)
        } catch {
            throw PackError(
                .trailerAuthenticationFailed,
                "pack \(packName): trailer failed authentication (damaged, or not sealed by this store's key)",
                cause: error)
        }
        return try parseTrailer(plaintext, packSize: packSize - footerLength - sealedLength, packName: packName)
    }

    /// The length of the sealed trailer, from the footer; validates the magic and bounds.
    public static func sealedTrailerLength(tail: [UInt8], packSize: Int, packName: String) throws -> Int {
        guard tail.count >= footerLength, packSize >= footerLength else {
            throw PackError(.malformedPack, "pack \(packName) is truncated: \(packSize) bytes is shorter than a pack footer")
        }
        guard Array(tail[(tail.count - 8)...]) == magic else {
            throw PackError(.malformedPack, "pack \(packName) does not end with the pack magic (truncated or not a pack)")
        }
        let lengthStart = tail.count - footerLength
        let length = Int(readUInt32(tail, at: lengthStart))
        guard length <= packSize - footerLength else {
            throw PackError(
                .malformedPack, "pack \(packName) claims a \(length)-byte trailer but holds only \(packSize) bytes")
        }
        return length
    }

    static func parseTrailer(_ bytes: [UInt8], packSize chunkAreaSize: Int, packName: String) throws -> (
        kind: PackKind, entries: [PackEntry]
    ) {
        guard bytes.count >= 6, bytes[0] == version else {
            throw PackError(.malformedPack, "pack \(packName) has a malformed trailer header")
        }
        guard let kind = PackKind(rawValue: bytes[1]) else {
            throw PackError(.unsupportedFormat, "pack \(packName) has unknown pack kind \(bytes[1])")
        }
        let count = Int(readUInt32(bytes, at: 2))
        guard bytes.count == 6 + count * trailerEntryLength else {
            throw PackError(.malformedPack, "pack \(packName) trailer lists \(count) chunks but has \(bytes.count) bytes")
        }
        var entries = [PackEntry]()
        entries.reserveCapacity(count)
        var position = 6
        for _ in 0..<count {
            let id = ChunkID(bytes: bytes[position..<(position + ChunkID.byteCount)])!
            position += ChunkID.byteCount
            let offset = Int(readUInt32(bytes, at: position))
            let length = Int(readUInt32(bytes, at: position + 4))
            let plaintextLength = Int(readUInt32(bytes, at: position + 8))
            position += 12
            guard offset + length <= chunkAreaSize else {
                throw PackError(
                    .malformedPack, "pack \(packName) lists chunk \(id.shortDescription) past the end of its chunk area")
            }
            entries.append(PackEntry(id: id, offset: offset, length: length, plaintextLength: plaintextLength))
        }
        return (kind, entries)
    }

    static func appendUInt32(_ value: UInt32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
            | UInt32(bytes[offset + 3]) << 24
    }
}

/// Accumulates sealed chunks into one pack until it is finished. A ``PackStore`` uses one per
/// kind; sharing uses them to build packs sealed under a one-time key.
public struct PackBuilder: Sendable {
    public let kind: PackKind
    public private(set) var bytes: [UInt8]
    public private(set) var entries: [PackEntry] = []

    /// - Parameter buffer: the bytes of a pack that is stored and done with, whose memory the new
    ///   pack takes over (its contents are dropped).
    public init(kind: PackKind, capacity: Int, reusing buffer: [UInt8]? = nil) {
        self.kind = kind
        bytes = buffer ?? []
        bytes.removeAll(keepingCapacity: true)
        bytes.reserveCapacity(capacity)
    }

    public var size: Int { bytes.count }
    public var isEmpty: Bool { entries.isEmpty }

    /// Appends a sealed chunk and returns where it landed.
    @discardableResult
    public mutating func append(id: ChunkID, sealed: [UInt8], plaintextLength: Int) -> PackEntry {
        let entry = PackEntry(id: id, offset: bytes.count, length: sealed.count, plaintextLength: plaintextLength)
        bytes.append(contentsOf: sealed)
        entries.append(entry)
        return entry
    }

    /// Seals the trailer and returns the complete pack.
    public consuming func finish(metadataKey: SecureBytes) throws -> FinishedPack {
        let sealedTrailer = try PackFormat.sealTrailer(
            PackFormat.encodeTrailer(kind: kind, entries: entries), metadataKey: metadataKey)
        // Take the buffer out so appending the trailer does not copy 16 MiB (nor grow it twice).
        var packBytes = bytes
        bytes = []
        packBytes.reserveCapacity(packBytes.count + sealedTrailer.count + 4 + PackFormat.magic.count)
        packBytes.append(contentsOf: sealedTrailer)
        PackFormat.appendUInt32(UInt32(sealedTrailer.count), to: &packBytes)
        packBytes.append(contentsOf: PackFormat.magic)
        return FinishedPack(
            name: PackFormat.objectName(forSealedTrailer: sealedTrailer), kind: kind, bytes: packBytes,
            entries: entries)
    }
}

/// A complete pack, ready to be stored under its name.
public struct FinishedPack: Sendable {
    public let name: String
    public let kind: PackKind
    public let bytes: [UInt8]
    public let entries: [PackEntry]
}
