import CInfinitySQLite

/// Sole owner of an open `sqlite3 *`.
///
/// Both the connection and every statement hold this handle, so a statement that outlives
/// its `SQLiteConnection` still runs against an open database, and the database is closed
/// only after the last statement has been finalized.
final class DatabaseHandle {
    let pointer: OpaquePointer
    let path: String

    init(pointer: OpaquePointer, path: String) {
        self.pointer = pointer
        self.path = path
    }

    deinit {
        // close_v2 never fails with SQLITE_BUSY: all statements are finalized by now (they
        // hold this handle), and should one not be, SQLite defers the close until it is.
        sqlite3_close_v2(pointer)
    }

    /// An error for a failed call on this connection, with SQLite's own message.
    func error(_ code: Int32, sql: String?) -> SQLiteError {
        SQLiteError(code: code, message: String(cString: sqlite3_errmsg(pointer)), path: path, sql: sql)
    }

    /// An error detected by this wrapper rather than by SQLite.
    func error(_ code: Int32, message: String, sql: String?) -> SQLiteError {
        SQLiteError(code: code, message: message, path: path, sql: sql)
    }
}
