import Foundation
import InfinityDB
import InfinityTestSupport
import Testing

// MARK: Sample types

private indirect enum Shape: Codable, Hashable {
    case circle(radius: Double)
    case polygon([Point], closed: Bool)
    case labelled(String, Shape?)
    case empty
}

private struct Point: Codable, Hashable {
    var x: Int32
    var y: Int32
}

private enum Colour: String, Codable, Hashable, CaseIterable { case red, green, blue }

private struct Document: Codable, Hashable {
    var id: UUID
    var title: String
    var created: Date
    var tags: Set<String>
    var scores: [String: Double]
    var counts: [Int: String]
    var owners: [UUID: Colour]
    var shapes: [Shape]
    var attachment: Data?
    var checksum: [UInt8]
    var optionalNumbers: [Int?]
    var nested: [[Int8]]
    var huge: Int128
    var unsigned: UInt64
    var ratio: Float
    var flag: Bool
    var note: String?
}

/// A class hierarchy that encodes its superclass through `superEncoder()`, plus a nested keyed
/// container, a nested unkeyed container and an explicit `superEncoder(forKey:)`.
// Test values are built and read on one task; none is shared while mutated.
private class Animal: Codable, @unchecked Sendable {
    var name: String
    init(name: String) { self.name = name }
}

private final class Dog: Animal, Equatable, @unchecked Sendable {
    var tricks: [String]
    var home: (street: String, number: Int)
    var parent: Animal?

    enum CodingKeys: String, CodingKey { case tricks, home, extra }
    enum HomeKeys: String, CodingKey { case street, number }

    init(name: String, tricks: [String], home: (String, Int), parent: Animal?) {
        self.tricks = tricks
        self.home = home
        self.parent = parent
        super.init(name: name)
    }

    required init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var list = try container.nestedUnkeyedContainer(forKey: .tricks)
        var tricks: [String] = []
        while !list.isAtEnd { tricks.append(try list.decode(String.self)) }
        self.tricks = tricks
        let home = try container.nestedContainer(keyedBy: HomeKeys.self, forKey: .home)
        self.home = (try home.decode(String.self, forKey: .street), try home.decode(Int.self, forKey: .number))
        parent = container.contains(.extra) ? try Animal(from: container.superDecoder(forKey: .extra)) : nil
        try super.init(from: container.superDecoder())
    }

    override func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        var list = container.nestedUnkeyedContainer(forKey: .tricks)
        for trick in tricks { try list.encode(trick) }
        var home = container.nestedContainer(keyedBy: HomeKeys.self, forKey: .home)
        try home.encode(self.home.street, forKey: .street)
        try home.encode(self.home.number, forKey: .number)
        if let parent { try parent.encode(to: container.superEncoder(forKey: .extra)) }
        try super.encode(to: container.superEncoder())
    }

    static func == (lhs: Dog, rhs: Dog) -> Bool {
        lhs.name == rhs.name && lhs.tricks == rhs.tricks && lhs.home == rhs.home && lhs.parent?.name == rhs.parent?.name
    }
}

/// A linked list, to nest values as deeply as a test needs.
private indirect enum Chain: Codable, Equatable, Sendable {
    case end
    case link(Int, Chain)

    init(length: Int) {
        self = (0..<length).reduce(Chain.end) { .link($1, $0) }
    }
}

/// A class that nests through an optional child: one keyed container a level.
private final class Nest: Codable, @unchecked Sendable {
    let child: Nest?
    init(child: Nest? = nil) { self.child = child }
    var depth: Int { 1 + (child?.depth ?? 0) }
}

/// Writes its unkeyed elements through nested unkeyed containers and `superEncoder()`.
private struct Matrix: Codable, Equatable {
    var rows: [[Double]]
    var meta: String

    init(rows: [[Double]], meta: String) {
        self.rows = rows
        self.meta = meta
    }

    init(from decoder: any Decoder) throws {
        var outer = try decoder.unkeyedContainer()
        meta = try String(from: outer.superDecoder())
        var rows: [[Double]] = []
        while !outer.isAtEnd {
            var row = try outer.nestedUnkeyedContainer()
            var values: [Double] = []
            while !row.isAtEnd { values.append(try row.decode(Double.self)) }
            rows.append(values)
        }
        self.rows = rows
    }

    func encode(to encoder: any Encoder) throws {
        var outer = encoder.unkeyedContainer()
        try meta.encode(to: outer.superEncoder())
        for row in rows {
            var inner = outer.nestedUnkeyedContainer()
            for value in row { try inner.encode(value) }
        }
    }
}

private extension SeededGenerator {
    mutating func string() -> String {
        let pieces = ["", "a", "é", "\0", "key", "😀", "日本", " "]
        return (0..<Int.random(in: 0...4, using: &self)).map { _ in pieces.randomElement(using: &self) ?? "" }.joined()
    }

    mutating func uuid() -> UUID {
        let b = bytes(count: 16)
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    mutating func shape(depth: Int = 0) -> Shape {
        switch Int.random(in: 0...(depth > 2 ? 1 : 3), using: &self) {
        case 0: return .circle(radius: Double.random(in: -10...10, using: &self))
        case 1: return .empty
        case 2:
            let points = (0..<Int.random(in: 0...3, using: &self)).map { _ in
                Point(x: Int32.random(in: .min ... .max, using: &self), y: Int32.random(in: -5...5, using: &self))
            }
            return .polygon(points, closed: Bool.random(using: &self))
        default:
            return .labelled(string(), Bool.random(using: &self) ? shape(depth: depth + 1) : nil)
        }
    }

    mutating func document() -> Document {
        func some<T>(_ make: () -> T) -> T? { Bool.random(using: &self) ? make() : nil }
        return Document(
            id: uuid(),
            title: string(),
            created: Date(timeIntervalSinceReferenceDate: Double.random(in: -1e9...1e9, using: &self)),
            tags: Set((0..<Int.random(in: 0...5, using: &self)).map { _ in string() }),
            scores: Dictionary((0..<Int.random(in: 0...6, using: &self)).map { _ in (string(), Double.random(in: -1...1, using: &self)) },
                               uniquingKeysWith: { first, _ in first }),
            counts: Dictionary(uniqueKeysWithValues: (0..<Int.random(in: 0...6, using: &self)).map { ($0 * 37 - 50, string()) }),
            owners: Dictionary(uniqueKeysWithValues: (0..<Int.random(in: 0...4, using: &self)).map { _ in
                (uuid(), Colour.allCases.randomElement(using: &self) ?? .red)
            }),
            shapes: (0..<Int.random(in: 0...3, using: &self)).map { _ in shape() },
            attachment: Bool.random(using: &self) ? Data(bytes(count: Int.random(in: 0...40, using: &self))) : nil,
            checksum: bytes(count: 8),
            optionalNumbers: (0..<Int.random(in: 0...5, using: &self)).map { _ in
                Bool.random(using: &self) ? Int.random(in: .min ... .max, using: &self) : nil
            },
            nested: (0..<Int.random(in: 0...3, using: &self)).map { _ in
                (0..<Int.random(in: 0...3, using: &self)).map { _ in Int8.random(in: .min ... .max, using: &self) }
            },
            huge: Int128.random(in: .min ... .max, using: &self),
            unsigned: next(),
            ratio: Float.random(in: -1...1, using: &self),
            flag: Bool.random(using: &self),
            note: Bool.random(using: &self) ? string() : nil
        )
    }
}

// MARK: Tests

@Suite struct ValueEncodingTests {
    // MARK: Raw encodings

    @Test func rawTypesEncodeAsTheirBytes() throws {
        #expect(try ValueCoder<Data>().encode(Data([1, 0, 255])) == [1, 0, 255])
        #expect(try ValueCoder<[UInt8]>().encode([]) == [])
        #expect(try ValueCoder<String>().encode("é\0") == [0xC3, 0xA9, 0x00])
        #expect(try ValueCoder<Bool>().encode(true) == [1])
        #expect(try ValueCoder<Int>().encode(-2) == [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(try ValueCoder<UInt16>().encode(0x1234) == [0x34, 0x12])
        #expect(try ValueCoder<Double>().encode(1.0) == [0, 0, 0, 0, 0, 0, 0xF0, 0x3F])
        let uuid = UUID()
        #expect(try ValueCoder<UUID>().encode(uuid) == withUnsafeBytes(of: uuid.uuid) { [UInt8]($0) })
        #expect(try ValueCoder<Date>().encode(Date(timeIntervalSinceReferenceDate: 1)) == [0, 0, 0, 0, 0, 0, 0xF0, 0x3F])
    }

    private func expectRoundTrip<Value: Codable & Sendable & Equatable>(
        _ values: [Value], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let coder = ValueCoder<Value>()
        for value in values {
            let bytes = try coder.encode(value)
            #expect(try coder.decode(bytes) == value, sourceLocation: sourceLocation)
            #expect(try coder.encode(coder.decode(bytes)) == bytes, sourceLocation: sourceLocation)
        }
    }

    @Test func rawTypesRoundTrip() throws {
        try expectRoundTrip([Data(), Data([0]), Data((0..<100).map { UInt8($0) })])
        try expectRoundTrip([[UInt8](), [0, 255]])
        try expectRoundTrip(["", "\0", "e\u{301}", "😀 日本"])
        try expectRoundTrip([true, false])
        try expectRoundTrip([Int.min, -1, 0, Int.max])
        try expectRoundTrip([Int8.min, Int8.max])
        try expectRoundTrip([Int16.min, Int16.max])
        try expectRoundTrip([Int32.min, Int32.max])
        try expectRoundTrip([Int64.min, Int64.max])
        try expectRoundTrip([Int128.min, Int128.max])
        try expectRoundTrip([UInt.max, 0])
        try expectRoundTrip([UInt8.max, 0])
        try expectRoundTrip([UInt16.max, 0])
        try expectRoundTrip([UInt32.max, 0])
        try expectRoundTrip([UInt64.max, 0])
        try expectRoundTrip([UInt128.max, 0])
        try expectRoundTrip([0.0, 1.5, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude] as [Double])
        try expectRoundTrip([Float(0.25), -.infinity])
        try expectRoundTrip([UUID(), UUID()])
        try expectRoundTrip([Date.distantPast, .distantFuture, Date(timeIntervalSinceReferenceDate: 0.1)])
        // Bits survive exactly: the sign of zero and NaN payloads are part of the value.
        let doubles = ValueCoder<Double>()
        #expect(try doubles.decode(doubles.encode(-0.0)).sign == .minus)
        #expect(try doubles.decode(doubles.encode(-.nan)).bitPattern == (-Double.nan).bitPattern)
    }

    @Test func rawTypesRejectWrongLengthsAndBadBytes() {
        func expectMalformed<Value: Codable & Sendable>(_ bytes: [UInt8], as type: Value.Type, sourceLocation: SourceLocation = #_sourceLocation) {
            let error = #expect(throws: FieldError.self, sourceLocation: sourceLocation) { try ValueCoder<Value>().decode(bytes) }
            #expect(error?.code == .malformedValue, sourceLocation: sourceLocation)
        }
        expectMalformed([1, 2, 3], as: Int.self)
        expectMalformed([], as: Int8.self)
        expectMalformed([1, 2], as: Int32.self)
        expectMalformed([2], as: Bool.self)
        expectMalformed([], as: Bool.self)
        expectMalformed([0xFF, 0xFE], as: String.self)
        expectMalformed([0xC3], as: String.self)
        expectMalformed(Array(repeating: 0, count: 15), as: UUID.self)
        expectMalformed(Array(repeating: 0, count: 9), as: Double.self)
        expectMalformed(Array(repeating: 0, count: 7), as: Date.self)
        expectMalformed([0, 0], as: Float.self)
    }

    @Test func decodesSlicesOfALargerBufferAndOtherCollections() throws {
        let coder = ValueCoder<Data>()
        let payload = Data((0..<100).map { UInt8($0) })
        let buffer = [0xAA] + (try coder.encode(payload)) + [0xBB]
        #expect(try coder.decode(buffer[1..<101]) == payload)
        #expect(try coder.decode(buffer.dropFirst().dropLast()) == payload)
        let fromRaw = try buffer.withUnsafeBytes { raw in try coder.decode(UnsafeRawBufferPointer(rebasing: raw[1..<101])) }
        #expect(fromRaw == payload)
        let shapes = ValueCoder<[Shape]>()
        let encoded = try shapes.encode([.circle(radius: 1), .empty])
        // Not contiguous: copied once.
        #expect(try shapes.decode(encoded.lazy.map { $0 }) == [.circle(radius: 1), .empty])
        #expect(try shapes.decode(Data(encoded)) == [.circle(radius: 1), .empty])
    }

    // MARK: Binary encoding

    @Test func nestedValuesRoundTrip() throws {
        var random = SeededGenerator(seed: 100)
        let documents = (0..<300).map { _ in random.document() }
        try expectRoundTrip(documents)
        try expectRoundTrip([Shape.empty, .labelled("a", .labelled("b", .polygon([Point(x: 1, y: -1)], closed: true)))])
        try expectRoundTrip([Colour.red, .blue])
        try expectRoundTrip([[:], ["a": [nil, 1]], ["": []]] as [[String: [Int?]]])
        try expectRoundTrip([Optional<Int>.none, 5])
        try expectRoundTrip([Matrix(rows: [[1, 2], [], [3]], meta: "m"), Matrix(rows: [], meta: "")])
        try expectRoundTrip([Chain(length: 60)])  // two levels a link: within the limit of 128
        try expectRoundTrip([[Date.distantFuture: UUID()]])
    }

    @Test func classesEncodeThroughSuperEncoders() throws {
        let dog = Dog(name: "Rex", tricks: ["sit", "roll"], home: ("Elm St", 7), parent: Animal(name: "Max"))
        let coder = ValueCoder<Dog>()
        #expect(try coder.decode(coder.encode(dog)) == dog)
        let orphan = Dog(name: "", tricks: [], home: ("", 0), parent: nil)
        #expect(try coder.decode(coder.encode(orphan)) == orphan)
    }

    @Test func equalDictionariesAndSetsEncodeIdentically() throws {
        var random = SeededGenerator(seed: 110)
        let entries = (0..<200).map { index in ("key\(index)\(random.string())", index) }
        let uuids = (0..<200).map { _ in random.uuid() }
        // Built in opposite orders and with different capacities, so their storage differs.
        var forward = [String: Int](), backward = [String: Int](minimumCapacity: 1_000)
        var forwardByUUID = [UUID: Int](), backwardByUUID = [UUID: Int](minimumCapacity: 1_000)
        var forwardSet = Set<String>(), backwardSet = Set<String>(minimumCapacity: 1_000)
        for (index, (key, value)) in entries.enumerated() {
            forward[key] = value
            forwardByUUID[uuids[index]] = value
            forwardSet.insert(key)
        }
        for (index, (key, value)) in entries.enumerated().reversed() {
            backward[key] = value
            backwardByUUID[uuids[index]] = value
            backwardSet.insert(key)
        }
        #expect(Array(forward.keys) != Array(backward.keys), "the test needs two iteration orders")
        #expect(try ValueCoder<[String: Int]>().encode(forward) == ValueCoder<[String: Int]>().encode(backward))
        #expect(try ValueCoder<[UUID: Int]>().encode(forwardByUUID) == ValueCoder<[UUID: Int]>().encode(backwardByUUID))
        #expect(try ValueCoder<Set<String>>().encode(forwardSet) == ValueCoder<Set<String>>().encode(backwardSet))
        #expect(try ValueCoder<[UUID: Int]>().decode(ValueCoder<[UUID: Int]>().encode(forwardByUUID)) == forwardByUUID)

        // Whole documents too: encoding the same value twice, or a decoded copy, gives one encoding.
        let coder = ValueCoder<Document>()
        for _ in 0..<50 {
            let document = random.document()
            let bytes = try coder.encode(document)
            var rebuilt = document
            rebuilt.scores = Dictionary(uniqueKeysWithValues: document.scores.reversed())
            rebuilt.tags = Set(document.tags.reversed())
            #expect(try coder.encode(rebuilt) == bytes)
            #expect(try coder.encode(coder.decode(bytes)) == bytes)
        }
    }

    @Test func dictionaryWithNaNKeysIsDeterministic() throws {
        // NaN != NaN, so a dictionary can hold several NaN keys with one encoding; their pairs
        // are ordered by value.
        let first: [Double: Int] = Dictionary(uniqueKeysWithValues: [(.nan, 1), (.nan, 2), (1, 3)])
        let second: [Double: Int] = Dictionary(uniqueKeysWithValues: [(1, 3), (.nan, 2), (.nan, 1)])
        let coder = ValueCoder<[Double: Int]>()
        #expect(try coder.encode(first) == coder.encode(second))
        #expect(try coder.decode(coder.encode(first)).count == 3)
    }

    @Test func encodingIsCompact() throws {
        #expect(try ValueCoder<Point>().encode(Point(x: 1, y: -1)) == [
            1,                    // format version
            0x0A, 2, 8,           // keyed: 2 entries, 8 bytes
            1, 0x78, 0x03, 2,     // "x": signed 1 (zigzag 2)
            1, 0x79, 0x03, 1,     // "y": signed -1 (zigzag 1)
        ].map(UInt8.init))
        #expect(try ValueCoder<[Int]>().encode([1, 2, 3]).count == 1 + 3 + 6)
        #expect(try ValueCoder<[UUID]>().encode([UUID()]).count == 1 + 3 + 18)
    }

    @Test func integersWidenAcrossTypesAndThrowWhenOutOfRange() throws {
        struct Narrow: Codable { var value: Int8 }
        struct Wide: Codable { var value: Int64 }
        struct Unsigned: Codable { var value: UInt8 }
        let narrow = try ValueCoder<Narrow>().encode(Narrow(value: -3))
        #expect(try ValueCoder<Wide>().decode(narrow).value == -3)
        let wide = try ValueCoder<Wide>().encode(Wide(value: 300))
        let error = #expect(throws: FieldError.self) { try ValueCoder<Narrow>().decode(wide) }
        #expect(error?.code == .malformedValue)
        #expect(throws: FieldError.self) { try ValueCoder<Unsigned>().decode(narrow) }
        struct Text: Codable { var value: String }
        let mismatch = #expect(throws: FieldError.self) { try ValueCoder<Text>().decode(narrow) }
        #expect((mismatch?.cause as? DecodingError).map { if case .typeMismatch = $0 { true } else { false } } == true)
    }

    @Test func missingKeysAndUnknownKeys() throws {
        struct Old: Codable { var a: Int }
        struct New: Codable { var a: Int; var b: String?; var c: [Int]? }
        // A newer writer's extra keys are ignored; missing optional keys decode as nil.
        let fromNew = try ValueCoder<New>().encode(New(a: 1, b: "x", c: [2]))
        #expect(try ValueCoder<Old>().decode(fromNew).a == 1)
        let fromOld = try ValueCoder<Old>().encode(Old(a: 2))
        let decoded = try ValueCoder<New>().decode(ValueCoder<Old>().encode(Old(a: 2)))
        #expect(decoded.a == 2 && decoded.b == nil)
        _ = fromOld
        struct Required: Codable { var z: Int }
        let error = #expect(throws: FieldError.self) { try ValueCoder<Required>().decode(fromNew) }
        #expect((error?.cause as? DecodingError).map { if case .keyNotFound = $0 { true } else { false } } == true)
    }

    // MARK: Hostile input

    @Test func everyTruncationThrows() throws {
        var random = SeededGenerator(seed: 120)
        let coder = ValueCoder<Document>()
        for _ in 0..<5 {
            let bytes = try coder.encode(random.document())
            for length in 0..<bytes.count {
                let error = #expect(throws: FieldError.self) { try coder.decode(bytes[..<length]) }
                #expect(error?.code == .malformedValue)
            }
            #expect(throws: FieldError.self) { try coder.decode(bytes + [0]) }
        }
    }

    @Test func garbageAndFlippedBytesNeverTrap() throws {
        var random = SeededGenerator(seed: 130)
        let coder = ValueCoder<Document>()
        let shapes = ValueCoder<[Shape]>()
        let valid = try coder.encode(random.document())
        for round in 0..<3_000 {
            var bytes: [UInt8]
            if round.isMultiple(of: 2) {
                bytes = [1] + random.bytes(count: Int.random(in: 0...64, using: &random), from: [0, 1, 2, 3, 7, 8, 9, 10, 0x7F, 0x80, 0xFF])
            } else {
                bytes = valid
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    bytes[Int.random(in: 1..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            }
            for decode in [{ _ = try coder.decode(bytes) }, { _ = try shapes.decode(bytes) }] {
                do { try decode() } catch let error as FieldError {
                    #expect([FieldError.Code.malformedValue, .unsupportedFormat].contains(error.code))
                } catch {
                    Issue.record("unexpected error \(error)")
                }
            }
        }
    }

    @Test func hugeLengthsAndCountsAreRejectedBeforeAllocating() {
        let maxVarint: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        let cases: [[UInt8]] = [
            [1, 0x07] + maxVarint,                    // string of 2^64 - 1 bytes
            [1, 0x09] + maxVarint + [0],              // unkeyed container of 2^64 - 1 elements
            [1, 0x09, 0x7F, 0x02, 0x00, 0x00],        // 127 elements claimed in 2 bytes
            [1, 0x0A, 0x01] + maxVarint,              // keyed body of 2^64 - 1 bytes
            [1, 0x04, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
             0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],     // number wider than 128 bits
        ]
        for bytes in cases {
            #expect(throws: FieldError.self) { try ValueCoder<[String]>().decode(bytes) }
            #expect(throws: FieldError.self) { try ValueCoder<Point>().decode(bytes) }
        }
    }

    @Test func nonCanonicalBytesAreRejected() throws {
        let point = try ValueCoder<Point>().encode(Point(x: 1, y: 2))
        // Swap the two entries: keys must be in byte order.
        var swapped = Array(point[0..<4])
        swapped += point[8..<12] + point[4..<8]
        #expect(throws: FieldError.self) { try ValueCoder<Point>().decode(swapped) }
        // Over-long varint: 1 written as 0x81 0x00.
        #expect(throws: FieldError.self) { try ValueCoder<[Int]>().decode([1, 0x09, 0x01, 0x03, 0x03, 0x82, 0x00]) }
        #expect(try ValueCoder<[Int]>().decode([1, 0x09, 0x01, 0x02, 0x03, 0x02]) == [1])
        // Bytes left inside a container after its last element.
        #expect(throws: FieldError.self) { try ValueCoder<[Int]>().decode([1, 0x09, 0x01, 0x03, 0x03, 0x02, 0x00]) }
    }

    @Test func formatVersionIsChecked() throws {
        var bytes = try ValueCoder<Point>().encode(Point(x: 0, y: 0))
        #expect(bytes.first == 1)
        bytes[0] = 2
        let newer = #expect(throws: FieldError.self) { try ValueCoder<Point>().decode(bytes) }
        #expect(newer?.code == .unsupportedFormat)
        bytes[0] = 0
        let unknown = #expect(throws: FieldError.self) { try ValueCoder<Point>().decode(bytes) }
        #expect(unknown?.code == .malformedValue)
        #expect(throws: FieldError.self) { try ValueCoder<Point>().decode([UInt8]()) }
    }

    @Test func nestingIsLimited() throws {
        let coder = ValueCoder<Chain>()
        let error = #expect(throws: FieldError.self) { try coder.encode(Chain(length: 100)) }
        #expect(error?.code == .unencodableValue)
        // Hand-made bytes nest 100,000 keyed containers; decoding stops at the limit.
        let depth = 100_000
        let innermost: [UInt8] = [0x0A, 0, 0]
        let entryPrefix = [5] + Array("child".utf8)
        // Sizes from the inside out, then headers from the outside in: no quadratic copying.
        var bodySizes: [Int] = []
        var size = innermost.count
        for _ in 0..<depth {
            let body = entryPrefix.count + size
            bodySizes.append(body)
            size = 2 + varint(body).count + body
        }
        var bytes: [UInt8] = [1]
        for body in bodySizes.reversed() { bytes += [0x0A, 1] + varint(body) + entryPrefix }
        bytes += innermost
        let deep = #expect(throws: FieldError.self) { try ValueCoder<Nest>().decode(bytes) }
        #expect(deep?.code == .malformedValue)
        // The same shape within the limit decodes.
        var shallow = Nest()
        for _ in 0..<100 { shallow = Nest(child: shallow) }
        #expect(try ValueCoder<Nest>().decode(ValueCoder<Nest>().encode(shallow)).depth == 101)
    }

    @Test func encoderMisuseIsReportedNotTrapped() {
        struct TwoValues: Codable {
            func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                try container.encode(1)
                try container.encode(2)
            }
            init() {}
            init(from decoder: any Decoder) throws {}
        }
        struct MixedContainers: Codable {
            enum Keys: CodingKey { case a }
            func encode(to encoder: any Encoder) throws {
                var list = encoder.unkeyedContainer()
                try list.encode(1)
                var keyed = encoder.container(keyedBy: Keys.self)
                try keyed.encode(2, forKey: .a)
            }
            init() {}
            init(from decoder: any Decoder) throws {}
        }
        let twice = #expect(throws: FieldError.self) { try ValueCoder<TwoValues>().encode(TwoValues()) }
        #expect(twice?.code == .unencodableValue)
        let mixed = #expect(throws: FieldError.self) { try ValueCoder<MixedContainers>().encode(MixedContainers()) }
        #expect(mixed?.code == .unencodableValue)
    }

    @Test func aDecoderKeptAfterDecodingReadsNothing() throws {
        final class Escaped: @unchecked Sendable {
            // Written once inside decode, read after it; the test runs on one task.
            var decoder: (any Decoder)?
        }
        struct Keeper: Codable, Sendable {
            static let escaped = Escaped()
            enum CodingKeys: CodingKey { case value }
            var value: Int
            init(value: Int) { self.value = value }
            init(from decoder: any Decoder) throws {
                Self.escaped.decoder = decoder
                value = try decoder.container(keyedBy: CodingKeys.self).decode(Int.self, forKey: .value)
            }
        }
        let coder = ValueCoder<Keeper>()
        let bytes = try coder.encode(Keeper(value: 7))
        #expect(try bytes.withUnsafeBytes { try coder.decode($0) }.value == 7)
        let kept = try #require(Keeper.escaped.decoder)
        #expect(throws: DecodingError.self) { try kept.container(keyedBy: Keeper.CodingKeys.self) }
    }
}

private func varint(_ value: Int) -> [UInt8] {
    var rest = UInt(value)
    var bytes: [UInt8] = []
    while rest >= 0x80 {
        bytes.append(UInt8(rest & 0x7F) | 0x80)
        rest >>= 7
    }
    return bytes + [UInt8(rest)]
}
