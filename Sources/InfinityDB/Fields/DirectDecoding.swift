import InfinityChunks

/// A value type that reads its own encoding in the binary format (see ``ValueCoder``), for
/// values decoded by the tens of thousands on hot paths, such as a snapshot's entries, where
/// `Codable`'s generic containers cost more than the bytes.
///
/// Only a fast path: the value must still be `Codable`, and its direct reading must give the
/// same value its `init(from:)` would. Whenever the bytes are not exactly the canonical form
/// the type expects, it returns nil and ``ValueCoder`` decodes them through `Codable`, which
/// gives the value or the error as before.
public protocol DirectlyDecodable {
    /// The value in the bytes `reader` reads, or nil to leave them to `Codable`.
    static func decodeDirectly(_ reader: inout BinaryValueReader) -> Self?
}

/// Reads one value, or one container's entries, in the binary format. Every read checks bounds,
/// shortest-form numbers and tags, and returns nil on anything else.
public struct BinaryValueReader {
    private let bytes: UnsafeRawBufferPointer
    private var cursor: Int
    private let end: Int
    /// Entries left in the keyed or unkeyed container this reader walks (nil: a single value).
    private var remaining: Int?
    /// The last key read in a keyed container, so keys are checked to be in canonical order.
    private var lastKey: UnsafeRawBufferPointer?

    init(bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, entries: Int? = nil) {
        self.bytes = bytes
        cursor = start
        self.end = end
        remaining = entries
    }

    /// Whether everything was read: the whole value, or every entry of the container.
    public var isComplete: Bool { cursor == end && (remaining ?? 0) == 0 }

    private mutating func tag(_ expected: BinaryTag) -> Bool {
        guard cursor < end, bytes[cursor] == expected.rawValue else { return false }
        cursor += 1
        return true
    }

    private mutating func varint() -> UInt64? {
        LEB128.read(UnsafeRawBufferPointer(rebasing: bytes[..<end]), at: &cursor)
    }

    /// An unsigned integer (tag 0x04) that fits in `Integer`.
    public mutating func unsigned<Integer: FixedWidthInteger & UnsignedInteger>(_ type: Integer.Type = Integer.self) -> Integer? {
        guard tag(.unsigned), let value = varint() else { return nil }
        return Integer(exactly: value)
    }

    /// A signed integer (tag 0x03, zigzag) that fits in `Integer`.
    public mutating func signed<Integer: FixedWidthInteger & SignedInteger>(_ type: Integer.Type = Integer.self) -> Integer? {
        guard tag(.signed), let value = varint() else { return nil }
        return Integer(exactly: Int64(bitPattern: Varint.unzigzag(value)))
    }

    /// A byte string (tag 0x08): `Data`, `[UInt8]`.
    public mutating func byteString() -> [UInt8]? {
        guard tag(.bytes), let count = varint(), count <= UInt64(end - cursor) else { return nil }
        let start = cursor
        cursor += Int(count)
        return Array(bytes[start..<cursor])
    }

    /// A ``BlobRef`` (tag 0x0B).
    public mutating func blobReference() -> BlobRef? {
        guard tag(.blobReference),
            let read = BlobRef.readCompactForm(from: UnsafeRawBufferPointer(rebasing: bytes[cursor..<end]))
        else { return nil }
        cursor += read.byteCount
        return read.blob
    }

    /// A keyed container (tag 0x0A): a reader of its entries, through ``nextKey()`` and a value
    /// read after each. This reader moves past the whole container.
    public mutating func keyedContainer() -> BinaryValueReader? {
        container(.keyed)
    }

    /// An unkeyed container (tag 0x09): its element count and a reader of its elements.
    public mutating func unkeyedContainer() -> (count: Int, elements: BinaryValueReader)? {
        guard let elements = container(.unkeyed) else { return nil }
        return (elements.remaining ?? 0, elements)
    }

    private mutating func container(_ kind: BinaryTag) -> BinaryValueReader? {
        guard tag(kind), let count = varint(), let size = varint(), size <= UInt64(end - cursor), count <= size else { return nil }
        let body = BinaryValueReader(bytes: bytes, from: cursor, to: cursor + Int(size), entries: Int(count))
        cursor += Int(size)
        return body
    }

    /// In a keyed container: the next entry's key, in canonical (strictly rising) order, or nil
    /// when there is none or it is out of order.
    public mutating func nextKey() -> UnsafeRawBufferPointer? {
        guard let left = remaining, left > 0, let count = varint(), count <= UInt64(end - cursor) else { return nil }
        let key = UnsafeRawBufferPointer(rebasing: bytes[cursor..<(cursor + Int(count))])
        if let lastKey, !lastKey.lexicographicallyPrecedes(key) { return nil }
        cursor += Int(count)
        lastKey = key
        remaining = left - 1
        return key
    }

    /// In an unkeyed container: counts one element read (returns false when there is none left).
    public mutating func nextElement() -> Bool {
        guard let left = remaining, left > 0 else { return false }
        remaining = left - 1
        return true
    }
}

extension ValueCoder {
    /// The value a ``DirectlyDecodable`` type reads from `bytes` (version byte first), or nil.
    static func decodeDirectly(_ bytes: UnsafeRawBufferPointer) -> Value? {
        guard let type = Value.self as? any DirectlyDecodable.Type, bytes.first == BinaryValueFormat.version else { return nil }
        var reader = BinaryValueReader(bytes: bytes, from: 1, to: bytes.count)
        guard let value = type.decodeDirectly(&reader), reader.isComplete else { return nil }
        return value as? Value
    }
}
