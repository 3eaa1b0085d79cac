import Foundation
import InfinityCrypto
import InfinitySQLite
import Synchronization

/// A store's objects in one SQLite file (WAL mode, synchronous=FULL): for apps that want their
/// store in a single file. Each object is a row; a put replaces it in one transaction, so readers
/// see the old object or the new one, never a mix; ranged reads use incremental blob I/O and read
/// only the bytes asked for.
///
/// Safe to share between tasks (one connection, used under a lock).
public final class SQLiteBackend: ConditionalWrites {
    public let path: String
    private let lock = Mutex(())
    nonisolated(unsafe) private let connection: SQLiteConnection

    private static let schema = """
        CREATE TABLE IF NOT EXISTS objects(
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            data BLOB NOT NULL);
        """

    /// Opens (creating if needed) the file at `path`.
    ///
    /// - Throws: ``BackendError`` naming the file when it cannot be opened or is not a database.
    public init(path: String) throws {
        self.path = path
        do {
            let db = try SQLiteConnection(path: path)
            db.busyTimeout = .seconds(30)
            if path != ":memory:" {
                try db.enableWriteAheadLog()
                try db.execute("PRAGMA synchronous = FULL")
            }
            try db.execute(Self.schema)
            connection = db
        } catch {
            throw BackendError(code: .io, objectName: nil, message: "cannot open the single-file store \(path)", cause: error)
        }
    }

    private func withConnection<R>(_ name: String?, _ what: String, _ body: (SQLiteConnection) throws -> R) throws -> R {
        do {
            return try lock.withLock { _ in try body(connection) }
        } catch let error as BackendError {
            throw error
        } catch let error as SQLiteError {
            let code: BackendError.Code =
                switch error.code & 0xFF {
                case 13: .noSpace  // SQLITE_FULL
                case 8: .readOnly  // SQLITE_READONLY
                default: .io
                }
            throw BackendError(code: code, objectName: name, message: "cannot \(what) in \(path)", cause: error)
        }
    }

    public func put(_ name: String, _ data: [UInt8]) async throws {
        try ObjectName.validate(name)
        try withConnection(name, "store '\(name)'") { db in
            try db.cachedStatement(
                "INSERT INTO objects(name, data) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data"
            ).run([.text(name), .blob(data)])
        }
    }

    public func get(_ name: String) async throws -> [UInt8] {
        try ObjectName.validate(name)
        return try withConnection(name, "read '\(name)'") { db in
            let rows = try db.cachedStatement("SELECT data FROM objects WHERE name = ?").rows([.text(name)])
            guard let row = rows.first else { throw notFound(name) }
            if case .blob(let bytes) = row[0] { return bytes }
            return []
        }
    }

    public func get(_ name: String, range: Range<Int>) async throws -> [UInt8] {
        try ObjectName.validate(name)
        return try withConnection(name, "read '\(name)'") { db in
            let rows = try db.cachedStatement("SELECT id, length(data) FROM objects WHERE name = ?").rows([.text(name)])
            guard let row = rows.first, case .integer(let id) = row[0], case .integer(let size) = row[1] else { throw notFound(name) }
            guard range.lowerBound >= 0, range.upperBound <= Int(size) else {
                throw BackendError(
                    code: .rangeNotSatisfiable, objectName: name,
                    message: "bytes \(range.lowerBound)..<\(range.upperBound) are not all within object '\(name)' (\(size) bytes) in \(path)")
            }
            return try db.readBlob(table: "objects", column: "data", rowID: id, offset: range.lowerBound, count: range.count)
        }
    }

    public func info(_ name: String) async throws -> ObjectInfo? {
        try ObjectName.validate(name)
        return try withConnection(name, "look up '\(name)'") { db in
            let rows = try db.cachedStatement("SELECT length(data) FROM objects WHERE name = ?").rows([.text(name)])
            guard let row = rows.first, case .integer(let size) = row[0] else { return nil }
            return ObjectInfo(name: name, size: Int(size))
        }
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        try withConnection(nil, "list objects with prefix '\(prefix)'") { db in
            // Names hold only ASCII below 0x7F, so [prefix, prefix + DEL) is exactly the prefix's range.
            try db.cachedStatement("SELECT name, length(data) FROM objects WHERE name >= ? AND name < ? ORDER BY name")
                .rows([.text(prefix), .text(prefix + "\u{7F}")]).compactMap { row in
                    guard case .text(let name) = row[0], case .integer(let size) = row[1] else { return nil }
                    return ObjectInfo(name: name, size: Int(size))
                }
        }
    }

    public func delete(_ name: String) async throws {
        try ObjectName.validate(name)
        try withConnection(name, "delete '\(name)'") { db in
            try db.cachedStatement("DELETE FROM objects WHERE name = ?").run([.text(name)])
        }
    }

    // MARK: Conditional writes (the version is the SHA-256 of the contents)

    public func getVersioned(_ name: String) async throws -> (bytes: [UInt8], version: String)? {
        guard let bytes = try? await get(name) else {
            try ObjectName.validate(name)
            return nil
        }
        return (bytes, Hex.encode(SHA256.hash(bytes)))
    }

    @discardableResult
    public func put(_ name: String, _ data: [UInt8], ifVersion expected: String?) async throws -> String {
        try ObjectName.validate(name)
        try withConnection(name, "store '\(name)'") { db in
            try db.transaction {
                let rows = try db.cachedStatement("SELECT data FROM objects WHERE name = ?").rows([.text(name)])
                let current: String? = rows.first.map { row in
                    guard case .blob(let bytes) = row[0] else { return Hex.encode(SHA256.hash([UInt8]())) }
                    return Hex.encode(SHA256.hash(bytes))
                }
                guard current == expected else {
                    throw BackendError(code: .preconditionFailed, objectName: name, message: "object '\(name)' in \(path) changed since it was read")
                }
                try db.cachedStatement(
                    "INSERT INTO objects(name, data) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data"
                ).run([.text(name), .blob(data)])
            }
        }
        return Hex.encode(SHA256.hash(data))
    }

    /// Moves everything written into the file itself (out of the write-ahead log), so the store is
    /// again exactly one file. Writes are durable without it.
    public func checkpoint() throws {
        try withConnection(nil, "checkpoint") { db in try db.checkpoint(mode: .truncate) }
    }

    private func notFound(_ name: String) -> BackendError {
        BackendError(code: .notFound, objectName: name, message: "object '\(name)' not found in \(path)")
    }
}
