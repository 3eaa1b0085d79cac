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

/// How the values of a field are encoded, as the field's entry in the index records it.
enum ValueFormat: Sendable, Hashable {
    /// Raw bytes (`String`, `Data`, numbers…), which say nothing of what they hold; also every
    /// field written before the format was recorded. Never scanned for blob references.
    case raw
    /// ``BinaryValueFormat``, self-describing: the store finds the blob references in these values.
    case binary
}

extension ValueCoder {
    /// The format this coder writes.
    var format: ValueFormat { usesBinaryFormat ? .binary : .raw }
}

/// What a field of a committed index holds, as its entry in the index map records it:
/// `kind (1) | payload`, the payload a ``TreeRoot`` for maps and lists, the value's encoding for
/// serialized fields. The kind byte's high bit says the values are in ``ValueFormat/binary``.
struct FieldState: Sendable, Hashable {
    enum Content: Sendable, Hashable {
        case map(TreeRoot)
        case list(TreeRoot)
        case serialized([UInt8])
    }

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

    var content: Content
    /// How the map's values, the list's elements or the serialized value are encoded.
    var format: ValueFormat

    init(_ content: Content, format: ValueFormat) {
        self.content = content
        self.format = format
    }

    private static let binaryFlag: UInt8 = 0x80

    var kind: Kind {
        switch content {
        case .map: .map
        case .list: .list
        case .serialized: .serialized
        }
    }

    var encoded: [UInt8] {
        let first = kind.rawValue | (format == .binary ? Self.binaryFlag : 0)
        switch content {
        case .map(let root), .list(let root): return [first] + root.encoded
        case .serialized(let bytes): return [first] + bytes
        }
    }

    init(encoded bytes: [UInt8], field: String) throws {
        guard let first = bytes.first, let kind = Kind(rawValue: first & ~Self.binaryFlag) else {
            throw DatabaseError(.corrupt, "field \"\(field)\" has an unknown kind in the index")
        }
        let payload = Array(bytes.dropFirst())
        format = first & Self.binaryFlag != 0 ? .binary : .raw
        switch kind {
        case .map: content = .map(try TreeRoot(encoded: payload, context: "field \"\(field)\""))
        case .list: content = .list(try TreeRoot(encoded: payload, context: "field \"\(field)\""))
        case .serialized: content = .serialized(payload)
        }
    }

    var tree: TreeRoot? {
        switch content {
        case .map(let root), .list(let root): root
        case .serialized: nil
        }
    }

    /// This state with values now written in `format`. A field whose values are in the binary
    /// format takes no raw values (the store would scan them as binary); a raw field takes binary
    /// ones (it may have been written before formats were recorded, when its values were binary
    /// too) and is binary from then on.
    func writing(_ format: ValueFormat, field: String) throws -> FieldState {
        guard format != self.format else { return self }
        if self.format == .binary, (tree?.count ?? 0) > 0 {
            throw DatabaseError(
                .fieldKindMismatch,
                "field \"\(field)\" holds values in the binary format; this declaration writes raw values (String, Data, numbers)")
        }
        return FieldState(content, format: format)
    }
}

/// Checks a stored field is of the kind the app declared.
func requireKind(_ kind: FieldState.Kind, of state: FieldState, field: String) throws {
    guard state.kind == kind else {
        throw DatabaseError(.fieldKindMismatch, "field \"\(field)\" holds a \(state.kind), not a \(kind)")
    }
}
