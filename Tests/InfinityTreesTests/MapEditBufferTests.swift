import InfinityPacks
import InfinityTestSupport
import Testing

@testable import InfinityTrees

@Suite struct MapEditBufferTests {
    /// Keys that share long prefixes, are prefixes of one another, or differ only past byte 8,
    /// so the sort by the first eight bytes must fall back to whole keys.
    func awkwardKeys(count: Int, seed: UInt64) -> [[UInt8]] {
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            switch random.next() % 4 {
            case 0: return Array("shared-prefix/\(random.next() % 500)".utf8)
            case 1: return (0..<Int(random.next() % 12)).map { _ in UInt8(random.next() % 3) }
            case 2: return [0, 0, 0, 0, 0, 0, 0, 0] + (0..<Int(random.next() % 4)).map { _ in UInt8(random.next() % 256) }
            default: return (0..<16).map { _ in UInt8(random.next() % 256) }
            }
        }
    }

    @Test func theLastEditOfEachKeyWinsAndComesOutInKeyOrder() throws {
        var random = SeededGenerator(seed: 11)
        var buffer = MapEditBuffer()
        var model: [[UInt8]: [UInt8]?] = [:]
        for key in awkwardKeys(count: 20_000, seed: 5) {
            let value: [UInt8]? = random.next() % 5 == 0 ? nil : Array("v\(random.next() % 1000)".utf8)
            try buffer.append(key: key, value: value)
            model[key] = .some(value)
        }
        let sorted = buffer.lastEditsInKeyOrder()
        #expect(sorted.count == model.count)
        #expect(sorted.map { Array(buffer.key(of: $0)) } == model.keys.sorted { $0.lexicographicallyPrecedes($1) })
        for record in sorted {
            let key = Array(buffer.key(of: record))
            #expect(buffer.value(of: record).map(Array.init) == model[key]!)
            let found = buffer.lastEdit(of: key)
            #expect(found == model[key])
        }
        let neverSet = buffer.lastEdit(of: Array("never-set".utf8))
        #expect(neverSet == nil)
    }

    /// Lookups build the hash table; edits after that keep it right, across segments and a
    /// value larger than a segment.
    @Test func lookupsStayRightWhileEditsContinue() throws {
        var random = SeededGenerator(seed: 17)
        var buffer = MapEditBuffer()
        var model: [[UInt8]: [UInt8]?] = [:]
        let keys = awkwardKeys(count: 4_000, seed: 23)
        for round in 0..<6 {
            for step in 0..<3_000 {
                let key = keys[Int(random.next() % UInt64(keys.count))]
                var value: [UInt8]? = random.next() % 6 == 0 ? nil : [UInt8](repeating: UInt8(step % 251), count: Int(random.next() % 300))
                if round == 2 && step == 100 { value = [UInt8](repeating: 5, count: MapEditBuffer.segmentSize + 10) }
                try buffer.append(key: key, value: value)
                model[key] = .some(value)
            }
            for key in keys.prefix(500) {
                let found = buffer.lastEdit(of: key)
                #expect(found == model[key], "round \(round)")
            }
        }
        #expect(buffer.editCount == 18_000)
        let sorted = buffer.lastEditsInKeyOrder()
        #expect(sorted.count == model.count)
        for record in sorted {
            let key = Array(buffer.key(of: record))
            let stored = buffer.value(of: record).map(Array.init)
            #expect(stored == model[key]!)
        }
    }

    @Test func shortValuesAreKeptInStoredFormAndLongOnesRaw() throws {
        var buffer = MapEditBuffer()
        let long = [UInt8](repeating: 9, count: TreeStore.inlineValueLimit + 1)
        try buffer.append(key: [1], value: [7, 7])
        try buffer.append(key: [2], value: long)
        try buffer.append(key: [3], value: nil)
        let records = buffer.lastEditsInKeyOrder()
        #expect(records.map(\.isStoredForm) == [true, false, true])
        #expect(buffer.storedBytes(of: records[0]).map(Array.init) == [StoredValue.inlineTag, 7, 7])
        #expect(buffer.storedBytes(of: records[1]).map(Array.init) == long)
        #expect(buffer.storedBytes(of: records[2]) == nil)
        let (second, third) = (buffer.lastEdit(of: [2]), buffer.lastEdit(of: [3]))
        #expect(second == .some(long))
        #expect(third == .some(nil))
    }

    @Test func anOverlongKeyIsRefused() {
        var buffer = MapEditBuffer()
        let error = #expect(throws: TreeError.self) {
            try buffer.append(key: [UInt8](repeating: 1, count: TreeWriter.maximumKeyLength + 1), value: [1])
        }
        #expect(error?.code == .invalidArgument)
        #expect(buffer.isEmpty)
    }

    /// A buffered apply gives the tree a model dictionary describes, whatever the batches.
    @Test func applyingBufferedEditsMatchesTheModel() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        var random = SeededGenerator(seed: 3)
        var root = try writer.emptyTree(.map)
        var model: [[UInt8]: [UInt8]] = [:]
        let keys = awkwardKeys(count: 3_000, seed: 8)
        for _ in 0..<4 {
            var buffer = MapEditBuffer()
            for _ in 0..<1_500 {
                let key = keys[Int(random.next() % UInt64(keys.count))]
                if random.next() % 4 == 0 {
                    try buffer.append(key: key, value: nil)
                    model[key] = nil
                } else {
                    let value = Array("value \(random.next() % 100)".utf8)
                    try buffer.append(key: key, value: value)
                    model[key] = value
                }
            }
            root = try await writer.apply(buffer, to: root)
            try await expectMatches(root, model, writer.reader)
        }
    }

    @Test func aBuilderRefusesKeysOutOfOrder() throws {
        var builder = NodeBuilder(kind: .map, level: 0, salt: [UInt8](repeating: 1, count: 16)[...], format: .current)
        _ = builder.append(TreeEntry(key: [2][...], value: [0][...], subtreeCount: 1))
        _ = builder.append(TreeEntry(key: [1][...], value: [0][...], subtreeCount: 1))
        let error = #expect(throws: TreeError.self) { _ = try builder.finishNode() }
        #expect(error?.code == .invalidArgument)
    }

    /// A node made by a builder is the node its plaintext decodes to.
    @Test func aBuiltNodeEqualsItsDecodedPlaintext() throws {
        var builder = NodeBuilder(kind: .map, level: 0, salt: [UInt8](repeating: 3, count: 16)[...], format: .current)
        for number in 0..<10 { _ = builder.append(TreeEntry(key: key(number)[...], value: [UInt8](repeating: 1, count: number)[...], subtreeCount: 1)) }
        let (built, lastKey) = try builder.finishNode()
        let decoded = try TreeNode(decoding: built.bytes, id: ChunkID(bytes: Array(repeating: 7, count: 32))!)
        #expect(Array(lastKey) == key(9))
        #expect(built.count == decoded.count && built.subtreeCount == decoded.subtreeCount && built.salt == decoded.salt)
        for index in 0..<built.count {
            #expect(built.key(at: index) == decoded.key(at: index))
            #expect(built.value(at: index) == decoded.value(at: index))
        }
    }
}
