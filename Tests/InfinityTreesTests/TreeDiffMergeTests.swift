import InfinityChunks
import InfinityTestSupport
import Testing

@testable import InfinityTrees

/// The map diff a model gives: every key whose value differs, in key order.
func modelDiff(_ old: [[UInt8]: [UInt8]], _ new: [[UInt8]: [UInt8]]) -> [MapChange] {
    Set(old.keys).union(new.keys).sorted { $0.lexicographicallyPrecedes($1) }.compactMap { key in
        switch (old[key], new[key]) {
        case let (a?, b?) where a != b: .changed(key: key, old: a, new: b)
        case let (a?, nil): .removed(key: key, value: a)
        case let (nil, b?): .added(key: key, value: b)
        default: nil
        }
    }
}

func collectDiff(_ old: TreeRoot, _ new: TreeRoot, _ reader: TreeReader) async throws -> [MapChange] {
    var changes: [MapChange] = []
    try await reader.diff(old, new) { (change: MapChange) in changes.append(change) }
    return changes
}

func listElements(_ root: TreeRoot, _ reader: TreeReader) async throws -> [[UInt8]] {
    var elements: [[UInt8]] = []
    try await reader.forEachElement(in: root) { _, element in
        elements.append(element)
        return true
    }
    return elements
}

@Suite struct TreeDiffTests {
    @Test func mapDiffMatchesTheModel() async throws {
        var random = SeededGenerator(seed: 0xd1ff)
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        var model: [[UInt8]: [UInt8]] = [:]
        for number in 0..<4000 { model[key(number)] = [UInt8](("v\(number)").utf8) }
        let base = try await writer.apply(model.map { ($0.key, $0.value) }, to: try writer.emptyTree(.map))
        for _ in 0..<15 {
            var edited = model
            var edits: [(key: [UInt8], value: [UInt8]?)] = []
            for _ in 0..<Int.random(in: 1...80, using: &random) {
                let k = key(Int.random(in: -200..<4200, using: &random))
                let value: [UInt8]? = Bool.random(using: &random) ? nil : [UInt8.random(in: 0...255, using: &random)]
                edits.append((k, value))
                edited[k] = value
            }
            let root = try await writer.apply(edits, to: base)
            #expect(try await collectDiff(base, root, writer.reader) == modelDiff(model, edited))
            #expect(try await collectDiff(root, base, writer.reader) == modelDiff(edited, model))
        }
        #expect(try await collectDiff(base, base, writer.reader).isEmpty)
    }

    @Test func diffSkipsSharedSubtrees() async throws {
        let chunks = try makeChunkStore()
        let writer = TreeWriter(store: TreeStore(chunks: chunks), format: smallNodes)
        let base = try await writer.apply((0..<20_000).map { (key($0), [UInt8]("v\($0)".utf8)) }, to: try writer.emptyTree(.map))
        let edited = try await writer.apply((0..<10).map { (key($0 * 1999), Optional([7])) }, to: base)
        try await writer.flush(keeping: [base, edited])
        try await chunks.flush()
        let fresh = TreeStore(chunks: chunks)
        let changes = try await collectDiff(base, edited, fresh.reader)
        #expect(changes.count == 10)
        let diffLoads = fresh.nodeLoads
        let total = try await countNodes(base, fresh)
        // Both paths of each change, plus neighbours where node boundaries moved.
        let loads = diffLoads
        #expect(loads <= 10 * 2 * (base.level + 1) * 3, "a diff of 10 changes loaded \(loads) of \(total) nodes")
    }

    func countNodes(_ root: TreeRoot, _ store: TreeStore) async throws -> Int {
        var count = 0
        var stack = [try await store.rootNode(of: root)]
        while let node = stack.popLast() {
            count += 1
            if !node.isLeaf { for index in 0..<node.count { stack.append(try await store.child(of: node, at: index)) } }
        }
        return count
    }

    @Test func listDiffHunksTurnTheOldListIntoTheNew() async throws {
        var random = SeededGenerator(seed: 0x1157)
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        let model = (0..<3000).map { [UInt8]("element \($0)".utf8) }
        let base = try await writer.append(contentsOf: model, to: try writer.emptyTree(.list))
        for _ in 0..<20 {
            var edited = model
            var root = base
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let start = Int.random(in: 0...edited.count, using: &random)
                let end = min(edited.count, start + Int.random(in: 0...30, using: &random))
                let inserted = (0..<Int.random(in: 0...30, using: &random)).map { _ in
                    [UInt8]("new \(UInt32.random(in: 0...UInt32.max, using: &random))".utf8)
                }
                edited.replaceSubrange(start..<end, with: inserted)
                root = try await writer.replaceSubrange(start..<end, with: inserted, in: root)
            }
            #expect(try await listElements(root, writer.reader) == edited)
            var hunks: [ListChange] = []
            try await writer.reader.diff(base, root) { (change: ListChange) in hunks.append(change) }
            var rebuilt = model
            for hunk in hunks.reversed() {
                #expect(Array(rebuilt[hunk.oldRange]) == hunk.removed)
                rebuilt.replaceSubrange(hunk.oldRange, with: hunk.inserted)
            }
            #expect(rebuilt == edited)
            let changedElements = hunks.reduce(0) { $0 + $1.removed.count + $1.inserted.count }
            #expect(changedElements <= 6 * 60 + 10, "hunks stay close to the edits: \(changedElements) elements")
        }
    }
}

@Suite struct TreeMergeTests {
    @Test func mapMergeAppliesBothSidesAndResolvesConflicts() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        var baseModel: [[UInt8]: [UInt8]] = [:]
        for number in 0..<2000 { baseModel[key(number)] = [1] }
        let base = try await writer.apply(baseModel.map { ($0.key, $0.value) }, to: try writer.emptyTree(.map))
        let ours = try await writer.apply(
            [(key(1), [2]), (key(2), nil), (key(5000), [3]), (key(7), [4]), (key(8), [9])], to: base)
        let theirs = try await writer.apply(
            [(key(1), [2]), (key(3), nil), (key(6000), [5]), (key(7), [6]), (key(8), nil)], to: base)
        var conflicts: [MapConflict] = []
        let merged = try await writer.merge(base: base, ours: ours, theirs: theirs) { (conflict: MapConflict) in
            conflicts.append(conflict)
            return conflict.theirs
        }
        #expect(conflicts == [
            MapConflict(key: key(7), base: [1], ours: [4], theirs: [6]),
            MapConflict(key: key(8), base: [1], ours: [9], theirs: nil),
        ])
        var expected = baseModel
        expected[key(1)] = [2]
        expected[key(2)] = nil
        expected[key(3)] = nil
        expected[key(5000)] = [3]
        expected[key(6000)] = [5]
        expected[key(7)] = [6]
        expected[key(8)] = nil
        try await expectMatches(merged, expected, writer.reader)

        // Merging is symmetric in content when conflicts resolve the same way.
        let other = try await writer.merge(base: base, ours: theirs, theirs: ours) { (conflict: MapConflict) in conflict.ours }
        #expect(other == merged)
        #expect(try await writer.merge(base: base, ours: base, theirs: theirs) { (_: MapConflict) in nil } == theirs)
        #expect(try await writer.merge(base: base, ours: ours, theirs: base) { (_: MapConflict) in nil } == ours)
    }

    @Test func listMergeCombinesSeparateEditsAndReportsOverlaps() async throws {
        let writer = TreeWriter(store: TreeStore(chunks: try makeChunkStore()), format: smallNodes)
        let model = (0..<500).map { [UInt8]("line \($0)".utf8) }
        let base = try await writer.append(contentsOf: model, to: try writer.emptyTree(.list))
        let ours = try await writer.replaceSubrange(10..<12, with: [[1], [2], [3]], in: base)
        var theirs = try await writer.replaceSubrange(400..<401, with: [], in: base)
        theirs = try await writer.replaceSubrange(11..<13, with: [[9]], in: theirs)
        var conflicts: [ListConflict] = []
        let merged = try await writer.merge(base: base, ours: ours, theirs: theirs) { (conflict: ListConflict) in
            conflicts.append(conflict)
            return conflict.ours + conflict.theirs
        }
        #expect(conflicts.count == 1)
        #expect(conflicts.first?.base == Array(model[10..<13]))
        var expected = model
        expected.remove(at: 400)
        expected.replaceSubrange(10..<13, with: [[1], [2], [3], model[12], [UInt8]("line 10".utf8), [9]])
        #expect(try await listElements(merged, writer.reader) == expected)
    }
}
