import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityHistory
import InfinityPacks
import InfinitySQLite
import Synchronization

/// Another agent as this store knows it: its signed card, the handle it goes by here (its refs
/// are `refs/agents/<handle>/…`), and whether shares from it are accepted.
public struct Contact: Sendable, Hashable {
    /// The name this store uses for the agent; unique among contacts.
    public let handle: String
    /// The agent's identity and store location, as it signed them.
    public let card: AgentCard
    /// Whether envelopes from this agent are accepted: never when the row is not authentic.
    public let trusted: Bool
    /// Whether the row (card, handle and trust) verified under this agent's records key. One
    /// that does not was changed outside InfinityDB, or written before rows were signed;
    /// `infinity agent trust` signs it again.
    public let isAuthentic: Bool
    /// When the contact was added.
    public let added: Date

    public var id: AgentID { card.identity.id }
}

/// The contacts, holdings and placement map of one store, in SQLite beside its refs
/// (`agents.sqlite`).
///
/// - contacts: the agents this store shares with, each under a handle;
/// - holdings: chunk ids another agent is known to hold (sent to it, or received from it), so a
///   share sends only what is new;
/// - placement: which agents keep copies of which of this store's packs (the spread);
/// - settings: the store's default spread.
///
/// None of it is secret: agent cards are public, and chunk ids and pack names say nothing of
/// the content. But contacts and accepted-share times decide what this store trusts, and the
/// file lies wherever the store does (in the bucket, for a bucket store): each such row carries
/// an HMAC-SHA256 under the owner's records key, checked on every read. Safe to share between
/// tasks.
public final class AgentBook: Sendable {
    public static let schemaVersion = 1
    public let path: String
    private let recordsKey: SecureBytes
    private let lock = Mutex(())
    nonisolated(unsafe) private let connection: SQLiteConnection

    private static let schema = """
        CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS contacts(
            id BLOB PRIMARY KEY,
            handle TEXT NOT NULL UNIQUE,
            card BLOB NOT NULL,
            trusted INTEGER NOT NULL,
            added_ms INTEGER NOT NULL,
            mac BLOB) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS holdings(
            agent BLOB NOT NULL,
            chunk BLOB NOT NULL,
            PRIMARY KEY (agent, chunk)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS placement(
            pack TEXT NOT NULL,
            agent BLOB NOT NULL,
            size INTEGER NOT NULL,
            digest BLOB NOT NULL,
            PRIMARY KEY (pack, agent)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS placement_by_agent ON placement(agent);
        CREATE TABLE IF NOT EXISTS accepted(
            agent BLOB NOT NULL,
            ref TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            mac BLOB,
            PRIMARY KEY (agent, ref)) WITHOUT ROWID;
        """

    /// Opens (creating if needed) the agents database at `path`; `":memory:"` keeps it in memory.
    /// `recordsKey` signs and verifies contacts and accepted-share times.
    public init(path: String, recordsKey: SecureBytes) throws {
        self.path = path
        self.recordsKey = recordsKey
        do {
            let db = try SQLiteConnection(path: path)
            db.busyTimeout = .seconds(10)
            if path != ":memory:" {
                try db.enableWriteAheadLog()
                try db.execute("PRAGMA synchronous = FULL")
            }
            try db.transaction {
                try db.execute(Self.schema)
                // Databases from before rows were signed gain the column; their rows verify
                // only once signed again (`infinity agent trust`). Older builds ignore it.
                for table in ["contacts", "accepted"] {
                    let columns = try db.prepare("PRAGMA table_info(\(table))").rows().map { $0[1] }
                    if !columns.contains(.text("mac")) { try db.execute("ALTER TABLE \(table) ADD COLUMN mac BLOB") }
                }
                let rows = try db.prepare("SELECT value FROM meta WHERE key = 'schema'").rows()
                if case .text(let text) = rows.first?[0] {
                    guard let version = Int(text), version <= Self.schemaVersion else {
                        throw DatabaseError(
                            .storage, "agents database \(path) has schema '\(text)'; this build reads schema \(Self.schemaVersion) (upgrade to open it)")
                    }
                } else {
                    try db.prepare("INSERT INTO meta(key, value) VALUES ('schema', ?)").run([.text(String(Self.schemaVersion))])
                }
            }
            connection = db
        } catch let error as DatabaseError {
            throw error
        } catch {
            throw DatabaseError(.storage, "cannot open the agents database at \(path)", cause: error)
        }
    }

    private func withConnection<R>(_ what: @autoclosure () -> String, _ body: (SQLiteConnection) throws -> R) throws -> R {
        do {
            return try lock.withLock { _ in try body(connection) }
        } catch let error as DatabaseError {
            throw error
        } catch {
            throw DatabaseError(.storage, "agents database \(path): \(what()) failed", cause: error)
        }
    }

    // MARK: Contacts

    /// Checks that a handle can name an agent in refs (`refs/agents/<handle>/main`).
    public static func validateHandle(_ handle: String) throws {
        do {
            _ = try RefName.agent(handle, branch: "main")
        } catch {
            throw DatabaseError(.invalidArgument, "'\(handle)' cannot name an agent: \(error)")
        }
        guard !handle.contains("/") else {
            throw DatabaseError(.invalidArgument, "'\(handle)' cannot name an agent: it contains '/'")
        }
    }

    /// Adds a contact, or updates the card and trust of the one with the same id.
    ///
    /// - Throws: ``DatabaseError/Code/invalidArgument`` when the handle is not valid, or belongs
    ///   to another agent.
    @discardableResult
    public func add(_ card: AgentCard, handle: String, trusted: Bool, now: Date = Date()) throws -> Contact {
        try Self.validateHandle(handle)
        return try withConnection("adding agent \(handle)") { db in
            try db.transaction {
                let owner = try db.prepare("SELECT id FROM contacts WHERE handle = ?").rows([.text(handle)])
                if case .blob(let id) = owner.first?[0], id != card.identity.id.bytes {
                    throw DatabaseError(
                        .invalidArgument,
                        "another agent already goes by '\(handle)' here (id \(Hex.encode(id).prefix(16))…); choose another name with --as")
                }
                let milliseconds = Int64((now.timeIntervalSince1970 * 1000).rounded())
                let encoded = card.encoded()
                try db.prepare(
                    """
                    INSERT INTO contacts(id, handle, card, trusted, added_ms, mac) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET handle = excluded.handle, card = excluded.card, trusted = excluded.trusted,
                        mac = excluded.mac
                    """
                ).run([
                    .blob(card.identity.id.bytes), .text(handle), .blob(encoded), .integer(trusted ? 1 : 0), .integer(milliseconds),
                    .blob(contactMAC(handle: handle, card: encoded, trusted: trusted)),
                ])
            }
            return try contact(where: "id = ?", [.blob(card.identity.id.bytes)], db)!
        }
    }

    /// Every contact, by handle.
    public func contacts() throws -> [Contact] {
        try withConnection("listing agents") { db in
            try db.prepare("SELECT \(Self.contactColumns) FROM contacts ORDER BY handle").rows().map(contact)
        }
    }

    /// The contact with this handle, or nil.
    public func contact(handle: String) throws -> Contact? {
        try withConnection("reading agent \(handle)") { db in try contact(where: "handle = ?", [.text(handle)], db) }
    }

    /// The contact with this id, or nil.
    public func contact(id: AgentID) throws -> Contact? {
        try withConnection("reading agent \(id)") { db in try contact(where: "id = ?", [.blob(id.bytes)], db) }
    }

    /// The contact a handle, full id or id prefix (8 hex digits or more) names.
    ///
    /// - Throws: ``DatabaseError/Code/unknownAgent`` when none or more than one matches.
    public func contact(named name: String) throws -> Contact {
        if let contact = try contact(handle: name) { return contact }
        let lowered = name.lowercased()
        if lowered.count >= 8, lowered.allSatisfy(\.isHexDigit) {
            let matches = try contacts().filter { $0.id.description.hasPrefix(lowered) }
            if matches.count == 1 { return matches[0] }
            if matches.count > 1 {
                throw DatabaseError(.unknownAgent, "agent id prefix \(name) matches \(matches.count) agents; give more digits")
            }
        }
        throw DatabaseError(
            .unknownAgent, "no agent '\(name)' is known to this store (see `infinity agent list`; add one with `infinity agent import`)")
    }

    /// Sets whether envelopes from a contact are accepted, and signs its row and the records of
    /// the shares accepted from it again: the way to vouch for rows that do not verify (written
    /// before rows were signed, or changed outside InfinityDB) once you have checked them.
    public func setTrusted(_ trusted: Bool, handle: String) throws {
        try withConnection("changing the trust of \(handle)") { db in
            try db.transaction {
                let rows = try db.prepare("SELECT id, card FROM contacts WHERE handle = ?").rows([.text(handle)])
                guard case .blob(let id) = rows.first?[0], case .blob(let card) = rows.first?[1] else {
                    throw DatabaseError(.unknownAgent, "no agent '\(handle)' is known to this store")
                }
                try db.prepare("UPDATE contacts SET trusted = ?, mac = ? WHERE id = ?").run([
                    .integer(trusted ? 1 : 0), .blob(contactMAC(handle: handle, card: card, trusted: trusted)), .blob(id),
                ])
                for row in try db.prepare("SELECT ref, time_ms FROM accepted WHERE agent = ?").rows([.blob(id)]) {
                    guard case .text(let ref) = row[0], case .integer(let time) = row[1] else { continue }
                    try db.prepare("UPDATE accepted SET mac = ? WHERE agent = ? AND ref = ?")
                        .run([.blob(acceptedMAC(agent: id, ref: ref, time: time)), .blob(id), .text(ref)])
                }
            }
        }
    }

    /// The error for a contact whose row does not verify, naming it and saying what to do.
    public func unverified(_ contact: Contact) -> DatabaseError {
        DatabaseError(
            .unverifiedContact,
            "the entry of agent '\(contact.handle)' (\(contact.id)) in \(path) does not verify under this agent's key: it was changed outside InfinityDB, or written before contacts were signed; it is not trusted. Compare its id with the agent's, then run `infinity agent trust \(contact.handle)` to sign it again")
    }

    /// Forgets a contact, what it holds and the copies it keeps for this store. Its refs are
    /// left to the caller.
    public func remove(handle: String) throws {
        try withConnection("removing agent \(handle)") { db in
            try db.transaction {
                let rows = try db.prepare("SELECT id FROM contacts WHERE handle = ?").rows([.text(handle)])
                guard case .blob(let id) = rows.first?[0] else {
                    throw DatabaseError(.unknownAgent, "no agent '\(handle)' is known to this store")
                }
                try db.prepare("DELETE FROM contacts WHERE id = ?").run([.blob(id)])
                try db.prepare("DELETE FROM holdings WHERE agent = ?").run([.blob(id)])
                try db.prepare("DELETE FROM placement WHERE agent = ?").run([.blob(id)])
            }
        }
    }

    private static let contactColumns = "handle, card, trusted, added_ms, mac, id"

    private func contact(where condition: String, _ values: [SQLiteValue], _ db: SQLiteConnection) throws -> Contact? {
        try db.prepare("SELECT \(Self.contactColumns) FROM contacts WHERE \(condition)").rows(values).first.map(contact)
    }

    private func contact(_ row: [SQLiteValue]) throws -> Contact {
        guard case .text(let handle) = row[0], case .blob(let card) = row[1], case .integer(let trusted) = row[2],
            case .integer(let added) = row[3]
        else { throw DatabaseError(.storage, "the agents database holds a malformed contact row") }
        do {
            let decoded = try AgentCard.decode(card)
            // The MAC covers the card, which names the agent; the row's key must name the same one.
            let isAuthentic = row[5] == .blob(decoded.identity.id.bytes)
                && Self.matches(row[4], contactMAC(handle: handle, card: card, trusted: trusted != 0))
            return Contact(
                handle: handle, card: decoded, trusted: trusted != 0 && isAuthentic, isAuthentic: isAuthentic,
                added: Date(timeIntervalSince1970: Double(added) / 1000))
        } catch {
            throw DatabaseError(.storage, "the stored card of agent '\(handle)' does not verify (damaged agents database)", cause: error)
        }
    }

    // MARK: Holdings

    /// Records that an agent holds these chunks.
    public func recordHoldings(_ ids: some Sequence<ChunkID>, agent: AgentID) throws {
        try withConnection("recording what \(agent) holds") { db in
            try db.transaction {
                let insert = try db.cachedStatement("INSERT OR IGNORE INTO holdings(agent, chunk) VALUES (?, ?)")
                for id in ids { try insert.run([.blob(agent.bytes), .blob(id.bytes)]) }
            }
        }
    }

    /// Whether the agent is known to hold the chunk.
    public func holds(_ agent: AgentID, _ id: ChunkID) throws -> Bool {
        try withConnection("reading what \(agent) holds") { db in
            try !db.cachedStatement("SELECT 1 FROM holdings WHERE agent = ? AND chunk = ?")
                .rows([.blob(agent.bytes), .blob(id.bytes)]).isEmpty
        }
    }

    /// Forgets what an agent holds, so the next share to it sends everything again.
    public func forgetHoldings(of agent: AgentID) throws {
        try withConnection("forgetting what \(agent) holds") { db in
            try db.prepare("DELETE FROM holdings WHERE agent = ?").run([.blob(agent.bytes)])
        }
    }

    // MARK: Placement

    /// One copy of a pack kept by another agent.
    public struct Placement: Sendable, Hashable {
        public let pack: String
        public let agent: AgentID
        public let size: Int
        /// SHA-256 of the whole pack as it was copied: a copy is taken back only if it still matches.
        public let digest: [UInt8]
    }

    /// Records that an agent keeps a copy of a pack.
    public func recordPlacement(pack: String, agent: AgentID, size: Int, digest: [UInt8]) throws {
        try withConnection("recording a copy of \(pack)") { db in
            try db.prepare("INSERT OR REPLACE INTO placement(pack, agent, size, digest) VALUES (?, ?, ?, ?)")
                .run([.text(pack), .blob(agent.bytes), .integer(Int64(size)), .blob(digest)])
        }
    }

    /// The SHA-256 recorded for a pack when it was copied (every copy has the same bytes).
    public func digest(ofPack pack: String) throws -> [UInt8]? {
        try withConnection("reading the copies of \(pack)") { db in
            let rows = try db.cachedStatement("SELECT digest FROM placement WHERE pack = ? LIMIT 1").rows([.text(pack)])
            guard case .blob(let digest) = rows.first?[0] else { return nil }
            return digest
        }
    }

    /// Forgets that an agent keeps a copy of a pack.
    public func removePlacement(pack: String, agent: AgentID) throws {
        try withConnection("forgetting a copy of \(pack)") { db in
            try db.prepare("DELETE FROM placement WHERE pack = ? AND agent = ?").run([.text(pack), .blob(agent.bytes)])
        }
    }

    /// The agents keeping a copy of a pack.
    public func holders(ofPack pack: String) throws -> [AgentID] {
        try withConnection("reading the copies of \(pack)") { db in
            try db.cachedStatement("SELECT agent FROM placement WHERE pack = ? ORDER BY agent")
                .rows([.text(pack)]).compactMap { row in
                    guard case .blob(let bytes) = row[0] else { return nil }
                    return try? AgentID(bytes: bytes)
                }
        }
    }

    /// The whole placement map.
    public func placements() throws -> [Placement] {
        try withConnection("reading the placement map") { db in
            try db.prepare("SELECT pack, agent, size, digest FROM placement ORDER BY pack").rows().compactMap { row in
                guard case .text(let pack) = row[0], case .blob(let agent) = row[1], case .integer(let size) = row[2],
                    case .blob(let digest) = row[3], let id = try? AgentID(bytes: agent)
                else { return nil }
                return Placement(pack: pack, agent: id, size: Int(size), digest: digest)
            }
        }
    }

    // MARK: Accepted shares

    /// The time of the newest envelope accepted from an agent for a ref, in milliseconds.
    ///
    /// - Throws: ``DatabaseError/Code/unverifiedContact`` when the record does not verify, so a
    ///   changed time can never let an older envelope in.
    public func lastAccepted(from agent: AgentID, ref: String) throws -> Int64? {
        try withConnection("reading the shares accepted from \(agent)") { db in
            let rows = try db.prepare("SELECT time_ms, mac FROM accepted WHERE agent = ? AND ref = ?").rows([.blob(agent.bytes), .text(ref)])
            guard let row = rows.first, case .integer(let time) = row[0] else { return nil }
            guard Self.matches(row[1], acceptedMAC(agent: agent.bytes, ref: ref, time: time)) else {
                let handle = try contact(where: "id = ?", [.blob(agent.bytes)], db)?.handle ?? agent.description
                throw DatabaseError(
                    .unverifiedContact,
                    "the record of the last share of '\(ref)' accepted from agent '\(handle)' in \(path) does not verify under this agent's key: it was changed outside InfinityDB, or written before these records were signed. Run `infinity agent trust \(handle)` to sign it again")
            }
            return time
        }
    }

    /// Records the time of an envelope accepted from an agent for a ref.
    public func recordAccepted(from agent: AgentID, ref: String, timeMilliseconds: Int64) throws {
        try withConnection("recording a share accepted from \(agent)") { db in
            try db.prepare("INSERT OR REPLACE INTO accepted(agent, ref, time_ms, mac) VALUES (?, ?, ?, ?)").run([
                .blob(agent.bytes), .text(ref), .integer(timeMilliseconds),
                .blob(acceptedMAC(agent: agent.bytes, ref: ref, time: timeMilliseconds)),
            ])
        }
    }

    // MARK: Row authentication

    /// HMAC-SHA256 under the records key of a contact row: its card (which holds the agent's
    /// id), handle and trust, each length-prefixed after a domain label.
    private func contactMAC(handle: String, card: [UInt8], trusted: Bool) -> [UInt8] {
        var message = Array("infinitydb-contact-v1".utf8)
        Self.appendField(card, to: &message)
        Self.appendField(Array(handle.utf8), to: &message)
        message.append(trusted ? 1 : 0)
        return HMACSHA256.authenticate(message, key: recordsKey)
    }

    /// HMAC-SHA256 under the records key of an accepted-share row: agent id, ref and time.
    private func acceptedMAC(agent: [UInt8], ref: String, time: Int64) -> [UInt8] {
        var message = Array("infinitydb-accepted-v1".utf8)
        Self.appendField(agent, to: &message)
        Self.appendField(Array(ref.utf8), to: &message)
        withUnsafeBytes(of: time.littleEndian) { message.append(contentsOf: $0) }
        return HMACSHA256.authenticate(message, key: recordsKey)
    }

    private static func appendField(_ bytes: [UInt8], to message: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { message.append(contentsOf: $0) }
        message.append(contentsOf: bytes)
    }

    /// Whether a stored MAC equals the expected one (compared in constant time).
    private static func matches(_ stored: SQLiteValue, _ expected: [UInt8]) -> Bool {
        guard case .blob(let given) = stored, given.count == expected.count else { return false }
        return SecureBytes(copying: given) == SecureBytes(copying: expected)
    }

    // MARK: Settings

    /// How many copies of every pack the store keeps (its own included); 1 when never set.
    public func defaultSpread() throws -> Int {
        try withConnection("reading the spread") { db in
            let rows = try db.prepare("SELECT value FROM meta WHERE key = 'spread'").rows()
            guard case .text(let text) = rows.first?[0], let value = Int(text), value >= 1 else { return 1 }
            return value
        }
    }

    public func setDefaultSpread(_ copies: Int) throws {
        try withConnection("setting the spread") { db in
            try db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES ('spread', ?)").run([.text(String(copies))])
        }
    }
}
