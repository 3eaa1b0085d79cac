/// Deterministic pseudo-random bytes for tests: the same count and seed give the same bytes.
public enum SampleData {
    /// `count` bytes from a SplitMix64 stream started at `seed`, generated 8 bytes at a time.
    public static func bytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initializedCount in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            var offset = 0
            while offset < count {
                state &+= 0x9E37_79B9_7F4A_7C15
                var mixed = state
                mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
                mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
                mixed ^= mixed >> 31
                let take = min(8, count - offset)
                withUnsafeBytes(of: mixed.littleEndian) { word in
                    raw.baseAddress!.advanced(by: offset).copyMemory(from: word.baseAddress!, byteCount: take)
                }
                offset += take
            }
            initializedCount = count
        }
    }
}
