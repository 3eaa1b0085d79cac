import Foundation
import InfinitySQLite
import Synchronization

/// Where a sealed chunk lives.
public struct ChunkLocation: Sendable, Hashable {
    public var packName: String
    public var offset: Int
    public var length: Int
    public var plaintextLength: Int
}

/// A pack as the index records it.
public struct IndexedPack: Sendable, Hashable {
    /// The pack's object name.
    public var name: String
    public var kind: PackKind
    /// The pack's size in bytes when it was indexed.
    public var size: Int
    /// How many chunks the index places in the pack.
    public var chunkCount: Int
}

/// Totals over the index, for `stats` and reports.
public struct IndexStatistics: Sendable, Hashable, Codable {
    /// Packs in the store (not counting packs garbage collection has deleted).
    public var packCount: Int
    public var chunkCount: Int
    /// Sum of sealed chunk lengths: what the chunks occupy in packs.
    public var storedBytes: Int
    /// Sum of chunk plaintext lengths: what the chunks hold once opened.
    public var plaintextBytes: Int
    /// Chunks garbage collection found unreachable and will delete once their grace period is
    /// over (counted in ``chunkCount`` too).
    public var condemnedChunkCount: Int
    /// Sealed bytes of the condemned chunks.
    public var condemnedBytes: Int
}

/// The chunk index: chunk id → pack, offset, length, in SQLite (WAL).
///
/// It is a cache of what the pack trailers say: ``PackStore/rebuildIndex()`` recreates it from the
/// packs alone. Memory stays bounded however large the store grows; SQLite pages what it needs.
///
/// Garbage collection keeps its state here too (see ``PackStore/sweep(live:horizon:options:progress:)``):
/// a *condemned* chunk is one found unreachable; it stays readable but is hidden from
/// ``contains(_:)``, so writers store a fresh copy instead of deduplicating against it. A
/// *retired* pack is one being deleted: it keeps a row with no chunks, so that it is never
/// indexed again. Losing that state (a deleted index) is safe: a chunk that is not condemned
/// is only kept longer.
///
/// New packs are logged, not filed: ``record(packName:kind:size:entries:replacing:)`` adds one row
/// holding the pack's whole list of entries to `recent_packs`, and lookups find those entries in
/// memory. Filing each chunk under its random id would touch one page of the id-ordered table per
/// chunk, and write each such page twice (log, then checkpoint): for a commit of a few thousand
/// small chunks, several times the bytes of the commit itself. Once ``mergeThreshold`` entries
/// have gathered, they are filed in one transaction, in id order. Everything that reads or changes
/// the `chunks` table as a whole (garbage collection, checks, statistics, rebuilds) files the log
/// first, so it sees one table.
public final class ChunkIndex: Sendable {
    /// Schema 2 added the garbage collection columns, schema 3 the log of recent packs; older
    /// schemas are upgraded in place.
    public static let schemaVersion = 3
    /// Logged entries that trigger filing them (about 3 MiB of log, 7 MiB of memory).
    public static let mergeThreshold = 65_536
    /// SQLite's page cache for the index, at most (it fills only as pages are read).
    static let cacheKiB = 16 << 10
    public let path: String
    // A SQLite connection must be used by one thread at a time: it is only touched while `lock`
    // is held, which is what makes sharing this class between tasks safe. The lock also guards the
    // in-memory copy of the log.
    private let lock = Mutex(RecentPacks())
    nonisolated(unsafe) private let connection: SQLiteConnection

    /// Opens (creating if needed) the index database at `path`; `":memory:"` keeps it in memory.
    public init(path: String) throws {
        self.path = path
        let db: SQLiteConnection
        do {
            db = try SQLiteConnection(path: path)
            if path != ":memory:" {
                // Small pages for a new index: chunk ids are random, so a commit's new chunks land
                // on as many pages as there are chunks, and each such page is written twice (log,
                // then checkpoint). With 1 KiB pages, a commit of 1,000 changes to a 1M-entry map
                // writes about half the index bytes 4 KiB pages do. (No effect on an existing index.)
                try db.execute("PRAGMA page_size = 1024")
                try db.enableWriteAheadLog()
                // A recorded pack must survive a power cut once flush() has returned.
                try db.execute("PRAGMA synchronous = FULL")
                // Lookups of random ids touch every page of the id-ordered table: with SQLite's
                // default 2 MiB cache, the 2,000 claim lookups of a commit of 1,000 changes to a
                // 1M-entry map spent 40% of their time reading pages back from the file.
                try db.execute("PRAGMA cache_size = -\(Self.cacheKiB)")
            }
            db.busyTimeout = .seconds(30)
            try db.transaction {
                try db.execute(Self.schema)
                try Self.upgradeSchema(db, path: path)
            }
        } catch let error as PackError {
            throw error
        } catch {
            throw PackError(.index, "cannot open the chunk index at \(path)", cause: error)
        }
        connection = db
        // Read the log now: a damaged one is then reported at open, as SQLite reports damage.
        do {
            try lock.withLock { try $0.refresh(db) }
        } catch let error as PackError {
            throw error
        } catch {
            throw PackError(.index, "cannot read the log of recent packs in the chunk index at \(path)", cause: error)
        }
    }

    /// `condemned_ms`: when garbage collection found the chunk unreachable (chunks), or found
    /// that no chunk in the pack is reachable (packs); NULL otherwise. `retired`: the pack is
    /// being or has been deleted.
    private static let schema = """
        CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS packs(
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind INTEGER NOT NULL,
            size INTEGER NOT NULL,
            condemned_ms INTEGER,
            retired INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE IF NOT EXISTS chunks(
            id BLOB PRIMARY KEY,
            pack INTEGER NOT NULL REFERENCES packs(id),
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL,
            plaintext_length INTEGER NOT NULL,
            condemned_ms INTEGER) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS chunks_by_pack ON chunks(pack);
        CREATE TABLE IF NOT EXISTS received(id BLOB PRIMARY KEY) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS recent_packs(
            row INTEGER PRIMARY KEY AUTOINCREMENT,
            pack INTEGER NOT NULL REFERENCES packs(id),
            entries BLOB NOT NULL);
        """

    /// Records the schema of a new index, or upgrades a schema 1 index (which lacks the garbage
    /// collection columns). A newer schema is refused: an older build would not honour it.
    private static func upgradeSchema(_ db: SQLiteConnection, path: String) throws {
        let version = try db.prepare("SELECT value FROM meta WHERE key = 'schema'").rows()
        guard let row = version.first, case .text(let text) = row[0] else {
            try db.prepare("INSERT INTO meta(key, value) VALUES ('schema', ?)").run([.text(String(schemaVersion))])
            return
        }
        switch Int(text) {
        case schemaVersion:
            return
        case 1:
            try db.execute(
                """
                ALTER TABLE packs ADD COLUMN condemned_ms INTEGER;
                ALTER TABLE packs ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE chunks ADD COLUMN condemned_ms INTEGER;
                """)
            try db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run([.text(String(schemaVersion))])
        case 2:
            // The log table was created with the schema above; an older build must not open the
            // index once it holds rows there, which the new version number ensures.
            try db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run([.text(String(schemaVersion))])
        default:
            throw PackError(
                .unsupportedFormat,
                "chunk index \(path) has schema \(text); this build uses schema \(schemaVersion) (delete it to rebuild it from the packs)")
        }
    }

    /// Runs `body` on the connection, one caller at a time, after filing the log of recent packs,
    /// so that `body` sees every chunk in the `chunks` table. `what` names the work in an error;
    /// it is only built when there is one.
    func withConnection<R>(_ what: @autoclosure () -> String, _ body: (SQLiteConnection) throws -> R) throws -> R {
        try withLog(what()) { db, recent in
            try Self.fileLog(db, &recent)
            return try body(db)
        }
    }

    /// Runs `body` on the connection and the log of recent packs, brought up to date with what
    /// other connections wrote; the log is not filed.
    private func withLog<R>(
        _ what: @autoclosure () -> String, _ body: (SQLiteConnection, inout RecentPacks) throws -> R
    ) throws -> R {
        do {
            return try lock.withLock { recent in
                try recent.refresh(connection)
                return try body(connection, &recent)
            }
        } catch {
            throw PackError(.index, "chunk index \(path): \(what()) failed", cause: error)
        }
    }

    /// Where the chunk is, or nil when the index does not know it.
    public func location(of id: ChunkID) throws -> ChunkLocation? {
        try withLog("lookup of chunk \(id.shortDescription)") { db, recent in try Self.location(of: id, db, recent) }
    }

    /// Where each chunk is, as ``location(of:)`` says, looked up in one read transaction: a
    /// restore asks for the chunks of a thousand files at a time.
    public func locations(of ids: [ChunkID]) throws -> [ChunkLocation?] {
        try withLog("lookup of \(ids.count) chunks") { db, recent in
            try db.readTransaction { try ids.map { try Self.location(of: $0, db, recent) } }
        }
    }

    private static func location(of id: ChunkID, _ db: SQLiteConnection, _ recent: RecentPacks) throws -> ChunkLocation? {
        let statement = try db.cachedStatement(
            """
            SELECT packs.name, chunks.offset, chunks.length, chunks.plaintext_length, chunks.condemned_ms IS NULL
            FROM chunks JOIN packs ON packs.id = chunks.pack WHERE chunks.id = ?
            """)
        defer { statement.reset() }
        try statement.bind([.blob(id.bytes)])
        var filed: ChunkLocation? = nil
        if try statement.step() {
            filed = ChunkLocation(
                packName: statement.text(at: 0), offset: Int(statement.int64(at: 1)),
                length: Int(statement.int64(at: 2)), plaintextLength: Int(statement.int64(at: 3)))
            if statement.int64(at: 4) != 0 { return filed }
        }
        // A logged copy replaces a condemned one when filed, as a new record would.
        return recent.location(of: id) ?? filed
    }

    /// Whether a writer may deduplicate against the chunk: the index knows it and garbage
    /// collection has not condemned it. (A condemned chunk is still readable through
    /// ``location(of:)``, but whoever stores it again must write a fresh copy.)
    public func contains(_ id: ChunkID) throws -> Bool {
        try withLog("lookup of chunk \(id.shortDescription)") { db, recent in
            if recent.location(of: id) != nil { return true }
            let statement = try db.cachedStatement("SELECT 1 FROM chunks WHERE id = ? AND condemned_ms IS NULL")
            defer { statement.reset() }
            try statement.bind([.blob(id.bytes)])
            return try statement.step()
        }
    }

    /// Marks chunks that came from another agent and whose plaintext this agent's content key
    /// does not map to their id: see ``containsOwnData(_:)``.
    public func markReceived(_ ids: some Sequence<ChunkID>) throws {
        try withLog("marking received chunks") { db, _ in
            try db.transaction {
                let insert = try db.cachedStatement("INSERT OR IGNORE INTO received(id) VALUES (?)")
                for id in ids { try insert.run([.blob(id.bytes)]) }
            }
        }
    }

    /// For each id, whether a writer of this agent's own data may deduplicate against the chunk:
    /// as ``contains(_:)``, except for a chunk marked received. This agent's own writes only ever
    /// ask for ids its content key gives, and a received chunk's id is not one of those for the
    /// plaintext it holds, so a writer that meets one has found a copy forged under a key of its
    /// own. That copy is condemned and unmarked: the writer stores its own, which replaces it
    /// when its pack is recorded, and until then the forged copy stays readable as before.
    public func containsOwnData(_ ids: [ChunkID]) throws -> [Bool] {
        // One read transaction for all; the rare received chunk then takes the path of one id,
        // which may write.
        var received: [Int] = []
        var present = try withLog("lookup of \(ids.count) chunks") { db, recent in
            try db.readTransaction {
                let inReceived = try db.cachedStatement("SELECT 1 FROM received WHERE id = ?")
                let filed = try db.cachedStatement(
                    "SELECT condemned_ms IS NULL, EXISTS (SELECT 1 FROM received WHERE id = ?1) FROM chunks WHERE id = ?1")
                return try ids.enumerated().map { position, id in
                    let isLogged = recent.location(of: id) != nil
                    let statement = isLogged ? inReceived : filed
                    defer { statement.reset() }
                    try statement.bind([.blob(id.bytes)])
                    guard try statement.step() else { return isLogged }
                    if isLogged || statement.int64(at: 1) != 0 {
                        received.append(position)
                        return false
                    }
                    return statement.int64(at: 0) != 0
                }
            }
        }
        for position in received { present[position] = try containsOwnData(ids[position]) }
        return present
    }

    /// `containsOwnData(_:)` for one id (see the form for many ids).
    public func containsOwnData(_ id: ChunkID) throws -> Bool {
        try withLog("lookup of chunk \(id.shortDescription)") { db, recent in
            if recent.location(of: id) != nil {
                let received = try db.cachedStatement("SELECT 1 FROM received WHERE id = ?").rows([.blob(id.bytes)])
                if received.isEmpty { return true }
                // Rare: a received chunk still in the log is filed, then handled as below.
                try Self.fileLog(db, &recent)
            }
            let rows = try db.cachedStatement(
                "SELECT condemned_ms IS NULL, EXISTS (SELECT 1 FROM received WHERE id = ?1) FROM chunks WHERE id = ?1"
            ).rows([.blob(id.bytes)])
            guard let row = rows.first, case .integer(let visible) = row[0], case .integer(let received) = row[1] else {
                return false
            }
            guard received != 0 else { return visible != 0 }
            try db.transaction {
                try db.cachedStatement("UPDATE chunks SET condemned_ms = ?2 WHERE id = ?1 AND condemned_ms IS NULL")
                    .run([.blob(id.bytes), .integer(Int64((Date().timeIntervalSince1970 * 1000).rounded()))])
                try db.cachedStatement("DELETE FROM received WHERE id = ?").run([.blob(id.bytes)])
            }
            return false
        }
    }

    /// Records a stored pack and its chunks in one transaction. A chunk already indexed in another
    /// pack keeps its first location, unless that copy is condemned (this one replaces it) or
    /// `replacing` is set (a rebuild trusts the trailers over the index).
    ///
    /// - Returns: false, recording nothing, when the pack is retired: garbage collection is
    ///   deleting it, so its chunks must not be offered to anyone again.
    ///
    /// A new pack is logged (see the type's notes); a pack the index knew already (a rebuild, a
    /// pack recorded twice) is filed at once.
    @discardableResult
    public func record(packName: String, kind: PackKind, size: Int, entries: [PackEntry], replacing: Bool = false) throws -> Bool {
        try withLog("recording pack \(packName)") { db, recent in
            if replacing { try Self.fileLog(db, &recent) }
            enum Outcome { case retired, filed, logged(row: Int64) }
            let outcome: Outcome = try db.transaction {
                let (packID, isNew) = try Self.packRow(named: packName, kind: kind, size: size, db)
                guard let packID else { return .retired }
                if isNew && !replacing {
                    try db.cachedStatement("INSERT INTO recent_packs(pack, entries) VALUES (?, ?)")
                        .run([.integer(packID), .blob(PackFormat.encodeTrailer(kind: kind, entries: entries))])
                    return .logged(row: db.lastInsertRowID)
                }
                try Self.file(entries.map { (packID, $0) }, replacing: replacing, db)
                return .filed
            }
            switch outcome {
            case .retired:
                return false
            case .filed:
                return true
            case .logged(let row):
                recent.add(row: row, packName: packName, entries: entries)
                // The pack is recorded: a failure to file the log now only leaves it for later.
                if recent.entryCount >= Self.mergeThreshold { try? Self.fileLog(db, &recent) }
                return true
            }
        }
    }

    /// Files entries in the `chunks` table, each under its pack row, in the order given. A chunk
    /// already filed keeps its first location unless that copy is condemned, or `replacing` is set.
    private static func file(_ entries: [(packID: Int64, entry: PackEntry)], replacing: Bool, _ db: SQLiteConnection) throws {
        let insert = try db.cachedStatement(
            replacing
                ? "INSERT OR REPLACE INTO chunks(id, pack, offset, length, plaintext_length) VALUES (?, ?, ?, ?, ?)"
                : """
                INSERT INTO chunks(id, pack, offset, length, plaintext_length) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET pack = excluded.pack, offset = excluded.offset,
                    length = excluded.length, plaintext_length = excluded.plaintext_length, condemned_ms = NULL
                WHERE chunks.condemned_ms IS NOT NULL
                """)
        var packIDs = Set<Int64>()
        for (packID, entry) in entries {
            try insert.run([
                .blob(entry.id.bytes), .integer(packID), .integer(Int64(entry.offset)),
                .integer(Int64(entry.length)), .integer(Int64(entry.plaintextLength)),
            ])
            packIDs.insert(packID)
        }
        // A pack that serves a chunk is not condemned (a rebuild may re-record one).
        let revive = try db.cachedStatement(
            """
            UPDATE packs SET condemned_ms = NULL WHERE id = ?1 AND condemned_ms IS NOT NULL
            AND EXISTS (SELECT 1 FROM chunks WHERE pack = ?1 AND condemned_ms IS NULL)
            """)
        for packID in packIDs { try revive.run([.integer(packID)]) }
    }

    /// Files every logged pack, this connection's and others', in one transaction: the entries in
    /// id order (so that the table's pages are each written once), each pack's in the order logged.
    static func fileLog(_ db: SQLiteConnection, _ recent: inout RecentPacks) throws {
        // The table decides, not the copy in memory: what garbage collection sees must not
        // depend on that copy being current.
        guard try !db.cachedStatement("SELECT 1 FROM recent_packs LIMIT 1").rows().isEmpty else {
            recent.removeAll()
            return
        }
        try db.transaction {
            var logged: [(packID: Int64, entry: PackEntry)] = []
            for row in try db.cachedStatement(RecentPacks.selectAll + " ORDER BY recent_packs.row").rows() {
                let (_, packID, _, entries) = try RecentPacks.decode(row, path: db.path)
                for entry in entries { logged.append((packID, entry)) }
            }
            // A stable order keeps a chunk logged twice in the order logged: the first one wins.
            let order = logged.indices.sorted { a, b in
                logged[a].entry.id < logged[b].entry.id || (logged[a].entry.id == logged[b].entry.id && a < b)
            }
            try file(order.map { logged[$0] }, replacing: false, db)
            try db.cachedStatement("DELETE FROM recent_packs").run()
        }
        recent.removeAll()
    }

    /// The row id of pack `name`, inserted if new (`isNew`); a nil id when the pack is retired.
    static func packRow(named name: String, kind: PackKind, size: Int, _ db: SQLiteConnection) throws -> (id: Int64?, isNew: Bool) {
        try db.cachedStatement("INSERT OR IGNORE INTO packs(name, kind, size) VALUES (?, ?, ?)")
            .run([.text(name), .integer(Int64(kind.rawValue)), .integer(Int64(size))])
        let isNew = db.changes > 0
        let rows = try db.cachedStatement("SELECT id, retired FROM packs WHERE name = ?").rows([.text(name)])
        guard case .integer(let packID) = rows.first?[0], case .integer(let retired) = rows.first?[1] else {
            throw PackError(.index, "pack \(name) vanished from the index while being recorded")
        }
        return (retired == 0 ? packID : nil, isNew)
    }

    /// The names of all packs the index knows, retired ones included (so that a pack being
    /// deleted is never indexed again as missing).
    public func packNames() throws -> Set<String> {
        try withLog("listing packs") { db, _ in
            var names = Set<String>()
            for row in try db.cachedStatement("SELECT name FROM packs").rows() {
                if case .text(let name) = row[0] { names.insert(name) }
            }
            return names
        }
    }

    /// The names of the newest packs of `kind` (last indexed first), as many as add up to no
    /// more than `byteLimit` bytes and at most 4,096. Retired packs are left out. (After a
    /// rebuild of the index, "newest" is the order the rebuild indexed them in.)
    public func newestPacks(of kind: PackKind, upTo byteLimit: Int) throws -> [String] {
        try withLog("listing packs") { db, _ in
            var names: [String] = []
            var total = 0
            // However small the packs, no more than 4,096 are named.
            let rows = try db.cachedStatement("SELECT name, size FROM packs WHERE kind = ? AND retired = 0 ORDER BY id DESC LIMIT 4096")
                .rows([.integer(Int64(kind.rawValue))])
            for row in rows {
                guard case .text(let name) = row[0], case .integer(let size) = row[1] else { continue }
                guard total + Int(size) <= byteLimit else { break }
                total += Int(size)
                names.append(name)
            }
            return names
        }
    }

    /// The kind of an indexed pack, or nil when the index does not know it.
    public func kind(ofPack name: String) throws -> PackKind? {
        try withLog("reading pack \(name)") { db, _ in
            let rows = try db.cachedStatement("SELECT kind FROM packs WHERE name = ?").rows([.text(name)])
            guard case .integer(let kind) = rows.first?[0] else { return nil }
            return PackKind(rawValue: UInt8(clamping: kind))
        }
    }

    /// Every indexed pack with the number of chunks the index places in it, sorted by name.
    /// Retired packs (deleted, or being deleted, by garbage collection) are not listed.
    public func packs() throws -> [IndexedPack] {
        try withConnection("listing packs") { db in
            let rows = try db.cachedStatement(
                """
                SELECT packs.name, packs.kind, packs.size, (SELECT count(*) FROM chunks WHERE chunks.pack = packs.id)
                FROM packs WHERE packs.retired = 0 ORDER BY packs.name
                """
            ).rows()
            return try rows.map { row in
                guard case .text(let name) = row[0], case .integer(let kind) = row[1], case .integer(let size) = row[2],
                    case .integer(let count) = row[3]
                else { throw PackError(.index, "the index holds a malformed pack row") }
                guard let packKind = PackKind(rawValue: UInt8(clamping: kind)) else {
                    throw PackError(.index, "the index records pack \(name) with unknown kind \(kind)")
                }
                return IndexedPack(name: name, kind: packKind, size: Int(size), chunkCount: Int(count))
            }
        }
    }

    /// The chunks the index places in pack `name`, by offset.
    public func entries(inPack name: String) throws -> [PackEntry] {
        try withConnection("listing the chunks of pack \(name)") { db in
            let rows = try db.cachedStatement(
                """
                SELECT chunks.id, chunks.offset, chunks.length, chunks.plaintext_length
                FROM chunks JOIN packs ON packs.id = chunks.pack WHERE packs.name = ? ORDER BY chunks.offset
                """
            ).rows([.text(name)])
            return try rows.map { row in
                guard case .blob(let bytes) = row[0], let id = ChunkID(bytes: bytes), case .integer(let offset) = row[1],
                    case .integer(let length) = row[2], case .integer(let plaintextLength) = row[3]
                else { throw PackError(.index, "the index holds a malformed entry in pack \(name)") }
                return PackEntry(id: id, offset: Int(offset), length: Int(length), plaintextLength: Int(plaintextLength))
            }
        }
    }

    /// Index entries that cannot be right: outside their pack's recorded size (or at a negative
    /// offset or length), or in a pack the index does not list.
    public func entriesOutsideTheirPacks() throws -> [(id: ChunkID, packName: String?, entry: PackEntry, packSize: Int?)] {
        try withConnection("checking chunk locations") { db in
            let rows = try db.cachedStatement(
                """
                SELECT chunks.id, packs.name, chunks.offset, chunks.length, chunks.plaintext_length, packs.size
                FROM chunks LEFT JOIN packs ON packs.id = chunks.pack
                WHERE packs.id IS NULL OR chunks.offset < 0 OR chunks.length < 0 OR chunks.offset + chunks.length > packs.size
                ORDER BY chunks.id
                """
            ).rows()
            return try rows.map { row in
                guard case .blob(let bytes) = row[0], let id = ChunkID(bytes: bytes), case .integer(let offset) = row[2],
                    case .integer(let length) = row[3], case .integer(let plaintextLength) = row[4]
                else { throw PackError(.index, "the index holds a malformed chunk entry") }
                let packName: String? = if case .text(let name) = row[1] { name } else { nil }
                let packSize: Int? = if case .integer(let size) = row[5] { Int(size) } else { nil }
                let entry = PackEntry(id: id, offset: Int(offset), length: Int(length), plaintextLength: Int(plaintextLength))
                return (id, packName, entry, packSize)
            }
        }
    }

    /// Forgets every pack not named in `names`, and its chunks. Retired packs stay known.
    public func retainOnly(packs names: Set<String>) throws {
        let gone = try packNames().subtracting(names).subtracting(retiredPackNames())
        guard !gone.isEmpty else { return }
        try withConnection("forgetting \(gone.count) packs") { db in
            try db.transaction {
                let chunks = try db.cachedStatement("DELETE FROM chunks WHERE pack = (SELECT id FROM packs WHERE name = ?)")
                let packs = try db.cachedStatement("DELETE FROM packs WHERE name = ?")
                for name in gone {
                    try chunks.run([.text(name)])
                    try packs.run([.text(name)])
                }
            }
        }
    }

    /// Counts and byte totals over all indexed chunks.
    public func statistics() throws -> IndexStatistics {
        try withConnection("statistics") { db in
            let packs = try db.cachedStatement("SELECT count(*) FROM packs WHERE retired = 0").rows()
            let chunks = try db.cachedStatement(
                """
                SELECT count(*), coalesce(sum(length), 0), coalesce(sum(plaintext_length), 0),
                    count(condemned_ms), coalesce(sum(CASE WHEN condemned_ms IS NULL THEN 0 ELSE length END), 0)
                FROM chunks
                """
            ).rows()
            func integer(_ value: SQLiteValue?) -> Int {
                if case .integer(let number) = value { return Int(number) }
                return 0
            }
            return IndexStatistics(
                packCount: integer(packs.first?[0]), chunkCount: integer(chunks.first?[0]),
                storedBytes: integer(chunks.first?[1]), plaintextBytes: integer(chunks.first?[2]),
                condemnedChunkCount: integer(chunks.first?[3]), condemnedBytes: integer(chunks.first?[4]))
        }
    }
}

/// The log of recent packs as this connection last read it, with their entries by chunk id.
///
/// Log rows are only ever appended (row ids are never reused) or all deleted when filed, so a row
/// this copy holds that is gone from the table means another connection filed the log.
struct RecentPacks {
    private var locations: [ChunkID: ChunkLocation] = [:]
    private var rows = Set<Int64>()
    private(set) var entryCount = 0
    /// SQLite's `data_version` when last read: it changes when another connection commits.
    private var dataVersion: Int64? = nil

    /// Every logged pack; append `ORDER BY recent_packs.row`, after a `WHERE` if wanted.
    static let selectAll = """
        SELECT recent_packs.row, recent_packs.pack, packs.name, recent_packs.entries
        FROM recent_packs JOIN packs ON packs.id = recent_packs.pack
        """

    func location(of id: ChunkID) -> ChunkLocation? { locations[id] }

    /// Adds a logged pack; a chunk logged before keeps its first location.
    mutating func add(row: Int64, packName: String, entries: [PackEntry]) {
        guard rows.insert(row).inserted else { return }
        locations.reserveCapacity(locations.count + entries.count)
        for entry in entries where locations[entry.id] == nil {
            locations[entry.id] = ChunkLocation(
                packName: packName, offset: entry.offset, length: entry.length, plaintextLength: entry.plaintextLength)
        }
        entryCount += entries.count
    }

    mutating func removeAll() {
        locations = [:]
        rows = []
        entryCount = 0
    }

    /// Catches up with what other connections logged or filed since the last call. On any
    /// failure the copy is emptied and marked stale, so the next call reads the log again.
    mutating func refresh(_ db: SQLiteConnection) throws {
        // Every lookup asks: step the statement rather than build rows.
        let version = try db.cachedStatement("PRAGMA data_version")
        defer { version.reset() }
        guard try version.step() else { throw PackError(.index, "SQLite gave no data version") }
        let current = version.int64(at: 0)
        if current == dataVersion { return }
        dataVersion = nil
        do {
            var present = Set<Int64>()
            for row in try db.cachedStatement("SELECT row FROM recent_packs").rows() {
                if case .integer(let number) = row[0] { present.insert(number) }
            }
            if !rows.isSubset(of: present) { removeAll() }
            // Not only rows after this copy's last: another connection may have logged one just
            // before this connection logged its own.
            if let firstMissing = present.subtracting(rows).min() {
                for row in try db.cachedStatement(Self.selectAll + " WHERE recent_packs.row >= ? ORDER BY recent_packs.row")
                    .rows([.integer(firstMissing)])
                {
                    let (logRow, _, packName, entries) = try Self.decode(row, path: db.path)
                    add(row: logRow, packName: packName, entries: entries)
                }
            }
            dataVersion = current
        } catch {
            removeAll()
            throw error
        }
    }

    /// One row of ``selectAll``. A row that does not decode is damage to the index (reported as
    /// SQLite reports a corrupt database, so that opening a store rebuilds the index).
    static func decode(_ row: [SQLiteValue], path: String) throws -> (row: Int64, packID: Int64, packName: String, entries: [PackEntry]) {
        func damaged(_ why: String) -> PackError {
            PackError(
                .index, "chunk index \(path): its log of recent packs holds a damaged row (\(why)); delete the index to rebuild it from the packs",
                cause: SQLiteError(code: SQLiteError.corrupt, message: why, path: path))
        }
        guard row.count == 4, case .integer(let logRow) = row[0], case .integer(let packID) = row[1], case .text(let name) = row[2],
            case .blob(let bytes) = row[3]
        else { throw damaged("a column is missing or of the wrong type") }
        // Bounded by the largest offset a trailer can hold, not the pack's recorded size: a
        // damaged size is the checker's to report, not a reason to refuse every lookup.
        guard let entries = try? PackFormat.parseTrailer(bytes, packSize: Int(UInt32.max) * 2, packName: name).entries else {
            throw damaged("the entries of pack \(name) do not decode")
        }
        return (logRow, packID, name, entries)
    }
}
