import Foundation
import InfinityChunks

/// The compact binary format ``ValueCoder`` uses for `Codable` types that have no raw form.
///
/// ```
/// encoding := version value            version is 0x01
/// value    := 0x00                     nil
///           | 0x01 | 0x02              false | true
///           | 0x03 varint              signed integer, zigzag (0 → 0, −1 → 1, 1 → 2, …)
///           | 0x04 varint              unsigned integer (both up to 128 bits)
///           | 0x05 b32 | 0x06 b64      Float | Double, IEEE 754 bits, little-endian; a Date
///                                      is the Double of its timeIntervalSinceReferenceDate
///           | 0x07 varint utf8         String: byte count, then UTF-8
///           | 0x08 varint bytes        Data, [UInt8] and UUID: byte count, then the bytes
///           | 0x09 varint varint value*          unkeyed: element count, body size, elements
///           | 0x0A varint varint (varint utf8 value)*   keyed: entry count, body size, entries
///           | 0x0B blob                ``BlobRef``: its compact form (``BlobRef/compactForm``)
/// varint   := unsigned LEB128, shortest form
/// ```
///
/// The format is self-describing so a keyed container can find its entries, and every container
/// states its body size so skipping a value never walks inside it. That is also what lets the
/// store find every blob reference in a value without knowing its type
/// (``BinaryValueFormat/forEachBlobReference(in:_:)``).
///
/// Determinism: equal values give equal bytes. Keyed entries are sorted by the UTF-8 bytes of
/// their keys (a duplicate key keeps the value written last), which removes the random iteration
/// order of `[String: X]` and `[Int: X]`; dictionaries with other key types (written as
/// alternating keys and values) are sorted by the encoded key, and sets by the encoded element.
/// Decoding accepts only that canonical form: keys out of order, over-long varints or bytes after
/// the value are errors.
enum BinaryValueFormat {
    /// The leading byte of every encoding in this format; a decoder rejects any other.
    static let version: UInt8 = 1

    /// How deeply values and containers may nest. Decoding recurses once per level, so hostile
    /// input must not choose the depth; encoding enforces the same limit so that everything
    /// written can be read back. At 128 levels a debug build uses about 220 KiB of stack (half of
    /// that optimized), safe on the 512 KiB stacks of secondary threads.
    static let maximumDepth = 128
}

/// The first byte of each value.
enum BinaryTag: UInt8 {
    case null = 0x00
    case falseValue = 0x01
    case trueValue = 0x02
    case signed = 0x03
    case unsigned = 0x04
    case float = 0x05
    case double = 0x06
    case string = 0x07
    case bytes = 0x08
    case unkeyed = 0x09
    case keyed = 0x0A
    case blobReference = 0x0B

    /// What a type-mismatch message calls a value with this tag.
    var name: String {
        switch self {
        case .null: "nil"
        case .falseValue, .trueValue: "a Bool"
        case .signed: "a signed integer"
        case .unsigned: "an unsigned integer"
        case .float: "a Float"
        case .double: "a Double"
        case .string: "a string"
        case .bytes: "a byte string"
        case .unkeyed: "an unkeyed container"
        case .keyed: "a keyed container"
        case .blobReference: "a blob reference"
        }
    }
}

// MARK: Types with a form of their own

/// Types the value coders write in a raw or primitive form instead of through their own
/// `Codable` implementation: the primitives (so that generic `encode<T>` calls on them skip a
/// nested encoder), `Data`, `[UInt8]`, `UUID` and `Date`, whose own implementations write
/// one element per byte, a 36-character string, or need a nested encoder for one `Double`, and
/// `BlobRef`, whose own implementation writes a token string the store could not tell from text.
enum SpecialType {
    case data, byteArray, uuid, date, string, bool, float, double, blobReference
    case integer(any CodableInteger.Type)

    /// Cached because `[UInt8]` is generic: naming its metadata costs a runtime lookup.
    private static let byteArrayIdentifier = ObjectIdentifier([UInt8].self)

    /// Identifies `type` by exact identity (a few pointer comparisons), or nil for other types.
    init?(_ type: Any.Type) {
        switch ObjectIdentifier(type) {
        case ObjectIdentifier(String.self): self = .string
        case ObjectIdentifier(Int.self): self = .integer(Int.self)
        case ObjectIdentifier(Double.self): self = .double
        case ObjectIdentifier(Bool.self): self = .bool
        case ObjectIdentifier(Data.self): self = .data
        case Self.byteArrayIdentifier: self = .byteArray
        case ObjectIdentifier(UUID.self): self = .uuid
        case ObjectIdentifier(Date.self): self = .date
        case ObjectIdentifier(BlobRef.self): self = .blobReference
        case ObjectIdentifier(Float.self): self = .float
        case ObjectIdentifier(Int64.self): self = .integer(Int64.self)
        case ObjectIdentifier(UInt64.self): self = .integer(UInt64.self)
        case ObjectIdentifier(Int32.self): self = .integer(Int32.self)
        case ObjectIdentifier(UInt32.self): self = .integer(UInt32.self)
        case ObjectIdentifier(UInt8.self): self = .integer(UInt8.self)
        case ObjectIdentifier(UInt.self): self = .integer(UInt.self)
        case ObjectIdentifier(Int16.self): self = .integer(Int16.self)
        case ObjectIdentifier(UInt16.self): self = .integer(UInt16.self)
        case ObjectIdentifier(Int8.self): self = .integer(Int8.self)
        case ObjectIdentifier(Int128.self): self = .integer(Int128.self)
        case ObjectIdentifier(UInt128.self): self = .integer(UInt128.self)
        default: return nil
        }
    }
}

/// The integer types with a form of their own. The conversions are protocol requirements so that
/// each conformance gets code specialized for its type: ``SpecialType`` holds the metatype as an
/// existential, and generic code opened on it would otherwise run unspecialized (instantiating
/// generic metadata) for every value.
protocol CodableInteger: FixedWidthInteger, Sendable {
    static func encodedNode(_ value: Self) -> EncodedNode
    static func decode(_ range: ValueRange, in input: DecodingInput) throws(DecodingFailure) -> Self
    /// Little-endian at the type's width, except `Int` and `UInt`, always stored in 8 bytes so
    /// that values written on a 64-bit platform read back on a 32-bit one.
    static func rawEncode(_ value: Self) -> [UInt8]
    static func rawDecode(_ raw: UnsafeRawBufferPointer) throws -> Self
}

extension CodableInteger {
    static func encodedNode(_ value: Self) -> EncodedNode {
        EncodedNode(integer: value)
    }

    static func decode(_ range: ValueRange, in input: DecodingInput) throws(DecodingFailure) -> Self {
        try input.integer(range, as: Self.self)
    }

    static func rawEncode(_ value: Self) -> [UInt8] {
        if Self.self == Int.self { return littleEndianBytes(Int64(value)) }
        if Self.self == UInt.self { return littleEndianBytes(UInt64(value)) }
        return littleEndianBytes(value)
    }

    static func rawDecode(_ raw: UnsafeRawBufferPointer) throws -> Self {
        if Self.self == Int.self { return try exactly(readLittleEndian(Int64.self, raw, for: Self.self)) }
        if Self.self == UInt.self { return try exactly(readLittleEndian(UInt64.self, raw, for: Self.self)) }
        return try readLittleEndian(Self.self, raw, for: Self.self)
    }

    private static func exactly(_ stored: some FixedWidthInteger) throws -> Self {
        guard let value = Self(exactly: stored) else {
            throw FieldError(.malformedValue, "\(Self.self) value \(stored) is out of range")
        }
        return value
    }
}

extension Int: CodableInteger {}
extension Int8: CodableInteger {}
extension Int16: CodableInteger {}
extension Int32: CodableInteger {}
extension Int64: CodableInteger {}
extension Int128: CodableInteger {}
extension UInt: CodableInteger {}
extension UInt8: CodableInteger {}
extension UInt16: CodableInteger {}
extension UInt32: CodableInteger {}
extension UInt64: CodableInteger {}
extension UInt128: CodableInteger {}

func littleEndianBytes<Integer: FixedWidthInteger>(_ value: Integer) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { [UInt8]($0) }
}

/// Reads a raw fixed-width value, which must be exactly the size of `Integer`.
func readLittleEndian<Integer: FixedWidthInteger>(
    _ type: Integer.Type, _ raw: UnsafeRawBufferPointer, for value: Any.Type
) throws -> Integer {
    guard raw.count == MemoryLayout<Integer>.size else {
        throw FieldError(.malformedValue, "\(value) value has \(raw.count) byte(s), not \(MemoryLayout<Integer>.size)")
    }
    return Integer(littleEndian: raw.loadUnaligned(as: Integer.self))
}

/// Reinterprets `value` as `type` when the caller has established that they are the same type
/// (by ``SpecialType`` or a metatype comparison). That is what makes the cast a no-op rather
/// than a runtime dynamic cast on hot paths.
@inline(__always)
func reinterpret<Source, Target>(_ value: Source, as type: Target.Type) -> Target {
    unsafeBitCast(value, to: Target.self)
}

// MARK: Varints

enum Varint {
    /// How many bytes the LEB128 form of `value` takes.
    static func size<Integer: FixedWidthInteger & UnsignedInteger>(_ value: Integer) -> Int {
        max(1, (Integer.bitWidth - value.leadingZeroBitCount + 6) / 7)
    }

    static func zigzag<Integer: FixedWidthInteger & SignedInteger>(_ value: Integer) -> Integer.Magnitude {
        Integer.Magnitude(truncatingIfNeeded: (value << 1) ^ (value >> (Integer.bitWidth - 1)))
    }

    static func unzigzag<Magnitude: FixedWidthInteger & UnsignedInteger>(_ value: Magnitude) -> Magnitude {
        (value >> 1) ^ (0 &- (value & 1))
    }
}

/// Writes into a buffer sized exactly beforehand, so no write needs a capacity check (the
/// buffer's own bounds checks still run in debug builds).
struct ByteWriter {
    private let buffer: UnsafeMutableRawBufferPointer
    private(set) var offset = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
    }

    mutating func byte(_ value: UInt8) {
        buffer[offset] = value
        offset += 1
    }

    mutating func tag(_ tag: BinaryTag) {
        byte(tag.rawValue)
    }

    mutating func varint<Integer: FixedWidthInteger & UnsignedInteger>(_ value: Integer) {
        var rest = value
        while rest >= 0x80 {
            byte(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        byte(UInt8(truncatingIfNeeded: rest))
    }

    mutating func littleEndian<Integer: FixedWidthInteger>(_ value: Integer) {
        withUnsafeBytes(of: value.littleEndian) { raw($0) }
    }

    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + bytes.count)]).copyMemory(from: bytes)
        offset += bytes.count
    }
}

// MARK: Coding paths

/// One step of a coding path, linked to its parent, so nesting costs one small allocation and the
/// `[CodingKey]` array is built only when asked for (error messages, mostly).
final class CodingPathNode {
    let key: any CodingKey
    let parent: CodingPathNode?
    let depth: Int

    init(_ key: any CodingKey, parent: CodingPathNode?) {
        self.key = key
        self.parent = parent
        depth = (parent?.depth ?? 0) + 1
    }

    static func path(to node: CodingPathNode?) -> [any CodingKey] {
        var keys: [any CodingKey] = []
        var next = node
        while let current = next {
            keys.append(current.key)
            next = current.parent
        }
        return keys.reversed()
    }
}

/// The key of an element of an unkeyed container, and the `super` key. An enum rather than a
/// struct with a string so that making one per element allocates nothing.
enum BinaryCodingKey: CodingKey {
    case index(Int)
    case superKey

    init?(stringValue: String) {
        guard stringValue == "super" else { return nil }
        self = .superKey
    }

    init?(intValue: Int) {
        self = .index(intValue)
    }

    var stringValue: String {
        switch self {
        case .index(let index): "Index \(index)"
        case .superKey: "super"
        }
    }

    var intValue: Int? {
        switch self {
        case .index(let index): index
        case .superKey: nil
        }
    }
}

/// Compares two byte ranges as unsigned bytes, like `memcmp` followed by the lengths.
func compareBytes(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Int {
    let common = min(left.count, right.count)
    if common > 0, let leftBase = left.baseAddress, let rightBase = right.baseAddress {
        let order = memcmp(leftBase, rightBase, common)
        if order != 0 { return Int(order) }
    }
    return left.count - right.count
}
