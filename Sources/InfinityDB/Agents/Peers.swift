import Foundation
import InfinityBackends
import InfinityCrypto
import InfinityHistory
import InfinityPacks
import Synchronization

/// The backends of other agents' stores, opened once per location and kept for the life of the
/// store that reaches them.
final class PeerBackends: Sendable {
    private let opened = Mutex<[String: any Backend]>([:])

    /// The backend of the store at `location`, any store address (see ``StoreAddress``).
    ///
    /// - Throws: ``DatabaseError/Code/storage`` naming the agent when the location is empty or
    ///   cannot be opened.
    func backend(for location: String, agent: String) throws -> any Backend {
        if let backend = opened.withLock({ $0[location] }) { return backend }
        guard !location.isEmpty else {
            throw DatabaseError(.storage, "agent '\(agent)' has not said where its store is (its card has no location)")
        }
        let backend: any Backend
        do {
            switch try StoreAddress(location) {
            case .remote:
                backend = try StoreAddress(location).remoteBackend()
            case .directory(let path):
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                    throw DatabaseError(.storage, "the store of agent '\(agent)' at \(path) is not there (or not a directory)")
                }
                backend = try LocalDirectoryBackend(root: path)
            }
        } catch let error as DatabaseError {
            throw error
        } catch {
            throw DatabaseError(.storage, "cannot reach the store of agent '\(agent)' at \(location)", cause: error)
        }
        opened.withLock { $0[location] = backend }
        return backend
    }

    /// Whether an agent's store is gone: its directory holds no store any more (not merely
    /// unreadable now). Such an agent has lost whatever it kept. A store elsewhere is never
    /// taken for gone.
    func isGone(_ contact: Contact) -> Bool {
        guard case .directory(let path) = try? StoreAddress(contact.card.location) else { return false }
        return !FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(StoreConfiguration.objectName))
    }
}

/// Where a store's packs are kept by other agents: `held/<owner agent id>/<pack name>` in the
/// holder's store.
enum HeldPack {
    static let prefix = "held/"

    static func objectName(pack: String, owner: AgentID) -> String { "\(prefix)\(owner)/\(pack)" }

    static func folder(owner: AgentID) -> String { "\(prefix)\(owner)/" }
}

extension Store {
    /// The owner's card: its identity and where this store is, signed. Hand it to agents that
    /// are to share with this one.
    public func card(location: String? = nil) throws -> AgentCard {
        try AgentCard.signed(name: configuration.ownerName, location: location ?? Self.absoluteLocation(self.location), keys: keys)
    }

    /// A path made absolute, so a card works from any directory; URLs unchanged.
    static func absoluteLocation(_ location: String) -> String {
        // A store at a URL, file:// included, is named as given.
        guard case .directory = try? StoreAddress(location), !location.isEmpty, !location.hasPrefix("file://") else { return location }
        return URL(fileURLWithPath: location).standardizedFileURL.path
    }

    /// Reads chunks from the copies other agents keep when this store's own pack fails.
    func installReplicaFinder(peers: PeerBackends) {
        let agents = self.agents
        let owner = identity.id
        chunks.packs.setReplicaFinder { pack in
            try agents.holders(ofPack: pack).compactMap { holder in
                guard let contact = try agents.contact(id: holder), contact.isAuthentic,
                    let backend = try? peers.backend(for: contact.card.location, agent: contact.handle)
                else { return nil }
                return PackReplica(
                    holder: contact.handle, backend: backend, objectName: HeldPack.objectName(pack: pack, owner: owner))
            }
        }
    }

    /// Checks that the store at a contact's location belongs to that contact, and returns its backend.
    func peerBackend(of contact: Contact) async throws -> any Backend {
        let backend = try peers.backend(for: contact.card.location, agent: contact.handle)
        let configuration: StoreConfiguration
        do {
            configuration = try StoreConfiguration.decode(
                try await backend.get(StoreConfiguration.objectName), location: contact.card.location)
        } catch {
            throw DatabaseError(
                .storage, "the store of agent '\(contact.handle)' at \(contact.card.location) cannot be read", cause: error)
        }
        guard configuration.ownerAgentID == contact.id.description else {
            throw DatabaseError(
                .storage,
                "the store at \(contact.card.location) belongs to agent \(configuration.ownerAgentID.prefix(16))…, not to '\(contact.handle)' (\(contact.id.description.prefix(16))…)")
        }
        return backend
    }
}
