import CInfinityOpenSSL

/// Random bytes from OpenSSL's CSPRNG (`RAND_bytes`), for keys, salts and nonces.
public enum SecureRandom {
    /// Fills `buffer` completely. Stops the process if the CSPRNG fails: continuing with
    /// predictable keys or nonces would be worse than crashing.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var offset = 0
        while offset < buffer.count {
            let chunk = Swift.min(buffer.count - offset, Int(Int32.max))
            let result = RAND_bytes(LibCrypto.mutableBytes(buffer) + offset, Int32(chunk))
            guard result == 1 else {
                fatalError(LibCrypto.failure("RAND_bytes failed: no secure randomness available").description)
            }
            offset += chunk
        }
    }

    public static func bytes(count: Int) -> [UInt8] {
        precondition(count >= 0, "SecureRandom.bytes: negative count")
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }
}
