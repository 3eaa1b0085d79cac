import InfinityTrees

/// A sorted map field of an index: keys in their encoded order, Codable values.
///
/// A field is a name and its types; declare the fields of an app's index once and use them with
/// any ``Snapshot`` or ``Draft``:
///
/// ```swift
/// enum Library {
///     static let books = VersionedMap<UUID, Book>("books")
///     static let shelf = List<UUID>("shelf")
///     static let settings = Serialized<Settings>("settings")
/// }
/// ```
public struct VersionedMap<Key: IndexKey, Value: Codable & Sendable>: Sendable {
    public let name: String
    let values: ValueCoder<Value>

    public init(_ name: String) {
        self.name = name
        values = ValueCoder<Value>()
    }
}

/// A list field: Codable elements by position, with inserts and removals anywhere.
public struct List<Element: Codable & Sendable>: Sendable {
    public let name: String
    let elements: ValueCoder<Element>

    public init(_ name: String) {
        self.name = name
        elements = ValueCoder<Element>()
    }
}

/// A single Codable value field (settings, counters, small documents).
public struct Serialized<Value: Codable & Sendable>: Sendable {
    public let name: String
    let values: ValueCoder<Value>

    public init(_ name: String) {
        self.name = name
        values = ValueCoder<Value>()
    }
}

/// What a field of a committed index holds, as its entry in the index map records it:
/// `kind (1) | payload`, the payload a ``TreeRoot`` for maps and lists, the value's encoding for
/// serialized fields.
enum FieldState: Sendable, Hashable {
    case map(TreeRoot)
    case list(TreeRoot)
    case serialized([UInt8])

    enum Kind: UInt8, CustomStringConvertible {
        case map = 0
        case list = 1
        case serialized = 2

        var description: String {
            switch self {
            case .map: "map"
            case .list: "list"
            case .serialized: "serialized value"
            }
        }
    }

    var kind: Kind {
        switch self {
        case .map: .map
        case .list: .list
        case .serialized: .serialized
        }
    }

    var encoded: [UInt8] {
        switch self {
        case .map(let root), .list(let root): [kind.rawValue] + root.encoded
        case .serialized(let bytes): [kind.rawValue] + bytes
        }
    }

    init(encoded bytes: [UInt8], field: String) throws {
        guard let first = bytes.first, let kind = Kind(rawValue: first) else {
            throw DatabaseError(.corrupt, "field \"\(field)\" has an unknown kind in the index")
        }
        let payload = Array(bytes.dropFirst())
        switch kind {
        case .map: self = .map(try TreeRoot(encoded: payload, context: "field \"\(field)\""))
        case .list: self = .list(try TreeRoot(encoded: payload, context: "field \"\(field)\""))
        case .serialized: self = .serialized(payload)
        }
    }

    var tree: TreeRoot? {
        switch self {
        case .map(let root), .list(let root): root
        case .serialized: nil
        }
    }
}

/// Checks a stored field is of the kind the app declared.
func requireKind(_ kind: FieldState.Kind, of state: FieldState, field: String) throws {
    guard state.kind == kind else {
        throw DatabaseError(.fieldKindMismatch, "field \"\(field)\" holds a \(state.kind), not a \(kind)")
    }
}
