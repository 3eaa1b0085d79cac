import Foundation
import InfinityDB
import InfinityTestSupport
import Testing

extension SeededGenerator {
    mutating func bytes(count: Int, from alphabet: [UInt8]? = nil) -> [UInt8] {
        (0..<count).map { _ in alphabet?.randomElement(using: &self) ?? UInt8.random(in: 0...255, using: &self) }
    }
}

/// Unsigned lexicographic byte order, as tree nodes compare keys.
func bytesPrecede(_ left: [UInt8], _ right: [UInt8]) -> Bool {
    left.lexicographicallyPrecedes(right)
}

/// Checks, for `values` and random pairs of them, that encoded byte order and equality match
/// `less` and `equal`, and that every key decodes back to a value equal to itself.
func expectOrderPreserved<Key: IndexKey>(
    _ values: [Key],
    seed: UInt64,
    less: (Key, Key) -> Bool,
    equal: (Key, Key) -> Bool,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    var random = SeededGenerator(seed: seed)
    let encoded = values.map(\.encodedKey)
    for (value, bytes) in zip(values, encoded) {
        let decoded = try Key(encodedKey: bytes)
        #expect(equal(decoded, value), "round trip of \(value)", sourceLocation: sourceLocation)
        #expect(decoded.encodedKey == bytes, sourceLocation: sourceLocation)
    }
    // Random pairs, plus neighbours in natural order, where mistakes near ties would hide.
    var pairs = (0..<(values.count * 2)).map { _ in
        (Int.random(in: values.indices, using: &random), Int.random(in: values.indices, using: &random))
    }
    let sorted = values.indices.sorted { less(values[$0], values[$1]) }
    pairs += zip(sorted, sorted.dropFirst()).map { ($0, $1) }
    var failures = 0
    for (left, right) in pairs {
        let a = values[left], b = values[right]
        let agrees = less(a, b) == bytesPrecede(encoded[left], encoded[right])
            && equal(a, b) == (encoded[left] == encoded[right])
        if !agrees, failures < 5 {
            failures += 1
            Issue.record("order differs for \(a) and \(b): \(encoded[left]) vs \(encoded[right])", sourceLocation: sourceLocation)
        }
    }
}

func expectOrderPreserved<Key: IndexKey & Comparable>(
    _ values: [Key], seed: UInt64, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    try expectOrderPreserved(values, seed: seed, less: <, equal: ==, sourceLocation: sourceLocation)
}

/// Every proper prefix of `key`'s encoding, and the encoding with a byte added, fails to decode
/// with `FieldError.malformedKey`.
func expectTruncationsThrow<Key: IndexKey>(_ key: Key, sourceLocation: SourceLocation = #_sourceLocation) {
    let bytes = key.encodedKey
    for length in 0..<bytes.count {
        let error = #expect(throws: FieldError.self, sourceLocation: sourceLocation) {
            try Key(encodedKey: bytes[..<length])
        }
        #expect(error?.code == .malformedKey, sourceLocation: sourceLocation)
    }
    #expect(throws: FieldError.self, sourceLocation: sourceLocation) { try Key(encodedKey: bytes + [0]) }
}

@Suite struct KeyEncodingTests {
    static let sampleCount = 2_000

    // MARK: Byte strings

    /// Random strings over a small alphabet, so that prefixes, ties and shared stems are common.
    /// It has NUL, the ASCII/non-ASCII boundary and 4-byte UTF-8, and, unless `precomposedOnly`,
    /// combining marks and decomposed letters (where NFC matters).
    private func randomStrings(seed: UInt64, precomposedOnly: Bool = false) -> [String] {
        var alphabet = ["", "a", "b", "z", "\0", "\u{1}", "\u{7F}", "\u{80}", "é", "Å", "\u{FFFF}", "😀",
                        "\u{10FFFF}", " ", "ß", "\u{E000}"]
        if !precomposedOnly { alphabet += ["e\u{301}", "\u{301}", "A\u{30A}", "\u{30A}"] }
        var random = SeededGenerator(seed: seed)
        let strings = (0..<Self.sampleCount).map { _ in
            (0..<Int.random(in: 0...6, using: &random)).map { _ in alphabet.randomElement(using: &random) ?? "" }.joined()
        }
        return strings + ["", "\0", "\0\0", "a", "a\0", "a\0b", "a\u{1}", "ab", "é", "éz", "\u{E9}\0"]
    }

    @Test func stringsSortAsSwiftComparesThem() throws {
        try expectOrderPreserved(randomStrings(seed: 1, precomposedOnly: true), seed: 2)
    }

    /// Swift documents `<` as the order of the strings' NFC forms by Unicode scalar value, but
    /// as of Swift 6.3 it is not a total order for strings in different normalization forms:
    /// `"\u{E9}z"` and `"e\u{301}"` are neither `<`, `>` nor `==`. So the reference here is the
    /// documented order, with NFC computed by Foundation's normalizer (independent of the
    /// standard library's, which the encoding uses).
    @Test func stringsInAnyNormalizationSortByTheirNFCScalars() throws {
        func scalars(_ string: String) -> [UInt32] {
            string.precomposedStringWithCanonicalMapping.unicodeScalars.map(\.value)
        }
        let values = randomStrings(seed: 3) + ["e\u{301}", "e\u{301}z", "A\u{30A}", "\u{C5}z"]
        try expectOrderPreserved(values, seed: 4, less: { scalars($0).lexicographicallyPrecedes(scalars($1)) },
                                 equal: { scalars($0) == scalars($1) })
    }

    /// Wherever Swift's `<` and `==` are consistent (exactly one of `a < b`, `b < a`, `a == b`),
    /// the encoding agrees with them, whatever the normalization.
    @Test func stringsAgreeWithSwiftWhereverItIsConsistent() {
        let values = randomStrings(seed: 7)
        var random = SeededGenerator(seed: 8)
        var compared = 0
        for _ in 0..<(values.count * 4) {
            guard let a = values.randomElement(using: &random), let b = values.randomElement(using: &random) else { continue }
            guard [a < b, b < a, a == b].filter({ $0 }).count == 1 else { continue }
            compared += 1
            #expect((a < b) == bytesPrecede(a.encodedKey, b.encodedKey), "\(a.debugDescription) < \(b.debugDescription)")
            #expect((a == b) == (a.encodedKey == b.encodedKey), "\(a.debugDescription) == \(b.debugDescription)")
        }
        #expect(compared > values.count * 3)
    }

    @Test func stringEdgeCases() throws {
        #expect("".encodedKey == [0x00, 0x01])
        #expect("\0".encodedKey == [0x00, 0xFF, 0x00, 0x01])
        #expect("a\0b".encodedKey == [0x61, 0x00, 0xFF, 0x62, 0x00, 0x01])
        #expect(try String(encodedKey: "a\0\0b".encodedKey) == "a\0\0b")
        // Canonically equivalent strings are one key, which decodes to the NFC form.
        #expect("e\u{301}".encodedKey == "\u{E9}".encodedKey)
        let decoded = try String(encodedKey: "e\u{301}".encodedKey)
        #expect(Array(decoded.unicodeScalars) == ["\u{E9}"])
        // A prefix sorts first whatever follows, including a NUL.
        #expect(bytesPrecede("a".encodedKey, "a\0".encodedKey))
        #expect(bytesPrecede("a\0".encodedKey, "a\u{1}".encodedKey))
        #expect(bytesPrecede("".encodedKey, "\0".encodedKey))
    }

    @Test func malformedByteStringsThrow() throws {
        let cases: [[UInt8]] = [
            [],                         // nothing at all
            [0x61],                     // no terminator
            [0x61, 0x00],               // terminator cut short
            [0x61, 0x00, 0x05, 0x00, 0x01],  // 0x00 neither escape nor terminator
            [0xFF, 0xFE, 0x00, 0x01],   // not UTF-8
            [0xC3, 0x00, 0x01],         // UTF-8 sequence cut short
        ]
        for bytes in cases {
            let error = #expect(throws: FieldError.self) { try String(encodedKey: bytes) }
            #expect(error?.code == .malformedKey)
        }
        #expect(throws: FieldError.self) { try Data(encodedKey: [0x00, 0x02]) }
        #expect(try Data(encodedKey: [0xFF, 0xFE, 0x00, 0x01]) == Data([0xFF, 0xFE]))
    }

    @Test func byteStringsSortUnsigned() throws {
        var random = SeededGenerator(seed: 3)
        let alphabet: [UInt8] = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF]
        var arrays = (0..<Self.sampleCount).map { _ in
            random.bytes(count: Int.random(in: 0...6, using: &random), from: alphabet)
        }
        arrays += [[], [0], [0, 0], [0, 1], [0, 0xFF], [0xFF], [0xFF, 0], [1]]
        try expectOrderPreserved(arrays, seed: 5, less: bytesPrecede, equal: ==)
        try expectOrderPreserved(arrays.map { Data($0) }, seed: 6, less: { bytesPrecede([UInt8]($0), [UInt8]($1)) }, equal: ==)
        // Data and [UInt8] share one encoding.
        for array in arrays.prefix(50) { #expect(array.encodedKey == Data(array).encodedKey) }
    }

    @Test func sixteenByteDataRoundTripsFromASliceOfALargerBuffer() throws {
        let key = Data((0..<16).map { UInt8($0) })
        let node = [0xAA, 0xBB] + key.encodedKey + [0xCC]
        #expect(try Data(encodedKey: node[2..<(node.count - 1)]) == key)
        // Decoding also accepts any collection of bytes.
        #expect(try Data(encodedKey: Data(key.encodedKey)) == key)
    }

    // MARK: Fixed width

    @Test func boolsSortFalseFirst() throws {
        try expectOrderPreserved([true, false, true, false], seed: 6, less: { !$0 && $1 }, equal: ==)
        #expect(false.encodedKey == [0])
        #expect(true.encodedKey == [1])
        #expect(throws: FieldError.self) { try Bool(encodedKey: [2]) }
    }

    private func checkIntegers<Integer: FixedWidthInteger & IndexKey>(_ type: Integer.Type, seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        var values = (0..<Self.sampleCount).map { index in
            // Half full range, half near zero where signs change.
            index.isMultiple(of: 2)
                ? Integer.random(in: Integer.min...Integer.max, using: &random)
                : Integer(truncatingIfNeeded: Int8.random(in: -8...8, using: &random))
        }
        values += [Integer.min, Integer.max, 0, 1, Integer.min + 1, Integer.max - 1]
        if Integer.isSigned { values.append(Integer(truncatingIfNeeded: -1)) }
        try expectOrderPreserved(values, seed: seed + 1)
        #expect(Integer.min.encodedKey == [UInt8](repeating: 0, count: Integer.encodedWidth))
        #expect(Integer.max.encodedKey == [UInt8](repeating: 0xFF, count: Integer.encodedWidth))
        expectTruncationsThrow(Integer.max)
    }

    @Test func integersSortNumerically() throws {
        try checkIntegers(Int.self, seed: 10)
        try checkIntegers(Int8.self, seed: 11)
        try checkIntegers(Int16.self, seed: 12)
        try checkIntegers(Int32.self, seed: 13)
        try checkIntegers(Int64.self, seed: 14)
        try checkIntegers(Int128.self, seed: 15)
        try checkIntegers(UInt.self, seed: 16)
        try checkIntegers(UInt8.self, seed: 17)
        try checkIntegers(UInt16.self, seed: 18)
        try checkIntegers(UInt32.self, seed: 19)
        try checkIntegers(UInt64.self, seed: 20)
        try checkIntegers(UInt128.self, seed: 21)
    }

    @Test func integerEncodingsAreBigEndianWithTheSignFlipped() {
        #expect(Int32(-1).encodedKey == [0x7F, 0xFF, 0xFF, 0xFF])
        #expect(Int32(0).encodedKey == [0x80, 0x00, 0x00, 0x00])
        #expect(UInt16(0x1234).encodedKey == [0x12, 0x34])
        #expect(Int(1).encodedKey == [0x80, 0, 0, 0, 0, 0, 0, 1])
    }

    @Test func uuidsSortAsFoundationComparesThem() throws {
        var random = SeededGenerator(seed: 30)
        var values = (0..<Self.sampleCount).map { _ in
            let bytes = random.bytes(count: 16, from: [0x00, 0x01, 0x7F, 0x80, 0xFF])
            return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                               bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        }
        values += (0..<100).map { _ in UUID() }
        try expectOrderPreserved(values, seed: 31)
        let uuid = UUID()
        #expect(uuid.encodedKey == withUnsafeBytes(of: uuid.uuid) { [UInt8]($0) })
        expectTruncationsThrow(uuid)
    }

    // MARK: Floating point

    @Test func doublesSortNumerically() throws {
        var random = SeededGenerator(seed: 40)
        var values = (0..<Self.sampleCount).map { index -> Double in
            switch index % 3 {
            case 0: Double(bitPattern: random.next())  // every class: subnormals, infinities, NaNs
            case 1: Double(Int.random(in: -5...5, using: &random)) / 2
            default: Double.random(in: -1e6...1e6, using: &random)
            }
        }
        values += [0.0, -0.0, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                   .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude, .nan, -.nan,
                   .signalingNaN, 1, -1]
        // Natural order with all NaNs as one value above +∞, which is what the encoding promises.
        let nonNaN = values.filter { !$0.isNaN }
        try expectOrderPreserved(nonNaN, seed: 41)
        try expectOrderPreserved(values, seed: 42, less: { $0.isNaN ? false : ($1.isNaN || $0 < $1) },
                                 equal: { $0 == $1 || ($0.isNaN && $1.isNaN) })
    }

    @Test func negativeZeroAndNaNAreCanonical() throws {
        #expect((-0.0 as Double).encodedKey == (0.0 as Double).encodedKey)
        #expect(try Double(encodedKey: (-0.0 as Double).encodedKey).sign == .plus)
        #expect((-Double.nan).encodedKey == Double.nan.encodedKey)
        #expect(Double.signalingNaN.encodedKey == Double.nan.encodedKey)
        #expect(bytesPrecede(Double.infinity.encodedKey, Double.nan.encodedKey))
        #expect(try Double(encodedKey: Double.nan.encodedKey).isNaN)
        // The bytes −0.0 and a non-canonical NaN would have had are rejected.
        #expect(throws: FieldError.self) { try Double(encodedKey: [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]) }
        #expect(throws: FieldError.self) { try Double(encodedKey: [0xFF, 0xF8, 0, 0, 0, 0, 0, 1]) }
        #expect((-0.0 as Float).encodedKey == (0.0 as Float).encodedKey)
    }

    @Test func floatsSortNumerically() throws {
        var random = SeededGenerator(seed: 43)
        var values = (0..<Self.sampleCount).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: random.next())) }
        values = values.filter { !$0.isNaN } + [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude]
        try expectOrderPreserved(values, seed: 44)
    }

    @Test func datesSortChronologically() throws {
        var random = SeededGenerator(seed: 50)
        var values = (0..<Self.sampleCount).map { _ in
            Date(timeIntervalSince1970: Double.random(in: -1e10...1e10, using: &random))
        }
        values += [.distantPast, .distantFuture, Date(timeIntervalSinceReferenceDate: 0),
                   Date(timeIntervalSinceReferenceDate: 1e-9), Date(timeIntervalSinceReferenceDate: -1e-9)]
        try expectOrderPreserved(values, seed: 51)
        // Exact: a date survives to the last bit, far outside what Int64 nanoseconds could hold.
        #expect(try Date(encodedKey: Date.distantFuture.encodedKey) == .distantFuture)
    }

    // MARK: Compound and raw-value keys

    @Test func compoundKeysSortByComponent() throws {
        var random = SeededGenerator(seed: 60)
        let names = ["", "a", "ab", "abc", "a\0", "b", "é"]
        let values = (0..<Self.sampleCount).map { _ in
            CompoundKey<String, Int>(names.randomElement(using: &random) ?? "", Int.random(in: -3...3, using: &random))
        }
        try expectOrderPreserved(values, seed: 61)
        let key = CompoundKey<String, Int>("alice", 42)
        let (name, number) = key.components
        #expect(name == "alice" && number == 42)
        #expect(key.encodedKey == "alice".encodedKey + 42.encodedKey)
        #expect(Set([key, CompoundKey("alice", 42), CompoundKey("alice", 43)]).count == 2)
    }

    @Test func aPrefixFirstComponentSortsFirstWhateverFollows() throws {
        // ("ab", anything) < ("ab\0", anything) < ("abc", anything), even when the second
        // component's bytes would win.
        let shorter = CompoundKey<Data, UInt8>(Data("ab".utf8), 0xFF)
        let withZero = CompoundKey<Data, UInt8>(Data("ab\0".utf8), 0x00)
        let longer = CompoundKey<Data, UInt8>(Data("abc".utf8), 0x00)
        #expect(bytesPrecede(shorter.encodedKey, withZero.encodedKey))
        #expect(bytesPrecede(withZero.encodedKey, longer.encodedKey))
        // Leading components encode to a prefix of every key that starts with them.
        var prefix = KeyEncoder()
        prefix.encode(Data("ab".utf8))
        #expect(shorter.encodedKey.starts(with: prefix.bytes))
        #expect(!withZero.encodedKey.starts(with: prefix.bytes))

        var random = SeededGenerator(seed: 62)
        let values = (0..<Self.sampleCount).map { _ in
            CompoundKey<[UInt8], Int16, Bool>(
                random.bytes(count: Int.random(in: 0...3, using: &random), from: [0, 1, 0xFF]),
                Int16.random(in: -2...2, using: &random), Bool.random(using: &random))
        }
        try expectOrderPreserved(values, seed: 63, less: { lhs, rhs in
            let (a0, a1, a2) = lhs.components, (b0, b1, b2) = rhs.components
            if a0 != b0 { return bytesPrecede(a0, b0) }
            if a1 != b1 { return a1 < b1 }
            return !a2 && b2
        }, equal: { $0.components == $1.components })
    }

    @Test func compoundKeysRejectTruncationAndTrailingBytes() throws {
        let key = CompoundKey<String, UUID, Double>("bob\0", UUID(), -2.5)
        expectTruncationsThrow(key)
        let decoded = try CompoundKey<String, UUID, Double>(encodedKey: key.encodedKey)
        #expect(decoded == key)
    }

    @Test func customKeysComposeAndRawValuesWork() throws {
        struct Version: IndexKey, Equatable {
            var major: Int, minor: Int
            func encodeKey(into encoder: inout KeyEncoder) {
                encoder.encode(major)
                encoder.encode(minor)
            }
            static func decodeKey(from decoder: inout KeyDecoder) throws -> Version {
                Version(major: try decoder.decode(Int.self), minor: try decoder.decode(Int.self))
            }
        }
        enum Priority: Int, IndexKey { case low = 1, normal = 5, high = 9 }

        #expect(try Version(encodedKey: Version(major: 1, minor: 2).encodedKey) == Version(major: 1, minor: 2))
        #expect(bytesPrecede(Version(major: 1, minor: 9).encodedKey, Version(major: 2, minor: 0).encodedKey))
        #expect(bytesPrecede(Priority.low.encodedKey, Priority.high.encodedKey))
        #expect(try Priority(encodedKey: Priority.normal.encodedKey) == .normal)
        let error = #expect(throws: FieldError.self) { try Priority(encodedKey: 2.encodedKey) }
        #expect(error?.code == .malformedKey)

        var decoder = KeyDecoder(CompoundKey("x", Priority.high).encodedKey)
        #expect(try decoder.decode(String.self) == "x")
        #expect(decoder.remainingCount == 8)
        #expect(try decoder.decode(Priority.self) == .high)
        #expect(decoder.isAtEnd)
    }

    // MARK: Garbage

    @Test func garbageNeverTrapsAndCanonicalTypesReencodeExactly() {
        var random = SeededGenerator(seed: 70)
        for _ in 0..<Self.sampleCount {
            let garbage = random.bytes(count: Int.random(in: 0...24, using: &random), from: [0x00, 0x01, 0x61, 0x7F, 0x80, 0xC3, 0xFF])
            expectRejectedOrCanonical(garbage, as: Data.self)
            expectRejectedOrCanonical(garbage, as: Int32.self)
            expectRejectedOrCanonical(garbage, as: Bool.self)
            expectRejectedOrCanonical(garbage, as: Double.self)
            expectRejectedOrCanonical(garbage, as: UUID.self)
            expectRejectedOrCanonical(garbage, as: CompoundKey<[UInt8], Int16, Float>.self)
            // String decoding accepts UTF-8 that is not NFC, so only the error type is checked.
            do { _ = try String(encodedKey: garbage) } catch { #expect(error is FieldError) }
        }
    }

    private func expectRejectedOrCanonical<Key: IndexKey>(_ bytes: [UInt8], as type: Key.Type) {
        do {
            let key = try Key(encodedKey: bytes)
            #expect(key.encodedKey == bytes, "\(Key.self) accepted non-canonical \(bytes)")
        } catch let error as FieldError {
            #expect(error.code == .malformedKey)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}

extension FixedWidthInteger {
    /// Keys store `Int` and `UInt` in 8 bytes on every platform; other integers at their width.
    static var encodedWidth: Int { Self.self == Int.self || Self.self == UInt.self ? 8 : bitWidth / 8 }
}
