import CInfinitySQLite

/// A compiled SQL statement: bind parameters, step through rows, read columns.
///
/// Not `Sendable`; used under the same lock as its connection. Finalized when released.
/// Column indexes are 0-based, parameter indexes 1-based (as in SQLite).
public final class SQLiteStatement {
    /// The SQL this statement was compiled from.
    public let sql: String

    private let pointer: OpaquePointer
    private let database: DatabaseHandle

    init(pointer: OpaquePointer, sql: String, database: DatabaseHandle) {
        self.pointer = pointer
        self.sql = sql
        self.database = database
    }

    deinit {
        sqlite3_finalize(pointer)
    }

    /// The number of `?` / named parameters.
    public var parameterCount: Int32 { sqlite3_bind_parameter_count(pointer) }

    /// The number of columns in each result row.
    public var columnCount: Int32 { sqlite3_column_count(pointer) }

    /// The name of a result column, as given by `AS` or derived by SQLite.
    public func columnName(at column: Int32) -> String {
        sqlite3_column_name(pointer, column).map { String(cString: $0) } ?? ""
    }

    // MARK: Binding

    /// Binds `values` to parameters 1…n; the count must equal ``parameterCount``.
    public func bind(_ values: [SQLiteValue]) throws {
        guard values.count == Int(parameterCount) else {
            throw database.error(
                SQLITE_RANGE,
                message: "statement takes \(parameterCount) parameters but \(values.count) values were given",
                sql: sql
            )
        }
        for (offset, value) in values.enumerated() {
            try bind(value, at: Int32(offset + 1))
        }
    }

    /// Binds one value to the parameter at `index` (1-based).
    public func bind(_ value: SQLiteValue, at index: Int32) throws {
        let status: Int32
        switch value {
        case .null:
            status = sqlite3_bind_null(pointer, index)
        case .integer(let integer):
            status = sqlite3_bind_int64(pointer, index, integer)
        case .real(let real):
            status = sqlite3_bind_double(pointer, index, real)
        case .text(var text):
            status = text.withUTF8 { utf8 in
                infinity_sqlite3_bind_text_transient(pointer, index, utf8.baseAddress, UInt64(utf8.count))
            }
        case .blob(let bytes):
            try bytes.withUnsafeBytes { try bind(blob: $0, at: index) }
            return
        }
        try check(status)
    }

    /// Binds bytes as a blob without an intermediate array; SQLite copies them before returning.
    public func bind(blob bytes: UnsafeRawBufferPointer, at index: Int32) throws {
        try check(infinity_sqlite3_bind_blob_transient(pointer, index, bytes.baseAddress, UInt64(bytes.count)))
    }

    /// Sets every parameter back to NULL and releases bound copies.
    public func clearBindings() {
        sqlite3_clear_bindings(pointer)
    }

    // MARK: Stepping

    /// Advances to the next row; `true` when a row is available, `false` when done.
    public func step() throws -> Bool {
        switch sqlite3_step(pointer) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let status: throw database.error(status, sql: sql)
        }
    }

    /// Rewinds the statement so it can run again; bindings are kept.
    public func reset() {
        // sqlite3_reset repeats the error of the last step, which step() already threw.
        sqlite3_reset(pointer)
    }

    /// Binds `values` (unless empty: then the bindings already set are used), steps until
    /// done, then resets and clears the bindings.
    public func run(_ values: [SQLiteValue] = []) throws {
        defer { finish() }
        if !values.isEmpty { try bind(values) }
        while try step() {}
    }

    /// Binds `values` (unless empty, as for ``run(_:)``), collects every row, then resets and
    /// clears the bindings.
    public func rows(_ values: [SQLiteValue] = []) throws -> [[SQLiteValue]] {
        defer { finish() }
        if !values.isEmpty { try bind(values) }
        let columns = columnCount
        var rows: [[SQLiteValue]] = []
        while try step() {
            rows.append((0..<columns).map { value(at: $0) })
        }
        return rows
    }

    private func finish() {
        reset()
        // Drops copies of large bound blobs instead of keeping them until the next use.
        clearBindings()
    }

    private func check(_ status: Int32) throws {
        guard status == SQLITE_OK else { throw database.error(status, sql: sql) }
    }

    // MARK: Columns of the current row

    /// The column as an integer (SQLite converts other types; NULL is 0).
    public func int64(at column: Int32) -> Int64 {
        sqlite3_column_int64(pointer, column)
    }

    /// The column as a floating-point number (SQLite converts other types; NULL is 0).
    public func double(at column: Int32) -> Double {
        sqlite3_column_double(pointer, column)
    }

    /// The column as UTF-8 text (NULL is "").
    public func text(at column: Int32) -> String {
        guard let text = sqlite3_column_text(pointer, column) else { return "" }
        let count = Int(sqlite3_column_bytes(pointer, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    /// The column as bytes (NULL is []).
    public func blob(at column: Int32) -> [UInt8] {
        withBlob(at: column) { [UInt8]($0) }
    }

    /// Lends the column's bytes without copying; valid only inside `body`.
    public func withBlob<R>(at column: Int32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        // sqlite3_column_bytes must come after sqlite3_column_blob, which may convert the value.
        let bytes = sqlite3_column_blob(pointer, column)
        let count = bytes == nil ? 0 : Int(sqlite3_column_bytes(pointer, column))
        return try body(UnsafeRawBufferPointer(start: bytes, count: count))
    }

    /// Whether the column is NULL.
    public func isNull(at column: Int32) -> Bool {
        sqlite3_column_type(pointer, column) == SQLITE_NULL
    }

    /// The column with its SQLite storage type.
    public func value(at column: Int32) -> SQLiteValue {
        switch sqlite3_column_type(pointer, column) {
        case SQLITE_INTEGER: .integer(int64(at: column))
        case SQLITE_FLOAT: .real(double(at: column))
        case SQLITE_TEXT: .text(text(at: column))
        case SQLITE_BLOB: .blob(blob(at: column))
        default: .null
        }
    }
}

// A statement shares its connection's single-thread rule.
@available(*, unavailable)
extension SQLiteStatement: Sendable {}
