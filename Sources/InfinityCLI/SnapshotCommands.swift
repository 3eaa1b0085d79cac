import ArgumentParser
import Foundation
import InfinityBackup
import InfinityDB

/// A store opened for a command, with its database and working directory (if any).
struct OpenedStore {
    var workspace: Workspace
    var store: Store
    var database: Database

    init(_ options: StoreOptionGroup) async throws {
        try await self.init(options, workspace: try options.location())
    }

    /// Opens the store of a workspace already found.
    init(_ options: StoreOptionGroup, workspace: Workspace) async throws {
        self.workspace = workspace
        store = try await OpenedStores.open(workspace.storePath, passphrase: try options.passphrase())
        database = try store.database(nodeCacheCapacity: 16 << 20)
    }

    /// The snapshot path for a path the user typed (see ``Workspace/snapshotPath(_:)``).
    func snapshotPath(_ text: String) throws -> SnapshotPath {
        try workspace.snapshotPath(text)
    }

    /// The snapshot HEAD points at, or nil before the first commit.
    func headSnapshot() async throws -> Snapshot? {
        let snapshot = try await database.snapshot("HEAD")
        return snapshot.commit == nil ? nil : snapshot
    }
}

extension Workspace {
    /// The snapshot path for a path the user typed: in a working directory, relative to the
    /// current directory and inside the working directory; in a bare store, a snapshot path
    /// as `ls` shows it (a leading `/` is allowed).
    func snapshotPath(_ text: String) throws -> SnapshotPath {
        guard let root = workingDirectory else { return try SnapshotPath(text) }
        let absolute = URL(fileURLWithPath: text, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath + "/"))
            .standardizedFileURL.path
        if absolute == root { return .root }
        guard absolute.hasPrefix(root + "/") else {
            throw ValidationError("\(text) is outside the working directory \(root)")
        }
        return try SnapshotPath(String(absolute.dropFirst(root.count + 1)))
    }
}

struct CommitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit",
        abstract: "Record a snapshot of directory trees.",
        discussion: """
            In a working directory, records the whole directory (or only the PATHs given, keeping the rest as it was). With a bare store, records each PATH under its absolute path. Files whose size, times and inode are unchanged since the parent snapshot are not read again. Files that vanish or change while being read are reported and the exit status is 3.

            Excludes use gitignore syntax: --exclude patterns apply from each PATH's root, and .infinityignore files apply in their directory and below.

            Examples:
              infinity commit -m "draft 2"
              infinity commit src docs -m "only these"
              infinity commit /home/ann --store /srv/backups --exclude '*.tmp' --exclude-caches -m nightly
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "What to record (default: the working directory).")
    var paths: [String] = []

    @Option(name: [.short, .long], help: "The commit message.")
    var message: String?

    @Option(name: .long, help: "The branch to commit on (default: the current branch).")
    var branch: String?

    @Option(name: .long, help: "Leave out paths matching this gitignore-style pattern (repeatable).")
    var exclude: [String] = []

    @Flag(name: .long, help: "Leave out the contents of directories tagged with CACHEDIR.TAG.")
    var excludeCaches = false

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        let workspace = try options.location()
        var sources: [BackupSource] = []
        if let root = workspace.workingDirectory {
            if paths.isEmpty {
                sources = [BackupSource(diskPath: root, snapshotPath: .root)]
            } else {
                for path in paths {
                    let snapshotPath = try workspace.snapshotPath(path)
                    let disk = snapshotPath.isRoot ? root : root + "/" + snapshotPath.description
                    sources.append(BackupSource(diskPath: disk, snapshotPath: snapshotPath))
                }
            }
        } else {
            guard !paths.isEmpty else { throw ValidationError("a bare store has no working directory: name the paths to commit") }
            sources = try paths.map { try BackupSource.absolute($0) }
        }
        let names = paths.isEmpty ? [workspace.workingDirectory ?? ""] : paths
        var backupOptions = BackupOptions(message: message ?? "Snapshot of \(names.joined(separator: ", "))", branch: branch)
        backupOptions.excludePatterns = exclude
        backupOptions.excludeCaches = excludeCaches
        backupOptions.skippedDiskPaths = [workspace.storePath]
        backupOptions.sourceNames = names
        // The walk's first reads of directories and inodes happen while the passphrase is stretched.
        let warmUp = SourceWarmUp.start(sources, options: backupOptions)
        defer { warmUp.stop() }
        backupOptions.warmUp = warmUp
        let opened = try await OpenedStore(options, workspace: workspace)
        if options.verbose && !json {
            backupOptions.onChange = { change in
                StandardError.print("\(ChangeText.letter(change.kind)) \(change.path)")
            }
        }
        HeapTrimmer.start()
        // A branch that does not exist yet has nothing to estimate from.
        let estimate = try? await opened.database.snapshot(branch ?? "HEAD").get(SnapshotIndex.summary)?.bytes
        let progress = ProgressLine("committing", total: estimate.map { Int($0) }, quiet: options.quiet || json)
        let report = try await Backup(database: opened.database).commit(sources, options: backupOptions) { counters in
            progress.update(Int(counters.bytes), files: counters.files)
        }
        progress.finish()
        for warning in report.warnings { StandardError.print("warning: \(warning)") }
        if json {
            try JSONOutput.print(CommitJSON(report))
        } else if !options.quiet {
            let id = report.snapshot.commit?.ref.id.shortDescription ?? "?"
            let branchName = try branch ?? opened.database.currentBranch() ?? "HEAD"
            print("snapshot \(id) on \(branchName): \(report.added) added, \(report.changed) changed, \(report.removed) removed, \(report.unchanged) unchanged")
            print("  \(report.summary.files) files, \(ByteCount.format(Int(report.summary.bytes))); read \(report.filesRead) files (\(ByteCount.format(Int(report.bytesRead)))), store grew by \(ByteCount.format(Int(report.bytesAdded)))")
        }
        try await opened.store.keepSpread(quiet: options.quiet || json)
        if !report.warnings.isEmpty { throw ExitCode(3) }
    }

    struct CommitJSON: Encodable {
        var commit: String
        var added, changed, removed, unchanged, filesRead: Int
        var bytesRead, bytesAdded: Int64
        var summary: SnapshotSummary
        var warnings: [String]

        init(_ report: BackupReport) {
            commit = report.snapshot.commit?.ref.id.description ?? ""
            added = report.added
            changed = report.changed
            removed = report.removed
            unchanged = report.unchanged
            filesRead = report.filesRead
            bytesRead = report.bytesRead
            bytesAdded = report.bytesAdded
            summary = report.summary
            warnings = report.warnings
        }
    }
}

struct Checkout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a snapshot, or part of it, byte for byte with metadata.",
        discussion: """
            With --to DIR, writes the snapshot's paths under DIR. In a working directory without --to, makes the working directory match REV (writing what differs and removing what REV lacks) and moves HEAD to REV; it refuses when that would overwrite changes not yet committed, unless --force. With PATHs, only those are restored and HEAD stays.

            Paths in a snapshot can never escape the target: '..', absolute names and writes through symlinks are refused.

            Examples:
              infinity checkout main~3 --to /tmp/old
              infinity checkout feature
              infinity checkout HEAD docs/report.md --force
              infinity checkout nightly home/ann/photos --to /mnt/restore --store /srv/backups
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "The revision: a branch, tag, commit id prefix, main~2, main@{2026-05-01 12:00}…")
    var revision: String

    @Argument(help: "Paths inside the snapshot to restore (default: all).")
    var paths: [String] = []

    @Option(name: .long, help: "Restore under this directory instead of the working directory.")
    var to: String?

    @Flag(name: .long, help: "Overwrite uncommitted changes in the working directory.")
    var force = false

    func run() async throws {
        let opened = try await OpenedStore(options)
        let target = try await opened.database.snapshot(revision)
        let selected = try paths.map { try (to == nil ? opened.snapshotPath($0) : SnapshotPath($0)) }
        if let to {
            let report = try await restore(target, to: to, paths: selected, opened: opened, total: try await target.get(SnapshotIndex.summary)?.bytes)
            if !options.quiet {
                print("restored \(report.files) files, \(report.directories) directories, \(ByteCount.format(Int(report.bytes))) to \(to)")
            }
            if report.isPartial { throw ExitCode(3) }
            return
        }
        guard let root = opened.workspace.workingDirectory else {
            throw ValidationError("a bare store has no working directory: give --to DIR")
        }
        try await WorkingDirectoryUpdate(opened: opened, root: root, quiet: options.quiet).move(
            to: target, revision: revision, paths: selected, force: force)
    }

    func restore(_ snapshot: Snapshot, to directory: String, paths: [SnapshotPath], opened: OpenedStore, total: Int64?) async throws -> RestoreReport {
        var restoreOptions = RestoreOptions()
        restoreOptions.paths = paths
        let progress = ProgressLine("restoring", total: paths.isEmpty ? total.map { Int($0) } : nil, quiet: options.quiet)
        let report = try await Restorer(database: opened.database).restore(snapshot, to: directory, options: restoreOptions) {
            progress.update(Int($0.bytes), files: $0.files)
        }
        progress.finish()
        report.printProblems()
        return report
    }
}

/// Brings a working directory from HEAD's snapshot to another one: writes what differs,
/// removes what the target lacks, refuses to overwrite uncommitted changes.
struct WorkingDirectoryUpdate {
    var opened: OpenedStore
    var root: String
    var quiet: Bool

    /// Paths changed on disk since HEAD (within `paths`, all when empty).
    func uncommittedChanges(within paths: [SnapshotPath]) async throws -> [PathChange] {
        var changes: [PathChange] = []
        try await SnapshotChanges.workingDirectory(root, against: try await opened.headSnapshot(), skipping: [opened.workspace.storePath]) {
            if paths.isEmpty || paths.contains(where: $0.path.isWithin) { changes.append($0) }
        }
        return changes
    }

    func move(from current: Snapshot? = nil, to target: Snapshot, revision: String, paths: [SnapshotPath], force: Bool) async throws {
        let fromMerge = current != nil
        var head = current
        if head == nil { head = try await opened.headSnapshot() }
        if !force && !fromMerge {
            let dirty = try await uncommittedChanges(within: paths)
            // Added files that the target does not have are left alone, so they are no obstacle.
            var blocking: [PathChange] = []
            for change in dirty {
                if change.kind == .added, try await target.get(change.path, in: SnapshotIndex.files) == nil { continue }
                blocking.append(change)
            }
            if !blocking.isEmpty {
                let shown = blocking.prefix(10).map { "  \($0.kind.rawValue): \($0.path)" }.joined(separator: "\n")
                let more = blocking.count > 10 ? "\n  … and \(blocking.count - 10) more" : ""
                throw BackupError(.uncommittedChanges, "the working directory has changes that checkout would overwrite (commit them, or pass --force):\n\(shown)\(more)")
            }
        }
        // Write what differs from HEAD, or everything when nothing is committed yet or forced.
        var toWrite: [SnapshotPath] = paths
        var toRemove: [SnapshotPath] = []
        if let head, !force {
            toWrite = []
            try await SnapshotChanges.between(head, target, within: paths) { change in
                if change.kind == .removed { toRemove.append(change.path) } else { toWrite.append(change.path) }
            }
        } else if let head {
            try await SnapshotChanges.between(head, target, within: paths) { change in
                if change.kind == .removed { toRemove.append(change.path) }
            }
        }
        var report = RestoreReport()
        if head == nil || force || !toWrite.isEmpty {
            var restoreOptions = RestoreOptions()
            restoreOptions.paths = toWrite
            let progress = ProgressLine("checking out", total: nil, quiet: quiet)
            report = try await Restorer(database: opened.database).restore(target, to: root, options: restoreOptions) {
                progress.update(Int($0.bytes), files: $0.files)
            }
            progress.finish()
        }
        for path in toRemove.sorted().reversed() {
            let disk = root + "/" + path.description
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: disk)) != nil || !isDirectory(disk) {
                unlink(disk)
            } else {
                rmdir(disk)
            }
        }
        report.printProblems()
        if paths.isEmpty && !fromMerge && !["HEAD", "@"].contains(revision) {
            if try opened.database.branches().contains(where: { $0.name == revision }) {
                try opened.database.switchBranch(to: revision)
            } else if let commit = target.commit {
                try opened.database.refs.setHead(.detached(commit.ref), agent: opened.store.identity.id, message: "checkout \(revision)")
            }
        }
        if !quiet {
            let where_ = paths.isEmpty ? "" : " (\(paths.count) path\(paths.count == 1 ? "" : "s"))"
            print("checked out \(revision)\(where_): \(report.files) files written, \(toRemove.count) paths removed")
        }
        if report.isPartial { throw ExitCode(3) }
    }

    private func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what changed in the working directory since HEAD.",
        discussion: """
            A file counts as modified when its size or modification time differ from HEAD's snapshot; its bytes are not read.

            Examples:
              infinity status
              infinity status --json | jq -r '.[] | select(.change == "added") | .path'
            """)

    @OptionGroup var options: StoreOptionGroup

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func run() async throws {
        let opened = try await OpenedStore(options)
        guard let root = opened.workspace.workingDirectory else { throw ValidationError("a bare store has no working directory") }
        let changes = try await WorkingDirectoryUpdate(opened: opened, root: root, quiet: true).uncommittedChanges(within: [])
        if json { return try JSONOutput.print(changes) }
        let branch = try opened.database.currentBranch().map { "on branch \($0)" } ?? "HEAD detached"
        print(branch)
        if changes.isEmpty { print("nothing changed since the last commit") }
        for change in changes { print("\(ChangeText.letter(change.kind)) \(change.path)") }
    }
}

enum ChangeText {
    static func letter(_ kind: PathChange.Kind) -> String {
        switch kind {
        case .added: "+"
        case .removed: "-"
        case .modified: "M"
        case .metadata: "U"
        }
    }
}

struct Diff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what changed between two snapshots.",
        discussion: """
            With one revision, compares it with its first parent. Letters: + added, - removed, M modified (content), U metadata only (mode, owner, time, attributes).

            Examples:
              infinity diff HEAD
              infinity diff main~5 main --stat
              infinity diff v1 v2 docs --json
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "One revision (against its parent) or two, then optional paths.")
    var arguments: [String]

    @Flag(name: .long, help: "Print only counts and sizes.")
    var stat = false

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func run() async throws {
        guard let first = arguments.first else { throw ValidationError("give a revision to compare") }
        let opened = try await OpenedStore(options)
        var old: Snapshot
        var new: Snapshot
        var rest = Array(arguments.dropFirst())
        if let second = rest.first, (try? await opened.database.resolve(second)) != nil {
            old = try await opened.database.snapshot(first)
            new = try await opened.database.snapshot(second)
            rest.removeFirst()
        } else {
            new = try await opened.database.snapshot(first)
            if let parent = new.commit?.commit.parents.first {
                old = try await opened.database.snapshot(commit: parent)
            } else {
                old = opened.database.emptySnapshot()
            }
        }
        let paths = try rest.map { try opened.snapshotPath($0) }
        var changes: [PathChange] = []
        try await SnapshotChanges.between(old, new, within: paths) { changes.append($0) }
        if json { return try JSONOutput.print(changes) }
        var counts: [PathChange.Kind: Int] = [:]
        var added: Int64 = 0
        var removed: Int64 = 0
        for change in changes {
            counts[change.kind, default: 0] += 1
            if change.entryKind == .file {
                added += max(0, (change.newSize ?? 0) - (change.oldSize ?? 0))
                removed += max(0, (change.oldSize ?? 0) - (change.newSize ?? 0))
            }
            if !stat {
                let size = change.entryKind == .file ? "  \(sizeText(change))" : ""
                print("\(ChangeText.letter(change.kind)) \(change.path)\(change.entryKind == .directory ? "/" : "")\(size)")
            }
        }
        if stat || !options.quiet {
            let summary = [PathChange.Kind.added, .removed, .modified, .metadata].map { "\(counts[$0, default: 0]) \($0.rawValue)" }
            print("\(summary.joined(separator: ", ")); +\(ByteCount.format(Int(added))) -\(ByteCount.format(Int(removed)))")
        }
    }

    private func sizeText(_ change: PathChange) -> String {
        switch (change.oldSize, change.newSize) {
        case (let old?, let new?) where old != new: "\(ByteCount.format(Int(old))) → \(ByteCount.format(Int(new)))"
        case (_, let new?): ByteCount.format(Int(new))
        case (let old?, nil): ByteCount.format(Int(old))
        default: ""
        }
    }
}

extension RestoreReport {
    /// Some path was not restored whole: exit status 3.
    var isPartial: Bool { !warnings.isEmpty || !lostFiles.isEmpty }

    /// Warnings, then the files whose content the store could not give back, on standard error.
    func printProblems() {
        for warning in warnings { StandardError.print("warning: \(warning)") }
        for lost in lostFiles { StandardError.print("error: \(lost.path) not restored: \(lost.reason)") }
        if !lostFiles.isEmpty {
            StandardError.print(
                "error: \(lostFiles.count) file\(lostFiles.count == 1 ? "" : "s") could not be restored: their content is damaged or missing in the store; everything else was restored ('infinity check --read-data' lists the damage)")
        }
    }
}
