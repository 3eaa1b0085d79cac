/// A type usable as the key of a versioned map.
///
/// Map nodes compare keys as raw bytes (unsigned, lexicographic, like `memcmp`), so a conforming
/// type promises two things about ``encodeKey(into:)``:
///
/// - **Order:** for any two values, the unsigned lexicographic order of their encodings is the
///   type's natural order, and equal values have equal encodings.
/// - **Self-delimiting:** no encoding is a proper prefix of another, and ``decodeKey(from:)``
///   reads exactly the bytes that were written. This is what lets keys be concatenated into
///   compound keys (see ``CompoundKey``) whose order is component by component.
///
/// The simplest conformance composes keys that already conform:
///
/// ```swift
/// struct Version: IndexKey {
///     var major: Int, minor: Int
///     func encodeKey(into encoder: inout KeyEncoder) {
///         encoder.encode(major)
///         encoder.encode(minor)
///     }
///     static func decodeKey(from decoder: inout KeyDecoder) throws -> Version {
///         Version(major: try decoder.decode(Int.self), minor: try decoder.decode(Int.self))
///     }
/// }
/// ```
///
/// Enumerations with a raw type that is an `IndexKey` need only declare the conformance; they
/// sort by raw value.
public protocol IndexKey: Sendable {
    /// Appends this key's order-preserving, self-delimiting encoding to `encoder`.
    func encodeKey(into encoder: inout KeyEncoder)

    /// Reads one key written by ``encodeKey(into:)`` and leaves `decoder` just after it.
    ///
    /// - Throws: ``FieldError`` with code ``FieldError/Code/malformedKey`` when the bytes are not
    ///   an encoding of this type. Never traps on bad input.
    static func decodeKey(from decoder: inout KeyDecoder) throws -> Self
}

extension IndexKey {
    /// This key's encoding: the bytes a map stores and compares.
    public var encodedKey: [UInt8] {
        var encoder = KeyEncoder()
        encodeKey(into: &encoder)
        return encoder.bytes
    }

    /// Decodes a key from exactly `encodedKey`, without copying it.
    ///
    /// - Throws: ``FieldError/Code/malformedKey`` if the bytes are not one whole key of this type,
    ///   including when bytes are left over after it.
    public init(encodedKey: ArraySlice<UInt8>) throws {
        var decoder = KeyDecoder(encodedKey)
        self = try Self.decodeKey(from: &decoder)
        try decoder.finish(decoding: Self.self)
    }

    /// Decodes a key from exactly `encodedKey`, without copying it.
    public init(encodedKey: [UInt8]) throws {
        try self.init(encodedKey: encodedKey[...])
    }

    /// Decodes a key from exactly `encodedKey` (copied once when it is not an array).
    public init(encodedKey: some Collection<UInt8>) throws {
        try self.init(encodedKey: ArraySlice(encodedKey))
    }
}

/// Builds the encoding of one key or of several keys in a row (a compound key, or the prefix
/// shared by every compound key that starts with the same components).
public struct KeyEncoder: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// An empty encoder.
    public init() {
        bytes = []
    }

    /// An empty encoder with room for `capacity` bytes, to spare reallocations when the size of
    /// the keys to come is known.
    public init(reservingCapacity capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Appends the encoding of `key`.
    public mutating func encode<Key: IndexKey>(_ key: Key) {
        key.encodeKey(into: &self)
    }

    /// Appends `raw` as it is, for fixed-width encodings.
    mutating func appendRaw(_ raw: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: raw)
    }

    mutating func appendByte(_ byte: UInt8) {
        bytes.append(byte)
    }

    /// Appends `value` big-endian, so that byte order is numeric order for unsigned values.
    mutating func appendBigEndian<Integer: FixedWidthInteger>(_ value: Integer) {
        withUnsafeBytes(of: value.bigEndian) { appendRaw($0) }
    }

    /// Appends `raw` as an escaped, terminated byte string: each 0x00 becomes 0x00 0xFF and the
    /// string ends with 0x00 0x01. Bytes other than 0x00 stand for themselves, so two strings
    /// compare as their contents do; where one is a prefix of the other, the shorter one's
    /// terminator (0x00 0x01) meets either a non-zero byte or an escaped zero (0x00 0xFF) in the
    /// longer one, so the prefix sorts first whatever follows it in a compound key.
    mutating func appendByteString(_ raw: UnsafeRawBufferPointer) {
        bytes.reserveCapacity(bytes.count + raw.count + 2)
        var runStart = 0
        // Runs without zero bytes are copied in bulk; keys rarely contain zeros at all.
        while let zero = raw[runStart...].firstIndex(of: 0) {
            appendRaw(UnsafeRawBufferPointer(rebasing: raw[runStart..<zero]))
            bytes.append(0x00)
            bytes.append(ByteStringMarker.escapedZero)
            runStart = zero + 1
        }
        appendRaw(UnsafeRawBufferPointer(rebasing: raw[runStart...]))
        bytes.append(0x00)
        bytes.append(ByteStringMarker.terminator)
    }
}

/// The second byte of the two-byte sequences that start with 0x00 inside a byte string.
enum ByteStringMarker {
    /// 0x00 0x01 ends a byte string. It is the smallest pair, so a string sorts before every
    /// longer string it is a prefix of.
    static let terminator: UInt8 = 0x01
    /// 0x00 0xFF stands for one 0x00 byte of content.
    static let escapedZero: UInt8 = 0xFF
}

/// Reads keys back from an encoding, one after another.
///
/// The decoder keeps a reference to the bytes it was given, so decoding a slice of a larger
/// buffer (a key inside a tree node) copies nothing but the decoded values themselves.
public struct KeyDecoder: Sendable {
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    /// A decoder positioned at the start of `bytes`.
    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    /// A decoder positioned at the start of `bytes`.
    public init(_ bytes: [UInt8]) {
        self.init(bytes[...])
    }

    /// How many bytes are left to read.
    public var remainingCount: Int { bytes.endIndex - position }

    /// Whether every byte has been read.
    public var isAtEnd: Bool { position == bytes.endIndex }

    /// Reads one key of type `Key`.
    public mutating func decode<Key: IndexKey>(_ type: Key.Type) throws -> Key {
        try Key.decodeKey(from: &self)
    }

    /// Throws unless every byte has been read: a whole key must use all of its bytes.
    mutating func finish<Key>(decoding type: Key.Type) throws {
        guard isAtEnd else {
            throw FieldError(.malformedKey, "\(Key.self) key is followed by \(remainingCount) unexpected byte(s)")
        }
    }

    /// The error for bytes that are not a key of `type`; `problem` says what is wrong.
    func malformed<Key>(_ type: Key.Type, _ problem: String) -> FieldError {
        FieldError(.malformedKey, "\(Key.self) key: \(problem) at byte \(position - bytes.startIndex)")
    }

    /// Passes the next `count` bytes to `body` and moves past them.
    mutating func readRaw<Key, Result>(
        _ count: Int, for type: Key.Type, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result {
        guard remainingCount >= count else {
            throw malformed(type, "truncated: \(count) byte(s) needed, \(remainingCount) left")
        }
        let result = try bytes[position..<(position + count)].withUnsafeBytes(body)
        position += count
        return result
    }

    mutating func readByte<Key>(for type: Key.Type) throws -> UInt8 {
        try readRaw(1, for: type) { $0[0] }
    }

    mutating func readBigEndian<Integer: FixedWidthInteger, Key>(
        _ integer: Integer.Type, for type: Key.Type
    ) throws -> Integer {
        try readRaw(MemoryLayout<Integer>.size, for: type) {
            Integer(bigEndian: $0.loadUnaligned(as: Integer.self))
        }
    }

    /// Reads a byte string written by ``KeyEncoder/appendByteString(_:)`` and passes its
    /// unescaped contents to `body`. Contents without zero bytes (nearly all) are passed in place,
    /// so the caller's own copy is the only one.
    mutating func readByteString<Key, Result>(
        for type: Key.Type, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result {
        let start = position
        let scan = bytes[start...].withUnsafeBytes(ByteStringScan.init)
        switch scan {
        case .terminated(let length, let escapedZeros):
            position += length
            let encoded = bytes[start..<(start + length - 2)]
            if escapedZeros == 0 { return try encoded.withUnsafeBytes(body) }
            var contents = [UInt8]()
            contents.reserveCapacity(encoded.count - escapedZeros)
            var escaped = false
            for byte in encoded {
                // Each 0x00 here is followed by its 0xFF escape, which the scan checked.
                if escaped { escaped = false; continue }
                contents.append(byte)
                escaped = byte == 0
            }
            return try contents.withUnsafeBytes(body)
        case .unterminated:
            throw malformed(type, "byte string has no terminator")
        case .strayZero(let offset):
            position += offset
            throw malformed(type, "byte string has a 0x00 byte that is neither escaped nor a terminator")
        }
    }
}

/// Where an escaped byte string ends, found without copying it.
private enum ByteStringScan {
    case terminated(length: Int, escapedZeros: Int)
    case unterminated
    case strayZero(offset: Int)

    init(_ raw: UnsafeRawBufferPointer) {
        var searchFrom = 0
        var escapedZeros = 0
        while let zero = raw[searchFrom...].firstIndex(of: 0) {
            guard zero + 1 < raw.count else { break }
            switch raw[zero + 1] {
            case ByteStringMarker.terminator:
                self = .terminated(length: zero + 2, escapedZeros: escapedZeros)
                return
            case ByteStringMarker.escapedZero:
                escapedZeros += 1
                searchFrom = zero + 2
            default:
                self = .strayZero(offset: zero)
                return
            }
        }
        self = .unterminated
    }
}
