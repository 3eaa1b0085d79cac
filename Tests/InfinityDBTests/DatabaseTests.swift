import Foundation
import InfinityDB
import InfinityTestSupport
import Testing

struct Book: Codable, Sendable, Hashable {
    var title: String
    var pages: Int
}

struct Settings: Codable, Sendable, Hashable {
    var theme: String
}

enum Library {
    static let books = VersionedMap<String, Book>("books")
    static let shelf = List<String>("shelf")
    static let settings = Serialized<Settings>("settings")
    static let counts = VersionedMap<CompoundKey<String, Int>, Int>("counts")
}

/// A database over a store in memory (backend, chunk index and refs).
func makeDatabase() async throws -> Database {
    let store = try await Store.create(
        backend: MemoryBackend(), indexPath: ":memory:", location: "memory", agentName: "tester",
        passphrase: passphrase, options: fastOptions())
    return try store.database()
}

@Suite struct DraftBatchTests {
    /// A batch is the same as a loop of single sets: a later pair of a key wins, and the map holds
    /// the same entries whether the edits came in one call or many, through a buffer small enough
    /// to be applied several times on the way.
    @Test func aBatchIsTheSameAsALoopOfSets() async throws {
        let database = try await makeDatabase()
        let numbers = VersionedMap<Int, String>("numbers")
        var pairs = (0..<3000).map { (key: $0 * 7 % 3000, value: "value \($0)") }
        pairs.append((key: 5, value: "the last of key 5"))
        let batched = try await database.draft(on: "batched", editBufferSize: 4096)
        try await batched.set(contentsOf: Array(pairs[..<1000]), in: numbers)
        try await batched.set(contentsOf: Array(pairs[1000...]), in: numbers)
        try await batched.set(contentsOf: [], in: numbers)
        let one = try await batched.commit(message: "batched")
        let looped = try await database.draft(on: "looped", editBufferSize: 4096)
        for (key, value) in pairs { try await looped.set(value, for: key, in: numbers) }
        let other = try await looped.commit(message: "looped")
        #expect(try await one.count(of: numbers) == 3000)
        #expect(try await one.get(5, in: numbers) == "the last of key 5")
        #expect(try await one.entries(in: numbers).map(\.value) == other.entries(in: numbers).map(\.value))
        var changes = 0
        try await one.changes(in: numbers, since: other) { _ in changes += 1 }
        #expect(changes == 0)
    }

    /// A key too long stops the batch there: the pairs before it are set, the rest are not.
    @Test func aBadPairStopsTheBatchWhereItIs() async throws {
        let database = try await makeDatabase()
        let names = VersionedMap<String, Int>("names")
        let draft = try await database.draft()
        let pairs = [(key: "a", value: 1), (key: String(repeating: "x", count: 5000), value: 2), (key: "c", value: 3)]
        await #expect(throws: DatabaseError.self) { try await draft.set(contentsOf: pairs, in: names) }
        #expect(try await draft.get("a", in: names) == 1)
        #expect(try await draft.get("c", in: names) == nil)
        #expect(try await draft.count(of: names) == 1)

        let untouched = try await database.draft(on: "untouched")
        await #expect(throws: DatabaseError.self) { try await untouched.set(contentsOf: [pairs[1]], in: names) }
        #expect(await !untouched.hasChanges)
    }
}

@Suite struct DatabaseTests {
    @Test func commitReopenAndRead() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/store"
            do {
                let database = try await Store.create(at: path, agentName: "alice", passphrase: passphrase, options: fastOptions()).database()
                #expect(try await database.snapshot().get("dune", in: Library.books) == nil, "an unborn branch reads as empty")
                let draft = try await database.draft()
                try await draft.set(Book(title: "Dune", pages: 412), for: "dune", in: Library.books)
                try await draft.set(Book(title: "Emma", pages: 474), for: "emma", in: Library.books)
                try await draft.append(["dune", "emma"], to: Library.shelf)
                try await draft.set(Settings(theme: "dark"), in: Library.settings)
                try await draft.set(3, for: CompoundKey("dune", 2024), in: Library.counts)
                #expect(try await draft.get("dune", in: Library.books)?.pages == 412, "a draft reads its own edits")
                try await draft.commit(message: "First books")
            }
            let database = try await Store.open(at: path, passphrase: passphrase).database()
            let snapshot = try await database.snapshot()
            #expect(try await snapshot.get("dune", in: Library.books) == Book(title: "Dune", pages: 412))
            #expect(try await snapshot.count(of: Library.books) == 2)
            #expect(try await snapshot.entries(in: Library.books).map(\.key) == ["dune", "emma"])
            #expect(try await snapshot.elements(of: Library.shelf) == ["dune", "emma"])
            #expect(try await snapshot.get(Library.settings) == Settings(theme: "dark"))
            #expect(try await snapshot.get(CompoundKey("dune", 2024), in: Library.counts) == 3)
            #expect(try await snapshot.fieldNames() == ["books", "counts", "settings", "shelf"])
            let log = try await database.log()
            #expect(log.count == 1)
            #expect(log.first?.commit.message == "First books")
            #expect(log.first?.commit.author.name == "alice")
            #expect(try database.branches().map(\.name) == ["main"])
        }
    }

    @Test func timeTravelByRevision() async throws {
        let database = try await makeDatabase()
        let draft = try await database.draft()
        var commits: [ChunkRef] = []
        for number in 1...5 {
            try await draft.set(Book(title: "v\(number)", pages: number), for: "book", in: Library.books)
            commits.append(try await draft.commit(message: "version \(number)").commit!.ref)
        }
        #expect(try await database.snapshot("main~2").get("book", in: Library.books)?.pages == 3)
        #expect(try await database.snapshot("HEAD^").get("book", in: Library.books)?.pages == 4)
        #expect(try await database.snapshot("main@{1}").get("book", in: Library.books)?.pages == 4)
        let prefix = String(commits[0].id.description.prefix(10))
        #expect(try await database.snapshot(prefix).get("book", in: Library.books)?.pages == 1)
        try await database.createTag("v2", at: "main~3")
        #expect(try await database.snapshot("v2").get("book", in: Library.books)?.pages == 2)
        // State as of a moment: what the branch pointed to then, by its reflog.
        try await Task.sleep(for: .milliseconds(1100))
        let moment = ISO8601DateFormatter().string(from: Date())
        try await Task.sleep(for: .milliseconds(1100))
        try await draft.set(Book(title: "v6", pages: 6), for: "book", in: Library.books)
        try await draft.commit(message: "version 6")
        #expect(try await database.snapshot("main@{\(moment)}").get("book", in: Library.books)?.pages == 5)
        #expect(try await database.snapshot("main").get("book", in: Library.books)?.pages == 6)
        await #expect(throws: HistoryError.self) { _ = try await database.snapshot("main~9") }
        await #expect(throws: HistoryError.self) { _ = try await database.snapshot("nosuchbranch") }
    }

    @Test func forkDiffAndMerge() async throws {
        let database = try await makeDatabase()
        let main = try await database.draft()
        for number in 0..<500 { try await main.set(Book(title: "b\(number)", pages: number), for: "b\(number)", in: Library.books) }
        try await main.append(["b1", "b2", "b3"], to: Library.shelf)
        let base = try await main.commit(message: "base")

        try await database.createBranch("feature")
        let feature = try await database.draft(on: "feature")
        try await feature.set(Book(title: "new", pages: 1), for: "new", in: Library.books)
        try await feature.remove("b7", from: Library.books)
        try await feature.set(Book(title: "theirs", pages: 9), for: "b9", in: Library.books)
        try await feature.append(["new"], to: Library.shelf)
        let featureHead = try await feature.commit(message: "feature work")

        try await main.set(Book(title: "ours", pages: 9), for: "b9", in: Library.books)
        try await main.insert(["b0"], at: 0, in: Library.shelf)
        try await main.set(Settings(theme: "light"), in: Library.settings)
        try await main.commit(message: "main work")

        let changes = try await featureHead.changes(in: Library.books, since: base)
        #expect(changes.count == 3)
        let shelfChanges = try await featureHead.changes(in: Library.shelf, since: base)
        #expect(shelfChanges.map(\.inserted) == [["new"]])

        await #expect(throws: DatabaseError.self, "b9 changed on both sides") {
            try await database.merge("feature", into: "main", policy: .fail)
        }
        let outcome = try await database.merge(
            "feature", into: "main",
            policy: MergePolicy.fail.resolving(Library.books) { _, _, ours, theirs in
                Book(title: "\(ours!.title)+\(theirs!.title)", pages: 99)
            })
        guard case .merged(let merged) = outcome else {
            Issue.record("expected a merge commit, got \(outcome)")
            return
        }
        #expect(merged.commit?.commit.parents.count == 2)
        #expect(try await merged.get("b9", in: Library.books) == Book(title: "ours+theirs", pages: 99))
        #expect(try await merged.get("new", in: Library.books) != nil)
        #expect(try await merged.get("b7", in: Library.books) == nil)
        #expect(try await merged.elements(of: Library.shelf) == ["b0", "b1", "b2", "b3", "new"])
        #expect(try await merged.get(Library.settings) == Settings(theme: "light"))

        // The feature branch can now take main by fast-forward.
        guard case .fastForwarded = try await database.merge("main", into: "feature") else {
            Issue.record("expected a fast-forward")
            return
        }
        guard case .upToDate = try await database.merge("feature", into: "main") else {
            Issue.record("expected up to date")
            return
        }
    }

    @Test func racingWritersNeverLoseACommit() async throws {
        let database = try await makeDatabase()
        let first = try await database.draft()
        try await first.set(Book(title: "seed", pages: 0), for: "seed", in: Library.books)
        try await first.commit(message: "seed")

        let a = try await database.draft()
        let b = try await database.draft()
        try await a.set(Book(title: "a", pages: 1), for: "a", in: Library.books)
        try await b.set(Book(title: "b", pages: 2), for: "b", in: Library.books)
        try await a.commit(message: "a")
        await #expect(throws: DatabaseError.self) { try await b.commit(message: "b") }
        let c = try await database.draft()
        try await c.set(Book(title: "c", pages: 3), for: "c", in: Library.books)
        try await a.set(Book(title: "a2", pages: 1), for: "a2", in: Library.books)
        try await a.commit(message: "a2")
        try await c.commit(message: "c", ifBranchMoved: .merge(.ours))
        let head = try await database.snapshot()
        for key in ["seed", "a", "a2", "c"] { #expect(try await head.get(key, in: Library.books) != nil, "\(key)") }

        // Many tasks at once, each merging when it loses the race.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    let draft = try await database.draft()
                    try await draft.set(Book(title: "w\(writer)", pages: writer), for: "w\(writer)", in: Library.books)
                    try await draft.commit(message: "writer \(writer)", ifBranchMoved: .merge(.ours))
                }
            }
            try await group.waitForAll()
        }
        let final = try await database.snapshot()
        for writer in 0..<8 { #expect(try await final.get("w\(writer)", in: Library.books)?.pages == writer) }
    }

    @Test func largeValuesAreStoredOutOfLine() async throws {
        let database = try await makeDatabase()
        let draft = try await database.draft()
        let long = String(repeating: "a long chapter ", count: 20_000)
        try await draft.set(Book(title: long, pages: 1), for: "long", in: Library.books)
        let snapshot = try await draft.commit(message: "long")
        #expect(try await snapshot.get("long", in: Library.books)?.title == long)
    }

    @Test func kindMismatchIsAClearError() async throws {
        let database = try await makeDatabase()
        let draft = try await database.draft()
        try await draft.append(["x"], to: Library.shelf)
        let snapshot = try await draft.commit(message: "shelf")
        let wrong = VersionedMap<String, String>("shelf")
        await #expect(throws: DatabaseError.self) { _ = try await snapshot.get("x", in: wrong) }
    }
}

@Suite struct LazyReadTests {
    @Test func openingACommitLoadsOnlyItsRootAndAPointReadOnlyItsPath() async throws {
        let store = try await Store.create(
            backend: MemoryBackend(), indexPath: ":memory:", location: "memory", agentName: "tester",
            passphrase: passphrase, options: fastOptions())
        let database = try store.database()
        let draft = try await database.draft()
        for number in 0..<20_000 { try await draft.set(Book(title: "b\(number)", pages: number), for: "b\(number)", in: Library.books) }
        let head = try await draft.commit(message: "many books").commit!.ref

        // A second Database over the same store starts with cold caches.
        let cold = try Database(store: store)
        let snapshot = try await cold.snapshot(commit: head)
        #expect(cold.trees.nodeLoads == 1, "opening loads the index root and nothing else")
        #expect(try await snapshot.get("b12345", in: Library.books)?.pages == 12345)
        let afterRead = cold.trees.nodeLoads
        let height = try await snapshot.fieldHeight(Library.books)
        #expect(afterRead - 1 <= height + 2, "one node per level of the index and the field: \(afterRead - 1) loads")
        #expect(height >= 1)
    }
}

@Suite struct DraftConcurrencyTests {
    @Test func manyTasksEditingOneDraftLoseNothing() async throws {
        let database = try await makeDatabase()
        let draft = try await database.draft()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    for number in 0..<25 {
                        try await draft.append(["t\(task)-\(number)"], to: Library.shelf)
                        try await draft.set(Book(title: "t\(task)", pages: number), for: "t\(task)-\(number)", in: Library.books)
                    }
                    if task % 4 == 0 { try await draft.commit(message: "from task \(task)") }
                }
            }
            try await group.waitForAll()
        }
        let snapshot = try await draft.commit(message: "the rest")
        #expect(try await snapshot.count(of: Library.shelf) == 400)
        #expect(try await snapshot.count(of: Library.books) == 400)
        #expect(Set(try await snapshot.elements(of: Library.shelf)).count == 400)
        let reopened = try await database.snapshot()
        #expect(try await reopened.entries(in: Library.books).count == 400, "every node the commits need was stored")
    }
}

@Suite struct DraftArgumentTests {
    @Test func badPositionsAndNamesAreClearErrors() async throws {
        let database = try await makeDatabase()
        let draft = try await database.draft()
        #expect(await draft.hasChanges == false)
        try await draft.append(["a", "b"], to: Library.shelf)
        #expect(await draft.hasChanges)
        await #expect(throws: DatabaseError.self, "a range past the end names the list") {
            try await draft.remove(1..<5, from: Library.shelf)
        }
        await #expect(throws: DatabaseError.self, "an empty field name") {
            try await draft.set(1, for: "k", in: VersionedMap<String, Int>(""))
        }
        let snapshot = try await draft.commit(message: "shelf")
        #expect(await draft.hasChanges == false, "a commit leaves nothing pending")
        await #expect(throws: DatabaseError.self) { _ = try await snapshot.element(at: 2, of: Library.shelf) }
        #expect(try await snapshot.element(at: 1, of: Library.shelf) == "b")
    }
}
