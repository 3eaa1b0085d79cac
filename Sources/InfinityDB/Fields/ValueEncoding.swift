import Foundation

/// Encodes and decodes the values of a field (`VersionedMap` values, `List` elements,
/// `Serialized` contents) to compact, deterministic bytes.
///
/// Equal values always encode to equal bytes, because stored values are deduplicated and diffed
/// by their bytes. Two encodings are used, chosen once from `Value` when the coder is made:
///
/// - **Raw**, for `Data`, `[UInt8]`, `String` (its UTF-8, as given: not normalized), `Bool` (one
///   byte), the fixed-width integers (little-endian at their width; `Int` and `UInt` always 8
///   bytes), `Double` and `Float` (IEEE 754 bits, little-endian, so −0.0 and NaN payloads survive),
///   `UUID` (its 16 bytes) and `Date` (the `Double` bits of `timeIntervalSinceReferenceDate`).
///   The bytes are the value and nothing else; decoding checks the length (and UTF-8).
/// - **Binary**, for every other `Codable` type: a self-describing format with a leading version
///   byte, compact integers, blob references (``BlobRef``, also on its own) in a form the store
///   finds without knowing the type, and keyed entries sorted by key so that dictionaries encode
///   the same whatever their iteration order. Sets, and dictionaries keyed by other types, are sorted by
///   their encoded elements and keys. Nesting is limited to 128 levels.
///
/// Decoding never traps and never allocates more than the input justifies: truncated, damaged or
/// mistyped bytes throw ``FieldError``.
public struct ValueCoder<Value: Codable & Sendable>: Sendable {
    private let raw: RawValueCoding<Value>?
    /// Whether `Value` reads its own bytes (``DirectlyDecodable``), found once, not per value.
    private let decodesDirectly: Bool

    /// A coder for `Value`.
    public init() {
        raw = RawValueCoding(Value.self)
        decodesDirectly = Value.self is any DirectlyDecodable.Type
    }

    /// Whether values are written in the self-describing binary format (rather than as raw bytes).
    var usesBinaryFormat: Bool { raw == nil }

    /// The encoding of `value`.
    ///
    /// - Throws: ``FieldError`` with code ``FieldError/Code/unencodableValue`` when the value's
    ///   `encode(to:)` throws an `EncodingError`, misuses the encoder or nests too deeply; other
    ///   errors its `encode(to:)` throws are passed on as they are.
    public func encode(_ value: Value) throws -> [UInt8] {
        if let raw { return raw.encode(value) }
        do {
            return try BinaryValueEncoding.encode(value)
        } catch let error as EncodingError {
            throw FieldError(.unencodableValue, "cannot encode a value of type \(Value.self)", cause: error)
        }
    }

    /// Decodes a value from `bytes`, in place: the bytes may be part of a larger buffer.
    ///
    /// - Throws: ``FieldError`` with code ``FieldError/Code/malformedValue`` (its cause holds the
    ///   `DecodingError` with the coding path) when the bytes are not an encoding of `Value`, or
    ///   ``FieldError/Code/unsupportedFormat`` for a newer format version. Errors that `Value`'s
    ///   own `init(from:)` throws, other than `DecodingError`, are passed on as they are.
    public func decode(_ bytes: UnsafeRawBufferPointer) throws -> Value {
        if let raw { return try raw.decode(bytes) }
        if let version = bytes.first, version > BinaryValueFormat.version {
            throw FieldError(
                .unsupportedFormat,
                "\(Value.self) value is in format version \(version); this build reads up to \(BinaryValueFormat.version)"
            )
        }
        if decodesDirectly, let value = Self.decodeDirectly(bytes) { return value }
        do {
            return try BinaryValueDecoding.decode(Value.self, from: bytes)
        } catch let error as DecodingError {
            throw FieldError(.malformedValue, "cannot decode a value of type \(Value.self) from \(bytes.count) byte(s)", cause: error)
        }
    }

    /// Decodes a value from `bytes` (an array, an array slice, `Data`…), reading contiguous
    /// storage in place and copying other collections once.
    public func decode(_ bytes: some Collection<UInt8>) throws -> Value {
        if let value = try bytes.withContiguousStorageIfAvailable({ try decode(UnsafeRawBufferPointer($0)) }) {
            return value
        }
        return try Array(bytes).withUnsafeBytes { try decode($0) }
    }
}

/// The raw encoding of one of the types ``SpecialType`` names: encode and decode functions chosen
/// once, so that each call is a direct conversion without a dynamic cast.
private struct RawValueCoding<Value: Sendable>: Sendable {
    let encode: @Sendable (Value) -> [UInt8]
    let decode: @Sendable (UnsafeRawBufferPointer) throws -> Value

    init?(_ type: Value.Type) {
        guard let special = SpecialType(Value.self) else { return nil }
        switch special {
        case .data:
            // Copied through its bytes: `[UInt8](data)` would go byte by byte through its iterator.
            self.init(Data.self, encode: { data in data.withUnsafeBytes { [UInt8]($0) } }, decode: { Data($0) })
        case .byteArray:
            self.init([UInt8].self, encode: { $0 }, decode: { [UInt8]($0) })
        case .string:
            self.init(String.self, encode: { [UInt8]($0.utf8) }) { raw in
                guard let string = String(validating: raw, as: UTF8.self) else {
                    throw FieldError(.malformedValue, "String value is not valid UTF-8")
                }
                return string
            }
        case .bool:
            self.init(Bool.self, encode: { [$0 ? 1 : 0] }) { raw in
                let byte = try readLittleEndian(UInt8.self, raw, for: Bool.self)
                guard byte <= 1 else { throw FieldError(.malformedValue, "Bool value is byte \(byte), not 0 or 1") }
                return byte == 1
            }
        case .double:
            self.init(Double.self, encode: { littleEndianBytes($0.bitPattern) }) {
                Double(bitPattern: try readLittleEndian(UInt64.self, $0, for: Double.self))
            }
        case .float:
            self.init(Float.self, encode: { littleEndianBytes($0.bitPattern) }) {
                Float(bitPattern: try readLittleEndian(UInt32.self, $0, for: Float.self))
            }
        case .date:
            self.init(Date.self, encode: { littleEndianBytes($0.timeIntervalSinceReferenceDate.bitPattern) }) {
                Date(timeIntervalSinceReferenceDate: Double(bitPattern: try readLittleEndian(UInt64.self, $0, for: Date.self)))
            }
        case .uuid:
            self.init(UUID.self, encode: { uuid in withUnsafeBytes(of: uuid.uuid) { [UInt8]($0) } }) { raw in
                guard raw.count == MemoryLayout<uuid_t>.size else {
                    throw FieldError(.malformedValue, "UUID value has \(raw.count) bytes, not 16")
                }
                var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: raw) }
                return UUID(uuid: uuid)
            }
        case .integer(let integerType):
            self = Self.integer(integerType)
        case .blobReference:
            // In the binary format, so that the store can find the reference (raw bytes say nothing of what they hold).
            return nil
        }
    }

    /// Wraps functions on `Raw`, which is `Value` (``SpecialType`` matched it exactly).
    private init<Raw>(
        _ type: Raw.Type,
        encode: @escaping @Sendable (Raw) -> [UInt8],
        decode: @escaping @Sendable (UnsafeRawBufferPointer) throws -> Raw
    ) {
        self.encode = { encode(reinterpret($0, as: Raw.self)) }
        self.decode = { reinterpret(try decode($0), as: Value.self) }
    }

    private static func integer<Integer: CodableInteger>(_ type: Integer.Type) -> RawValueCoding {
        RawValueCoding(Integer.self, encode: Integer.rawEncode, decode: Integer.rawDecode)
    }
}
