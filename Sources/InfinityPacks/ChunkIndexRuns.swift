import InfinitySQLite

// The chunk index finds a chunk's rows through runs: sorted lists of (leading word of the id,
// pack row), written once and merged in tiers, so that a new chunk costs its row (appended in
// pack order) and a few bytes of run, never a page of an id-ordered table. See ``ChunkIndex``.

/// One entry of a run: the leading 8 bytes of a chunk id, and the pack row that holds the chunk.
/// A run only says where to look: the row in `chunks` decides, so an entry whose row has moved
/// or gone costs one lookup and misleads no one.
struct RunEntry: Comparable {
    static let byteCount = 12
    var prefix: UInt64
    var pack: UInt32

    static func < (lhs: RunEntry, rhs: RunEntry) -> Bool { (lhs.prefix, lhs.pack) < (rhs.prefix, rhs.pack) }

    func append(to bytes: inout [UInt8]) {
        withUnsafeBytes(of: prefix.bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: pack.bigEndian) { bytes.append(contentsOf: $0) }
    }

    init(prefix: UInt64, pack: UInt32) {
        self.prefix = prefix
        self.pack = pack
    }

    /// The entry of chunk `id` in pack row `pack`. A row that does not fit 32 bits (which records
    /// refuse) is damage to the index at `path`.
    init(id: ChunkID, pack: Int64, path: String) throws {
        guard let pack = UInt32(exactly: pack) else { throw ChunkIndex.damaged("a chunk row names pack \(pack)", path: path) }
        self.init(prefix: id.leadingWord, pack: pack)
    }

    /// Entry `index` of a block.
    init(_ block: UnsafeRawBufferPointer, at index: Int) {
        prefix = UInt64(bigEndian: block.loadUnaligned(fromByteOffset: index * Self.byteCount, as: UInt64.self))
        pack = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: index * Self.byteCount + 8, as: UInt32.self))
    }
}

/// A Bloom filter over the id prefixes of a run (10 bits an entry, 7 probes: about 1% false
/// positives), so that a lookup of a new chunk reads no block of a run that cannot hold it.
struct PrefixFilter {
    static let bitsPerEntry = 10
    static let probeCount = 7
    private(set) var words: [UInt64]

    init(entryCount: Int) {
        words = Array(repeating: 0, count: max(1, (entryCount * Self.bitsPerEntry + 63) / 64))
    }

    /// The filter stored as `bytes` (little-endian words); nil when they cannot be one.
    init?(bytes: [UInt8]) {
        guard !bytes.isEmpty, bytes.count % 8 == 0 else { return nil }
        words = bytes.withUnsafeBytes { raw in
            (0..<bytes.count / 8).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        }
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(words.count * 8)
        for word in words { withUnsafeBytes(of: word.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }

    /// Prefixes are SHA-256 output, uniform already: the probes step through the filter from the
    /// prefix by an odd stride mixed from it (double hashing).
    @inline(__always)
    private static func probe(_ number: UInt64, of prefix: UInt64, bitCount: UInt64) -> Int {
        let stride = (prefix &* 0x9E37_79B9_7F4A_7C15).byteSwapped | 1
        return Int((prefix &+ number &* stride) % bitCount)
    }

    mutating func insert(_ prefix: UInt64) {
        let bitCount = UInt64(words.count * 64)
        for number in 0..<UInt64(Self.probeCount) {
            let bit = Self.probe(number, of: prefix, bitCount: bitCount)
            words[bit >> 6] |= 1 << UInt64(bit & 63)
        }
    }

    func mayContain(_ prefix: UInt64) -> Bool {
        let bitCount = UInt64(words.count * 64)
        for number in 0..<UInt64(Self.probeCount) {
            let bit = Self.probe(number, of: prefix, bitCount: bitCount)
            if words[bit >> 6] & (1 << UInt64(bit & 63)) == 0 { return false }
        }
        return true
    }
}

/// A run as lookups use it: its filter and the first prefix of each block in memory (about
/// 1.3 bytes an entry), its blocks in SQLite.
struct LookupRun {
    /// Entries in a block, at most: 4 KiB. A block may hold more only to keep entries of one
    /// prefix together, so a lookup reads one block.
    static let blockEntryCount = 341
    let id: Int64
    let entryCount: Int
    /// The prefix of each block's first entry.
    let fences: [UInt64]
    let filter: PrefixFilter

    init(id: Int64, entryCount: Int, fences: [UInt64], filter: PrefixFilter) {
        self.id = id
        self.entryCount = entryCount
        self.fences = fences
        self.filter = filter
    }

    /// Reads run `id` from its row; nil when there is none.
    static func load(id: Int64, _ db: SQLiteConnection) throws -> LookupRun? {
        let statement = try db.cachedStatement("SELECT entry_count, fences, filter FROM runs WHERE id = ?")
        defer { statement.reset() }
        try statement.bind([.integer(id)])
        guard try statement.step() else { return nil }
        let fenceBytes = statement.blob(at: 1)
        guard fenceBytes.count % 8 == 0, let filter = PrefixFilter(bytes: statement.blob(at: 2)) else {
            throw ChunkIndex.damaged("run \(id) has a damaged filter or block list", path: db.path)
        }
        let fences = fenceBytes.withUnsafeBytes { raw in
            (0..<fenceBytes.count / 8).map { UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        }
        return LookupRun(id: id, entryCount: Int(statement.int64(at: 0)), fences: fences, filter: filter)
    }

    /// Appends to `packs` the pack rows this run lists for `prefix`.
    func packs(for prefix: UInt64, _ db: SQLiteConnection, into packs: inout [Int64]) throws {
        guard filter.mayContain(prefix) else { return }
        // The last block whose first prefix is at most `prefix`.
        var low = 0
        var high = fences.count
        while low < high {
            let middle = (low + high) / 2
            if fences[middle] <= prefix { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return }
        let statement = try db.cachedStatement("SELECT entries FROM run_blocks WHERE run = ? AND block = ?")
        defer { statement.reset() }
        try statement.bind([.integer(id), .integer(Int64(low - 1))])
        guard try statement.step() else { throw ChunkIndex.damaged("block \(low - 1) of run \(id) is missing", path: db.path) }
        try statement.withBlob(at: 0) { block in
            guard block.count % RunEntry.byteCount == 0 else {
                throw ChunkIndex.damaged("block \(low - 1) of run \(id) is damaged", path: db.path)
            }
            let count = block.count / RunEntry.byteCount
            var low = 0
            var high = count
            while low < high {
                let middle = (low + high) / 2
                if RunEntry(block, at: middle).prefix < prefix { low = middle + 1 } else { high = middle }
            }
            while low < count {
                let entry = RunEntry(block, at: low)
                guard entry.prefix == prefix else { break }
                packs.append(Int64(entry.pack))
                low += 1
            }
        }
    }
}

/// Writes one run from entries given in order, block by block, inside the caller's transaction.
struct RunWriter {
    let id: Int64
    private let db: SQLiteConnection
    private var block: [UInt8] = []
    private var blockEntries = 0
    private var fences: [UInt64] = []
    private var filter: PrefixFilter
    private var last: RunEntry? = nil
    private(set) var entryCount = 0

    /// `capacity`: at least the number of entries to come (it sizes the filter).
    init(capacity: Int, _ db: SQLiteConnection) throws {
        self.db = db
        // The row comes first, for its id. AUTOINCREMENT never gives a committed run's id again, so
        // a connection that knows a run by its id never mistakes a newer run for it. (An id seen
        // only in a transaction that rolled back may come again: the connection that wrote it
        // forgets its view on the failure.)
        try db.cachedStatement("INSERT INTO runs(entry_count, fences, filter) VALUES (0, x'', x'')").run()
        id = db.lastInsertRowID
        filter = PrefixFilter(entryCount: capacity)
        block.reserveCapacity((LookupRun.blockEntryCount + 1) * RunEntry.byteCount)
    }

    /// Adds an entry no smaller than the last; an entry equal to the last is dropped.
    mutating func append(_ entry: RunEntry) throws {
        if let last {
            guard !(entry < last) else {
                throw PackError(.index, "chunk index \(db.path): the entries of run \(id) came out of order")
            }
            if entry == last { return }
        }
        // A block ends at its size, but never between two entries of one prefix.
        if blockEntries >= LookupRun.blockEntryCount, let last, last.prefix != entry.prefix { try writeBlock() }
        if blockEntries == 0 { fences.append(entry.prefix) }
        entry.append(to: &block)
        blockEntries += 1
        filter.insert(entry.prefix)
        entryCount += 1
        last = entry
    }

    private mutating func writeBlock() throws {
        try db.cachedStatement("INSERT INTO run_blocks(run, block, entries) VALUES (?, ?, ?)")
            .run([.integer(id), .integer(Int64(fences.count - 1)), .blob(block)])
        block.removeAll(keepingCapacity: true)
        blockEntries = 0
    }

    /// Writes the last block and completes the run's row. A run of no entries is deleted (nil).
    mutating func finish() throws -> LookupRun? {
        guard entryCount > 0 else {
            try db.cachedStatement("DELETE FROM runs WHERE id = ?").run([.integer(id)])
            return nil
        }
        if blockEntries > 0 { try writeBlock() }
        var fenceBytes: [UInt8] = []
        fenceBytes.reserveCapacity(fences.count * 8)
        for fence in fences { withUnsafeBytes(of: fence.bigEndian) { fenceBytes.append(contentsOf: $0) } }
        try db.cachedStatement("UPDATE runs SET entry_count = ?, fences = ?, filter = ? WHERE id = ?")
            .run([.integer(Int64(entryCount)), .blob(fenceBytes), .blob(filter.bytes), .integer(id)])
        return LookupRun(id: id, entryCount: entryCount, fences: fences, filter: filter)
    }
}

/// Reads the entries of one run in order, a block at a time (for merges).
struct RunReader {
    private let statement: SQLiteStatement
    private let runID: Int64
    private let path: String
    private var block: [UInt8] = []
    private var position = 0

    init(run: Int64, _ db: SQLiteConnection) throws {
        statement = try db.prepare("SELECT entries FROM run_blocks WHERE run = ? ORDER BY block")
        try statement.bind([.integer(run)])
        runID = run
        path = db.path
    }

    mutating func next() throws -> RunEntry? {
        if position * RunEntry.byteCount >= block.count {
            guard try statement.step() else { return nil }
            block = statement.blob(at: 0)
            position = 0
            guard !block.isEmpty, block.count % RunEntry.byteCount == 0 else {
                throw ChunkIndex.damaged("a block of run \(runID) is damaged", path: path)
            }
        }
        defer { position += 1 }
        return block.withUnsafeBytes { RunEntry($0, at: position) }
    }
}

/// The chunks of packs no run lists yet, in memory: id → pack rows.
struct UnlistedChunks {
    /// The first pack row of each id; the rare id in several packs has the others in `more`.
    private var packOf: [ChunkID: Int64] = [:]
    private var more: [ChunkID: [Int64]] = [:]
    /// Each pack loaded, with the version of its `unlisted_packs` row.
    private(set) var versions: [Int64: Int64] = [:]
    private(set) var entryCount = 0

    func packs(of id: ChunkID, into packs: inout [Int64]) {
        guard let first = packOf[id] else { return }
        packs.append(first)
        if let others = more[id] { packs.append(contentsOf: others) }
    }

    mutating func add(pack: Int64, version: Int64, ids: [ChunkID]) {
        versions[pack] = version
        packOf.reserveCapacity(packOf.count + ids.count)
        for id in ids {
            if let first = packOf[id] {
                if first != pack { more[id, default: []].append(pack) }
            } else {
                packOf[id] = pack
            }
        }
        entryCount += ids.count
    }

    /// Every (id, pack) pair, as run entries in order (`path` names the index in an error).
    func sortedEntries(path: String) throws -> [RunEntry] {
        var entries: [RunEntry] = []
        entries.reserveCapacity(entryCount)
        for (id, pack) in packOf { entries.append(try RunEntry(id: id, pack: pack, path: path)) }
        for (id, packs) in more {
            for pack in packs { entries.append(try RunEntry(id: id, pack: pack, path: path)) }
        }
        entries.sort()
        return entries
    }

    mutating func removeAll() { self = UnlistedChunks() }
}

/// What one connection knows of the runs and of the unlisted packs' chunks, brought up to date
/// whenever another connection has committed (SQLite's `data_version`).
struct IndexView {
    private(set) var runs: [LookupRun] = []
    var unlisted = UnlistedChunks()
    private var dataVersion: Int64? = nil

    /// Unlisted chunks at which a run is tried again after a failure (0: none failed).
    var listingRetryCount = 0

    /// Catches up with what other connections wrote. Call it inside a transaction, and read with
    /// the view only inside that same transaction: SQLite's `data_version` and every read then
    /// come from one snapshot. On any failure the view is emptied and marked stale, so the next
    /// call reads everything again.
    mutating func refreshInSnapshot(_ db: SQLiteConnection) throws {
        // A read of a table starts the transaction's snapshot, if nothing has yet; the version
        // is then the snapshot's.
        _ = try db.cachedStatement("SELECT 1 FROM runs LIMIT 1").rows()
        let version = try db.cachedStatement("PRAGMA data_version")
        defer { version.reset() }
        guard try version.step() else { throw PackError(.index, "SQLite gave no data version") }
        let current = version.int64(at: 0)
        if current == dataVersion { return }
        dataVersion = nil
        do {
            try reload(db)
            dataVersion = current
        } catch {
            runs = []
            unlisted.removeAll()
            throw error
        }
    }

    private mutating func reload(_ db: SQLiteConnection) throws {
        var runIDs: [Int64] = []
        for row in try db.cachedStatement("SELECT id FROM runs ORDER BY id").rows() {
            if case .integer(let id) = row[0] { runIDs.append(id) }
        }
        if runIDs != runs.map(\.id) {
            let known = Dictionary(uniqueKeysWithValues: runs.map { ($0.id, $0) })
            runs = try runIDs.map { id in
                if let run = known[id] { return run }
                guard let run = try LookupRun.load(id: id, db) else { throw ChunkIndex.damaged("run \(id) vanished", path: db.path) }
                return run
            }
            // Runs changed: the packs they now list have left the unlisted table.
            unlisted.removeAll()
        }
        var versions: [Int64: Int64] = [:]
        for row in try db.cachedStatement("SELECT pack, version FROM unlisted_packs").rows() {
            if case .integer(let pack) = row[0], case .integer(let version) = row[1] { versions[pack] = version }
        }
        // A pack gone or recorded again: read them all again (rare: only another connection's
        // runs or records of a known pack do that).
        if unlisted.versions.contains(where: { versions[$0.key] != $0.value }) { unlisted.removeAll() }
        for (pack, version) in versions.sorted(by: { $0.key < $1.key }) where unlisted.versions[pack] != version {
            unlisted.add(pack: pack, version: version, ids: try Self.ids(inPack: pack, db))
        }
    }

    static func ids(inPack pack: Int64, _ db: SQLiteConnection) throws -> [ChunkID] {
        let statement = try db.cachedStatement("SELECT id FROM chunks WHERE pack = ?")
        defer { statement.reset() }
        try statement.bind([.integer(pack)])
        var ids: [ChunkID] = []
        while try statement.step() {
            guard let id = statement.withBlob(at: 0, { ChunkID(bytes: $0) }) else {
                throw ChunkIndex.damaged("pack row \(pack) holds a malformed chunk id", path: db.path)
            }
            ids.append(id)
        }
        return ids
    }

    /// The pack rows that may hold chunk `id`, lowest (first recorded) first, each once.
    func candidatePacks(of id: ChunkID, _ db: SQLiteConnection) throws -> [Int64] {
        var packs: [Int64] = []
        unlisted.packs(of: id, into: &packs)
        for run in runs { try run.packs(for: id.leadingWord, db, into: &packs) }
        if packs.count > 1 {
            packs.sort()
            var last: Int64? = nil
            packs.removeAll { pack in
                defer { last = pack }
                return pack == last
            }
        }
        return packs
    }

    /// Forgets the view (after a write that failed midway, whose changes to it were rolled back
    /// with it): the next ``refreshInSnapshot(_:)`` reads the runs and unlisted packs again.
    mutating func invalidate() {
        runs = []
        unlisted.removeAll()
        dataVersion = nil
    }

    /// Records what this connection just wrote: a run that replaces `merged` runs.
    mutating func replaceRuns(_ merged: Set<Int64>, with run: LookupRun?) {
        runs.removeAll { merged.contains($0.id) }
        if let run { runs.append(run) }
        runs.sort { $0.id < $1.id }
    }
}
