import Foundation
import Synchronization

/// Walks backup sources ahead of a commit, on threads of its own, listing directories and
/// reading each path's status, so that the commit's own walk finds them in the kernel's caches.
///
/// With a cold cache, most of an unchanged backup goes to waiting for directory blocks and
/// inodes, one after another on the commit's path. A warm-up started before the store is
/// unlocked does those reads while the passphrase is stretched, and then runs beside the commit,
/// usually ahead of it. Several threads walk at once, because a disk serves many small reads in
/// the time of a few one after another; they take directories from a shared stack in about the
/// order of the commit's depth-first walk. It reads no file contents (only the
/// `.infinityignore` and `CACHEDIR.TAG` files the walk rules need), writes nothing and reports
/// nothing: the commit's walk sees and reports everything itself.
/// ``Backup/commit(_:options:progress:)`` starts one unless ``BackupOptions/warmUp`` holds one
/// not yet stopped.
public final class SourceWarmUp: Sendable {
    /// A directory waiting to be listed, with the ignore rules in force inside it.
    private struct PendingDirectory {
        var diskPath: [UInt8]
        var relative: [[UInt8]]
        var rules: IgnoreRules
    }

    /// Directories not yet listed (the next on top), and how many threads are listing one.
    private struct Work {
        var pending: [PendingDirectory] = []
        var listing = 0
        var ended = false
    }

    /// Threads that walk at once: past four, this machine's disk gave no more.
    static let threadCount = 4

    /// What the walk read, for the commit's walk to use instead of reading it again.
    let listings = WalkedListings()
    private let stopped = Atomic<Bool>(false)
    private let runningThreads = Atomic<Int>(0)
    private let walked = Atomic<Int>(0)
    private let options: TreeWalker.Options
    private let condition = NSCondition()
    /// Read and written only while `condition` is locked.
    private nonisolated(unsafe) var work = Work()

    private init(options: TreeWalker.Options) {
        self.options = options
    }

    /// Starts walking `sources` with the walk rules of `options` (excludes, cache tags, skipped
    /// paths).
    public static func start(_ sources: [BackupSource], options: BackupOptions) -> SourceWarmUp {
        let warmUp = SourceWarmUp(options: TreeWalker.Options(for: options))
        warmUp.runningThreads.store(threadCount, ordering: .relaxed)
        for number in 0..<threadCount {
            let thread = Thread { [warmUp] in
                // The first thread looks at the roots; the others wait for their directories.
                if number == 0 { warmUp.visitRoots(sources) }
                warmUp.walkPending()
                warmUp.runningThreads.subtract(1, ordering: .releasing)
            }
            thread.name = "infinity-warm-up"
            thread.start()
        }
        return warmUp
    }

    /// Stops the walk at its next path (it may still be inside one system call).
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// Whether ``stop()`` was called.
    public var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// Whether the walk has ended, by reaching the end of every source or by ``stop()``.
    public var isFinished: Bool { runningThreads.load(ordering: .acquiring) == 0 }

    /// Paths walked so far.
    public var pathsWalked: Int { walked.load(ordering: .relaxed) }

    private func visitRoots(_ sources: [BackupSource]) {
        var roots: [PendingDirectory] = []
        for source in sources {
            let diskPath = Array(source.diskPath.utf8)
            guard let status = try? SystemCalls.status(path: diskPath) else { continue }
            walked.add(1, ordering: .relaxed)
            if status.kind == .directory {
                var rules = IgnoreRules()
                rules.add(patterns: options.excludePatterns)
                roots.append(PendingDirectory(diskPath: diskPath, relative: [], rules: rules))
            }
        }
        push(roots, listed: false)
    }

    /// Takes directories from the stack until none is left and none is being listed.
    private func walkPending() {
        while let directory = nextDirectory() { push(list(directory), listed: true) }
    }

    /// Puts directories found on the stack, the first on top; `listed` when they come from a
    /// listing taken with ``nextDirectory()``. The walk ends when nothing is left to list.
    private func push(_ found: [PendingDirectory], listed: Bool) {
        condition.lock()
        if listed { work.listing -= 1 }
        work.pending.append(contentsOf: found.reversed())
        if work.pending.isEmpty && work.listing == 0 { work.ended = true }
        condition.broadcast()
        condition.unlock()
    }

    private func nextDirectory() -> PendingDirectory? {
        condition.lock()
        defer { condition.unlock() }
        while !work.ended && !isStopped {
            if let directory = work.pending.popLast() {
                work.listing += 1
                return directory
            }
            condition.wait()
        }
        return nil
    }

    /// Reads the status of every admitted name in `directory`; returns its subdirectories.
    private func list(_ pending: PendingDirectory) -> [PendingDirectory] {
        guard let directory = try? SystemCalls.openDirectory(path: pending.diskPath) else { return [] }
        var rules = pending.rules
        guard let names = try? TreeWalker.names(in: directory, relative: pending.relative, rules: &rules, options: options) else {
            return []
        }
        var subdirectories: [PendingDirectory] = []
        var statuses: [FileStatus?] = []
        statuses.reserveCapacity(names.count)
        for name in names {
            if isStopped { return subdirectories }
            // A failed or vanished one is left for the commit's walk to find and report.
            let status = (try? SystemCalls.status(of: name, in: directory)) ?? nil
            statuses.append(status)
            let diskPath = directory.path(of: name)
            let relative = pending.relative + [name]
            guard let status, TreeWalker.admits(status, diskPath: diskPath, relative: relative, rules: rules, options: options) else {
                continue
            }
            walked.add(1, ordering: .relaxed)
            if status.kind == .directory {
                subdirectories.append(PendingDirectory(diskPath: diskPath, relative: relative, rules: rules))
            }
        }
        listings.offer(WalkedListings.Listing(names: names, statuses: statuses), for: pending.diskPath)
        return subdirectories
    }
}

/// Directory listings a warm-up read, with each name's status, for the commit's walk to take
/// instead of listing the directory and reading every status a second time. A listing is taken
/// once; past ``capacity`` names waiting, the warm-up keeps warming the cache but stops offering.
/// The statuses are a moment older than the commit's own would be: a change in between is seen
/// by the next commit, as one made just after the walk would be.
final class WalkedListings: Sendable {
    struct Listing: Sendable {
        /// The names as ``TreeWalker/names(in:listed:relative:rules:options:)`` gave them.
        var names: [[UInt8]]
        /// Each name's status; nil where the warm-up has none (the walk reads it itself).
        var statuses: [FileStatus?]
    }

    /// Names waiting at most: about 10 MiB of listings.
    static let capacity = 65_536
    private let waiting = Mutex<(listings: [[UInt8]: Listing], names: Int)>(([:], 0))

    func offer(_ listing: Listing, for diskPath: [UInt8]) {
        waiting.withLock { waiting in
            guard waiting.names + listing.names.count <= Self.capacity else { return }
            waiting.listings[diskPath] = listing
            waiting.names += listing.names.count
        }
    }

    /// Names in listings not yet taken.
    var waitingNameCount: Int { waiting.withLock { $0.names } }

    func take(_ diskPath: [UInt8]) -> Listing? {
        waiting.withLock { waiting in
            guard let listing = waiting.listings.removeValue(forKey: diskPath) else { return nil }
            waiting.names -= listing.names.count
            return listing
        }
    }
}

extension TreeWalker.Options {
    /// The walk rules a commit with `options` follows.
    init(for options: BackupOptions) {
        self.init()
        excludePatterns = options.excludePatterns
        excludeCaches = options.excludeCaches
        skippedDiskPaths = options.skippedDiskPaths.map { Array($0.utf8) }
    }
}
