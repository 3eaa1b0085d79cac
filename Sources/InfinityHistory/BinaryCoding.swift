import Foundation

/// Builds the compact binary forms of this layer: bytes, LEB128 varints and length-prefixed
/// fields.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    mutating func append(_ byte: UInt8) {
        bytes.append(byte)
    }

    mutating func append(contentsOf other: some Sequence<UInt8>) {
        bytes.append(contentsOf: other)
    }

    /// Unsigned LEB128: seven bits a byte, least significant first, high bit set on all but
    /// the last. Always the shortest form, which ``ByteReader/varint(_:)`` insists on, so that
    /// one value has exactly one encoding.
    mutating func appendVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// A signed value zigzag-mapped (0, -1, 1, -2 … → 0, 1, 2, 3 …) so small magnitudes of
    /// either sign stay short.
    mutating func appendSignedVarint(_ value: Int64) {
        appendVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// A varint byte count followed by the bytes.
    mutating func appendLengthPrefixed(_ field: some Collection<UInt8>) {
        appendVarint(UInt64(field.count))
        bytes.append(contentsOf: field)
    }
}

/// Reads what ``ByteWriter`` wrote, checking every bound: malformed input gives a
/// ``HistoryError/Code/corrupt`` error naming the object and the field, never a trap.
struct ByteReader {
    let bytes: [UInt8]
    /// Names the object being read in errors, e.g. "commit 0123456789ab".
    let subject: String
    private(set) var offset = 0

    init(_ bytes: [UInt8], subject: String) {
        self.bytes = bytes
        self.subject = subject
    }

    var isAtEnd: Bool { offset == bytes.count }
    var remainingCount: Int { bytes.count - offset }

    func corrupt(_ problem: String) -> HistoryError {
        HistoryError(.corrupt, "\(subject) is damaged: \(problem)")
    }

    mutating func byte(_ field: String) throws -> UInt8 {
        guard offset < bytes.count else { throw truncated(field) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func bytes(count: Int, _ field: String) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remainingCount else { throw truncated(field) }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    /// An unsigned LEB128 value in its shortest form; longer forms and values past 64 bits
    /// are refused.
    mutating func varint(_ field: String) throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try self.byte(field)
            // The tenth byte may carry only the top bit of a 64-bit value, and must be the last.
            guard shift < 63 || byte <= 1 else { throw corrupt("\(field) does not fit in 64 bits") }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                guard byte != 0 || shift == 0 else { throw corrupt("\(field) is not in its shortest encoding") }
                return value
            }
            shift += 7
        }
    }

    mutating func signedVarint(_ field: String) throws -> Int64 {
        let zigzag = try varint(field)
        return Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1)
    }

    /// A varint count of at most `maximum`.
    mutating func count(_ field: String, maximum: Int) throws -> Int {
        let value = try varint(field)
        guard value <= UInt64(maximum) else { throw corrupt("\(field) is \(value), more than the limit of \(maximum)") }
        return Int(value)
    }

    /// A length-prefixed field of at most `maximum` bytes.
    mutating func lengthPrefixed(_ field: String, maximum: Int) throws -> ArraySlice<UInt8> {
        let length = try count("length of \(field)", maximum: maximum)
        return try bytes(count: length, field)
    }

    /// A length-prefixed field that must be valid UTF-8 (no replacement characters are made up,
    /// so the text re-encodes to the same bytes).
    mutating func utf8(_ field: String, maximum: Int) throws -> String {
        let raw = try lengthPrefixed(field, maximum: maximum)
        guard let text = String(validating: raw, as: UTF8.self) else { throw corrupt("\(field) is not valid UTF-8") }
        return text
    }

    private func truncated(_ field: String) -> HistoryError {
        corrupt("truncated at byte \(offset) of \(bytes.count) while reading \(field)")
    }
}

/// Times are kept as whole milliseconds since 1970-01-01 UTC, in commits and in the refs
/// database alike; both convert through here so a `Date` always maps to the same number.
enum Milliseconds {
    /// The nearest whole millisecond, or nil for a date too far away to count in 64 bits.
    static func since1970(_ date: Date) -> Int64? {
        let value = (date.timeIntervalSince1970 * 1000).rounded()
        guard value.isFinite, value > -9.2e18, value < 9.2e18 else { return nil }
        return Int64(value)
    }

    static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
