import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks
import InfinitySQLite
import InfinityTestSupport
import Testing

@testable import InfinityHistory

@Suite struct RefStoreTests {
    let metadataKey = SecureBytes.random(count: 32)
    let agent = try! makeAgentKeys().identity(name: "alice").id
    let main = RefName.main

    func memoryStore(clock: ManualClock = ManualClock()) throws -> RefStore {
        try RefStore(path: ":memory:", metadataKey: metadataKey, clock: { clock.now })
    }

    /// Reflog messages are sealed: the database keeps only their kind in clear, the reflog reads
    /// them whole, and a message moved to another entry does not open.
    @Test func reflogMessagesAreSealed() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/refs.sqlite"
            let refs = try RefStore(path: path, metadataKey: metadataKey)
            try refs.update(main, to: fakeRef(1), expected: nil, agent: agent, message: "commit: the plans for Tuesday")
            try refs.update(main, to: fakeRef(2), expected: fakeRef(1).id, agent: agent, message: "accept: main from bob")
            #expect(try refs.reflog(main, limit: 10).map(\.message) == ["accept: main from bob", "commit: the plans for Tuesday"])

            let outside = try SQLiteConnection(path: path)
            let clear = try outside.prepare("SELECT message FROM reflog WHERE ref = 'refs/heads/main' ORDER BY seq").rows().map(\.[0])
            #expect(clear == [.text("commit"), .text("accept")])
            // An older build's entry, message in clear, still reads.
            try outside.execute(
                "INSERT INTO reflog(ref, old_id, new_id, new_sealed, time_ms, agent, message) SELECT ref, new_id, NULL, NULL, time_ms, agent, 'delete: by hand' FROM reflog WHERE message = 'accept' AND ref = 'refs/heads/main'")
            #expect(try refs.reflog(main, limit: 1).map(\.message) == ["delete: by hand"])
            // Swapping sealed messages between entries is caught.
            try outside.execute("DROP TRIGGER reflog_rows_are_never_updated")
            try outside.execute(
                """
                UPDATE reflog SET message_sealed = (SELECT message_sealed FROM reflog WHERE message = 'commit' AND ref = 'refs/heads/main')
                WHERE message = 'accept' AND ref = 'refs/heads/main'
                """)
            #expect { try refs.reflog(main, limit: 10) } throws: { isHistoryError($0, .corrupt, mentioning: "reflog entry", "sealed message") }

            // A database from before the column gains it on open; its entries read as stored.
            try outside.execute("ALTER TABLE reflog DROP COLUMN message_sealed")
            let upgraded = try RefStore(path: path, metadataKey: metadataKey)
            #expect(try upgraded.reflog(main, limit: 10).map(\.message) == ["delete: by hand", "accept", "commit"])
        }
    }

    @Test func createMoveListAndDelete() throws {
        let refs = try memoryStore()
        #expect(try refs.head() == .branch(.main))
        #expect(try refs.ref(main) == nil)
        try refs.update(main, to: fakeRef(1), expected: nil, agent: agent, message: "first commit")
        #expect(try refs.ref(main) == fakeRef(1))
        try refs.update(main, to: fakeRef(2), expected: fakeRef(1).id, agent: agent, message: "second")
        #expect(try refs.ref(main) == fakeRef(2))
        #expect(try refs.ref(.head) == fakeRef(2), "HEAD is on main")

        let dev = try RefName.branch("dev")
        let tag = try RefName.tag("v1")
        let bobs = try RefName.agent("bob", branch: "main")
        try refs.update(dev, to: fakeRef(3), expected: nil, agent: agent, message: "branch")
        try refs.update(tag, to: fakeRef(1), expected: nil, agent: agent, message: "tag")
        try refs.update(bobs, to: fakeRef(4), expected: nil, agent: agent, message: "accept")
        #expect(try refs.refs(kind: .branch).map(\.0) == [dev, main])
        #expect(try refs.refs(kind: .branch).map(\.1) == [fakeRef(3), fakeRef(2)])
        #expect(try refs.refs(kind: .tag).map(\.0) == [tag])
        #expect(try refs.refs(kind: .agent).map(\.0) == [bobs])
        #expect(try refs.refs().map(\.0) == [bobs, dev, main, tag])
        #expect(try refs.refs(kind: .head).map(\.1) == [fakeRef(2)])

        try refs.update(dev, to: nil, expected: fakeRef(3).id, agent: agent, message: "delete dev")
        #expect(try refs.ref(dev) == nil)
        let log = try refs.reflog(dev, limit: 10)
        #expect(log.count == 2, "deleting a branch keeps its reflog")
        #expect(log[0].oldID == fakeRef(3).id)
        #expect(log[0].new == nil)
        #expect(log[0].message == "delete dev")
        #expect(log[1].new == fakeRef(3))
        #expect(log[1].oldID == nil)
        #expect(log[1].agent == agent)
    }

    @Test func compareAndSwapConflictNamesRefAndIDs() throws {
        let refs = try memoryStore()
        try refs.update(main, to: fakeRef(1), expected: nil, agent: agent, message: "one")
        // Two writers both read fakeRef(1) and try to move on from it.
        try refs.update(main, to: fakeRef(2), expected: fakeRef(1).id, agent: agent, message: "writer A")
        #expect {
            try refs.update(main, to: fakeRef(3), expected: fakeRef(1).id, agent: agent, message: "writer B")
        } throws: {
            isHistoryError($0, .conflict, mentioning: "refs/heads/main", fakeRef(1).id.shortDescription, fakeRef(2).id.shortDescription)
        }
        #expect(try refs.ref(main) == fakeRef(2))
        #expect {
            try refs.update(main, to: fakeRef(3), expected: nil, agent: agent, message: "create again")
        } throws: { isHistoryError($0, .conflict, mentioning: "refs/heads/main") }
        #expect(try refs.reflog(main, limit: 10).map(\.message) == ["writer A", "one"], "failed updates log nothing")
        #expect { try refs.update(.head, to: fakeRef(1), expected: nil, agent: agent, message: "") } throws: {
            isHistoryError($0, .invalidArgument, mentioning: "HEAD")
        }
    }

    /// Two tasks race from the same expected value, round after round: through one store (its
    /// lock), or through two stores on one file (SQLite's file locks, as two processes would).
    @Test(arguments: [false, true])
    func racingWritersExactlyOneWinsEachRound(throughTwoConnections: Bool) async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/refs.sqlite"
            let first = try RefStore(path: path, metadataKey: metadataKey)
            let stores = [first, throughTwoConnections ? try RefStore(path: path, metadataKey: metadataKey) : first]
            try stores[0].update(main, to: fakeRef(0), expected: nil, agent: agent, message: "start")
            let rounds = 40
            var winners: [ChunkRef] = []
            for round in 1...rounds {
                let expected = try #require(try stores[0].ref(main)).id
                let outcomes = await withTaskGroup(of: ChunkRef?.self) { group in
                    for writer in 0..<2 {
                        let candidate = fakeRef(round * 10 + writer)
                        group.addTask {
                            do {
                                try stores[writer].update(
                                    main, to: candidate, expected: expected, agent: agent, message: "round \(round) writer \(writer)")
                                return candidate
                            } catch let error as HistoryError where error.code == .conflict {
                                return nil
                            } catch {
                                Issue.record(error)
                                return nil
                            }
                        }
                    }
                    var won: [ChunkRef] = []
                    for await outcome in group { if let outcome { won.append(outcome) } }
                    return won
                }
                #expect(outcomes.count == 1, "round \(round): exactly one writer wins")
                winners += outcomes
                #expect(try stores[1].ref(main) == outcomes.first)
            }
            let log = try stores[1].reflog(main, limit: 1000)
            #expect(log.count == rounds + 1)
            #expect(log.dropLast().map(\.new).reversed() == winners.map(Optional.some), "the reflog has every win, in order")
            for (newer, older) in zip(log, log.dropFirst()) {
                #expect(newer.oldID == older.new?.id, "each change starts where the previous one ended")
            }
        }
    }

    @Test func reflogIsAppendOnly() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/refs.sqlite"
            let refs = try RefStore(path: path, metadataKey: metadataKey)
            try refs.update(main, to: fakeRef(1), expected: nil, agent: agent, message: "one")
            try refs.update(main, to: nil, expected: fakeRef(1).id, agent: agent, message: "delete")
            let raw = try SQLiteConnection(path: path)
            #expect(throws: SQLiteError.self) { try raw.execute("UPDATE reflog SET message = 'rewritten'") }
            #expect(throws: SQLiteError.self) { try raw.execute("DELETE FROM reflog") }
            #expect(try refs.reflog(main, limit: 10).map(\.message) == ["delete", "one"])
            // HEAD is on main, so its log has the same two changes.
            #expect(try refs.reflog(nil, limit: 10).map(\.name) == [.head, main, .head, main])
        }
    }

    @Test func sealedValuesCannotBeReadOrMovedBetweenRefs() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/refs.sqlite"
            let refs = try RefStore(path: path, metadataKey: metadataKey)
            let dev = try RefName.branch("dev")
            try refs.update(main, to: fakeRef(1), expected: nil, agent: agent, message: "main")
            try refs.update(dev, to: fakeRef(2), expected: nil, agent: agent, message: "dev")

            // The keys appear nowhere in the files; the ids do, in clear.
            let raw = try SQLiteConnection(path: path)
            try raw.checkpoint(mode: .truncate)
            let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(!Self.contains(file, fakeRef(1).key.bytes))
            #expect(!Self.contains(file, fakeRef(2).key.bytes))
            #expect(Self.contains(file, fakeRef(1).id.bytes))

            // Move dev's id and sealed value onto main.
            try raw.execute(
                """
                UPDATE refs SET (id, sealed) = (SELECT id, sealed FROM refs WHERE name = 'refs/heads/dev')
                WHERE name = 'refs/heads/main'
                """)
            #expect { try refs.ref(main) } throws: { isHistoryError($0, .corrupt, mentioning: "refs/heads/main") }
            #expect { try refs.refs(kind: .branch) } throws: { isHistoryError($0, .corrupt, mentioning: "refs/heads/main") }
            #expect(try refs.ref(dev) == fakeRef(2), "the other ref is untouched")

            // Point main's clear id elsewhere, keeping its own sealed value.
            try refs.update(main, to: fakeRef(1), expected: fakeRef(2).id, agent: agent, message: "repair")
            try raw.execute(
                "UPDATE refs SET id = (SELECT id FROM refs WHERE name = 'refs/heads/dev') WHERE name = 'refs/heads/main'")
            #expect { try refs.ref(main) } throws: { isHistoryError($0, .corrupt, mentioning: "refs/heads/main") }

            // Reflog rows are bound to their ref too (an attacker at file level can drop triggers).
            try raw.execute("DROP TRIGGER reflog_rows_are_never_updated")
            try raw.execute(
                """
                UPDATE reflog SET (new_id, new_sealed) = (SELECT new_id, new_sealed FROM reflog WHERE ref = 'refs/heads/dev')
                WHERE ref = 'refs/heads/main'
                """)
            #expect { try refs.reflog(main, limit: 10) } throws: { isHistoryError($0, .corrupt, mentioning: "refs/heads/main") }
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == first {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }

    @Test func valueAsOfATimeAndNChangesAgo() throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_000))
        let refs = try memoryStore(clock: clock)
        try refs.update(main, to: fakeRef(1), expected: nil, agent: agent, message: "1")
        clock.set(Date(timeIntervalSince1970: 2_000))
        try refs.update(main, to: fakeRef(2), expected: fakeRef(1).id, agent: agent, message: "2")
        clock.set(Date(timeIntervalSince1970: 3_000))
        try refs.update(main, to: fakeRef(3), expected: fakeRef(2).id, agent: agent, message: "3")
        clock.set(Date(timeIntervalSince1970: 4_000))
        try refs.update(main, to: nil, expected: fakeRef(3).id, agent: agent, message: "delete")

        #expect(try refs.ref(main, asOf: Date(timeIntervalSince1970: 999)) == nil, "before it existed")
        #expect(try refs.ref(main, asOf: Date(timeIntervalSince1970: 1_000)) == fakeRef(1), "at the instant of a change")
        #expect(try refs.ref(main, asOf: Date(timeIntervalSince1970: 2_500)) == fakeRef(2))
        #expect(try refs.ref(main, asOf: Date(timeIntervalSince1970: 3_999.999)) == fakeRef(3))
        #expect(try refs.ref(main, asOf: Date(timeIntervalSince1970: 9_000)) == nil, "after it was deleted")

        #expect(try refs.ref(main, previous: 0) == nil)
        #expect(try refs.ref(main, previous: 1) == fakeRef(3))
        #expect(try refs.ref(main, previous: 3) == fakeRef(1))
        #expect { try refs.ref(main, previous: 4) } throws: { isHistoryError($0, .notFound, mentioning: "refs/heads/main", "4 changes") }
        let log = try refs.reflog(main, limit: 2)
        #expect(log.map(\.message) == ["delete", "3"])
        #expect(log[0].time == Date(timeIntervalSince1970: 4_000))
    }

    @Test func headFollowsItsBranchAndLogsItsOwnMoves() throws {
        let refs = try memoryStore()
        let dev = try RefName.branch("dev")
        try refs.update(main, to: fakeRef(1), expected: nil, agent: agent, message: "main 1")
        try refs.setHead(.branch(dev), agent: agent, message: "checkout dev")
        #expect(try refs.head() == .branch(dev))
        #expect(try refs.ref(.head) == nil, "dev has no commits yet")
        try refs.update(dev, to: fakeRef(2), expected: nil, agent: agent, message: "dev 2")
        #expect(try refs.ref(.head) == fakeRef(2))
        try refs.update(main, to: fakeRef(3), expected: fakeRef(1).id, agent: agent, message: "main 3")
        try refs.setHead(.detached(fakeRef(1)), agent: agent, message: "detach")
        #expect(try refs.head() == .detached(fakeRef(1)))
        #expect(try refs.ref(.head) == fakeRef(1))

        let headLog = try refs.reflog(.head, limit: 10)
        #expect(headLog.map(\.message) == ["detach", "dev 2", "checkout dev", "main 1"], "'main 3' happened off HEAD")
        #expect(headLog.map(\.new) == [fakeRef(1), fakeRef(2), nil, fakeRef(1)])
        #expect(headLog[0].oldID == fakeRef(2).id)
        #expect(headLog.allSatisfy { $0.name == .head })
        #expect(try refs.ref(.head, previous: 1) == fakeRef(2))
        #expect(try refs.reflog(nil, limit: 100).count == 7)

        #expect { try refs.setHead(.branch(try RefName.tag("v1")), agent: agent, message: "") } throws: {
            isHistoryError($0, .invalidArgument, mentioning: "refs/tags/v1")
        }
    }

    @Test func commitCatalogFindsIdsAndPrefixes() throws {
        let refs = try memoryStore()
        let commits = (0..<50).map(fakeRef)
        for (index, commit) in commits.enumerated() {
            try refs.recordCommit(commit, generation: UInt64(index + 1), time: Date())
        }
        try refs.recordCommit(commits[0], generation: 1, time: Date())
        #expect(try refs.commit(id: commits[7].id) == commits[7])
        #expect(try refs.commit(id: fakeRef(999).id) == nil)
        for commit in commits.prefix(10) {
            let hex = commit.id.description
            #expect(try refs.commits(withHexPrefix: hex) == [commit])
            #expect(try refs.commits(withHexPrefix: String(hex.prefix(13))) == [commit], "odd length")
            #expect(try refs.commits(withHexPrefix: String(hex.prefix(16)).uppercased()) == [commit])
            let short = try refs.commits(withHexPrefix: String(hex.prefix(4)))
            #expect(short.contains(commit))
            #expect(short.allSatisfy { $0.id.description.hasPrefix(hex.prefix(4)) })
        }
        for bad in ["abc", "", "xyz1", "12 34", String(repeating: "a", count: 65)] {
            #expect { try refs.commits(withHexPrefix: bad) } throws: { isHistoryError($0, .invalidArgument, mentioning: "'\(bad)'") }
        }
    }

    @Test func idPrefixRanges() throws {
        #expect(try RefStore.idRange(hexPrefix: "abcd") == ([0xAB, 0xCD], [0xAB, 0xCE]))
        #expect(try RefStore.idRange(hexPrefix: "abcde") == ([0xAB, 0xCD, 0xE0], [0xAB, 0xCD, 0xF0]))
        #expect(try RefStore.idRange(hexPrefix: "abcdf") == ([0xAB, 0xCD, 0xF0], [0xAB, 0xCE, 0x00]))
        #expect(try RefStore.idRange(hexPrefix: "0fff") == ([0x0F, 0xFF], [0x10, 0x00]))
        #expect(try RefStore.idRange(hexPrefix: "ffff").upper == nil)
        #expect(try RefStore.idRange(hexPrefix: "fffff").upper == nil)
    }

    @Test func reopeningKeepsEverythingAndChecksKeyAndSchema() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/refs.sqlite"
            do {
                let refs = try RefStore(path: path, metadataKey: metadataKey)
                try refs.update(main, to: fakeRef(1), expected: nil, agent: agent, message: "one")
                try refs.setHead(.detached(fakeRef(1)), agent: agent, message: "detach")
            }
            let reopened = try RefStore(path: path, metadataKey: metadataKey)
            #expect(try reopened.ref(main) == fakeRef(1))
            #expect(try reopened.head() == .detached(fakeRef(1)))

            #expect {
                try RefStore(path: path, metadataKey: .random(count: 32))
            } throws: { isHistoryError($0, .invalidArgument, mentioning: path, "another store") }

            let raw = try SQLiteConnection(path: path)
            try raw.execute("UPDATE meta SET value = '2' WHERE key = 'schema'")
            #expect {
                try RefStore(path: path, metadataKey: metadataKey)
            } throws: { isHistoryError($0, .unsupportedFormat, mentioning: "schema 2") }

            try Data("not a database at all, not at all".utf8).write(to: URL(fileURLWithPath: directory + "/junk"))
            #expect {
                try RefStore(path: directory + "/junk", metadataKey: metadataKey)
            } throws: { isHistoryError($0, .storage, mentioning: "junk") }
        }
    }
}
