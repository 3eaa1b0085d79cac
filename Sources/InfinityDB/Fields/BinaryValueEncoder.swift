import Foundation
import InfinityChunks

// The encoder builds a small tree of the value first and writes it out afterwards: nested
// containers can be filled after their later siblings, keyed entries are sorted before writing,
// and each container's body size must be known before its body.

/// Encodes `Encodable` values in ``BinaryValueFormat``.
enum BinaryValueEncoding {
    static func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let state = EncodingState()
        let root = BinaryValueEncoderImpl(state: state, path: nil, depth: 0)
        let node = try root.box(value, key: nil)
        if let misuse = state.misuse { throw misuse }
        let size = node.prepare()
        return [UInt8](unsafeUninitializedCapacity: 1 + size) { buffer, initializedCount in
            var writer = ByteWriter(UnsafeMutableRawBufferPointer(buffer))
            writer.byte(BinaryValueFormat.version)
            node.write(into: &writer)
            initializedCount = writer.offset
        }
    }
}

/// A value encoded but not yet written.
enum EncodedNode {
    case null
    case bool(Bool)
    /// Tagged `.signed` (the bits in zigzag form) or `.unsigned`.
    case integer(BinaryTag, UInt64)
    /// IEEE 754 bits.
    case float(UInt32)
    case double(UInt64)
    case string(String)
    case bytes([UInt8])
    /// A whole value already in wire form: 128-bit integers, and sorted dictionary keys and set
    /// elements, which had to be written to be compared.
    case written([UInt8])
    case keyed(KeyedNode)
    case unkeyed(UnkeyedNode)
    /// Whatever the encoder returned by `superEncoder()` holds when the tree is written.
    case superEncoder(BinaryValueEncoderImpl)

    init<Integer: FixedWidthInteger>(integer value: Integer) {
        if Integer.bitWidth <= 64 {
            self = Integer.isSigned
                ? .integer(.signed, Varint.zigzag(Int64(truncatingIfNeeded: value)))
                : .integer(.unsigned, UInt64(truncatingIfNeeded: value))
            return
        }
        let tag: BinaryTag = Integer.isSigned ? .signed : .unsigned
        let bits = Integer.isSigned
            ? Varint.zigzag(Int128(truncatingIfNeeded: value)) : UInt128(truncatingIfNeeded: value)
        self = .written([UInt8](unsafeUninitializedCapacity: 1 + Varint.size(bits)) { buffer, count in
            var writer = ByteWriter(UnsafeMutableRawBufferPointer(buffer))
            writer.tag(tag)
            writer.varint(bits)
            count = writer.offset
        })
    }

    /// The node of a value whose type is `special`: `value` is of the type it identifies.
    init<T>(_ value: T, special: SpecialType) {
        switch special {
        case .string: self = .string(reinterpret(value, as: String.self))
        case .bool: self = .bool(reinterpret(value, as: Bool.self))
        case .double: self = .double(reinterpret(value, as: Double.self).bitPattern)
        case .float: self = .float(reinterpret(value, as: Float.self).bitPattern)
        case .data: self = .bytes([UInt8](reinterpret(value, as: Data.self)))
        case .byteArray: self = .bytes(reinterpret(value, as: [UInt8].self))
        case .uuid: self = .bytes(withUnsafeBytes(of: reinterpret(value, as: UUID.self).uuid) { [UInt8]($0) })
        case .date: self = .double(reinterpret(value, as: Date.self).timeIntervalSinceReferenceDate.bitPattern)
        case .blobReference: self = .written([BinaryTag.blobReference.rawValue] + reinterpret(value, as: BlobRef.self).compactForm)
        case .integer(let type): self = Self.integer(value, as: type)
        }
    }

    private static func integer<T, Integer: CodableInteger>(_ value: T, as type: Integer.Type) -> EncodedNode {
        Integer.encodedNode(reinterpret(value, as: Integer.self))
    }

    /// Puts containers in canonical order and works out sizes; returns the size of the node.
    func prepare() -> Int {
        switch self {
        case .null, .bool: return 1
        case .integer(_, let bits): return 1 + Varint.size(bits)
        case .float: return 5
        case .double: return 9
        case .string(let string): return Self.sizeWithLength(string.utf8.count)
        case .bytes(let bytes): return Self.sizeWithLength(bytes.count)
        case .written(let bytes): return bytes.count
        case .keyed(let node): return node.prepare()
        case .unkeyed(let node): return node.prepare()
        case .superEncoder(let encoder): return encoder.resolvedStorage.prepare()
        }
    }

    /// The size of `length` bytes preceded by a tag and their length.
    static func sizeWithLength(_ length: Int) -> Int {
        1 + Varint.size(UInt(length)) + length
    }

    /// Writes the node; ``prepare()`` must have run first.
    func write(into writer: inout ByteWriter) {
        switch self {
        case .null: writer.tag(.null)
        case .bool(let value): writer.tag(value ? .trueValue : .falseValue)
        case .integer(let tag, let bits):
            writer.tag(tag)
            writer.varint(bits)
        case .float(let bits):
            writer.tag(.float)
            writer.littleEndian(bits)
        case .double(let bits):
            writer.tag(.double)
            writer.littleEndian(bits)
        case .string(var string):
            writer.tag(.string)
            writer.varint(UInt(string.utf8.count))
            string.withUTF8 { writer.raw(UnsafeRawBufferPointer($0)) }
        case .bytes(let bytes):
            writer.tag(.bytes)
            writer.varint(UInt(bytes.count))
            bytes.withUnsafeBytes { writer.raw($0) }
        case .written(let bytes):
            bytes.withUnsafeBytes { writer.raw($0) }
        case .keyed(let node): node.write(into: &writer)
        case .unkeyed(let node): node.write(into: &writer)
        case .superEncoder(let encoder): encoder.resolvedStorage.write(into: &writer)
        }
    }

    /// The node in wire form on its own, to compare it with others.
    func serialized() -> [UInt8] {
        let size = prepare()
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            var writer = ByteWriter(UnsafeMutableRawBufferPointer(buffer))
            write(into: &writer)
            count = writer.offset
        }
    }
}

/// Entries of a keyed container, in the order they were encoded until ``prepare()`` sorts them.
final class KeyedNode {
    var entries: [(key: String, value: EncodedNode)] = []
    private var bodySize = 0

    func prepare() -> Int {
        sortByKey()
        var body = 0
        for entry in entries {
            body += Varint.size(UInt(entry.key.utf8.count)) + entry.key.utf8.count + entry.value.prepare()
        }
        bodySize = body
        return 1 + Varint.size(UInt(entries.count)) + Varint.size(UInt(body)) + body
    }

    /// Sorts entries by the UTF-8 bytes of their keys; of entries with the same key, the one
    /// written last stays (as a later `encode` replaces an earlier one in JSONEncoder).
    private func sortByKey() {
        let inOrder = zip(entries, entries.dropFirst()).allSatisfy { compareUTF8($0.key, $1.key) < 0 }
        if inOrder { return }
        let order = entries.indices.sorted { left, right in
            let comparison = compareUTF8(entries[left].key, entries[right].key)
            return comparison != 0 ? comparison < 0 : left < right
        }
        var sorted: [(key: String, value: EncodedNode)] = []
        sorted.reserveCapacity(order.count)
        for (position, index) in order.enumerated() {
            let isReplaced = position + 1 < order.count
                && compareUTF8(entries[index].key, entries[order[position + 1]].key) == 0
            if !isReplaced { sorted.append(entries[index]) }
        }
        entries = sorted
    }

    func write(into writer: inout ByteWriter) {
        writer.tag(.keyed)
        writer.varint(UInt(entries.count))
        writer.varint(UInt(bodySize))
        for var entry in entries {
            writer.varint(UInt(entry.key.utf8.count))
            entry.key.withUTF8 { writer.raw(UnsafeRawBufferPointer($0)) }
            entry.value.write(into: &writer)
        }
    }
}

/// Elements of an unkeyed container.
final class UnkeyedNode {
    enum Order {
        /// As encoded: arrays and every other ordered sequence.
        case asWritten
        /// A dictionary whose keys are not strings or integers writes its entries as alternating
        /// keys and values in hash order; the pairs are sorted by the encoded key.
        case sortedPairs
        /// A set writes its elements in hash order; they are sorted by their encoding.
        case sortedElements
    }

    var elements: [EncodedNode] = []
    var order = Order.asWritten
    private var bodySize = 0

    func prepare() -> Int {
        switch order {
        case .asWritten: break
        case .sortedPairs: sortPairs()
        case .sortedElements: sortElements()
        }
        order = .asWritten
        var body = 0
        for element in elements { body += element.prepare() }
        bodySize = body
        return 1 + Varint.size(UInt(elements.count)) + Varint.size(UInt(body)) + body
    }

    private func sortElements() {
        elements = elements.map { $0.serialized() }.sorted { compareBytes($0, $1) < 0 }.map { .written($0) }
    }

    private func sortPairs() {
        // Only a dictionary's own encode(to:) marks a container this way, and it writes whole pairs.
        guard elements.count.isMultiple(of: 2) else { return }
        let keys = stride(from: 0, to: elements.count, by: 2).map { elements[$0].serialized() }
        var pairs = Array(keys.indices)
        pairs.sort { compareBytes(keys[$0], keys[$1]) < 0 }
        let hasEqualKeys = zip(pairs, pairs.dropFirst()).contains { compareBytes(keys[$0], keys[$1]) == 0 }
        var values = stride(from: 1, to: elements.count, by: 2).map { elements[$0] }
        if hasEqualKeys {
            // Distinct keys with one encoding (several NaNs, say): order those pairs by value too.
            let written = values.map { $0.serialized() }
            pairs.sort { left, right in
                let byKey = compareBytes(keys[left], keys[right])
                return byKey != 0 ? byKey < 0 : compareBytes(written[left], written[right]) < 0
            }
            values = written.map { .written($0) }
        }
        elements = pairs.flatMap { [EncodedNode.written(keys[$0]), values[$0]] }
    }

    func write(into writer: inout ByteWriter) {
        writer.tag(.unkeyed)
        writer.varint(UInt(elements.count))
        writer.varint(UInt(bodySize))
        for element in elements { element.write(into: &writer) }
    }
}

/// Marks the types whose `encode(to:)` writes in hash order, which changes from run to run.
protocol EncodesAsSortedPairs {}
extension Dictionary: EncodesAsSortedPairs where Key: Encodable, Value: Encodable {}
protocol EncodesAsSortedElements {}
extension Set: EncodesAsSortedElements where Element: Encodable {}

func compareBytes(_ left: [UInt8], _ right: [UInt8]) -> Int {
    left.withUnsafeBytes { left in right.withUnsafeBytes { right in compareBytes(left, right) } }
}

func compareUTF8(_ left: String, _ right: String) -> Int {
    var left = left
    var right = right
    return left.withUTF8 { left in
        right.withUTF8 { right in compareBytes(UnsafeRawBufferPointer(left), UnsafeRawBufferPointer(right)) }
    }
}

/// What all encoders of one top-level value share: the first misuse of the `Encoder` API, which
/// is reported when encoding ends because container factories cannot throw.
final class EncodingState {
    private(set) var misuse: EncodingError?

    func record(_ problem: String, at path: [any CodingKey]) {
        guard misuse == nil else { return }
        misuse = EncodingError.invalidValue(
            problem, EncodingError.Context(codingPath: path, debugDescription: problem)
        )
    }
}

/// The `Encoder` handed to `encode(to:)`: one per composite value or nested container.
final class BinaryValueEncoderImpl: Encoder, SingleValueEncodingContainer {
    let state: EncodingState
    let pathNode: CodingPathNode?
    /// How many composite values and containers enclose this one.
    let depth: Int
    private(set) var storage: EncodedNode?

    init(state: EncodingState, path: CodingPathNode?, depth: Int) {
        self.state = state
        pathNode = path
        self.depth = depth
    }

    var codingPath: [any CodingKey] { CodingPathNode.path(to: pathNode) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// The stored value; a value that encodes nothing at all is an empty keyed container.
    var resolvedStorage: EncodedNode {
        if let storage { return storage }
        let empty = EncodedNode.keyed(KeyedNode())
        storage = empty
        return empty
    }

    /// The encoder of a nested container or value under `key` (or under the same path, for the
    /// contents of a single value container), or nil when that would nest too deeply.
    func child(key: (any CodingKey)?) -> BinaryValueEncoderImpl? {
        guard depth < BinaryValueFormat.maximumDepth else { return nil }
        let path = key.map { CodingPathNode($0, parent: pathNode) } ?? pathNode
        return BinaryValueEncoderImpl(state: state, path: path, depth: depth + 1)
    }

    /// For container factories, which cannot throw: the child encoder under `key`, or, when too
    /// deep, a detached encoder (its contents go nowhere) and the misuse recorded to throw later.
    func childOrDetached(key: any CodingKey) -> (encoder: BinaryValueEncoderImpl, isAttached: Bool) {
        if let child = child(key: key) { return (child, true) }
        state.record(Self.tooDeep, at: codingPath + [key])
        return (BinaryValueEncoderImpl(state: state, path: pathNode, depth: depth), false)
    }

    static let tooDeep = "value nests deeper than \(BinaryValueFormat.maximumDepth) levels"

    /// Encodes `value` into a node: in place for primitives and the raw types, otherwise through
    /// its own `encode(to:)` on a child encoder.
    func box<T: Encodable>(_ value: T, key: (any CodingKey)?) throws -> EncodedNode {
        if let special = SpecialType(T.self) { return EncodedNode(value, special: special) }
        guard let encoder = child(key: key) else {
            let path = codingPath + (key.map { [$0] } ?? [])
            throw EncodingError.invalidValue(value, .init(codingPath: path, debugDescription: Self.tooDeep))
        }
        try value.encode(to: encoder)
        let node = encoder.resolvedStorage
        if case .unkeyed(let list) = node {
            if T.self is any EncodesAsSortedPairs.Type {
                list.order = .sortedPairs
            } else if T.self is any EncodesAsSortedElements.Type {
                list.order = .sortedElements
            }
        }
        return node
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        switch storage {
        case .keyed(let node)?:
            return KeyedEncodingContainer(KeyedWriter(encoder: self, node: node))
        case nil:
            let node = KeyedNode()
            storage = .keyed(node)
            return KeyedEncodingContainer(KeyedWriter(encoder: self, node: node))
        case _?:
            state.record("asked for a keyed container after encoding something else", at: codingPath)
            return KeyedEncodingContainer(KeyedWriter(encoder: self, node: KeyedNode()))
        }
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        switch storage {
        case .unkeyed(let node)?:
            return UnkeyedWriter(encoder: self, node: node)
        case nil:
            let node = UnkeyedNode()
            storage = .unkeyed(node)
            return UnkeyedWriter(encoder: self, node: node)
        case _?:
            state.record("asked for an unkeyed container after encoding something else", at: codingPath)
            return UnkeyedWriter(encoder: self, node: UnkeyedNode())
        }
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { self }

    // MARK: SingleValueEncodingContainer

    private func set(_ node: EncodedNode) {
        guard case .none = storage else {
            state.record("encoded a second value into a single value container", at: codingPath)
            return
        }
        storage = node
    }

    func encodeNil() { set(.null) }
    func encode(_ value: Bool) { set(.bool(value)) }
    func encode(_ value: String) { set(.string(value)) }
    func encode(_ value: Double) { set(.double(value.bitPattern)) }
    func encode(_ value: Float) { set(.float(value.bitPattern)) }
    func encode(_ value: Int) { set(EncodedNode(integer: value)) }
    func encode(_ value: Int8) { set(EncodedNode(integer: value)) }
    func encode(_ value: Int16) { set(EncodedNode(integer: value)) }
    func encode(_ value: Int32) { set(EncodedNode(integer: value)) }
    func encode(_ value: Int64) { set(EncodedNode(integer: value)) }
    func encode(_ value: Int128) { set(EncodedNode(integer: value)) }
    func encode(_ value: UInt) { set(EncodedNode(integer: value)) }
    func encode(_ value: UInt8) { set(EncodedNode(integer: value)) }
    func encode(_ value: UInt16) { set(EncodedNode(integer: value)) }
    func encode(_ value: UInt32) { set(EncodedNode(integer: value)) }
    func encode(_ value: UInt64) { set(EncodedNode(integer: value)) }
    func encode(_ value: UInt128) { set(EncodedNode(integer: value)) }
    func encode<T: Encodable>(_ value: T) throws { set(try box(value, key: nil)) }
}

private struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: BinaryValueEncoderImpl
    let node: KeyedNode

    var codingPath: [any CodingKey] { encoder.codingPath }

    private func add(_ value: EncodedNode, _ key: Key) {
        node.entries.append((key.stringValue, value))
    }

    mutating func encodeNil(forKey key: Key) { add(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) { add(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) { add(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) { add(.double(value.bitPattern), key) }
    mutating func encode(_ value: Float, forKey key: Key) { add(.float(value.bitPattern), key) }
    mutating func encode(_ value: Int, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: Int8, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: Int16, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: Int32, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: Int64, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: Int128, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) { add(EncodedNode(integer: value), key) }
    mutating func encode(_ value: UInt128, forKey key: Key) { add(EncodedNode(integer: value), key) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        add(try encoder.box(value, key: key), key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested = KeyedNode()
        let child = encoder.childOrDetached(key: key)
        if child.isAttached { add(.keyed(nested), key) }
        return KeyedEncodingContainer(KeyedWriter<NestedKey>(encoder: child.encoder, node: nested))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = UnkeyedNode()
        let child = encoder.childOrDetached(key: key)
        if child.isAttached { add(.unkeyed(nested), key) }
        return UnkeyedWriter(encoder: child.encoder, node: nested)
    }

    mutating func superEncoder() -> any Encoder {
        superEncoder(named: BinaryCodingKey.superKey)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        superEncoder(named: key)
    }

    private func superEncoder(named key: any CodingKey) -> any Encoder {
        let child = encoder.childOrDetached(key: key)
        if child.isAttached { node.entries.append((key.stringValue, .superEncoder(child.encoder))) }
        return child.encoder
    }
}

private struct UnkeyedWriter: UnkeyedEncodingContainer {
    let encoder: BinaryValueEncoderImpl
    let node: UnkeyedNode

    var codingPath: [any CodingKey] { encoder.codingPath }
    var count: Int { node.elements.count }

    private var nextKey: BinaryCodingKey { .index(node.elements.count) }

    private func add(_ value: EncodedNode) {
        node.elements.append(value)
    }

    mutating func encodeNil() { add(.null) }
    mutating func encode(_ value: Bool) { add(.bool(value)) }
    mutating func encode(_ value: String) { add(.string(value)) }
    mutating func encode(_ value: Double) { add(.double(value.bitPattern)) }
    mutating func encode(_ value: Float) { add(.float(value.bitPattern)) }
    mutating func encode(_ value: Int) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: Int8) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: Int16) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: Int32) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: Int64) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: Int128) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: UInt) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: UInt8) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: UInt16) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: UInt32) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: UInt64) { add(EncodedNode(integer: value)) }
    mutating func encode(_ value: UInt128) { add(EncodedNode(integer: value)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        add(try encoder.box(value, key: nextKey))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = KeyedNode()
        let child = encoder.childOrDetached(key: nextKey)
        if child.isAttached { add(.keyed(nested)) }
        return KeyedEncodingContainer(KeyedWriter<NestedKey>(encoder: child.encoder, node: nested))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = UnkeyedNode()
        let child = encoder.childOrDetached(key: nextKey)
        if child.isAttached { add(.unkeyed(nested)) }
        return UnkeyedWriter(encoder: child.encoder, node: nested)
    }

    mutating func superEncoder() -> any Encoder {
        let child = encoder.childOrDetached(key: nextKey)
        if child.isAttached { add(.superEncoder(child.encoder)) }
        return child.encoder
    }
}
