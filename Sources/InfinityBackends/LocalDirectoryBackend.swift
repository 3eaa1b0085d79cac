#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// Objects as files below a root directory: object "a/b/c" is the file `root/a/b/c`.
///
/// A put writes a temporary file next to the target, fsyncs it, renames it over the target
/// and fsyncs the directory, so after a crash the object is either the old or the complete
/// new one. Temporary names contain `~`, which no object name may, so they are never listed
/// or mistaken for objects. Files and directories whose names are not valid object names are
/// ignored by `list`. Empty directories are left behind by `delete`; they are harmless.
///
/// Puts (write, fsync, rename, fsync) run on a separate pool of blocking-I/O threads; reads, lists
/// and deletes are short and run on the calling thread.
///
/// A name cannot be both an object and a "directory" of other objects here ("a" and "a/b"),
/// since one path cannot be both a file and a directory; such a put fails with `.io`.
public final class LocalDirectoryBackend: Backend {
    /// The root directory, without a trailing "/".
    public let root: String

    /// Files being written start with this; '~' is not allowed in object names.
    static let temporaryPrefix = ".tmp~"

    /// Files recently read by range, most recently used last, kept open so that the many chunk
    /// reads of one pack open it once. A put or delete through this backend drops its object's
    /// file (and a read that raced with it does not keep what it opened); an object replaced by
    /// another process is opened afresh within ``openFileLifetime``.
    private let openFiles = Mutex<(files: [OpenFile], writes: UInt64)>(([], 0))
    static let openFileCount = 8
    static let openFileLifetime: Duration = .seconds(1)

    /// Files kept open now (for tests).
    var keptOpenFileCount: Int { openFiles.withLock { $0.files.count } }

    /// Opens the store at `root`, creating the directory and its parents when missing.
    public init(root: String) throws {
        var root = root
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        guard !root.isEmpty else {
            throw BackendError(code: .io, objectName: nil, message: "the root directory path is empty")
        }
        do {
            try FileSystem.createDirectories(root)
        } catch {
            throw BackendError(
                code: Self.code(for: error.errno),
                objectName: nil,
                message: "cannot create the root directory \(root) (\(error.operation) \(error.path): \(error.reason))",
                cause: FileSystem.posixError(error.errno)
            )
        }
        self.root = root
    }

    /// Creates the folders `names` inside the folder `parent` (itself created when missing;
    /// folders that exist already are fine) and syncs `parent` once. A store made here gets its
    /// 256 pack folders at once, as restic's `init` does, so a commit does not create one and
    /// sync its parent on the way.
    public func createFolders(_ names: [String], in parent: String) throws {
        let parentPath = path(of: parent)
        try OwnerOnly.createDirectories(parentPath)
        do {
            for name in names { _ = try FileSystem.makeDirectory(parentPath + "/" + name) }
            try FileSystem.synchronizeDirectory(parentPath)
        } catch {
            throw BackendError(
                code: Self.code(for: error.errno), objectName: nil,
                message: "cannot create the folders in \(parentPath) (\(error.operation) \(error.path): \(error.reason))",
                cause: FileSystem.posixError(error.errno))
        }
    }

    /// Removes temporary files older than `age` that a process left when it stopped mid-write
    /// (a put still under way elsewhere has a younger one, which stays).
    public func removeTemporaryFiles(olderThan age: Duration) {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return }
        let cutoff = Date().addingTimeInterval(-Double(age.components.seconds))
        while let relative = walker.nextObject() as? String {
            guard relative.split(separator: "/").last?.hasPrefix(Self.temporaryPrefix) == true else { continue }
            let path = root + "/" + relative
            if let modified = try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date, modified < cutoff {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
    }

    /// The file that holds object `name`.
    public func path(of name: String) -> String {
        root == "/" ? "/" + name : root + "/" + name
    }

    public func put(_ name: String, _ data: [UInt8]) async throws {
        try ObjectName.validate(name)
        defer { forgetOpenFile(name) }
        // Writing and syncing a 16 MiB pack waits on the disk for milliseconds: do it on a thread
        // of its own, not on one of the few threads Swift concurrency computes on.
        try await BlockingIO.run { try self.putNow(name, data) }
    }

    private func putNow(_ name: String, _ data: [UInt8]) throws {
        let path = path(of: name)
        let directory = FileSystem.parent(of: path)
        let temporaryPath = directory + "/" + Self.temporaryPrefix + String(UInt64.random(in: .min ... .max), radix: 16)
        do {
            let descriptor = try createTemporaryFile(temporaryPath, in: directory)
            do {
                try data.withUnsafeBytes { try FileSystem.writeAllPastCache(descriptor, $0, path: temporaryPath) }
                try FileSystem.synchronize(descriptor, path: temporaryPath)
            } catch {
                close(descriptor)
                _ = try? FileSystem.removeFile(temporaryPath)
                throw error
            }
            do {
                try FileSystem.closeFile(descriptor, path: temporaryPath)
                try FileSystem.move(temporaryPath, to: path)
            } catch {
                _ = try? FileSystem.removeFile(temporaryPath)
                throw error
            }
            try FileSystem.synchronizeDirectory(directory)
        } catch let failure as SystemCallFailure {
            throw backendError(failure, action: "write", name: name, path: path)
        }
    }

    private func createTemporaryFile(_ temporaryPath: String, in directory: String) throws(SystemCallFailure) -> Int32 {
        let flags = O_WRONLY | O_CREAT | O_EXCL
        do {
            return try FileSystem.openFile(temporaryPath, flags: flags, mode: OwnerOnly.fileMode)
        } catch where error.errno == ENOENT && directory != root {
            try FileSystem.createDirectories(directory)
            return try FileSystem.openFile(temporaryPath, flags: flags, mode: OwnerOnly.fileMode)
        }
    }

    public func readAhead(_ name: String) async {
        guard ObjectName.isValid(name) else { return }
        let path = path(of: name)
        _ = try? await BlockingIO.run {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return }
            // Queues the reads and returns; the kernel reads the file in the background.
            _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_WILLNEED)
            close(descriptor)
        }
    }

    public func get(_ name: String) async throws -> [UInt8] {
        try ObjectName.validate(name)
        let path = path(of: name)
        return try withOpenDescriptor(name, path: path) { descriptor, size in
            try readBytes(descriptor, range: 0..<size, path: path)
        }
    }

    public func get(_ name: String, range: Range<Int>) async throws -> [UInt8] {
        try ObjectName.validate(name)
        let file = try openFile(name)
        guard range.lowerBound >= 0, range.upperBound <= file.size else {
            throw BackendError(
                code: .rangeNotSatisfiable,
                objectName: name,
                message: "range \(range) is outside object '\(name)' of \(file.size) bytes at \(file.path)"
            )
        }
        do {
            return try readBytes(file.descriptor, range: range, path: file.path)
        } catch let failure as SystemCallFailure {
            throw backendError(failure, action: "read", name: name, path: file.path)
        }
    }

    /// An open file of the object, from those kept open or opened now (and kept).
    private func openFile(_ name: String) throws -> OpenFile {
        let now = ContinuousClock.now
        let (kept, writes) = openFiles.withLock { state -> (OpenFile?, UInt64) in
            // Expired files are closed now, so a file another process deleted frees its space.
            state.files.removeAll { now - $0.opened >= Self.openFileLifetime }
            guard let index = state.files.firstIndex(where: { $0.name == name }) else { return (nil, state.writes) }
            let file = state.files.remove(at: index)
            state.files.append(file)
            return (file, state.writes)
        }
        if let kept { return kept }
        let path = path(of: name)
        let (file, failure) = try withOpenDescriptor(name, path: path) { descriptor, size in
            let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
            return (OpenFile(name: name, path: path, descriptor: copy, size: size, opened: now), errno)
        }
        guard file.descriptor >= 0 else {
            throw backendError(SystemCallFailure(errno: failure, operation: "dup", path: path), action: "read", name: name, path: path)
        }
        openFiles.withLock { state in
            // A put or delete since the lookup may have replaced what was opened: use it once, keep it not.
            guard state.writes == writes else { return }
            state.files.removeAll { $0.name == name }
            if state.files.count >= Self.openFileCount { state.files.removeFirst() }
            state.files.append(file)
        }
        return file
    }

    private func forgetOpenFile(_ name: String) {
        openFiles.withLock { state in
            state.files.removeAll { $0.name == name }
            state.writes &+= 1
        }
    }

    public func info(_ name: String) async throws -> ObjectInfo? {
        try ObjectName.validate(name)
        let path = path(of: name)
        do {
            guard let status = try FileSystem.status(path), status.isRegularFile else { return nil }
            return ObjectInfo(name: name, size: status.size)
        } catch {
            throw backendError(error, action: "inspect", name: name, path: path)
        }
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        // Start in the deepest directory the prefix names instead of walking the whole store.
        var directoryName = ""
        var leafPrefix = Substring(prefix)
        if let slash = prefix.lastIndex(of: "/") {
            directoryName = String(prefix[..<slash])
            leafPrefix = prefix[prefix.index(after: slash)...]
            // No valid object name continues a prefix like "a//" or "../".
            guard ObjectName.isValid(directoryName) else { return [] }
        }
        var objects: [ObjectInfo] = []
        do {
            try collect(
                directory: directoryName.isEmpty ? root : path(of: directoryName),
                namePrefix: directoryName.isEmpty ? "" : directoryName + "/",
                leafPrefix: leafPrefix,
                into: &objects
            )
        } catch let error as SystemCallFailure {
            throw BackendError(
                code: Self.code(for: error.errno),
                objectName: nil,
                message: "cannot list objects with prefix '\(prefix)' in \(root) (\(error.operation) \(error.path): \(error.reason))",
                cause: FileSystem.posixError(error.errno)
            )
        }
        // Valid names are ASCII, for which String order is byte order.
        return objects.sorted { $0.name < $1.name }
    }

    public func delete(_ name: String) async throws {
        try ObjectName.validate(name)
        forgetOpenFile(name)
        defer { forgetOpenFile(name) }
        let path = path(of: name)
        do {
            if try FileSystem.removeFile(path) {
                try FileSystem.synchronizeDirectory(FileSystem.parent(of: path))
            }
        } catch {
            throw backendError(error, action: "delete", name: name, path: path)
        }
    }

    // MARK: Helpers

    /// Opens object `name` at `path` for reading and passes its descriptor and size to `body`,
    /// closing it after.
    private func withOpenDescriptor<T>(_ name: String, path: String, _ body: (Int32, Int) throws -> T) throws -> T {
        do {
            let descriptor: Int32
            do {
                descriptor = try FileSystem.openFile(path, flags: O_RDONLY)
            } catch where error.errno == ENOTDIR {
                // A file where the name has a directory ("a" for "a/b"): "a/b" does not exist.
                throw SystemCallFailure(errno: ENOENT, operation: "open", path: path)
            }
            defer { close(descriptor) }
            let status = try FileSystem.status(ofDescriptor: descriptor, path: path)
            // A directory at the object's path is not an object.
            guard status.isRegularFile else { throw SystemCallFailure(errno: ENOENT, operation: "open", path: path) }
            return try body(descriptor, status.size)
        } catch let failure as SystemCallFailure {
            throw backendError(failure, action: "read", name: name, path: path)
        }
    }

    private func readBytes(_ descriptor: Int32, range: Range<Int>, path: String) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: range.count) { buffer, initializedCount in
            try FileSystem.readAll(descriptor, into: UnsafeMutableRawBufferPointer(buffer), at: range.lowerBound, path: path)
            initializedCount = range.count
        }
    }

    private func collect(
        directory: String, namePrefix: String, leafPrefix: Substring?, into objects: inout [ObjectInfo]
    ) throws {
        _ = try FileSystem.forEachEntry(in: directory) { entry in
            // Skips temporary files (their names contain '~') and anything not made by a put.
            guard ObjectName.isValidSegment(entry.utf8) else { return }
            if let leafPrefix, !entry.utf8.starts(with: leafPrefix.utf8) { return }
            let entryPath = directory + "/" + entry
            guard var status = try FileSystem.status(entryPath, followLinks: false) else { return }
            if status.isDirectory {
                try collect(directory: entryPath, namePrefix: namePrefix + entry + "/", leafPrefix: nil, into: &objects)
                return
            }
            // A symbolic link counts when it points at a file; linked directories are not
            // followed, so a link cannot make the walk loop.
            if status.isSymbolicLink {
                guard let target = try FileSystem.status(entryPath) else { return }
                status = target
            }
            if status.isRegularFile {
                objects.append(ObjectInfo(name: namePrefix + entry, size: status.size))
            }
        }
    }

    private func backendError(_ failure: SystemCallFailure, action: String, name: String, path: String) -> BackendError {
        let code = Self.code(for: failure.errno)
        let message = code == .notFound && action == "read"
            ? "object '\(name)' not found at \(path)"
            : "cannot \(action) object '\(name)' at \(path) (\(failure.operation) \(failure.path): \(failure.reason))"
        return BackendError(code: code, objectName: name, message: message, cause: FileSystem.posixError(failure.errno))
    }

    /// The backend error code for an `errno`.
    static func code(for errno: Int32) -> BackendError.Code {
        switch errno {
        case ENOENT: .notFound
        case ENOSPC, EDQUOT: .noSpace
        case EACCES, EPERM: .permissionDenied
        case EROFS: .readOnly
        default: .io
        }
    }
}

/// A file kept open for range reads; closed when the last reader and the backend's list let go.
private final class OpenFile: Sendable {
    let name: String
    let path: String
    let descriptor: Int32
    let size: Int
    let opened: ContinuousClock.Instant

    init(name: String, path: String, descriptor: Int32, size: Int, opened: ContinuousClock.Instant) {
        self.name = name
        self.path = path
        self.descriptor = descriptor
        self.size = size
        self.opened = opened
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }
}
