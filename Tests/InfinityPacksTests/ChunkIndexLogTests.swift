import Foundation
import InfinitySQLite
import InfinityTestSupport
import Testing

@testable import InfinityPacks

/// The chunk index logs new packs (one row each) and files their entries by id later, in bulk.
@Suite struct ChunkIndexLogTests {
    func entries(_ numbers: Range<Int>) -> [PackEntry] {
        numbers.map { PackEntry(id: testID($0), offset: ($0 - numbers.lowerBound) * 10, length: 10, plaintextLength: 20) }
    }

    func count(_ table: String, at path: String) throws -> Int64 {
        let rows = try SQLiteConnection(path: path).prepare("SELECT count(*) FROM \(table)").rows()
        guard case .integer(let count) = rows.first?[0] else { return -1 }
        return count
    }

    /// An index with chunks 0–9 filed (pack one) and 10–19 logged (pack two).
    func filedAndLogged(at path: String) throws -> ChunkIndex {
        let index = try ChunkIndex(path: path)
        try index.record(packName: "packs/aa/one", kind: .data, size: 1000, entries: entries(0..<10))
        _ = try index.statistics()  // files the first pack's entries
        try index.record(packName: "packs/aa/two", kind: .data, size: 1000, entries: entries(10..<20))
        return index
    }

    @Test func newPacksAreLoggedThenFiledAndFoundEitherWay() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try ChunkIndex(path: path)
            try index.record(packName: "packs/aa/one", kind: .metadata, size: 1000, entries: entries(0..<50))
            try index.record(packName: "packs/aa/two", kind: .data, size: 1000, entries: entries(50..<80))
            #expect(try count("recent_packs", at: path) == 2)
            #expect(try count("chunks", at: path) == 0)
            for number in [0, 49, 50, 79] { #expect(try index.contains(testID(number))) }
            #expect(try !index.contains(testID(80)))
            #expect(try index.location(of: testID(51)) == ChunkLocation(packName: "packs/aa/two", offset: 10, length: 10, plaintextLength: 20))
            #expect(try index.containsOwnData(testID(3)))

            // Statistics read the table as a whole: the log is filed first.
            let statistics = try index.statistics()
            #expect(statistics.chunkCount == 80 && statistics.storedBytes == 800 && statistics.plaintextBytes == 1600)
            #expect(try count("recent_packs", at: path) == 0)
            #expect(try count("chunks", at: path) == 80)
            #expect(try index.location(of: testID(51)) == ChunkLocation(packName: "packs/aa/two", offset: 10, length: 10, plaintextLength: 20))
            #expect(try index.entries(inPack: "packs/aa/one").count == 50)
        }
    }

    /// The lookup of many ids answers for each as the lookup of one does: logged and filed
    /// chunks are there, condemned, received and unknown ones are not, in the order given.
    /// What opening a store reads ahead: the newest packs of a kind, newest first, within a
    /// byte budget.
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

    @Test func ownDataLookupOfManyIds() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try filedAndLogged(at: path)
            try SQLiteConnection(path: path).prepare("UPDATE chunks SET condemned_ms = 1 WHERE id = ?").run([.blob(testID(2).bytes)])
            try index.markReceived([testID(3), testID(13)])
            let ids = [0, 2, 3, 12, 13, 25, 0].map(testID)
            let expected = [true, false, false, true, false, false, true]
            #expect(try index.containsOwnData(ids) == expected)
            #expect(try ids.map { try index.containsOwnData($0) } == expected, "one at a time, after the received copies were condemned")
            #expect(try index.containsOwnData([]) == [])
        }
    }

    /// The lookup of many locations answers for each as the lookup of one does.
    @Test func locationsOfManyIds() async throws {
        try await withTemporaryDirectory { directory in
            let index = try filedAndLogged(at: directory + "/index.sqlite")
            let ids = [3, 15, 42, 3].map(testID)
            let one = try ids.map { try index.location(of: $0) }
            #expect(try index.locations(of: ids) == one)
            #expect(one[0]?.packName == "packs/aa/one" && one[1]?.packName == "packs/aa/two" && one[2] == nil)
        }
    }

    @Test func aReopenedIndexReadsItsLog() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            try ChunkIndex(path: path).record(packName: "packs/aa/one", kind: .data, size: 1000, entries: entries(0..<10))
            let reopened = try ChunkIndex(path: path)
            #expect(try reopened.location(of: testID(4))?.packName == "packs/aa/one")
            #expect(try count("recent_packs", at: path) == 1)
        }
    }

    /// Two connections to one index (two processes, or two stores opened on one folder): each
    /// sees what the other logged, filed or deleted, and never answers from a stale copy.
    @Test func anotherConnectionSeesLoggedFiledAndDeletedPacks() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let first = try ChunkIndex(path: path)
            let second = try ChunkIndex(path: path)
            #expect(try !second.contains(testID(1)))
            try first.record(packName: "packs/aa/one", kind: .data, size: 1000, entries: entries(0..<10))
            #expect(try second.contains(testID(1)))
            #expect(try second.location(of: testID(2))?.packName == "packs/aa/one")

            _ = try second.statistics()  // files the log, first's entries included
            #expect(try count("recent_packs", at: path) == 0)
            #expect(try first.contains(testID(1)))
            try first.record(packName: "packs/aa/two", kind: .data, size: 1000, entries: entries(10..<20))
            #expect(try second.location(of: testID(15))?.packName == "packs/aa/two")

            // Every pack forgotten by one connection (a logged one included): the other agrees.
            try second.retainOnly(packs: [])
            for number in [1, 15] {
                #expect(try !first.contains(testID(number)))
                #expect(try first.location(of: testID(number)) == nil)
            }
        }
    }

    @Test func theFirstLoggedCopyWinsAndACondemnedFiledCopyGivesWay() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try ChunkIndex(path: path)
            let entry = PackEntry(id: testID(1), offset: 0, length: 10, plaintextLength: 10)
            try index.record(packName: "packs/aa/first", kind: .data, size: 100, entries: [entry])
            try index.record(packName: "packs/aa/second", kind: .data, size: 100, entries: [entry])
            #expect(try index.location(of: testID(1))?.packName == "packs/aa/first")
            _ = try index.statistics()
            #expect(try index.location(of: testID(1))?.packName == "packs/aa/first")

            // Condemned (as garbage collection does), then stored again in a new pack, still logged.
            try SQLiteConnection(path: path).execute("UPDATE chunks SET condemned_ms = 1")
            #expect(try !index.contains(testID(1)))
            #expect(try index.location(of: testID(1))?.packName == "packs/aa/first")  // still readable
            try index.record(packName: "packs/aa/third", kind: .data, size: 100, entries: [entry])
            #expect(try index.contains(testID(1)))
            #expect(try index.location(of: testID(1))?.packName == "packs/aa/third")
            _ = try index.statistics()
            #expect(try index.location(of: testID(1))?.packName == "packs/aa/third")
            #expect(try index.statistics().condemnedChunkCount == 0)
        }
    }

    @Test func theLogIsFiledOnceItHoldsEnoughEntries() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try ChunkIndex(path: path)
            let half = ChunkIndex.mergeThreshold / 2
            try index.record(packName: "packs/aa/one", kind: .data, size: 1 << 30, entries: entries(0..<half))
            #expect(try count("recent_packs", at: path) == 1)
            try index.record(packName: "packs/aa/two", kind: .data, size: 1 << 30, entries: entries(half..<(2 * half)))
            #expect(try count("recent_packs", at: path) == 0)
            #expect(try count("chunks", at: path) == Int64(2 * half))
            #expect(try index.location(of: testID(half + 7))?.packName == "packs/aa/two")
        }
    }

    /// A schema 2 index (no log) is upgraded in place, keeping what it holds.
    @Test func aSchemaTwoIndexIsUpgraded() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let index = try ChunkIndex(path: path)
            try index.record(packName: "packs/aa/one", kind: .data, size: 1000, entries: entries(0..<10))
            _ = try index.statistics()
            let db = try SQLiteConnection(path: path)
            try db.execute("DROP TABLE recent_packs; UPDATE meta SET value = '2' WHERE key = 'schema'")
            let upgraded = try ChunkIndex(path: path)
            #expect(try upgraded.contains(testID(3)))
            try upgraded.record(packName: "packs/aa/two", kind: .data, size: 1000, entries: entries(10..<20))
            #expect(try count("recent_packs", at: path) == 1)
            let schema = try db.prepare("SELECT value FROM meta WHERE key = 'schema'").rows()
            #expect(schema.first?.first == .text("3"))
        }
    }

    /// A connection can log its own pack right after another connection logged one it has not
    /// read yet (between its catch-up and its write): the next catch-up must read that earlier
    /// row too, not only rows after its own.
    @Test func aCopyCatchesUpWithARowLoggedBeforeItsOwn() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            _ = try ChunkIndex(path: path)
            let db = try SQLiteConnection(path: path)
            for (name, numbers) in [("packs/aa/one", 0..<5), ("packs/aa/two", 5..<10)] {
                try db.prepare("INSERT INTO packs(name, kind, size) VALUES (?, 0, 1000)").run([.text(name)])
                try db.prepare("INSERT INTO recent_packs(pack, entries) VALUES (?, ?)")
                    .run([.integer(db.lastInsertRowID), .blob(PackFormat.encodeTrailer(kind: .data, entries: entries(numbers)))])
            }
            var recent = RecentPacks()
            recent.add(row: 2, packName: "packs/aa/two", entries: entries(5..<10))
            try recent.refresh(db)
            #expect(recent.location(of: testID(1))?.packName == "packs/aa/one")
            #expect(recent.location(of: testID(6))?.packName == "packs/aa/two")
            #expect(recent.entryCount == 10)
        }
    }

    /// A damaged log row fails every lookup and every whole-table operation the same way, each
    /// time: never a silent answer from a copy that left the row out.
    @Test func aDamagedLogRowFailsEveryTimeAndIsNeverSkipped() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let reader = try ChunkIndex(path: path)
            let writer = try ChunkIndex(path: path)
            try writer.record(packName: "packs/aa/bad", kind: .data, size: 1000, entries: entries(0..<5))
            try writer.record(packName: "packs/aa/good", kind: .data, size: 1000, entries: entries(5..<10))
            try SQLiteConnection(path: path).execute(
                "UPDATE recent_packs SET entries = x'0100' WHERE pack = (SELECT id FROM packs WHERE name = 'packs/aa/bad')")
            for _ in 0..<2 {
                let error = #expect(throws: PackError.self) { try reader.contains(testID(7)) }
                #expect(error?.description.contains("log of recent packs holds a damaged row") == true)
                #expect(throws: PackError.self) { try reader.statistics() }
                #expect(throws: PackError.self) { try reader.sweepHorizon(at: Date()) }
            }
            // Opening the index reports it as SQLite reports a corrupt database, so that a store
            // sets it aside and rebuilds it from the packs.
            let opening = #expect(throws: PackError.self) { try ChunkIndex(path: path) }
            #expect((opening?.cause as? SQLiteError)?.primaryCode == SQLiteError.corrupt)
        }
    }

    /// Garbage collection on one connection files what another logged: a logged pack is never
    /// condemned or retired for lack of chunks.
    @Test func aSweepOnAnotherConnectionFilesTheLogFirst() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/index.sqlite"
            let writer = try ChunkIndex(path: path)
            let collector = try ChunkIndex(path: path)
            try writer.record(packName: "packs/aa/live", kind: .data, size: 1000, entries: entries(0..<10))
            try writer.record(packName: "packs/aa/dead", kind: .data, size: 1000, entries: entries(10..<20))
            let horizon = try collector.sweepHorizon(at: Date())
            let (outcome, _) = try collector.mark(live: (0..<10).map(testID), horizon: horizon, now: 1, dryRun: false) { _ in () }
            #expect(outcome.missingCount == 0)
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
