import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks
import Synchronization

/// A commit together with the reference it was read through.
public struct LoggedCommit: Sendable, Hashable {
    /// The commit's chunk: its name and the capability to read it.
    public let ref: ChunkRef
    /// The decoded, verified commit.
    public let commit: Commit

    /// Pairs a commit with its reference.
    public init(ref: ChunkRef, commit: Commit) {
        self.ref = ref
        self.commit = commit
    }
}

/// Writes signed commits as metadata chunks and reads them back, verified, with a bounded cache;
/// answers ancestry questions using generation numbers.
///
/// Safe to share between tasks. Commits are written to the ``ChunkStore`` but not flushed: the
/// caller flushes the chunk store before it moves a ref to a new commit (write order: packs →
/// index → commit → ref), and records the commit in ``RefStore/recordCommit(_:generation:time:)``
/// so its id prefix resolves.
public final class CommitStore: Sendable {
    /// Decoded commits kept in memory by default.
    public static let defaultCacheCapacity = 4096

    /// Where commits are stored as metadata chunks.
    public let chunks: ChunkStore
    /// The agent that signs the commits this store writes.
    public let author: AgentIdentity
    private let keys: AgentKeys
    private let cache: Mutex<CommitCache>

    /// - Parameters:
    ///   - chunks: where commit chunks are stored.
    ///   - keys: the author's keys; its signing key signs every commit written here.
    ///   - authorName: the author's name as recorded in commits (at most 256 UTF-8 bytes).
    ///   - cacheCapacity: how many decoded commits to keep in memory.
    public init(chunks: ChunkStore, keys: AgentKeys, authorName: String, cacheCapacity: Int = defaultCacheCapacity) throws {
        guard authorName.utf8.count <= Commit.maximumAuthorNameByteCount else {
            throw HistoryError(
                .invalidArgument,
                "author name is \(authorName.utf8.count) bytes; at most \(Commit.maximumAuthorNameByteCount) are allowed")
        }
        self.chunks = chunks
        self.keys = keys
        self.author = keys.identity(name: authorName)
        self.cache = Mutex(CommitCache(capacity: cacheCapacity))
    }

    /// Signs and stores a commit on top of `parents`; its generation is one more than theirs.
    ///
    /// - Returns: the commit's reference and the commit.
    public func write(
        parents: [ChunkRef], root: ChunkRef, message: String, time: Date = Date()
    ) async throws -> (ChunkRef, Commit) {
        var highestParentGeneration: UInt64 = 0
        for parent in parents {
            highestParentGeneration = max(highestParentGeneration, try await load(parent).generation)
        }
        let commit = try Commit.signed(
            parents: parents, root: root, time: time, message: message,
            generation: highestParentGeneration &+ 1, authorName: author.name, keys: keys)
        let ref = try await chunks.put(commit.encoded(), kind: .metadata)
        cache.withLock { $0.insert(commit, for: ref.id) }
        return (ref, commit)
    }

    /// Reads and verifies one commit: a single chunk read, or none when it is cached.
    ///
    /// - Throws: ``HistoryError/Code/corrupt`` when the sealed chunk fails verification,
    ///   ``HistoryError/Code/unsupportedFormat`` when it was sealed by a newer format,
    ///   ``HistoryError/Code/notFound`` when it cannot be read at all, or what
    ///   ``Commit/decode(_:id:)`` throws.
    public func load(_ ref: ChunkRef) async throws -> Commit {
        if let cached = cache.withLock({ $0.commit(ref.id) }) { return cached }
        let bytes: [UInt8]
        do {
            bytes = try await chunks.get(ref)
        } catch let error as ChunkError where error.code == .integrity {
            throw HistoryError(.corrupt, "commit \(ref.id.shortDescription) is damaged", cause: error)
        } catch let error as ChunkError where error.code == .unsupportedFormat {
            throw HistoryError(.unsupportedFormat, "commit \(ref.id.shortDescription) cannot be opened", cause: error)
        } catch {
            throw HistoryError(.notFound, "commit \(ref.id.shortDescription) cannot be read", cause: error)
        }
        let commit = try Commit.decode(bytes, id: ref.id)
        cache.withLock { $0.insert(commit, for: ref.id) }
        return commit
    }

    /// Whether `ancestor` is reachable from `descendant` through parents. A commit counts as
    /// its own ancestor.
    ///
    /// Only commits with a generation above `ancestor`'s are walked: no lower one can lead to it.
    public func isAncestor(_ ancestor: ChunkRef, of descendant: ChunkRef) async throws -> Bool {
        if ancestor.id == descendant.id { return true }
        let target = try await load(ancestor)
        let start = try await load(descendant)
        guard start.generation > target.generation else { return false }
        var pending = [LoggedCommit(ref: descendant, commit: start)]
        var seen: Set<ChunkID> = [descendant.id]
        while let child = pending.popLast() {
            for parentRef in child.commit.parents where seen.insert(parentRef.id).inserted {
                if parentRef.id == ancestor.id { return true }
                let parent = try await loadParent(parentRef, of: child)
                if parent.generation > target.generation {
                    pending.append(LoggedCommit(ref: parentRef, commit: parent))
                }
            }
        }
        return false
    }

    /// The best common ancestor of `a` and `b`, or nil when their histories are unrelated.
    ///
    /// Walks down from both sides at once, highest generation first, marking what each side
    /// reaches; a commit reached from both is a common ancestor, and everything below it is
    /// marked stale so that only best candidates are kept. When there are several (criss-cross
    /// merges), the one with the highest generation wins, then the smallest id, so every agent
    /// picks the same one.
    public func mergeBase(_ a: ChunkRef, _ b: ChunkRef) async throws -> ChunkRef? {
        if a.id == b.id { return a }
        var walk = MergeBaseWalk()
        walk.reach(LoggedCommit(ref: a, commit: try await load(a)), with: .fromA)
        walk.reach(LoggedCommit(ref: b, commit: try await load(b)), with: .fromB)
        while let (child, marks) = walk.next() {
            var passedOn = marks
            if marks.contains(.both) {
                if !marks.contains(.stale) { walk.bestCandidates.append(child) }
                passedOn.insert(.stale)
            }
            for parentRef in child.commit.parents where !walk.marks(of: parentRef.id).isSuperset(of: passedOn) {
                let parent = try await loadParent(parentRef, of: child)
                walk.reach(LoggedCommit(ref: parentRef, commit: parent), with: passedOn)
            }
        }
        return walk.bestCandidates.min { lhs, rhs in
            (lhs.commit.generation, rhs.ref.id) > (rhs.commit.generation, lhs.ref.id)
        }?.ref
    }

    /// The commit `generations` steps down the first-parent line (`ref~N`); `ref` itself for 0.
    ///
    /// - Throws: ``HistoryError/Code/notFound`` when the line ends sooner.
    public func firstParentAncestor(_ ref: ChunkRef, generations: Int) async throws -> ChunkRef {
        guard generations >= 0 else {
            throw HistoryError(.invalidArgument, "cannot go back \(generations) generations")
        }
        var current = ref
        for step in 0..<generations {
            guard let first = try await load(current).parents.first else {
                throw HistoryError(
                    .notFound,
                    "commit \(ref.id.shortDescription) has only \(step) first-parent ancestors, not \(generations)")
            }
            current = first
        }
        return current
    }

    /// Commits reachable from `heads`, each once, children always before their parents: highest
    /// generation first, then newest, then smallest id.
    ///
    /// - Parameter limit: the most commits to return; the walk reads no further than it needs.
    public func log(from heads: [ChunkRef], limit: Int = .max) async throws -> [LoggedCommit] {
        guard limit > 0 else { return [] }
        var queue = PriorityQueue<LoggedCommit>(ranksBefore: Self.comesFirstInLog)
        var seen = Set<ChunkID>()
        for head in heads where seen.insert(head.id).inserted {
            queue.push(LoggedCommit(ref: head, commit: try await load(head)))
        }
        var result: [LoggedCommit] = []
        while result.count < limit, let next = queue.pop() {
            result.append(next)
            guard result.count < limit else { break }
            for parentRef in next.commit.parents where seen.insert(parentRef.id).inserted {
                queue.push(LoggedCommit(ref: parentRef, commit: try await loadParent(parentRef, of: next)))
            }
        }
        return result
    }

    /// ``log(from:limit:)`` from a single commit.
    public func log(from head: ChunkRef, limit: Int = .max) async throws -> [LoggedCommit] {
        try await log(from: [head], limit: limit)
    }

    private static func comesFirstInLog(_ lhs: LoggedCommit, _ rhs: LoggedCommit) -> Bool {
        if lhs.commit.generation != rhs.commit.generation { return lhs.commit.generation > rhs.commit.generation }
        if lhs.commit.timeMilliseconds != rhs.commit.timeMilliseconds {
            return lhs.commit.timeMilliseconds > rhs.commit.timeMilliseconds
        }
        return lhs.ref.id < rhs.ref.id
    }

    /// Loads a parent and checks that its generation is below its child's. Every walk relies on
    /// that order, so a commit that breaks it (signed by a buggy or hostile agent) is refused
    /// rather than followed.
    func loadParent(_ parentRef: ChunkRef, of child: LoggedCommit) async throws -> Commit {
        let parent = try await load(parentRef)
        guard parent.generation < child.commit.generation else {
            throw HistoryError(
                .corrupt,
                "commit \(child.ref.id.shortDescription) claims generation \(child.commit.generation), "
                    + "but its parent \(parentRef.id.shortDescription) has generation \(parent.generation)")
        }
        return parent
    }
}

/// The state of ``CommitStore/mergeBase(_:_:)``: which side reached which commit, and the
/// commits still to visit, highest generation first.
///
/// Because parents always have lower generations than their children, a commit leaves the queue
/// only after every child on the walk has passed its marks on, and so is visited once.
private struct MergeBaseWalk {
    struct Marks: OptionSet {
        let rawValue: UInt8
        static let fromA = Marks(rawValue: 1)
        static let fromB = Marks(rawValue: 2)
        /// Below a common ancestor already found: cannot be a best one.
        static let stale = Marks(rawValue: 4)
        static let both: Marks = [.fromA, .fromB]
    }

    private var marksByID: [ChunkID: Marks] = [:]
    private var queued: Set<ChunkID> = []
    private var queue = PriorityQueue<LoggedCommit> { lhs, rhs in
        (lhs.commit.generation, rhs.ref.id) > (rhs.commit.generation, lhs.ref.id)
    }
    /// Queued commits not marked stale; once none are left, nothing better can turn up.
    private var liveCount = 0
    var bestCandidates: [LoggedCommit] = []

    func marks(of id: ChunkID) -> Marks {
        marksByID[id] ?? []
    }

    mutating func reach(_ commit: LoggedCommit, with marks: Marks) {
        let id = commit.ref.id
        let before = self.marks(of: id)
        let after = before.union(marks)
        marksByID[id] = after
        if queued.contains(id) {
            if !before.contains(.stale) && after.contains(.stale) { liveCount -= 1 }
        } else {
            queued.insert(id)
            queue.push(commit)
            if !after.contains(.stale) { liveCount += 1 }
        }
    }

    mutating func next() -> (LoggedCommit, Marks)? {
        guard liveCount > 0, let commit = queue.pop() else { return nil }
        let id = commit.ref.id
        queued.remove(id)
        let marks = self.marks(of: id)
        if !marks.contains(.stale) { liveCount -= 1 }
        return (commit, marks)
    }
}
