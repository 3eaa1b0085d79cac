import InfinityCrypto
import InfinityPacks

/// The key of one chunk: a keyed hash of its plaintext under the agent's content key.
///
/// Chunk keys are capabilities that travel inside tree nodes and shares, so they are plain values;
/// the agent keys that produce them are the secrets that are zeroed on drop.
public struct ChunkKey: Hashable, Sendable {
    public static let byteCount = 32
    public let bytes: [UInt8]

    /// Creates a key from exactly 32 bytes; returns nil for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    /// The id a chunk with this key is stored under: SHA-256 over a label and the key, so the id
    /// reveals nothing of the key or the plaintext.
    public var chunkID: ChunkID {
        ChunkID(bytes: SHA256.hash(Self.idLabel + bytes))!
    }

    private static let idLabel: [UInt8] = Array("infinitydb-chunk-id-v1".utf8)
}

extension ChunkKey: CustomStringConvertible, CustomReflectable {
    /// Never the key bytes, so a key cannot leak through `print`, `dump` or a log line.
    public var description: String { "ChunkKey(…)" }
    public var customMirror: Mirror { Mirror(self, children: []) }
}

/// A reference to one chunk: its id, its key and its plaintext length.
///
/// Holding a `ChunkRef` is the right to read that chunk (and, through a tree, everything below it).
/// Treat it like a key.
public struct ChunkRef: Hashable, Sendable, CustomStringConvertible {
    /// Bytes of ``serialized``: id (32) | key (32) | length (u64 little-endian).
    public static let serializedByteCount = ChunkID.byteCount + ChunkKey.byteCount + 8

    public let id: ChunkID
    public let key: ChunkKey
    /// Length of the chunk's plaintext.
    public let length: Int

    public init(id: ChunkID, key: ChunkKey, length: Int) {
        self.id = id
        self.key = key
        self.length = length
    }

    /// A fixed-size binary form, for tree nodes and envelopes.
    public var serialized: [UInt8] {
        var out = id.bytes + key.bytes
        withUnsafeBytes(of: UInt64(length).littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// Reads the form written by ``serialized``. The id must match the key.
    public init(serialized bytes: some Collection<UInt8>) throws {
        let bytes = Array(bytes)
        guard bytes.count == Self.serializedByteCount else {
            throw ChunkError(.malformedReference, "a chunk reference is \(Self.serializedByteCount) bytes, not \(bytes.count)")
        }
        let key = ChunkKey(bytes: Array(bytes[32..<64]))!
        let id = ChunkID(bytes: bytes[0..<32])!
        guard key.chunkID == id else {
            throw ChunkError(.malformedReference, "chunk reference to \(id.shortDescription) has a key that does not match its id")
        }
        var length: UInt64 = 0
        for (shift, byte) in bytes[64..<72].enumerated() { length |= UInt64(byte) << (8 * UInt64(shift)) }
        guard length <= UInt64(Int.max) else {
            throw ChunkError(.malformedReference, "chunk reference to \(id.shortDescription) has an impossible length")
        }
        self.init(id: id, key: key, length: Int(length))
    }

    /// Names the chunk without revealing its key.
    public var description: String { "chunk \(id.shortDescription) (\(length) bytes)" }
}

/// An error from the chunk layer.
public struct ChunkError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// A sealed chunk failed verification: a flipped bit, truncation, or the wrong key.
        public static let integrity = Code(name: "integrity")
        /// A sealed chunk was written by a newer format than this build reads.
        public static let unsupportedFormat = Code(name: "unsupported format")
        /// A chunk reference could not be decoded.
        public static let malformedReference = Code(name: "malformed reference")
        /// Reading the input failed.
        public static let input = Code(name: "input")
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message) (\(cause))" }
        return message
    }
}
