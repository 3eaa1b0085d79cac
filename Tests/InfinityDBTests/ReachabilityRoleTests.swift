import Foundation
import InfinityTestSupport
import Testing

@testable import InfinityDB

@Suite struct ReachabilityRoleTests {
    @Test func aTreeFirstWalkedAsRawIsWalkedAgainWhenFoundInABinaryField() async throws {
        let database = try await makeSmallChunkDatabase()
        let photo = try await database.store.chunks.putBlob(SecureRandom.bytes(count: 200_000))
        let draft = try await database.draft()
        try await draft.set(Photo(name: "a", content: photo, thumbnail: nil), for: "a", in: Gallery.photos)
        let binary = try await draft.commit(message: "binary").commit!.ref

        // The same field tree under an entry that says its values are raw, as a field written
        // before formats were recorded would be.
        let snapshot = try await database.snapshot(commit: binary)
        var state = try #require(try await snapshot.fieldState(Gallery.photos.name))
        state.format = .raw
        let writer = TreeWriter(store: database.trees)
        let index = try await writer.apply([(Array(Gallery.photos.name.utf8), state.encoded)], to: try #require(snapshot.index))
        try await writer.flush(keeping: [index])
        let legacy = try await database.writeCommit(parents: [], index: index, message: "legacy").ref

        let photoChunks = try await chunkIDs(of: photo, in: database.store)
        let rawOnly = try await database.reachableChunks(from: [legacy])
        #expect(!photoChunks.contains(where: rawOnly.contains), "raw values are not scanned")
        let rawFirst = try await database.reachableChunks(from: [legacy, binary])
        #expect(photoChunks.allSatisfy(rawFirst.contains), "the shared tree is walked again as binary")
        #expect(rawFirst[.fieldNode].count == rawOnly[.fieldNode].count, "its nodes are counted once")
    }
}
