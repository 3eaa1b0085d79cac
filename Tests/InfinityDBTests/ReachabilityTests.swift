import Foundation
import InfinityDB
import InfinityTestSupport
import Testing

@Suite struct ReachabilityTests {
    @Test func everyKindIsReachedAndNothingElse() async throws {
        let database = try await makeSmallChunkDatabase()
        let (sample, head) = try await commitGallery(to: database)
        let store = database.store
        let reached = try await database.reachableChunks(from: [head.commit!.ref])
        #expect(reached[.commit].count == 2)
        #expect(reached[.indexNode].count >= 2)
        #expect(reached[.fieldNode].count >= 3)
        #expect(reached[.valueData].count >= 2, "the long note and the long album value")

        let referenced = try await chunkIDs(of: sample.photo, in: store)
            .union(try await chunkIDs(of: sample.thumbnail, in: store)).union(try await chunkIDs(of: sample.second, in: store))
        #expect(referenced.count > 20, "many chunks and chunk lists")
        #expect(referenced.allSatisfy(reached.contains), "every chunk of every blob a value refers to")
        #expect(reached[.blobData].plaintextBytes == sample.photo.length + sample.thumbnail.length + sample.second.length)
        #expect(reached[.blobList].count == referenced.count - reached[.blobData].count)

        // What no value refers to, and a token in text, are not reached; everything else is.
        let unreferenced = try await chunkIDs(of: sample.orphan, in: store).union(try await chunkIDs(of: sample.mentioned, in: store))
        #expect(!unreferenced.contains(where: reached.contains))
        let indexed = try indexedChunkIDs(store)
        #expect(indexed.subtracting(reached.ids) == unreferenced)
        #expect(Set(reached.ids).isSubset(of: indexed))
        #expect(reached.count == ReachableKind.allCases.reduce(0) { $0 + reached[$1].count })
    }

    @Test func aSecondCommitCostsOnlyItsNewChunks() async throws {
        let backend = CountingBackend()
        let database = try await makeSmallChunkDatabase(backend: backend)
        let books = VersionedMap<Int, String>("books")
        let draft = try await database.draft()
        for number in 0..<4000 { try await draft.set("book number \(number) with a title", for: number, in: books) }
        let first = try await draft.commit(message: "many").commit!.ref
        try await draft.set("changed", for: 1234, in: books)
        let second = try await draft.commit(message: "one change").commit!.ref

        // A fresh database each time, so no commit comes from a cache.
        backend.resetCount()
        let one = try await database.store.database().reachableChunks(from: [first])
        let readsForOne = backend.rangedReadCount
        backend.resetCount()
        let both = try await database.store.database().reachableChunks(from: [second])
        let readsForBoth = backend.rangedReadCount
        #expect(one[.fieldNode].count > 20)
        let newChunks = both.count - one.count
        #expect(newChunks <= 2 + 2 * 4, "the commit, the index root and a path of field nodes")
        #expect(readsForBoth - readsForOne <= newChunks, "\(readsForBoth) reads for both, \(readsForOne) for one")
        #expect(both[.commit].count == 2, "the parent is walked too")
    }

    @Test func ancestorsMergesAndSharedHistoryAreWalkedOnce() async throws {
        let database = try await makeSmallChunkDatabase()
        let numbers = VersionedMap<String, Int>("numbers")
        let main = try await database.draft()
        try await main.set(1, for: "a", in: numbers)
        try await main.commit(message: "base")
        try await database.createBranch("side")
        let side = try await database.draft(on: "side")
        try await side.set(2, for: "b", in: numbers)
        try await side.commit(message: "side")
        try await main.set(3, for: "c", in: numbers)
        try await main.commit(message: "main")
        let merged = try await database.merge("side", into: "main").snapshot.commit!.ref
        var lastProgress = ReachabilityProgress()
        let reached = try await database.reachableChunks(from: [merged, merged]) { lastProgress = $0 }
        #expect(reached[.commit].count == 4)
        #expect(lastProgress.commits == 4)
        #expect(lastProgress.chunks == reached.count)
    }

    @Test func rootsAreTheRefsAndTheReflog() async throws {
        let database = try await makeSmallChunkDatabase()
        let numbers = VersionedMap<String, Int>("numbers")
        let main = try await database.draft()
        try await main.set(1, for: "a", in: numbers)
        let first = try await main.commit(message: "one").commit!.ref
        try await database.createTag("v1")
        try await database.createBranch("feature")
        let feature = try await database.draft(on: "feature")
        try await feature.set(2, for: "b", in: numbers)
        let abandoned = try await feature.commit(message: "abandoned").commit!.ref
        try database.deleteBranch("feature")

        let roots = try database.rootCommits()
        #expect(Set(roots.refs.map(\.name.fullName)) == ["refs/heads/main", "refs/tags/v1", "HEAD"])
        #expect(roots.refs.allSatisfy { $0.commit.id == first.id })
        #expect(roots.commits().map(\.id) == [first.id, abandoned.id], "refs first, then what only the reflog holds")
        #expect(roots.commits(includingReflogEntries: { _ in false }).map(\.id) == [first.id])
        #expect(roots.reflog.allSatisfy { $0.new != nil }, "deletions set no commit")

        let everything = try await database.reachableChunks(from: roots.commits())
        #expect(everything.contains(abandoned.id))
        let kept = try await database.reachableChunks(from: roots.commits(includingReflogEntries: { $0.name.kind != .branch || $0.name.shortName != "feature" }))
        #expect(!kept.contains(abandoned.id))
    }

    @Test func aMissingChunkStopsTheWalkAndSaysWhere() async throws {
        let backend = MemoryBackend()
        let database = try await makeSmallChunkDatabase(backend: backend)
        let chunks = database.store.chunks
        let draft = try await database.draft()
        let blob = try await chunks.putBlob(SecureRandom.bytes(count: 1000))
        // A long value of a binary field: the walk reads it to find its references.
        try await draft.set(Album(cover: blob, description: String(repeating: "x", count: 3000)), for: "holiday", in: VersionedMap<String, Album>("albums"))
        let head = try await draft.commit(message: "albums").commit!.ref
        for pack in try database.store.chunks.packs.index.packs() where pack.kind == .data {
            try await backend.delete(pack.name)
        }
        await #expect {
            _ = try await database.reachableChunks(from: [head])
        } throws: { error in
            let text = "\(error)"
            return (error as? DatabaseError)?.code == .corrupt && text.contains("\"albums\"") && text.contains("\"holiday\"")
                && text.contains(head.id.shortDescription)
        }
    }
}
