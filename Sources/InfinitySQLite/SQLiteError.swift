import CInfinitySQLite

/// An error reported by SQLite, with the database and the statement it came from.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The SQLite extended result code, e.g. 2067 (`SQLITE_CONSTRAINT_UNIQUE`).
    /// Compare ``primaryCode`` with the constants below to ignore the extended part.
    public var code: Int32
    /// What went wrong, usually `sqlite3_errmsg` of the connection.
    public var message: String
    /// The database file, or `":memory:"`; `nil` when the error is not tied to one.
    public var path: String?
    /// The SQL being prepared or run when the error happened.
    public var sql: String?

    /// An error with an SQLite result code; normally made by this module.
    public init(code: Int32, message: String, path: String? = nil, sql: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.sql = sql
    }

    /// The primary result code (the low byte of ``code``), e.g. 19 (`SQLITE_CONSTRAINT`).
    public var primaryCode: Int32 { code & 0xFF }

    /// The English explanation SQLite gives for ``code`` (`sqlite3_errstr`).
    public var codeDescription: String { String(cString: sqlite3_errstr(code)) }

    /// Code, explanation, message, database and SQL in one line.
    public var description: String {
        var text = "SQLite error \(code) (\(codeDescription)): \(message)"
        if let path { text += "; database: \(path)" }
        if let sql { text += "; SQL: \(sql)" }
        return text
    }

    // Primary result codes callers commonly branch on; other modules cannot import sqlite3.h.
    /// `SQLITE_ERROR`: a generic error, e.g. an SQL syntax error.
    public static let error: Int32 = SQLITE_ERROR
    /// `SQLITE_BUSY`: another connection holds a conflicting lock (after the busy timeout).
    public static let busy: Int32 = SQLITE_BUSY
    /// `SQLITE_LOCKED`: a conflict inside this connection's shared cache.
    public static let locked: Int32 = SQLITE_LOCKED
    /// `SQLITE_READONLY`: a write to a read-only database.
    public static let readOnly: Int32 = SQLITE_READONLY
    /// `SQLITE_IOERR`: the operating system reported an I/O error.
    public static let ioError: Int32 = SQLITE_IOERR
    /// `SQLITE_CORRUPT`: the database file is malformed.
    public static let corrupt: Int32 = SQLITE_CORRUPT
    /// `SQLITE_FULL`: the disk is full.
    public static let full: Int32 = SQLITE_FULL
    /// `SQLITE_CANTOPEN`: the file could not be opened.
    public static let cannotOpen: Int32 = SQLITE_CANTOPEN
    /// `SQLITE_CONSTRAINT`: a UNIQUE, NOT NULL, CHECK or foreign key constraint failed.
    public static let constraint: Int32 = SQLITE_CONSTRAINT
    /// `SQLITE_MISUSE`: the API was used incorrectly.
    public static let misuse: Int32 = SQLITE_MISUSE
    /// `SQLITE_RANGE`: a parameter index or count is out of range.
    public static let range: Int32 = SQLITE_RANGE
    /// `SQLITE_NOTADB`: the file is not an SQLite database.
    public static let notADatabase: Int32 = SQLITE_NOTADB
}
