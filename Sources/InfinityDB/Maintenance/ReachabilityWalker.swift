import InfinityChunks
import InfinityHistory
import InfinityPacks
import InfinityTrees

/// Where a walk found something, for messages: the commit, and the field, key and node below it.
struct WalkPlace: Sendable, CustomStringConvertible {
    var commit: ChunkID
    var field: String?
    var key: [UInt8]?
    /// What inside the field or commit: "the index", "tree node 0123456789ab"…
    var detail: String?

    init(commit: ChunkID, field: String? = nil, key: [UInt8]? = nil, detail: String? = nil) {
        self.commit = commit
        self.field = field
        self.key = key
        self.detail = detail
    }

    func inField(_ name: String) -> WalkPlace { WalkPlace(commit: commit, field: name) }
    func atKey(_ key: ArraySlice<UInt8>) -> WalkPlace { WalkPlace(commit: commit, field: field, key: Array(key)) }
    func with(_ detail: String) -> WalkPlace { WalkPlace(commit: commit, field: field, key: key, detail: detail) }

    var description: String {
        var text = detail.map { $0 + " of " } ?? ""
        if let key { text += "key \(Database.describe(key)) in " }
        if let field { text += "field \"\(field)\" of " }
        return text + "commit \(commit.shortDescription)"
    }
}

/// Walks everything reachable from commits, each chunk once per role, with hooks that let a
/// garbage collector stop at the first problem and a check record problems and go on.
///
/// Used by one task at a time.
final class ReachabilityWalker {
    /// Called once for each chunk when it is first reached; returns false when the chunk must not
    /// be read (a check that found it missing says so, and the walk skips what lies below it).
    typealias Admit = (_ chunk: ChunkRef, _ kind: ReachableKind, _ place: WalkPlace) throws -> Bool
    /// Called when something cannot be read or decoded; throws to stop the walk, or returns to
    /// skip what lies below and go on.
    typealias Failure = (_ place: WalkPlace, _ error: any Error) throws -> Void

    private(set) var reached = ReachableSet()
    private let database: Database
    /// Nodes are read once each: a small cache of their own keeps the database's cache for reads.
    private let trees: TreeStore
    private let admit: Admit
    private let failure: Failure
    private let progress: (ReachabilityProgress) -> Void
    private var refused = Set<ChunkID>()
    private var unreadableBlobs = Set<ChunkID>()
    private var commitCount = 0
    private var chunksSinceProgress = 0

    init(
        database: Database, admit: @escaping Admit, failure: @escaping Failure,
        progress: @escaping (ReachabilityProgress) -> Void
    ) {
        self.database = database
        trees = TreeStore(chunks: database.store.chunks, cacheCapacity: 4 << 20)
        self.admit = admit
        self.failure = failure
        self.progress = progress
    }

    private var currentProgress: ReachabilityProgress {
        ReachabilityProgress(commits: commitCount, chunks: reached.count, plaintextBytes: reached.plaintextBytes)
    }

    private enum Mark {
        /// To be walked in this role now.
        case new
        /// Already walked in this role.
        case seen
        /// Not to be read: the admit hook refused it.
        case refused
    }

    private func mark(_ ref: ChunkRef, _ kind: ReachableKind, _ role: WalkRoles, _ place: WalkPlace) throws -> Mark {
        let (newChunk, newRole) = reached.insert(ref, as: kind, role: role)
        if newChunk {
            chunksSinceProgress += 1
            if chunksSinceProgress >= 1024 {
                chunksSinceProgress = 0
                progress(currentProgress)
            }
            if try !admit(ref, kind, place) { refused.insert(ref.id) }
        }
        if refused.contains(ref.id) { return .refused }
        return newRole ? .new : .seen
    }

    /// Runs `body`; a failure is handed to the failure hook (which may rethrow it) and gives nil.
    /// Only reads and decodes go in `body`, never a walk below: its failures are already handled.
    private func attempt<T>(_ place: WalkPlace, _ body: () async throws -> T) async throws -> T? {
        do {
            return try await body()
        } catch {
            try failure(place, error)
            return nil
        }
    }

    // MARK: Commits and trees

    /// Walks the commits and all their ancestors, depth first along first parents.
    func walk(from commits: [ChunkRef]) async throws {
        var pending = Array(commits.reversed())
        while let ref = pending.popLast() {
            let place = WalkPlace(commit: ref.id)
            guard try mark(ref, .commit, .commit, place) == .new,
                let commit = try await attempt(place, { try await database.commits.load(ref) })
            else { continue }
            commitCount += 1
            pending.append(contentsOf: commit.parents.reversed())
            try await walkIndex(commit.root, place)
        }
        progress(currentProgress)
    }

    private func walkIndex(_ rootRef: ChunkRef, _ place: WalkPlace) async throws {
        guard try mark(rootRef, .indexNode, .indexNode, place) == .new,
            let root = try await attempt(place.with("the index"), {
                let root = try await trees.treeRoot(at: rootRef)
                guard root.kind == .map else { throw DatabaseError(.corrupt, "the index is a list, not a map") }
                return root
            })
        else { return }
        try await walkTree(root, kind: .indexNode, role: .indexNode, place: place, rootIsMarked: true) { key, stored in
            try await self.walkIndexEntry(key, stored, place)
        }
    }

    private func walkTree(
        _ root: TreeRoot, kind: ReachableKind, role: WalkRoles, place: WalkPlace, rootIsMarked: Bool,
        entry: (ArraySlice<UInt8>, ArraySlice<UInt8>) async throws -> Void
    ) async throws {
        var skipMarking = rootIsMarked
        try await trees.walk(root) { node, _ in
            if skipMarking {
                skipMarking = false
                return true
            }
            return try self.mark(node, kind, role, place) == .new
        } entry: { key, stored in
            try await entry(key, stored)
        } failed: { node, error in
            try self.failure(place.with("tree node \(node.id.shortDescription)"), error)
        }
    }

    /// One entry of an index: a field's name and state, stored inline or, when long (a large
    /// serialized value), as a blob.
    private func walkIndexEntry(_ key: ArraySlice<UInt8>, _ stored: ArraySlice<UInt8>, _ place: WalkPlace) async throws {
        guard let name = String(validating: key, as: UTF8.self) else {
            try failure(place.with("the index"), DatabaseError(.corrupt, "the index holds a field name that is not UTF-8"))
            return
        }
        let fieldPlace = place.inField(name)
        guard let form = try await attempt(fieldPlace, { try StoredValue(stored: stored) }) else { return }
        let bytes: [UInt8]
        switch form {
        case .inline(let inline):
            bytes = Array(inline)
        case .blob(let blob):
            // The same bytes give the same field: once is enough.
            guard try await walkBlob(blob, list: .valueList, data: .valueData, fieldPlace),
                reached.addRole(.indexEntry, to: blob.root.id),
                let read = try await attempt(fieldPlace, { try await readBlob(blob) })
            else { return }
            bytes = read
        }
        guard let state = try await attempt(fieldPlace, { try FieldState(encoded: bytes, field: name) }) else { return }
        try await walkField(state, fieldPlace)
    }

    private func walkField(_ state: FieldState, _ place: WalkPlace) async throws {
        let binary = state.format == .binary
        switch state.content {
        case .serialized(let bytes):
            if binary { try await walkReferences(in: bytes, place) }
        case .map(let root), .list(let root):
            let role: WalkRoles = binary ? .binaryFieldNode : .rawFieldNode
            try await walkTree(root, kind: .fieldNode, role: role, place: place, rootIsMarked: false) { key, stored in
                try await self.walkValue(stored, binary: binary, root.kind == .map ? place.atKey(key) : place)
            }
        }
    }

    // MARK: Values and blobs

    private func walkValue(_ stored: ArraySlice<UInt8>, binary: Bool, _ place: WalkPlace) async throws {
        guard let form = try await attempt(place, { try StoredValue(stored: stored) }) else { return }
        switch form {
        case .inline(let bytes):
            if binary { try await walkReferences(in: Array(bytes), place) }
        case .blob(let blob):
            guard try await walkBlob(blob, list: .valueList, data: .valueData, place), binary,
                reached.addRole(.scannedValue, to: blob.root.id),
                let bytes = try await attempt(place, { try await readBlob(blob) })
            else { return }
            try await walkReferences(in: bytes, place)
        }
    }

    /// Walks every blob a binary value refers to.
    private func walkReferences(in value: [UInt8], _ place: WalkPlace) async throws {
        let blobs = try await attempt(place) {
            var found: [BlobRef] = []
            try value.withUnsafeBytes { try BinaryValueFormat.forEachBlobReference(in: $0) { found.append($0) } }
            return found
        }
        for blob in blobs ?? [] {
            _ = try await walkBlob(blob, list: .blobList, data: .blobData, place)
        }
    }

    /// Reaches every chunk of a blob, once per blob (its chunk lists are read, its data is not).
    /// Returns whether its content can be read: no chunk of it was refused or failed.
    private func walkBlob(_ blob: BlobRef, list: ReachableKind, data: ReachableKind, _ place: WalkPlace) async throws -> Bool {
        switch try mark(blob.root, blob.depth == 0 ? data : list, .blobRoot, place) {
        case .refused: return false
        case .seen: return !unreadableBlobs.contains(blob.root.id)
        case .new: break
        }
        var readable = true
        var atRoot = true
        let walked: Void? = try await attempt(place) {
            try await database.store.chunks.forEachChunk(of: blob) { ref, level in
                if atRoot {
                    atRoot = false
                    return true
                }
                guard try self.mark(ref, level == 0 ? data : list, .blobChunk, place) != .refused else {
                    readable = false
                    // A list that must not be read ends the walk; data is never read here.
                    return level == 0
                }
                return true
            }
        }
        if walked == nil { readable = false }
        if !readable { unreadableBlobs.insert(blob.root.id) }
        return readable
    }

    private func readBlob(_ blob: BlobRef) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(blob.length, 1 << 20))
        try await database.store.chunks.getBlob(blob) { bytes += $0 }
        return bytes
    }
}

extension ReachableSet {
    /// Adds a role to a chunk already reached; returns whether it is new for the chunk.
    mutating func addRole(_ role: WalkRoles, to id: ChunkID) -> Bool {
        guard let previous = roles[id], !previous.isSuperset(of: role) else { return false }
        roles[id] = previous.union(role)
        return true
    }
}
