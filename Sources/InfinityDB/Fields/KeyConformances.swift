import Foundation

// MARK: Byte strings

/// UTF-8 in Unicode Normalization Form C, as an escaped byte string.
///
/// Swift compares strings by canonical equivalence: `"e\u{301}" == "\u{E9}"`, and `<` orders
/// the NFC forms by Unicode scalar value. Normalizing before encoding makes equal strings one
/// key, and UTF-8 byte order is scalar order, so the encoding sorts exactly as `<` does. The
/// cost: a key decodes to the NFC form of the string that was stored (ASCII is always NFC and
/// takes a path that copies its bytes straight through).
extension String: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        let encodedASCII = utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            guard utf8.allSatisfy({ $0 < 0x80 }) else { return false }
            encoder.appendByteString(UnsafeRawBufferPointer(utf8))
            return true
        }
        if encodedASCII == true { return }
        // The standard library's NFC normalizer; public, though underscored, and the one String
        // comparison itself relies on, so the two cannot disagree.
        _nfcCodeUnits.withUnsafeBytes { encoder.appendByteString($0) }
    }

    /// Decodes any well-formed UTF-8 (invalid UTF-8 throws).
    public static func decodeKey(from decoder: inout KeyDecoder) throws -> String {
        let decoded = try decoder.readByteString(for: String.self) {
            String(validating: $0, as: UTF8.self)
        }
        guard let decoded else { throw decoder.malformed(String.self, "not valid UTF-8") }
        return decoded
    }
}

/// The bytes as an escaped byte string (0x00 becomes 0x00 0xFF, then 0x00 0x01 ends it), so
/// that shorter prefixes sort first and bytes compare unsigned.
extension Data: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        withUnsafeBytes { encoder.appendByteString($0) }
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> Data {
        try decoder.readByteString(for: Data.self) { Data($0) }
    }
}

/// Encoded as ``Foundation/Data`` is: an escaped byte string.
extension Array: IndexKey where Element == UInt8 {
    public func encodeKey(into encoder: inout KeyEncoder) {
        withUnsafeBytes { encoder.appendByteString($0) }
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> [UInt8] {
        try decoder.readByteString(for: [UInt8].self) { [UInt8]($0) }
    }
}

// MARK: Fixed width

/// One byte: 0x00 for `false`, 0x01 for `true`.
extension Bool: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        encoder.appendByte(self ? 1 : 0)
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> Bool {
        switch try decoder.readByte(for: Bool.self) {
        case 0: return false
        case 1: return true
        case let byte: throw decoder.malformed(Bool.self, "byte \(byte) is neither 0 nor 1")
        }
    }
}

/// Integers are big-endian at their full width, with the sign bit flipped for signed types so
/// that negative numbers sort before positive ones.
extension IndexKey where Self: FixedWidthInteger {
    public func encodeKey(into encoder: inout KeyEncoder) {
        var bits = Magnitude(truncatingIfNeeded: self)
        if Self.isSigned { bits ^= Magnitude(1) << (Self.bitWidth - 1) }
        encoder.appendBigEndian(bits)
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> Self {
        var bits = try decoder.readBigEndian(Magnitude.self, for: Self.self)
        if Self.isSigned { bits ^= Magnitude(1) << (Self.bitWidth - 1) }
        return Self(truncatingIfNeeded: bits)
    }
}

extension Int8: IndexKey {}
extension Int16: IndexKey {}
extension Int32: IndexKey {}
extension Int64: IndexKey {}
extension UInt8: IndexKey {}
extension UInt16: IndexKey {}
extension UInt32: IndexKey {}
extension UInt64: IndexKey {}
extension Int128: IndexKey {}
extension UInt128: IndexKey {}

/// Always 8 bytes, as `Int64`, so keys written on a 64-bit platform read the same on a 32-bit
/// one (where values out of range throw rather than truncate).
extension Int: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        Int64(self).encodeKey(into: &encoder)
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> Int {
        try decoder.decode(Int.self, storedAs: Int64.self)
    }
}

/// Always 8 bytes, as `UInt64`; see `Int`.
extension UInt: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        UInt64(self).encodeKey(into: &encoder)
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> UInt {
        try decoder.decode(UInt.self, storedAs: UInt64.self)
    }
}

extension KeyDecoder {
    fileprivate mutating func decode<Integer: FixedWidthInteger, Stored: FixedWidthInteger & IndexKey>(
        _ type: Integer.Type, storedAs stored: Stored.Type
    ) throws -> Integer {
        let wide = try Stored.decodeKey(from: &self)
        guard let value = Integer(exactly: wide) else { throw malformed(Integer.self, "\(wide) is out of range") }
        return value
    }
}

/// The 16 bytes of `uuid` in order. Foundation's `UUID.<` compares those bytes from the first
/// (the tests check that the two orders agree).
extension UUID: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        withUnsafeBytes(of: uuid) { encoder.appendRaw($0) }
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> UUID {
        var raw: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        try decoder.readRaw(MemoryLayout<uuid_t>.size, for: UUID.self) { bytes in
            withUnsafeMutableBytes(of: &raw) { $0.copyMemory(from: bytes) }
        }
        return UUID(uuid: raw)
    }
}

// MARK: Floating point

/// The floating-point types whose IEEE 754 bit pattern the key encoding transforms.
protocol OrderedBitPattern: BinaryFloatingPoint {
    associatedtype Bits: FixedWidthInteger & UnsignedInteger
    var bitPattern: Bits { get }
    init(bitPattern: Bits)
}

extension Double: OrderedBitPattern {}
extension Float: OrderedBitPattern {}

/// Big-endian IEEE 754 bits, transformed so that byte order is numeric order: a positive number
/// gets its sign bit set, a negative one has every bit inverted (larger magnitudes then sort
/// lower). The order is −∞ < negative numbers < 0 < positive numbers < +∞ < NaN.
///
/// Two values that `==` calls equal must be one key, and NaN must sort somewhere, so encoding
/// canonicalizes: −0.0 is stored as +0.0, and every NaN (whatever its sign or payload) as the
/// positive quiet `.nan`, after +∞. Decoding returns those canonical values and rejects the
/// bytes of −0.0 and of any other NaN, which no encoder writes.
extension Double: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        encodeOrderedBits(into: &encoder)
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> Double {
        try decodeOrderedBits(from: &decoder)
    }
}

/// Encoded as `Double` is, at 4 bytes.
extension Float: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        encodeOrderedBits(into: &encoder)
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> Float {
        try decodeOrderedBits(from: &decoder)
    }
}

extension OrderedBitPattern {
    fileprivate func encodeOrderedBits(into encoder: inout KeyEncoder) {
        let canonical: Self = isNaN ? .nan : (self == 0 ? 0 : self)
        let bits = canonical.bitPattern
        let signBit = Bits(1) << (Bits.bitWidth - 1)
        encoder.appendBigEndian(bits & signBit != 0 ? ~bits : bits | signBit)
    }

    fileprivate static func decodeOrderedBits(from decoder: inout KeyDecoder) throws -> Self {
        let ordered = try decoder.readBigEndian(Bits.self, for: Self.self)
        let signBit = Bits(1) << (Bits.bitWidth - 1)
        let value = Self(bitPattern: ordered & signBit != 0 ? ordered ^ signBit : ~ordered)
        if value.isNaN, value.bitPattern != Self.nan.bitPattern {
            throw decoder.malformed(Self.self, "NaN with a sign or payload other than the canonical one")
        }
        if value == 0, value.sign == .minus {
            throw decoder.malformed(Self.self, "negative zero, which is stored as positive zero")
        }
        return value
    }
}

/// The `Double` key of `timeIntervalSinceReferenceDate`, the one number a `Date` holds and
/// compares by. That keeps every date exact (including `distantPast` and `distantFuture`,
/// which 64-bit nanoseconds since 1970 cannot reach) and the order exactly `Date`'s own.
/// −0.0 and NaN are canonicalized as for `Double`.
extension Date: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        timeIntervalSinceReferenceDate.encodeKey(into: &encoder)
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> Date {
        Date(timeIntervalSinceReferenceDate: try Double.decodeKey(from: &decoder))
    }
}

// MARK: Raw values

/// A `RawRepresentable` type whose raw value is a key is a key too, encoded as its raw value, so
/// `enum Status: Int, IndexKey { … }` needs no code. It sorts by raw value, which is declaration
/// order only when the raw values ascend with it.
extension IndexKey where Self: RawRepresentable, RawValue: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        rawValue.encodeKey(into: &encoder)
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> Self {
        let rawValue = try RawValue.decodeKey(from: &decoder)
        guard let value = Self(rawValue: rawValue) else {
            throw decoder.malformed(Self.self, "no value has the raw value \(rawValue)")
        }
        return value
    }
}
