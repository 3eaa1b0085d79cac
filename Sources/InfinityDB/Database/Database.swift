import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityHistory
import InfinityTrees

/// Versioned app state in a ``Store``: an index of typed fields, committed as signed snapshots on
/// branches, with time travel, forks, diffs and three-way merges.
///
/// ```swift
/// let database = try store.database()
/// let draft = try await database.draft(on: "main")
/// try await draft.set(Settings(theme: .dark), in: App.settings)
/// try await draft.commit(message: "Dark theme")
/// let yesterday = try await database.snapshot("main@{yesterday 18:00}")
/// ```
///
/// Safe to share between tasks. Readers never wait for writers; branch moves are
/// compare-and-swap, so racing writers never lose a commit.
public final class Database: Sendable {
    public let store: Store
    /// Tree nodes, read through a bounded cache.
    public let trees: TreeStore
    /// Signed commits.
    public let commits: CommitStore
    /// Branches, tags, HEAD, the reflog and the commit catalog.
    public let refs: RefStore

    /// - Parameter nodeCacheCapacity: bytes of decoded tree nodes kept in memory.
    public init(store: Store, nodeCacheCapacity: Int = 64 << 20) throws {
        self.store = store
        trees = TreeStore(chunks: store.chunks, cacheCapacity: nodeCacheCapacity)
        commits = try CommitStore(chunks: store.chunks, keys: store.keys, authorName: store.configuration.ownerName)
        refs = try RefStore(path: store.historyPath, metadataKey: store.keys.metadataKey)
    }

    // MARK: Snapshots

    /// The state at a revision: `HEAD`, a branch, a tag, an id prefix, `main~3`, `main^2`,
    /// `main@{2`}, `main@{2026-05-01 12:00}`… A branch with no commits yet gives an empty state.
    public func snapshot(_ revision: String = "HEAD") async throws -> Snapshot {
        if try unbornBranch(revision) != nil { return Snapshot(database: self, commit: nil, index: nil) }
        return try await snapshot(commit: try await resolve(revision))
    }

    /// The state at one commit: one chunk read for the commit (its signature verified) and one for
    /// the index root, whatever the length of history.
    public func snapshot(commit ref: ChunkRef) async throws -> Snapshot {
        let commit = try await commits.load(ref)
        let index = try await trees.treeRoot(at: commit.root)
        guard index.kind == .map else {
            throw DatabaseError(.corrupt, "commit \(ref.id.shortDescription) has an index that is not a map")
        }
        return Snapshot(database: self, commit: LoggedCommit(ref: ref, commit: commit), index: index)
    }

    /// The commit a revision names.
    public func resolve(_ revision: String) async throws -> ChunkRef {
        try await Revision.resolve(revision, refs: refs, commits: commits)
    }

    /// A snapshot with no fields: what a first commit is compared with.
    public func emptySnapshot() -> Snapshot {
        Snapshot(database: self, commit: nil, index: nil)
    }

    /// The branch HEAD is on, if `revision` names it (as `HEAD` or by name) and it has no commits yet.
    private func unbornBranch(_ revision: String) throws -> RefName? {
        guard case .branch(let branch) = try refs.head(),
            revision == "HEAD" || revision == "@" || revision == branch.shortName,
            try refs.ref(branch) == nil
        else { return nil }
        return branch
    }

    // MARK: Writing

    /// A draft on `branch` (by default the branch HEAD is on), starting from its head.
    ///
    /// - Parameter editBufferSize: bytes of map edits held before they are applied to the trees;
    ///   raise it for bulk loads of random keys (each application rewrites most leaves once).
    public func draft(on branch: String? = nil, editBufferSize: Int = Draft.defaultEditBufferSize) async throws -> Draft {
        let name = try branchName(branch)
        let base: Snapshot
        if let head = try refs.ref(name) {
            base = try await snapshot(commit: head)
        } else {
            base = Snapshot(database: self, commit: nil, index: nil)
        }
        return Draft(database: self, branch: name, base: base, editBufferSize: editBufferSize)
    }

    private func branchName(_ branch: String?) throws -> RefName {
        if let branch { return try RefName.branch(branch) }
        guard case .branch(let name) = try refs.head() else {
            throw DatabaseError(.invalidArgument, "HEAD is detached; name the branch to write on")
        }
        return name
    }

    /// Stores a commit of `index` and makes it durable, then records it in the catalog; the
    /// caller moves a ref to it last. The commit chunk joins the open metadata pack with the new
    /// tree nodes, so one flush makes both durable before any ref can point at them.
    func writeCommit(parents: [ChunkRef], index: TreeRoot, message: String) async throws -> LoggedCommit {
        let (ref, commit) = try await commits.write(parents: parents, root: index.pointer.chunkRef, message: message)
        try await store.flush()
        try refs.recordCommit(ref, generation: commit.generation, time: commit.time)
        return LoggedCommit(ref: ref, commit: commit)
    }

    /// Compare-and-swap of a branch, logged in the reflog under this store's agent.
    func moveBranch(_ branch: RefName, to new: ChunkRef, from old: ChunkRef?, message: String) throws {
        try refs.update(branch, to: new, expected: old?.id, agent: store.identity.id, message: message)
    }

    // MARK: Branches and tags

    /// Branch names with the commit each points to, sorted by name.
    public func branches() throws -> [(name: String, commit: ChunkRef)] {
        try refs.refs(kind: .branch).map { ($0.0.shortName, $0.1) }
    }

    /// Tag names with their commits, sorted by name.
    public func tags() throws -> [(name: String, commit: ChunkRef)] {
        try refs.refs(kind: .tag).map { ($0.0.shortName, $0.1) }
    }

    /// The branch HEAD is on, or nil when HEAD is detached.
    public func currentBranch() throws -> String? {
        guard case .branch(let name) = try refs.head() else { return nil }
        return name.shortName
    }

    /// Creates branch `name` at `revision` (a fork); fails if it exists.
    @discardableResult
    public func createBranch(_ name: String, at revision: String = "HEAD") async throws -> ChunkRef {
        try await createRef(try RefName.branch(name), at: revision, message: "branch: created from \(revision)")
    }

    /// Deletes a branch (its reflog is kept).
    public func deleteBranch(_ name: String) throws {
        let branch = try RefName.branch(name)
        guard let current = try refs.ref(branch) else {
            throw HistoryError(.notFound, "no branch named \(name)")
        }
        try refs.update(branch, to: nil, expected: current.id, agent: store.identity.id, message: "branch: deleted")
    }

    /// Creates tag `name` at `revision`; fails if it exists.
    @discardableResult
    public func createTag(_ name: String, at revision: String = "HEAD") async throws -> ChunkRef {
        try await createRef(try RefName.tag(name), at: revision, message: "tag: created at \(revision)")
    }

    /// A new ref at `revision`; the compare-and-swap from "absent" refuses an existing name.
    private func createRef(_ name: RefName, at revision: String, message: String) async throws -> ChunkRef {
        let target = try await resolve(revision)
        try refs.update(name, to: target, expected: nil, agent: store.identity.id, message: message)
        return target
    }

    /// Points HEAD at a branch (which need not have commits yet).
    public func switchBranch(to name: String) throws {
        try refs.setHead(.branch(try RefName.branch(name)), agent: store.identity.id, message: "switch to \(name)")
    }

    /// Commits reachable from `revision`, newest first.
    public func log(_ revision: String = "HEAD", limit: Int = .max) async throws -> [LoggedCommit] {
        if try unbornBranch(revision) != nil { return [] }
        return try await commits.log(from: try await resolve(revision), limit: limit)
    }
}

extension Store {
    /// Versioned app state over this store.
    public func database(nodeCacheCapacity: Int = 64 << 20) throws -> Database {
        try Database(store: self, nodeCacheCapacity: nodeCacheCapacity)
    }
}
