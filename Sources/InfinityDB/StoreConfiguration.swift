import Foundation
import InfinityChunks
import InfinityCrypto

/// The store's `config` object: format version, identity of the owner, and the settings every
/// writer of the store must share (chunker sizes, pack size, compression level).
///
/// It is plain JSON so that any build can read the format version before anything else and give a
/// clear error; an HMAC under the owner's metadata key, checked after unlocking, makes every field
/// tamper-evident.
public struct StoreConfiguration: Codable, Sendable, Hashable {
    /// The object name of the configuration inside a store.
    public static let objectName = "config"
    public static let formatName = "infinitydb-store"
    /// The newest store format this build reads and writes.
    public static let currentVersion = 1

    public var format: String
    public var version: Int
    /// A random id naming this store.
    public var storeID: String
    /// Hex id of the agent that owns the store (see ``AgentIdentity``).
    public var ownerAgentID: String
    public var ownerName: String
    /// When the store was created, ISO 8601.
    public var created: String
    public var dataChunking: ChunkerParameters
    public var metadataChunking: ChunkerParameters
    public var targetPackSize: Int
    public var compressionLevel: Int32
    /// HMAC-SHA256 (hex) over the canonical JSON of every other field, under the metadata key.
    public var authenticator: String?

    /// The bytes the authenticator covers: sorted-key JSON of the configuration without it.
    func canonicalBytes() throws -> [UInt8] {
        var copy = self
        copy.authenticator = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(copy))
    }

    func authenticated(with metadataKey: SecureBytes) throws -> StoreConfiguration {
        var copy = self
        copy.authenticator = Hex.encode(HMACSHA256.authenticate(try canonicalBytes(), key: metadataKey))
        return copy
    }

    func verify(with metadataKey: SecureBytes, location: String) throws {
        let expected = HMACSHA256.authenticate(try canonicalBytes(), key: metadataKey)
        guard let authenticator, let given = Hex.decode(authenticator),
            SecureBytes(copying: given) == SecureBytes(copying: expected)
        else {
            throw StoreError(.corrupt, "the configuration of store \(location) failed authentication (damaged or tampered)")
        }
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array(try encoder.encode(self)) + [0x0A]
    }

    /// Reads a configuration, checking the format and version before anything else.
    static func decode(_ bytes: [UInt8], location: String) throws -> StoreConfiguration {
        struct Header: Decodable {
            var format: String?
            var version: Int?
        }
        guard let header = try? JSONDecoder().decode(Header.self, from: Data(bytes)),
            header.format == formatName, let version = header.version
        else {
            throw StoreError(.notAStore, "\(location) is not an InfinityDB store: its config object is not a store configuration")
        }
        guard version <= currentVersion, version >= 1 else {
            throw StoreError(
                .unsupportedFormat,
                "store \(location) has format version \(version); this build of infinity reads version \(currentVersion) — upgrade infinity to open it")
        }
        do {
            return try JSONDecoder().decode(StoreConfiguration.self, from: Data(bytes))
        } catch {
            throw StoreError(.corrupt, "the configuration of store \(location) is damaged", cause: error)
        }
    }
}

extension ChunkerParameters {
    /// A clear error for parameters that a damaged or hostile configuration could carry.
    func validated(location: String) throws -> ChunkerParameters {
        do {
            return try ChunkerParameters(minimumSize: minimumSize, averageSize: averageSize, maximumSize: maximumSize)
        } catch {
            throw StoreError(.corrupt, "store \(location) has invalid chunker parameters", cause: error)
        }
    }
}
