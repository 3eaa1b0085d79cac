import InfinityTrees

/// A change to one entry of a map field between two snapshots.
public enum MapFieldChange<Key: IndexKey, Value: Codable & Sendable>: Sendable {
    case added(Key, Value)
    case removed(Key, Value)
    case changed(Key, old: Value, new: Value)
}

/// A change to a stretch of a list field between two snapshots: the elements in `oldRange`
/// became those in `newRange`.
public struct ListFieldChange<Element: Codable & Sendable>: Sendable {
    public let oldRange: Range<Int>
    public let newRange: Range<Int>
    public let removed: [Element]
    public let inserted: [Element]
}

/// Typed reads of fields, shared by snapshots (committed state) and drafts (working state).
enum FieldReads {
    static func mapRoot(_ state: FieldState?, field: String) throws -> TreeRoot? {
        guard let state else { return nil }
        try requireKind(.map, of: state, field: field)
        return state.tree
    }

    static func listRoot(_ state: FieldState?, field: String) throws -> TreeRoot? {
        guard let state else { return nil }
        try requireKind(.list, of: state, field: field)
        return state.tree
    }

    static func value<Key, Value>(
        _ key: Key, in field: VersionedMap<Key, Value>, state: FieldState?, reader: TreeReader
    ) async throws -> Value? {
        guard let root = try mapRoot(state, field: field.name),
            let bytes = try await reader.value(forKey: key.encodedKey, in: root)
        else { return nil }
        return try field.values.decode(bytes)
    }

    static func entries<Key, Value>(
        in field: VersionedMap<Key, Value>, state: FieldState?, reader: TreeReader, from start: Key?, before end: Key?,
        limit: Int, _ visit: (Key, Value) throws -> Bool
    ) async throws {
        guard let root = try mapRoot(state, field: field.name) else { return }
        var remaining = limit
        try await reader.forEachEntry(in: root, from: start?.encodedKey, before: end?.encodedKey) { key, value in
            guard remaining > 0 else { return false }
            remaining -= 1
            return try visit(try Key(encodedKey: key), try field.values.decode(value))
        }
    }

    static func elements<Element>(
        of field: List<Element>, state: FieldState?, reader: TreeReader, range: Range<Int>?
    ) async throws -> [Element] {
        guard let root = try listRoot(state, field: field.name) else {
            guard range == nil || range!.isEmpty else {
                throw DatabaseError(.invalidArgument, "list \"\(field.name)\" is empty; range \(range!) is outside it")
            }
            return []
        }
        var elements: [Element] = []
        try await reader.forEachElement(in: root, range: range) { _, bytes in
            elements.append(try field.elements.decode(bytes))
            return true
        }
        return elements
    }

    static func serialized<Value>(_ field: Serialized<Value>, state: FieldState?) throws -> Value? {
        guard let state else { return nil }
        try requireKind(.serialized, of: state, field: field.name)
        guard case .serialized(let bytes) = state.content else { return nil }
        return try field.values.decode(bytes)
    }
}
