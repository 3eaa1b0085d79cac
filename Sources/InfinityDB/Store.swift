import Foundation
import InfinityBackends
import InfinityChunks
import InfinityCrypto
import InfinityPacks
import Synchronization

/// Settings chosen when a store is created. Every writer of the store then shares them.
public struct StoreOptions: Sendable {
    /// Chunk sizes for file data (default: min 512 KiB, average 1 MiB, max 8 MiB).
    public var dataChunking: ChunkerParameters = .fileData
    /// Chunk sizes for tree nodes and chunk lists.
    public var metadataChunking: ChunkerParameters = .metadata
    /// A pack is finished once it holds this many bytes.
    public var targetPackSize = 16 << 20
    /// zstd level for sealing (1–19; 3 is zstd's own default).
    public var compressionLevel: Int32 = 3
    /// Cost of the passphrase key derivation.
    public var scrypt: Scrypt.Parameters = .interactive

    public init() {}
}

/// An agent's store: its keys, its packs and its chunk index, over a ``Backend``.
///
/// ```swift
/// let store = try await Store.create(at: "/data/photos.infinity", agentName: "alice",
///                                    passphrase: SecureBytes(utf8: passphrase))
/// let refs = try await store.putFile(at: "/data/photo.jpg")
/// try await store.flush()
/// try await store.writeFile(refs, to: "/tmp/photo.jpg")
/// ```
///
/// Safe to share between tasks: reads and writes may run concurrently. Data is durable once
/// ``flush()`` returns.
public final class Store: Sendable {
    /// Where the store is, for messages: a path or a URL.
    public let location: String
    public let backend: any Backend
    public let configuration: StoreConfiguration
    /// The owning agent's public identity.
    public let identity: AgentIdentity
    /// The chunk layer: put and get chunks, streams and blobs.
    public let chunks: ChunkStore
    /// Where refs, the reflog and the commit catalog live (a SQLite file).
    public let historyPath: String
    /// The agents this store knows, what they hold and which of its packs they keep.
    public let agents: AgentBook
    /// Backends of the other agents' stores this one reaches.
    let peers = PeerBackends()
    /// For a store in another backend: its history, synchronised with the working copy here.
    let remoteHistory = Mutex<RemoteHistory?>(nil)
    let keys: AgentKeys
    private let masterSecret: SecureBytes

    static let keysPrefix = "keys/"

    /// What opening the store had to mend, for the user to know (a damaged index rebuilt).
    public internal(set) var openingNotes: [String] {
        get { notes.withLock { $0 } }
        set { notes.withLock { $0 = newValue } }
    }
    private let notes = Mutex<[String]>([])

    private init(
        location: String, backend: any Backend, configuration: StoreConfiguration, masterSecret: SecureBytes,
        keys: AgentKeys, index: ChunkIndex, historyPath: String
    ) throws {
        self.location = location
        self.historyPath = historyPath
        self.backend = backend
        self.configuration = configuration
        self.masterSecret = masterSecret
        self.keys = keys
        identity = keys.identity(name: configuration.ownerName)
        agents = try AgentBook(path: Self.agentsPath(besideHistory: historyPath), recordsKey: keys.recordsKey)
        let packs = PackStore(
            backend: backend, index: index, metadataKey: keys.metadataKey,
            targetPackSize: configuration.targetPackSize)
        let table = try HKDF.expand(
            pseudoRandomKey: keys.chunkerSecret, info: Array("infinitydb/v1/gear-table".utf8),
            outputByteCount: GearTable.keyMaterialSize
        ).withUnsafeBytes { try GearTable(keyMaterial: $0) }
        chunks = ChunkStore(
            packs: packs,
            sealer: ChunkSealer(contentKey: keys.contentKey, compressionLevel: configuration.compressionLevel),
            dataChunker: Chunker(parameters: configuration.dataChunking, table: table),
            metadataChunker: Chunker(parameters: configuration.metadataChunking, table: table))
        installReplicaFinder(peers: peers)
    }

    // MARK: Creating and opening

    /// Creates a store in a new or empty local directory, with a new agent as its owner.
    /// The chunk index lives in `local/index.sqlite` inside it.
    public static func create(
        at path: String, agentName: String, passphrase: SecureBytes, options: StoreOptions = StoreOptions()
    ) async throws -> Store {
        if let contents = try? FileManager.default.contentsOfDirectory(atPath: path) {
            if contents.contains(StoreConfiguration.objectName) {
                throw StoreError(.alreadyExists, "cannot create a store at \(path): it already holds a store")
            }
            // A create that was interrupted before writing the config leaves only keys/ and
            // local/: nothing of value (the config is written last), so it may be redone.
            let leftovers: Set<String> = ["keys", "local"]
            guard contents.allSatisfy(leftovers.contains) else {
                throw StoreError(.alreadyExists, "cannot create a store at \(path): the directory is not empty")
            }
            for name in contents { try? FileManager.default.removeItem(atPath: (path as NSString).appendingPathComponent(name)) }
        }
        let backend = try LocalDirectoryBackend(root: path)
        let store = try await create(
            backend: backend, indexPath: try localIndexPath(root: path), historyPath: localHistoryPath(root: path),
            location: path, agentName: agentName, passphrase: passphrase, options: options)
        // The pack folders are made now and synced once; one that could not be made is made by
        // the first pack put there.
        try? backend.createFolders(PackFormat.folderNames, in: String(PackFormat.objectPrefix.dropLast()))
        return store
    }

    /// Creates a store in any backend, with its chunk index at `indexPath` (`":memory:"` for none
    /// on disk).
    public static func create(
        backend: any Backend, indexPath: String, historyPath: String? = nil, location: String, agentName: String,
        passphrase: SecureBytes, options: StoreOptions = StoreOptions()
    ) async throws -> Store {
        guard try await backend.info(StoreConfiguration.objectName) == nil else {
            throw StoreError(.alreadyExists, "cannot create a store at \(location): it already holds a store")
        }
        guard !agentName.isEmpty, agentName.utf8.count <= 256 else {
            throw StoreError(.invalidArgument, "an agent name must be 1 to 256 bytes long")
        }
        let masterSecret = AgentKeys.generateMasterSecret()
        let keys = try AgentKeys(masterSecret: masterSecret)
        let identity = keys.identity(name: agentName)
        var storeID = [UInt8](repeating: 0, count: 16)
        storeID.withUnsafeMutableBytes { SecureRandom.fill($0) }
        let configuration = try StoreConfiguration(
            format: StoreConfiguration.formatName, version: StoreConfiguration.currentVersion,
            storeID: Hex.encode(storeID), ownerAgentID: identity.id.description, ownerName: agentName,
            created: ISO8601DateFormatter().string(from: Date()), dataChunking: options.dataChunking,
            metadataChunking: options.metadataChunking, targetPackSize: options.targetPackSize,
            compressionLevel: options.compressionLevel, authenticator: nil
        ).authenticated(with: keys.metadataKey)
        try await writeKeyFile(
            WrappedMasterSecret.wrap(masterSecret, passphrase: passphrase, parameters: options.scrypt), to: backend)
        // The refs database exists from the start, so its absence later means it was lost.
        let history = historyPath ?? Self.historyPath(besideIndex: indexPath)
        _ = try RefStore(path: history, metadataKey: keys.metadataKey)
        // The config goes last: a store without one is not a store yet, whatever else was written.
        try await backend.put(StoreConfiguration.objectName, try configuration.encoded())
        return try Store(
            location: location, backend: backend, configuration: configuration, masterSecret: masterSecret,
            keys: keys, index: ChunkIndex(path: indexPath), historyPath: history)
    }

    /// Opens the store in a local directory.
    public static func open(at path: String, passphrase: SecureBytes) async throws -> Store {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw StoreError(.notAStore, "no store at \(path): it does not exist")
        }
        guard isDirectory.boolValue else {
            throw StoreError(.notAStore, "\(path) is not an InfinityDB store: it is a file, not a directory")
        }
        let backend = try LocalDirectoryBackend(root: path)
        // Check it is a store before creating anything inside it.
        guard try await backend.info(StoreConfiguration.objectName) != nil else {
            throw StoreError(.notAStore, "\(path) is not an InfinityDB store: it has no config object")
        }
        let refsPath = localHistoryPath(root: path)
        // Even reading updates the index and refs databases inside the store: say so plainly
        // rather than as an SQLite error about the first file that cannot be opened.
        if access(path, W_OK) != 0 {
            let reason = errno == EROFS ? "is on a read-only file system" : "cannot be written by this user (\(String(cString: strerror(errno))))"
            throw StoreError(
                .readOnly,
                "the store at \(path) \(reason): InfinityDB writes its index and refs there even to read; remount it read-write, or copy it (cp -a) to writable storage and use the copy")
        }
        return try await open(
            backend: backend, indexPath: try localIndexPath(root: path), historyPath: refsPath,
            location: path, passphrase: passphrase
        ) { _ in
            // The refs are the only record of which commits exist: never start an empty one over
            // a store that had them (the index, by contrast, is rebuilt from the packs).
            guard FileManager.default.fileExists(atPath: refsPath) else {
                throw StoreError(
                    .corrupt,
                    "the refs database \(refsPath) is missing: it holds the store's branches, tags and history; put back a copy of it (the packs alone do not say which commits exist)")
            }
        }
    }

    /// Opens a store in any backend. If the index is empty while the store holds packs (a new
    /// machine, or a deleted index), it is rebuilt from the packs first.
    public static func open(
        backend: any Backend, indexPath: String, historyPath: String? = nil, location: String, passphrase: SecureBytes
    ) async throws -> Store {
        try await open(backend: backend, indexPath: indexPath, historyPath: historyPath, location: location, passphrase: passphrase) { _ in }
    }

    /// Opens a store in any backend; `prepareHistory` runs once the keys are known, before the
    /// history and agents databases are opened (a remote store takes its history then).
    /// `historyVersionRead` returns once the version of the history that `prepareHistory` takes
    /// has been read: the packs are listed after it, so the index covers every pack that history
    /// may name.
    static func open(
        backend: any Backend, indexPath: String, historyPath: String?, location: String, passphrase: SecureBytes,
        historyVersionRead: @escaping @Sendable () async -> Void = {},
        prepareHistory: (AgentKeys) async throws -> Void
    ) async throws -> Store {
        // Asked for while the config is read and the passphrase is stretched, since none of it
        // needs a key and a remote store answers each request after a round trip: the key files,
        // the packs, and an existing chunk index (opened, its runs' filters read, and the
        // newest metadata packs read ahead: most commands go on to read trees, and after a cold
        // start those reads then come from memory; an unchanged re-backup of 65k files, 0.89 ->
        // 0.79 s). A new index is only created once the store has opened. Whatever of this is
        // still under way when the open fails is cancelled and waited for.
        async let keyFiles = backend.list(prefix: keysPrefix)
        async let listedPacks: [ObjectInfo] = {
            await historyVersionRead()
            return try await backend.list(prefix: PackFormat.objectPrefix)
        }()
        let indexExists = FileManager.default.fileExists(atPath: indexPath)
        async let existingIndex: (ChunkIndex, recovery: String?)? = {
            guard indexExists else { return nil }
            let opened = try openIndex(at: indexPath)
            for name in (try? opened.0.newestPacks(of: .metadata, upTo: Self.treePacksReadAhead)) ?? [] {
                await backend.readAhead(name)
            }
            return opened
        }()
        let configBytes: [UInt8]
        do {
            configBytes = try await backend.get(StoreConfiguration.objectName)
        } catch let error as BackendError where error.code == .notFound {
            throw StoreError(.notAStore, "\(location) is not an InfinityDB store: it has no config object")
        }
        let configuration = try StoreConfiguration.decode(configBytes, location: location)
        let masterSecret = try await unlock(keyFiles: try await keyFiles, backend: backend, location: location, passphrase: passphrase)
        let keys = try AgentKeys(masterSecret: masterSecret)
        try configuration.verify(with: keys.metadataKey, location: location)
        _ = try configuration.dataChunking.validated(location: location)
        _ = try configuration.metadataChunking.validated(location: location)
        guard configuration.ownerAgentID == keys.identity(name: configuration.ownerName).id.description else {
            throw StoreError(.corrupt, "store \(location): the unlocked key does not belong to the store's owner")
        }
        guard (1...(1 << 30)).contains(configuration.targetPackSize), (-7...22).contains(configuration.compressionLevel)
        else {
            throw StoreError(.corrupt, "store \(location) has an invalid pack size or compression level")
        }
        try await prepareHistory(keys)
        let (index, recovery) = try await existingIndex ?? openIndex(at: indexPath)
        let store = try Store(
            location: location, backend: backend, configuration: configuration, masterSecret: masterSecret,
            keys: keys, index: index,
            historyPath: historyPath ?? Self.historyPath(besideIndex: indexPath))
        // A writer may have stopped between storing a pack and indexing it, or the index may be
        // new (another machine, deleted, or damaged and set aside): the packs are the truth.
        _ = try await store.chunks.packs.indexMissingPacks(listed: try await listedPacks)
        store.openingNotes = recovery.map { [$0] } ?? []
        return store
    }

    /// How many bytes of the newest metadata packs opening a store reads ahead.
    static let treePacksReadAhead = 64 << 20

    /// Opens the chunk index. One SQLite reports as damaged is only a cache of what the packs
    /// say, so it is moved aside (kept for inspection) and a new one is built from the packs.
    private static func openIndex(at path: String) throws -> (ChunkIndex, recovery: String?) {
        do {
            return (try ChunkIndex(path: path), nil)
        } catch let error as PackError {
            guard path != ":memory:", let cause = error.cause as? SQLiteError,
                [SQLiteError.corrupt, SQLiteError.notADatabase].contains(cause.primaryCode)
            else { throw error }
            let aside = path + ".damaged-\(Int(Date().timeIntervalSince1970))"
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                try FileManager.default.moveItem(atPath: path + suffix, toPath: aside + suffix)
            }
            return (try ChunkIndex(path: path), "the chunk index \(path) was damaged (\(cause.codeDescription)); it was moved to \(aside) and rebuilt from the packs")
        }
    }

    /// Refs cannot be rebuilt from packs, so unlike the index they live in the store itself.
    private static func localHistoryPath(root: String) -> String {
        (root as NSString).appendingPathComponent("refs.sqlite")
    }

    /// Where history goes when only the index path is given: beside the index, or in memory
    /// with an in-memory index.
    static func historyPath(besideIndex indexPath: String) -> String {
        guard indexPath != ":memory:" else { return ":memory:" }
        return ((indexPath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("refs.sqlite")
    }

    /// The agents database lives beside the refs, in memory with in-memory refs.
    static func agentsPath(besideHistory historyPath: String) -> String {
        guard historyPath != ":memory:" else { return ":memory:" }
        return ((historyPath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("agents.sqlite")
    }

    private static func localIndexPath(root: String) throws -> String {
        let folder = (root as NSString).appendingPathComponent("local")
        do {
            try OwnerOnly.createDirectories(folder)
        } catch {
            throw StoreError(.invalidArgument, "cannot create the index folder \(folder)", cause: error)
        }
        return (folder as NSString).appendingPathComponent("index.sqlite")
    }

    // MARK: Keys

    private static func writeKeyFile(_ wrapped: WrappedMasterSecret, to backend: any Backend) async throws {
        try await backend.put(keysPrefix + Hex.encode(SecureRandom.bytes(count: 16)), try wrapped.encoded())
    }

    /// Tries each key file with the passphrase.
    private static func unlock(
        keyFiles: [ObjectInfo], backend: any Backend, location: String, passphrase: SecureBytes
    ) async throws -> SecureBytes {
        guard !keyFiles.isEmpty else {
            throw StoreError(.corrupt, "store \(location) has no key files (keys/ is empty)")
        }
        var unreadable: [String] = []
        var newer: [String] = []
        for keyFile in keyFiles {
            do {
                let wrapped = try WrappedMasterSecret.decode(try await backend.get(keyFile.name))
                return try wrapped.unwrap(passphrase: passphrase)
            } catch let error as CryptoError where error.code == .wrongPassphrase {
                continue
            } catch let error as CryptoError where error.code == .unsupportedFormat {
                newer.append("\(keyFile.name) (\(error))")
            } catch {
                unreadable.append("\(keyFile.name) (\(error))")
            }
        }
        // Only when no key file opens does a damaged or newer one become the error.
        if newer.count + unreadable.count == keyFiles.count {
            if !newer.isEmpty {
                throw StoreError(.unsupportedFormat, "the key files of store \(location) are of a newer format: \(newer.joined(separator: "; "))")
            }
            throw StoreError(.corrupt, "no key file of store \(location) can be read: \(unreadable.joined(separator: "; "))")
        }
        // A sealed key file cannot tell a wrong passphrase from a damaged byte: say both, and
        // name the files tried, so damage is not mistaken for a forgotten passphrase for long.
        let tried = keyFiles.map(\.name).joined(separator: ", ")
        throw StoreError(
            .wrongPassphrase,
            "wrong passphrase for store \(location) (no key file opens with it: \(tried); if the passphrase is right, the key file is damaged: put back a copy of the store's keys/ folder)")
    }

    /// Wraps the agent's master secret under a new passphrase, then removes every key file that
    /// was there before: the one this store was opened with, and any an interrupted change left
    /// behind, so that once this returns only the new passphrase opens the store. No data is
    /// re-encrypted. Until the old files are removed the old passphrases open the store too, so
    /// an interruption never locks the owner out.
    public func changePassphrase(to newPassphrase: SecureBytes, parameters: Scrypt.Parameters = .interactive) async throws {
        // Listed before the new file is written: a change running at the same time in another
        // process may remove this one's old files, never its new one.
        let oldKeyFiles = try await backend.list(prefix: Self.keysPrefix).map(\.name)
        try await Self.writeKeyFile(
            WrappedMasterSecret.wrap(masterSecret, passphrase: newPassphrase, parameters: parameters), to: backend)
        for oldKeyFile in oldKeyFiles {
            try await backend.delete(oldKeyFile)
        }
    }

    // MARK: Data

    /// Stores bytes as one chunk (at most ``ChunkStore/maximumChunkSize``).
    public func put(_ bytes: [UInt8]) async throws -> ChunkRef {
        try await chunks.put(bytes, kind: .data)
    }

    /// Stores a stream as content-defined chunks; `read` fills a buffer and returns the count, 0 at the end.
    public func putStream(
        read: (UnsafeMutableRawBufferPointer) throws -> Int, progress: (Int) -> Void = { _ in }
    ) async throws -> [ChunkRef] {
        try await chunks.putStream(kind: .data, read: read, progress: progress)
    }

    /// Stores a file's contents as content-defined chunks.
    public func putFile(at path: String, progress: (Int) -> Void = { _ in }) async throws -> [ChunkRef] {
        let file = try InputFile(path: path)
        return try await chunks.putStream(kind: .data, read: file.read(into:), progress: progress)
    }

    /// Reads back one chunk, verified.
    public func get(_ ref: ChunkRef) async throws -> [UInt8] {
        try await chunks.get(ref)
    }

    /// Reads back a stream of chunks in order, verified.
    public func get(_ refs: [ChunkRef], write: ([UInt8]) throws -> Void) async throws {
        try await chunks.getStream(refs, write: write)
    }

    /// Writes the chunks' contents to a file, replacing it only once every chunk has been read and
    /// verified and the new file is synced to disk.
    public func writeFile(_ refs: [ChunkRef], to path: String) async throws {
        let file = try OutputFile(path: path)
        try await chunks.getStream(refs, write: file.write)
        try file.commit()
    }

    /// Makes everything put so far durable. For a store in another backend (see
    /// ``StoreAddress``), this also saves its history there (call it after the last commit or
    /// ref change) and finishes writing the local cache's copies of what was read.
    public func flush() async throws {
        try await chunks.flush()
        await (backend as? CachingBackend)?.settle()
        try await remoteHistory.withLock({ $0 })?.push(key: keys.recordsKey)
    }

    /// Recreates the chunk index from the packs alone.
    public func rebuildIndex(progress: (Int, Int) -> Void = { _, _ in }) async throws -> PackStore.RebuildReport {
        try await chunks.packs.rebuildIndex(progress: progress)
    }

    /// Counts and byte totals of what the store holds.
    public func statistics() throws -> IndexStatistics {
        try chunks.packs.index.statistics()
    }
}
