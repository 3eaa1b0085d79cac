import Foundation
import Synchronization

/// Walks backup sources ahead of a commit, on a thread of its own, listing directories and
/// reading each path's status, so that the commit's own walk finds them in the kernel's caches.
///
/// With a cold cache, most of an unchanged backup goes to waiting for directory blocks and
/// inodes, one after another on the commit's path. A warm-up started before the store is
/// unlocked does those reads while the passphrase is stretched, and then runs beside the commit
/// on the other core, usually ahead of it. It reads no file contents (only the `.infinityignore`
/// and `CACHEDIR.TAG` files the walk rules need), writes nothing and reports nothing: the
/// commit's walk sees and reports everything itself. ``Backup/commit(_:options:progress:)``
/// starts one unless ``BackupOptions/warmUp`` holds one not yet stopped.
public final class SourceWarmUp: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    private let walked = Atomic<Int>(0)

    /// Starts walking `sources` with the walk rules of `options` (excludes, cache tags, skipped
    /// paths).
    public static func start(_ sources: [BackupSource], options: BackupOptions) -> SourceWarmUp {
        let warmUp = SourceWarmUp()
        let walkOptions = TreeWalker.Options(for: options)
        let thread = Thread { [warmUp] in
            warmUp.walk(sources, options: walkOptions)
            warmUp.finished.store(true, ordering: .releasing)
        }
        thread.name = "infinity-warm-up"
        thread.start()
        return warmUp
    }

    /// Stops the walk at its next path (it may still be inside one system call).
    public func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    /// Whether ``stop()`` was called.
    public var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// Whether the walk has ended, by reaching the end of every source or by ``stop()``.
    public var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// Paths walked so far.
    public var pathsWalked: Int { walked.load(ordering: .relaxed) }

    private func walk(_ sources: [BackupSource], options: TreeWalker.Options) {
        for source in sources {
            guard var walker = try? TreeWalker(source: Array(source.diskPath.utf8), prefix: source.snapshotPath, options: options) else {
                continue
            }
            while !stopped.load(ordering: .relaxed), (try? walker.next()) != nil {
                walked.add(1, ordering: .relaxed)
            }
            if stopped.load(ordering: .relaxed) { return }
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
