#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CInfinitySystem
import Foundation
import InfinityDB

/// How a snapshot is written back to disk.
public struct RestoreOptions: Sendable {
    /// The subtrees to restore (all of the snapshot when empty).
    public var paths: [SnapshotPath] = []
    /// How many files are written at once.
    public var concurrentFiles = max(16, ProcessInfo.processInfo.activeProcessorCount * 8)
    /// Set owners and groups (only root may; on by default when running as root).
    public var restoreOwnership = geteuid() == 0

    public init() {}
}

/// A file a restore could not write because its content is damaged or missing in the store.
public struct LostFile: Sendable, Hashable {
    /// The path in the snapshot.
    public var path: String
    /// The error that names the chunk or pack at fault.
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Counters of a running restore.
public struct RestoreProgress: Sendable {
    public var entries = 0
    public var files = 0
    public var bytes: Int64 = 0
}

/// What a restore did.
public struct RestoreReport: Sendable {
    public var files = 0
    public var directories = 0
    public var otherEntries = 0
    public var bytes: Int64 = 0
    /// Paths that could not be restored whole (a device without root, an attribute the target
    /// filesystem refuses).
    public var warnings: [String] = []
    /// Files whose content the store can no longer give back (a damaged or missing chunk or
    /// pack), each with what is wrong. Nothing is left at their paths; every other file is
    /// restored. Damage to the snapshot's own tree, or a failure to write, stops the restore.
    public var lostFiles: [LostFile] = []

    public init() {}
}

/// Writes snapshots back to disk byte for byte with their metadata.
///
/// Every path is checked before anything is written: names are never `..`, `.`, empty or
/// holding `/`, and each directory is entered with `O_NOFOLLOW`, so neither a hostile snapshot
/// nor a symlink already in the target can send a write outside it. Directories get their
/// modes and times last, deepest first, once nothing more is written into them.
public struct Restorer: Sendable {
    public let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Restores `snapshot` (or the subtrees in `options.paths`) into the directory `target`,
    /// which is created if missing. Existing files at the snapshot's paths are replaced.
    public func restore(
        _ snapshot: Snapshot, to target: String, options: RestoreOptions = RestoreOptions(),
        progress: @escaping @Sendable (RestoreProgress) -> Void = { _ in }
    ) async throws -> RestoreReport {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let root: DirectoryHandle
        do { root = try SystemCalls.openDirectory(path: Array(target.utf8)) } catch let error as SystemCallError { throw error.backupError }
        let run = RestoreRun(root: root, chunks: database.store.chunks, options: options, snapshot: snapshot, progress: progress)
        let selected = options.paths.isEmpty ? [SnapshotPath.root] : Self.outermost(options.paths)
        for path in selected where !path.isRoot {
            guard try await snapshot.get(path, in: SnapshotIndex.files) != nil else {
                throw BackupError(.notFound, "\(path) is not in the snapshot")
            }
        }
        let chunks = database.store.chunks
        try await withThrowingTaskGroup(of: WrittenFile.self) { group in
            var writing = 0
            for subtree in selected {
                // Where the files' content lies is looked up a batch at a time, beside the writes.
                var cursor = EntryCursor(snapshot: snapshot, subtree: subtree) { entries in
                    try? chunks.prefetchLocations(of: entries.lazy.compactMap(\.entry.content))
                }
                var next = try await cursor.peek()
                while let (path, entry) = next {
                    next = try await cursor.advance()
                    if path.isRoot { continue }
                    guard let write = try run.place(entry, at: path) else { continue }
                    if writing == options.concurrentFiles {
                        run.finish(try await group.next()!)
                        writing -= 1
                    }
                    let ownership = options.restoreOwnership
                    // Files are created here, one after another: creating them from many tasks at
                    // once only has the tasks wait in turn for their directory's lock, and on ext4
                    // each waiter spins on it, taking a core from the writes.
                    let descriptor = try Self.createFile(write.name, in: write.directory)
                    group.addTask { try await Self.write(write, into: descriptor, chunks: chunks, restoreOwnership: ownership) }
                    writing += 1
                }
            }
            while let written = try await group.next() { run.finish(written) }
        }
        try await run.linkHardLinks(database: database)
        run.applyDirectoryMetadata()
        return run.report
    }

    /// The paths not inside another one of them (restoring `a` already restores `a/b`).
    private static func outermost(_ paths: [SnapshotPath]) -> [SnapshotPath] {
        let sorted = Set(paths).sorted()
        var result: [SnapshotPath] = []
        for path in sorted where !(result.last.map { path.isWithin($0) } ?? false) { result.append(path) }
        return result
    }

    /// A file to write: where, and its entry.
    struct FileWrite: Sendable {
        var directory: DirectoryHandle
        var name: [UInt8]
        var entry: FileEntry
        var path: SnapshotPath
    }

    struct WrittenFile: Sendable {
        var path: SnapshotPath
        var bytes: Int64
        var warning: String?
        /// Why the content could not be read, when it could not.
        var lost: String?
    }

    /// Creates (or replaces) one file and writes its content and metadata.
    static func write(_ write: FileWrite, chunks: ChunkStore, restoreOwnership: Bool) async throws -> WrittenFile {
        try await self.write(write, into: try createFile(write.name, in: write.directory), chunks: chunks, restoreOwnership: restoreOwnership)
    }

    /// Writes one file's content and metadata into `descriptor`, the file just created, and closes it.
    static func write(_ write: FileWrite, into descriptor: Int32, chunks: ChunkStore, restoreOwnership: Bool) async throws -> WrittenFile {
        let path = write.directory.path(of: write.name)
        defer { close(descriptor) }
        if let content = write.entry.content {
            var writeError: (any Error)?
            do {
                try await chunks.getBlob(content) { bytes in
                    do { try SystemCalls.writeAll(descriptor, bytes, path: path) } catch {
                        writeError = error
                        throw error
                    }
                }
            } catch {
                guard writeError == nil, isDamage(error) else { throw error }
                // Leave nothing that could pass for the file; the rest of the restore goes on.
                _ = SystemCalls.withCString(write.name) { unlinkat(write.directory.descriptor, $0, 0) }
                return WrittenFile(path: write.path, bytes: 0, lost: "\(error)")
            }
            // The disk starts writing a large file now, while the restore goes on with the next
            // ones, instead of after it, when the user's `sync` (or the kernel, half a minute later)
            // would write everything at once. Small files are left to the kernel's batches.
            if write.entry.size >= Self.writebackThreshold { _ = infinity_start_writeback(descriptor) }
        }
        let warning = setMetadata(write.entry, descriptor: descriptor, path: path, restoreOwnership: restoreOwnership)
        return WrittenFile(path: write.path, bytes: write.entry.size, warning: warning)
    }

    /// Files at least this large are handed to the disk as soon as they are written.
    static let writebackThreshold: Int64 = 128 << 10

    /// Whether `error` says the store's copy of some content is damaged or gone (as opposed to
    /// the target, the network or the index failing, which stop the restore).
    static func isDamage(_ error: any Error) -> Bool {
        switch error {
        case is ChunkError: true
        case let error as PackError: [.malformedPack, .trailerAuthenticationFailed, .chunkNotFound].contains(error.code)
        case let error as BackendError: [.notFound, .rangeNotSatisfiable].contains(error.code)
        default: false
        }
    }

    /// Opens `name` for writing from the start, replacing whatever is there that is not a
    /// regular file (a symlink is replaced, never followed).
    static func createFile(_ name: [UInt8], in directory: DirectoryHandle) throws -> Int32 {
        let flags = O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC
        for attempt in 0..<2 {
            let descriptor = SystemCalls.withCString(name) { openat(directory.descriptor, $0, flags, 0o600) }
            if descriptor >= 0 { return descriptor }
            let number = errno
            guard attempt == 0, number == ELOOP || number == EISDIR || number == ETXTBSY || number == EACCES else {
                throw SystemCallError(action: "create", path: SystemCalls.display(directory.path(of: name)), number: number).backupError
            }
            try RestoreRun.remove(name, in: directory)
        }
        throw BackupError(.io, "cannot create \(SystemCalls.display(directory.path(of: name)))")
    }

    /// Mode, owner, extended attributes and times of an open file; a warning if some could not be set.
    static func setMetadata(_ entry: FileEntry, descriptor: Int32, path: [UInt8], restoreOwnership: Bool) -> String? {
        var problems: [String] = []
        if restoreOwnership, fchown(descriptor, entry.userID, entry.groupID) != 0 {
            problems.append("owner: \(String(cString: strerror(errno)))")
        }
        // After chown, which clears set-user-id bits.
        if fchmod(descriptor, mode_t(entry.mode)) != 0 { problems.append("mode: \(String(cString: strerror(errno)))") }
        if let attributes = entry.extendedAttributes {
            do { try SystemCalls.setExtendedAttributes(attributes, path: path) } catch { problems.append("\(error)") }
        }
        let times = SystemCalls.times(modified: entry.modified)
        if futimens(descriptor, times) != 0 { problems.append("times: \(String(cString: strerror(errno)))") }
        return problems.isEmpty ? nil : "\(SystemCalls.display(path)): could not set \(problems.joined(separator: ", "))"
    }
}

/// The state of one restore: open directories along the current path, and what is left for
/// the end (hard links, directory metadata).
/// A class, not a struct: it is used across suspension points inside a task group, where an
/// `inout` capture of a struct has proved fragile.
private final class RestoreRun {
    let root: DirectoryHandle
    let chunks: ChunkStore
    let options: RestoreOptions
    let snapshot: Snapshot
    let progress: @Sendable (RestoreProgress) -> Void
    var report = RestoreReport()
    var counters = RestoreProgress()
    /// The directories from the target down to the one entries are being placed in.
    var open: [(path: SnapshotPath, handle: DirectoryHandle)]
    var directories: [(path: SnapshotPath, entry: FileEntry)] = []
    var hardLinks: [(path: SnapshotPath, entry: FileEntry)] = []
    var lastLeaf: SnapshotPath?
    var lastLeafKind = FileEntry.Kind.file

    init(root: DirectoryHandle, chunks: ChunkStore, options: RestoreOptions, snapshot: Snapshot, progress: @escaping @Sendable (RestoreProgress) -> Void) {
        self.root = root
        self.chunks = chunks
        self.options = options
        self.snapshot = snapshot
        self.progress = progress
        open = [(.root, root)]
    }

    var targetPath: [UInt8] { root.path }

    /// Creates the entry at `path`, or returns the file write it needs.
    func place(_ entry: FileEntry, at path: SnapshotPath) throws -> Restorer.FileWrite? {
        // A subtree follows its root in key order, so a path under a non-directory of the
        // snapshot comes right after it: a hostile snapshot's way to write through a symlink.
        if let leaf = lastLeaf, path.isWithin(leaf) {
            throw BackupError(.unsafePath, "refusing \(path): it lies under \(leaf), which the snapshot records as a \(lastLeafKind)")
        }
        if entry.kind != .directory {
            lastLeaf = path
            lastLeafKind = entry.kind
        }
        let directory = try enterParent(of: path)
        let name = path.name
        counters.entries += 1
        switch entry.kind {
        case .file:
            return Restorer.FileWrite(directory: directory, name: name, entry: entry, path: path)
        case .directory:
            try makeDirectory(name, in: directory)
            directories.append((path, entry))
            report.directories += 1
        case .symlink:
            try Self.remove(name, in: directory)
            let target = entry.linkTarget ?? []
            let code = SystemCalls.withCString(target) { cTarget in
                SystemCalls.withCString(name) { symlinkat(cTarget, directory.descriptor, $0) }
            }
            guard code == 0 else { throw SystemCallError(action: "create the symlink", path: display(directory, name), number: errno).backupError }
            applyLinkMetadata(entry, name: name, in: directory)
            report.otherEntries += 1
        case .hardLink:
            hardLinks.append((path, entry))
        case .fifo, .characterDevice, .blockDevice:
            try Self.remove(name, in: directory)
            let type: mode_t = entry.kind == .fifo ? S_IFIFO : entry.kind == .characterDevice ? S_IFCHR : S_IFBLK
            let code = SystemCalls.withCString(name) {
                mknodat(directory.descriptor, $0, type | mode_t(entry.mode & 0o777), dev_t(entry.deviceNumber ?? 0))
            }
            if code != 0 {
                report.warnings.append("\(display(directory, name)): cannot create the \(entry.kind): \(String(cString: strerror(errno)))")
                return nil
            }
            applyLinkMetadata(entry, name: name, in: directory)
            report.otherEntries += 1
        case .socket:
            // A socket belongs to the process that listens on it; there is nothing to restore.
            break
        }
        return nil
    }

    func finish(_ written: Restorer.WrittenFile) {
        if let lost = written.lost {
            report.lostFiles.append(LostFile(path: "\(written.path)", reason: lost))
            return
        }
        report.files += 1
        report.bytes += written.bytes
        counters.files += 1
        counters.bytes += written.bytes
        if let warning = written.warning { report.warnings.append(warning) }
        progress(counters)
    }

    private func display(_ directory: DirectoryHandle, _ name: [UInt8]) -> String {
        SystemCalls.display(directory.path(of: name))
    }

    /// The open directory that holds `path`, opening (and creating) directories on the way.
    private func enterParent(of path: SnapshotPath) throws -> DirectoryHandle {
        let parent = path.parent ?? .root
        while let top = open.last, !parent.isWithin(top.path) { open.removeLast() }
        var current = open.last!
        let have = current.path.components.count
        for name in parent.components.dropFirst(have) {
            try makeDirectory(name, in: current.handle)
            let handle: DirectoryHandle
            do {
                handle = try SystemCalls.openDirectory(name, in: current.handle)
            } catch let error as SystemCallError where error.number == ELOOP || error.number == ENOTDIR {
                throw BackupError(.unsafePath, "refusing \(path): \(display(current.handle, name)) is not a directory (a symlink or a file is in the way)")
            }
            current = (current.path.appending(name), handle)
            open.append(current)
        }
        return current.handle
    }

    /// Makes a directory unless one is there; a file or symlink in the way is removed.
    private func makeDirectory(_ name: [UInt8], in directory: DirectoryHandle) throws {
        let code = SystemCalls.withCString(name) { mkdirat(directory.descriptor, $0, 0o700) }
        if code == 0 { return }
        guard errno == EEXIST else { throw SystemCallError(action: "create the directory", path: display(directory, name), number: errno).backupError }
        if let status = try? SystemCalls.status(of: name, in: directory), status.kind == .directory { return }
        try Self.remove(name, in: directory)
        guard SystemCalls.withCString(name, { mkdirat(directory.descriptor, $0, 0o700) }) == 0 else {
            throw SystemCallError(action: "create the directory", path: display(directory, name), number: errno).backupError
        }
    }

    /// Removes what is at `name` (a directory only if empty), if anything.
    static func remove(_ name: [UInt8], in directory: DirectoryHandle) throws {
        guard let status = try? SystemCalls.status(of: name, in: directory) else { return }
        let flags = status.kind == .directory ? AT_REMOVEDIR : 0
        guard SystemCalls.withCString(name, { unlinkat(directory.descriptor, $0, flags) }) == 0 || errno == ENOENT else {
            throw SystemCallError(action: "replace", path: SystemCalls.display(directory.path(of: name)), number: errno).backupError
        }
    }

    /// Owner and times of a symlink or special file (modes of symlinks do not exist on Linux).
    private func applyLinkMetadata(_ entry: FileEntry, name: [UInt8], in directory: DirectoryHandle) {
        if options.restoreOwnership {
            _ = SystemCalls.withCString(name) { fchownat(directory.descriptor, $0, entry.userID, entry.groupID, AT_SYMLINK_NOFOLLOW) }
        }
        if entry.kind != .symlink {
            _ = SystemCalls.withCString(name) { fchmodat(directory.descriptor, $0, mode_t(entry.mode), 0) }
        }
        let times = SystemCalls.times(modified: entry.modified)
        _ = SystemCalls.withCString(name) { utimensat(directory.descriptor, $0, times, AT_SYMLINK_NOFOLLOW) }
    }

    /// Hard links last, once the files they name are written. A link whose first name lies
    /// outside the restored paths gets that file's content.
    func linkHardLinks(database: Database) async throws {
        for (path, entry) in hardLinks {
            let directory = try enterParent(of: path)
            let targetText = String(decoding: entry.linkTarget ?? [], as: UTF8.self)
            let target = try SnapshotPath(targetText)
            let restored = options.paths.isEmpty || options.paths.contains { target.isWithin($0) }
            try Self.remove(path.name, in: directory)
            if restored {
                let source = root.path(of: target.slashSeparated)
                let code = SystemCalls.withCString(source) { cSource in
                    SystemCalls.withCString(path.name) { linkat(AT_FDCWD, cSource, directory.descriptor, $0, 0) }
                }
                guard code == 0 else {
                    throw SystemCallError(action: "link \(targetText) as", path: display(directory, path.name), number: errno).backupError
                }
                report.otherEntries += 1
                continue
            }
            guard let file = try await snapshot.get(target, in: SnapshotIndex.files), file.kind == .file else {
                throw BackupError(.corrupt, "the hard link \(path) names \(targetText), which is not a file of the snapshot")
            }
            finish(try await Restorer.write(
                Restorer.FileWrite(directory: directory, name: path.name, entry: file, path: path), chunks: database.store.chunks,
                restoreOwnership: options.restoreOwnership))
        }
    }

    /// Modes, owners, attributes and times of directories, deepest first.
    func applyDirectoryMetadata() {
        for (path, entry) in directories.reversed() {
            let diskPath = root.path(of: path.slashSeparated)
            let descriptor = SystemCalls.withCString(diskPath) { Glibc.open($0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            guard descriptor >= 0 else {
                report.warnings.append("\(SystemCalls.display(diskPath)): cannot set the directory's metadata: \(String(cString: strerror(errno)))")
                continue
            }
            if let warning = Restorer.setMetadata(entry, descriptor: descriptor, path: diskPath, restoreOwnership: options.restoreOwnership) {
                report.warnings.append(warning)
            }
            close(descriptor)
        }
    }
}
