#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CInfinitySystem
import InfinityDB

/// The system calls the backup makes, in one place. Names are byte strings (file names need not
/// be UTF-8); calls relative to a directory descriptor never follow a symlink in the last name.

/// What `lstat` says about a path.
struct FileStatus: Sendable, Hashable {
    var kind: FileEntry.Kind
    var mode: UInt32
    var userID: UInt32
    var groupID: UInt32
    var size: Int64
    var modified: Int64
    var changed: Int64
    var inode: UInt64
    var device: UInt64
    var linkCount: UInt64
    var deviceNumber: UInt64

    init(_ status: stat) {
        let type = status.st_mode & S_IFMT
        kind =
            switch type {
            case S_IFDIR: .directory
            case S_IFLNK: .symlink
            case S_IFIFO: .fifo
            case S_IFSOCK: .socket
            case S_IFCHR: .characterDevice
            case S_IFBLK: .blockDevice
            default: .file
            }
        mode = UInt32(status.st_mode & 0o7777)
        userID = status.st_uid
        groupID = status.st_gid
        size = Int64(status.st_size)
        modified = Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec)
        changed = Int64(status.st_ctim.tv_sec) * 1_000_000_000 + Int64(status.st_ctim.tv_nsec)
        inode = UInt64(status.st_ino)
        device = UInt64(status.st_dev)
        linkCount = UInt64(status.st_nlink)
        deviceNumber = UInt64(status.st_rdev)
    }
}

/// A failed system call: what was being done, to which path, and `strerror`'s words.
struct SystemCallError: Error, CustomStringConvertible {
    var action: String
    var path: String
    var number: Int32

    var description: String { "cannot \(action) \(path): \(String(cString: strerror(number)))" }

    var backupError: BackupError { BackupError(.io, description) }
}

/// An open directory; the descriptor closes when the last user lets go (restores write files
/// into a directory from several tasks).
final class DirectoryHandle: Sendable {
    let descriptor: Int32
    /// The directory's path as given, for messages and path-based calls.
    let path: [UInt8]

    init(descriptor: Int32, path: [UInt8]) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { close(descriptor) }

    var displayPath: String { String(decoding: path, as: UTF8.self) }

    /// The path of `name` inside this directory.
    func path(of name: [UInt8]) -> [UInt8] {
        path.last == 0x2F ? path + name : path + [0x2F] + name
    }
}

enum SystemCalls {
    /// Calls `body` with `bytes` as a NUL-terminated C string.
    static func withCString<Result>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> Result) rethrows -> Result {
        try (bytes + [0]).withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }

    static func display(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Opens a directory by path, following symlinks (a source the user named may be a link).
    static func openDirectory(path: [UInt8]) throws -> DirectoryHandle {
        let descriptor = withCString(path) { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard descriptor >= 0 else { throw SystemCallError(action: "open the directory", path: display(path), number: errno) }
        return DirectoryHandle(descriptor: descriptor, path: path)
    }

    /// Opens `name` inside `directory` as a directory, refusing a symlink.
    static func openDirectory(_ name: [UInt8], in directory: DirectoryHandle) throws -> DirectoryHandle {
        let descriptor = withCString(name) { openat(directory.descriptor, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard descriptor >= 0 else {
            throw SystemCallError(action: "open the directory", path: display(directory.path(of: name)), number: errno)
        }
        return DirectoryHandle(descriptor: descriptor, path: directory.path(of: name))
    }

    /// `lstat` of a path.
    static func status(path: [UInt8], followLinks: Bool = false) throws -> FileStatus {
        var result = stat()
        let code = withCString(path) { followLinks ? stat($0, &result) : lstat($0, &result) }
        guard code == 0 else { throw SystemCallError(action: "read the status of", path: display(path), number: errno) }
        return FileStatus(result)
    }

    /// `lstat` of `name` inside `directory`; nil when it does not exist.
    static func status(of name: [UInt8], in directory: DirectoryHandle) throws -> FileStatus? {
        var result = stat()
        let code = withCString(name) { fstatat(directory.descriptor, $0, &result, AT_SYMLINK_NOFOLLOW) }
        if code != 0 {
            if errno == ENOENT { return nil }
            throw SystemCallError(action: "read the status of", path: display(directory.path(of: name)), number: errno)
        }
        return FileStatus(result)
    }

    static func status(ofDescriptor descriptor: Int32, path: [UInt8]) throws -> FileStatus {
        var result = stat()
        guard fstat(descriptor, &result) == 0 else {
            throw SystemCallError(action: "read the status of", path: display(path), number: errno)
        }
        return FileStatus(result)
    }

    /// The names in a directory, without `.` and `..`, sorted by their bytes.
    static func names(in directory: DirectoryHandle) throws -> [[UInt8]] {
        // fdopendir takes the descriptor over, so it gets a copy.
        let copy = dup(directory.descriptor)
        guard copy >= 0, let stream = fdopendir(copy) else {
            let number = errno
            if copy >= 0 { close(copy) }
            throw SystemCallError(action: "list", path: directory.displayPath, number: number)
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw SystemCallError(action: "list", path: directory.displayPath, number: errno) }
                break
            }
            // The record is only as long as its name: read the name in place, never as a copy of
            // the declared 256-byte field (which may run past the end of libc's buffer).
            let nameStart = UnsafeRawPointer(entry) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!
            let cName = nameStart.assumingMemoryBound(to: CChar.self)
            let name = Array(UnsafeRawBufferPointer(start: nameStart, count: strlen(cName)))
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        names.sort { $0.lexicographicallyPrecedes($1) }
        return names
    }

    /// A symlink's target.
    static func linkTarget(of name: [UInt8], in directory: DirectoryHandle) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = withCString(name) { cName in
            buffer.withUnsafeMutableBufferPointer { raw in
                raw.withMemoryRebound(to: CChar.self) { readlinkat(directory.descriptor, cName, $0.baseAddress!, $0.count) }
            }
        }
        guard count >= 0 else { throw SystemCallError(action: "read the symlink", path: display(directory.path(of: name)), number: errno) }
        return Array(buffer[..<count])
    }

    /// The target of the symlink at `path`.
    static func linkTarget(path: [UInt8]) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = withCString(path) { cPath in
            buffer.withUnsafeMutableBufferPointer { raw in
                raw.withMemoryRebound(to: CChar.self) { readlink(cPath, $0.baseAddress!, $0.count) }
            }
        }
        guard count >= 0 else { throw SystemCallError(action: "read the symlink", path: display(path), number: errno) }
        return Array(buffer[..<count])
    }

    /// The first `limit` bytes of a file (ignore files, cache tags).
    static func readSmallFile(path: [UInt8], limit: Int) throws -> [UInt8] {
        let descriptor = try openForReading(path: path)
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: limit)
        let count = try buffer.withUnsafeMutableBytes { try read(descriptor, into: $0, path: path) }
        return Array(buffer[..<count])
    }

    /// The extended attributes of a path (not following a final symlink), sorted by name; none
    /// where the filesystem has none.
    static func extendedAttributes(path: [UInt8]) throws -> [FileEntry.ExtendedAttribute] {
        let listed: [UInt8]? = withCString(path) { cPath in
            var size = llistxattr(cPath, nil, 0)
            while size > 0 {
                var buffer = [UInt8](repeating: 0, count: size)
                let count = buffer.withUnsafeMutableBufferPointer { raw in
                    raw.withMemoryRebound(to: CChar.self) { llistxattr(cPath, $0.baseAddress!, $0.count) }
                }
                if count >= 0 { return Array(buffer[..<count]) }
                guard errno == ERANGE else { return nil }
                size = llistxattr(cPath, nil, 0)
            }
            return size == 0 ? [] : nil
        }
        guard let listed else {
            if errno == ENOTSUP || errno == ENODATA { return [] }
            throw SystemCallError(action: "list the extended attributes of", path: display(path), number: errno)
        }
        var attributes: [FileEntry.ExtendedAttribute] = []
        for nameBytes in listed.split(separator: 0) {
            let name = Array(nameBytes)
            let value: [UInt8]? = withCString(path) { cPath in
                withCString(name) { cName in
                    let size = lgetxattr(cPath, cName, nil, 0)
                    guard size >= 0 else { return nil }
                    var buffer = [UInt8](repeating: 0, count: size)
                    let count = buffer.withUnsafeMutableBytes { lgetxattr(cPath, cName, $0.baseAddress, $0.count) }
                    return count >= 0 ? Array(buffer[..<count]) : nil
                }
            }
            // An attribute removed between the list and the read is simply gone.
            if let value { attributes.append(.init(name: name, value: value)) }
        }
        return attributes.sorted { $0.name.lexicographicallyPrecedes($1.name) }
    }

    /// Sets extended attributes on a path (not following a final symlink).
    static func setExtendedAttributes(_ attributes: [FileEntry.ExtendedAttribute], path: [UInt8]) throws {
        for attribute in attributes {
            let code = withCString(path) { cPath in
                withCString(attribute.name) { cName in
                    attribute.value.withUnsafeBytes { lsetxattr(cPath, cName, $0.baseAddress, $0.count, 0) }
                }
            }
            guard code == 0 else {
                throw SystemCallError(
                    action: "set the extended attribute \(display(attribute.name)) on", path: display(path), number: errno)
            }
        }
    }

    /// Opens a file of the snapshot's source for reading, refusing a symlink.
    static func openForReading(path: [UInt8]) throws(SystemCallError) -> Int32 {
        var descriptor = withCString(path) { open($0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | infinity_O_NOATIME) }
        // O_NOATIME is allowed only on one's own files.
        if descriptor < 0 && errno == EPERM {
            descriptor = withCString(path) { open($0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
        }
        guard descriptor >= 0 else { throw SystemCallError(action: "open", path: display(path), number: errno) }
        return descriptor
    }

    /// Asks the kernel to start reading the first `length` bytes of a file into its cache,
    /// without waiting for them (a hint: failures are ignored).
    static func startReading(_ descriptor: Int32, length: Int64) {
        _ = posix_fadvise(descriptor, 0, off_t(length), POSIX_FADV_WILLNEED)
    }

    /// Fills as much of `buffer` as the file still holds; 0 at the end.
    static func read(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, path: [UInt8]) throws -> Int {
        var filled = 0
        while filled < buffer.count {
            let count = Glibc.read(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(action: "read", path: display(path), number: errno)
            }
            if count == 0 { break }
            filled += count
        }
        return filled
    }

    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: [UInt8]) throws {
        var failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let count = write(descriptor, raw.baseAddress! + written, raw.count - written)
                if count < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                written += count
            }
        }
        if failure != 0 { throw SystemCallError(action: "write", path: display(path), number: failure) }
    }

    /// `timespec` pairs for `utimensat`: access time set to the modification time.
    static func times(modified: Int64) -> [timespec] {
        var (seconds, nanoseconds) = modified.quotientAndRemainder(dividingBy: 1_000_000_000)
        // Times before 1970 keep their nanoseconds in 0..<1e9, as timespec requires.
        if nanoseconds < 0 {
            nanoseconds += 1_000_000_000
            seconds -= 1
        }
        let value = timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds))
        return [value, value]
    }
}
