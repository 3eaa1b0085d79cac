import Foundation
import InfinitySQLite
import InfinityTestSupport
import Testing

@testable import InfinityPacks

/// The chunk index keeps a row per chunk, by pack, and finds ids through runs (sorted lists
/// written once, merged in tiers) and, for packs no run lists yet, through memory.
@Suite struct ChunkIndexRunsTests {
    /// Runs of 100 entries: tiers are reached with a few hundred chunks.
    static let threshold = 100

    func entries(_ numbers: Range<Int>) -> [PackEntry] {
        numbers.map { PackEntry(id: testID($0), offset: ($0 - numbers.lowerBound) * 10, length: 10, plaintextLength: 20) }
    }

    func count(_ table: String, at path: String, where condition: String = "1") throws -> Int64 {
        let rows = try SQLiteConnection(path: path).prepare("SELECT count(*) FROM \(table) WHERE \(condition)").rows()
        guard case .integer(let count) = rows.first?[0] else { return -1 }
        return count
    }

    /// An index with chunks 0–99 listed in a run (pack one) and 100–109 unlisted (pack two).
    func listedAndUnlisted(at path: String) throws -> ChunkIndex {
        let index = try ChunkIndex(path: path, runThreshold: Self.threshold)
        try index.record(packName: "packs/aa/one", kind: .data, size: 1000, entries: entries(0..<100))
        try index.record(packName: "packs/aa/two", kind: .data, size: 1000, entries: entries(100..<110))
        return index
    }

    @Test func packsAreListedInARunOnceEnoughChunksGatherAndFoundEitherWay() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try ChunkIndex(path: path, runThreshold: Self.threshold)
            try index.record(packName: "packs/aa/one", kind: .metadata, size: 1000, entries: entries(0..<50))
            try index.record(packName: "packs/aa/two", kind: .data, size: 1000, entries: entries(50..<80))
            #expect(try count("chunks", at: path) == 80)
            #expect(try count("unlisted_packs", at: path) == 2)
            #expect(try count("runs", at: path) == 0)
            try index.record(packName: "packs/aa/three", kind: .data, size: 1000, entries: entries(80..<120))
            #expect(try count("unlisted_packs", at: path) == 0)
            #expect(try count("runs", at: path, where: "entry_count = 120") == 1)
            try index.record(packName: "packs/aa/four", kind: .data, size: 1000, entries: entries(120..<130))

            for number in [0, 49, 50, 79, 80, 119, 120, 129] { #expect(try index.contains(testID(number))) }
            #expect(try !index.contains(testID(130)))
            #expect(try index.location(of: testID(51)) == ChunkLocation(packName: "packs/aa/two", offset: 10, length: 10, plaintextLength: 20))
            #expect(try index.location(of: testID(121)) == ChunkLocation(packName: "packs/aa/four", offset: 10, length: 10, plaintextLength: 20))
            #expect(try index.containsOwnData(testID(3)))
            let statistics = try index.statistics()
            #expect(statistics.chunkCount == 130 && statistics.storedBytes == 1300 && statistics.plaintextBytes == 2600)
            #expect(try index.entries(inPack: "packs/aa/one").count == 50)

            // A reopened index reads its runs and its unlisted packs.
            let reopened = try ChunkIndex(path: path, runThreshold: Self.threshold)
            #expect(try reopened.location(of: testID(60))?.packName == "packs/aa/two")
            #expect(try reopened.location(of: testID(125))?.packName == "packs/aa/four")
            #expect(try !reopened.contains(testID(1000)))
        }
    }

    /// Runs of a tier are merged four at a time into one of the next tier, and the merge leaves
    /// out chunks of retired packs; every chunk is found throughout.
    @Test func runsMergeInTiersAndDropRetiredPacks() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try ChunkIndex(path: path, runThreshold: Self.threshold)
            for pack in 0..<3 {
                try index.record(packName: "packs/aa/\(pack)", kind: .data, size: 10_000, entries: entries(pack * 100..<pack * 100 + 100))
            }
            #expect(try count("runs", at: path) == 3)
            // Another connection that knows these three runs, to look up after they are merged.
            let other = try ChunkIndex(path: path, runThreshold: Self.threshold)
            #expect(try other.contains(testID(250)))
            // Pack 1 is deleted by garbage collection: condemned, then retired.
            let horizon = try index.sweepHorizon(at: Date())
            let live = (0..<100).map(testID) + (200..<300).map(testID)
            _ = try index.mark(live: live, horizon: horizon, now: 1, dryRun: false) { _ in () }
            for pack in try index.condemnedPacks() { #expect(try index.retire(packRow: pack.row, condemnedNoLaterThan: 1) != nil) }
            #expect(try !index.contains(testID(150)) && index.location(of: testID(150)) == nil)

            try index.record(packName: "packs/aa/3", kind: .data, size: 10_000, entries: entries(300..<400))
            #expect(try count("runs", at: path) == 1)
            #expect(try count("runs", at: path, where: "entry_count = 300") == 1, "pack 1's chunks are left out")
            for number in [0, 99, 200, 299, 300, 399] {
                #expect(try index.location(of: testID(number))?.packName == "packs/aa/\(number / 100)")
            }
            #expect(try !index.contains(testID(150)))
            for number in [0, 250, 399] { #expect(try other.location(of: testID(number))?.packName == "packs/aa/\(number / 100)") }

            // Smaller than four runs of the threshold, the merged run stays in tier 0 and is
            // merged again with three more.
            for pack in 4..<7 {
                try index.record(packName: "packs/aa/\(pack)", kind: .data, size: 10_000, entries: entries(pack * 100..<pack * 100 + 100))
            }
            #expect(try count("runs", at: path) == 1)
            #expect(try count("runs", at: path, where: "entry_count = 600") == 1)
            // Three runs of tier 0 beside one of tier 1: no merge across tiers.
            for pack in 7..<10 {
                try index.record(packName: "packs/aa/\(pack)", kind: .data, size: 10_000, entries: entries(pack * 100..<pack * 100 + 100))
            }
            #expect(try count("runs", at: path) == 4)
            for number in [0, 450, 699, 999] { #expect(try index.contains(testID(number))) }
            #expect(try !index.contains(testID(150)))
        }
    }

    /// A run that fails to be written (here SQLite refuses its blocks, as a full disk would)
    /// leaves its packs unlisted and every chunk found, and the pack that called for it recorded.
    /// It is not tried again before another quarter of the threshold has gathered.
    @Test func aRunThatFailsLeavesItsPacksUnlistedAndWaitsBeforeTryingAgain() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try ChunkIndex(path: path, runThreshold: Self.threshold)
            let db = try SQLiteConnection(path: path)
            try db.execute("CREATE TRIGGER refuse BEFORE INSERT ON run_blocks BEGIN SELECT RAISE(ABORT, 'no room'); END")
            #expect(try index.record(packName: "packs/aa/one", kind: .data, size: 1000, entries: entries(0..<100)))
            #expect(try count("runs", at: path) == 0 && count("unlisted_packs", at: path) == 1)
            #expect(try index.location(of: testID(42))?.packName == "packs/aa/one")

            try db.execute("DROP TRIGGER refuse")
            try index.record(packName: "packs/aa/two", kind: .data, size: 1000, entries: entries(100..<110))
            #expect(try count("runs", at: path) == 0, "110 chunks: not yet 100 + 25")
            try index.record(packName: "packs/aa/three", kind: .data, size: 1000, entries: entries(110..<130))
            #expect(try count("runs", at: path) == 1 && count("unlisted_packs", at: path) == 0)
            for number in [0, 42, 105, 129] { #expect(try index.contains(testID(number)), "chunk \(number)") }
        }
    }

    /// A merge that fails after its new run was written (here SQLite refuses to delete the runs
    /// it merges) rolls everything back, and the connection forgets the run it had begun: another
    /// connection's run may then take its id, and must be read for what it is.
    @Test func aConnectionForgetsARunThatRolledBack() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let first = try ChunkIndex(path: path, runThreshold: Self.threshold)
            let second = try ChunkIndex(path: path, runThreshold: Self.threshold)
            for pack in 0..<3 {
                try first.record(packName: "packs/aa/\(pack)", kind: .data, size: 10_000, entries: entries(pack * 100..<pack * 100 + 100))
            }
            let db = try SQLiteConnection(path: path)
            try db.execute("CREATE TRIGGER refuse BEFORE DELETE ON runs BEGIN SELECT RAISE(ABORT, 'no room'); END")
            // Run 4 is written, then the merge of runs 1-4 fails: all of it rolls back.
            #expect(try first.record(packName: "packs/aa/3", kind: .data, size: 10_000, entries: entries(300..<400)))
            #expect(try count("runs", at: path) == 3)
            try db.execute("DROP TRIGGER refuse")

            // The second connection lists 400 chunks as run 4 again: tier 1, so nothing merges.
            try second.record(packName: "packs/aa/big", kind: .data, size: 10_000, entries: entries(1000..<1300))
            #expect(try db.prepare("SELECT id, entry_count FROM runs ORDER BY id").rows().last == [.integer(4), .integer(400)])
            for number in [0, 350, 1150, 1299] { #expect(try first.contains(testID(number)), "chunk \(number)") }
        }
    }

    /// Runs are ordered by the first 8 bytes of the id, then the pack: two ids that share those
    /// bytes, the smaller one in the later pack, are listed and found (as an upgrade lists them).
    @Test func idsSharingTheirFirstEightBytesAreListedInRunOrder() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let prefix = Array(testID(1).bytes.prefix(8))
            let low = ChunkID(bytes: prefix + Array(repeating: 0x00, count: 24))!
            let high = ChunkID(bytes: prefix + Array(repeating: 0xFF, count: 24))!
            let index = try ChunkIndex(path: path, runThreshold: 2)
            try index.record(packName: "packs/aa/one", kind: .data, size: 100, entries: [PackEntry(id: high, offset: 0, length: 10, plaintextLength: 10)])
            try index.record(packName: "packs/aa/two", kind: .data, size: 100, entries: [PackEntry(id: low, offset: 0, length: 10, plaintextLength: 10)])
            #expect(try count("runs", at: path) == 1)
            let db = try SQLiteConnection(path: path)
            try db.transaction { try ChunkIndex.rebuildRuns(db) }
            let reopened = try ChunkIndex(path: path)
            #expect(try reopened.location(of: high)?.packName == "packs/aa/one")
            #expect(try reopened.location(of: low)?.packName == "packs/aa/two")
        }
    }

    /// A received chunk whose only row is condemned is unmarked when the owner's writer meets it,
    /// so the owner's own copy, stored next, is not taken for a forged one later.
    @Test func aReceivedChunkWithOnlyACondemnedRowIsUnmarked() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try ChunkIndex(path: path)
            try index.record(packName: "packs/aa/forged", kind: .data, size: 100, entries: entries(0..<1))
            try index.markReceived([testID(0)])
            try SQLiteConnection(path: path).execute("UPDATE chunks SET condemned_ms = 1")
            #expect(try !index.containsOwnData(testID(0)))
            #expect(try count("received", at: path) == 0)
            try index.record(packName: "packs/aa/own", kind: .data, size: 100, entries: entries(0..<1))
            #expect(try index.containsOwnData([testID(0)]) == [true])
            #expect(try index.location(of: testID(0))?.packName == "packs/aa/own")
        }
    }

    @Test func newestPacksOfAKindWithinABudget() async throws {
        let index = try ChunkIndex(path: ":memory:")
        for number in 0..<5 {
            try index.record(
                packName: "packs/aa/metadata-\(number)", kind: .metadata, size: 1000 + number, entries: entries(number * 10..<number * 10 + 10))
            try index.record(packName: "packs/bb/data-\(number)", kind: .data, size: 5000, entries: entries(100 + number * 10..<110 + number * 10))
        }
        #expect(try index.newestPacks(of: .metadata, upTo: 3009) == ["packs/aa/metadata-4", "packs/aa/metadata-3", "packs/aa/metadata-2"])
        #expect(try index.newestPacks(of: .metadata, upTo: 3008) == ["packs/aa/metadata-4", "packs/aa/metadata-3"])
        #expect(try index.newestPacks(of: .metadata, upTo: 1003) == [])
        #expect(try index.newestPacks(of: .data, upTo: 1 << 20).count == 5)
    }

    /// The lookup of many ids answers for each as the lookup of one does: listed and unlisted
    /// chunks are there, condemned, received and unknown ones are not, in the order given.
    @Test func ownDataLookupOfManyIds() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try listedAndUnlisted(at: path)
            try SQLiteConnection(path: path).prepare("UPDATE chunks SET condemned_ms = 1 WHERE id = ?").run([.blob(testID(2).bytes)])
            try index.markReceived([testID(3), testID(103)])
            let ids = [0, 2, 3, 102, 103, 125, 0].map(testID)
            let expected = [true, false, false, true, false, false, true]
            #expect(try index.containsOwnData(ids) == expected)
            #expect(try ids.map { try index.containsOwnData($0) } == expected, "one at a time, after the received copies were condemned")
            #expect(try index.containsOwnData([]) == [])
            #expect(try count("chunks", at: path, where: "condemned_ms IS NOT NULL") == 3)
        }
    }

    /// The lookup of many locations answers for each as the lookup of one does.
    @Test func locationsOfManyIds() async throws {
        try await withTemporaryDirectory { directory in
            let index = try listedAndUnlisted(at: directory + "/index.sqlite")
            let ids = [3, 105, 420, 3].map(testID)
            let one = try ids.map { try index.location(of: $0) }
            #expect(try index.locations(of: ids) == one)
            #expect(one[0]?.packName == "packs/aa/one" && one[1]?.packName == "packs/aa/two" && one[2] == nil)
        }
    }

    /// Two connections to one index (two processes, or two stores opened on one folder): each
    /// sees what the other recorded, listed, moved or deleted, and never answers from a stale view.
    @Test func anotherConnectionSeesRecordedListedMovedAndDeletedPacks() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let first = try ChunkIndex(path: path, runThreshold: Self.threshold)
            let second = try ChunkIndex(path: path, runThreshold: Self.threshold)
            #expect(try !second.contains(testID(1)))
            try first.record(packName: "packs/aa/one", kind: .data, size: 1000, entries: entries(0..<10))
            #expect(try second.contains(testID(1)))
            #expect(try second.location(of: testID(2))?.packName == "packs/aa/one")

            // The second lists both connections' chunks in a run.
            try second.record(packName: "packs/aa/two", kind: .data, size: 1000, entries: entries(10..<100))
            #expect(try count("runs", at: path) == 1)
            #expect(try first.location(of: testID(5))?.packName == "packs/aa/one")
            #expect(try first.location(of: testID(50))?.packName == "packs/aa/two")

            // The first moves chunks 0–4 into a new pack (as a repack does).
            let copies = (0..<5).map { PackEntry(id: testID($0), offset: $0 * 10, length: 10, plaintextLength: 20) }
            let sources = try SQLiteConnection(path: path).prepare("SELECT id FROM packs WHERE name = 'packs/aa/one'").rows()
            guard case .integer(let source) = sources.first?[0] else { Issue.record("no pack row"); return }
            try first.recordCopies(
                packName: "packs/aa/copies", kind: .data, size: 1000, entries: copies,
                sources: Dictionary(uniqueKeysWithValues: copies.map { ($0.id, source) }), now: 1)
            #expect(try second.location(of: testID(3))?.packName == "packs/aa/copies")
            #expect(try second.location(of: testID(7))?.packName == "packs/aa/one")

            // Every pack forgotten by one connection (an unlisted one included): the other agrees.
            try second.retainOnly(packs: [])
            for number in [1, 7, 15] {
                #expect(try !first.contains(testID(number)))
                #expect(try first.location(of: testID(number)) == nil)
            }
        }
    }

    /// A connection whose view is stale records a chunk another connection recorded a moment
    /// before: the record looks again inside its transaction, so the chunk keeps one visible row.
    @Test func aChunkRecordedOnTwoConnectionsKeepsOneVisibleRow() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let first = try ChunkIndex(path: path)
            let second = try ChunkIndex(path: path)
            #expect(try !second.contains(testID(1)))  // the second's view is now current, then stale
            try first.record(packName: "packs/aa/first", kind: .data, size: 100, entries: entries(0..<3))
            try second.record(packName: "packs/aa/second", kind: .data, size: 100, entries: entries(1..<4))
            #expect(try count("chunks", at: path, where: "id = x'\(testID(1).description)'") == 1)
            #expect(try second.location(of: testID(1))?.packName == "packs/aa/first")
            #expect(try first.location(of: testID(3))?.packName == "packs/aa/second")
        }
    }

    @Test func theFirstCopyWinsAndACondemnedCopyGivesWay() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try ChunkIndex(path: path, runThreshold: 2)
            let entry = PackEntry(id: testID(1), offset: 0, length: 10, plaintextLength: 10)
            try index.record(packName: "packs/aa/first", kind: .data, size: 100, entries: [entry])
            try index.record(packName: "packs/aa/second", kind: .data, size: 100, entries: [entry, entries(5..<6)[0]])
            #expect(try index.location(of: testID(1))?.packName == "packs/aa/first")
            #expect(try count("chunks", at: path) == 2, "the second copy is not recorded")
            #expect(try count("runs", at: path) == 1)

            // Condemned (as garbage collection does), then stored again in a new pack.
            try SQLiteConnection(path: path).execute("UPDATE chunks SET condemned_ms = 1")
            #expect(try !index.contains(testID(1)))
            #expect(try index.location(of: testID(1))?.packName == "packs/aa/first")  // still readable
            try index.record(packName: "packs/aa/third", kind: .data, size: 100, entries: [entry])
            #expect(try index.contains(testID(1)))
            #expect(try index.location(of: testID(1))?.packName == "packs/aa/third")
            #expect(try index.statistics().condemnedChunkCount == 2)

            // Reachable again: the new copy stays the visible one, the condemned one is not revived.
            let horizon = try index.sweepHorizon(at: Date())
            let (outcome, _) = try index.mark(live: [testID(1)], horizon: horizon, now: 2, dryRun: false) { _ in () }
            #expect(outcome.revivedChunks == 0)
            #expect(try count("chunks", at: path, where: "condemned_ms IS NULL") == 1)
            #expect(try index.location(of: testID(1))?.packName == "packs/aa/third")
        }
    }

    /// A reachable chunk whose rows are all condemned gets one of them back: the one recorded
    /// last, which readers use (the owner's copy, rather than a forged one it condemned).
    @Test func aMarkRevivesOneCondemnedRow() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try ChunkIndex(path: path)
            let entry = PackEntry(id: testID(1), offset: 0, length: 10, plaintextLength: 10)
            try index.record(packName: "packs/aa/first", kind: .data, size: 100, entries: [entry])
            try SQLiteConnection(path: path).execute("UPDATE chunks SET condemned_ms = 1")
            try index.record(packName: "packs/aa/second", kind: .data, size: 100, entries: [entry])
            try SQLiteConnection(path: path).execute("UPDATE chunks SET condemned_ms = 1")
            let horizon = try index.sweepHorizon(at: Date())
            let (outcome, _) = try index.mark(live: [testID(1)], horizon: horizon, now: 2, dryRun: false) { _ in () }
            #expect(outcome.revivedChunks == 1)
            #expect(try index.location(of: testID(1))?.packName == "packs/aa/second")
            #expect(try count("chunks", at: path, where: "condemned_ms IS NULL") == 1)
        }
    }

    /// An index in the layout of `schema` (2 or 3; 3 adds the log of recent packs), with packs
    /// 1 (`packs/aa/filed`) and 2 (`packs/aa/logged`) and no chunks.
    func olderIndex(at path: String, schema: Int) throws -> SQLiteConnection {
        let db = try SQLiteConnection(path: path)
        try db.execute(
            """
            CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema', '\(schema)');
            CREATE TABLE packs(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind INTEGER NOT NULL,
                size INTEGER NOT NULL, condemned_ms INTEGER, retired INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE chunks(id BLOB PRIMARY KEY, pack INTEGER NOT NULL REFERENCES packs(id), offset INTEGER NOT NULL,
                length INTEGER NOT NULL, plaintext_length INTEGER NOT NULL, condemned_ms INTEGER) WITHOUT ROWID;
            CREATE INDEX chunks_by_pack ON chunks(pack);
            CREATE TABLE received(id BLOB PRIMARY KEY) WITHOUT ROWID;
            INSERT INTO packs(id, name, kind, size) VALUES (1, 'packs/aa/filed', 0, 1000), (2, 'packs/aa/logged', 0, 1000);
            """)
        if schema == 3 {
            try db.execute("CREATE TABLE recent_packs(row INTEGER PRIMARY KEY AUTOINCREMENT, pack INTEGER NOT NULL, entries BLOB NOT NULL)")
        }
        return db
    }

    /// Older schemas are upgraded in place: schema 3's rows by id and its log of recent packs
    /// become rows by pack, listed in one run; a logged copy of a chunk filed visible is dropped,
    /// one of a chunk filed condemned is kept.
    @Test(arguments: [2, 3]) func anOlderSchemaIsUpgraded(schema: Int) async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let db = try olderIndex(at: path, schema: schema)
            let insert = try db.prepare("INSERT INTO chunks VALUES (?, 1, ?, 10, 20, ?)")
            for number in 0..<10 {
                try insert.run([.blob(testID(number).bytes), .integer(Int64(number * 10)), number == 1 ? .integer(5) : .null])
            }
            if schema == 3 {
                // Chunk 0 is filed visible (its logged copy is dropped), chunk 1 filed condemned
                // (its logged copy is kept), 10–14 only logged.
                try db.prepare("INSERT INTO recent_packs(pack, entries) VALUES (2, ?)")
                    .run([.blob(PackFormat.encodeTrailer(kind: .data, entries: entries(0..<2) + entries(10..<15)))])
            }
            let upgraded = try ChunkIndex(path: path)
            #expect(try db.prepare("SELECT value FROM meta WHERE key = 'schema'").rows().first?.first == .text("4"))
            #expect(try upgraded.location(of: testID(0))?.packName == "packs/aa/filed")
            #expect(try upgraded.location(of: testID(7)) == ChunkLocation(packName: "packs/aa/filed", offset: 70, length: 10, plaintextLength: 20))
            #expect(try upgraded.contains(testID(1)) == (schema == 3))
            #expect(try upgraded.location(of: testID(1))?.packName == (schema == 3 ? "packs/aa/logged" : "packs/aa/filed"))
            #expect(try upgraded.contains(testID(12)) == (schema == 3))
            #expect(try count("chunks", at: path) == (schema == 3 ? 16 : 10))
            #expect(try count("runs", at: path) == 1)
            let tables = try db.prepare("SELECT name FROM sqlite_master WHERE name IN ('recent_packs', 'chunks_by_id', 'chunks_by_pack')").rows()
            #expect(tables.isEmpty)
            try upgraded.record(packName: "packs/aa/new", kind: .data, size: 1000, entries: entries(20..<25))
            #expect(try ChunkIndex(path: path).location(of: testID(22))?.packName == "packs/aa/new")
        }
    }

    /// A schema 3 index whose log holds a row that does not decode is not upgraded: the open fails
    /// as SQLite reports a corrupt database (so a store rebuilds the index), and the old tables are
    /// left as they were.
    @Test func anUpgradeRefusesADamagedLog() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let db = try olderIndex(at: path, schema: 3)
            try db.execute("INSERT INTO recent_packs(pack, entries) VALUES (2, x'0100')")
            let opening = #expect(throws: PackError.self) { try ChunkIndex(path: path) }
            #expect((opening?.cause as? SQLiteError)?.primaryCode == SQLiteError.corrupt)
            #expect(opening?.description.contains("log of recent packs") == true)
            #expect(try db.prepare("SELECT value FROM meta WHERE key = 'schema'").rows().first?.first == .text("3"))
            #expect(try count("recent_packs", at: path) == 1)
        }
    }

    /// A damaged run fails every lookup that reads it, each time, and a damaged run row fails
    /// the open as SQLite reports a corrupt database (so a store rebuilds the index): never a
    /// silent answer that leaves chunks out.
    @Test func aDamagedRunFailsEveryTimeAndIsNeverSkipped() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try listedAndUnlisted(at: path)
            try SQLiteConnection(path: path).execute("UPDATE run_blocks SET entries = x'0100'")
            for _ in 0..<2 {
                let error = #expect(throws: PackError.self) { try index.contains(testID(7)) }
                #expect(error?.description.contains("is damaged") == true)
            }
            #expect(try index.contains(testID(105)), "an unlisted chunk needs no run")

            try SQLiteConnection(path: path).execute("UPDATE runs SET filter = x'01'")
            let opening = #expect(throws: PackError.self) { try ChunkIndex(path: path) }
            #expect((opening?.cause as? SQLiteError)?.primaryCode == SQLiteError.corrupt)
        }
    }

    /// Garbage collection on one connection sees what another recorded: a recorded pack is never
    /// condemned or retired for lack of chunks.
    @Test func aSweepOnAnotherConnectionSeesEveryRecordedPack() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let writer = try ChunkIndex(path: path)
            let collector = try ChunkIndex(path: path)
            try writer.record(packName: "packs/aa/live", kind: .data, size: 1000, entries: entries(0..<10))
            try writer.record(packName: "packs/aa/dead", kind: .data, size: 1000, entries: entries(10..<20))
            let horizon = try collector.sweepHorizon(at: Date())
            let (outcome, _) = try collector.mark(live: (0..<10).map(testID) + [testID(99)], horizon: horizon, now: 1, dryRun: false) { _ in () }
            #expect(outcome.missingCount == 1 && outcome.missingSample == [testID(99)])
            #expect(outcome.condemnedChunks == 10)
            #expect(outcome.condemnedPacks == 1)
            let condemned = try collector.condemnedPacks()
            #expect(condemned.map(\.name) == ["packs/aa/dead"])
            for pack in condemned { #expect(try collector.retire(packRow: pack.row, condemnedNoLaterThan: 1) != nil) }
            #expect(try writer.contains(testID(3)))
            #expect(try !writer.contains(testID(13)))
            #expect(try writer.location(of: testID(13)) == nil)
        }
    }
}
