import CInfinitySQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A connection to one SQLite database.
///
/// Not `Sendable`: use a connection from one thread at a time, typically by keeping it inside
/// a `Mutex`. The connection is opened with `SQLITE_OPEN_NOMUTEX`, so SQLite does not lock
/// on every call; the caller's lock is the only one.
public final class SQLiteConnection {
    /// The database file, or `":memory:"`.
    public let path: String
    /// Whether the database was opened read-only.
    public let isReadOnly: Bool

    let handle: DatabaseHandle
    private var statementCache: [String: SQLiteStatement] = [:]
    private var busyTimeoutValue: Duration = .zero

    /// Opens (and unless `readOnly`, creates) the database at `path`.
    ///
    /// `":memory:"` opens a private in-memory database. The schema is read right away, so a
    /// file that is not an SQLite database fails here (`SQLiteError.notADatabase`) rather
    /// than at the first query. The busy timeout starts at 5 seconds. A database file this
    /// creates is readable and writable by its owner only (mode 0600), and so are its
    /// write-ahead log and shared-memory files, which SQLite gives the database's mode.
    public init(path: String, readOnly: Bool = false) throws {
        if !readOnly { try Self.createOwnerOnlyFile(path) }
        // NOMUTEX ("multi-thread" mode): callers serialize access to a connection (it is not
        // Sendable), so SQLite's per-connection mutex would only add a lock to every call.
        let flags = SQLITE_OPEN_NOMUTEX
            | (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        var database: OpaquePointer?
        let status = sqlite3_open_v2(path, &database, flags, nil)
        guard let database else {
            throw SQLiteError(code: SQLITE_NOMEM, message: "cannot open database: out of memory", path: path)
        }
        guard status == SQLITE_OK else {
            let message = String(cString: sqlite3_errmsg(database))
            let code = sqlite3_extended_errcode(database)
            sqlite3_close_v2(database)
            throw SQLiteError(code: code, message: "cannot open database: \(message)", path: path)
        }
        sqlite3_extended_result_codes(database, 1)
        self.path = path
        self.isReadOnly = readOnly
        self.handle = DatabaseHandle(pointer: database, path: path)
        busyTimeout = .seconds(5)

        let probe = "SELECT count(*) FROM sqlite_master"
        do {
            try execute(probe)
        } catch let error as SQLiteError {
            throw SQLiteError(code: error.code, message: "cannot read database: \(error.message)", path: path, sql: probe)
        }
    }

    /// Creates an empty file at `path` with mode 0600 unless something is already there. SQLite
    /// would create it with mode 0644; it treats an empty file as a new database.
    private static func createOwnerOnlyFile(_ path: String) throws {
        guard !path.isEmpty, path != ":memory:" else { return }
        var descriptor: Int32
        repeat {
            descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        } while descriptor < 0 && errno == EINTR
        if descriptor >= 0 {
            close(descriptor)
        } else if errno != EEXIST {
            let reason = String(cString: strerror(errno))
            throw SQLiteError(code: SQLITE_CANTOPEN, message: "cannot create database file: \(reason)", path: path)
        }
    }

    /// Runs one or more `;`-separated statements that return no rows (DDL, PRAGMAs, …).
    public func execute(_ sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle.pointer, sql, nil, nil, &errorMessage)
        defer { sqlite3_free(errorMessage) }
        guard status == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle.pointer))
            throw handle.error(status, message: message, sql: sql)
        }
    }

    /// Compiles a single SQL statement. Text after the first statement (other than
    /// whitespace and `;`) is refused, so nothing is silently skipped.
    public func prepare(_ sql: String) throws -> SQLiteStatement {
        try makeStatement(sql, persistent: false)
    }

    /// Returns this connection's prepared statement for `sql`, compiling it on first use.
    ///
    /// The statement is reset and its bindings cleared before it is returned, so a statement
    /// still being stepped by an outer caller must not be fetched again for nested use.
    public func cachedStatement(_ sql: String) throws -> SQLiteStatement {
        if let statement = statementCache[sql] {
            statement.reset()
            statement.clearBindings()
            return statement
        }
        let statement = try makeStatement(sql, persistent: true)
        statementCache[sql] = statement
        return statement
    }

    /// Runs `body` inside `BEGIN IMMEDIATE` … `COMMIT`; rolls back and rethrows when `body`
    /// or the commit throws.
    ///
    /// IMMEDIATE takes the write lock up front, so a transaction that reads and then writes
    /// cannot fail half way with `SQLITE_BUSY` because another connection wrote in between.
    /// Transactions do not nest.
    public func transaction<R>(_ body: () throws -> R) throws -> R {
        try inTransaction(begin: "BEGIN IMMEDIATE", body)
    }

    /// Runs `body` inside `BEGIN` … `COMMIT` for reads: every statement in it sees one snapshot
    /// of the database, and the locks are taken once rather than per statement.
    public func readTransaction<R>(_ body: () throws -> R) throws -> R {
        try inTransaction(begin: "BEGIN", body)
    }

    private func inTransaction<R>(begin: String, _ body: () throws -> R) throws -> R {
        try cachedStatement(begin).run()
        do {
            let result = try body()
            try cachedStatement("COMMIT").run()
            return result
        } catch {
            rollbackIfInTransaction()
            throw error
        }
    }

    private func rollbackIfInTransaction() {
        // SQLite already rolls back by itself after some errors (e.g. SQLITE_FULL).
        guard sqlite3_get_autocommit(handle.pointer) == 0 else { return }
        // A failing ROLLBACK is not reported: the caller needs the error that caused it.
        try? cachedStatement("ROLLBACK").run()
    }

    /// Switches to write-ahead logging (`journal_mode=WAL`) with `synchronous=NORMAL`.
    ///
    /// WAL lets readers run while one writer commits. NORMAL syncs only at checkpoints:
    /// a committed transaction survives an application crash, while a power loss may lose
    /// the most recent transactions but never corrupts the database. An in-memory database
    /// stays in "memory" mode, which is accepted; any other mode is an error.
    public func enableWriteAheadLog() throws {
        let sql = "PRAGMA journal_mode=WAL"
        let statement = try prepare(sql)
        let mode = try statement.step() ? statement.text(at: 0).lowercased() : ""
        statement.reset()
        let isInMemory = sqlite3_db_filename(handle.pointer, "main").map { $0.pointee == 0 } ?? true
        guard mode == "wal" || (mode == "memory" && isInMemory) else {
            throw handle.error(
                SQLITE_ERROR,
                message: "cannot enable write-ahead logging: journal mode is '\(mode)'",
                sql: sql
            )
        }
        try execute("PRAGMA synchronous=NORMAL")
    }

    /// How long a statement waits for another connection's lock before failing with
    /// `SQLiteError.busy` (`sqlite3_busy_timeout`, millisecond resolution).
    public var busyTimeout: Duration {
        get { busyTimeoutValue }
        set {
            busyTimeoutValue = newValue
            let (seconds, attoseconds) = newValue.components
            let milliseconds = seconds.multipliedReportingOverflow(by: 1000)
            let total = milliseconds.overflow ? Int64.max : milliseconds.partialValue + attoseconds / 1_000_000_000_000_000
            sqlite3_busy_timeout(handle.pointer, Int32(clamping: max(total, 0)))
        }
    }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes64(handle.pointer)) }

    /// The rowid of the most recent successful INSERT on this connection.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle.pointer) }

    /// Reads `count` bytes at `offset` of one BLOB value without loading the rest of it
    /// (incremental blob I/O): the value in `column` of the row `rowID` of `table`.
    public func readBlob(table: String, column: String, rowID: Int64, offset: Int, count: Int) throws -> [UInt8] {
        var blob: OpaquePointer?
        let status = sqlite3_blob_open(handle.pointer, "main", table, column, rowID, 0, &blob)
        guard status == SQLITE_OK, let blob else {
            sqlite3_blob_close(blob)
            throw handle.error(status, sql: "blob read of \(table).\(column) row \(rowID)")
        }
        defer { sqlite3_blob_close(blob) }
        guard offset >= 0, count >= 0, offset + count <= Int(sqlite3_blob_bytes(blob)), count <= Int(Int32.max) else {
            throw handle.error(SQLITE_RANGE, message: "bytes \(offset)..<\(offset + count) are outside the value", sql: nil)
        }
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        let read = bytes.withUnsafeMutableBytes { sqlite3_blob_read(blob, $0.baseAddress, Int32(count), Int32(offset)) }
        guard read == SQLITE_OK else { throw handle.error(read, sql: "blob read of \(table).\(column) row \(rowID)") }
        return bytes
    }

    /// How much work a checkpoint may do (see `sqlite3_wal_checkpoint_v2`).
    public enum CheckpointMode: Sendable {
        /// Copies as much as possible without waiting for readers or writers.
        case passive
        /// Waits for the writer, then copies everything (waits for readers as needed).
        case full
        /// Like `full`, then waits until readers are done so the log restarts from the top.
        case restart
        /// Like `restart`, then truncates the log file to zero bytes.
        case truncate

        var rawValue: Int32 {
            switch self {
            case .passive: SQLITE_CHECKPOINT_PASSIVE
            case .full: SQLITE_CHECKPOINT_FULL
            case .restart: SQLITE_CHECKPOINT_RESTART
            case .truncate: SQLITE_CHECKPOINT_TRUNCATE
            }
        }
    }

    /// Copies the write-ahead log into the database file. Does nothing outside WAL mode.
    public func checkpoint(mode: CheckpointMode = .passive) throws {
        let status = sqlite3_wal_checkpoint_v2(handle.pointer, nil, mode.rawValue, nil, nil)
        guard status == SQLITE_OK else {
            throw handle.error(status, sql: "PRAGMA wal_checkpoint(\(mode))")
        }
    }

    private func makeStatement(_ sql: String, persistent: Bool) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        var hasTrailingStatement = false
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let status = sql.withCString { text in
            var tail: UnsafePointer<CChar>?
            let status = sqlite3_prepare_v3(handle.pointer, text, -1, flags, &statement, &tail)
            if var cursor = tail {
                while cursor.pointee != 0 {
                    switch UInt8(bitPattern: cursor.pointee) {
                    case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: ";"):
                        cursor += 1
                    default:
                        hasTrailingStatement = true
                        return status
                    }
                }
            }
            return status
        }
        guard status == SQLITE_OK else {
            sqlite3_finalize(statement)
            throw handle.error(status, sql: sql)
        }
        guard let statement else {
            throw handle.error(SQLITE_MISUSE, message: "no SQL statement to prepare", sql: sql)
        }
        guard !hasTrailingStatement else {
            sqlite3_finalize(statement)
            throw handle.error(
                SQLITE_MISUSE,
                message: "prepare takes a single statement; use execute(_:) for several",
                sql: sql
            )
        }
        return SQLiteStatement(pointer: statement, sql: sql, database: handle)
    }
}

// Only one thread at a time may use a connection; this keeps anyone from declaring otherwise.
@available(*, unavailable)
extension SQLiteConnection: Sendable {}
