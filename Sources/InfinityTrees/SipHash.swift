/// SipHash-2-4 (Aumasson and Bernstein, 2012): a fast keyed 64-bit hash.
///
/// Trees choose node boundaries with it. Keyed by the tree's salt, boundaries cannot be predicted
/// (or forced into pathological node sizes) by whoever picks the keys, yet every agent editing
/// the tree computes the same ones. Not used for anything that needs a cryptographic MAC.
struct SipHash24: Sendable {
    private let k0: UInt64
    private let k1: UInt64

    /// `key` must be 16 bytes (read little-endian, as the reference implementation does).
    init(key: some Collection<UInt8>) {
        precondition(key.count == 16, "SipHash keys are 16 bytes")
        var words: [UInt64] = [0, 0]
        for (index, byte) in key.enumerated() { words[index / 8] |= UInt64(byte) << (8 * UInt64(index % 8)) }
        k0 = words[0]
        k1 = words[1]
    }

    private struct State {
        var v0, v1, v2, v3: UInt64

        @inline(__always) mutating func round() {
            v0 &+= v1; v1 = (v1 << 13) | (v1 >> 51); v1 ^= v0; v0 = (v0 << 32) | (v0 >> 32)
            v2 &+= v3; v3 = (v3 << 16) | (v3 >> 48); v3 ^= v2
            v0 &+= v3; v3 = (v3 << 21) | (v3 >> 43); v3 ^= v0
            v2 &+= v1; v1 = (v1 << 17) | (v1 >> 47); v1 ^= v2; v2 = (v2 << 32) | (v2 >> 32)
        }

        @inline(__always) mutating func compress(_ word: UInt64) {
            v3 ^= word
            round()
            round()
            v0 ^= word
        }

        @inline(__always) mutating func finalize() -> UInt64 {
            v2 ^= 0xff
            round()
            round()
            round()
            round()
            return v0 ^ v1 ^ v2 ^ v3
        }
    }

    /// The hash of an optional one-byte `prefix` (a domain, such as a tree level) followed by `message`.
    @inline(__always)
    func hash(prefix: UInt8?, _ message: UnsafeRawBufferPointer) -> UInt64 {
        var state = State(
            v0: 0x736f_6d65_7073_6575 ^ k0, v1: 0x646f_7261_6e64_6f6d ^ k1,
            v2: 0x6c79_6765_6e65_7261 ^ k0, v3: 0x7465_6462_7974_6573 ^ k1)
        // Little-endian 8-byte words of prefix || message; the last word carries the length.
        var word: UInt64 = 0
        var filled: UInt64 = 0
        if let prefix {
            word = UInt64(prefix)
            filled = 1
        }
        for byte in message {
            word |= UInt64(byte) << (8 * filled)
            filled += 1
            if filled == 8 {
                state.compress(word)
                word = 0
                filled = 0
            }
        }
        let total = message.count + (prefix == nil ? 0 : 1)
        state.compress(word | UInt64(truncatingIfNeeded: total) << 56)
        return state.finalize()
    }

    /// The hash of `message` alone.
    func hash(_ message: [UInt8]) -> UInt64 {
        message.withUnsafeBytes { hash(prefix: nil, $0) }
    }
}
