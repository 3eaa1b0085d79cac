import Foundation
import InfinityPacks

/// One reference to a byte stream of any length.
///
/// A stream is cut into data chunks; the list of their ``ChunkRef``s is itself stored as a
/// metadata stream, and so on, until one chunk remains: the root. `depth` says how many lists
/// lie between the root and the data (0: the root is the data).
///
/// Like a ``ChunkRef``, a `BlobRef` is a read capability for everything it reaches.
public struct BlobRef: Hashable, Sendable {
    public let root: ChunkRef
    public let depth: Int
    /// Length of the whole stream.
    public let length: Int

    public init(root: ChunkRef, depth: Int, length: Int) {
        self.root = root
        self.depth = depth
        self.length = length
    }

    static let tokenPrefix = "blob1:"

    /// A copyable text form, `blob1:` followed by URL-safe base64. It carries the key: share it
    /// only with whom may read the blob.
    public var token: String {
        var bytes: [UInt8] = [UInt8(depth)]
        withUnsafeBytes(of: UInt64(length).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += root.serialized
        return Self.tokenPrefix
            + Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Parses a ``token``; the error says what is wrong with it.
    public init(token: String) throws {
        guard token.hasPrefix(Self.tokenPrefix) else {
            throw ChunkError(.malformedReference, "a blob reference starts with \(Self.tokenPrefix)")
        }
        var base64 = String(token.dropFirst(Self.tokenPrefix.count))
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), data.count == 9 + ChunkRef.serializedByteCount else {
            throw ChunkError(.malformedReference, "the blob reference is damaged (wrong length or characters)")
        }
        let bytes = [UInt8](data)
        var length: UInt64 = 0
        for (shift, byte) in bytes[1..<9].enumerated() { length |= UInt64(byte) << (8 * UInt64(shift)) }
        let root = try ChunkRef(serialized: bytes[9...])
        guard length <= UInt64(Int.max), Self.isPossible(depth: Int(bytes[0]), length: Int(length), rootLength: root.length) else {
            throw ChunkError(.malformedReference, "the blob reference is damaged (impossible depth or length)")
        }
        self.init(root: root, depth: Int(bytes[0]), length: Int(length))
    }

    /// More levels of chunk lists than any stream needs: 16 levels address far more data than
    /// any store holds.
    public static let maximumDepth = 16

    /// Whether a reference with these numbers could have been made by ``ChunkStore/putBlob(read:progress:)``:
    /// a depth-0 root is the data itself, and a deeper root is one chunk of whole 72-byte
    /// ``ChunkRef``s (an empty one only for the empty stream).
    static func isPossible(depth: Int, length: Int, rootLength: Int) -> Bool {
        guard depth <= maximumDepth, rootLength <= ChunkStore.maximumChunkSize else { return false }
        if depth == 0 { return length == rootLength }
        return rootLength % ChunkRef.serializedByteCount == 0 && (rootLength > 0 || length == 0)
    }
}

// MARK: Compact binary form

extension BlobRef {
    /// The one binary form of a blob reference inside other stored data (tree values, field
    /// values): `depth (1) | varint length | root chunk key (32) | varint root length`, varints
    /// unsigned LEB128 in their shortest form. The root's id is not stored: it derives from its key.
    public var compactForm: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(compactFormByteCount)
        bytes.append(UInt8(depth))
        LEB128.append(UInt64(length), to: &bytes)
        bytes.append(contentsOf: root.key.bytes)
        LEB128.append(UInt64(root.length), to: &bytes)
        return bytes
    }

    /// The size of ``compactForm``.
    public var compactFormByteCount: Int {
        1 + LEB128.size(UInt64(length)) + ChunkKey.byteCount + LEB128.size(UInt64(root.length))
    }

    /// Reads a compact form at the start of `bytes` (more may follow it). Returns the reference and
    /// how many bytes it took, or nil when the bytes do not start with a compact form a blob
    /// could have: truncated, an over-long varint, or an impossible depth or length.
    public static func readCompactForm(from bytes: UnsafeRawBufferPointer) -> (blob: BlobRef, byteCount: Int)? {
        guard let depth = bytes.first else { return nil }
        var offset = 1
        guard let length = LEB128.read(bytes, at: &offset), bytes.count - offset >= ChunkKey.byteCount,
            let key = ChunkKey(bytes: Array(bytes[offset..<(offset + ChunkKey.byteCount)]))
        else { return nil }
        offset += ChunkKey.byteCount
        guard let rootLength = LEB128.read(bytes, at: &offset), length <= UInt64(Int.max),
            rootLength <= UInt64(ChunkStore.maximumChunkSize),
            isPossible(depth: Int(depth), length: Int(length), rootLength: Int(rootLength))
        else { return nil }
        let root = ChunkRef(id: key.chunkID, key: key, length: Int(rootLength))
        return (BlobRef(root: root, depth: Int(depth), length: Int(length)), offset)
    }

    /// Reads bytes that hold exactly one ``compactForm``.
    ///
    /// - Throws: ``ChunkError/Code/malformedReference`` when they hold anything else.
    public init(compactForm bytes: some Collection<UInt8>) throws {
        let read = Array(bytes).withUnsafeBytes { raw in Self.readCompactForm(from: raw).flatMap { $0.byteCount == raw.count ? $0.blob : nil } }
        guard let read else {
            throw ChunkError(.malformedReference, "a stored blob reference is damaged (\(bytes.count) bytes that are not one compact form)")
        }
        self = read
    }
}

extension ChunkStore {
    /// Stores a stream and returns one reference to all of it.
    ///
    /// - Parameter sizeHint: the stream's expected length, if known (see
    ///   ``putStream(kind:sizeHint:read:progress:)``).
    public func putBlob(
        sizeHint: Int? = nil, read: (UnsafeMutableRawBufferPointer) throws -> Int, progress: (Int) -> Void = { _ in }
    ) async throws -> BlobRef {
        var refs = try await putStream(kind: .data, sizeHint: sizeHint, read: read, progress: progress)
        let length = refs.reduce(0) { $0 + $1.length }
        var depth = 0
        while refs.count != 1 {
            refs = try await putStream(refs.flatMap(\.serialized), kind: .metadata)
            depth += 1
            // An empty stream has no chunks: its list is an empty chunk of its own.
            if refs.isEmpty { refs = [try await put([], kind: .metadata)] }
        }
        return BlobRef(root: refs[0], depth: depth, length: length)
    }

    /// Stores a byte array and returns one reference to all of it.
    public func putBlob(_ bytes: [UInt8]) async throws -> BlobRef {
        var reader = ArrayReader(bytes)
        return try await putBlob(sizeHint: bytes.count) { reader.read(into: $0) }
    }

    /// The data chunks of a blob, in order.
    public func chunks(of blob: BlobRef) async throws -> [ChunkRef] {
        var refs: [ChunkRef] = []
        try await forEachChunk(of: blob) { ref, level in
            if level == 0 { refs.append(ref) }
            return true
        }
        return refs
    }

    /// Visits every chunk of a blob, level by level from the root down, each level in stream order:
    /// `level` is the blob's depth for the root, 0 for data chunks. The chunk lists are read (a
    /// level at a time, verified, in parallel); the data chunks are not. `visit` returns false to
    /// end the walk there (before a list it should not read is read).
    ///
    /// - Throws: ``ChunkError/Code/integrity`` naming the blob when a list ends inside an entry or
    ///   its data chunks do not add up to the blob's length, and whatever reading a list throws.
    public func forEachChunk(of blob: BlobRef, _ visit: (ChunkRef, _ level: Int) throws -> Bool) async throws {
        struct Stop: Error {}
        guard try visit(blob.root, blob.depth) else { return }
        var lists = [blob.root]
        var total = blob.depth == 0 ? blob.root.length : 0
        for level in stride(from: blob.depth, to: 0, by: -1) {
            var next: [ChunkRef] = []
            var partial: [UInt8] = []
            do {
                try await getStream(lists) { bytes in
                    partial += bytes
                    let whole = partial.count - partial.count % ChunkRef.serializedByteCount
                    for offset in stride(from: 0, to: whole, by: ChunkRef.serializedByteCount) {
                        let ref = try ChunkRef(serialized: partial[offset..<(offset + ChunkRef.serializedByteCount)])
                        guard try visit(ref, level - 1) else { throw Stop() }
                        if level == 1 { total += ref.length } else { next.append(ref) }
                    }
                    partial.removeFirst(whole)
                }
            } catch is Stop {
                return
            }
            guard partial.isEmpty else {
                throw ChunkError(.integrity, "the chunk list at level \(level) of blob \(blob.root.id.shortDescription) has a partial entry")
            }
            lists = next
        }
        guard total == blob.length else {
            throw ChunkError(.integrity, "blob \(blob.root.id.shortDescription) lists \(total) bytes, its reference says \(blob.length)")
        }
    }

    /// Reads a whole blob in order, verifying every chunk.
    public func getBlob(_ blob: BlobRef, write: ([UInt8]) throws -> Void) async throws {
        try await getStream(try await chunks(of: blob), write: write)
    }
}

/// A blob reference in `Codable` values is its ``token``, so that app state and file entries can
/// hold streams of any length.
extension BlobRef: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        do {
            try self.init(token: try container.decode(String.self))
        } catch let error as ChunkError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(token)
    }
}
