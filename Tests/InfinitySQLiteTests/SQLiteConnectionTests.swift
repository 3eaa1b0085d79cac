import Foundation
import InfinitySQLite
import InfinityTestSupport
import Testing

@Suite struct SQLiteConnectionTests {
    private func memoryDatabase() throws -> SQLiteConnection {
        try SQLiteConnection(path: ":memory:")
    }

    @Test func everyValueTypeRoundTrips() throws {
        let database = try memoryDatabase()
        try database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
        let values: [SQLiteValue] = [
            .null,
            .integer(0), .integer(Int64.min), .integer(Int64.max), .integer(-1),
            .real(0.5), .real(-1e300), .real(Double.leastNonzeroMagnitude), .real(.infinity),
            .text(""), .text("héllo, wörld 🌍"), .text("embedded\u{0}nul"),
            .blob([]), .blob([0]), .blob([0, 255, 1, 254]), .blob(SampleData.bytes(count: 100_000, seed: 1)),
        ]
        let insert = try database.prepare("INSERT INTO t (id, v) VALUES (?, ?)")
        for (index, value) in values.enumerated() {
            try insert.run([.integer(Int64(index)), value])
        }
        let rows = try database.prepare("SELECT v FROM t ORDER BY id").rows()
        #expect(rows.map { $0[0] } == values)

        // An empty blob stays a blob, and typed accessors agree with the values.
        let select = try database.prepare("SELECT v, typeof(v) FROM t WHERE id = ?")
        try select.bind([.integer(12)])
        #expect(try select.step())
        #expect(select.text(at: 1) == "blob")
        #expect(select.blob(at: 0) == [])
        #expect(!select.isNull(at: 0))
        select.reset()
        try select.bind(.integer(2), at: 1)
        #expect(try select.step())
        #expect(select.int64(at: 0) == Int64.min)
        select.reset()
        try select.bind(.integer(11), at: 1)
        #expect(try select.step())
        #expect(select.text(at: 0) == "embedded\u{0}nul")
        select.reset()
        try select.bind(.integer(0), at: 1)
        #expect(try select.step())
        #expect(select.isNull(at: 0))
        #expect(try !select.step())
    }

    @Test func blobsCanBeBoundAndReadWithoutArrays() throws {
        let database = try memoryDatabase()
        try database.execute("CREATE TABLE t (b BLOB)")
        let bytes = SampleData.bytes(count: 4096, seed: 2)
        let insert = try database.prepare("INSERT INTO t VALUES (?)")
        try bytes.withUnsafeBytes { try insert.bind(blob: $0, at: 1) }
        try insert.run()
        let select = try database.prepare("SELECT b FROM t")
        #expect(try select.step())
        let equal = select.withBlob(at: 0) { $0.elementsEqual(bytes) }
        #expect(equal)
    }

    @Test func transactionCommitsAndReturnsTheResult() throws {
        let database = try memoryDatabase()
        try database.execute("CREATE TABLE t (v INTEGER)")
        let result = try database.transaction {
            try database.cachedStatement("INSERT INTO t VALUES (?)").run([.integer(1)])
            return database.lastInsertRowID
        }
        #expect(result == 1)
        #expect(try database.prepare("SELECT count(*) FROM t").rows() == [[.integer(1)]])
    }

    @Test func transactionRollsBackWhenTheBodyThrows() throws {
        struct Abort: Error {}
        let database = try memoryDatabase()
        try database.execute("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)")
        #expect(throws: Abort.self) {
            try database.transaction {
                try database.cachedStatement("INSERT INTO t VALUES (?)").run([.integer(2)])
                try database.execute("UPDATE t SET v = v + 10")
                throw Abort()
            }
        }
        #expect(try database.prepare("SELECT v FROM t").rows() == [[.integer(1)]])
        // The connection is usable for another transaction afterwards.
        try database.transaction { try database.execute("INSERT INTO t VALUES (3)") }
        #expect(try database.prepare("SELECT count(*) FROM t").rows() == [[.integer(2)]])
    }

    /// Every read inside a read transaction sees one snapshot, even while another connection
    /// commits; after it, the connection sees the new state, and a failed body leaves no
    /// transaction open.
    @Test func readTransactionSeesOneSnapshot() async throws {
        struct Abort: Error {}
        try await withTemporaryDirectory { directory in
            let path = directory + "/snapshot.sqlite"
            let reader = try SQLiteConnection(path: path)
            try reader.enableWriteAheadLog()
            try reader.execute("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)")
            let writer = try SQLiteConnection(path: path)
            let counts = try reader.readTransaction {
                let before = try reader.prepare("SELECT count(*) FROM t").rows()
                try writer.execute("INSERT INTO t VALUES (2)")
                return [before, try reader.prepare("SELECT count(*) FROM t").rows()]
            }
            #expect(counts == [[[.integer(1)]], [[.integer(1)]]])
            #expect(try reader.prepare("SELECT count(*) FROM t").rows() == [[.integer(2)]])
            #expect(throws: Abort.self) { try reader.readTransaction { throw Abort() } }
            try reader.readTransaction { _ = try reader.prepare("SELECT 1").rows() }
        }
    }

    @Test func constraintViolationNamesTheSQL() throws {
        let database = try memoryDatabase()
        try database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)")
        let sql = "INSERT INTO t (name) VALUES (?)"
        try database.prepare(sql).run([.text("a")])
        let error = #expect(throws: SQLiteError.self) { try database.prepare(sql).run([.text("a")]) }
        #expect(error?.primaryCode == SQLiteError.constraint)
        #expect(error?.code == 2067)  // SQLITE_CONSTRAINT_UNIQUE
        #expect(error?.sql == sql)
        #expect(error?.path == ":memory:")
        #expect(error?.message.contains("UNIQUE constraint failed: t.name") == true)
        #expect(error?.description.contains(sql) == true)

        let notNull = #expect(throws: SQLiteError.self) { try database.prepare(sql).run([.null]) }
        #expect(notNull?.code == 1299)  // SQLITE_CONSTRAINT_NOTNULL
    }

    @Test func syntaxErrorNamesTheSQL() throws {
        let database = try memoryDatabase()
        let error = #expect(throws: SQLiteError.self) { try database.prepare("SELEC 1") }
        #expect(error?.primaryCode == SQLiteError.error)
        #expect(error?.sql == "SELEC 1")
        #expect(error?.message.contains("syntax error") == true)
        let executeError = #expect(throws: SQLiteError.self) { try database.execute("CREATE TABLE") }
        #expect(executeError?.sql == "CREATE TABLE")
    }

    @Test func openingANonDatabaseFileNamesThePath() async {
        await withTemporaryDirectory { directory in
            let path = directory + "/not-a-database"
            let garbage = Data(String(repeating: "this is not an SQLite database. ", count: 200).utf8)
            #expect(FileManager.default.createFile(atPath: path, contents: garbage))
            let error = #expect(throws: SQLiteError.self) { try SQLiteConnection(path: path) }
            #expect(error?.primaryCode == SQLiteError.notADatabase)
            #expect(error?.path == path)
            #expect(error?.description.contains(path) == true)
            #expect(error?.description.contains("not a database") == true)
        }
    }

    @Test func openingAMissingFileReadOnlyFails() async {
        await withTemporaryDirectory { directory in
            let path = directory + "/missing.sqlite"
            let error = #expect(throws: SQLiteError.self) { try SQLiteConnection(path: path, readOnly: true) }
            #expect(error?.primaryCode == SQLiteError.cannotOpen)
            #expect(error?.description.contains(path) == true)
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }

    @Test func readOnlyConnectionRefusesWrites() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/db.sqlite"
            try SQLiteConnection(path: path).execute("CREATE TABLE t (v); INSERT INTO t VALUES (1)")
            let reader = try SQLiteConnection(path: path, readOnly: true)
            #expect(reader.isReadOnly)
            #expect(try reader.prepare("SELECT v FROM t").rows() == [[.integer(1)]])
            let error = #expect(throws: SQLiteError.self) { try reader.execute("INSERT INTO t VALUES (2)") }
            #expect(error?.primaryCode == SQLiteError.readOnly)
        }
    }

    @Test func writeAheadLogOnAFileDatabase() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/wal.sqlite"
            let database = try SQLiteConnection(path: path)
            try database.enableWriteAheadLog()
            #expect(try database.prepare("PRAGMA journal_mode").rows() == [[.text("wal")]])
            #expect(try database.prepare("PRAGMA synchronous").rows() == [[.integer(1)]])  // NORMAL
            try database.execute("CREATE TABLE t (v); INSERT INTO t VALUES (1)")
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))

            // Another connection reads while this one holds an open write transaction.
            try database.execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (2)")
            let reader = try SQLiteConnection(path: path)
            #expect(try reader.prepare("SELECT count(*) FROM t").rows() == [[.integer(1)]])
            try database.execute("COMMIT")
            #expect(try reader.prepare("SELECT count(*) FROM t").rows() == [[.integer(2)]])

            try database.checkpoint(mode: .truncate)
            let walSize = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int
            #expect(walSize == 0)
        }
    }

    @Test func writeAheadLogIsAcceptedAsMemoryModeInMemory() throws {
        let database = try memoryDatabase()
        try database.enableWriteAheadLog()
        #expect(try database.prepare("PRAGMA journal_mode").rows() == [[.text("memory")]])
        try database.checkpoint()
    }

    @Test func cachedStatementIsReusedWithNewBindings() throws {
        let database = try memoryDatabase()
        try database.execute("CREATE TABLE t (k INTEGER, v TEXT)")
        let insert = "INSERT INTO t VALUES (?, ?)"
        for k in 1...3 {
            try database.cachedStatement(insert).run([.integer(Int64(k)), .text("v\(k)")])
        }
        #expect(try database.cachedStatement(insert) === database.cachedStatement(insert))

        let select = "SELECT v FROM t WHERE k >= ? ORDER BY k"
        let first = try database.cachedStatement(select)
        try first.bind([.integer(1)])
        #expect(try first.step())
        #expect(first.text(at: 0) == "v1")
        // Fetching it again resets the half-read statement and clears its bindings.
        let again = try database.cachedStatement(select)
        #expect(again === first)
        #expect(try again.rows([.integer(2)]) == [[.text("v2")], [.text("v3")]])
        #expect(try database.cachedStatement(select).rows([.integer(3)]) == [[.text("v3")]])
    }

    @Test func bindingTheWrongNumberOfValuesFails() throws {
        let database = try memoryDatabase()
        let statement = try database.prepare("SELECT ?, ?")
        #expect(statement.parameterCount == 2)
        let error = #expect(throws: SQLiteError.self) { try statement.bind([.integer(1)]) }
        #expect(error?.primaryCode == SQLiteError.range)
        #expect(error?.sql == "SELECT ?, ?")
        #expect(throws: SQLiteError.self) { try statement.bind(.integer(1), at: 3) }
    }

    @Test func prepareRefusesSeveralStatements() throws {
        let database = try memoryDatabase()
        let error = #expect(throws: SQLiteError.self) { try database.prepare("SELECT 1; SELECT 2") }
        #expect(error?.primaryCode == SQLiteError.misuse)
        #expect(throws: SQLiteError.self) { try database.prepare("  ") }
        #expect(try database.prepare("SELECT 1;  \n").rows() == [[.integer(1)]])
    }

    @Test func changesAndLastInsertRowID() throws {
        let database = try memoryDatabase()
        try database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        try database.prepare("INSERT INTO t (v) VALUES (?)").run([.integer(5)])
        try database.prepare("INSERT INTO t (v) VALUES (?)").run([.integer(6)])
        #expect(database.lastInsertRowID == 2)
        try database.execute("UPDATE t SET v = 0")
        #expect(database.changes == 2)
    }

    @Test func busyTimeoutIsStoredAndWritersTimeOut() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/busy.sqlite"
            let writer = try SQLiteConnection(path: path)
            #expect(writer.busyTimeout == .seconds(5))
            try writer.execute("CREATE TABLE t (v)")
            try writer.execute("BEGIN IMMEDIATE")
            let other = try SQLiteConnection(path: path)
            other.busyTimeout = .milliseconds(50)
            #expect(other.busyTimeout == .milliseconds(50))
            let clock = ContinuousClock()
            let start = clock.now
            let error = #expect(throws: SQLiteError.self) { try other.transaction { } }
            #expect(error?.primaryCode == SQLiteError.busy)
            #expect(clock.now - start >= .milliseconds(40))
            try writer.execute("COMMIT")
        }
    }

    @Test func statementOutlivesItsConnection() throws {
        var database: SQLiteConnection? = try memoryDatabase()
        let statement = try database!.prepare("SELECT 40 + 2")
        database = nil
        #expect(try statement.rows() == [[.integer(42)]])
    }

    @Test func columnNamesAndCounts() throws {
        let database = try memoryDatabase()
        let statement = try database.prepare("SELECT 1 AS one, 'x' AS letter")
        #expect(statement.columnCount == 2)
        #expect(statement.columnName(at: 0) == "one")
        #expect(statement.columnName(at: 1) == "letter")
    }
}
