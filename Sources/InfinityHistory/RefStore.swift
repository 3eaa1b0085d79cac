import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks
import InfinitySQLite
import Synchronization

/// What HEAD points at.
public enum Head: Sendable, Hashable, CustomStringConvertible {
    /// A branch (`refs/heads/…`): committing moves the branch. The branch need not exist yet.
    case branch(RefName)
    /// A commit, with no branch to move.
    case detached(ChunkRef)

    public var description: String {
        switch self {
        case .branch(let name): "branch \(name.shortName)"
        case .detached(let ref): "detached at \(ref.id.shortDescription)"
        }
    }
}

/// One change to a ref, as the reflog recorded it.
public struct ReflogEntry: Sendable, Hashable {
    /// Position in the whole reflog; later changes have larger numbers.
    public let sequence: Int64
    /// The ref that changed (``RefName/head`` for HEAD).
    public let name: RefName
    /// The commit before the change; nil when the ref was created.
    public let oldID: ChunkID?
    /// The commit after the change; nil when the ref was deleted.
    public let new: ChunkRef?
    /// When the change was made, to the millisecond.
    public let time: Date
    /// The agent that made the change.
    public let agent: AgentID
    /// Why, as the agent said.
    public let message: String
}

/// Refs, HEAD, the reflog and a catalog of known commits, in one SQLite file.
///
/// - A ref's commit id is stored in clear, for compare-and-swap and id-prefix lookups; the
///   commit's key and length (the read capability) are sealed with AES-256-GCM under a key
///   derived from the metadata key, bound to the table, the ref name and the id (see
///   `RefValueSealer`). Someone with the file but not the key can read neither the keys nor move
///   a value to another ref without the next read failing as corrupt.
/// - Every change is appended to the reflog in the same transaction; triggers refuse any UPDATE
///   or DELETE of reflog rows, and deleting a ref keeps its log.
/// - WAL with `synchronous=FULL` and a busy timeout, so several processes can share the file and
///   a ref update survives a power cut once it returns.
///
/// Safe to share between tasks: the connection is used under a lock.
public final class RefStore: Sendable {
    /// The layout of the tables this build writes and the newest it opens.
    public static let schemaVersion = 1
    /// How long a write waits for another process's transaction before failing.
    public static let busyTimeout: Duration = .seconds(5)

    /// The database file, or `":memory:"`.
    public let path: String
    // A SQLite connection must be used by one thread at a time: it is only touched while `lock`
    // is held, which is what makes sharing this class between tasks safe.
    private let lock = Mutex(())
    nonisolated(unsafe) private let connection: SQLiteConnection
    private let sealer: RefValueSealer
    private let clock: @Sendable () -> Date

    /// The tables whose names bind sealed values (they are part of the associated data).
    private enum Table {
        static let refs = "refs"
        static let reflog = "reflog"
        static let head = "head"
        static let commits = "commits"
        static let meta = "meta"
    }

    /// Opens (creating if needed) the refs database at `path`; `":memory:"` keeps it in memory.
    ///
    /// - Parameters:
    ///   - metadataKey: the store owner's metadata key (at least 32 bytes); it must be the key
    ///     the file was created with.
    ///   - clock: the time recorded in the reflog; tests pass a fixed one.
    /// - Throws: ``HistoryError/Code/unsupportedFormat`` for a newer schema,
    ///   ``HistoryError/Code/invalidArgument`` for another store's key,
    ///   ``HistoryError/Code/storage`` when SQLite cannot open the file.
    public init(path: String, metadataKey: SecureBytes, clock: @escaping @Sendable () -> Date = { Date() }) throws {
        self.path = path
        self.clock = clock
        let sealer = try RefValueSealer(metadataKey: metadataKey)
        self.sealer = sealer
        do {
            let db = try SQLiteConnection(path: path)
            db.busyTimeout = Self.busyTimeout
            if path != ":memory:" {
                // Small pages for a new file: a commit changes a ref row, a reflog row and their
                // index entries, a handful of pages each written to the log and again at the
                // checkpoint; with 1 KiB pages that is about 6 KiB a commit rather than 24.
                // (No effect on an existing file.)
                try db.execute("PRAGMA page_size = 1024")
                try db.enableWriteAheadLog()
                // A ref update must survive a power cut once update() has returned.
                try db.execute("PRAGMA synchronous = FULL")
            }
            try db.transaction {
                try db.execute(Self.schema)
                // Reflogs from before messages were sealed gain the column; their rows keep
                // their messages in clear. Older builds ignore it.
                let columns = try db.prepare("PRAGMA table_info(reflog)").rows().map { $0[1] }
                if !columns.contains(.text("message_sealed")) { try db.execute("ALTER TABLE reflog ADD COLUMN message_sealed BLOB") }
                try Self.checkSchemaVersion(db, path: path)
                try Self.checkMetadataKey(db, sealer: sealer, path: path)
            }
            connection = db
        } catch let error as HistoryError {
            throw error
        } catch {
            throw HistoryError(.storage, "cannot open the refs database at \(path)", cause: error)
        }
    }

    private static let schema = """
        CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS refs(
            name TEXT PRIMARY KEY,
            id BLOB NOT NULL,
            sealed BLOB NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS head(
            slot INTEGER PRIMARY KEY CHECK (slot = 0),
            branch TEXT,
            id BLOB,
            sealed BLOB,
            CHECK ((branch IS NULL) <> (id IS NULL)));
        CREATE TABLE IF NOT EXISTS reflog(
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ref TEXT NOT NULL,
            old_id BLOB,
            new_id BLOB,
            new_sealed BLOB,
            time_ms INTEGER NOT NULL,
            agent BLOB NOT NULL,
            message TEXT NOT NULL,
            message_sealed BLOB);
        CREATE INDEX IF NOT EXISTS reflog_by_ref ON reflog(ref, seq);
        CREATE INDEX IF NOT EXISTS reflog_by_ref_time ON reflog(ref, time_ms, seq);
        CREATE TRIGGER IF NOT EXISTS reflog_rows_are_never_updated BEFORE UPDATE ON reflog
        BEGIN SELECT RAISE(ABORT, 'the reflog is append-only: its rows are never updated'); END;
        CREATE TRIGGER IF NOT EXISTS reflog_rows_are_never_deleted BEFORE DELETE ON reflog
        BEGIN SELECT RAISE(ABORT, 'the reflog is append-only: its rows are never deleted'); END;
        CREATE TABLE IF NOT EXISTS commits(
            id BLOB PRIMARY KEY,
            sealed BLOB NOT NULL,
            generation INTEGER NOT NULL,
            time_ms INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS released(
            seq INTEGER NOT NULL,
            ref TEXT NOT NULL,
            commit_id BLOB NOT NULL,
            PRIMARY KEY (commit_id, seq, ref)) WITHOUT ROWID;
        CREATE TRIGGER IF NOT EXISTS released_rows_are_never_updated BEFORE UPDATE ON released
        BEGIN SELECT RAISE(ABORT, 'releases are append-only: their rows are never updated'); END;
        CREATE TRIGGER IF NOT EXISTS released_rows_are_never_deleted BEFORE DELETE ON released
        BEGIN SELECT RAISE(ABORT, 'releases are append-only: their rows are never deleted'); END;
        """

    private static func checkSchemaVersion(_ db: SQLiteConnection, path: String) throws {
        let rows = try db.prepare("SELECT value FROM meta WHERE key = 'schema'").rows()
        guard case .text(let text) = rows.first?[0] else {
            try db.prepare("INSERT INTO meta(key, value) VALUES ('schema', ?)").run([.text(String(Self.schemaVersion))])
            return
        }
        guard let version = Int(text) else {
            throw HistoryError(.corrupt, "refs database \(path) has an unreadable schema version '\(text)'")
        }
        guard version <= Self.schemaVersion else {
            throw HistoryError(
                .unsupportedFormat,
                "refs database \(path) has schema \(version); this build reads schema \(Self.schemaVersion) (upgrade to open it)")
        }
    }

    /// A value sealed when the file was created: if it does not open, the caller holds another
    /// store's key, which is better said now than as "corrupt" at the first ref read.
    private static func checkMetadataKey(_ db: SQLiteConnection, sealer: RefValueSealer, path: String) throws {
        let check = keyCheckValue
        let rows = try db.prepare("SELECT value FROM meta WHERE key = 'key-check'").rows()
        guard case .text(let text) = rows.first?[0] else {
            let sealed = try sealer.seal(check, table: Table.meta, name: "key-check")
            try db.prepare("INSERT INTO meta(key, value) VALUES ('key-check', ?)").run([.text(Hex.encode(sealed))])
            return
        }
        do {
            _ = try sealer.open(Hex.decode(text) ?? [], id: check.id, table: Table.meta, name: "key-check", subject: "key check")
        } catch {
            throw HistoryError(
                .invalidArgument, "the metadata key does not open the refs database at \(path): it belongs to another store")
        }
    }

    /// A fixed reference that only the key check seals.
    private static let keyCheckValue: ChunkRef = {
        guard let key = ChunkKey(bytes: SHA256.hash(Array("infinitydb-refs-key-check-v1".utf8))) else {
            preconditionFailure("a SHA-256 digest is 32 bytes, the size of a chunk key")
        }
        return ChunkRef(id: key.chunkID, key: key, length: 0)
    }()

    // MARK: Refs

    /// The commit a ref points to, or nil when the ref does not exist. For ``RefName/head``, the
    /// commit HEAD resolves to (nil on an unborn branch).
    ///
    /// - Throws: ``HistoryError/Code/corrupt`` naming the ref when its stored value was altered.
    public func ref(_ name: RefName) throws -> ChunkRef? {
        try withConnection("reading \(name)") { db in try value(of: name, db) }
    }

    /// Every ref of `kind` (every branch, tag and agent ref when nil), sorted by name.
    public func refs(kind: RefName.Kind? = nil) throws -> [(RefName, ChunkRef)] {
        try withConnection("listing refs") { db in
            if kind == .head {
                return try value(of: .head, db).map { [(RefName.head, $0)] } ?? []
            }
            let rows: [[SQLiteValue]]
            if let kind {
                // Every name with the prefix sorts between the prefix and the prefix with its
                // final '/' replaced by the next byte, '0'.
                let upper = String(kind.prefix.dropLast()) + "0"
                rows = try db.cachedStatement("SELECT name, id, sealed FROM refs WHERE name >= ? AND name < ? ORDER BY name")
                    .rows([.text(kind.prefix), .text(upper)])
            } else {
                rows = try db.cachedStatement("SELECT name, id, sealed FROM refs ORDER BY name").rows()
            }
            return try rows.map { row in
                let name = try storedRefName(row[0], in: "refs")
                return (name, try openValue(id: row[1], sealed: row[2], table: Table.refs, name: name.fullName, subject: "ref \(name)"))
            }.sorted { $0.0 < $1.0 }
        }
    }

    /// The names of every branch, tag and agent ref, sorted, without reading their values (a
    /// check reads each on its own, so one damaged value does not hide the others).
    public func refNames() throws -> [RefName] {
        try withConnection("listing refs") { db in
            try db.cachedStatement("SELECT name FROM refs ORDER BY name").rows().map { try storedRefName($0[0], in: "refs") }
        }
    }

    /// Moves a ref by compare-and-swap, and logs the change in the same transaction.
    ///
    /// - Parameters:
    ///   - new: the commit to point to; nil deletes the ref (its reflog stays). Deleting a ref
    ///     that does not exist, as `expected: nil` says, changes and logs nothing.
    ///   - expected: the commit id the ref must point to now; nil means it must not exist.
    ///   - agent: who makes the change, for the reflog.
    ///   - message: why, for the reflog.
    ///   - releasing: commits the change takes out of the ref's history (`forget`): the
    ///     reflog entries of this ref and of HEAD that pointed at them, up to this change, stop
    ///     keeping them alive (see ``liveRoots(reflogSince:)``). The entries themselves stay.
    /// - Throws: ``HistoryError/Code/conflict`` naming the ref, the expected and the actual id
    ///   when the ref has moved; ``HistoryError/Code/invalidArgument`` for ``RefName/head`` (use
    ///   ``setHead(_:agent:message:)``).
    public func update(
        _ name: RefName, to new: ChunkRef?, expected: ChunkID?, agent: AgentID, message: String, releasing: [ChunkID] = []
    ) throws {
        guard name.kind != .head else {
            throw HistoryError(.invalidArgument, "HEAD is moved with setHead, not update")
        }
        let time = try now()
        try withConnection("updating \(name)") { db in
            try db.transaction {
                let actual = try storedID(of: name, db)
                guard actual == expected else {
                    throw HistoryError(
                        .conflict,
                        "ref \(name) has moved: expected \(Self.describe(expected)), found \(Self.describe(actual))")
                }
                if actual == nil && new == nil { return }
                if let new {
                    let sealed = try sealer.seal(new, table: Table.refs, name: name.fullName)
                    try db.cachedStatement("INSERT OR REPLACE INTO refs(name, id, sealed) VALUES (?, ?, ?)")
                        .run([.text(name.fullName), .blob(new.id.bytes), .blob(sealed)])
                } else {
                    try db.cachedStatement("DELETE FROM refs WHERE name = ?").run([.text(name.fullName)])
                }
                let change = Change(old: actual, new: new, time: time, agent: agent, message: message)
                try appendToReflog(name, change, db)
                let sequence = db.lastInsertRowID
                let release = try db.cachedStatement("INSERT OR IGNORE INTO released(seq, ref, commit_id) VALUES (?, ?, ?)")
                for id in releasing { try release.run([.integer(sequence), .text(name.fullName), .blob(id.bytes)]) }
                // As in git, HEAD's log follows the branch it is on, so HEAD@{1} is where the
                // working state was before the last commit, whichever way it got there.
                if try storedHeadBranch(db) == name.fullName { try appendToReflog(.head, change, db) }
            }
        }
    }

    // MARK: HEAD

    /// What HEAD points at; `.branch(refs/heads/main)` in a new database.
    public func head() throws -> Head {
        try withConnection("reading HEAD") { db in try storedHead(db) }
    }

    /// Points HEAD at a branch (which need not exist yet) or detaches it at a commit, and logs
    /// the change under the name `HEAD`.
    public func setHead(_ head: Head, agent: AgentID, message: String) throws {
        if case .branch(let name) = head, name.kind != .branch {
            throw HistoryError(.invalidArgument, "HEAD can point to a branch, not to \(name.kind) \(name)")
        }
        let time = try now()
        try withConnection("setting HEAD") { db in
            try db.transaction {
                let old = try value(of: .head, db)?.id
                let new: ChunkRef?
                switch head {
                case .branch(let name):
                    try db.cachedStatement("INSERT OR REPLACE INTO head(slot, branch, id, sealed) VALUES (0, ?, NULL, NULL)")
                        .run([.text(name.fullName)])
                    new = try value(of: name, db)
                case .detached(let ref):
                    let sealed = try sealer.seal(ref, table: Table.head, name: RefName.head.fullName)
                    try db.cachedStatement("INSERT OR REPLACE INTO head(slot, branch, id, sealed) VALUES (0, NULL, ?, ?)")
                        .run([.blob(ref.id.bytes), .blob(sealed)])
                    new = ref
                }
                try appendToReflog(.head, Change(old: old, new: new, time: time, agent: agent, message: message), db)
            }
        }
    }

    // MARK: Reflog

    /// Logged changes, newest first: of one ref (``RefName/head`` for HEAD), or of all when nil.
    public func reflog(_ name: RefName?, limit: Int) throws -> [ReflogEntry] {
        guard limit > 0 else { return [] }
        return try withConnection("reading the reflog") { db in
            let columns = Self.reflogColumns
            let rows =
                if let name {
                    try db.cachedStatement("SELECT \(columns) FROM reflog WHERE ref = ? ORDER BY seq DESC LIMIT ?")
                        .rows([.text(name.fullName), .integer(Int64(limit))])
                } else {
                    try db.cachedStatement("SELECT \(columns) FROM reflog ORDER BY seq DESC LIMIT ?")
                        .rows([.integer(Int64(limit))])
                }
            return try rows.map(reflogEntry)
        }
    }

    /// Every logged change, newest first, each read on its own: an entry that cannot be read is
    /// handed to `damaged` with its sequence number instead of failing the whole read (for checks;
    /// ``reflog(_:limit:)`` fails instead).
    public func reflog(damaged: (_ sequence: Int64, _ error: HistoryError) throws -> Void) throws -> [ReflogEntry] {
        let rows = try withConnection("reading the reflog") { db in
            try db.cachedStatement("SELECT \(Self.reflogColumns) FROM reflog ORDER BY seq DESC").rows()
        }
        var entries: [ReflogEntry] = []
        for row in rows {
            do {
                entries.append(try reflogEntry(row))
            } catch let error as HistoryError {
                let sequence = if case .integer(let value) = row[0] { value } else { Int64(-1) }
                try damaged(sequence, error)
            }
        }
        return entries
    }

    /// The commit a ref pointed to at `date`: the value set by its last logged change at or
    /// before then. Nil when the ref did not exist then. One index lookup, however long the log.
    public func ref(_ name: RefName, asOf date: Date) throws -> ChunkRef? {
        guard let milliseconds = Milliseconds.since1970(date) else {
            throw HistoryError(.invalidArgument, "date \(date) is out of range")
        }
        return try withConnection("reading \(name) as of \(date)") { db in
            let rows = try db.cachedStatement(
                """
                SELECT seq, new_id, new_sealed FROM reflog WHERE ref = ? AND time_ms <= ?
                ORDER BY time_ms DESC, seq DESC LIMIT 1
                """
            ).rows([.text(name.fullName), .integer(milliseconds)])
            guard let row = rows.first else { return nil }
            return try loggedValue(row, of: name)
        }
    }

    /// The value `n` changes ago (`name@{n}`): `n = 0` is the value set by the newest change.
    /// Nil when the ref was deleted at that point.
    ///
    /// - Throws: ``HistoryError/Code/notFound`` when the reflog holds fewer than `n + 1` changes.
    public func ref(_ name: RefName, previous n: Int) throws -> ChunkRef? {
        guard n >= 0 else { throw HistoryError(.invalidArgument, "\(name)@{\(n)}: the count must not be negative") }
        return try withConnection("reading \(name)@{\(n)}") { db in
            let rows = try db.cachedStatement(
                "SELECT seq, new_id, new_sealed FROM reflog WHERE ref = ? ORDER BY seq DESC LIMIT 1 OFFSET ?"
            ).rows([.text(name.fullName), .integer(Int64(n))])
            guard let row = rows.first else {
                let count = try db.cachedStatement("SELECT count(*) FROM reflog WHERE ref = ?").rows([.text(name.fullName)])
                let changes = if case .integer(let value) = count.first?[0] { value } else { Int64(0) }
                throw HistoryError(.notFound, "\(name)@{\(n)}: the reflog of \(name) holds only \(changes) changes")
            }
            return try loggedValue(row, of: name)
        }
    }

    // MARK: Garbage collection roots

    /// The commits garbage collection must keep, each once: every branch, tag and agent ref,
    /// a detached HEAD, and every commit a reflog entry points at, unless the entry has expired.
    ///
    /// A reflog entry expires when it is older than `reflogSince` or than the time recorded by
    /// ``expireReflog(before:)``, or when a later change of the same ref (or, for HEAD's entries,
    /// of any ref) released its commit (see ``update(_:to:expected:agent:message:releasing:)``).
    /// Expired entries stay in the reflog; `name@{n}` on one may then name a commit that is no
    /// longer stored.
    public func liveRoots(reflogSince: Date? = nil) throws -> [ChunkRef] {
        let since = try reflogCutoff(reflogSince)
        var roots = try refs().map(\.1)
        if case .detached(let ref) = try head() { roots.append(ref) }
        let logged = try withConnection("listing the commits the reflog keeps") { db in
            // One row per commit: the oldest live entry that names it (any entry would do).
            let rows = try db.cachedStatement(
                "SELECT min(seq), ref, new_id, new_sealed FROM reflog WHERE new_id IS NOT NULL AND NOT \(Self.expired) GROUP BY new_id"
            ).rows([.integer(since)])
            return try rows.map { row in
                let name = try storedRefName(row[1], in: "reflog")
                return try loggedValue([row[0], row[2], row[3]], of: name)
            }
        }
        var seen = Set<ChunkID>()
        return (roots + logged.compactMap { $0 }).filter { seen.insert($0.id).inserted }
    }

    /// The reflog entries that no longer keep their commits (see ``liveRoots(reflogSince:)``):
    /// their commits may have been deleted, which is no damage.
    public func expiredReflogSequences(reflogSince: Date? = nil) throws -> Set<Int64> {
        let since = try reflogCutoff(reflogSince)
        return try withConnection("listing expired reflog entries") { db in
            Set(try db.cachedStatement("SELECT seq FROM reflog WHERE new_id IS NOT NULL AND \(Self.expired)")
                .rows([.integer(since)]).compactMap { row -> Int64? in
                    if case .integer(let sequence) = row[0] { return sequence }
                    return nil
                })
        }
    }

    /// Records that reflog entries older than `date` no longer keep their commits, for good:
    /// garbage collection calls it before it deletes anything, so that later readers (`check`)
    /// know those commits may be gone. The recorded time only ever moves forward.
    public func expireReflog(before date: Date) throws {
        guard let milliseconds = Milliseconds.since1970(date) else {
            throw HistoryError(.invalidArgument, "date \(date) is out of range")
        }
        try withConnection("recording the reflog expiry") { db in
            try db.transaction {
                guard milliseconds > (try Self.recordedExpiry(db) ?? .min) else { return }
                try db.cachedStatement("INSERT OR REPLACE INTO meta(key, value) VALUES ('reflog-expired-before-ms', ?)")
                    .run([.text(String(milliseconds))])
            }
        }
    }

    /// The time recorded by ``expireReflog(before:)``, or nil.
    public func reflogExpiry() throws -> Date? {
        try withConnection("reading the reflog expiry") { db in try Self.recordedExpiry(db).map(Milliseconds.date) }
    }

    /// An entry (`reflog` row, `?1` the cutoff in ms) that no longer keeps its commit.
    private static let expired = """
        (reflog.time_ms < ?1 OR EXISTS (SELECT 1 FROM released WHERE released.commit_id = reflog.new_id
            AND released.seq >= reflog.seq AND (released.ref = reflog.ref OR reflog.ref = 'HEAD')))
        """

    private func reflogCutoff(_ reflogSince: Date?) throws -> Int64 {
        var since = try withConnection("reading the reflog expiry") { db in try Self.recordedExpiry(db) } ?? .min
        if let reflogSince {
            guard let milliseconds = Milliseconds.since1970(reflogSince) else {
                throw HistoryError(.invalidArgument, "date \(reflogSince) is out of range")
            }
            since = max(since, milliseconds)
        }
        return since
    }

    private static func recordedExpiry(_ db: SQLiteConnection) throws -> Int64? {
        let rows = try db.cachedStatement("SELECT value FROM meta WHERE key = 'reflog-expired-before-ms'").rows()
        guard case .text(let text) = rows.first?[0] else { return nil }
        guard let milliseconds = Int64(text) else {
            throw HistoryError(.corrupt, "refs database: the recorded reflog expiry '\(text)' is not a number")
        }
        return milliseconds
    }

    // MARK: Commit catalog

    /// Remembers a commit, so that it can be found by id or id prefix. Recording it again
    /// changes nothing.
    public func recordCommit(_ ref: ChunkRef, generation: UInt64, time: Date) throws {
        guard let milliseconds = Milliseconds.since1970(time) else {
            throw HistoryError(.invalidArgument, "commit time \(time) is out of range")
        }
        let sealed = try sealer.seal(ref, table: Table.commits, name: "")
        try withConnection("recording commit \(ref.id.shortDescription)") { db in
            try db.cachedStatement("INSERT OR IGNORE INTO commits(id, sealed, generation, time_ms) VALUES (?, ?, ?, ?)")
                .run([.blob(ref.id.bytes), .blob(sealed), .integer(Int64(clamping: generation)), .integer(milliseconds)])
        }
    }

    /// The recorded commit with this id, or nil.
    public func commit(id: ChunkID) throws -> ChunkRef? {
        try withConnection("looking up commit \(id.shortDescription)") { db in
            let rows = try db.cachedStatement("SELECT id, sealed FROM commits WHERE id = ?").rows([.blob(id.bytes)])
            return try rows.first.map(catalogValue)
        }
    }

    /// Recorded commits whose id starts with `hexPrefix` (4 to 64 hex digits, any case), in id
    /// order, at most `limit` of them. One index range scan.
    public func commits(withHexPrefix hexPrefix: String, limit: Int = 100) throws -> [ChunkRef] {
        let (lower, upper) = try Self.idRange(hexPrefix: hexPrefix)
        return try withConnection("looking up commits with prefix \(hexPrefix)") { db in
            let limitValue = SQLiteValue.integer(Int64(max(0, limit)))
            let rows =
                if let upper {
                    try db.cachedStatement("SELECT id, sealed FROM commits WHERE id >= ? AND id < ? ORDER BY id LIMIT ?")
                        .rows([.blob(lower), .blob(upper), limitValue])
                } else {
                    try db.cachedStatement("SELECT id, sealed FROM commits WHERE id >= ? ORDER BY id LIMIT ?")
                        .rows([.blob(lower), limitValue])
                }
            return try rows.map(catalogValue)
        }
    }

    /// The ids of every recorded commit.
    public func catalogedCommitIDs() throws -> [ChunkID] {
        try withConnection("listing the commit catalog") { db in
            try db.cachedStatement("SELECT id FROM commits ORDER BY id").rows().map { row in
                try chunkID(row[0], subject: "commit catalog entry")
            }
        }
    }

    /// Forgets recorded commits (garbage collection deleted them), so their id prefixes stop
    /// resolving to commits that cannot be read.
    public func removeFromCatalog(_ ids: some Collection<ChunkID>) throws {
        guard !ids.isEmpty else { return }
        try withConnection("removing \(ids.count) commits from the catalog") { db in
            try db.transaction {
                let delete = try db.cachedStatement("DELETE FROM commits WHERE id = ?")
                for id in ids { try delete.run([.blob(id.bytes)]) }
            }
        }
    }

    /// The ids starting with `hexPrefix` are those in `lower ..< upper` (no upper bound when the
    /// prefix is all `f`). An odd digit count fills the last byte's low half with 0 for `lower`
    /// and steps its high half for `upper`.
    static func idRange(hexPrefix: String) throws -> (lower: [UInt8], upper: [UInt8]?) {
        let digitCount = hexPrefix.utf8.count
        guard (4...(ChunkID.byteCount * 2)).contains(digitCount),
            let lower = Hex.decode(digitCount.isMultiple(of: 2) ? hexPrefix : hexPrefix + "0")
        else {
            throw HistoryError(
                .invalidArgument,
                "'\(hexPrefix)' is not a commit id prefix: it needs 4 to \(ChunkID.byteCount * 2) hex digits")
        }
        var upper = lower
        var carry = digitCount.isMultiple(of: 2) ? 1 : 0x10
        for index in upper.indices.reversed() where carry > 0 {
            let sum = Int(upper[index]) + carry
            upper[index] = UInt8(truncatingIfNeeded: sum)
            carry = sum >> 8
        }
        return (lower, carry > 0 ? nil : upper)
    }

    // MARK: Inside the lock

    /// One logged change.
    private struct Change {
        var old: ChunkID?
        var new: ChunkRef?
        var time: Int64
        var agent: AgentID
        var message: String
    }

    private func withConnection<R>(_ what: @autoclosure () -> String, _ body: (SQLiteConnection) throws -> R) throws -> R {
        do {
            return try lock.withLock { _ in try body(connection) }
        } catch let error as HistoryError {
            throw error
        } catch {
            throw HistoryError(.storage, "refs database \(path): \(what()) failed", cause: error)
        }
    }

    private func now() throws -> Int64 {
        let date = clock()
        guard let milliseconds = Milliseconds.since1970(date) else {
            throw HistoryError(.invalidArgument, "the clock reads \(date), which is out of range")
        }
        return milliseconds
    }

    private static let reflogColumns = "seq, ref, old_id, new_id, new_sealed, time_ms, agent, message, message_sealed"

    /// The message is sealed; only its kind (``messageKind(_:)``) stays in clear.
    private func appendToReflog(_ name: RefName, _ change: Change, _ db: SQLiteConnection) throws {
        let newID: SQLiteValue = change.new.map { .blob($0.id.bytes) } ?? .null
        let newSealed: SQLiteValue =
            try change.new.map { .blob(try sealer.seal($0, table: Table.reflog, name: name.fullName)) } ?? .null
        let sealedMessage = try sealer.sealMessage(
            change.message, ref: name.fullName, time: change.time, old: change.old, new: change.new?.id)
        try db.cachedStatement(
            "INSERT INTO reflog(ref, old_id, new_id, new_sealed, time_ms, agent, message, message_sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        ).run([
            .text(name.fullName), change.old.map { .blob($0.bytes) } ?? .null, newID, newSealed,
            .integer(change.time), .blob(change.agent.bytes), .text(Self.messageKind(change.message)), .blob(sealedMessage),
        ])
    }

    /// What of a reflog message stays in clear: the word before its colon ("commit", "merge",
    /// "accept", …) when there is one, else nothing. The user's words never do.
    static func messageKind(_ message: String) -> String {
        guard let colon = message.firstIndex(of: ":") else { return "" }
        let kind = message[..<colon]
        guard (1...16).contains(kind.count), kind.allSatisfy({ $0.isASCII && ($0.isLowercase || $0 == "-") }) else { return "" }
        return String(kind)
    }

    private func value(of name: RefName, _ db: SQLiteConnection) throws -> ChunkRef? {
        guard name.kind != .head else {
            switch try storedHead(db) {
            case .branch(let branch): return try value(of: branch, db)
            case .detached(let ref): return ref
            }
        }
        let rows = try db.cachedStatement("SELECT id, sealed FROM refs WHERE name = ?").rows([.text(name.fullName)])
        guard let row = rows.first else { return nil }
        return try openValue(id: row[0], sealed: row[1], table: Table.refs, name: name.fullName, subject: "ref \(name)")
    }

    /// The id in clear, without opening the sealed key: all compare-and-swap needs.
    private func storedID(of name: RefName, _ db: SQLiteConnection) throws -> ChunkID? {
        let rows = try db.cachedStatement("SELECT id FROM refs WHERE name = ?").rows([.text(name.fullName)])
        guard let row = rows.first else { return nil }
        return try chunkID(row[0], subject: "ref \(name)")
    }

    private func storedHeadBranch(_ db: SQLiteConnection) throws -> String? {
        let rows = try db.cachedStatement("SELECT branch FROM head WHERE slot = 0").rows()
        guard let row = rows.first else { return RefName.main.fullName }
        if case .text(let branch) = row[0] { return branch }
        return nil
    }

    private func storedHead(_ db: SQLiteConnection) throws -> Head {
        let rows = try db.cachedStatement("SELECT branch, id, sealed FROM head WHERE slot = 0").rows()
        guard let row = rows.first else { return .branch(.main) }
        if row[0] != .null {
            let name = try storedRefName(row[0], in: "HEAD")
            guard name.kind == .branch else { throw HistoryError(.corrupt, "HEAD points to \(name), which is not a branch") }
            return .branch(name)
        }
        return .detached(
            try openValue(id: row[1], sealed: row[2], table: Table.head, name: RefName.head.fullName, subject: "HEAD"))
    }

    private func reflogEntry(_ row: [SQLiteValue]) throws -> ReflogEntry {
        guard case .integer(let sequence) = row[0], case .integer(let time) = row[5], case .text(let message) = row[7],
            case .blob(let agentBytes) = row[6], let agent = try? AgentID(bytes: agentBytes)
        else {
            throw HistoryError(.corrupt, "refs database \(path): a reflog entry is malformed")
        }
        let name = try storedRefName(row[1], in: "reflog entry \(sequence)")
        let subject = "reflog entry \(sequence) of \(name)"
        let old = row[2] == .null ? nil : try chunkID(row[2], subject: subject)
        let new = row[3] == .null ? nil : try openValue(id: row[3], sealed: row[4], table: Table.reflog, name: name.fullName, subject: subject)
        // Entries written before messages were sealed keep them in `message`.
        var text = message
        if case .blob(let sealed) = row[8] {
            text = try sealer.openMessage(sealed, ref: name.fullName, time: time, old: old, new: new?.id, subject: subject)
        }
        return ReflogEntry(
            sequence: sequence, name: name, oldID: old, new: new, time: Milliseconds.date(time), agent: agent, message: text)
    }

    /// The value set by a reflog row of (seq, new_id, new_sealed); nil for a deletion.
    private func loggedValue(_ row: [SQLiteValue], of name: RefName) throws -> ChunkRef? {
        guard row[1] != .null else { return nil }
        let sequence = if case .integer(let value) = row[0] { value } else { Int64(0) }
        return try openValue(
            id: row[1], sealed: row[2], table: Table.reflog, name: name.fullName,
            subject: "reflog entry \(sequence) of \(name)")
    }

    private func catalogValue(_ row: [SQLiteValue]) throws -> ChunkRef {
        try openValue(id: row[0], sealed: row[1], table: Table.commits, name: "", subject: "commit catalog entry")
    }

    private func openValue(id: SQLiteValue, sealed: SQLiteValue, table: String, name: String, subject: String) throws -> ChunkRef {
        let chunkID = try chunkID(id, subject: subject)
        guard case .blob(let sealedBytes) = sealed else {
            throw HistoryError(.corrupt, "\(subject): its sealed value is missing")
        }
        return try sealer.open(sealedBytes, id: chunkID, table: table, name: name, subject: subject)
    }

    private func chunkID(_ value: SQLiteValue, subject: String) throws -> ChunkID {
        guard case .blob(let bytes) = value, let id = ChunkID(bytes: bytes) else {
            throw HistoryError(.corrupt, "\(subject): its stored commit id is malformed")
        }
        return id
    }

    private func storedRefName(_ value: SQLiteValue, in place: String) throws -> RefName {
        guard case .text(let text) = value, let name = try? RefName(validating: text) else {
            throw HistoryError(.corrupt, "refs database \(path): \(place) holds an invalid ref name")
        }
        return name
    }

    private static func describe(_ id: ChunkID?) -> String {
        id.map { "commit \($0.shortDescription)" } ?? "no ref"
    }
}
