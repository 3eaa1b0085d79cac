import InfinityChunks
import InfinityHistory
import InfinityTrees

/// Edits on top of a branch's head, committed as one new commit.
///
/// Reads see the draft's own edits. Map edits are buffered and applied to the trees in sorted
/// batches, so memory stays bounded however many are made; new tree nodes are stored only at
/// commit (or when they outgrow a budget), and only those the final state still uses.
///
/// ```swift
/// let draft = try await database.draft(on: "main")
/// try await draft.set(book, for: book.id, in: Library.books)
/// try await draft.append([book.id], to: Library.shelf)
/// let snapshot = try await draft.commit(message: "Add a book")
/// ```
public actor Draft {
    public nonisolated let database: Database
    /// The branch a commit moves.
    public nonisolated let branch: RefName
    /// The state the edits apply to: the branch head when the draft began, or the draft's last commit.
    public private(set) var base: Snapshot

    private let writer: TreeWriter
    /// Fields read or edited in this draft, in their working state.
    private var working: [String: FieldState] = [:]
    /// Map edits not yet applied to the working tree, by field.
    private var pendingEdits: [String: MapEditBuffer] = [:]
    /// Bytes that `pendingEdits` holds.
    private var pendingEditBytes = 0
    private var changed: Set<String> = []

    /// Bytes of map edits a draft buffers by default before it applies them to the trees: a
    /// million entries of 16-byte keys and 100-byte values, applied in one pass at the commit.
    public static let defaultEditBufferSize = 256 << 20
    /// Bytes of map edits buffered before they are applied to the trees. Large batches make bulk
    /// loads cheap (each batch of random keys rewrites most of a tree's leaves once); the limit
    /// bounds the memory a draft holds however many edits it takes. The buffer takes memory only
    /// for the edits it holds: a 20-byte record per edit beyond its key and value, and once the
    /// draft reads a field's buffered edits back, a lookup table of 16 to 32 bytes per key.
    public nonisolated let editBufferSize: Int
    /// Bytes of new tree nodes kept in memory before the reachable ones are stored early.
    static let pendingNodeBudget = 64 << 20

    /// Draft operations run one at a time, first come first served: each suspends while it loads
    /// or stores nodes, and an operation interleaved with another (an append with a commit, say)
    /// would otherwise work from a stale tree or store a tree whose new nodes were dropped.
    private var isBusy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    private func exclusively<T>(_ body: () async throws -> T) async throws -> T {
        if isBusy {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            isBusy = true
        }
        // Hand the turn straight to the next waiter, so none can be overtaken.
        defer { if waiting.isEmpty { isBusy = false } else { waiting.removeFirst().resume() } }
        return try await body()
    }

    init(database: Database, branch: RefName, base: Snapshot, editBufferSize: Int) {
        self.editBufferSize = max(1, editBufferSize)
        self.database = database
        self.branch = branch
        self.base = base
        writer = TreeWriter(store: database.trees)
    }

    /// Whether the draft holds edits not yet committed.
    public var hasChanges: Bool { !changed.isEmpty }

    // Every method below that touches `working`, `pendingEdits` or `changed` across a suspension
    // point runs inside `exclusively`; the private helpers assume they already do.

    // MARK: Field state

    private func state(of name: String) async throws -> FieldState? {
        if let state = working[name] { return state }
        let state = try await base.fieldState(name)
        if let state { working[name] = state }
        return state
    }

    /// The working tree of a map field, created empty (with values in `format`) if absent.
    private func mapRoot(_ name: String, format: ValueFormat) async throws -> TreeRoot {
        if let root = try FieldReads.mapRoot(try await state(of: name), field: name) { return root }
        try validateFieldName(name)
        let root = try writer.emptyTree(.map)
        working[name] = FieldState(.map(root), format: format)
        return root
    }

    /// The working tree of a list field, created empty (with elements in `format`) if absent.
    private func listRoot(_ name: String, format: ValueFormat) async throws -> TreeRoot {
        if let root = try FieldReads.listRoot(try await state(of: name), field: name) { return root }
        try validateFieldName(name)
        let root = try writer.emptyTree(.list)
        working[name] = FieldState(.list(root), format: format)
        return root
    }

    /// Records that values in `format` are written to a field the draft holds.
    private func noteWriting(_ format: ValueFormat, to name: String) async throws {
        guard let state = working[name], state.format != format else { return }
        // Buffered edits count as values the field holds.
        try await applyPendingEdits(name)
        working[name] = try working[name]?.writing(format, field: name)
    }

    private func validateFieldName(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 256 else {
            throw DatabaseError(.invalidArgument, "a field name must be 1 to 256 bytes long, not \"\(name)\"")
        }
    }

    /// Applies a map field's buffered edits to its tree.
    private func applyPendingEdits(_ name: String) async throws {
        guard let edits = pendingEdits.removeValue(forKey: name), !edits.isEmpty else { return }
        pendingEditBytes -= edits.byteCount
        // Buffering an edit made the field, so it is in `working`.
        guard let state = working[name], case .map(let root) = state.content else { return }
        working[name]?.content = .map(try await writer.apply(edits, to: root))
        try await storeEarlyIfLarge()
    }

    private func storeEarlyIfLarge() async throws {
        guard writer.pendingBytes > Self.pendingNodeBudget else { return }
        try await writer.flush(keeping: working.values.compactMap(\.tree))
    }

    private func applyAllPendingEdits() async throws {
        for name in Array(pendingEdits.keys) { try await applyPendingEdits(name) }
    }

    // MARK: Maps

    /// Sets the value under `key`.
    public func set<Key, Value>(_ value: Value, for key: Key, in field: VersionedMap<Key, Value>) async throws {
        let (key, value) = (key.encodedKey, try field.values.encode(value))
        guard try bufferAtOnce(key, value, in: field.name, format: field.values.format) else {
            try await exclusively { try await buffer(key, value, in: field.name, format: field.values.format) }
            return
        }
        if pendingEditBytes >= editBufferSize {
            try await exclusively { if pendingEditBytes >= editBufferSize { try await applyAllPendingEdits() } }
        }
    }

    /// Buffers an edit without taking a turn when nothing needs one: no other operation is under
    /// way and the field's tree is here, in the edit's format, edited already. Most of a run of
    /// single sets goes this way. False when the edit must take the usual path.
    private func bufferAtOnce(_ key: [UInt8], _ value: [UInt8]?, in name: String, format: ValueFormat) throws -> Bool {
        guard !isBusy, let state = working[name], state.format == format, case .map = state.content, changed.contains(name) else {
            return false
        }
        // Nothing here suspends, so no other operation runs in between.
        try buffer(key, value, into: &pendingEdits[name, default: MapEditBuffer()], field: name)
        return true
    }

    /// Removes `key` (nothing happens if it is absent).
    public func remove<Key, Value>(_ key: Key, from field: VersionedMap<Key, Value>) async throws {
        let key = key.encodedKey
        try await exclusively { try await buffer(key, nil, in: field.name, format: field.values.format) }
    }

    /// Sets many entries in one call: the same as ``set(_:for:in:)`` for each pair in order (a
    /// later pair of a key wins), for the cost of one call to the draft instead of one per entry.
    /// This is the way to load or import a large map. On an error (a key too long, a value that
    /// cannot be encoded) the pairs before it stay set, as they would in a loop.
    public func set<Key, Value>(contentsOf entries: [(key: Key, value: Value)], in field: VersionedMap<Key, Value>) async throws {
        guard !entries.isEmpty else { return }
        try await exclusively {
            _ = try await mapRoot(field.name, format: field.values.format)
            try await noteWriting(field.values.format, to: field.name)
            var edits = pendingEdits.removeValue(forKey: field.name) ?? MapEditBuffer()
            var marked = false
            do {
                for (key, value) in entries {
                    try buffer(key.encodedKey, try field.values.encode(value), into: &edits, field: field.name)
                    // As in a loop of sets, the field counts as changed from its first edit on.
                    if !marked {
                        changed.insert(field.name)
                        marked = true
                    }
                    if pendingEditBytes >= editBufferSize {
                        pendingEdits[field.name] = edits
                        edits = MapEditBuffer()
                        try await applyAllPendingEdits()
                    }
                }
            } catch {
                if !edits.isEmpty { pendingEdits[field.name] = edits }
                throw error
            }
            pendingEdits[field.name] = edits
        }
    }

    private func buffer(_ key: [UInt8], _ value: [UInt8]?, in name: String, format: ValueFormat) async throws {
        _ = try await mapRoot(name, format: format)
        if value != nil { try await noteWriting(format, to: name) }
        try buffer(key, value, into: &pendingEdits[name, default: MapEditBuffer()], field: name)
        changed.insert(name)
        if pendingEditBytes >= editBufferSize { try await applyAllPendingEdits() }
    }

    /// Records one edit of a map field in its buffered edits (the field's tree is in `working`,
    /// in the edit's format).
    private func buffer(_ key: [UInt8], _ value: [UInt8]?, into edits: inout MapEditBuffer, field name: String) throws {
        guard key.count <= TreeWriter.maximumKeyLength else {
            throw DatabaseError(.invalidArgument, "a key of field \"\(name)\" encodes to \(key.count) bytes, more than \(TreeWriter.maximumKeyLength)")
        }
        let before = edits.byteCount
        try edits.append(key: key, value: value)
        pendingEditBytes += edits.byteCount - before
    }

    /// The value under `key`, including this draft's edits.
    public func get<Key, Value>(_ key: Key, in field: VersionedMap<Key, Value>) async throws -> Value? {
        try await exclusively {
            let before = pendingEdits[field.name]?.byteCount ?? 0
            let pending = pendingEdits[field.name]?.lastEdit(of: key.encodedKey)
            // The first read of a field's edits builds their lookup table, which counts too.
            pendingEditBytes += (pendingEdits[field.name]?.byteCount ?? 0) - before
            if let pending { return try pending.map { try field.values.decode($0) } }
            return try await FieldReads.value(key, in: field, state: try await state(of: field.name), reader: writer.reader)
        }
    }

    /// Number of entries, including this draft's edits.
    public func count<Key, Value>(of field: VersionedMap<Key, Value>) async throws -> Int {
        try await exclusively {
            try await applyPendingEdits(field.name)
            return try FieldReads.mapRoot(try await state(of: field.name), field: field.name)?.count ?? 0
        }
    }

    /// Entries in key order, including this draft's edits.
    public func entries<Key, Value>(
        in field: VersionedMap<Key, Value>, from start: Key? = nil, before end: Key? = nil, limit: Int = .max
    ) async throws -> [(key: Key, value: Value)] {
        try await exclusively {
            try await applyPendingEdits(field.name)
            var entries: [(key: Key, value: Value)] = []
            try await FieldReads.entries(
                in: field, state: try await state(of: field.name), reader: writer.reader, from: start, before: end, limit: limit
            ) { key, value in
                entries.append((key, value))
                return true
            }
            return entries
        }
    }

    // MARK: Lists

    /// Replaces the elements in `range` with `elements`.
    public func replace<Element>(_ range: Range<Int>, with elements: [Element], in field: List<Element>) async throws {
        let encoded = try elements.map { try field.elements.encode($0) }
        try await exclusively { try await replace(range, with: encoded, in: field.name, format: field.elements.format) }
    }

    /// Appends elements at the end.
    public func append<Element>(_ elements: [Element], to field: List<Element>) async throws {
        let encoded = try elements.map { try field.elements.encode($0) }
        try await exclusively {
            let count = try await listRoot(field.name, format: field.elements.format).count
            try await replace(count..<count, with: encoded, in: field.name, format: field.elements.format)
        }
    }

    /// Inserts elements before `position`.
    public func insert<Element>(_ elements: [Element], at position: Int, in field: List<Element>) async throws {
        try await replace(position..<position, with: elements, in: field)
    }

    /// Removes the elements in `range`.
    public func remove<Element>(_ range: Range<Int>, from field: List<Element>) async throws {
        try await replace(range, with: [], in: field)
    }

    private func replace(_ range: Range<Int>, with encoded: [[UInt8]], in name: String, format: ValueFormat) async throws {
        let root = try await listRoot(name, format: format)
        guard range.lowerBound >= 0, range.upperBound <= root.count else {
            throw DatabaseError(.invalidArgument, "range \(range) is outside list \"\(name)\" of \(root.count) elements")
        }
        if !encoded.isEmpty { try await noteWriting(format, to: name) }
        working[name]?.content = .list(try await writer.replaceSubrange(range, with: encoded, in: root))
        changed.insert(name)
        try await storeEarlyIfLarge()
    }

    /// Number of elements, including this draft's edits.
    public func count<Element>(of field: List<Element>) async throws -> Int {
        try await exclusively { try FieldReads.listRoot(try await state(of: field.name), field: field.name)?.count ?? 0 }
    }

    /// The elements in `range` (all by default), including this draft's edits.
    public func elements<Element>(of field: List<Element>, in range: Range<Int>? = nil) async throws -> [Element] {
        try await exclusively {
            try await FieldReads.elements(of: field, state: try await state(of: field.name), reader: writer.reader, range: range)
        }
    }

    // MARK: Serialized values

    /// Sets the value.
    public func set<Value>(_ value: Value, in field: Serialized<Value>) async throws {
        let encoded = try field.values.encode(value)
        try await exclusively {
            if let state = try await state(of: field.name) { try requireKind(.serialized, of: state, field: field.name) }
            try validateFieldName(field.name)
            working[field.name] = FieldState(.serialized(encoded), format: field.values.format)
            changed.insert(field.name)
        }
    }

    /// The value, including this draft's edit.
    public func get<Value>(_ field: Serialized<Value>) async throws -> Value? {
        try await exclusively { try FieldReads.serialized(field, state: try await state(of: field.name)) }
    }

    // MARK: Committing

    /// What to do when the branch moved since the draft's base (another writer committed).
    public enum BranchMovedHandling: Sendable {
        /// Throw ``DatabaseError/Code/branchMoved``; the draft's commit is kept, unreferenced by
        /// the branch, and the error names it so it can be merged.
        case fail
        /// Merge the draft's commit with the branch's new head under a policy.
        case merge(MergePolicy)
    }

    /// Writes the draft as a commit on ``branch`` and moves the branch to it, atomically: the
    /// branch moves only if it still points where the draft began (compare-and-swap), so two
    /// writers never lose each other's commits. Returns the new state; the draft continues from it.
    @discardableResult
    public func commit(message: String, ifBranchMoved: BranchMovedHandling = .fail) async throws -> Snapshot {
        try await exclusively { try await commitNow(message: message, ifBranchMoved: ifBranchMoved) }
    }

    private func commitNow(message: String, ifBranchMoved: BranchMovedHandling) async throws -> Snapshot {
        try await applyAllPendingEdits()
        let indexBase = try base.index ?? writer.emptyTree(.map)
        var indexEdits: [(key: [UInt8], value: [UInt8]?)] = []
        for name in changed.sorted() {
            guard let state = working[name] else { continue }
            indexEdits.append((Array(name.utf8), state.encoded))
        }
        let index = try await writer.apply(indexEdits, to: indexBase)
        try await writer.flush(keeping: [index] + working.values.compactMap(\.tree))
        let parents = base.commit.map { [$0.ref] } ?? []
        let committed = try await database.writeCommit(parents: parents, index: index, message: message)
        do {
            try database.moveBranch(branch, to: committed.ref, from: base.commit?.ref, message: "commit: \(message)")
            base = Snapshot(database: database, commit: committed, index: index)
        } catch let error as HistoryError where error.code == .conflict {
            guard case .merge(let policy) = ifBranchMoved else {
                throw DatabaseError(
                    .branchMoved,
                    "branch \(branch.shortName) moved while this draft was open; the draft is saved as commit \(committed.ref.id.shortDescription), which can be merged into it",
                    cause: error)
            }
            do {
                let outcome = try await database.merge(
                    committed.ref, into: branch, policy: policy, message: "Merge concurrent commit into \(branch.shortName)")
                base = outcome.snapshot
            } catch var error as DatabaseError where error.code == .mergeConflict {
                error.message += "; the draft is saved as commit \(committed.ref.id.shortDescription)"
                throw error
            }
        }
        working = [:]
        pendingEdits = [:]
        pendingEditBytes = 0
        changed = []
        return base
    }
}
