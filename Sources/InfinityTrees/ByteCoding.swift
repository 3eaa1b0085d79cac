import InfinityChunks

/// Unsigned LEB128 varints: the writer every node encoding uses (shared with blob references).
/// ``ByteReader`` reads them.
typealias Varint = LEB128

/// Reads a byte buffer front to back; every read checks the bounds.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    @inline(__always)
    mutating func readByte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A varint of at most 10 bytes that fits in 64 bits.
    @inline(__always)
    mutating func readVarint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count {
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 { return nil }
            result |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// A varint that must be at most `limit`, as an Int.
    mutating func readLength(limit: Int) -> Int? {
        guard let value = readVarint(), value <= UInt64(limit) else { return nil }
        return Int(value)
    }

    mutating func readBytes(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, count <= remaining else { return nil }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }
}
