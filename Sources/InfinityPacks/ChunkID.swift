import InfinityCrypto

/// The name of a sealed chunk in a store: 32 bytes derived one-way from the chunk's key.
///
/// Knowing an id lets a store find a chunk, never read it: reading needs the key, which only a
/// ``ChunkRef``-holder has.
public struct ChunkID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let byteCount = 32

    // Four words rather than an array: ids are hashed and compared in hot paths.
    private let w0, w1, w2, w3: UInt64

    /// Ids are SHA-256 outputs: one word of them is as good a hash input as four (finding many
    /// ids that share it would take 2^64 hashes each).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(w0)
    }

    /// Creates an id from exactly 32 bytes; returns nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        let loaded: (UInt64, UInt64, UInt64, UInt64)? = bytes.withContiguousStorageIfAvailable { buffer in
            let raw = UnsafeRawBufferPointer(buffer)
            return (
                UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
        }
        if let loaded {
            (w0, w1, w2, w3) = loaded
            return
        }
        var words: [UInt64] = [0, 0, 0, 0]
        for (index, byte) in bytes.enumerated() {
            words[index / 8] = words[index / 8] << 8 | UInt64(byte)
        }
        (w0, w1, w2, w3) = (words[0], words[1], words[2], words[3])
    }

    /// Parses the 64-character hex form printed by ``description``.
    public init?(hex: String) {
        guard let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    /// The 32 bytes, big-endian word by word (so byte order and ``Comparable`` order agree).
    public var bytes: [UInt8] {
        var result = [UInt8]()
        result.reserveCapacity(Self.byteCount)
        for word in [w0, w1, w2, w3] {
            for shift in stride(from: 56, through: 0, by: -8) {
                result.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return result
    }

    public var description: String { Hex.encode(bytes) }

    /// The first 8 bytes as a big-endian number: ordering ids by it orders them by their bytes.
    var leadingWord: UInt64 { w0 }

    /// The first 12 hex digits, enough to name a chunk in a message.
    public var shortDescription: String { String(description.prefix(12)) }

    public static func < (lhs: ChunkID, rhs: ChunkID) -> Bool {
        (lhs.w0, lhs.w1, lhs.w2, lhs.w3) < (rhs.w0, rhs.w1, rhs.w2, rhs.w3)
    }
}
