import Foundation
import InfinityChunks

/// Decodes `Decodable` values from ``BinaryValueFormat``.
enum BinaryValueDecoding {
    /// Decodes the one value in `bytes`, reading them in place. Every length is checked against
    /// the bytes left before anything is allocated, and nesting is limited, so hostile input
    /// yields a `DecodingError` and never a trap or a large allocation.
    static func decode<Value: Decodable>(_ type: Value.Type, from bytes: UnsafeRawBufferPointer) throws -> Value {
        let input = DecodingInput(bytes)
        // Decoders and containers that `init(from:)` kept past this call then read nothing
        // instead of freed memory: every read checks its bounds against the emptied buffer.
        defer { input.invalidate() }
        let root = BinaryValueDecoderImpl(input: input, range: ValueRange(start: 1, end: bytes.count), path: nil, depth: 0)
        let end = try root.reading(Value.self, key: nil) { () throws(DecodingFailure) in
            let version = try input.byte(at: 0)
            guard version == BinaryValueFormat.version else {
                throw DecodingFailure("unknown format version \(version) (this build reads \(BinaryValueFormat.version))")
            }
            return try input.valueEnd(at: 1, limit: bytes.count)
        }
        guard end == bytes.count else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: [], debugDescription: "\(bytes.count - end) byte(s) after the end of the value"
            ))
        }
        return try root.unbox(Value.self, range: ValueRange(start: 1, end: end), key: nil)
    }
}

/// Where one encoded value lies: its tag is at `start`, and it ends just before `end`.
struct ValueRange {
    let start: Int
    let end: Int
}

/// Why bytes cannot be read, before the coding path is known. Converted to a `DecodingError`
/// by ``BinaryValueDecoderImpl/reading(_:key:_:)``.
struct DecodingFailure: Error {
    let message: String
    /// The bytes are fine but hold another kind of value than the one asked for.
    let isTypeMismatch: Bool

    init(_ message: String, isTypeMismatch: Bool = false) {
        self.message = message
        self.isTypeMismatch = isTypeMismatch
    }

    static func mismatch(expected: String, found tag: BinaryTag) -> DecodingFailure {
        DecodingFailure("expected \(expected), found \(tag.name)", isTypeMismatch: true)
    }
}

/// The bytes being decoded and the primitive reads on them, each checked against the bounds.
final class DecodingInput {
    private var bytes: UnsafeRawBufferPointer

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    func invalidate() {
        bytes = UnsafeRawBufferPointer(start: nil, count: 0)
    }

    func byte(at offset: Int) throws(DecodingFailure) -> UInt8 {
        guard offset >= 0, offset < bytes.count else { throw DecodingFailure("truncated at byte \(offset)") }
        return bytes[offset]
    }

    func tag(at offset: Int) throws(DecodingFailure) -> BinaryTag {
        let byte = try byte(at: offset)
        guard let tag = BinaryTag(rawValue: byte) else {
            throw DecodingFailure("unknown value tag \(byte) at byte \(offset)")
        }
        return tag
    }

    /// Passes `count` bytes from `offset` to `body`, in place.
    func withBytes<Result>(
        at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws(DecodingFailure) -> Result
    ) throws(DecodingFailure) -> Result {
        guard offset >= 0, count >= 0, count <= bytes.count - offset else {
            throw DecodingFailure("truncated: \(count) byte(s) needed at byte \(offset)")
        }
        return try body(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
    }

    /// Reads a LEB128 varint at `cursor`, which must end before `limit`, and moves past it.
    func varint<Integer: FixedWidthInteger & UnsignedInteger>(
        _ type: Integer.Type, at cursor: inout Int, limit: Int
    ) throws(DecodingFailure) -> Integer {
        var result: Integer = 0
        var shift = 0
        while true {
            guard cursor < limit else { throw DecodingFailure("truncated number at byte \(cursor)") }
            let byte = try byte(at: cursor)
            cursor += 1
            let payload = Integer(byte & 0x7F)
            guard shift < Integer.bitWidth, (payload << shift) >> shift == payload else {
                throw DecodingFailure("number at byte \(cursor - 1) does not fit in \(Integer.bitWidth) bits")
            }
            result |= payload << shift
            if byte & 0x80 == 0 {
                guard byte != 0 || shift == 0 else {
                    throw DecodingFailure("number at byte \(cursor - 1) is not in its shortest form")
                }
                return result
            }
            shift += 7
        }
    }

    /// Reads a length at `cursor` and checks that that many bytes remain before `limit`.
    func length(at cursor: inout Int, limit: Int) throws(DecodingFailure) -> Int {
        let length = try varint(UInt64.self, at: &cursor, limit: limit)
        guard length <= UInt64(max(0, limit - cursor)) else {
            throw DecodingFailure("length \(length) at byte \(cursor) exceeds the \(max(0, limit - cursor)) byte(s) left")
        }
        return Int(length)
    }

    /// Where the value starting at `start` ends, without looking inside containers.
    func valueEnd(at start: Int, limit: Int) throws(DecodingFailure) -> Int {
        var cursor = start + 1
        guard start < limit else { throw DecodingFailure("truncated: value expected at byte \(start)") }
        switch try tag(at: start) {
        case .null, .falseValue, .trueValue:
            return cursor
        case .signed, .unsigned:
            _ = try varint(UInt128.self, at: &cursor, limit: limit)
            return cursor
        case .float:
            return try fixedWidthEnd(4, at: cursor, limit: limit)
        case .double:
            return try fixedWidthEnd(8, at: cursor, limit: limit)
        case .string, .bytes:
            let count = try length(at: &cursor, limit: limit)
            return cursor + count
        case .unkeyed, .keyed:
            let header = try containerHeader(at: start, limit: limit)
            return header.bodyStart + header.bodySize
        case .blobReference:
            return try blobReference(at: start, limit: limit).end
        }
    }

    /// The blob reference whose tag is at `start`, and where it ends.
    func blobReference(at start: Int, limit: Int) throws(DecodingFailure) -> (blob: BlobRef, end: Int) {
        let available = max(0, min(limit, bytes.count) - (start + 1))
        let read = try withBytes(at: start + 1, count: available) { BlobRef.readCompactForm(from: $0) }
        guard let read else { throw DecodingFailure("blob reference at byte \(start) is damaged") }
        return (read.blob, start + 1 + read.byteCount)
    }

    private func fixedWidthEnd(_ size: Int, at cursor: Int, limit: Int) throws(DecodingFailure) -> Int {
        guard size <= limit - cursor else { throw DecodingFailure("truncated number at byte \(cursor)") }
        return cursor + size
    }

    /// The entry count and body of the container at `start`, whose tag has been checked.
    func containerHeader(at start: Int, limit: Int) throws(DecodingFailure) -> (count: Int, bodyStart: Int, bodySize: Int) {
        var cursor = start + 1
        let count = try varint(UInt64.self, at: &cursor, limit: limit)
        let bodySize = try length(at: &cursor, limit: limit)
        // Every element takes at least one byte (a keyed entry two), so a count beyond the body
        // size is a lie; checking it bounds what a reader reserves for the entries.
        guard count <= UInt64(bodySize) else {
            throw DecodingFailure("container at byte \(start) claims \(count) entries in \(bodySize) byte(s)")
        }
        return (Int(count), cursor, bodySize)
    }

    // MARK: Primitives

    func bool(_ range: ValueRange) throws(DecodingFailure) -> Bool {
        switch try tag(at: range.start) {
        case .falseValue: return false
        case .trueValue: return true
        case let tag: throw .mismatch(expected: "a Bool", found: tag)
        }
    }

    func integer<Integer: FixedWidthInteger>(_ range: ValueRange, as type: Integer.Type) throws(DecodingFailure) -> Integer {
        var cursor = range.start + 1
        let tag = try tag(at: range.start)
        let value: Integer?
        switch tag {
        case .signed where Integer.bitWidth <= 64:
            let bits = Varint.unzigzag(try varint(UInt64.self, at: &cursor, limit: range.end))
            value = Integer(exactly: Int64(truncatingIfNeeded: bits))
        case .signed:
            let bits = Varint.unzigzag(try varint(UInt128.self, at: &cursor, limit: range.end))
            value = Integer(exactly: Int128(truncatingIfNeeded: bits))
        case .unsigned where Integer.bitWidth <= 64:
            value = Integer(exactly: try varint(UInt64.self, at: &cursor, limit: range.end))
        case .unsigned:
            value = Integer(exactly: try varint(UInt128.self, at: &cursor, limit: range.end))
        default:
            throw .mismatch(expected: "an integer", found: tag)
        }
        guard let value else { throw DecodingFailure("number at byte \(range.start) is out of range for \(Integer.self)") }
        return value
    }

    func double(_ range: ValueRange) throws(DecodingFailure) -> Double {
        switch try tag(at: range.start) {
        case .double: return Double(bitPattern: try littleEndian(UInt64.self, at: range.start + 1))
        // Widening is exact, so a field may grow from Float to Double.
        case .float: return Double(Float(bitPattern: try littleEndian(UInt32.self, at: range.start + 1)))
        case let tag: throw .mismatch(expected: "a Double", found: tag)
        }
    }

    func float(_ range: ValueRange) throws(DecodingFailure) -> Float {
        switch try tag(at: range.start) {
        case .float: return Float(bitPattern: try littleEndian(UInt32.self, at: range.start + 1))
        case let tag: throw .mismatch(expected: "a Float", found: tag)
        }
    }

    private func littleEndian<Integer: FixedWidthInteger>(_ type: Integer.Type, at offset: Int) throws(DecodingFailure) -> Integer {
        try withBytes(at: offset, count: MemoryLayout<Integer>.size) { Integer(littleEndian: $0.loadUnaligned(as: Integer.self)) }
    }

    /// Passes the contents of a string or byte string to `body`, in place.
    func contents<Result>(
        _ range: ValueRange, tag expected: BinaryTag, _ body: (UnsafeRawBufferPointer) throws(DecodingFailure) -> Result
    ) throws(DecodingFailure) -> Result {
        let tag = try tag(at: range.start)
        guard tag == expected else { throw .mismatch(expected: expected.name, found: tag) }
        var cursor = range.start + 1
        let count = try length(at: &cursor, limit: range.end)
        return try withBytes(at: cursor, count: count, body)
    }

    func string(_ range: ValueRange) throws(DecodingFailure) -> String {
        try contents(range, tag: .string) { raw throws(DecodingFailure) in
            guard let string = String(validating: raw, as: UTF8.self) else {
                throw DecodingFailure("string at byte \(range.start) is not valid UTF-8")
            }
            return string
        }
    }

    /// A value of one of the types read in a form of their own.
    func special<T>(_ special: SpecialType, _ range: ValueRange, as type: T.Type) throws(DecodingFailure) -> T {
        switch special {
        case .string: return reinterpret(try string(range), as: T.self)
        case .bool: return reinterpret(try bool(range), as: T.self)
        case .double: return reinterpret(try double(range), as: T.self)
        case .float: return reinterpret(try float(range), as: T.self)
        case .data: return reinterpret(try contents(range, tag: .bytes) { Data($0) }, as: T.self)
        case .byteArray: return reinterpret(try contents(range, tag: .bytes) { [UInt8]($0) }, as: T.self)
        case .uuid: return reinterpret(try uuid(range), as: T.self)
        case .date:
            return reinterpret(Date(timeIntervalSinceReferenceDate: try double(range)), as: T.self)
        case .blobReference:
            let tag = try tag(at: range.start)
            guard tag == .blobReference else { throw .mismatch(expected: BinaryTag.blobReference.name, found: tag) }
            let (blob, end) = try blobReference(at: range.start, limit: range.end)
            guard end == range.end else { throw DecodingFailure("blob reference at byte \(range.start) is followed by \(range.end - end) stray byte(s)") }
            return reinterpret(blob, as: T.self)
        case .integer(let integerType): return try integer(range, as: integerType, returning: T.self)
        }
    }

    private func integer<Integer: CodableInteger, T>(
        _ range: ValueRange, as type: Integer.Type, returning: T.Type
    ) throws(DecodingFailure) -> T {
        reinterpret(try Integer.decode(range, in: self), as: T.self)
    }

    private func uuid(_ range: ValueRange) throws(DecodingFailure) -> UUID {
        try contents(range, tag: .bytes) { raw throws(DecodingFailure) in
            guard raw.count == MemoryLayout<uuid_t>.size else {
                throw DecodingFailure("a UUID has 16 bytes, not \(raw.count)")
            }
            var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: raw) }
            return UUID(uuid: uuid)
        }
    }

    /// The key bytes of a keyed entry compared with `key`.
    func compareKey(at offset: Int, count: Int, with key: String) throws(DecodingFailure) -> Int {
        var key = key
        return try withBytes(at: offset, count: count) { stored in
            key.withUTF8 { compareBytes(stored, UnsafeRawBufferPointer($0)) }
        }
    }
}

/// The `Decoder` handed to `init(from:)`: one per composite value or nested container, all
/// sharing one ``DecodingInput``.
final class BinaryValueDecoderImpl: Decoder, SingleValueDecodingContainer {
    let input: DecodingInput
    let range: ValueRange
    let pathNode: CodingPathNode?
    /// How many composite values and containers enclose this one.
    let depth: Int

    init(input: DecodingInput, range: ValueRange, path: CodingPathNode?, depth: Int) {
        self.input = input
        self.range = range
        pathNode = path
        self.depth = depth
    }

    var codingPath: [any CodingKey] { CodingPathNode.path(to: pathNode) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func codingPath(appending key: (any CodingKey)?) -> [any CodingKey] {
        key.map { codingPath + [$0] } ?? codingPath
    }

    /// Runs a read, turning its failure into the `DecodingError` a `Decodable` expects, with the
    /// coding path (built only now that it is needed).
    func reading<Result>(
        _ type: Any.Type, key: (any CodingKey)?, _ body: () throws(DecodingFailure) -> Result
    ) throws -> Result {
        do {
            return try body()
        } catch {
            let context = DecodingError.Context(codingPath: codingPath(appending: key), debugDescription: error.message)
            throw error.isTypeMismatch ? DecodingError.typeMismatch(type, context) : DecodingError.dataCorrupted(context)
        }
    }

    /// The decoder for a nested value or container at `range`, one level deeper.
    func child(_ range: ValueRange, key: (any CodingKey)?) throws -> BinaryValueDecoderImpl {
        guard depth < BinaryValueFormat.maximumDepth else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath(appending: key),
                debugDescription: "value nests deeper than \(BinaryValueFormat.maximumDepth) levels"
            ))
        }
        let path = key.map { CodingPathNode($0, parent: pathNode) } ?? pathNode
        return BinaryValueDecoderImpl(input: input, range: range, path: path, depth: depth + 1)
    }

    /// Decodes a value of type `T` at `range`: in place for primitives and the raw types,
    /// otherwise through its own `init(from:)` on a child decoder.
    func unbox<T: Decodable>(_ type: T.Type, range: ValueRange, key: (any CodingKey)?) throws -> T {
        if let special = SpecialType(T.self) {
            return try reading(T.self, key: key) { () throws(DecodingFailure) in try input.special(special, range, as: T.self) }
        }
        return try T(from: child(range, key: key))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let entries = try reading([String: Any].self, key: nil) { () throws(DecodingFailure) in
            try KeyedEntry.parse(input, range)
        }
        return KeyedDecodingContainer(KeyedReader<Key>(decoder: self, entries: entries))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try UnkeyedReader(decoder: self)
    }

    func singleValueContainer() -> any SingleValueDecodingContainer { self }

    // MARK: SingleValueDecodingContainer

    func decodeNil() -> Bool {
        (try? input.tag(at: range.start)) == .null
    }

    func decode(_ type: Bool.Type) throws -> Bool { try unbox(type, range: range, key: nil) }
    func decode(_ type: String.Type) throws -> String { try unbox(type, range: range, key: nil) }
    func decode(_ type: Double.Type) throws -> Double { try unbox(type, range: range, key: nil) }
    func decode(_ type: Float.Type) throws -> Float { try unbox(type, range: range, key: nil) }
    func decode(_ type: Int.Type) throws -> Int { try unbox(type, range: range, key: nil) }
    func decode(_ type: Int8.Type) throws -> Int8 { try unbox(type, range: range, key: nil) }
    func decode(_ type: Int16.Type) throws -> Int16 { try unbox(type, range: range, key: nil) }
    func decode(_ type: Int32.Type) throws -> Int32 { try unbox(type, range: range, key: nil) }
    func decode(_ type: Int64.Type) throws -> Int64 { try unbox(type, range: range, key: nil) }
    func decode(_ type: Int128.Type) throws -> Int128 { try unbox(type, range: range, key: nil) }
    func decode(_ type: UInt.Type) throws -> UInt { try unbox(type, range: range, key: nil) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try unbox(type, range: range, key: nil) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try unbox(type, range: range, key: nil) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try unbox(type, range: range, key: nil) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try unbox(type, range: range, key: nil) }
    func decode(_ type: UInt128.Type) throws -> UInt128 { try unbox(type, range: range, key: nil) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try unbox(type, range: range, key: nil) }
}

/// One entry of a keyed container: where its key's bytes and its value lie.
struct KeyedEntry {
    let keyStart: Int
    let keyCount: Int
    let value: ValueRange

    /// The entries of the keyed container at `range`, checked to be in canonical order.
    static func parse(_ input: DecodingInput, _ range: ValueRange) throws(DecodingFailure) -> [KeyedEntry] {
        let tag = try input.tag(at: range.start)
        guard tag == .keyed else { throw .mismatch(expected: BinaryTag.keyed.name, found: tag) }
        let header = try input.containerHeader(at: range.start, limit: range.end)
        let bodyEnd = header.bodyStart + header.bodySize
        var entries: [KeyedEntry] = []
        // The count is bounded by the body size, but an entry takes more memory than its bytes;
        // beyond a typical struct's size, let the array grow with the entries actually read.
        entries.reserveCapacity(min(header.count, 64))
        var cursor = header.bodyStart
        for _ in 0..<header.count {
            let keyCount = try input.length(at: &cursor, limit: bodyEnd)
            let keyStart = cursor
            cursor += keyCount
            try input.withBytes(at: keyStart, count: keyCount) { key throws(DecodingFailure) in
                guard key.allSatisfy({ $0 < 0x80 }) || String(validating: key, as: UTF8.self) != nil else {
                    throw DecodingFailure("key at byte \(keyStart) is not valid UTF-8")
                }
                if let previous = entries.last {
                    let order = try input.withBytes(at: previous.keyStart, count: previous.keyCount) { compareBytes($0, key) }
                    guard order < 0 else { throw DecodingFailure("keys are out of order or repeated at byte \(keyStart)") }
                }
            }
            let valueEnd = try input.valueEnd(at: cursor, limit: bodyEnd)
            entries.append(KeyedEntry(keyStart: keyStart, keyCount: keyCount, value: ValueRange(start: cursor, end: valueEnd)))
            cursor = valueEnd
        }
        guard cursor == bodyEnd else {
            throw DecodingFailure("keyed container at byte \(range.start) has \(bodyEnd - cursor) byte(s) after its entries")
        }
        return entries
    }
}

private struct KeyedReader<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: BinaryValueDecoderImpl
    let entries: [KeyedEntry]

    var codingPath: [any CodingKey] { decoder.codingPath }

    var allKeys: [Key] {
        entries.compactMap { entry in
            let name = try? decoder.input.withBytes(at: entry.keyStart, count: entry.keyCount) {
                String(decoding: $0, as: UTF8.self)
            }
            return name.flatMap { Key(stringValue: $0) }
        }
    }

    /// Binary search: entries are sorted by key bytes.
    private func find(_ name: String) -> ValueRange? {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            let entry = entries[middle]
            guard let order = try? decoder.input.compareKey(at: entry.keyStart, count: entry.keyCount, with: name) else {
                return nil
            }
            if order == 0 { return entry.value }
            if order < 0 { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    private func value(_ key: Key) throws -> ValueRange {
        guard let range = find(key.stringValue) else {
            throw DecodingError.keyNotFound(key, .init(
                codingPath: codingPath, debugDescription: "no value for key \"\(key.stringValue)\""
            ))
        }
        return range
    }

    func contains(_ key: Key) -> Bool { find(key.stringValue) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        let range = try value(key)
        return try decoder.reading(Never.self, key: key) { () throws(DecodingFailure) in try decoder.input.tag(at: range.start) == .null }
    }

    private func decode<T: Decodable>(_ key: Key) throws -> T {
        try decoder.unbox(T.self, range: value(key), key: key)
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(key) }
    func decode(_ type: Int128.Type, forKey key: Key) throws -> Int128 { try decode(key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(key) }
    func decode(_ type: UInt128.Type, forKey key: Key) throws -> UInt128 { try decode(key) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decode(key) }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try decoder.child(value(key), key: key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder.child(value(key), key: key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        guard let range = find(BinaryCodingKey.superKey.stringValue) else {
            throw DecodingError.keyNotFound(BinaryCodingKey.superKey, .init(
                codingPath: codingPath, debugDescription: "no value for key \"super\""
            ))
        }
        return try decoder.child(range, key: BinaryCodingKey.superKey)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        try decoder.child(value(key), key: key)
    }
}

private struct UnkeyedReader: UnkeyedDecodingContainer {
    let decoder: BinaryValueDecoderImpl
    let count: Int?
    private(set) var currentIndex = 0
    private var cursor: Int
    private let bodyEnd: Int

    init(decoder: BinaryValueDecoderImpl) throws {
        self.decoder = decoder
        let input = decoder.input
        let range = decoder.range
        let header = try decoder.reading([Any].self, key: nil) { () throws(DecodingFailure) in
            let tag = try input.tag(at: range.start)
            guard tag == .unkeyed else { throw .mismatch(expected: BinaryTag.unkeyed.name, found: tag) }
            return try input.containerHeader(at: range.start, limit: range.end)
        }
        count = header.count
        cursor = header.bodyStart
        bodyEnd = header.bodyStart + header.bodySize
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var isAtEnd: Bool { currentIndex >= (count ?? 0) }

    /// Reads the next element with `read` and moves past it only if that succeeds, as the
    /// `UnkeyedDecodingContainer` contract asks.
    private mutating func next<Result>(
        _ type: Any.Type, _ read: (ValueRange, BinaryCodingKey) throws -> Result
    ) throws -> Result {
        let key = BinaryCodingKey.index(currentIndex)
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(
                codingPath: codingPath + [key], debugDescription: "unkeyed container is at its end"
            ))
        }
        let (input, start, limit) = (decoder.input, cursor, bodyEnd)
        let end = try decoder.reading(type, key: key) { () throws(DecodingFailure) in try input.valueEnd(at: start, limit: limit) }
        let result = try read(ValueRange(start: start, end: end), key)
        cursor = end
        currentIndex += 1
        if isAtEnd, cursor != bodyEnd {
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath, debugDescription: "\(bodyEnd - cursor) byte(s) after the last element"
            ))
        }
        return result
    }

    mutating func decodeNil() throws -> Bool {
        let (input, start) = (decoder.input, cursor)
        guard !isAtEnd, (try? input.tag(at: start)) == .null else { return false }
        return try next(Never.self) { _, _ in true }
    }

    private mutating func decodeNext<T: Decodable>() throws -> T {
        let decoder = decoder
        return try next(T.self) { range, key in try decoder.unbox(T.self, range: range, key: key) }
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try decodeNext() }
    mutating func decode(_ type: String.Type) throws -> String { try decodeNext() }
    mutating func decode(_ type: Double.Type) throws -> Double { try decodeNext() }
    mutating func decode(_ type: Float.Type) throws -> Float { try decodeNext() }
    mutating func decode(_ type: Int.Type) throws -> Int { try decodeNext() }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try decodeNext() }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try decodeNext() }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try decodeNext() }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try decodeNext() }
    mutating func decode(_ type: Int128.Type) throws -> Int128 { try decodeNext() }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try decodeNext() }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try decodeNext() }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try decodeNext() }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try decodeNext() }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try decodeNext() }
    mutating func decode(_ type: UInt128.Type) throws -> UInt128 { try decodeNext() }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeNext() }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let decoder = decoder
        return try next(KeyedDecodingContainer<NestedKey>.self) { range, key in
            try decoder.child(range, key: key).container(keyedBy: type)
        }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let decoder = decoder
        return try next([Any].self) { range, key in try decoder.child(range, key: key).unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder {
        let decoder = decoder
        return try next(Decoder.self) { range, key in try decoder.child(range, key: key) }
    }
}
