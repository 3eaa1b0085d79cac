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
        guard bytes[0] <= 16, length <= UInt64(Int.max) else {
            throw ChunkError(.malformedReference, "the blob reference is damaged (impossible depth or length)")
        }
        self.init(root: try ChunkRef(serialized: bytes[9...]), depth: Int(bytes[0]), length: Int(length))
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
        var refs = [blob.root]
        for level in 0..<blob.depth {
            var listBytes: [UInt8] = []
            try await getStream(refs) { listBytes += $0 }
            guard listBytes.count % ChunkRef.serializedByteCount == 0 else {
                throw ChunkError(
                    .integrity,
                    "the chunk list at level \(blob.depth - level) of blob \(blob.root.id.shortDescription) has a partial entry")
            }
            refs = try stride(from: 0, to: listBytes.count, by: ChunkRef.serializedByteCount).map {
                try ChunkRef(serialized: listBytes[$0..<($0 + ChunkRef.serializedByteCount)])
            }
        }
        let total = refs.reduce(0) { $0 + $1.length }
        guard total == blob.length else {
            throw ChunkError(.integrity, "blob \(blob.root.id.shortDescription) lists \(total) bytes, its reference says \(blob.length)")
        }
        return refs
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
