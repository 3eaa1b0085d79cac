/// Unsigned LEB128 varints, seven bits a byte with the least significant first, always written in
/// the shortest form: the one varint writer of the layers that store binary forms (blob references
/// here, tree nodes above).
package enum LEB128 {
    @inlinable
    package static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// How many bytes ``append(_:to:)`` writes for `value`.
    package static func size(_ value: UInt64) -> Int {
        max(1, (64 - value.leadingZeroBitCount + 6) / 7)
    }

    /// The varint at `offset`, which moves past it. Nil when it is truncated, longer than its
    /// shortest form, or beyond 64 bits.
    package static func read(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var cursor = offset
        for shift in stride(from: 0, to: 64, by: 7) {
            guard cursor < bytes.count else { return nil }
            let byte = bytes[cursor]
            cursor += 1
            let payload = UInt64(byte & 0x7F)
            guard (payload << shift) >> shift == payload else { return nil }
            value |= payload << shift
            if byte & 0x80 == 0 {
                guard byte != 0 || shift == 0 else { return nil }
                offset = cursor
                return value
            }
        }
        return nil
    }
}
