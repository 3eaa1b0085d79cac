import Foundation
import InfinityBackends
import InfinityCrypto
import InfinitySQLite
import InfinityTestSupport
import Testing

@testable import InfinityPacks

/// A pack store over real files: a local directory backend and an index file, which can be
/// reopened to play a restart after a crash.
struct SweepFixture {
    static let start = Date(timeIntervalSince1970: 1_777_000_000)
    /// Each chunk is this long; four fill a pack.
    static let chunkSize = 1000
    static let packSize = 4 * chunkSize

    let backend: LocalDirectoryBackend
    let indexPath: String
    let key = SecureBytes.random(count: 32)

    init(directory: String) throws {
        backend = try LocalDirectoryBackend(root: directory + "/store")
        indexPath = directory + "/index.sqlite"
    }

    /// A new pack store over the same backend and index file, as a restarted process opens it.
    func open() async throws -> PackStore {
        let store = PackStore(backend: backend, index: try ChunkIndex(path: indexPath), metadataKey: key, targetPackSize: Self.packSize)
        _ = try await store.indexMissingPacks()
        return store
    }

    /// Stores chunks `numbers` in order (four to a pack), flushed.
    func put(_ numbers: some Sequence<Int>, in store: PackStore) async throws {
        for number in numbers where try store.claim(testID(number)) {
            try await store.add(testID(number), sealed: testBytes(number, count: Self.chunkSize), plaintextLength: 5000, kind: .data)
        }
        try await store.flush()
    }

    /// One garbage collection run at `time`.
    @discardableResult
    func sweep(
        _ store: PackStore, live: some Sequence<Int>, at time: Date, grace: Duration = .zero, threshold: Double = 0.1,
        dryRun: Bool = false, interruption: @escaping @Sendable (SweepStep) throws -> Void = { _ in }
    ) async throws -> SweepReport {
        var options = SweepOptions(grace: grace, repackThreshold: threshold, dryRun: dryRun)
        options.clock = { time }
        options.interruption = interruption
        let horizon = try await store.beginSweep(at: time)
        return try await store.sweep(live: Set(live.map(testID)), horizon: horizon, options: options)
    }

    /// Every chunk in `numbers` reads back exactly as it was written.
    func expectReadable(_ numbers: some Sequence<Int>, in store: PackStore, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for number in numbers {
            let bytes = try await store.read(testID(number))
            #expect(bytes == testBytes(number, count: Self.chunkSize), "chunk \(number)", sourceLocation: sourceLocation)
        }
    }

    /// Nothing indexed points at a missing pack, and every pack in the backend is indexed (a
    /// retired one only while a run is stopped between retiring and deleting it).
    func expectConsistent(_ store: PackStore, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let objects = Set(try await backend.list(prefix: "packs/").map(\.name))
        let known = try store.index.packNames()
        let retired = try store.index.retiredPackNames()
        #expect(objects.isSubset(of: known), "every stored pack is indexed", sourceLocation: sourceLocation)
        #expect(known.subtracting(retired).isSubset(of: objects), "every indexed pack is stored", sourceLocation: sourceLocation)
    }

    /// The chunk numbers in `numbers` that the index still holds.
    func indexed(_ numbers: some Sequence<Int>, in store: PackStore) throws -> [Int] {
        try numbers.filter { try store.index.location(of: testID($0)) != nil }
    }
}

@Suite struct PackSweepTests {
    @Test func unreachableChunksAreCondemnedAndDeletedOnlyAfterTheGracePeriod() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try SweepFixture(directory: directory)
            let store = try await fixture.open()
            try await fixture.put(0..<20, in: store)
            #expect(try await fixture.backend.list(prefix: "packs/").count == 5)
            let t0 = SweepFixture.start

            let first = try await fixture.sweep(store, live: 0..<8, at: t0, grace: .seconds(3600))
            #expect(first.condemnedChunks == 12)
            #expect(first.condemnedBytes == 12 * SweepFixture.chunkSize)
            #expect(first.deletedPacks == 0)
            #expect(first.waitingPacks == 3)
            #expect(first.repackedPacks == 0, "fully used and fully unused packs are never repacked")
            for number in 8..<20 {
                #expect(try !store.index.contains(testID(number)), "a condemned chunk is hidden from deduplication")
            }
            try await fixture.expectReadable(0..<20, in: store)
            #expect(try store.index.statistics().condemnedChunkCount == 12)

            let early = try await fixture.sweep(store, live: 0..<8, at: t0 + 1800, grace: .seconds(3600))
            #expect(early.deletedPacks == 0, "half the grace period is not enough")
            #expect(early.condemnedChunks == 0, "already condemned")
            #expect(early.waitingPacks == 3)
            #expect(try await fixture.backend.list(prefix: "packs/").count == 5)

            let late = try await fixture.sweep(store, live: 0..<8, at: t0 + 3660, grace: .seconds(3600))
            #expect(late.deletedPacks == 3)
            #expect(late.deletedChunks == 12)
            #expect(late.deletedBytes == 3 * PackFormat.packSize(chunkBytes: 4 * SweepFixture.chunkSize, count: 4))
            #expect(late.waitingPacks == 0)
            #expect(try await fixture.backend.list(prefix: "packs/").count == 2)
            try await fixture.expectReadable(0..<8, in: store)
            #expect(try fixture.indexed(8..<20, in: store).isEmpty)
            await #expect { try await store.read(testID(12)) } throws: { ($0 as? PackError)?.code == .chunkNotFound }
            try await fixture.expectConsistent(store)
            let statistics = try store.index.statistics()
            #expect(statistics.packCount == 2)
            #expect(statistics.chunkCount == 8)
            #expect(statistics.condemnedChunkCount == 0)
        }
    }

    @Test func aWriterThatDeduplicatedBeforeTheCondemnationIsNotHarmed() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try SweepFixture(directory: directory)
            let store = try await fixture.open()
            try await fixture.put(0..<8, in: store)
            let t0 = SweepFixture.start
            // A writer looks chunk 5 up and finds it: it will reference it without writing it.
            #expect(try !store.claim(testID(5)))
            // Meanwhile a run finds chunks 4..<8 unreachable (the writer has not committed).
            try await fixture.sweep(store, live: 0..<4, at: t0, grace: .seconds(3600))
            #expect(try !store.index.contains(testID(5)))
            // The writer commits within the grace period: the next run sees chunk 5 reachable.
            let report = try await fixture.sweep(store, live: Array(0..<4) + [5], at: t0 + 7200, grace: .seconds(3600))
            #expect(report.revivedChunks == 1)
            #expect(try store.index.contains(testID(5)), "revived: visible to deduplication again")
            try await fixture.expectReadable(0..<4, in: store)
            try await fixture.expectReadable([5], in: store)
            #expect(report.deletedPacks == 0, "the pack holding the revived chunk is kept")
            try await fixture.expectConsistent(store)

            // The revived chunk's pack was mostly unused: its chunk was copied out, and the old
            // pack waits out a new grace period before it goes.
            #expect(report.repackedPacks == 1)
            #expect(report.copiedChunks == 1)
            let final = try await fixture.sweep(store, live: Array(0..<4) + [5], at: t0 + 3 * 3600, grace: .seconds(3600))
            #expect(final.deletedPacks == 1)
            try await fixture.expectReadable(Array(0..<4) + [5], in: store)
            #expect(try fixture.indexed([4, 6, 7], in: store).isEmpty)
            try await fixture.expectConsistent(store)
        }
    }

    @Test func aWriterAfterTheCondemnationStoresAFreshCopy() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try SweepFixture(directory: directory)
            let store = try await fixture.open()
            try await fixture.put(0..<8, in: store)
            let t0 = SweepFixture.start
            try await fixture.sweep(store, live: 0..<4, at: t0, grace: .seconds(3600))
            let condemnedPack = try #require(try store.index.location(of: testID(6))).packName

            #expect(try store.claim(testID(6)), "a condemned chunk must be written again")
            try await store.add(testID(6), sealed: testBytes(6, count: SweepFixture.chunkSize), plaintextLength: 5000, kind: .data)
            try await store.flush()
            let fresh = try #require(try store.index.location(of: testID(6)))
            #expect(fresh.packName != condemnedPack, "the index points at the fresh copy")
            #expect(try store.index.contains(testID(6)))

            let report = try await fixture.sweep(store, live: Array(0..<4) + [6], at: t0 + 7200, grace: .seconds(3600))
            #expect(report.deletedPacks == 1)
            #expect(try await fixture.backend.info(condemnedPack) == nil)
            try await fixture.expectReadable(Array(0..<4) + [6], in: store)
            try await fixture.expectConsistent(store)
        }
    }

    @Test func partlyUsedPacksAreRepackedAboveTheThreshold() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try SweepFixture(directory: directory)
            let store = try await fixture.open()
            try await fixture.put(0..<16, in: store)
            // Packs: [0-3] all used, [4-7] 3 of 4 used, [8-11] 1 of 4 used, [12-15] all used.
            let live = [0, 1, 2, 3, 4, 5, 6, 8, 12, 13, 14, 15]

            let high = try await fixture.sweep(store, live: live, at: SweepFixture.start, threshold: 0.5)
            #expect(high.repackedPacks == 1, "only the pack more than half unused")
            #expect(high.copiedChunks == 1)
            #expect(high.writtenPacks == 1)
            #expect(high.deletedPacks == 1, "with no grace period the emptied pack goes at once")
            try await fixture.expectReadable(live, in: store)

            let low = try await fixture.sweep(store, live: live, at: SweepFixture.start + 60, threshold: 0.1)
            #expect(low.repackedPacks == 1, "the pack a quarter unused")
            #expect(low.copiedChunks == 3)
            #expect(low.copiedBytes == 3 * SweepFixture.chunkSize)
            try await fixture.expectReadable(live, in: store)
            #expect(try fixture.indexed([7, 9, 10, 11], in: store).isEmpty)
            try await fixture.expectConsistent(store)

            let again = try await fixture.sweep(store, live: live, at: SweepFixture.start + 120, threshold: 0)
            #expect(again.repackedPacks == 0, "fully used packs, the repacked ones included, are left alone")

            // The new packs' trailers list what was copied: an index rebuilt from the packs alone
            // finds every chunk.
            for suffix in ["", "-wal", "-shm"] { try FileManager.default.removeItem(atPath: fixture.indexPath + suffix) }
            let rebuilt = try await fixture.open()
            try await fixture.expectReadable(live, in: rebuilt)
            #expect(try rebuilt.index.statistics().chunkCount == live.count)
        }
    }

    @Test func aDryRunReportsWhatARunWouldDoAndChangesNothing() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try SweepFixture(directory: directory)
            let store = try await fixture.open()
            try await fixture.put(0..<16, in: store)
            let live = [0, 1, 2, 3, 4, 8, 9, 10]
            let objects = try await fixture.backend.list(prefix: "packs/")
            let statistics = try store.index.statistics()

            let dry = try await fixture.sweep(store, live: live, at: SweepFixture.start, dryRun: true)
            #expect(dry.dryRun)
            #expect(try await fixture.backend.list(prefix: "packs/") == objects)
            #expect(try store.index.statistics() == statistics)
            for number in 0..<16 { #expect(try store.index.contains(testID(number))) }

            let real = try await fixture.sweep(store, live: live, at: SweepFixture.start)
            #expect(!real.dryRun)
            #expect(dry.condemnedChunks == real.condemnedChunks)
            #expect(dry.condemnedBytes == real.condemnedBytes)
            #expect(dry.repackedPacks == real.repackedPacks)
            #expect(dry.copiedChunks == real.copiedChunks)
            #expect(dry.deletedPacks == real.deletedPacks)
            #expect(dry.deletedBytes == real.deletedBytes)
            #expect(real.condemnedChunks == 8)
            #expect(real.deletedPacks == 3, "one unused pack and two repacked ones")
            try await fixture.expectReadable(live, in: store)
        }
    }

    @Test func chunksStoredDuringTheMarkAreNotCondemned() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try SweepFixture(directory: directory)
            let store = try await fixture.open()
            try await fixture.put(0..<4, in: store)
            let horizon = try await store.beginSweep(at: SweepFixture.start)
            // A writer stores chunks while the mark runs; its commit is not among the roots.
            try await fixture.put(100..<104, in: store)
            var options = SweepOptions(grace: .zero)
            options.clock = { SweepFixture.start }
            let report = try await store.sweep(live: Set((0..<4).map(testID)), horizon: horizon, options: options)
            #expect(report.condemnedChunks == 0)
            for number in 100..<104 { #expect(try store.index.contains(testID(number))) }
            try await fixture.expectReadable(100..<104, in: store)
        }
    }

    /// Stops a run after the first step matching `stop`, then restarts (a new process over the
    /// same files) and checks that nothing was lost, then lets a full run finish the work.
    @Test(arguments: ["marked", "copiesStored", "copiesIndexed", "retired", "deleted"])
    func aCrashAtAnyStepLosesNothing(stop: String) async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try SweepFixture(directory: directory)
            // Packs: [0-3] half used (repacked), [4-7] unused (deleted), [8-11] all used.
            let live = [0, 1, 8, 9, 10, 11]
            do {
                let store = try await fixture.open()
                try await fixture.put(0..<12, in: store)
                await #expect(throws: SimulatedCrash.self) {
                    try await fixture.sweep(store, live: live, at: SweepFixture.start) { step in
                        if "\(step)".hasPrefix(stop) { throw SimulatedCrash() }
                    }
                }
            }
            let restarted = try await fixture.open()
            try await fixture.expectReadable(live, in: restarted)
            try await fixture.expectConsistent(restarted)
            for number in 0..<12 where try restarted.index.location(of: testID(number)) != nil {
                // Whatever the index still lists is readable, condemned or not.
                #expect(try await restarted.read(testID(number)) == testBytes(number, count: SweepFixture.chunkSize))
            }

            let report = try await fixture.sweep(restarted, live: live, at: SweepFixture.start + 60)
            #expect(report.failures.isEmpty)
            try await fixture.expectReadable(live, in: restarted)
            #expect(try fixture.indexed(0..<12, in: restarted).sorted() == live)
            try await fixture.expectConsistent(restarted)
            let stored = try await fixture.backend.list(prefix: "packs/")
            #expect(Set(stored.map(\.name)) == (try restarted.index.packNames().subtracting(restarted.index.retiredPackNames())))
            #expect(stored.count == 2, "the used pack and one pack of copies")
        }
    }

    @Test func aRetiredPackIsNeverIndexedAgain() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try SweepFixture(directory: directory)
            do {
                let store = try await fixture.open()
                try await fixture.put(0..<8, in: store)
                await #expect(throws: SimulatedCrash.self) {
                    try await fixture.sweep(store, live: 0..<4, at: SweepFixture.start) { step in
                        if case .retired = step { throw SimulatedCrash() }
                    }
                }
            }
            // The pack is still stored; neither an open nor a rebuild offers its chunks again.
            #expect(try await fixture.backend.list(prefix: "packs/").count == 2)
            let store = try await fixture.open()
            #expect(try fixture.indexed(4..<8, in: store).isEmpty)
            let rebuild = try await store.rebuildIndex()
            #expect(rebuild.unreadablePacks.isEmpty)
            #expect(rebuild.packsIndexed == 1, "the retired pack is not counted as indexed")
            #expect(try fixture.indexed(4..<8, in: store).isEmpty)
            for number in 4..<8 { #expect(try store.claim(testID(number)), "never deduplicated against") }

            let report = try await fixture.sweep(store, live: 0..<4, at: SweepFixture.start + 60)
            #expect(report.deletedPacks == 1, "the next run deletes the leftover")
            #expect(try await fixture.backend.list(prefix: "packs/").count == 1)
        }
    }

    @Test func aFailedDeleteIsRetriedByTheNextRun() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try SweepFixture(directory: directory)
            let failing = DeleteRefusingBackend(fixture.backend)
            let index = try ChunkIndex(path: fixture.indexPath)
            let store = PackStore(backend: failing, index: index, metadataKey: fixture.key, targetPackSize: SweepFixture.packSize)
            try await fixture.put(0..<8, in: store)
            failing.isRefusing = true
            let first = try await fixture.sweep(store, live: 0..<4, at: SweepFixture.start)
            #expect(first.deletedPacks == 0)
            #expect(first.failures.count == 1)
            #expect(first.failures.values.first?.contains("cannot delete") == true)
            try await fixture.expectReadable(0..<4, in: store)
            failing.isRefusing = false
            let second = try await fixture.sweep(store, live: 0..<4, at: SweepFixture.start + 60)
            #expect(second.deletedPacks == 1)
            #expect(second.failures.isEmpty)
            #expect(try await fixture.backend.list(prefix: "packs/").count == 1)
        }
    }

    @Test func anUnreadablePackIsReportedAndTheRestIsRepacked() async throws {
        try await withTemporaryDirectory { directory in
            let fixture = try SweepFixture(directory: directory)
            let store = try await fixture.open()
            try await fixture.put(0..<8, in: store)
            let damaged = try #require(try store.index.location(of: testID(4))).packName
            // Truncate the second pack behind the index's back.
            try await fixture.backend.put(damaged, [1, 2, 3])
            let report = try await fixture.sweep(store, live: [0, 1, 4], at: SweepFixture.start)
            #expect(report.failures.keys.sorted() == [damaged])
            #expect(report.repackedPacks == 1)
            try await fixture.expectReadable([0, 1], in: store)
        }
    }

    @Test func optionsOutOfRangeAreRefused() async throws {
        let store = PackStore(backend: MemoryBackend(), index: try ChunkIndex(path: ":memory:"), metadataKey: .random(count: 32))
        let horizon = try await store.beginSweep()
        await #expect {
            try await store.sweep(live: [], horizon: horizon, options: SweepOptions(repackThreshold: 1.5))
        } throws: { ($0 as? PackError)?.code == .invalidArgument && "\($0)".contains("1.5") }
        await #expect {
            try await store.sweep(live: [], horizon: horizon, options: SweepOptions(grace: .seconds(-1)))
        } throws: { ($0 as? PackError)?.code == .invalidArgument && "\($0)".contains("grace") }
    }

    @Test func readSpansJoinNeighboursOnly() {
        func entry(_ offset: Int, _ length: Int) -> PackEntry {
            PackEntry(id: testID(offset), offset: offset, length: length, plaintextLength: length)
        }
        let spans = PackStore.readSpans([entry(100, 50), entry(0, 100), entry(200_000, 10), entry(150, 10)])
        #expect(spans.map(\.range) == [0..<160, 200_000..<200_010])
        #expect(spans.map(\.entries.count) == [3, 1])
    }
}

@Suite struct ChunkIndexUpgradeTests {
    @Test func aSchemaOneIndexIsUpgradedInPlace() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            do {
                let db = try SQLiteConnection(path: path)
                try db.execute(
                    """
                    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE packs(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind INTEGER NOT NULL, size INTEGER NOT NULL);
                    CREATE TABLE chunks(id BLOB PRIMARY KEY, pack INTEGER NOT NULL REFERENCES packs(id), offset INTEGER NOT NULL,
                        length INTEGER NOT NULL, plaintext_length INTEGER NOT NULL) WITHOUT ROWID;
                    INSERT INTO meta VALUES ('schema', '1');
                    INSERT INTO packs VALUES (1, 'packs/aa/old', 0, 500);
                    """)
                try db.prepare("INSERT INTO chunks VALUES (?, 1, 0, 100, 90)").run([.blob(testID(1).bytes)])
            }
            let index = try ChunkIndex(path: path)
            #expect(try index.contains(testID(1)))
            #expect(try index.location(of: testID(1)) == ChunkLocation(packName: "packs/aa/old", offset: 0, length: 100, plaintextLength: 90))
            #expect(try index.statistics().condemnedChunkCount == 0)
            let schema = try SQLiteConnection(path: path).prepare("SELECT value FROM meta WHERE key = 'schema'").rows()
            #expect(schema.first?.first == .text("4"))
        }
    }

    @Test func aNewerSchemaIsRefusedWithBothVersions() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            _ = try ChunkIndex(path: path)
            try SQLiteConnection(path: path).execute("UPDATE meta SET value = '5' WHERE key = 'schema'")
            #expect {
                try ChunkIndex(path: path)
            } throws: { error in
                guard let error = error as? PackError, error.code == .unsupportedFormat else { return false }
                return error.message.contains("schema 5") && error.message.contains("schema 4") && error.message.contains(path)
            }
        }
    }

    @Test func recordingAFreshCopyReplacesOnlyACondemnedEntry() async throws {
        let index = try ChunkIndex(path: ":memory:")
        let entry = PackEntry(id: testID(1), offset: 0, length: 10, plaintextLength: 10)
        try index.record(packName: "packs/aa/first", kind: .data, size: 100, entries: [entry])
        try index.record(packName: "packs/aa/second", kind: .data, size: 100, entries: [entry])
        #expect(try index.location(of: testID(1))?.packName == "packs/aa/first", "a visible entry keeps its place")

        let horizon = try index.sweepHorizon(at: SweepFixture.start)
        _ = try index.mark(live: [], horizon: horizon, now: 1, dryRun: false) { _ in () }
        #expect(try !index.contains(testID(1)))
        try index.record(packName: "packs/aa/third", kind: .data, size: 100, entries: [entry])
        #expect(try index.location(of: testID(1))?.packName == "packs/aa/third")
        #expect(try index.contains(testID(1)))
    }
}

struct SimulatedCrash: Error {}

