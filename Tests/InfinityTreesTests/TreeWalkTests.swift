import Foundation
import InfinityChunks
import InfinityPacks
import InfinityTestSupport
import Testing

@testable import InfinityTrees

@Suite struct TreeWalkTests {
    @Test func theWalkEntersEveryNodeOnceAndSeesEveryEntry() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        let model = Dictionary(uniqueKeysWithValues: (0..<400).map { (key($0), [UInt8]("value \($0)".utf8)) })
        let root = try await writer.apply(model.map { ($0.key, $0.value) }, to: try writer.emptyTree(.map))
        try await writer.flush(keeping: [root])
        #expect(root.level >= 2)

        var nodes: [ChunkID: Int] = [:]
        var entries: [([UInt8], [UInt8])] = []
        try await writer.store.walk(root) { node, level in
            nodes[node.id, default: 0] += 1
            #expect(level <= root.level)
            return true
        } entry: { key, stored in
            guard case .inline(let value) = try StoredValue(stored: stored) else { throw TreeError(.malformedNode, "not inline") }
            entries.append((Array(key), Array(value)))
        } failed: { _, error in
            throw error
        }
        #expect(nodes.values.allSatisfy { $0 == 1 })
        #expect(entries.map(\.0) == model.keys.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(entries.allSatisfy { model[$0.0] == $0.1 })

        // A second version shares all but a path of nodes: skipping what was seen enters only those.
        let edited = try await writer.apply([(key(7), [1, 2, 3])], to: root)
        try await writer.flush(keeping: [edited])
        var newNodes = 0
        var newEntries = 0
        try await writer.store.walk(edited) { node, _ in
            guard nodes[node.id] == nil else { return false }
            newNodes += 1
            return true
        } entry: { _, _ in
            newEntries += 1
        } failed: { _, error in
            throw error
        }
        // One new node per level, or two where the edit moved a node boundary.
        #expect(newNodes >= edited.level + 1 && newNodes <= 2 * (edited.level + 1), "\(newNodes) new nodes")
        #expect(newEntries < 100)
    }

    @Test func aNodeThatCannotBeReadIsReportedAndTheWalkGoesOn() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()))
        let salt = [UInt8](repeating: 7, count: 16)[...]
        let leafBytes = TreeNode.encode(version: TreeFormat.current.version, kind: .map, level: 0, salt: salt, entryCount: 1, entries: encodedEntries([(key(9), [0, 9])]))
        let (_, leaf) = try writer.makeNode(leafBytes)
        // A first child that was never stored, then the real leaf.
        let missing = NodePointer(key: ChunkKey(bytes: [UInt8](repeating: 1, count: 32))!, length: 40, count: 1)
        var missingPointer: [UInt8] = []
        missing.append(to: &missingPointer)
        var leafPointer: [UInt8] = []
        leaf.append(to: &leafPointer)
        let parentBytes = TreeNode.encode(
            version: TreeFormat.current.version, kind: .map, level: 1, salt: salt, entryCount: 2, entries: encodedEntries([(key(1), missingPointer), (key(9), leafPointer)]))
        let (_, parent) = try writer.makeNode(parentBytes)
        let root = TreeRoot(kind: .map, level: 1, pointer: parent)
        try await writer.flush(keeping: [root])

        var failures: [ChunkID] = []
        var keys: [[UInt8]] = []
        try await TreeStore(chunks: writer.store.chunks).walk(root) { _, _ in true } entry: { key, _ in
            keys.append(Array(key))
        } failed: { node, _ in
            failures.append(node.id)
        }
        #expect(failures == [missing.chunkRef.id])
        #expect(keys == [key(9)], "the walk went on to the next child")

        // A failure handler that throws stops the walk.
        await #expect(throws: (any Error).self) {
            try await writer.store.walk(root) { _, _ in true } entry: { _, _ in } failed: { _, error in throw error }
        }

        // A root that does not fit its reference is reported, not thrown.
        let damaged = TreeRoot(kind: .map, level: 2, pointer: root.pointer)
        failures = []
        try await writer.store.walk(damaged) { _, _ in true } entry: { _, _ in } failed: { node, error in
            failures.append(node.id)
            #expect(error is TreeError)
        }
        #expect(failures == [root.pointer.chunkRef.id])
    }
}
