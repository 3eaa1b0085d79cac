import Foundation
import InfinityChunks
import InfinityTestSupport
import Testing

@testable import InfinityTrees

/// Small nodes, so modest test data builds trees several levels deep.
let smallNodes = TreeFormat(
    version: TreeFormat.current.version,
    leafNodes: TreeParameters(minimumNodeSize: 64, targetNodeSize: 256, maximumNodeSize: 1024),
    internalNodes: TreeParameters(minimumNodeSize: 64, targetNodeSize: 256, maximumNodeSize: 1024))

func key(_ number: Int) -> [UInt8] { Array("key-\(number)".utf8) }

/// Every entry of a map, in order, read through `reader`.
func allEntries(_ root: TreeRoot, _ reader: TreeReader) async throws -> [([UInt8], [UInt8])] {
    var entries: [([UInt8], [UInt8])] = []
    try await reader.forEachEntry(in: root) { key, value in
        entries.append((key, value))
        return true
    }
    return entries
}

func expectMatches(_ root: TreeRoot, _ model: [[UInt8]: [UInt8]], _ reader: TreeReader, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let entries = try await allEntries(root, reader)
    let expected = model.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    #expect(root.count == model.count, sourceLocation: sourceLocation)
    #expect(entries.map(\.0) == expected.map(\.key), sourceLocation: sourceLocation)
    #expect(entries.map(\.1) == expected.map(\.value), sourceLocation: sourceLocation)
}

@Suite struct SipHashTests {
    // Vectors from the SipHash paper (Aumasson, Bernstein 2012), key 00 01 … 0f.
    let hasher = SipHash24(key: Array(0..<16))

    @Test func publishedVectors() {
        #expect(hasher.hash([]) == 0x726f_db47_dd0e_0e31)
        #expect(hasher.hash([0]) == 0x74f8_39c5_93dc_67fd)
        #expect(hasher.hash(Array(0..<15)) == 0xa129_ca61_49be_45e5)
    }

    @Test func prefixIsTheFirstByteOfTheMessage() {
        for length in 0..<20 {
            let message = Array(UInt8(100)..<UInt8(100 + length))
            let prefixed = message.withUnsafeBytes { hasher.hash(prefix: 7, $0) }
            #expect(prefixed == hasher.hash([7] + message))
        }
    }
}

@Suite struct TreeMapTests {
    @Test func emptyMapReadsNothing() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()))
        let root = try writer.emptyTree(.map)
        #expect(root.count == 0)
        #expect(try await writer.reader.value(forKey: key(1), in: root) == nil)
        #expect(try await allEntries(root, writer.reader).isEmpty)
    }

    @Test func randomBatchesMatchADictionary() async throws {
        var random = SeededGenerator(seed: 0x5eed_0001)
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        var root = try writer.emptyTree(.map)
        var model: [[UInt8]: [UInt8]] = [:]
        for round in 0..<40 {
            var edits: [(key: [UInt8], value: [UInt8]?)] = []
            let batch = round < 3 ? 800 : Int.random(in: 1...60, using: &random)
            for _ in 0..<batch {
                let k = key(Int.random(in: 0..<3000, using: &random))
                if Bool.random(using: &random) || round < 3 {
                    let value = Array("value-\(Int.random(in: 0..<1_000_000, using: &random))".utf8)
                    edits.append((k, value))
                    model[k] = value
                } else {
                    edits.append((k, nil))
                    model[k] = nil
                }
            }
            root = try await writer.apply(edits, to: root)
            try await expectMatches(root, model, writer.reader)
            for _ in 0..<20 {
                let k = key(Int.random(in: 0..<3000, using: &random))
                #expect(try await writer.reader.value(forKey: k, in: root) == model[k])
            }
        }
        #expect(root.level >= 2, "the test should exercise internal levels")
    }

    @Test func sameContentsGiveTheSameRootWhateverTheOrder() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        let empty = try writer.emptyTree(.map)
        let contents = (0..<2000).map { (key($0), Array("v\($0 * 7)".utf8)) }
        let bulk = try await writer.apply(contents.map { ($0.0, $0.1) }, to: empty)
        #expect(bulk.level >= 2)
        for seed in UInt64(1)...12 {
            var random = SeededGenerator(seed: seed)
            var root = empty
            var pending = contents.shuffled(using: &random)
            // Also insert and later delete keys that are not in the final contents, and write
            // stale values first, so the path to the final state differs in every way.
            var extras: [[UInt8]] = []
            while !pending.isEmpty {
                let take = min(pending.count, Int.random(in: 1...300, using: &random))
                var edits: [(key: [UInt8], value: [UInt8]?)] = []
                for (k, v) in pending.prefix(take) {
                    if Int.random(in: 0..<5, using: &random) == 0 { edits.append((k, Array("stale".utf8))) }
                    edits.append((k, v))
                }
                let extra = Array("extra-\(seed)-\(pending.count)".utf8)
                extras.append(extra)
                edits.append((extra, [1, 2, 3]))
                pending.removeFirst(take)
                root = try await writer.apply(edits, to: root)
            }
            root = try await writer.apply(extras.map { ($0, nil) }, to: root)
            #expect(root == bulk, "seed \(seed)")
        }
    }

    @Test func deletingEverythingLeavesTheEmptyTreeOfTheSameSalt() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        let empty = try writer.emptyTree(.map)
        let full = try await writer.apply((0..<1500).map { (key($0), [UInt8]($0.description.utf8)) }, to: empty)
        let emptied = try await writer.apply((0..<1500).map { (key($0), nil) }, to: full)
        #expect(emptied == empty)
    }

    @Test func anEditRewritesOnlyAPathOfNodes() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        let root = try await writer.apply(
            (0..<20_000).map { (key($0), Array("value \($0)".utf8)) }, to: try writer.emptyTree(.map))
        try await writer.flush(keeping: [root])
        #expect(root.level >= 3)
        for (offset, changes) in [1, 10, 100].enumerated() {
            let edits = (0..<changes).map { (key($0 * 197 + offset), Optional(Array("changed".utf8))) }
            let edited = try await writer.apply(edits, to: root)
            let written = writer.pendingNodeCount
            // Each change rewrites its path, plus the odd neighbour where boundaries shift.
            #expect(written <= changes * (root.level + 1) * 2 + 4, "\(changes) changes wrote \(written) nodes")
            #expect(try await writer.reader.value(forKey: key(offset), in: edited) == Array("changed".utf8))
            try await writer.flush(keeping: [])
        }
    }

    @Test func flushedTreesReadBackThroughAnotherStore() async throws {
        let chunks = try makeChunkStore()
        let writer = TreeWriter(store: TreeStore(chunks: chunks), format: smallNodes)
        var model: [[UInt8]: [UInt8]] = [:]
        for number in 0..<3000 { model[key(number)] = Array("v\(number)".utf8) }
        model[key(-1)] = SampleData.bytes(count: 100_000, seed: 9)  // stored as a blob
        let root = try await writer.apply(model.map { ($0.key, $0.value) }, to: try writer.emptyTree(.map))
        try await writer.flush(keeping: [root])
        #expect(writer.pendingBytes == 0)
        try await chunks.flush()
        let fresh = TreeStore(chunks: chunks, cacheCapacity: 16 << 10)
        try await expectMatches(root, model, fresh.reader)
        #expect(fresh.cachedBytes <= 16 << 10, "the cache stays within its capacity")
    }

    /// A walk through the leaves of a stored tree looks up where the leaves under each node
    /// lie in one query: after reading the first entry, the rest of its siblings wait located.
    @Test func aWalkPrefetchesTheLeavesItIsAboutToRead() async throws {
        let chunks = try makeChunkStore()
        let writer = TreeWriter(store: TreeStore(chunks: chunks), format: smallNodes)
        let model = Dictionary(uniqueKeysWithValues: (0..<3000).map { (key($0), Array("v\($0)".utf8)) })
        let root = try await writer.apply(model.map { ($0.key, $0.value) }, to: try writer.emptyTree(.map))
        try await writer.flush(keeping: [root])
        try await chunks.flush()
        #expect(root.level >= 2)
        let fresh = TreeStore(chunks: chunks)
        try await fresh.reader.forEachEntry(in: root) { _, _ in false }
        #expect(chunks.packs.prefetchedLocationCount > 0, "the first leaf's siblings were located ahead")
        try await expectMatches(root, model, fresh.reader)
        #expect(chunks.packs.prefetchedLocationCount == 0, "a full walk used every prefetched location")
    }

    @Test func unflushedIntermediateNodesAreNeverStored() async throws {
        let chunks = try makeChunkStore()
        let writer = TreeWriter(store: TreeStore(chunks: chunks), format: smallNodes)
        var root = try writer.emptyTree(.map)
        for round in 0..<20 {
            root = try await writer.apply((0..<100).map { (key(round * 100 + $0), [UInt8(round)]) }, to: root)
        }
        let reachable = writer.pendingNodeCount
        try await writer.flush(keeping: [root])
        try await chunks.flush()
        let stored = try chunks.packs.index.statistics().chunkCount
        var nodes = 0
        var stack = [try await writer.store.rootNode(of: root)]
        while let node = stack.popLast() {
            nodes += 1
            if !node.isLeaf { for index in 0..<node.count { stack.append(try await writer.store.child(of: node, at: index)) } }
        }
        #expect(stored == nodes, "only the final tree's nodes are stored")
        #expect(reachable > nodes, "the rounds made intermediate nodes")
    }

    @Test func rangeScansStartAndStopAtKeys() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        let numbers = (0..<1000).map { String(format: "%04d", $0) }
        let root = try await writer.apply(numbers.map { (Array($0.utf8), Array($0.utf8)) }, to: try writer.emptyTree(.map))
        var seen: [String] = []
        try await writer.reader.forEachEntry(in: root, from: Array("0100".utf8), before: Array("0200".utf8)) { key, _ in
            seen.append(String(decoding: key, as: UTF8.self))
            return true
        }
        #expect(seen == Array(numbers[100..<200]))
        seen = []
        try await writer.reader.forEachEntry(in: root, from: Array("0995x".utf8)) { key, _ in
            seen.append(String(decoding: key, as: UTF8.self))
            return seen.count < 100
        }
        #expect(seen == Array(numbers[996...]))
    }

    @Test func oversizedKeysAreRefused() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()))
        await #expect(throws: TreeError.self) {
            _ = try await writer.apply([([UInt8](repeating: 1, count: 5000), [1])], to: try writer.emptyTree(.map))
        }
    }
}

@Suite struct HostileTreeTests {
    @Test func impossibleCountsAreRefusedNotTrapped() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()))
        let root = try await writer.apply([(key(1), [1])], to: try writer.emptyTree(.map))
        // A reference claiming more entries than the node holds, and one beyond any tree.
        let lying = TreeRoot(kind: .map, level: 0, pointer: NodePointer(key: root.pointer.key, length: root.pointer.length, count: 7))
        await #expect(throws: TreeError.self) { _ = try await writer.reader.value(forKey: key(1), in: lying) }
        var encoded = root.encoded
        encoded.removeLast()
        encoded += [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        #expect(throws: TreeError.self) { _ = try TreeRoot(encoded: encoded, context: "a test field") }
    }

    @Test func everyTruncationAndFlipOfANodeIsRefusedOrHarmless() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        let root = try await writer.apply((0..<200).map { (key($0), [UInt8]("v\($0)".utf8)) }, to: try writer.emptyTree(.map))
        let node = try await writer.rootNode(of: root)
        let id = root.pointer.chunkRef.id
        for length in 0..<node.bytes.count {
            #expect(throws: TreeError.self) { _ = try TreeNode(decoding: Array(node.bytes.prefix(length)), id: id) }
        }
        var random = SeededGenerator(seed: 5)
        for _ in 0..<2000 {
            var bytes = node.bytes
            bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            _ = try? TreeNode(decoding: bytes, id: id)  // must not trap, whatever it decides
        }
    }
}

/// Entries encoded as a node expects them, for crafting nodes by hand.
func encodedEntries(_ entries: [(key: [UInt8], value: [UInt8])]) -> [UInt8] {
    var bytes: [UInt8] = []
    for (key, value) in entries {
        Varint.append(UInt64(key.count), to: &bytes)
        Varint.append(UInt64(value.count), to: &bytes)
        bytes += key + value
    }
    return bytes
}

@Suite struct CraftedTreeTests {
    @Test func aParentThatMisfilesItsChildIsRefused() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()))
        let salt = [UInt8](repeating: 7, count: 16)[...]
        let leafBytes = TreeNode.encode(
            version: TreeFormat.current.version, kind: .map, level: 0, salt: salt, entryCount: 2,
            entries: encodedEntries([(key(1), [0, 1]), (key(2), [0, 2])]))
        let (_, leaf) = try writer.makeNode(leafBytes)
        var pointer: [UInt8] = []
        leaf.append(to: &pointer)
        // The same leaf filed twice, under keys that are not its last key.
        let parentBytes = TreeNode.encode(
            version: TreeFormat.current.version, kind: .map, level: 1, salt: salt, entryCount: 2,
            entries: encodedEntries([(key(5), pointer), (key(9), pointer)]))
        let (_, parent) = try writer.makeNode(parentBytes)
        let root = TreeRoot(kind: .map, level: 1, pointer: parent)
        await #expect(throws: TreeError.self) { _ = try await writer.reader.value(forKey: key(1), in: root) }
        await #expect(throws: TreeError.self) { _ = try await allEntries(root, writer.reader) }
    }
}

/// Internal nodes over random keys hold little but random bytes and never shrink: after a few
/// tries they are stored as they are. Nodes over keys that repeat themselves are nearly all
/// tried, and mostly shrink. (Node boundaries depend on each tree's random salt, so the bounds
/// leave room.)
@Test func internalNodesThatDoNotShrinkAreNotCompressed() async throws {
    for randomKeys in [true, false] {
        let chunks = try makeChunkStore()
        let store = TreeStore(chunks: chunks)
        let writer = TreeWriter(store: store, format: smallNodes)
        let entries = (0..<5000).map { number in
            (randomKeys ? SampleData.bytes(count: 16, seed: UInt64(number)) : Array("customer/\(100_000 + number)/orders".utf8), [UInt8](repeating: 1, count: 8))
        }
        let root = try await writer.apply(entries, to: try writer.emptyTree(.map))
        try await writer.flush(keeping: [root])
        try await chunks.flush()
        var internalNodes = 0
        var leaves = 0
        var compressed = 0
        var frontier = [root.pointer]
        while let pointer = frontier.popLast() {
            let node = try await store.node(pointer)
            guard !node.isLeaf else {
                leaves += 1
                continue
            }
            internalNodes += 1
            if ChunkSealer.isCompressed(try await chunks.packs.read(pointer.chunkRef.id)) { compressed += 1 }
            for index in 0..<node.count { frontier.append(node.pointer(at: index)) }
        }
        #expect(internalNodes > 100)
        let (skippedInternal, skippedLeaves) = (store.internalNodeCompression.skippedCount, store.leafCompression.skippedCount)
        if randomKeys {
            #expect(skippedInternal > internalNodes * 3 / 4, "\(skippedInternal) of \(internalNodes) internal nodes skipped")
        } else {
            // Nearly every one is tried: the smallest nodes may not shrink, and eight of those in
            // a row turn compression off until a probe shrinks again.
            #expect(skippedInternal < internalNodes / 4, "\(skippedInternal) of \(internalNodes) internal nodes skipped")
            #expect(compressed > internalNodes / 2, "\(compressed) of \(internalNodes) internal nodes shrank")
            #expect(skippedLeaves < leaves / 4, "\(skippedLeaves) of \(leaves) leaves skipped")
        }
    }
}
