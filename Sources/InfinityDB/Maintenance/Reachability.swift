import InfinityChunks
import InfinityHistory
import InfinityPacks

/// What a reachable chunk is to the store, by the first path that reached it.
public enum ReachableKind: String, CaseIterable, Sendable, Hashable, Codable, CustomStringConvertible {
    /// A signed commit.
    case commit
    /// A node of a commit's index (the map from field name to field).
    case indexNode
    /// A node of a map or list field.
    case fieldNode
    /// A chunk list of a value stored as a blob of its own (values over 1 KiB).
    case valueList
    /// A data chunk of a value stored as a blob of its own.
    case valueData
    /// A chunk list of a blob a value refers to (a ``BlobRef`` inside a value).
    case blobList
    /// A data chunk of a blob a value refers to.
    case blobData

    public var description: String {
        switch self {
        case .commit: "commit"
        case .indexNode: "index node"
        case .fieldNode: "field node"
        case .valueList: "value chunk list"
        case .valueData: "value data"
        case .blobList: "blob chunk list"
        case .blobData: "blob data"
        }
    }
}

/// Every chunk reachable from a set of commits, with counts and plaintext bytes by kind.
///
/// Each chunk is counted once, under the kind of the first path that reached it (a chunk shared by
/// a file and a long value counts once). Memory: one entry per distinct chunk.
public struct ReachableSet: Sendable {
    /// A count of chunks and the sum of their plaintext lengths.
    public struct Tally: Sendable, Hashable, Codable {
        public var count = 0
        public var plaintextBytes = 0

        public init() {}
    }

    /// The roles each chunk was walked in, so that a chunk reached again in a role it has not had
    /// yet is walked again (see `ReachabilityWalker`).
    var roles: [ChunkID: WalkRoles] = [:]
    private var tallies: [ReachableKind: Tally] = [:]

    public init() {}

    /// The ids of every reachable chunk, in no particular order.
    public var ids: some Collection<ChunkID> { roles.keys }

    /// Whether the chunk is reachable.
    public func contains(_ id: ChunkID) -> Bool { roles[id] != nil }

    /// Number of reachable chunks.
    public var count: Int { roles.count }

    /// Sum of the plaintext lengths of every reachable chunk.
    public var plaintextBytes: Int { tallies.values.reduce(0) { $0 + $1.plaintextBytes } }

    /// The chunks first reached as `kind`.
    public subscript(kind: ReachableKind) -> Tally { tallies[kind] ?? Tally() }

    /// Records that `ref` was reached as `kind` in `role`; returns whether the chunk is new and
    /// whether the role is new for it.
    mutating func insert(_ ref: ChunkRef, as kind: ReachableKind, role: WalkRoles) -> (newChunk: Bool, newRole: Bool) {
        guard let previous = roles[ref.id] else {
            roles[ref.id] = role
            tallies[kind, default: Tally()].count += 1
            tallies[kind, default: Tally()].plaintextBytes += ref.length
            return (true, true)
        }
        guard !previous.isSuperset(of: role) else { return (false, false) }
        roles[ref.id] = previous.union(role)
        return (false, true)
    }

    func hasRole(_ role: WalkRoles, _ id: ChunkID) -> Bool {
        roles[id]?.isSuperset(of: role) ?? false
    }
}

/// The ways a chunk can be walked. A node of a field whose values are binary is walked again if it
/// was first walked in a raw field (only binary values are scanned for references).
struct WalkRoles: OptionSet, Sendable, Hashable {
    let rawValue: UInt8

    static let commit = WalkRoles(rawValue: 1 << 0)
    static let indexNode = WalkRoles(rawValue: 1 << 1)
    static let rawFieldNode = WalkRoles(rawValue: 1 << 2)
    /// Implies ``rawFieldNode``: a walk that scans values also sees everything a walk that does not would.
    static let binaryFieldNode = WalkRoles(rawValue: 1 << 2 | 1 << 3)
    /// The root of a blob whose chunks were all walked.
    static let blobRoot = WalkRoles(rawValue: 1 << 4)
    /// The root of a long value whose content was scanned for references.
    static let scannedValue = WalkRoles(rawValue: 1 << 5)
    /// The root of a long index entry whose field was walked.
    static let indexEntry = WalkRoles(rawValue: 1 << 6)
    /// Any chunk reached inside a blob (a list or data chunk).
    static let blobChunk = WalkRoles(rawValue: 1 << 7)
}

/// How far a walk has got.
public struct ReachabilityProgress: Sendable, Hashable {
    /// Commits walked so far.
    public var commits = 0
    /// Distinct chunks reached so far.
    public var chunks = 0
    /// Their plaintext bytes.
    public var plaintextBytes = 0

    public init(commits: Int = 0, chunks: Int = 0, plaintextBytes: Int = 0) {
        self.commits = commits
        self.chunks = chunks
        self.plaintextBytes = plaintextBytes
    }
}

/// The commits a walk of everything the store keeps starts from: every ref, and the reflog, from
/// which a caller (a garbage collector) chooses the entries that count.
public struct RootCommits: Sendable {
    /// A ref and the commit it points to.
    public struct NamedCommit: Sendable, Hashable {
        public let name: RefName
        public let commit: ChunkRef
    }

    /// Every branch, tag and agent ref, and HEAD, with its commit.
    public let refs: [NamedCommit]
    /// Every reflog entry that set a ref to a commit, newest first.
    public let reflog: [ReflogEntry]

    /// The distinct commits of ``refs``, then those of the reflog entries `include` accepts (all by
    /// default), in that order.
    public func commits(includingReflogEntries include: (ReflogEntry) -> Bool = { _ in true }) -> [ChunkRef] {
        var seen = Set<ChunkID>()
        var commits: [ChunkRef] = []
        for ref in refs.map(\.commit) + reflog.filter(include).compactMap(\.new) where seen.insert(ref.id).inserted {
            commits.append(ref)
        }
        return commits
    }
}

extension Database {
    /// The refs (branches, tags, agent refs, HEAD) and the reflog entries that set a ref to a
    /// commit: where a walk of everything the store keeps starts.
    ///
    /// - Throws: ``HistoryError`` when a ref or reflog entry cannot be read: a walk that skipped
    ///   it could miss commits still in use.
    public func rootCommits() throws -> RootCommits {
        var named = try refs.refs().map { RootCommits.NamedCommit(name: $0.0, commit: $0.1) }
        if let head = try refs.ref(.head) { named.append(RootCommits.NamedCommit(name: .head, commit: head)) }
        let reflog = try refs.reflog(nil, limit: .max).filter { $0.new != nil }
        return RootCommits(refs: named, reflog: reflog)
    }

    /// Every chunk reachable from `commits`: the commits and all their ancestors, each commit's
    /// index, every field's tree nodes, values stored as blobs (chunk lists and data), and every
    /// blob a value refers to (``BlobRef``s found in values of binary fields: chunk lists and data).
    ///
    /// What was reached once is not walked again: a second commit that shares most of its trees
    /// with the first costs only its new nodes. Chunk lists are read; data chunks are not, except
    /// those of long values in binary fields, which are read to find the references they hold.
    /// Memory grows with the number of distinct chunks reached, not with history length.
    ///
    /// - Parameter progress: called now and then, and once at the end.
    /// - Throws: ``DatabaseError/Code/corrupt`` naming where the walk stopped (the commit, field
    ///   and key) when something it must read is missing or damaged: the set would be incomplete.
    public func reachableChunks(
        from commits: [ChunkRef], progress: (ReachabilityProgress) -> Void = { _ in }
    ) async throws -> ReachableSet {
        try await withoutActuallyEscaping(progress) { progress in
            let walker = ReachabilityWalker(
                database: self, admit: { _, _, _ in true },
                failure: { place, error in
                    throw DatabaseError(.corrupt, "the walk of reachable chunks cannot go on at \(place)", cause: error)
                },
                progress: progress)
            try await walker.walk(from: commits)
            return walker.reached
        }
    }
}
