import InfinityChunks
import InfinityPacks
import Foundation
import InfinityTestSupport
import Testing

@testable import InfinityTrees

@Suite struct TreeFormatTests {
    /// Every node under `root`, each checked by the reader to fit under its parent.
    func nodes(under root: TreeRoot, _ writer: TreeWriter) async throws -> [TreeNode] {
        var nodes: [TreeNode] = []
        var frontier = [try await writer.rootNode(of: root)]
        while let node = frontier.popLast() {
            nodes.append(node)
            if !node.isLeaf {
                for index in 0..<node.count { frontier.append(try await writer.child(of: node, at: index)) }
            }
        }
        return nodes
    }

    /// The format versions the nodes under `root` carry.
    func versions(under root: TreeRoot, _ writer: TreeWriter) async throws -> Set<UInt8> {
        Set(try await nodes(under: root, writer).map(\.formatVersion))
    }

    func contents(_ range: Range<Int>, tag: String = "") -> [(key: [UInt8], value: [UInt8]?)] {
        range.map { (key($0), Array("value \(tag) \($0) with some words to fill a leaf".utf8)) }
    }

    @Test func newTreesTakeTheCurrentFormat() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()))
        let root = try await writer.apply(contents(0..<5000), to: try writer.emptyTree(.map))
        #expect(root.level >= 1)
        #expect(try await versions(under: root, writer) == [TreeFormat.current.version])
    }

    /// A tree made by an older build keeps its format through every edit, and so keeps history
    /// independence: edited, it equals the same contents built fresh in that format and salt.
    @Test func anEditedTreeKeepsItsFormat() async throws {
        let chunks = try makeChunkStore()
        let old = TreeWriter(store: TreeStore(chunks: chunks), format: .version1)
        let oldRoot = try await old.apply(contents(0..<6000), to: try old.emptyTree(.map))
        #expect(try await versions(under: oldRoot, old) == [1])
        try await old.flush(keeping: [oldRoot])

        let writer = TreeWriter(store: TreeStore(chunks: chunks))
        let edits = contents(3000..<3400, tag: "new") + contents(7000..<7300) + (100..<200).map { (key($0), nil) }
        let edited = try await writer.apply(edits, to: oldRoot)
        #expect(try await versions(under: edited, writer) == [1])

        // The same contents built by a writer of format 1 from an empty tree of the same salt.
        #expect(try await versions(under: try await writer.emptyTree(sameSaltAs: oldRoot), writer) == [1])
        var expected: [[UInt8]: [UInt8]] = [:]
        for (key, value) in contents(0..<6000) + edits { expected[key] = value }
        let fresh = try await old.apply(expected.map { ($0.key, $0.value) }, to: try await old.emptyTree(sameSaltAs: oldRoot))
        #expect(fresh == edited)
    }

    /// Bytes of the entries of each node under `root` (without header and entry count), by level.
    func entryBytesByLevel(under root: TreeRoot, _ writer: TreeWriter) async throws -> [Int: [Int]] {
        var sizes: [Int: [Int]] = [:]
        for node in try await nodes(under: root, writer) {
            sizes[node.level, default: []].append(node.bytes.count - TreeNode.headerByteCount - (node.count < 128 ? 1 : 2))
        }
        return sizes
    }

    /// Version 2's narrow, small nodes: every node but the last of its level ends between its
    /// level's minimum and maximum, and the same entries make more, smaller nodes than version 1.
    @Test func version2NodesStayWithinTheirSizes() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: .version2)
        let root = try await writer.apply(contents(0..<8000), to: try writer.emptyTree(.map))
        let sizes = try await entryBytesByLevel(under: root, writer)
        #expect(root.level >= 2, "the test should exercise internal levels")
        for (level, levelSizes) in sizes where level < root.level {
            let bounds = TreeFormat.version2.parameters(level: level)
            // The walk goes right to left: the level's last node, which may be short, comes first.
            #expect(levelSizes.dropFirst().allSatisfy { $0 >= bounds.minimumNodeSize }, "level \(level) ends past the minimum")
            #expect(levelSizes.allSatisfy { $0 < bounds.maximumNodeSize + 100 }, "level \(level) stays under the maximum")
            let mean = levelSizes.reduce(0, +) / levelSizes.count
            #expect(mean >= bounds.minimumNodeSize && mean < bounds.targetNodeSize + 400, "level \(level): mean \(mean) bytes")
        }

        let old = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: .version1)
        let oldRoot = try await old.apply(contents(0..<8000), to: try old.emptyTree(.map))
        let oldSizes = try await entryBytesByLevel(under: oldRoot, old)
        // About 1.9 times the leaves and several times the internal nodes; the salts are random.
        #expect(sizes[0]!.count * 2 > oldSizes[0]!.count * 3, "leaves: \(sizes[0]!.count) against \(oldSizes[0]!.count)")
        #expect(sizes[1]!.count * 2 > oldSizes[1]!.count * 3, "internal nodes: \(sizes[1]!.count) against \(oldSizes[1]!.count)")
    }

    /// Keys of the longest length allowed: each internal node still has two children or more, so
    /// the tree ends in one root a few levels up, and reads back.
    @Test func longKeysStillMakeATree() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()))
        let long = (0..<40).map { index -> (key: [UInt8], value: [UInt8]?) in
            (Array(String(format: "%04d", index).utf8) + Array(repeating: UInt8(ascii: "k"), count: TreeWriter.maximumKeyLength - 4), [UInt8(index)])
        }
        let root = try await writer.apply(long, to: try writer.emptyTree(.map))
        #expect(root.count == 40)
        #expect(root.level <= 6, "root at level \(root.level)")
        for (key, value) in long { #expect(try await writer.reader.value(forKey: key, in: root) == value) }
    }

    @Test func unknownFormatVersionsAreRefused() throws {
        let id = ChunkID(bytes: Array(repeating: 7, count: 32))!
        for (version, code) in [(UInt8(3), TreeError.Code.unsupportedFormat), (0, .malformedNode), (255, .unsupportedFormat)] {
            let bytes = TreeNode.encode(version: version, kind: .map, level: 0, salt: Array(repeating: 1, count: 16)[...], entryCount: 0, entries: [])
            let error = #expect(throws: TreeError.self) { try TreeNode(decoding: bytes, id: id) }
            #expect(error?.code == code)
            #expect(error?.message.contains("version \(version)") == true)
        }
    }

    /// Every node of a tree carries its root's format: a child of another format is refused.
    @Test func aChildOfAnotherFormatIsRefused() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()))
        let salt = [UInt8](repeating: 7, count: 16)[...]
        let leafBytes = TreeNode.encode(
            version: 1, kind: .map, level: 0, salt: salt, entryCount: 1, entries: encodedEntries([(key(1), [0, 1])]))
        let (_, leaf) = try writer.makeNode(leafBytes)
        var pointer: [UInt8] = []
        leaf.append(to: &pointer)
        let parentBytes = TreeNode.encode(
            version: 2, kind: .map, level: 1, salt: salt, entryCount: 1, entries: encodedEntries([(key(1), pointer)]))
        let (_, parent) = try writer.makeNode(parentBytes)
        let root = TreeRoot(kind: .map, level: 1, pointer: parent)
        let error = await #expect(throws: TreeError.self) { _ = try await writer.reader.value(forKey: key(1), in: root) }
        #expect(error?.code == .malformedNode)
        #expect(error?.message.contains("does not fit under its parent") == true)
    }
}
