import Foundation
import InfinityBackends
import InfinityCrypto
import InfinityHistory

/// How much an agent accepts from others into its store (shares waiting in its inbox, and
/// copies of other agents' packs it keeps for their spread), and until when.
///
/// Stored in the agent's own store as the object `capacity`, signed by the agent, so a sender
/// can check it before writing anything. A store without one accepts shares without limit and
/// keeps no copies for others.
public struct CapacityDeclaration: Sendable, Hashable, Codable {
    public static let objectName = "capacity"
    static let signatureDomain = Array("infinitydb-capacity-v1".utf8)

    /// The declaring agent.
    public let agent: AgentID
    /// Bytes accepted from all other agents together.
    public let bytes: Int64
    /// After this time nothing more is accepted; nil for no end.
    public let until: Date?
    let signature: String

    /// Makes and signs a declaration.
    public static func signed(bytes: Int64, until: Date?, keys: AgentKeys) throws -> CapacityDeclaration {
        guard bytes >= 0 else { throw DatabaseError(.invalidArgument, "a capacity cannot be negative") }
        let agent = keys.identity(name: "").id
        guard let message = message(agent: agent, bytes: bytes, until: until) else {
            throw DatabaseError(.invalidArgument, "the end of a capacity must be within 292 million years of 1970")
        }
        let signature = try keys.signingKey.signature(for: message)
        return CapacityDeclaration(agent: agent, bytes: bytes, until: until, signature: Data(signature).base64EncodedString())
    }

    /// What the signature covers; `until` in whole milliseconds since 1970, -1 for no end. Nil
    /// when `until` is too far away to count in 64 bits: a stored declaration can hold any number.
    private static func message(agent: AgentID, bytes: Int64, until: Date?) -> [UInt8]? {
        var untilMilliseconds: Int64 = -1
        if let until {
            guard let milliseconds = Int64(exactly: (until.timeIntervalSince1970 * 1000).rounded()) else { return nil }
            untilMilliseconds = milliseconds
        }
        return signatureDomain + agent.bytes + withUnsafeBytes(of: bytes.bigEndian, Array.init)
            + withUnsafeBytes(of: untilMilliseconds.bigEndian, Array.init)
    }

    /// Whether the declaration is signed by the agent it names.
    func verify(by identity: AgentIdentity) -> Bool {
        guard identity.id == agent, let raw = Data(base64Encoded: signature) else { return false }
        let until = self.until.map { Date(timeIntervalSince1970: ($0.timeIntervalSince1970 * 1000).rounded() / 1000) }
        guard let message = Self.message(agent: agent, bytes: bytes, until: until) else { return false }
        return identity.signingPublicKey.isValidSignature(Array(raw), for: message)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()
}

/// What an agent's store holds for others, against what it accepts.
public struct CapacityUsage: Sendable, Hashable {
    /// The agent's declaration, or nil when it made none.
    public let declaration: CapacityDeclaration?
    /// Bytes of shares waiting in its inbox.
    public let inboxBytes: Int64
    /// Bytes of other agents' packs it keeps.
    public let heldBytes: Int64

    public var usedBytes: Int64 { inboxBytes + heldBytes }

    /// Bytes it still accepts; nil when unlimited.
    public var freeBytes: Int64? { declaration.map { max(0, $0.bytes - usedBytes) } }

    /// Why `incoming` bytes more cannot be written, or nil when they can.
    ///
    /// - Parameter forCopies: copies for the spread need a declaration; shares do not.
    func refusal(of incoming: Int64, agent: String, forCopies: Bool, now: Date = Date()) -> String? {
        guard let declaration else {
            return forCopies ? "agent '\(agent)' has not declared that it keeps copies for others (`infinity capacity` in its store)" : nil
        }
        if let until = declaration.until, until < now {
            return "agent '\(agent)' accepted data from others only until \(ISO8601DateFormatter().string(from: until))"
        }
        guard usedBytes + incoming <= declaration.bytes else {
            return "agent '\(agent)' accepts \(ByteCount.format(declaration.bytes)) from others and already holds \(ByteCount.format(usedBytes)); this needs \(ByteCount.format(incoming)) more"
        }
        return nil
    }

    /// Reads what the store in `backend` declares and holds.
    ///
    /// - Parameter identity: the store's owner, whose signature the declaration must carry.
    static func read(from backend: any Backend, owner identity: AgentIdentity, agent: String) async throws -> CapacityUsage {
        var declaration: CapacityDeclaration?
        if try await backend.info(CapacityDeclaration.objectName) != nil {
            let bytes = try await backend.get(CapacityDeclaration.objectName)
            guard let decoded = try? CapacityDeclaration.decoder.decode(CapacityDeclaration.self, from: Data(bytes)),
                decoded.verify(by: identity)
            else {
                throw DatabaseError(.storage, "the capacity declared by agent '\(agent)' is damaged or not signed by it")
            }
            declaration = decoded
        }
        let inbox = try await backend.list(prefix: Inbox.prefix).reduce(Int64(0)) { $0 + Int64($1.size) }
        let held = try await backend.list(prefix: HeldPack.prefix).reduce(Int64(0)) { $0 + Int64($1.size) }
        return CapacityUsage(declaration: declaration, inboxBytes: inbox, heldBytes: held)
    }
}

extension Store {
    /// Declares how much this store accepts from other agents, and until when (nil: no end).
    public func declareCapacity(bytes: Int64, until: Date? = nil) async throws {
        let declaration = try CapacityDeclaration.signed(bytes: bytes, until: until, keys: keys)
        try await backend.put(CapacityDeclaration.objectName, Array(try CapacityDeclaration.encoder.encode(declaration)))
    }

    /// Withdraws the declaration: shares are accepted without limit again, copies no longer.
    public func withdrawCapacity() async throws {
        try await backend.delete(CapacityDeclaration.objectName)
    }

    /// What this store declares and holds for others.
    public func capacityUsage() async throws -> CapacityUsage {
        try await CapacityUsage.read(from: backend, owner: identity, agent: configuration.ownerName)
    }

    /// What a contact's store declares and holds for others.
    public func capacityUsage(of contact: Contact) async throws -> CapacityUsage {
        try await CapacityUsage.read(from: try await peerBackend(of: contact), owner: contact.card.identity, agent: contact.handle)
    }
}
