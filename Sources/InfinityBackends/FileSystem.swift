#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

import CInfinitySystem
import Synchronization

/// A failed system call: which call, on which path, and `errno`.
struct SystemCallFailure: Error {
    var errno: Int32
    var operation: String
    var path: String
    /// Replaces `strerror(errno)` when the failure is ours rather than the kernel's.
    var detail: String?

    var reason: String { detail ?? String(cString: strerror(errno)) }
}

/// The modes of the files and folders a store makes on this machine: its owner's alone, so
/// other local users can copy neither key files nor packs nor the history databases (the
/// umask can only narrow them further).
package enum OwnerOnly {
    package static let fileMode: mode_t = 0o600
    package static let directoryMode: mode_t = 0o700

    /// Creates the folder `path` and any missing parents (like `mkdir -p`) with
    /// ``directoryMode``; a folder that already exists keeps its mode.
    package static func createDirectories(_ path: String) throws {
        do {
            try FileSystem.createDirectories(path)
        } catch {
            throw BackendError(
                code: .io, objectName: nil,
                message: "cannot create the folder \(path) (\(error.operation) \(error.path): \(error.reason))",
                cause: FileSystem.posixError(error.errno))
        }
    }
}

/// The system calls LocalDirectoryBackend needs, with retries on EINTR and partial transfers
/// handled. They block the calling thread; every failure carries the path it concerns.
enum FileSystem {
    struct FileStatus {
        var isRegularFile: Bool
        var isDirectory: Bool
        var isSymbolicLink: Bool
        var size: Int
    }

    static func openFile(_ path: String, flags: Int32, mode: mode_t = 0) throws(SystemCallFailure) -> Int32 {
        while true {
            let descriptor = open(path, flags | O_CLOEXEC, mode)
            if descriptor >= 0 { return descriptor }
            if errno != EINTR { throw SystemCallFailure(errno: errno, operation: "open", path: path) }
        }
    }

    static func closeFile(_ descriptor: Int32, path: String) throws(SystemCallFailure) {
        // Never retry close: on Linux the descriptor is released even when EINTR is reported.
        if close(descriptor) != 0 && errno != EINTR {
            throw SystemCallFailure(errno: errno, operation: "close", path: path)
        }
    }

    static func status(ofDescriptor descriptor: Int32, path: String) throws(SystemCallFailure) -> FileStatus {
        var information = stat()
        guard fstat(descriptor, &information) == 0 else {
            throw SystemCallFailure(errno: errno, operation: "fstat", path: path)
        }
        return FileStatus(information)
    }

    /// The status of `path`, or nil when it does not exist. `followLinks: false` reports a
    /// symbolic link itself.
    static func status(_ path: String, followLinks: Bool = true) throws(SystemCallFailure) -> FileStatus? {
        var information = stat()
        let result = followLinks ? stat(path, &information) : lstat(path, &information)
        guard result == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw SystemCallFailure(errno: errno, operation: followLinks ? "stat" : "lstat", path: path)
        }
        return FileStatus(information)
    }

    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SystemCallFailure) {
        var written = 0
        while written < bytes.count {
            let result = write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            if result > 0 {
                written += result
            } else if result < 0 && errno == EINTR {
                continue
            } else {
                throw SystemCallFailure(errno: result < 0 ? errno : EIO, operation: "write", path: path)
            }
        }
    }

    /// ``writeAll(_:_:path:)`` for a large object into a new, empty file: its whole 4 KiB blocks
    /// go past the page cache (O_DIRECT), through a small aligned buffer, and the rest through it.
    ///
    /// A pack is written once and then synced; copying it into page-cache pages first cost
    /// about 1 ns a byte of kernel time here (5% of a first backup's CPU), and a sync of the
    /// file then writes those pages out anyway. Where the filesystem or device refuses direct
    /// I/O (tmpfs, some network filesystems) the bytes go through the page cache as before.
    static func writeAllPastCache(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SystemCallFailure) {
        let flags = fcntl(descriptor, F_GETFL)
        let direct = infinity_direct_io_flag()
        guard bytes.count >= DirectWriteBuffer.size, direct != 0, flags >= 0, fcntl(descriptor, F_SETFL, flags | direct) == 0 else {
            return try writeAll(descriptor, bytes, path: path)
        }
        let buffer = DirectWriteBuffer.take()
        defer { DirectWriteBuffer.give(back: buffer) }
        let wholeBlocks = bytes.count / DirectWriteBuffer.alignment * DirectWriteBuffer.alignment
        var written = 0
        blocks: while written < wholeBlocks {
            let length = min(DirectWriteBuffer.size, wholeBlocks - written)
            buffer.pointer.copyMemory(from: bytes.baseAddress! + written, byteCount: length)
            var done = 0
            while done < length {
                let result = write(descriptor, buffer.pointer + done, length - done)
                if result > 0 {
                    done += result
                } else if result < 0 && errno == EINTR {
                    continue
                } else if result < 0 && errno == EINVAL {
                    // Refused (or a short write left an unaligned rest): the page cache takes it.
                    written += done
                    break blocks
                } else {
                    throw SystemCallFailure(errno: result < 0 ? errno : EIO, operation: "write", path: path)
                }
            }
            written += length
        }
        guard fcntl(descriptor, F_SETFL, flags) == 0 else { throw SystemCallFailure(errno: errno, operation: "fcntl", path: path) }
        try writeAll(descriptor, UnsafeRawBufferPointer(rebasing: bytes[written...]), path: path)
    }

    /// Fills `buffer` from `offset`; a file that ends before the buffer is full is an error.
    static func readAll(
        _ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String
    ) throws(SystemCallFailure) {
        var done = 0
        while done < buffer.count {
            let result = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if result > 0 {
                done += result
            } else if result < 0 && errno == EINTR {
                continue
            } else if result == 0 {
                throw SystemCallFailure(
                    errno: EIO, operation: "read", path: path,
                    detail: "the file ended after \(offset + done) bytes, before the \(offset + buffer.count) expected"
                )
            } else {
                throw SystemCallFailure(errno: errno, operation: "read", path: path)
            }
        }
    }

    static func synchronize(_ descriptor: Int32, path: String) throws(SystemCallFailure) {
        while fsync(descriptor) != 0 {
            if errno != EINTR { throw SystemCallFailure(errno: errno, operation: "fsync", path: path) }
        }
    }

    /// Makes the directory's entries (a new or renamed file, a new subdirectory) durable.
    static func synchronizeDirectory(_ path: String) throws(SystemCallFailure) {
        let descriptor = try openFile(path, flags: O_RDONLY | O_DIRECTORY)
        defer { close(descriptor) }
        do {
            try synchronize(descriptor, path: path)
        } catch where error.errno == EINVAL {
            // Some file systems cannot fsync a directory; their entries are as durable as they get.
        }
    }

    static func move(_ source: String, to destination: String) throws(SystemCallFailure) {
        guard rename(source, destination) == 0 else {
            throw SystemCallFailure(errno: errno, operation: "rename \(source) to", path: destination)
        }
    }

    /// Removes a file; false when there was nothing to remove at `path`.
    static func removeFile(_ path: String) throws(SystemCallFailure) -> Bool {
        guard unlink(path) == 0 else {
            // EISDIR (Linux) / EPERM (macOS) for a directory: not a file, so nothing to remove.
            if errno == ENOENT || errno == ENOTDIR || errno == EISDIR { return false }
            throw SystemCallFailure(errno: errno, operation: "unlink", path: path)
        }
        return true
    }

    /// Creates `path` and any missing parents (like `mkdir -p`), syncing the parent of each
    /// directory it creates so the new directory survives a crash.
    static func createDirectories(_ path: String) throws(SystemCallFailure) {
        let made: Bool
        do {
            made = try makeDirectory(path)
        } catch where error.errno == ENOENT && path != parent(of: path) {
            try createDirectories(parent(of: path))
            // Another writer may make it in between, which is fine.
            made = try makeDirectory(path)
        }
        if made { try synchronizeDirectory(parent(of: path)) }
    }

    /// Makes the folder `path` inside an existing one, unsynced: true when it made it, false when
    /// a folder was there already. A file in the way is an error.
    static func makeDirectory(_ path: String) throws(SystemCallFailure) -> Bool {
        if mkdir(path, OwnerOnly.directoryMode) == 0 { return true }
        let failure = SystemCallFailure(errno: errno, operation: "mkdir", path: path)
        guard failure.errno == EEXIST else { throw failure }
        guard try status(path)?.isDirectory == true else {
            throw SystemCallFailure(errno: ENOTDIR, operation: "mkdir", path: path, detail: "a file that is not a directory is in the way")
        }
        return false
    }

    /// The directory holding `path` ("." for a bare name).
    static func parent(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        if slash == path.utf8.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// Calls `body` with the name of every entry of the directory except "." and "..".
    /// Returns false when the directory does not exist.
    static func forEachEntry(in directory: String, _ body: (String) throws -> Void) throws -> Bool {
        guard let stream = opendir(directory) else {
            if errno == ENOENT || errno == ENOTDIR { return false }
            throw SystemCallFailure(errno: errno, operation: "opendir", path: directory)
        }
        defer { closedir(stream) }
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw SystemCallFailure(errno: errno, operation: "readdir", path: directory) }
                return true
            }
            let name = String(cString: (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { try body(name) }
        }
    }

    /// The `POSIXError` for `errno`, as a `cause`.
    static func posixError(_ errno: Int32) -> (any Error)? {
        POSIXErrorCode(rawValue: errno).map { POSIXError($0) }
    }
}

extension FileSystem.FileStatus {
    init(_ information: stat) {
        let type = information.st_mode & S_IFMT
        self.init(
            isRegularFile: type == S_IFREG,
            isDirectory: type == S_IFDIR,
            isSymbolicLink: type == S_IFLNK,
            size: Int(information.st_size)
        )
    }
}

/// The aligned memory direct writes go through, kept for the next write rather than freed.
struct DirectWriteBuffer: @unchecked Sendable {
    /// Buffer addresses, file offsets and lengths of direct writes are multiples of this (the
    /// largest logical block size of common devices).
    static let alignment = 4096
    /// Bytes per direct write: here 1 MiB writes reached the disk's rate as 16 MiB ones did.
    static let size = 1 << 20
    /// Buffers kept: writes run on at most a few threads at once.
    private static let keptAtMost = 4
    private static let spares = Mutex<[DirectWriteBuffer]>([])

    let pointer: UnsafeMutableRawPointer

    static func take() -> DirectWriteBuffer {
        spares.withLock { $0.popLast() }
            ?? DirectWriteBuffer(pointer: UnsafeMutableRawPointer.allocate(byteCount: size, alignment: alignment))
    }

    static func give(back buffer: DirectWriteBuffer) {
        let kept = spares.withLock { spares in
            guard spares.count < keptAtMost else { return false }
            spares.append(buffer)
            return true
        }
        if !kept { buffer.pointer.deallocate() }
    }
}
