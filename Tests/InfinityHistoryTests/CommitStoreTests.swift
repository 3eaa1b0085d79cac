import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks
import InfinityTestSupport
import Testing

@testable import InfinityHistory

@Suite struct CommitStoreTests {
    @Test func writeComputesGenerationsAndLoadVerifies() async throws {
        let history = try await HistoryFixture()
        let first = try await history.commit("first")
        let second = try await history.commit("second", parents: [first])
        let side = try await history.commit("side", parents: [first])
        let merge = try await history.commit("merge", parents: [second, side])
        #expect(try await history.commits.load(first).generation == 1)
        #expect(try await history.commits.load(second).generation == 2)
        #expect(try await history.commits.load(merge).generation == 3)
        #expect(try await history.commits.load(merge).parents == [second, side])

        // A second store over the same chunks has nothing cached: it reads and verifies.
        let other = try CommitStore(chunks: history.chunks, keys: history.keys, authorName: "alice")
        let loaded = try await other.load(merge)
        #expect(loaded.message == "merge")
        #expect(loaded.author == history.keys.identity(name: "alice"))

        // A chunk that is not a commit is refused, naming it ("an index root" starts with a
        // byte that reads as format version 97).
        await #expect {
            try await other.load(history.root)
        } throws: { isHistoryError($0, .unsupportedFormat, mentioning: history.root.id.shortDescription) }
    }

    @Test func ancestryAndMergeBaseOnABranchAndMerge() async throws {
        // r - a1 - a2 - a3 - m
        //      \            /
        //       b1 - b2 ----
        let history = try await HistoryFixture()
        let r = try await history.commit("r")
        let a = try await history.line(3, on: r, label: "a")
        let b = try await history.line(2, on: a[0], label: "b")
        let m = try await history.commit("m", parents: [a[2], b[1]], second: 10)
        let commits = history.commits

        #expect(try await commits.isAncestor(r, of: m))
        #expect(try await commits.isAncestor(b[0], of: m))
        #expect(try await commits.isAncestor(m, of: m))
        #expect(try await !commits.isAncestor(m, of: b[0]))
        #expect(try await !commits.isAncestor(a[1], of: b[1]))
        #expect(try await !commits.isAncestor(b[1], of: a[2]))

        #expect(try await commits.mergeBase(a[2], b[1]) == a[0])
        #expect(try await commits.mergeBase(b[1], a[2]) == a[0])
        #expect(try await commits.mergeBase(a[2], a[0]) == a[0], "an ancestor is its own merge base")
        #expect(try await commits.mergeBase(m, b[1]) == b[1])
        #expect(try await commits.mergeBase(m, m) == m)

        #expect(try await commits.firstParentAncestor(m, generations: 0) == m)
        #expect(try await commits.firstParentAncestor(m, generations: 2) == a[1])
        #expect(try await commits.firstParentAncestor(m, generations: 4) == r)
        await #expect {
            try await commits.firstParentAncestor(m, generations: 5)
        } throws: { isHistoryError($0, .notFound, mentioning: "only 4") }
    }

    @Test func mergeBaseOfCrissCrossIsDeterministic() async throws {
        //        x0 - x1 ---- x2 (x1 + y1)
        //       /       \  /
        //   base         \/
        //       \        /\
        //        y1 ------- y2 (y1 + x1)
        let history = try await HistoryFixture()
        let base = try await history.commit("base")
        let x1 = try await history.line(2, on: base, label: "x")[1]
        let y1 = try await history.commit("y1", parents: [base], second: 1)
        let x2 = try await history.commit("x2", parents: [x1, y1], second: 5)
        let y2 = try await history.commit("y2", parents: [y1, x1], second: 5)
        // Two best common ancestors, x1 (generation 3) and y1 (generation 2): the higher wins.
        #expect(try await history.commits.mergeBase(x2, y2) == x1)
        #expect(try await history.commits.mergeBase(y2, x2) == x1)

        // Equal generations: the smaller id wins, whichever side asks.
        let p = try await history.commit("p", parents: [base], second: 2)
        let q = try await history.commit("q", parents: [base], second: 3)
        let pq = try await history.commit("pq", parents: [p, q], second: 6)
        let qp = try await history.commit("qp", parents: [q, p], second: 6)
        let smaller = min(p.id, q.id)
        #expect(try await history.commits.mergeBase(pq, qp)?.id == smaller)
        #expect(try await history.commits.mergeBase(qp, pq)?.id == smaller)
    }

    @Test func unrelatedHistoriesHaveNoMergeBase() async throws {
        let history = try await HistoryFixture()
        let left = try await history.line(3, label: "left")
        let right = try await history.line(2, label: "right")
        #expect(try await history.commits.mergeBase(left[2], right[1]) == nil)
        #expect(try await !history.commits.isAncestor(left[0], of: right[1]))
    }

    @Test func logListsEachCommitOnceChildrenFirst() async throws {
        let history = try await HistoryFixture()
        let r = try await history.commit("r")
        let a = try await history.line(3, on: r, label: "a")
        let b = try await history.line(2, on: r, label: "b")
        let m = try await history.commit("m", parents: [a[2], b[1]], second: 10)
        let log = try await history.commits.log(from: m)
        #expect(log.count == 7)
        #expect(Set(log.map(\.ref)).count == 7)
        #expect(log.first?.ref == m)
        #expect(log.last?.ref == r)
        let position = Dictionary(uniqueKeysWithValues: log.enumerated().map { ($1.ref, $0) })
        for entry in log {
            for parent in entry.commit.parents {
                #expect(try #require(position[entry.ref]) < #require(position[parent]), "a child comes before its parent")
            }
        }
        #expect(try await history.commits.log(from: m, limit: 2).map(\.ref) == Array(log.prefix(2).map(\.ref)))
        #expect(try await history.commits.log(from: [b[1], a[2]]).count == 6)
    }

    @Test func aParentWithAnImpossibleGenerationIsRefused() async throws {
        let history = try await HistoryFixture()
        let line = try await history.line(4)
        // Signed by a buggy or hostile agent: generation 2 on top of a parent with generation 4.
        let lying = try Commit.signed(
            parents: [line[3]], root: history.root, time: Date(), message: "lie", generation: 2, authorName: "mallory",
            keys: try makeAgentKeys())
        let lyingRef = try await history.chunks.put(lying.encoded(), kind: .metadata)
        await #expect {
            try await history.commits.log(from: lyingRef)
        } throws: { isHistoryError($0, .corrupt, mentioning: lyingRef.id.shortDescription, "generation") }
        await #expect {
            try await history.commits.mergeBase(lyingRef, line[0])
        } throws: { isHistoryError($0, .corrupt, mentioning: "generation") }
    }

    @Test func openingAnyOfTenThousandCommitsReadsOneChunk() async throws {
        let backend = CountingBackend()
        let history = try await HistoryFixture(backend: backend)
        var tip: ChunkRef?
        var oldest: ChunkRef?
        for index in 0..<10_000 {
            let ref = try await history.commits.write(
                parents: tip.map { [$0] } ?? [], root: history.root, message: "commit \(index)",
                time: Date(timeIntervalSince1970: 1_777_000_000 + Double(index))
            ).0
            if oldest == nil { oldest = ref }
            tip = ref
        }
        try await history.chunks.flush()
        let newest = try #require(tip)
        let first = try #require(oldest)

        let fresh = try CommitStore(chunks: history.chunks, keys: history.keys, authorName: "alice")
        backend.resetCount()
        let newestCommit = try await fresh.load(newest)
        #expect(backend.rangedReadCount == 1, "the newest commit is one chunk read away")
        #expect(newestCommit.generation == 10_000)
        #expect(newestCommit.message == "commit 9999")

        backend.resetCount()
        let oldestCommit = try await fresh.load(first)
        #expect(backend.rangedReadCount == 1, "so is the oldest: nothing is replayed")
        #expect(oldestCommit.parents.isEmpty)

        backend.resetCount()
        _ = try await fresh.load(newest)
        #expect(backend.rangedReadCount == 0, "a loaded commit is cached")
    }

    @Test func cacheStaysBoundedAndKeepsRecentlyUsedEntries() throws {
        let keys = try makeAgentKeys()
        let sealer = ChunkSealer(contentKey: .random(count: 32))
        func ref(_ number: Int) -> ChunkRef { Array("c\(number)".utf8).withUnsafeBytes { sealer.reference(for: $0) } }
        let commit = try Commit.signed(
            parents: [], root: ref(-1), time: Date(), message: "", generation: 1, authorName: "a", keys: keys)
        var cache = CommitCache(capacity: 3)
        for number in 0..<3 { cache.insert(commit, for: ref(number).id) }
        #expect(cache.commit(ref(0).id) != nil)
        cache.insert(commit, for: ref(3).id)
        #expect(cache.count == 3)
        #expect(cache.commit(ref(0).id) != nil, "recently used: kept")
        #expect(cache.commit(ref(1).id) == nil, "not used since it went in: evicted first")
    }
}
