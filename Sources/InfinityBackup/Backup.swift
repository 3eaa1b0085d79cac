#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import InfinityDB
import Synchronization

/// A directory tree on disk and where it goes in the snapshot.
public struct BackupSource: Sendable, Hashable {
    /// The path on disk (a directory, or any other file).
    public var diskPath: String
    /// Where its contents are recorded.
    public var snapshotPath: SnapshotPath

    public init(diskPath: String, snapshotPath: SnapshotPath) {
        self.diskPath = diskPath
        self.snapshotPath = snapshotPath
    }

    /// A source recorded under its absolute path without the leading `/` (as tar and borg do):
    /// `/home/ann/photos` becomes `home/ann/photos`.
    public static func absolute(_ path: String) throws -> BackupSource {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let standardized = URL(fileURLWithPath: absolute).standardizedFileURL.path
        return BackupSource(diskPath: standardized, snapshotPath: try SnapshotPath(standardized))
    }
}

/// What a commit does beyond the sources themselves.
public struct BackupOptions: Sendable {
    /// The commit message.
    public var message: String
    /// The branch to commit on (default: the branch HEAD is on).
    public var branch: String?
    /// gitignore-style patterns, relative to each source's root.
    public var excludePatterns: [String] = []
    /// Skip the contents of directories holding a valid `CACHEDIR.TAG`.
    public var excludeCaches = false
    /// Disk paths never entered (a working directory's own `.infinity`).
    public var skippedDiskPaths: [String] = []
    /// How many files are read and stored at once, at most: small files need many in flight
    /// to keep every core busy while the walk goes on.
    public var concurrentFiles = max(16, ProcessInfo.processInfo.activeProcessorCount * 16)
    /// Bytes of file content in flight at once, at most (a file counts its size up to its
    /// reader's buffer, one maximum chunk and 1 MiB); one file is always allowed.
    public var bytesInFlight = 16 << 20
    /// The user-facing names of the sources, for the snapshot's summary.
    public var sourceNames: [String] = []
    /// Called with each path the snapshot records differently from its parent (for
    /// `commit --verbose`). Changes of times alone that a restore would not set are left out.
    public var onChange: (@Sendable (PathChange) -> Void)?
    /// A warm-up of the same sources started earlier (before the store was unlocked, say);
    /// when nil or stopped, the commit starts its own. Either way the commit stops it when it ends.
    public var warmUp: SourceWarmUp?

    public init(message: String, branch: String? = nil) {
        self.message = message
        self.branch = branch
    }
}

/// Counters of a running commit, for progress displays.
public struct BackupProgress: Sendable {
    /// Paths walked so far, and how many of them were files.
    public var entries = 0
    public var files = 0
    /// Bytes of the files walked so far (read or found unchanged).
    public var bytes: Int64 = 0
    /// Bytes actually read from disk so far.
    public var bytesRead: Int64 = 0
}

/// What a commit did.
public struct BackupReport: Sendable {
    /// The snapshot written.
    public var snapshot: Snapshot
    public var summary: SnapshotSummary
    /// Paths new since the parent, changed (content or metadata), removed, and unchanged.
    public var added = 0
    public var changed = 0
    public var removed = 0
    public var unchanged = 0
    /// Files whose content was read (new or changed since the parent by size, times or inode).
    public var filesRead = 0
    public var bytesRead: Int64 = 0
    /// Bytes the store grew by: the packs written, sealed chunks after deduplication and
    /// compression plus the packs' trailers.
    public var bytesAdded: Int64 = 0
    /// Problems that left a path out or recorded it as it was mid-change (vanished, unreadable,
    /// modified while being read). A report with warnings is a partial snapshot.
    public var warnings: [String] = []
}

/// Commits snapshots of directory trees into a ``Database``: each snapshot is a commit whose
/// index holds ``SnapshotIndex/files`` (every path with its metadata and content) and
/// ``SnapshotIndex/summary``.
public struct Backup: Sendable {
    public let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Records `sources` as a new commit on the branch: each source's subtree is replaced by what
    /// is on disk now, and every other path of the parent snapshot is kept.
    ///
    /// Files whose size, modification time, change time and inode match the parent snapshot are
    /// not read again. Files are read, chunked, sealed and stored in parallel (at most
    /// ``BackupOptions/concurrentFiles`` at once), and the walk holds one directory listing per
    /// level: memory does not grow with the tree.
    public func commit(
        _ sources: [BackupSource], options: BackupOptions, progress: @escaping @Sendable (BackupProgress) -> Void = { _ in }
    ) async throws -> BackupReport {
        try Self.checkDisjoint(sources)
        let warmUp = options.warmUp.flatMap { $0.isStopped ? nil : $0 } ?? SourceWarmUp.start(sources, options: options)
        defer { warmUp.stop() }
        let started = Date()
        let storedBefore = database.store.chunks.packs.storedPackBytes
        let draft = try await database.draft(on: options.branch)
        let parent = await draft.base
        let run = CommitRun(
            draft: draft, parent: parent, options: options, listings: warmUp.listings, progress: progress,
            totals: try await parent.get(SnapshotIndex.summary) ?? Self.emptySummary(options))
        for source in sources {
            try await run.recordAncestors(of: source)
            try await run.record(source)
        }
        var summary = run.totals
        summary.hostname = ProcessInfo.processInfo.hostName
        summary.username = ProcessInfo.processInfo.userName
        summary.sources = options.sourceNames.isEmpty ? sources.map(\.diskPath) : options.sourceNames
        summary.started = started.timeIntervalSince1970
        summary.finished = Date().timeIntervalSince1970
        try await draft.set(summary, in: SnapshotIndex.summary)
        let snapshot = try await draft.commit(message: options.message)
        var report = run.report(snapshot: snapshot, summary: summary)
        report.bytesAdded = Int64(database.store.chunks.packs.storedPackBytes - storedBefore)
        return report
    }

    private static func emptySummary(_ options: BackupOptions) -> SnapshotSummary {
        SnapshotSummary(hostname: "", username: "", sources: [], started: 0, finished: 0, files: 0, directories: 0, otherEntries: 0, bytes: 0)
    }

    /// Sources may not overlap: each path of the snapshot must come from one walk.
    private static func checkDisjoint(_ sources: [BackupSource]) throws {
        for (index, source) in sources.enumerated() {
            for other in sources[(index + 1)...] where source.snapshotPath.isWithin(other.snapshotPath) || other.snapshotPath.isWithin(source.snapshotPath) {
                throw BackupError(.invalidArgument, "the sources \(source.diskPath) and \(other.diskPath) overlap; give each path once")
            }
        }
    }
}

/// The state of one commit in progress.
/// A class, not a struct: it is used across suspension points inside a task group, where an
/// `inout` capture of a struct has proved fragile.
private final class CommitRun {
    let draft: Draft
    let parent: Snapshot
    let options: BackupOptions
    /// What the warm-up read, for the walks to take.
    let listings: WalkedListings
    let progress: @Sendable (BackupProgress) -> Void
    var totals: SnapshotSummary
    var counters = BackupProgress()
    var added = 0, changed = 0, removed = 0, unchanged = 0, filesRead = 0
    var warnings: [String] = []
    /// The first path seen for each (device, inode) of files with several links.
    var linkedFiles: [FileIdentity: SnapshotPath] = [:]

    struct FileIdentity: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    init(
        draft: Draft, parent: Snapshot, options: BackupOptions, listings: WalkedListings,
        progress: @escaping @Sendable (BackupProgress) -> Void, totals: SnapshotSummary
    ) {
        self.draft = draft
        self.parent = parent
        self.options = options
        self.listings = listings
        self.progress = progress
        self.totals = totals
    }

    func report(snapshot: Snapshot, summary: SnapshotSummary) -> BackupReport {
        BackupReport(
            snapshot: snapshot, summary: summary, added: added, changed: changed, removed: removed, unchanged: unchanged,
            filesRead: filesRead, bytesRead: counters.bytesRead, warnings: warnings)
    }

    /// The directories above a source (`home` and `home/ann` for `home/ann/photos`), so a
    /// restore recreates them with their modes and times.
    func recordAncestors(of source: BackupSource) async throws {
        var ancestor = source.snapshotPath.parent
        var disk = URL(fileURLWithPath: source.diskPath).deletingLastPathComponent()
        var chain: [(SnapshotPath, String)] = []
        while let path = ancestor, !path.isRoot {
            chain.append((path, disk.path))
            ancestor = path.parent
            disk = disk.deletingLastPathComponent()
        }
        for (path, diskPath) in chain.reversed() {
            let status: FileStatus
            do {
                status = try SystemCalls.status(path: Array(diskPath.utf8), followLinks: true)
            } catch {
                warnings.append("\(error)")
                continue
            }
            let item = WalkItem(path: path, diskPath: Array(diskPath.utf8), status: status, linkTarget: nil)
            let previous = try await parent.get(path, in: SnapshotIndex.files)
            try await apply(entry(for: item, previous: previous), previous: previous, at: path, countIn: false)
        }
    }

    /// Walks one source beside the parent's entries for the same subtree (both in key order).
    func record(_ source: BackupSource) async throws {
        var walkOptions = TreeWalker.Options(for: options)
        walkOptions.listings = listings
        var walker = try TreeWalker(source: Array(source.diskPath.utf8), prefix: source.snapshotPath, options: walkOptions)
        var previous = EntryCursor(snapshot: parent, subtree: source.snapshotPath)
        let recordsRoot = !source.snapshotPath.isRoot
        let chunks = draft.database.store.chunks

        try await withThrowingTaskGroup(of: StoredFile.self) { group in
            var reading = 0
            var weightInFlight: Int64 = 0
            var item = try walker.next()
            if !recordsRoot, item?.path.isRoot == true { item = try walker.next() }
            var old = try await previous.peek()
            while item != nil || old != nil {
                if let oldEntry = old, item == nil || oldEntry.path < item!.path {
                    try await draft.remove(oldEntry.path, from: SnapshotIndex.files)
                    subtract(oldEntry.entry)
                    removed += 1
                    options.onChange?(PathChange(.removed, oldEntry.path, old: oldEntry.entry, new: nil))
                    old = try await previous.advance()
                    continue
                }
                let current = item!
                var before: FileEntry? = nil
                if let oldEntry = old, oldEntry.path == current.path {
                    before = oldEntry.entry
                    old = try await previous.advance()
                }
                item = try walker.next()
                var entry = entry(for: current, previous: before)
                counters.entries += 1
                if entry.kind == .file {
                    counters.files += 1
                    counters.bytes += entry.size
                    if let before, before.kind == .file, Self.isUnchanged(current.status, before) {
                        entry.content = before.content
                    } else if entry.size > 0 {
                        let weight = min(entry.size, Int64(chunks.dataChunker.parameters.maximumSize + (1 << 20)))
                        while reading > 0 && (reading >= options.concurrentFiles || weightInFlight + weight > options.bytesInFlight) {
                            let stored = try await group.next()!
                            weightInFlight -= stored.weight
                            try await finish(stored)
                            reading -= 1
                        }
                        let opened = Self.openAhead(current)
                        group.addTask { try await Self.store(current, opened: opened, entry: entry, before: before, chunks: chunks, weight: weight) }
                        reading += 1
                        weightInFlight += weight
                        continue
                    }
                }
                try await apply(entry, previous: before, at: current.path, countIn: true)
                progress(counters)
            }
            while let stored = try await group.next() { try await finish(stored) }
        }
        warnings += walker.warnings
    }

    /// A file read by a child task, with what it found.
    struct StoredFile: Sendable {
        var path: SnapshotPath
        var entry: FileEntry?
        var before: FileEntry?
        var bytesRead: Int64
        var warning: String?
        /// What it counted against ``BackupOptions/bytesInFlight``.
        var weight: Int64 = 0
    }

    private func finish(_ stored: StoredFile) async throws {
        if let warning = stored.warning { warnings.append(warning) }
        counters.bytesRead += stored.bytesRead
        if stored.bytesRead > 0 { filesRead += 1 }
        if let entry = stored.entry {
            try await apply(entry, previous: stored.before, at: stored.path, countIn: true)
        } else if let before = stored.before {
            // Unreadable or gone: it is not part of this snapshot.
            try await draft.remove(stored.path, from: SnapshotIndex.files)
            subtract(before)
            removed += 1
            options.onChange?(PathChange(.removed, stored.path, old: before, new: nil))
        }
        progress(counters)
    }

    /// Bytes of a file the kernel is asked to start reading when the file is queued. Beyond them
    /// its own read-ahead follows the reader.
    static let readAheadLength: Int64 = 8 << 20

    /// Opens a file as it is queued for reading and asks the kernel to start reading it: with a
    /// cold cache its data is then on its way while the files queued before it are stored,
    /// instead of each read waiting for the disk in turn on one of the few threads that compute.
    private static func openAhead(_ item: WalkItem) -> Result<Int32, SystemCallError> {
        do {
            let descriptor = try SystemCalls.openForReading(path: item.diskPath)
            SystemCalls.startReading(descriptor, length: min(item.status.size, readAheadLength))
            return .success(descriptor)
        } catch {
            return .failure(error)
        }
    }

    /// Reads, chunks and stores one file; notices it vanishing or changing meanwhile.
    private static func store(
        _ item: WalkItem, opened: Result<Int32, SystemCallError>, entry: FileEntry, before: FileEntry?, chunks: ChunkStore, weight: Int64
    ) async throws -> StoredFile {
        var stored = try await read(item, opened: opened, entry: entry, before: before, chunks: chunks)
        stored.weight = weight
        return stored
    }

    private static func read(
        _ item: WalkItem, opened: Result<Int32, SystemCallError>, entry: FileEntry, before: FileEntry?, chunks: ChunkStore
    ) async throws -> StoredFile {
        let descriptor: Int32
        switch opened {
        case .success(let open):
            descriptor = open
        case .failure(let error):
            let warning = error.number == ENOENT ? "\(SystemCalls.display(item.diskPath)) vanished before it was read" : error.description
            return StoredFile(path: item.path, entry: nil, before: before, bytesRead: 0, warning: warning)
        }
        defer { close(descriptor) }
        var entry = entry
        var warning: String? = nil
        do {
            let blob = try await chunks.putBlob(sizeHint: Int(entry.size)) {
                try SystemCalls.read(descriptor, into: $0, path: item.diskPath)
            }
            let after = try SystemCalls.status(ofDescriptor: descriptor, path: item.diskPath)
            if after.size != item.status.size || after.modified != item.status.modified || Int64(blob.length) != item.status.size {
                // Recorded as read; the next commit sees a newer change time and reads it again.
                warning = "\(SystemCalls.display(item.diskPath)) changed while it was read; recorded as read"
            }
            entry.size = Int64(blob.length)
            entry.content = blob.length > 0 ? blob : nil
            return StoredFile(path: item.path, entry: entry, before: before, bytesRead: Int64(blob.length), warning: warning)
        } catch let error as SystemCallError {
            return StoredFile(path: item.path, entry: nil, before: before, bytesRead: 0, warning: error.description)
        }
    }

    /// Same size, times and inode as the parent's entry: the content is taken as unchanged.
    private static func isUnchanged(_ status: FileStatus, _ before: FileEntry) -> Bool {
        status.size == before.size && status.modified == before.modified && status.changed == before.changed
            && status.inode == before.inode && (before.content != nil || before.size == 0)
    }

    /// The entry for a walked path, without content. Extended attributes are read unless the
    /// parent's entry has the same inode and change time (setting one changes the ctime).
    private func entry(for item: WalkItem, previous: FileEntry?) -> FileEntry {
        let status = item.status
        var attributes: [FileEntry.ExtendedAttribute]? = nil
        if let previous, previous.inode == status.inode, previous.changed == status.changed {
            attributes = previous.extendedAttributes
        } else {
            do {
                let read = try SystemCalls.extendedAttributes(path: item.diskPath)
                attributes = read.isEmpty ? nil : read
            } catch {
                warnings.append("\(error)")
            }
        }
        var entry = FileEntry(walked: item)
        entry.extendedAttributes = attributes
        if status.kind == .file && status.linkCount > 1 {
            let identity = FileIdentity(device: status.device, inode: status.inode)
            if let first = linkedFiles[identity] {
                entry.kind = .hardLink
                entry.size = 0
                entry.linkTarget = first.slashSeparated
            } else {
                linkedFiles[identity] = item.path
            }
        }
        return entry
    }

    /// Writes the entry unless the parent has exactly it, and keeps the totals.
    private func apply(_ entry: FileEntry, previous: FileEntry?, at path: SnapshotPath, countIn: Bool) async throws {
        if let previous { subtract(previous) }
        add(entry)
        if previous == entry {
            if countIn { unchanged += 1 }
            return
        }
        try await draft.set(entry, for: path, in: SnapshotIndex.files)
        if countIn {
            if previous == nil { added += 1 } else { changed += 1 }
        }
        if let onChange = options.onChange, let change = PathChange.between(path, old: previous, new: entry) { onChange(change) }
    }

    private func add(_ entry: FileEntry) {
        switch entry.kind {
        case .file:
            totals.files += 1
            totals.bytes += entry.size
        case .directory: totals.directories += 1
        default: totals.otherEntries += 1
        }
    }

    private func subtract(_ entry: FileEntry) {
        switch entry.kind {
        case .file:
            totals.files -= 1
            totals.bytes -= entry.size
        case .directory: totals.directories -= 1
        default: totals.otherEntries -= 1
        }
    }
}
