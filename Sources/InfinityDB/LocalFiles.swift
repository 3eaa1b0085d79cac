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
            let count = systemRead(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
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

/// Where restored bytes go: a file that appears whole or not at all (written to a temporary
/// file beside it, synced, then renamed over it), or standard output as it is.
package final class OutputFile: Sendable {
    let path: String
    private let directory: String
    private let temporaryPath: String?
    private let descriptor: Int32

    /// A new file at `path`; nothing is visible there until ``commit()``.
    package init(path: String, mode: mode_t = 0o644) throws {
        self.path = path
        let parent = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        directory = parent.isEmpty ? "/" : parent
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let temporary = "\(directory)/.\(name).partial-\(UInt32.random(in: 0...UInt32.max))"
        temporaryPath = temporary
        descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw fileError("create a file beside", path) }
    }

    /// Standard output, written in place (appending when the shell redirected with >>).
    package init(standardOutput: Void) {
        path = "standard output"
        directory = "."
        temporaryPath = nil
        descriptor = 1
    }

    deinit {
        if let temporaryPath {
            close(descriptor)
            // Not committed: an error stopped the restore, so the partial file goes.
            unlink(temporaryPath)
        }
    }

    package func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let count = systemWrite(descriptor, raw.baseAddress! + written, raw.count - written)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw fileError("write", path)
                }
                written += count
            }
        }
    }

    /// Syncs the contents to disk and puts the file in place.
    package func commit() throws {
        guard let temporaryPath else { return }
        guard fsync(descriptor) == 0 else { throw fileError("sync", path) }
        guard rename(temporaryPath, path) == 0 else { throw fileError("rename the finished file to", path) }
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}

private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}

private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}
