import Foundation
import InfinityDB
import InfinityTestSupport
import Testing

/// A file whose content is a blob: the walk must find the reference inside the value.
struct ArchivedFile: Codable, Sendable, Hashable {
    var title: String
    var content: BlobRef
}

enum Archive {
    static let documents = VersionedMap<String, ArchivedFile>("documents")
    static let notes = Serialized<String>("notes")
}

/// A store in a real directory with small packs, so that each snapshot's data has packs of its own.
struct GarbageFixture {
    let path: String
    let store: Store
    let database: Database

    init(path: String, store: Store, database: Database) {
        self.path = path
        self.store = store
        self.database = database
    }

    init(directory: String) async throws {
        path = directory + "/store"
        var options = fastOptions()
        options.targetPackSize = 128 << 10
        store = try await Store.create(at: path, agentName: "alice", passphrase: passphrase, options: options)
        database = try store.database()
    }

    /// Bytes unique to `seed`: about 100 KiB, so each snapshot's blob is a chunk of its own.
    static func content(_ seed: UInt64) -> [UInt8] {
        SampleData.bytes(count: 100_000 + Int(seed), seed: seed)
    }

    /// Commits a snapshot whose document "doc" has content `seed` (replacing the previous one),
    /// beside the "shared" document every snapshot holds.
    @discardableResult
    func snapshot(_ seed: UInt64, on branch: String = "main") async throws -> ChunkRef {
        let draft = try await database.draft(on: branch)
        let blob = try await store.chunks.putBlob(Self.content(seed))
        try await draft.set(ArchivedFile(title: "doc \(seed)", content: blob), for: "doc", in: Archive.documents)
        try await draft.set(ArchivedFile(title: "shared", content: try await store.chunks.putBlob(Self.content(1000))), for: "shared", in: Archive.documents)
        try await draft.set("snapshot \(seed)", in: Archive.notes)
        return try #require(try await draft.commit(message: "snapshot \(seed)").commit).ref
    }

    /// Reads a document's content back from `revision`, verified.
    func content(of key: String, at revision: String) async throws -> [UInt8] {
        let document = try #require(try await database.snapshot(revision).get(key, in: Archive.documents))
        var bytes: [UInt8] = []
        try await store.chunks.getBlob(document.content) { bytes += $0 }
        return bytes
    }

    func gc(
        grace: Duration = .zero, at time: Date = Date(), reflogExpiry: Duration? = .seconds(90 * 86_400), dryRun: Bool = false
    ) async throws -> GarbageCollectionReport {
        var options = GarbageCollectionOptions(grace: grace, reflogExpiry: reflogExpiry, dryRun: dryRun)
        options.clock = { time }
        return try await database.collectGarbage(options)
    }

    func packObjects() async throws -> [ObjectInfo] {
        try await store.backend.list(prefix: "packs/")
    }
}

@Suite struct GarbageCollectionTests {
    @Test func forgetThenGcFreesWhatNothingReachesAndKeepsEverythingElse() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try await GarbageFixture(directory: directory)
            var removed: [BlobRef] = []
            for seed in UInt64(0)..<6 {
                try await fixture.snapshot(seed)
                removed.append(try #require(try await fixture.database.snapshot().get("doc", in: Archive.documents)).content)
            }
            removed.removeLast(2)
            let before = try fixture.store.statistics()

            let untouched = try await fixture.gc()
            #expect(untouched.sweep.condemnedChunks == 0, "the reflog keeps every snapshot before forget")
            #expect(untouched.sweep.deletedPacks == 0)

            let forgotten = try await fixture.database.forget(policy: RetentionPolicy(last: 2))
            #expect(forgotten.plan.removedCount == 4)
            let report = try await fixture.gc()
            #expect(report.sweep.deletedBytes > 4 * 100_000, "the four removed snapshots' documents are freed")
            #expect(report.sweep.missingChunks == 0)
            #expect(report.sweep.failures.isEmpty)
            #expect(report.uncatalogedCommits >= 4, "at least the four removed commits")
            let after = try fixture.store.statistics()
            #expect(after.storedBytes < before.storedBytes - 4 * 100_000)

            // Everything still referenced reads back byte for byte, after a reopen too.
            let reopened = try await Store.open(at: fixture.path, passphrase: passphrase).database()
            for database in [fixture.database, reopened] {
                let log = try await database.log()
                #expect(log.map(\.commit.message) == ["snapshot 5", "snapshot 4"])
                let head = try await database.snapshot()
                #expect(try await head.get(Archive.notes) == "snapshot 5")
                for (revision, key, seed) in [("HEAD", "doc", UInt64(5)), ("HEAD~1", "doc", 4), ("HEAD~1", "shared", 1000)] {
                    let document = try #require(try await database.snapshot(revision).get(key, in: Archive.documents))
                    var bytes: [UInt8] = []
                    try await database.store.chunks.getBlob(document.content) { bytes += $0 }
                    #expect(bytes == GarbageFixture.content(seed), "\(key) at \(revision)")
                }
            }
            for blob in removed {
                await #expect(throws: (any Error).self, "a removed snapshot's document is gone") {
                    try await fixture.store.chunks.getBlob(blob) { _ in }
                }
            }
            for old in forgotten.plan.entries where !old.isKept {
                // The reopened database has no cached copy: the commit chunk itself is gone.
                await #expect(throws: (any Error).self) { try await reopened.commits.load(old.commit.ref) }
                #expect(try fixture.database.refs.commit(id: old.commit.ref.id) == nil, "left the catalog")
            }

            let again = try await fixture.gc()
            #expect(again.sweep.condemnedChunks == 0 && again.sweep.deletedPacks == 0, "a second run finds nothing more")

            // check finds nothing wrong: the released reflog entries may name deleted commits.
            let checked = try await reopened.check(readData: .all)
            #expect(checked.problems.isEmpty, "\(checked.problems)")
            #expect(checked.summary.expiredReflogEntries > 0)
        }
    }

    @Test func removedDataThatNoSnapshotKeepsIsDeletedAndReadsFailClearly() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try await GarbageFixture(directory: directory)
            // Each snapshot replaces the previous document instead of adding one.
            var removed: BlobRef?
            for seed in UInt64(10)..<13 {
                let draft = try await fixture.database.draft()
                if seed > 10 { try await draft.remove("doc \(seed - 1)", from: Archive.documents) }
                let blob = try await fixture.store.chunks.putBlob(GarbageFixture.content(seed))
                if seed == 10 { removed = blob }
                try await draft.set(ArchivedFile(title: "only", content: blob), for: "doc \(seed)", in: Archive.documents)
                try await draft.commit(message: "snapshot \(seed)")
            }
            try await fixture.database.forget(policy: RetentionPolicy(last: 1))
            let report = try await fixture.gc()
            #expect(report.sweep.deletedPacks > 0)
            let gone = try #require(removed)
            await #expect {
                try await fixture.store.chunks.getBlob(gone) { _ in }
            } throws: { "\($0)".contains(gone.root.id.shortDescription) || "\($0)".contains("not in the index") }
            #expect(try await fixture.content(of: "doc 12", at: "HEAD") == GarbageFixture.content(12))
        }
    }

    @Test func tagsKeepTheirSnapshotsAndTheDryRunSaysSo() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try await GarbageFixture(directory: directory)
            let oldest = try await fixture.snapshot(20)
            try await fixture.snapshot(21)
            try await fixture.snapshot(22)
            try await fixture.database.createTag("first", at: oldest.id.description)

            let plan = try await fixture.database.planForget(policy: RetentionPolicy(last: 1))
            #expect(plan.entries.last?.pinnedBy.map(\.shortName) == ["first"])
            #expect(plan.removedButPinnedCount == 1)
            try await fixture.database.forget(policy: RetentionPolicy(last: 1))
            _ = try await fixture.gc()
            #expect(try await fixture.content(of: "doc", at: "first") == GarbageFixture.content(20))
            #expect(try await fixture.content(of: "doc", at: "main") == GarbageFixture.content(22))
            #expect(try await fixture.database.log("first").count == 1)
        }
    }

    @Test func aConcurrentWriterThatDeduplicatedAgainstACondemnedChunkIsNotHarmed() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try await GarbageFixture(directory: directory)
            let draftStart = Date()
            // ArchivedFile 30 lives only in a snapshot that forget removes.
            let draft = try await fixture.database.draft()
            try await draft.set(
                ArchivedFile(title: "old", content: try await fixture.store.chunks.putBlob(GarbageFixture.content(30))), for: "doc 30",
                in: Archive.documents)
            try await draft.commit(message: "to be forgotten")
            let keep = try await fixture.database.draft()
            try await keep.remove("doc 30", from: Archive.documents)
            try await keep.commit(message: "without document 30")
            try await fixture.database.forget(policy: RetentionPolicy(last: 1))

            // A writer stores the same bytes: every chunk is found in the index, nothing is written.
            let writer = try await fixture.database.draft(on: "writer")
            let storedBefore = try fixture.store.statistics().storedBytes
            let deduplicated = try await fixture.store.chunks.putBlob(GarbageFixture.content(30))
            try await fixture.store.flush()
            #expect(try fixture.store.statistics().storedBytes == storedBefore, "deduplicated")

            // gc runs before the writer commits: the document's chunks are condemned, not deleted.
            let first = try await fixture.gc(grace: .seconds(3600), at: draftStart)
            #expect(first.sweep.condemnedChunks > 0)
            #expect(first.sweep.deletedPacks == 0)
            #expect(first.sweep.waitingPacks > 0)

            // The writer commits within the grace period, referencing the condemned chunks.
            try await writer.set(ArchivedFile(title: "again", content: deduplicated), for: "doc 30", in: Archive.documents)
            try await writer.commit(message: "writer")

            // The next run, after the grace period, finds them reachable again and keeps them.
            let second = try await fixture.gc(grace: .seconds(3600), at: draftStart + 7200)
            #expect(second.sweep.revivedChunks > 0)
            #expect(second.sweep.missingChunks == 0)
            #expect(try await fixture.content(of: "doc 30", at: "writer") == GarbageFixture.content(30))
            let reopened = try await Store.open(at: fixture.path, passphrase: passphrase)
            var bytes: [UInt8] = []
            try await reopened.chunks.getBlob(deduplicated) { bytes += $0 }
            #expect(bytes == GarbageFixture.content(30))

            // After a condemnation a writer no longer deduplicates: it stores a fresh copy.
            try await fixture.database.deleteBranch("writer")
            _ = try await fixture.gc(grace: .seconds(3600), at: draftStart + 7200, reflogExpiry: .zero)
            let index = fixture.store.chunks.packs.index
            let condemnedCopy = try #require(try index.location(of: deduplicated.root.id))
            #expect(try !index.contains(deduplicated.root.id))
            _ = try await fixture.store.chunks.putBlob(GarbageFixture.content(30))
            try await fixture.store.flush()
            #expect(try index.location(of: deduplicated.root.id)?.packName != condemnedCopy.packName, "a fresh copy was written")
            #expect(try index.contains(deduplicated.root.id))
        }
    }

    @Test func writersCommittingWhileGcRunsLoseNothing() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try await GarbageFixture(directory: directory)
            // Garbage to condemn: documents 70...72 live only in snapshots forget removes.
            for seed in UInt64(70)..<73 { try await fixture.snapshot(seed) }
            try await fixture.snapshot(73)
            try await fixture.database.forget(policy: RetentionPolicy(last: 1))

            // Writers re-store the forgotten documents (deduplicating against chunks a run may
            // be condemning at that very moment) and new ones, while runs keep condemning.
            let writers = 3
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        for step in 0..<4 {
                            let draft = try await fixture.database.draft(on: "writer-\(writer)")
                            for seed in [UInt64(70 + step % 3), UInt64(100 + writer * 10 + step)] {
                                let blob = try await fixture.store.chunks.putBlob(GarbageFixture.content(seed))
                                try await draft.set(ArchivedFile(title: "\(seed)", content: blob), for: "\(seed)", in: Archive.documents)
                            }
                            try await draft.commit(message: "writer \(writer) step \(step)")
                        }
                    }
                }
                group.addTask {
                    for _ in 0..<4 {
                        let report = try await fixture.gc(grace: .seconds(3600))
                        #expect(report.sweep.deletedPacks == 0, "nothing is old enough to delete")
                    }
                }
                try await group.waitForAll()
            }

            // A run after the grace period deletes what is really unreachable, and only that.
            let final = try await fixture.gc(grace: .seconds(3600), at: Date() + 7200)
            #expect(final.sweep.missingChunks == 0)
            let reopened = try await Store.open(at: fixture.path, passphrase: passphrase).database()
            for writer in 0..<writers {
                let snapshot = try await reopened.snapshot("writer-\(writer)")
                for seed in [UInt64(70), 71, 72] + (0..<4).map({ UInt64(100 + writer * 10 + $0) }) {
                    let file = try #require(try await snapshot.get("\(seed)", in: Archive.documents), "writer \(writer): \(seed)")
                    var bytes: [UInt8] = []
                    try await reopened.store.chunks.getBlob(file.content) { bytes += $0 }
                    #expect(bytes == GarbageFixture.content(seed), "writer \(writer): document \(seed)")
                }
            }
            let checked = try await reopened.check(readData: .all)
            #expect(checked.problems.isEmpty, "\(checked.problems)")
        }
    }

    @Test func aDryRunChangesNothingAndPredictsTheRun() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try await GarbageFixture(directory: directory)
            for seed in UInt64(40)..<43 { try await fixture.snapshot(seed) }
            try await fixture.database.forget(policy: RetentionPolicy(last: 1))
            let objects = try await fixture.packObjects()
            let statistics = try fixture.store.statistics()
            let dry = try await fixture.gc(dryRun: true)
            #expect(dry.dryRun)
            #expect(try await fixture.packObjects() == objects)
            #expect(try fixture.store.statistics() == statistics)
            let real = try await fixture.gc()
            #expect(dry.sweep.condemnedChunks == real.sweep.condemnedChunks)
            #expect(dry.sweep.deletedBytes == real.sweep.deletedBytes)
            #expect(dry.roots == real.roots)
        }
    }

    @Test func aDeletedBranchIsFreedOnceItsReflogEntriesExpire() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try await GarbageFixture(directory: directory)
            try await fixture.snapshot(50)
            try await fixture.snapshot(51, on: "scratch")
            try await fixture.database.deleteBranch("scratch")
            let kept = try await fixture.gc()
            #expect(kept.sweep.condemnedChunks == 0, "the reflog keeps a deleted branch for 90 days")
            let later = Date() + 91 * 86_400
            let expired = try await fixture.gc(at: later)
            #expect(expired.sweep.condemnedChunks > 0)
            #expect(try await fixture.content(of: "doc", at: "main") == GarbageFixture.content(50))
            #expect(try await fixture.content(of: "shared", at: "main") == GarbageFixture.content(1000))
            let checked = try await fixture.database.check()
            #expect(checked.problems.isEmpty, "the expired entries' commits are gone, and that is no damage: \(checked.problems)")
        }
    }

    @Test func aPackLeftBehindByAFailedDeleteIsNoDamageAndTheNextRunDeletesIt() async throws {
        try await withTemporaryDirectory { directory in
            let backend = DeleteRefusingBackend(try LocalDirectoryBackend(root: directory + "/store"))
            var options = fastOptions()
            options.targetPackSize = 128 << 10
            let store = try await Store.create(
                backend: backend, indexPath: directory + "/index.sqlite", location: directory, agentName: "alice",
                passphrase: passphrase, options: options)
            let fixture = GarbageFixture(path: directory, store: store, database: try store.database())
            for seed in UInt64(60)..<63 { try await fixture.snapshot(seed) }
            try await fixture.database.forget(policy: RetentionPolicy(last: 1))

            backend.isRefusing = true
            let stopped = try await fixture.gc()
            #expect(stopped.sweep.deletedPacks == 0)
            #expect(!stopped.sweep.failures.isEmpty)
            // The packs are out of the index but still stored: that is no damage.
            let checked = try await fixture.database.check(readData: .all)
            #expect(checked.problems.isEmpty, "\(checked.problems)")
            #expect(try await fixture.content(of: "doc", at: "HEAD") == GarbageFixture.content(62))

            backend.isRefusing = false
            let finished = try await fixture.gc()
            #expect(finished.sweep.deletedPacks == stopped.sweep.failures.count)
            #expect(finished.sweep.failures.isEmpty)
            #expect(try await fixture.database.check(readData: .all).problems.isEmpty)
            #expect(try await fixture.content(of: "doc", at: "HEAD") == GarbageFixture.content(62))
        }
    }

    @Test func optionsOutOfRangeAreRefused() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try await GarbageFixture(directory: directory)
            await #expect {
                try await fixture.database.collectGarbage(GarbageCollectionOptions(repackThreshold: -0.5))
            } throws: { "\($0)".contains("-0.5") }
            await #expect {
                try await fixture.database.collectGarbage(GarbageCollectionOptions(reflogExpiry: .seconds(-1)))
            } throws: { "\($0)".contains("reflog expiry") }
            await #expect {
                try await fixture.database.collectGarbage(GarbageCollectionOptions(grace: .seconds(-5)))
            } throws: { "\($0)".contains("grace period") }
            #expect(try fixture.database.refs.reflogExpiry() == nil, "a refused run records nothing")
        }
    }
}

