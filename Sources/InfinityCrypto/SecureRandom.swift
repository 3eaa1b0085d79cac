import CInfinityOpenSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// Random bytes for a nonce, from a reserve drawn from the CSPRNG 4 KiB at a time: a call to
    /// `RAND_bytes` costs about a microsecond whatever its length, as long as sealing a 2 KiB
    /// chunk takes. Each byte of a reserve is handed out once, and a process forked from this
    /// one draws a reserve of its own rather than repeat its parent's.
    public static func nonceBytes(count: Int) -> [UInt8] {
        precondition(count >= 0 && count <= NonceReserve.size, "SecureRandom.nonceBytes: \(count) bytes")
        _ = forkWatch
        return nonceReserve.withLock { reserve in reserve.take(count, generation: forks.load(ordering: .relaxed)) }
    }

    private static let nonceReserve = Mutex(NonceReserve())

    /// Forks this process went through: each child counts one more than its parent, so a
    /// reserve filled before a fork is never used after it.
    private static let forks = Atomic<Int>(0)
    private static let forkWatch: Void = {
        pthread_atfork(nil, nil) { SecureRandom.forks.add(1, ordering: .relaxed) }
    }()

    private struct NonceReserve {
        static let size = 4096
        var bytes = [UInt8](repeating: 0, count: size)
        var used = size
        var generation = 0

        mutating func take(_ count: Int, generation current: Int) -> [UInt8] {
            if used + count > Self.size || generation != current {
                bytes.withUnsafeMutableBytes { fill($0) }
                used = 0
                generation = current
            }
            defer { used += count }
            return Array(bytes[used..<(used + count)])
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
