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
    /// Chunk copies the index places in packs: a chunk stored again after garbage collection
    /// condemned it counts once per copy until the condemned copy's pack is deleted.
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
/// packs alone. Memory grows with the store by about 1.3 bytes a chunk (the runs' filters and
/// fences, read at open; see below), and by the unlisted packs' ids; SQLite pages the rest.
///
/// Garbage collection keeps its state here too (see ``PackStore/sweep(live:horizon:options:progress:)``):
/// a *condemned* chunk is one found unreachable; it stays readable but is hidden from
/// ``contains(_:)``, so writers store a fresh copy instead of deduplicating against it. A
/// *retired* pack is one being deleted: it keeps a row with no chunks, so that it is never
/// indexed again. Losing that state (a deleted index) is safe: a chunk that is not condemned
/// is only kept longer.
///
/// **Layout.** Each chunk has a row in `chunks`, keyed by pack row and id, so a new pack's rows
/// are appended at the end of the table: a commit of a few thousand small chunks writes about
/// 120 bytes a chunk (its row, then the checkpoint's copy). A table keyed by the random id would
/// instead touch one page per chunk, and rewrite most of the table each time a batch was filed.
/// Ids are found through *runs*: sorted lists of (first 8 bytes of the id, pack row), 12 bytes an
/// entry, written once and merged four at a time in tiers, with a Bloom filter and the first
/// prefix of each 4 KiB block held in memory. The chunks of packs no run lists yet (usually fewer
/// than ``runThreshold``) are held in memory, read from their rows at open. A run or the memory only
/// says where to look; the row decides. A chunk has at most one visible (not condemned) row:
/// a record skips a chunk that has one, and a chunk recorded in two packs stays where it was
/// recorded first.
public final class ChunkIndex: Sendable {
    /// Schema 2 added the garbage collection columns, schema 3 a log of recent packs, schema 4
    /// the rows by pack and the runs; older schemas are upgraded in place.
    public static let schemaVersion = 4
    /// Chunks of unlisted packs that trigger writing them as a run (about 5 MiB of memory until
    /// then).
    public static let runThreshold = 65_536
    /// ``runThreshold``, or a smaller one given at open (tests that reach several tiers).
    let runThreshold: Int
    /// Runs of one tier that are merged into one run of the next.
    static let mergeFanIn = 4
    /// SQLite's page cache for the index, at most (it fills only as pages are read).
    static let cacheKiB = 16 << 10
    public let path: String
    // A SQLite connection must be used by one thread at a time: it is only touched while `lock`
    // is held, which is what makes sharing this class between tasks safe. The lock also guards
    // what this connection knows of the runs and unlisted packs.
    private let lock = Mutex(IndexView())
    nonisolated(unsafe) private let connection: SQLiteConnection

    /// Opens (creating if needed) the index database at `path`; `":memory:"` keeps it in memory.
    public convenience init(path: String) throws {
        try self.init(path: path, runThreshold: Self.runThreshold)
    }

    init(path: String, runThreshold: Int) throws {
        precondition(runThreshold > 0)
        self.path = path
        self.runThreshold = runThreshold
        let db: SQLiteConnection
        do {
            db = try SQLiteConnection(path: path)
            if path != ":memory:" {
                // Small pages for a new index: a lookup reads a page of rows and a block of a
                // run, and a commit's new rows fill whole pages at the table's end either way.
                // (No effect on an existing index.)
                try db.execute("PRAGMA page_size = 1024")
                try db.enableWriteAheadLog()
                // A recorded pack must survive a power cut once flush() has returned.
                try db.execute("PRAGMA synchronous = FULL")
                // Lookups touch random rows and run blocks: keep up to 16 MiB of pages rather than
                // SQLite's default 2 MiB.
                try db.execute("PRAGMA cache_size = -\(Self.cacheKiB)")
            }
            db.busyTimeout = .seconds(30)
            try db.transaction { try Self.createOrUpgradeSchema(db, path: path) }
        } catch let error as PackError {
            throw error
        } catch {
            throw PackError(.index, "cannot open the chunk index at \(path)", cause: error)
        }
        connection = db
        // Read the runs and unlisted packs now: damage is then reported at open, as SQLite
        // reports damage.
        do {
            try lock.withLock { view in try db.readTransaction { try view.refreshInSnapshot(db) } }
        } catch let error as PackError {
            throw error
        } catch {
            throw PackError(.index, "cannot read the runs of the chunk index at \(path)", cause: error)
        }
    }

    /// `condemned_ms`: when garbage collection found the chunk unreachable (chunks), or found
    /// that no chunk in the pack is reachable (packs); NULL otherwise. `retired`: the pack is
    /// being or has been deleted. `unlisted_packs`: packs whose chunks no run lists yet, with a
    /// version that changes each time the pack is recorded (so other connections read it again).
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
            pack INTEGER NOT NULL REFERENCES packs(id),
            id BLOB NOT NULL,
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL,
            plaintext_length INTEGER NOT NULL,
            condemned_ms INTEGER,
            PRIMARY KEY(pack, id)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS received(id BLOB PRIMARY KEY) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS unlisted_packs(version INTEGER PRIMARY KEY AUTOINCREMENT, pack INTEGER NOT NULL UNIQUE);
        CREATE TABLE IF NOT EXISTS runs(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            entry_count INTEGER NOT NULL,
            fences BLOB NOT NULL,
            filter BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS run_blocks(
            run INTEGER NOT NULL,
            block INTEGER NOT NULL,
            entries BLOB NOT NULL,
            PRIMARY KEY(run, block)) WITHOUT ROWID;
        """

    /// Creates the schema of a new index, or upgrades an older one in place. A newer schema is
    /// refused: an older build would not honour it.
    private static func createOrUpgradeSchema(_ db: SQLiteConnection, path: String) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        let version = try db.prepare("SELECT value FROM meta WHERE key = 'schema'").rows()
        guard let row = version.first, case .text(let text) = row[0] else {
            try db.execute(schema)
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
            try upgradeToRowsByPack(db, path: path)
        case 2, 3:
            try upgradeToRowsByPack(db, path: path)
        default:
            throw PackError(
                .unsupportedFormat,
                "chunk index \(path) has schema \(text); this build uses schema \(schemaVersion) (delete it to rebuild it from the packs)")
        }
        try db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run([.text(String(schemaVersion))])
    }

    /// Schemas 1–3 kept one row per chunk keyed by id, and schema 3 a log of new packs besides:
    /// both move into the rows by pack, the log's entries where the id has no visible row yet
    /// (as filing the log would have done), and one run lists them all.
    private static func upgradeToRowsByPack(_ db: SQLiteConnection, path: String) throws {
        try db.execute(
            """
            DROP INDEX IF EXISTS chunks_by_pack;
            ALTER TABLE chunks RENAME TO chunks_by_id;
            """)
        try db.execute(schema)
        try db.execute(
            """
            INSERT INTO chunks(pack, id, offset, length, plaintext_length, condemned_ms)
            SELECT pack, id, offset, length, plaintext_length, condemned_ms FROM chunks_by_id ORDER BY pack, id
            """)
        let hasLog = try !db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'recent_packs'").rows().isEmpty
        if hasLog {
            let visible = try db.prepare("SELECT 1 FROM chunks_by_id WHERE id = ? AND condemned_ms IS NULL")
            let insert = try db.prepare(
                "INSERT OR REPLACE INTO chunks(pack, id, offset, length, plaintext_length) VALUES (?, ?, ?, ?, ?)")
            var logged = Set<ChunkID>()
            for row in try db.prepare("SELECT row, pack, entries FROM recent_packs ORDER BY row").rows() {
                guard case .integer(let packID) = row[1], case .blob(let bytes) = row[2],
                    let entries = try? PackFormat.parseTrailer(bytes, packSize: Int(UInt32.max) * 2, packName: "\(packID)").entries
                else { throw damaged("its log of recent packs holds a damaged row", path: path) }
                for entry in entries where !logged.contains(entry.id) {
                    guard try visible.rows([.blob(entry.id.bytes)]).isEmpty else { continue }
                    logged.insert(entry.id)
                    try insert.run([
                        .integer(packID), .blob(entry.id.bytes), .integer(Int64(entry.offset)),
                        .integer(Int64(entry.length)), .integer(Int64(entry.plaintextLength)),
                    ])
                }
            }
            try db.execute("DROP TABLE recent_packs")
        }
        try db.execute("DROP TABLE chunks_by_id")
        try rebuildRuns(db)
    }

    /// An error for damage to the index, reported as SQLite reports a corrupt database, so that
    /// opening a store rebuilds the index.
    static func damaged(_ why: String, path: String) -> PackError {
        PackError(
            .index, "chunk index \(path): \(why); delete the index to rebuild it from the packs",
            cause: SQLiteError(code: SQLiteError.corrupt, message: why, path: path))
    }

    /// Runs `body` on the connection, one caller at a time. `what` names the work in an error;
    /// it is only built when there is one.
    func withConnection<R>(_ what: @autoclosure () -> String, _ body: (SQLiteConnection) throws -> R) throws -> R {
        try withLockedView(what()) { db, _ in try body(db) }
    }

    /// Runs `body` on the connection and what it knows of the runs, as it is: a writer brings the
    /// view up to date inside its own write transaction (``IndexView/refreshInSnapshot(_:)``).
    func withLockedView<R>(_ what: @autoclosure () -> String, _ body: (SQLiteConnection, inout IndexView) throws -> R) throws -> R {
        do {
            return try lock.withLock { view in try body(connection, &view) }
        } catch {
            throw PackError(.index, "chunk index \(path): \(what()) failed", cause: error)
        }
    }

    /// Runs `body` inside one read transaction, with the view brought up to date in that same
    /// snapshot: the runs and rows it reads are the ones the view describes, whatever another
    /// connection commits meanwhile (a merge that deletes runs, a repack that moves rows).
    func withView<R>(_ what: @autoclosure () -> String, _ body: (SQLiteConnection, IndexView) throws -> R) throws -> R {
        try withLockedView(what()) { db, view in
            try db.readTransaction {
                try view.refreshInSnapshot(db)
                return try body(db, view)
            }
        }
    }

    /// A row of chunk `id`.
    struct ChunkRow {
        var pack: Int64
        var location: ChunkLocation
        var isVisible: Bool
    }

    /// The rows of chunk `id`, first recorded first.
    static func rows(of id: ChunkID, _ view: IndexView, _ db: SQLiteConnection) throws -> [ChunkRow] {
        let packs = try view.candidatePacks(of: id, db)
        guard !packs.isEmpty else { return [] }
        let statement = try db.cachedStatement(
            """
            SELECT packs.name, chunks.offset, chunks.length, chunks.plaintext_length, chunks.condemned_ms IS NULL
            FROM chunks JOIN packs ON packs.id = chunks.pack WHERE chunks.pack = ? AND chunks.id = ?
            """)
        var rows: [ChunkRow] = []
        for pack in packs {
            defer { statement.reset() }
            try statement.bind([.integer(pack), .blob(id.bytes)])
            guard try statement.step() else { continue }
            let location = ChunkLocation(
                packName: statement.text(at: 0), offset: Int(statement.int64(at: 1)),
                length: Int(statement.int64(at: 2)), plaintextLength: Int(statement.int64(at: 3)))
            rows.append(ChunkRow(pack: pack, location: location, isVisible: statement.int64(at: 4) != 0))
        }
        return rows
    }

    /// The row a reader uses: the visible one, or else the condemned one recorded last (the
    /// owner's own copy rather than a forged one it condemned before storing its own).
    static func readableRow(of id: ChunkID, _ view: IndexView, _ db: SQLiteConnection) throws -> ChunkRow? {
        let rows = try rows(of: id, view, db)
        return rows.first(where: \.isVisible) ?? rows.last
    }

    /// Where the chunk is, or nil when the index does not know it.
    public func location(of id: ChunkID) throws -> ChunkLocation? {
        try withView("lookup of chunk \(id.shortDescription)") { db, view in try Self.readableRow(of: id, view, db)?.location }
    }

    /// Where each chunk is, as ``location(of:)`` says, looked up in one read transaction: a
    /// restore asks for the chunks of a thousand files at a time.
    public func locations(of ids: [ChunkID]) throws -> [ChunkLocation?] {
        try withView("lookup of \(ids.count) chunks") { db, view in
            try ids.map { try Self.readableRow(of: $0, view, db)?.location }
        }
    }

    /// Whether a writer may deduplicate against the chunk: the index knows it and garbage
    /// collection has not condemned it. (A condemned chunk is still readable through
    /// ``location(of:)``, but whoever stores it again must write a fresh copy.)
    public func contains(_ id: ChunkID) throws -> Bool {
        try withView("lookup of chunk \(id.shortDescription)") { db, view in
            try Self.rows(of: id, view, db).contains(where: \.isVisible)
        }
    }

    /// ``contains(_:)`` for each id, in one read transaction.
    public func contains(_ ids: [ChunkID]) throws -> [Bool] {
        try withView("lookup of \(ids.count) chunks") { db, view in
            try ids.map { try Self.rows(of: $0, view, db).contains(where: \.isVisible) }
        }
    }

    /// Marks chunks that came from another agent and whose plaintext this agent's content key
    /// does not map to their id: see ``containsOwnData(_:)``.
    public func markReceived(_ ids: some Sequence<ChunkID>) throws {
        try withConnection("marking received chunks") { db in
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
    /// own. That copy is condemned and unmarked: the writer stores its own, whose row becomes the
    /// visible one when its pack is recorded; until then the forged copy stays readable as before.
    public func containsOwnData(_ ids: [ChunkID]) throws -> [Bool] {
        // One read transaction for all; the rare received chunk is then condemned in a write
        // transaction of its own.
        var received: [Int] = []
        var present = try withView("lookup of \(ids.count) chunks") { db, view in
            let isReceived = try db.cachedStatement("SELECT 1 FROM received WHERE id = ?")
            return try ids.enumerated().map { position, id in
                // New chunks, the common case, are answered from memory and filters.
                let rows = try Self.rows(of: id, view, db)
                guard !rows.isEmpty else { return false }
                defer { isReceived.reset() }
                try isReceived.bind([.blob(id.bytes)])
                guard try isReceived.step() else { return rows.contains(where: \.isVisible) }
                received.append(position)
                return false
            }
        }
        for position in received { present[position] = try condemnReceived(ids[position]) }
        return present
    }

    /// `containsOwnData(_:)` for one id (see the form for many ids).
    public func containsOwnData(_ id: ChunkID) throws -> Bool {
        try containsOwnData([id])[0]
    }

    /// Condemns the visible row of a received chunk that this agent's writer met, and unmarks it;
    /// false then. If another writer got there first (the mark is gone), nothing changes, and
    /// the answer is whether the chunk is visible now.
    private func condemnReceived(_ id: ChunkID) throws -> Bool {
        try withLockedView("condemning received chunk \(id.shortDescription)") { db, view in
            try db.transaction {
                try view.refreshInSnapshot(db)
                let visible = try Self.rows(of: id, view, db).first(where: \.isVisible)
                guard try !db.cachedStatement("SELECT 1 FROM received WHERE id = ?").rows([.blob(id.bytes)]).isEmpty else {
                    return visible != nil
                }
                if let visible {
                    try db.cachedStatement("UPDATE chunks SET condemned_ms = ?3 WHERE pack = ?1 AND id = ?2 AND condemned_ms IS NULL")
                        .run([.integer(visible.pack), .blob(id.bytes), .integer(Int64((Date().timeIntervalSince1970 * 1000).rounded()))])
                }
                try db.cachedStatement("DELETE FROM received WHERE id = ?").run([.blob(id.bytes)])
                return false
            }
        }
    }

    /// Records a stored pack and its chunks in one transaction. A chunk with a visible row in
    /// another pack keeps it, unless `replacing` is set (a rebuild trusts the trailers over the
    /// index); a chunk whose rows are all condemned gets a visible one here, which readers then
    /// use.
    ///
    /// - Returns: false, recording nothing, when the pack is retired: garbage collection is
    ///   deleting it, so its chunks must not be offered to anyone again.
    @discardableResult
    public func record(packName: String, kind: PackKind, size: Int, entries: [PackEntry], replacing: Bool = false) throws -> Bool {
        try withLockedView("recording pack \(packName)") { db, view in
            let recorded: (pack: Int64, version: Int64, ids: [ChunkID])? = try db.transaction {
                // Inside the write transaction: what another connection recorded a moment ago
                // counts, so no chunk gets two visible rows.
                try view.refreshInSnapshot(db)
                guard let packID = try Self.packRow(named: packName, kind: kind, size: size, db) else { return nil }
                let ids = try Self.insertRows(of: entries, inPack: packID, replacing: replacing, view, db)
                return (packID, try Self.markUnlisted(packID, db), ids)
            }
            guard let recorded else { return false }
            view.unlisted.add(pack: recorded.pack, version: recorded.version, ids: recorded.ids)
            try? Self.listUnlistedIfDue(db, &view, runThreshold: runThreshold)
            return true
        }
    }

    /// Inserts the rows of a pack's entries, in id order (a chunk listed twice in the pack keeps
    /// its first entry), skipping chunks visible elsewhere unless `replacing`, which removes
    /// their other rows instead. Returns the ids inserted.
    private static func insertRows(
        of entries: [PackEntry], inPack packID: Int64, replacing: Bool, _ view: IndexView, _ db: SQLiteConnection
    ) throws -> [ChunkID] {
        let order = entries.indices.sorted { a, b in
            entries[a].id < entries[b].id || (entries[a].id == entries[b].id && a < b)
        }
        let insert = try db.cachedStatement(
            "INSERT OR REPLACE INTO chunks(pack, id, offset, length, plaintext_length, condemned_ms) VALUES (?, ?, ?, ?, ?, NULL)")
        let delete = try db.cachedStatement("DELETE FROM chunks WHERE pack = ? AND id = ?")
        var inserted: [ChunkID] = []
        inserted.reserveCapacity(entries.count)
        for position in order {
            let entry = entries[position]
            if inserted.last == entry.id { continue }
            let existing = try rows(of: entry.id, view, db)
            if replacing {
                for row in existing where row.pack != packID { try delete.run([.integer(row.pack), .blob(entry.id.bytes)]) }
            } else if existing.contains(where: { $0.isVisible }) {
                continue
            }
            try insert.run([
                .integer(packID), .blob(entry.id.bytes), .integer(Int64(entry.offset)),
                .integer(Int64(entry.length)), .integer(Int64(entry.plaintextLength)),
            ])
            inserted.append(entry.id)
        }
        // A pack that serves a chunk is not condemned (a rebuild may re-record one).
        try db.cachedStatement(
            """
            UPDATE packs SET condemned_ms = NULL WHERE id = ?1 AND condemned_ms IS NOT NULL
            AND EXISTS (SELECT 1 FROM chunks WHERE pack = ?1 AND condemned_ms IS NULL)
            """
        ).run([.integer(packID)])
        return inserted
    }

    /// Lists `pack` among the unlisted packs with a new version; returns the version.
    static func markUnlisted(_ pack: Int64, _ db: SQLiteConnection) throws -> Int64 {
        // REPLACE deletes the pack's row and inserts a new one, whose version (AUTOINCREMENT)
        // no row has had before.
        try db.cachedStatement("INSERT OR REPLACE INTO unlisted_packs(pack) VALUES (?)").run([.integer(pack)])
        return db.lastInsertRowID
    }

    /// The tier of a run: 0 below `runThreshold` × ``mergeFanIn`` entries, then one more for
    /// each factor of ``mergeFanIn``.
    static func tier(ofRunWith entryCount: Int, runThreshold: Int) -> Int {
        var tier = 0
        var size = entryCount / runThreshold
        while size >= mergeFanIn {
            size /= mergeFanIn
            tier += 1
        }
        return tier
    }

    /// Writes the unlisted packs' chunks as a run, then merges runs while a tier holds
    /// ``mergeFanIn`` of them, in one transaction.
    ///
    /// Called once the unlisted chunks reach `runThreshold`. The caller's pack is recorded
    /// whatever happens here: on a failure the run is left for later, and not tried again before
    /// another quarter of `runThreshold` has gathered (a failure that persists does not make
    /// every record rewrite a run to roll it back).
    static func listUnlistedIfDue(_ db: SQLiteConnection, _ view: inout IndexView, runThreshold: Int) throws {
        let unlistedCount = view.unlisted.entryCount
        guard unlistedCount >= max(runThreshold, view.listingRetryCount) else { return }
        do {
            try writeRunOfUnlisted(db, &view, runThreshold: runThreshold)
            view.listingRetryCount = 0
        } catch {
            // The view changed with the transaction; it is read again.
            view.invalidate()
            view.listingRetryCount = unlistedCount + runThreshold / 4
            throw error
        }
    }

    private static func writeRunOfUnlisted(_ db: SQLiteConnection, _ view: inout IndexView, runThreshold: Int) throws {
        try db.transaction {
            try view.refreshInSnapshot(db)
            let entries = try view.unlisted.sortedEntries(path: db.path)
            var writer = try RunWriter(capacity: entries.count, db)
            for entry in entries { try writer.append(entry) }
            let run = try writer.finish()
            try db.cachedStatement("DELETE FROM unlisted_packs").run()
            view.unlisted.removeAll()
            view.replaceRuns([], with: run)
            while let group = mergeableRuns(view.runs, runThreshold: runThreshold) {
                let merged = try merge(group, db)
                view.replaceRuns(Set(group.map(\.id)), with: merged)
            }
        }
    }

    /// The oldest ``mergeFanIn`` runs of the lowest tier that has that many, if any.
    private static func mergeableRuns(_ runs: [LookupRun], runThreshold: Int) -> [LookupRun]? {
        let byTier = Dictionary(grouping: runs) { tier(ofRunWith: $0.entryCount, runThreshold: runThreshold) }
        guard let tier = byTier.filter({ $0.value.count >= mergeFanIn }).keys.min() else { return nil }
        return Array(byTier[tier]!.sorted { $0.id < $1.id }.prefix(mergeFanIn))
    }

    /// Merges runs into one, leaving out entries of packs that are retired or gone, and deletes
    /// them.
    private static func merge(_ runs: [LookupRun], _ db: SQLiteConnection) throws -> LookupRun? {
        var livePacks = Set<UInt32>()
        for row in try db.cachedStatement("SELECT id FROM packs WHERE retired = 0").rows() {
            // A pack row past UInt32 never has chunks in a run (records refuse it).
            if case .integer(let id) = row[0], let pack = UInt32(exactly: id) { livePacks.insert(pack) }
        }
        var readers = try runs.map { try RunReader(run: $0.id, db) }
        var heads = try readers.indices.map { try readers[$0].next() }
        var writer = try RunWriter(capacity: runs.reduce(0) { $0 + $1.entryCount }, db)
        while true {
            var smallest: Int? = nil
            for index in heads.indices {
                guard let head = heads[index] else { continue }
                if let current = smallest, !(head < heads[current]!) { continue }
                smallest = index
            }
            guard let smallest, let entry = heads[smallest] else { break }
            if livePacks.contains(entry.pack) { try writer.append(entry) }
            heads[smallest] = try readers[smallest].next()
        }
        let merged = try writer.finish()
        for run in runs {
            try db.cachedStatement("DELETE FROM run_blocks WHERE run = ?").run([.integer(run.id)])
            try db.cachedStatement("DELETE FROM runs WHERE id = ?").run([.integer(run.id)])
        }
        return merged
    }

    /// Replaces every run with one listing every row, and empties the unlisted packs: the last
    /// step of an upgrade, before any connection has a view. (A connection that already has one
    /// would keep looking in the deleted runs: its own writes do not change `data_version`.)
    static func rebuildRuns(_ db: SQLiteConnection) throws {
        try db.execute("DELETE FROM run_blocks; DELETE FROM runs; DELETE FROM unlisted_packs")
        let count = try db.prepare("SELECT count(*) FROM chunks").rows()
        guard case .integer(let rowCount) = count.first?[0] else { throw damaged("the chunk rows cannot be counted", path: db.path) }
        var writer = try RunWriter(capacity: Int(rowCount), db)
        // Run order: the first 8 bytes of the id, then the pack (not the whole id, then the pack).
        let statement = try db.prepare("SELECT id, pack FROM chunks ORDER BY substr(id, 1, 8), pack")
        while try statement.step() {
            guard let id = statement.withBlob(at: 0, { ChunkID(bytes: $0) }) else {
                throw damaged("a chunk row holds a malformed id", path: db.path)
            }
            try writer.append(try RunEntry(id: id, pack: statement.int64(at: 1), path: db.path))
        }
        _ = try writer.finish()
    }

    /// The row id of pack `name`, inserted if new; nil when the pack is retired. Runs hold pack
    /// rows in 32 bits, so a row past that cannot take chunks.
    static func packRow(named name: String, kind: PackKind, size: Int, _ db: SQLiteConnection) throws -> Int64? {
        try db.cachedStatement("INSERT OR IGNORE INTO packs(name, kind, size) VALUES (?, ?, ?)")
            .run([.text(name), .integer(Int64(kind.rawValue)), .integer(Int64(size))])
        let rows = try db.cachedStatement("SELECT id, retired FROM packs WHERE name = ?").rows([.text(name)])
        guard case .integer(let packID) = rows.first?[0], case .integer(let retired) = rows.first?[1] else {
            throw PackError(.index, "pack \(name) vanished from the index while being recorded")
        }
        guard packID <= Int64(UInt32.max) else { throw PackError(.index, "chunk index \(db.path) has run out of pack numbers") }
        return retired == 0 ? packID : nil
    }

    /// The names of all packs the index knows, retired ones included (so that a pack being
    /// deleted is never indexed again as missing).
    public func packNames() throws -> Set<String> {
        try withConnection("listing packs") { db in
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
        try withConnection("listing packs") { db in
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
        try withConnection("reading pack \(name)") { db in
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
