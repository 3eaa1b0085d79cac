import InfinityChunks
import InfinityCrypto
import InfinityHistory
import InfinityTrees

/// How a merge settles entries both sides changed differently.
public struct MergePolicy: Sendable {
    /// Which side wins where no resolver for the field is given.
    public enum Side: Sendable {
        case ours
        case theirs
    }

    let side: Side?
    private(set) var mapResolvers: [String: MapResolver] = [:]
    private(set) var serializedResolvers: [String: SerializedResolver] = [:]

    /// A map field's resolver, and the format of the values it returns.
    struct MapResolver: Sendable {
        let format: ValueFormat
        let resolve: @Sendable (MapConflict) async throws -> [UInt8]?
    }

    /// A serialized field's resolver, and the format of the value it returns.
    struct SerializedResolver: Sendable {
        let format: ValueFormat
        let merge: @Sendable (_ base: [UInt8]?, _ ours: [UInt8], _ theirs: [UInt8]) async throws -> [UInt8]
    }

    /// Any conflict fails the merge with ``DatabaseError/Code/mergeConflict``, listing them.
    public static let fail = MergePolicy(side: nil)
    /// Our side wins conflicts.
    public static let ours = MergePolicy(side: .ours)
    /// Their side wins conflicts.
    public static let theirs = MergePolicy(side: .theirs)

    /// Settles conflicts in one map field with a closure: given the key and the value on each
    /// side (nil where absent), it returns the value to keep (nil removes the key).
    public func resolving<Key, Value>(
        _ field: VersionedMap<Key, Value>,
        with resolve: @escaping @Sendable (_ key: Key, _ base: Value?, _ ours: Value?, _ theirs: Value?) async throws -> Value?
    ) -> MergePolicy {
        var policy = self
        let coder = field.values
        policy.mapResolvers[field.name] = MapResolver(format: coder.format) { conflict in
            let decode: ([UInt8]?) throws -> Value? = { bytes in try bytes.map { try coder.decode($0) } }
            let value = try await resolve(
                try Key(encodedKey: conflict.key), try decode(conflict.base), try decode(conflict.ours), try decode(conflict.theirs))
            return try value.map { try coder.encode($0) }
        }
        return policy
    }

    /// Settles a conflict in a serialized field with a closure.
    public func resolving<Value>(
        _ field: Serialized<Value>, with resolve: @escaping @Sendable (_ base: Value?, _ ours: Value, _ theirs: Value) async throws -> Value
    ) -> MergePolicy {
        var policy = self
        let coder = field.values
        policy.serializedResolvers[field.name] = SerializedResolver(format: coder.format) { base, ours, theirs in
            try coder.encode(try await resolve(try base.map { try coder.decode($0) }, try coder.decode(ours), try coder.decode(theirs)))
        }
        return policy
    }
}

/// What a merge did.
public enum MergeOutcome: Sendable {
    /// Their commit was already part of the branch.
    case upToDate(Snapshot)
    /// The branch had no commits of its own since theirs; it now points at theirs.
    case fastForwarded(Snapshot)
    /// A merge commit with two parents was written.
    case merged(Snapshot)

    public var snapshot: Snapshot {
        switch self {
        case .upToDate(let snapshot), .fastForwarded(let snapshot), .merged(let snapshot): snapshot
        }
    }
}

extension Database {
    /// Merges `revision` into `branch` (by default the branch HEAD is on): fast-forward when
    /// possible, otherwise a three-way merge of every field against the merge base, written as
    /// a commit with two parents. Retries by itself if the branch moves meanwhile.
    @discardableResult
    public func merge(
        _ revision: String, into branch: String? = nil, policy: MergePolicy = .fail, message: String? = nil
    ) async throws -> MergeOutcome {
        let target: RefName
        if let branch { target = try RefName.branch(branch) } else {
            guard case .branch(let name) = try refs.head() else {
                throw DatabaseError(.invalidArgument, "HEAD is detached; name the branch to merge into")
            }
            target = name
        }
        return try await merge(try await resolve(revision), into: target, policy: policy, message: message ?? "Merge \(revision) into \(target.shortName)")
    }

    /// Fork at `theirs`'s and the branch's common ancestor, then merge; see ``merge(_:into:policy:message:)``.
    func merge(_ theirs: ChunkRef, into branch: RefName, policy: MergePolicy, message: String) async throws -> MergeOutcome {
        // Every lost race means another writer's commit landed, so progress is certain; the
        // bound only stops a merge from chasing a branch that moves faster than it can merge.
        let attempts = 64
        for attempt in 0..<attempts {
            do {
                return try await mergeOnce(theirs, into: branch, policy: policy, message: message)
            } catch let error as HistoryError where error.code == .conflict {
                // The branch moved under us: merge again with its new head, after a short pause
                // that grows so racing writers spread out.
                try await Task.sleep(for: .milliseconds(min(50, 1 << min(attempt, 6))))
            }
        }
        throw DatabaseError(.branchMoved, "branch \(branch.shortName) kept moving; gave up merging after \(attempts) attempts")
    }

    private func mergeOnce(_ theirs: ChunkRef, into branch: RefName, policy: MergePolicy, message: String) async throws -> MergeOutcome {
        guard let ours = try refs.ref(branch) else {
            try moveBranch(branch, to: theirs, from: nil, message: "merge: fast-forward")
            return .fastForwarded(try await snapshot(commit: theirs))
        }
        let theirsIsMerged = try await commits.isAncestor(theirs, of: ours)
        if theirsIsMerged {
            return .upToDate(try await snapshot(commit: ours))
        }
        if try await commits.isAncestor(ours, of: theirs) {
            try moveBranch(branch, to: theirs, from: ours, message: "merge: fast-forward")
            return .fastForwarded(try await snapshot(commit: theirs))
        }
        let baseRef = try await commits.mergeBase(ours, theirs)
        let ourState = try await snapshot(commit: ours)
        let theirState = try await snapshot(commit: theirs)
        var baseFields: [String: FieldState] = [:]
        if let baseRef { baseFields = try await snapshot(commit: baseRef).allFields() }
        let ourFields = try await ourState.allFields()
        let theirFields = try await theirState.allFields()

        let writer = TreeWriter(store: trees)
        var conflicts: [MergeConflictSite] = []
        var indexEdits: [(key: [UInt8], value: [UInt8]?)] = []
        for name in Set(ourFields.keys).union(theirFields.keys).sorted() {
            let merged = try await mergeField(
                name, base: baseFields[name], ours: ourFields[name], theirs: theirFields[name], writer: writer,
                policy: policy, conflicts: &conflicts)
            if let merged, merged != ourFields[name] { indexEdits.append((Array(name.utf8), merged.encoded)) }
        }
        if !conflicts.isEmpty {
            let shown = conflicts.prefix(20).map(\.description).joined(separator: "; ")
            let more = conflicts.count > 20 ? " and \(conflicts.count - 20) more" : ""
            var error = DatabaseError(.mergeConflict, "merging into \(branch.shortName) conflicts in \(conflicts.count) places: \(shown)\(more)")
            error.conflicts = conflicts
            throw error
        }
        guard let ourIndex = ourState.index else {
            throw DatabaseError(.corrupt, "commit \(ours.id.shortDescription) has no index")
        }
        let index = try await writer.apply(indexEdits, to: ourIndex)
        var keep = [index]
        for (_, state) in ourFields { if let tree = state.tree { keep.append(tree) } }
        for edit in indexEdits {
            if let value = edit.value, let tree = try FieldState(encoded: value, field: "").tree { keep.append(tree) }
        }
        try await writer.flush(keeping: keep)
        let committed = try await writeCommit(parents: [ours, theirs], index: index, message: message)
        try moveBranch(branch, to: committed.ref, from: ours, message: "merge: \(message)")
        return .merged(Snapshot(database: self, commit: committed, index: index))
    }

    /// The merged state of one field, or nil if it stays absent.
    private func mergeField(
        _ name: String, base: FieldState?, ours: FieldState?, theirs: FieldState?, writer: TreeWriter, policy: MergePolicy,
        conflicts: inout [MergeConflictSite]
    ) async throws -> FieldState? {
        guard let theirs else { return ours }
        guard let ours else { return base == nil ? theirs : nil }
        if ours == theirs || base == theirs { return ours }
        if base == ours { return theirs }
        guard ours.kind == theirs.kind, base == nil || base?.kind == ours.kind else {
            switch policy.side {
            case .ours: return ours
            case .theirs: return theirs
            case nil:
                conflicts.append(MergeConflictSite(
                    field: name, description: "field \"\(name)\" is a \(ours.kind) on one side and a \(theirs.kind) on the other"))
                return ours
            }
        }
        // A side (or a resolver) that wrote binary values makes the merged field binary, as
        // writing them in a draft would (FieldState.writing).
        let format: ValueFormat =
            ours.format == .binary || theirs.format == .binary || policy.mapResolvers[name]?.format == .binary ? .binary : .raw
        switch (ours.content, theirs.content) {
        case let (.map(ourRoot), .map(theirRoot)):
            let baseRoot = try await baseTree(base, else: ourRoot, writer)
            var found: [MergeConflictSite] = []
            let resolver = policy.mapResolvers[name]
            let merged = try await writer.merge(base: baseRoot, ours: ourRoot, theirs: theirRoot) { (conflict: MapConflict) in
                if let resolver { return try await resolver.resolve(conflict) }
                switch policy.side {
                case .ours: return conflict.ours
                case .theirs: return conflict.theirs
                case nil:
                    found.append(MergeConflictSite(field: name, key: conflict.key, description: "field \"\(name)\" key \(Self.describe(conflict.key))"))
                    return conflict.ours
                }
            }
            conflicts += found
            return FieldState(.map(merged), format: format)
        case let (.list(ourRoot), .list(theirRoot)):
            let baseRoot = try await baseTree(base, else: ourRoot, writer)
            var found = 0
            let merged = try await writer.merge(base: baseRoot, ours: ourRoot, theirs: theirRoot) { (conflict: ListConflict) in
                switch policy.side {
                case .ours: return conflict.ours
                case .theirs: return conflict.theirs
                case nil:
                    found += 1
                    return conflict.ours
                }
            }
            if found > 0 { conflicts.append(MergeConflictSite(field: name, description: "list \"\(name)\": \(found) overlapping edits")) }
            return FieldState(.list(merged), format: format)
        case let (.serialized(ourValue), .serialized(theirValue)):
            var baseValue: [UInt8]? = nil
            if case .serialized(let bytes) = base?.content { baseValue = bytes }
            if let resolver = policy.serializedResolvers[name] {
                return FieldState(.serialized(try await resolver.merge(baseValue, ourValue, theirValue)), format: resolver.format)
            }
            switch policy.side {
            case .ours: return ours
            case .theirs: return theirs
            case nil:
                conflicts.append(MergeConflictSite(field: name, description: "value \"\(name)\" changed on both sides"))
                return ours
            }
        default:
            return ours
        }
    }

    /// The base version of a tree field, or an empty tree like ours when the base lacks it.
    private func baseTree(_ base: FieldState?, else ours: TreeRoot, _ writer: TreeWriter) async throws -> TreeRoot {
        if let tree = base?.tree { return tree }
        return try await writer.emptyTree(sameSaltAs: ours)
    }

    /// An encoded key for a message: text when it reads as text, hex otherwise.
    static func describe(_ key: [UInt8]) -> String {
        // Encoded text keys end in a two-byte terminator; show the text when that is all there is.
        let text = key.count >= 2 && key.suffix(2) == [0, 1] ? key.dropLast(2) : key[...]
        if text.allSatisfy({ (0x20..<0x7f).contains($0) }) { return "\"\(String(decoding: text, as: UTF8.self))\"" }
        return "0x" + Hex.encode(Array(key.prefix(32)))
    }
}
