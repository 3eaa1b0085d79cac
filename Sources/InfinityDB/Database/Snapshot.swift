import InfinityChunks
import InfinityHistory
import InfinityTrees
import Synchronization

/// The state of an index at one commit: read-only, and cheap to open whatever the history
/// (one commit chunk and the index's root node; everything else loads as it is read).
///
/// Safe to share between tasks; reads never wait for writers.
public final class Snapshot: Sendable {
    public let database: Database
    /// The commit shown, or nil for a branch that has no commits yet.
    public let commit: LoggedCommit?
    /// The index map: field name → field state. Nil when there is no commit.
    let index: TreeRoot?
    private let fieldCache = Mutex<[String: FieldState?]>([:])

    init(database: Database, commit: LoggedCommit?, index: TreeRoot?) {
        self.database = database
        self.commit = commit
        self.index = index
    }

    /// The stored state of a field, or nil if the index has no such field.
    func fieldState(_ name: String) async throws -> FieldState? {
        if let cached = fieldCache.withLock({ $0[name] }) { return cached }
        var state: FieldState? = nil
        if let index, let bytes = try await database.trees.reader.value(forKey: Array(name.utf8), in: index) {
            state = try FieldState(encoded: bytes, field: name)
        }
        fieldCache.withLock { $0[name] = state }
        return state
    }

    /// Every field of the index, by name.
    func allFields() async throws -> [String: FieldState] {
        guard let index else { return [:] }
        var fields: [String: FieldState] = [:]
        var failure: (any Error)? = nil
        try await database.trees.reader.forEachEntry(in: index) { key, value in
            do {
                // Names are written as UTF-8; anything else is damage, not a name to repair.
                guard let name = String(validating: key, as: UTF8.self) else {
                    throw DatabaseError(.corrupt, "the index holds a field name that is not UTF-8")
                }
                fields[name] = try FieldState(encoded: value, field: name)
            } catch {
                failure = error
                return false
            }
            return true
        }
        if let failure { throw failure }
        return fields
    }

    /// Names of the fields this snapshot holds.
    public func fieldNames() async throws -> [String] {
        try await allFields().keys.sorted()
    }

    // MARK: Maps

    /// The value under `key`, or nil.
    public func get<Key, Value>(_ key: Key, in field: VersionedMap<Key, Value>) async throws -> Value? {
        try await FieldReads.value(key, in: field, state: try await fieldState(field.name), reader: database.trees.reader)
    }

    /// Levels of a map field's tree above its leaves (0 when one node holds it all): a point read
    /// loads at most this many nodes plus one.
    public func fieldHeight<Key, Value>(_ field: VersionedMap<Key, Value>) async throws -> Int {
        try FieldReads.mapRoot(try await fieldState(field.name), field: field.name)?.level ?? 0
    }

    /// Number of entries.
    public func count<Key, Value>(of field: VersionedMap<Key, Value>) async throws -> Int {
        try FieldReads.mapRoot(try await fieldState(field.name), field: field.name)?.count ?? 0
    }

    /// Entries in key order from `start` (inclusive) to `end` (exclusive), at most `limit`.
    public func entries<Key, Value>(
        in field: VersionedMap<Key, Value>, from start: Key? = nil, before end: Key? = nil, limit: Int = .max
    ) async throws -> [(key: Key, value: Value)] {
        var entries: [(key: Key, value: Value)] = []
        try await forEachEntry(in: field, from: start, before: end, limit: limit) { key, value in
            entries.append((key, value))
            return true
        }
        return entries
    }

    /// Visits entries in key order without collecting them; `visit` returns false to stop.
    public func forEachEntry<Key, Value>(
        in field: VersionedMap<Key, Value>, from start: Key? = nil, before end: Key? = nil, limit: Int = .max,
        _ visit: (Key, Value) throws -> Bool
    ) async throws {
        try await FieldReads.entries(
            in: field, state: try await fieldState(field.name), reader: database.trees.reader, from: start, before: end,
            limit: limit, visit)
    }

    // MARK: Lists

    /// Number of elements.
    public func count<Element>(of field: List<Element>) async throws -> Int {
        try FieldReads.listRoot(try await fieldState(field.name), field: field.name)?.count ?? 0
    }

    /// The elements in `range` (all of them by default).
    public func elements<Element>(of field: List<Element>, in range: Range<Int>? = nil) async throws -> [Element] {
        try await FieldReads.elements(of: field, state: try await fieldState(field.name), reader: database.trees.reader, range: range)
    }

    /// The element at `position`.
    public func element<Element>(at position: Int, of field: List<Element>) async throws -> Element {
        let count = try await count(of: field)
        guard position >= 0, position < count, let element = try await elements(of: field, in: position..<(position + 1)).first
        else {
            throw DatabaseError(.invalidArgument, "list \"\(field.name)\" has no element \(position) (it holds \(count))")
        }
        return element
    }

    // MARK: Serialized values

    /// The value, or nil if it was never set.
    public func get<Value>(_ field: Serialized<Value>) async throws -> Value? {
        try FieldReads.serialized(field, state: try await fieldState(field.name))
    }

    // MARK: Changes

    /// What changed in a map field from `older` to this snapshot, in key order. Costs about
    /// (changes × depth) node reads: shared parts of the two versions are skipped unread.
    public func changes<Key, Value>(
        in field: VersionedMap<Key, Value>, since older: Snapshot, _ visit: (MapFieldChange<Key, Value>) throws -> Void
    ) async throws {
        let writer = TreeWriter(store: database.trees)
        let empty = try writer.emptyTree(.map)
        let old = try FieldReads.mapRoot(try await older.fieldState(field.name), field: field.name) ?? empty
        let new = try FieldReads.mapRoot(try await fieldState(field.name), field: field.name) ?? empty
        let coder = field.values
        try await writer.reader.diff(old, new) { (change: MapChange) in
            switch change {
            case let .added(key, value): try visit(.added(try Key(encodedKey: key), try coder.decode(value)))
            case let .removed(key, value): try visit(.removed(try Key(encodedKey: key), try coder.decode(value)))
            case let .changed(key, old, new):
                try visit(.changed(try Key(encodedKey: key), old: try coder.decode(old), new: try coder.decode(new)))
            }
        }
    }

    /// The changes of a map field since `older`, collected.
    public func changes<Key, Value>(in field: VersionedMap<Key, Value>, since older: Snapshot) async throws -> [MapFieldChange<Key, Value>] {
        var changes: [MapFieldChange<Key, Value>] = []
        try await self.changes(in: field, since: older) { changes.append($0) }
        return changes
    }

    /// What changed in a list field since `older`, as hunks in order.
    public func changes<Element>(in field: List<Element>, since older: Snapshot) async throws -> [ListFieldChange<Element>] {
        let writer = TreeWriter(store: database.trees)
        let empty = try writer.emptyTree(.list)
        let old = try FieldReads.listRoot(try await older.fieldState(field.name), field: field.name) ?? empty
        let new = try FieldReads.listRoot(try await fieldState(field.name), field: field.name) ?? empty
        var changes: [ListFieldChange<Element>] = []
        try await writer.reader.diff(old, new) { (change: ListChange) in
            changes.append(ListFieldChange(
                oldRange: change.oldRange, newRange: change.newRange,
                removed: try change.removed.map { try field.elements.decode($0) },
                inserted: try change.inserted.map { try field.elements.decode($0) }))
        }
        return changes
    }
}
