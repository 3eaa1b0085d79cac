#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the system error is: the path and what was being done, with strerror's words.
private func fileError(_ action: String, _ path: String, _ code: Int32 = errno) -> StoreError {
    StoreError(.io, "cannot \(action) \(path): \(String(cString: strerror(code)))")
}

/// A file read sequentially into caller-provided buffers (no extra copy).
package final class InputFile: Sendable {
    let path: String
    private let descriptor: Int32

    package init(path: String) throws {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw fileError("open", path) }
    }

    deinit { close(descriptor) }

    /// Fills as much of `buffer` as the file still holds; 0 at the end.
    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var filled = 0
        while filled < buffer.count {
            let count = Glibc.read(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
            if count < 0 {
                if errno == EINTR { continue }
                throw fileError("read", path)
            }
            if count == 0 { break }
            filled += count
        }
        return filled
    }
}

/// A file written sequentially, then synced: created or truncated on open.
package final class OutputFile: Sendable {
    let path: String
    private let descriptor: Int32

    package init(path: String, mode: mode_t = 0o644) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw fileError("create", path) }
    }

    deinit { Glibc.close(descriptor) }

    package func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let count = Glibc.write(descriptor, raw.baseAddress! + written, raw.count - written)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw fileError("write", path)
                }
                written += count
            }
        }
    }

    /// Syncs the contents to disk.
    package func close() throws {
        guard fsync(descriptor) == 0 else { throw fileError("sync", path) }
    }
}
