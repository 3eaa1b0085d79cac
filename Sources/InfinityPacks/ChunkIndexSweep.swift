import Foundation
import InfinitySQLite

/// Where a garbage collection run starts: the packs the index knew and the time, taken before
/// the mark. Packs recorded later hold chunks written while the run was marking (whose commits
/// the mark may not have seen), so the run never condemns them.
public struct SweepHorizon: Sendable, Hashable {
    /// The highest pack row in the index when the run began.
    public let lastPackRow: Int64
    /// When the run began, in milliseconds since 1970.
    public let milliseconds: Int64

    /// When the run began.
    public var time: Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}

/// A pack as garbage collection sees it: what it holds that is still visible.
struct SweepPack: Sendable, Hashable {
    var row: Int64
    var name: String
    var kind: PackKind
    var size: Int
    /// Chunks in the pack that are not condemned, and their sealed bytes.
    var visibleCount: Int
    var visibleBytes: Int

    /// The share of the pack a repack would free: what it takes now against what a pack of
    /// only its visible chunks would take (so a fully used pack scores exactly 0).
    var unusedFraction: Double {
        guard size > 0 else { return 0 }
        let repacked = PackFormat.packSize(chunkBytes: visibleBytes, count: visibleCount)
        return max(0, Double(size - repacked) / Double(size))
    }
}

/// What the mark changed in the index.
struct MarkOutcome: Sendable, Hashable {
    var condemnedChunks = 0
    var condemnedBytes = 0
    var revivedChunks = 0
    var condemnedPacks = 0
    /// Reachable chunks the index does not know, and the first few of them.
    var missingCount = 0
    var missingSample: [ChunkID] = []
}

/// What a pack held when it was retired.
struct RetiredPack: Sendable, Hashable {
    var name: String
    var size: Int
    var chunkCount: Int
}

extension ChunkIndex {
    /// The start of a garbage collection run (see ``SweepHorizon``).
    public func sweepHorizon(at time: Date) throws -> SweepHorizon {
        try withConnection("reading the sweep horizon") { db in
            let rows = try db.cachedStatement("SELECT coalesce(max(id), 0) FROM packs").rows()
            guard case .integer(let last) = rows.first?[0] else {
                throw PackError(.index, "chunk index \(path): the pack table cannot be read")
            }
            return SweepHorizon(lastPackRow: last, milliseconds: Int64((time.timeIntervalSince1970 * 1000).rounded()))
        }
    }

    /// Applies a mark: revives condemned chunks that are reachable again, condemns visible chunks
    /// that are not (in packs up to the horizon) and condemns packs that serve nothing visible.
    /// Then calls `plan` inside the same transaction, and commits, or rolls everything back when
    /// `dryRun` is set (so a dry run plans from exactly the state a real run would leave).
    func mark<Plan>(
        live: some Collection<ChunkID>, horizon: SweepHorizon, now: Int64, dryRun: Bool,
        plan: (SQLiteConnection) throws -> Plan
    ) throws -> (MarkOutcome, Plan) {
        try withConnection("marking reachable chunks") { db in
            try db.execute("CREATE TEMP TABLE IF NOT EXISTS live(id BLOB PRIMARY KEY) WITHOUT ROWID; DELETE FROM temp.live")
            defer { try? db.execute("DROP TABLE IF EXISTS temp.live") }
            let insert = try db.prepare("INSERT OR IGNORE INTO temp.live(id) VALUES (?)")
            try db.transaction {
                for id in live { try insert.run([.blob(id.bytes)]) }
            }
            var result: (MarkOutcome, Plan)?
            do {
                try db.transaction {
                    result = (try Self.applyMark(horizon: horizon, now: now, db), try plan(db))
                    if dryRun { throw DryRunRollback() }
                }
            } catch is DryRunRollback {}
            guard let result else { throw PackError(.index, "chunk index \(path): the mark produced no result") }
            return result
        }
    }

    private struct DryRunRollback: Error {}

    private static func applyMark(horizon: SweepHorizon, now: Int64, _ db: SQLiteConnection) throws -> MarkOutcome {
        var outcome = MarkOutcome()
        // Rows are keyed by pack: a set difference reads the table once.
        let missing = try db.cachedStatement("SELECT id FROM temp.live EXCEPT SELECT id FROM chunks").rows()
        outcome.missingCount = missing.count
        outcome.missingSample = missing.prefix(10).compactMap { row in
            if case .blob(let bytes) = row[0] { return ChunkID(bytes: bytes) }
            return nil
        }

        // A reachable chunk with no visible row gets its condemned row recorded last back, the
        // one readers use (the owner's own copy rather than a forged one condemned before it was
        // stored); one only, as a chunk has at most one visible row.
        try db.cachedStatement(
            """
            UPDATE chunks SET condemned_ms = NULL WHERE condemned_ms IS NOT NULL AND (pack, id) IN (
                SELECT max(pack), id FROM chunks WHERE condemned_ms IS NOT NULL AND id IN (SELECT id FROM temp.live)
                AND id NOT IN (SELECT id FROM chunks WHERE condemned_ms IS NULL AND id IN (SELECT id FROM temp.live))
                GROUP BY id)
            """
        ).run()
        outcome.revivedChunks = db.changes
        // A pack that serves a visible chunk again is no longer condemned.
        try db.cachedStatement(
            """
            UPDATE packs SET condemned_ms = NULL WHERE condemned_ms IS NOT NULL
            AND EXISTS (SELECT 1 FROM chunks WHERE chunks.pack = packs.id AND chunks.condemned_ms IS NULL)
            """
        ).run()

        let unreachable = "condemned_ms IS NULL AND pack <= ?1 AND id NOT IN (SELECT id FROM temp.live)"
        let totals = try db.cachedStatement("SELECT count(*), coalesce(sum(length), 0) FROM chunks WHERE \(unreachable)")
            .rows([.integer(horizon.lastPackRow)])
        if case .integer(let count) = totals.first?[0], case .integer(let bytes) = totals.first?[1] {
            outcome.condemnedChunks = Int(count)
            outcome.condemnedBytes = Int(bytes)
        }
        try db.cachedStatement("UPDATE chunks SET condemned_ms = ?2 WHERE \(unreachable)")
            .run([.integer(horizon.lastPackRow), .integer(now)])
        try db.cachedStatement(
            """
            UPDATE packs SET condemned_ms = ?2 WHERE retired = 0 AND condemned_ms IS NULL AND id <= ?1
            AND NOT EXISTS (SELECT 1 FROM chunks WHERE chunks.pack = packs.id AND chunks.condemned_ms IS NULL)
            """
        ).run([.integer(horizon.lastPackRow), .integer(now)])
        outcome.condemnedPacks = db.changes
        return outcome
    }

    /// Packs up to the horizon that serve visible chunks, with what they hold.
    static func servingPacks(upTo horizon: SweepHorizon, _ db: SQLiteConnection) throws -> [SweepPack] {
        let rows = try db.cachedStatement(
            """
            SELECT packs.id, packs.name, packs.kind, packs.size, count(*), sum(chunks.length)
            FROM packs JOIN chunks ON chunks.pack = packs.id AND chunks.condemned_ms IS NULL
            WHERE packs.retired = 0 AND packs.condemned_ms IS NULL AND packs.id <= ?
            GROUP BY packs.id ORDER BY packs.kind, packs.id
            """
        ).rows([.integer(horizon.lastPackRow)])
        return try rows.map { row in
            guard case .integer(let id) = row[0], case .text(let name) = row[1], case .integer(let kind) = row[2],
                case .integer(let size) = row[3], case .integer(let count) = row[4], case .integer(let bytes) = row[5],
                let packKind = PackKind(rawValue: UInt8(clamping: kind))
            else { throw PackError(.index, "a pack row of the chunk index is damaged") }
            return SweepPack(
                row: id, name: name, kind: packKind, size: Int(size), visibleCount: Int(count), visibleBytes: Int(bytes))
        }
    }

    /// Condemned packs, not retired, with their size and when they were condemned.
    static func condemnedPacks(_ db: SQLiteConnection) throws -> [(row: Int64, name: String, size: Int, since: Int64)] {
        try db.cachedStatement(
            "SELECT id, name, size, condemned_ms FROM packs WHERE retired = 0 AND condemned_ms IS NOT NULL ORDER BY id"
        ).rows().map { row in
            guard case .integer(let id) = row[0], case .text(let name) = row[1], case .integer(let size) = row[2],
                case .integer(let since) = row[3]
            else { throw PackError(.index, "a pack row of the chunk index is damaged") }
            return (id, name, Int(size), since)
        }
    }

    /// ``condemnedPacks(_:)`` outside a mark.
    func condemnedPacks() throws -> [(row: Int64, name: String, size: Int, since: Int64)] {
        try withConnection("listing condemned packs") { db in try Self.condemnedPacks(db) }
    }

    /// The visible chunks of a pack, in pack order.
    func visibleEntries(ofPackRow row: Int64) throws -> [PackEntry] {
        try withConnection("listing the chunks of pack \(row)") { db in
            try db.cachedStatement(
                "SELECT id, offset, length, plaintext_length FROM chunks WHERE pack = ? AND condemned_ms IS NULL ORDER BY offset"
            ).rows([.integer(row)]).map { row in
                guard case .blob(let bytes) = row[0], let id = ChunkID(bytes: bytes), case .integer(let offset) = row[1],
                    case .integer(let length) = row[2], case .integer(let plaintextLength) = row[3]
                else { throw PackError(.index, "a chunk row of the chunk index is damaged") }
                return PackEntry(id: id, offset: Int(offset), length: Int(length), plaintextLength: Int(plaintextLength))
            }
        }
    }

    /// Records a pack of copied chunks and moves each chunk's row to its copy, in one transaction;
    /// then condemns every source pack left serving nothing visible. A chunk whose row no longer
    /// points at its source (a rebuild moved it) keeps its row; the copy is then just unused.
    ///
    /// - Parameter sources: for each chunk of the new pack, the pack row it was copied from.
    func recordCopies(
        packName: String, kind: PackKind, size: Int, entries: [PackEntry], sources: [ChunkID: Int64], now: Int64
    ) throws {
        try withLockedView("recording repacked pack \(packName)") { db, view in
            let moved: (pack: Int64, version: Int64, ids: [ChunkID]) = try db.transaction {
                try view.refreshInSnapshot(db)
                guard let packID = try Self.packRow(named: packName, kind: kind, size: size, db) else {
                    throw PackError(.index, "new pack \(packName) is already retired")
                }
                let move = try db.cachedStatement(
                    "UPDATE chunks SET pack = ?, offset = ?, length = ?, plaintext_length = ? WHERE id = ? AND pack = ?")
                var ids: [ChunkID] = []
                for entry in entries {
                    guard let source = sources[entry.id] else { continue }
                    try move.run([
                        .integer(packID), .integer(Int64(entry.offset)), .integer(Int64(entry.length)),
                        .integer(Int64(entry.plaintextLength)), .blob(entry.id.bytes), .integer(source),
                    ])
                    if db.changes > 0 { ids.append(entry.id) }
                }
                let condemn = try db.cachedStatement(
                    """
                    UPDATE packs SET condemned_ms = ?2 WHERE id = ?1 AND condemned_ms IS NULL
                    AND NOT EXISTS (SELECT 1 FROM chunks WHERE chunks.pack = ?1 AND chunks.condemned_ms IS NULL)
                    """)
                for source in Set(sources.values) { try condemn.run([.integer(source), .integer(now)]) }
                return (packID, try Self.markUnlisted(packID, db), ids)
            }
            // The moved chunks are found in the new pack through the unlisted packs, until a run
            // lists them there.
            view.unlisted.add(pack: moved.pack, version: moved.version, ids: moved.ids)
            try? Self.listUnlistedIfDue(db, &view, runThreshold: runThreshold)
        }
    }

    /// Retires a condemned pack: forgets its chunks and marks it retired, in one transaction,
    /// provided it is still condemned since `cutoff` or earlier and serves nothing visible (a
    /// writer or another run may have revived it since it was planned).
    ///
    /// - Returns: what it held, or nil when it no longer qualifies.
    func retire(packRow row: Int64, condemnedNoLaterThan cutoff: Int64) throws -> RetiredPack? {
        try withConnection("retiring pack \(row)") { db in
            try db.transaction {
                let rows = try db.cachedStatement(
                    """
                    SELECT name, size FROM packs WHERE id = ?1 AND retired = 0 AND condemned_ms IS NOT NULL
                    AND condemned_ms <= ?2
                    AND NOT EXISTS (SELECT 1 FROM chunks WHERE chunks.pack = ?1 AND chunks.condemned_ms IS NULL)
                    """
                ).rows([.integer(row), .integer(cutoff)])
                guard case .text(let name) = rows.first?[0], case .integer(let size) = rows.first?[1] else { return nil }
                let counted = try db.cachedStatement("SELECT count(*) FROM chunks WHERE pack = ?").rows([.integer(row)])
                try db.cachedStatement("DELETE FROM chunks WHERE pack = ?").run([.integer(row)])
                try db.cachedStatement("UPDATE packs SET retired = 1 WHERE id = ?").run([.integer(row)])
                let count = if case .integer(let value) = counted.first?[0] { Int(value) } else { 0 }
                return RetiredPack(name: name, size: Int(size), chunkCount: count)
            }
        }
    }

    /// The names of retired packs: deleted, or still to be deleted when a run stopped between
    /// retiring a pack and deleting it.
    public func retiredPackNames() throws -> Set<String> {
        try withConnection("listing retired packs") { db in
            Set(try db.cachedStatement("SELECT name FROM packs WHERE retired = 1").rows().compactMap { row -> String? in
                if case .text(let name) = row[0] { return name }
                return nil
            })
        }
    }
}
