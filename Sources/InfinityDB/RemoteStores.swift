import Foundation
import InfinityBackends
import InfinityCrypto
import InfinityPacks
import InfinitySQLite
import Synchronization

/// Where a store is: a local directory (a path, or a `file:` URL), or a store in another backend
/// named by URL: a single SQLite file (`sqlite:PATH`) or an S3-compatible bucket (`s3://…`).
public enum StoreAddress: Sendable {
    case directory(String)
    case remote(url: String)

    public init(_ text: String) throws {
        if text.hasPrefix("s3://") || text.hasPrefix("sqlite:") {
            self = .remote(url: text)
        } else if text.hasPrefix("file://") {
            guard let url = URL(string: text), url.isFileURL else {
                throw StoreError(.invalidArgument, "'\(text)' is not a valid file URL")
            }
            self = .directory(url.path)
        } else if let colon = text.range(of: "://") {
            throw StoreError(
                .invalidArgument, "'\(text)' names a kind of store this build cannot reach ('\(text[..<colon.lowerBound])'); use a path, file://, sqlite: or s3://")
        } else {
            self = .directory(text)
        }
    }

    /// Where this user's InfinityDB state lives: `$INFINITY_HOME`, else `~/.infinity`.
    public static var home: String {
        ProcessInfo.processInfo.environment["INFINITY_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.infinity")
    }

    /// The backend a remote address names.
    func remoteBackend() throws -> any Backend {
        guard case .remote(let url) = self else { preconditionFailure("a directory has no remote backend") }
        if url.hasPrefix("sqlite:") {
            let path = String(url.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw StoreError(.invalidArgument, "'\(url)' names no file: write sqlite:PATH") }
            return try SQLiteBackend(path: path)
        }
        return try S3Backend(url: url)
    }

    /// The backend of a remote address as a store reads it: a bucket behind a local disk cache
    /// of whole packs (`INFINITY_CACHE_SIZE`, such as `4GiB`; default 1 GiB). Metadata packs stay while
    /// data packs come and go, so `log`, `ls` and `diff` reach the bucket only for what is new,
    /// and a restore fetches each pack it reads from once. A file is used as it is.
    func cachedBackend(in directory: String, packKinds: PackKinds) async throws -> any Backend {
        let backend = try remoteBackend()
        guard backend is S3Backend else { return backend }
        var capacity = 1 << 30
        if let text = ProcessInfo.processInfo.environment["INFINITY_CACHE_SIZE"], !text.isEmpty {
            guard let bytes = ByteCount.parse(text) else {
                throw StoreError(.invalidArgument, "INFINITY_CACHE_SIZE '\(text)' is not a size: write 500MiB, 4GiB or a number of bytes")
            }
            capacity = Int(bytes)
        }
        return try await CachingBackend(
            remote: backend, directory: directory + "/cache", capacity: capacity,
            keepWarm: { $0.hasPrefix(PackFormat.objectPrefix) },
            evictFirst: { packKinds.kind(ofPack: $0) != .metadata })
    }

    /// Where this machine keeps a remote store's local state (its chunk index, and its working
    /// copy of the history): `$INFINITY_HOME/stores/<hash of the URL>` (INFINITY_HOME defaults
    /// to ~/.infinity).
    func stateDirectory() throws -> String {
        guard case .remote(let url) = self else { preconditionFailure("a directory keeps its own state") }
        let directory = "\(Self.home)/stores/\(Hex.encode(SHA256.hash(Array(url.utf8))).prefix(24))"
        do {
            try OwnerOnly.createDirectories(directory)
        } catch {
            throw StoreError(.io, "cannot create the local state folder \(directory) of store \(url)", cause: error)
        }
        return directory
    }
}

extension Store {
    /// Opens the store at an address (see ``StoreAddress``). A remote store's history is taken
    /// from the store first, so another machine's commits are seen.
    ///
    /// - Parameter stateDirectory: where this machine keeps a remote store's chunk index and its
    ///   copy of the history (default: `$INFINITY_HOME/stores/<hash of the URL>`).
    public static func open(address: StoreAddress, passphrase: SecureBytes, stateDirectory: String? = nil) async throws -> Store {
        switch address {
        case .directory(let path):
            return try await open(at: path, passphrase: passphrase)
        case .remote(let url):
            let directory = try stateDirectory ?? address.stateDirectory()
            try OwnerOnly.createDirectories(directory)
            let packKinds = PackKinds()
            let backend = try await address.cachedBackend(in: directory, packKinds: packKinds)
            // No store at the address: the config's read says so (one request, not a HEAD and a GET).
            let history = try RemoteHistory(backend: backend, directory: directory, location: url)
            let indexPath = history.directory + "/index.sqlite"
            // A machine with no index yet is about to read the end of every pack: while the
            // passphrase is stretched (most of a second of one core), the packs come whole
            // into the cache, as many as fit, and indexing then reads them there.
            let warming = (backend as? CachingBackend).flatMap { cache in
                FileManager.default.fileExists(atPath: indexPath) ? nil : Task {
                    await cache.prefetch((try? await backend.list(prefix: PackFormat.objectPrefix)) ?? [])
                }
            }
            defer { warming?.cancel() }
            // The history's version is read meanwhile too; it is checked once the keys are known.
            let version = Task { try await history.readVersion() }
            defer { version.cancel() }
            let store = try await open(
                backend: backend, indexPath: indexPath, historyPath: history.refsPath, location: url, passphrase: passphrase,
                historyVersionRead: { _ = try? await version.value },
                prepareHistory: { keys in try await history.pull(key: keys.recordsKey, version: try await version.value) })
            packKinds.index.withLock { $0 = store.chunks.packs.index }
            store.remoteHistory.withLock { $0 = history }
            return store
        }
    }

    /// Creates a store at an address (see ``StoreAddress``), with a new agent as its owner.
    public static func create(
        address: StoreAddress, agentName: String, passphrase: SecureBytes, options: StoreOptions = StoreOptions(),
        stateDirectory: String? = nil
    ) async throws -> Store {
        switch address {
        case .directory(let path):
            return try await create(at: path, agentName: agentName, passphrase: passphrase, options: options)
        case .remote(let url):
            let directory = try stateDirectory ?? address.stateDirectory()
            try OwnerOnly.createDirectories(directory)
            // Local state left by an earlier store at this URL belongs to nothing now.
            for name in ["index.sqlite", "refs.sqlite", "agents.sqlite", RemoteHistory.recordName] {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: "\(directory)/\(name)\(suffix)") }
            }
            try? FileManager.default.removeItem(atPath: directory + "/cache")
            if let s3 = try address.remoteBackend() as? S3Backend { try await s3.createBucketIfMissing() }
            let packKinds = PackKinds()
            let backend = try await address.cachedBackend(in: directory, packKinds: packKinds)
            let history = try RemoteHistory(backend: backend, directory: directory, location: url)
            let store = try await create(
                backend: backend, indexPath: directory + "/index.sqlite", historyPath: history.refsPath, location: url,
                agentName: agentName, passphrase: passphrase, options: options)
            packKinds.index.withLock { $0 = store.chunks.packs.index }
            store.remoteHistory.withLock { $0 = history }
            try await store.flush()
            return store
        }
    }
}

/// The history (refs, reflog, commit catalog) and contacts of a store in another backend: kept
/// as SQLite files in the store, `history/<version>/refs.sqlite` and `…/agents.sqlite`, with
/// `history/version` naming the current version; this machine works on a copy.
///
/// ``pull(key:)`` replaces the copy when the store holds a newer version. ``push(key:)`` uploads a
/// consistent snapshot of the copy under a new version, then moves `history/version` to it with a
/// conditional write that succeeds only if nobody moved it since this copy was taken: two
/// machines can never overwrite each other's history; the one that loses is told to run again.
final class RemoteHistory: Sendable {
    static let recordName = "history-version.json"
    static let versionObject = "history/version"
    static let files = ["refs.sqlite", "agents.sqlite"]

    let backend: any ConditionalWrites
    let directory: String
    let location: String
    /// Pushes run one at a time: a second would see the first's version as someone else's.
    private let pushing = AsyncSemaphore(1)

    var refsPath: String { directory + "/refs.sqlite" }

    init(backend: any Backend, directory: String, location: String) throws {
        guard let conditional = (backend as? CachingBackend)?.remote as? any ConditionalWrites ?? backend as? any ConditionalWrites else {
            throw StoreError(.invalidArgument, "store \(location) cannot keep its history: its backend has no conditional writes")
        }
        self.backend = conditional
        self.directory = directory
        self.location = location
    }

    /// The version named by `history/version`: its files, the snapshot they hold, and (since
    /// versions are authenticated) a sequence number one above the version it replaced and an
    /// HMAC-SHA256 over all three under the owner's records key. Without the sequence, a
    /// provider could put back any older version, which still authenticates.
    private struct Version: Codable {
        var version: String
        var snapshot: String
        var sequence: UInt64?
        var authenticator: String?

        func expectedAuthenticator(key: SecureBytes, sequence: UInt64) -> [UInt8] {
            var message = Array("infinitydb-history-version-v1".utf8)
            for field in [version, snapshot] {
                withUnsafeBytes(of: UInt32(field.utf8.count).littleEndian) { message.append(contentsOf: $0) }
                message.append(contentsOf: field.utf8)
            }
            withUnsafeBytes(of: sequence.littleEndian) { message.append(contentsOf: $0) }
            return HMACSHA256.authenticate(message, key: key)
        }
    }

    /// What this copy was last in step with: that version, and the object's tag then; and the
    /// highest sequence number this machine has seen for the store, which never goes down.
    private struct Record: Codable {
        var version: String
        var snapshot: String
        var tag: String
        var highestSequence: UInt64?
    }

    private var recordPath: String { "\(directory)/\(Self.recordName)" }

    private func readRecord() -> Record? {
        guard let data = FileManager.default.contents(atPath: recordPath) else { return nil }
        return try? JSONDecoder().decode(Record.self, from: data)
    }

    private func writeRecord(_ record: Record) throws {
        try Self.writeOwnerOnly(try JSONEncoder().encode(record), to: recordPath)
    }

    /// Replaces the file at `path` whole, readable by its owner only like every file of a store.
    private static func writeOwnerOnly(_ data: Data, to path: String) throws {
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: Int(OwnerOnly.fileMode)], ofItemAtPath: path)
    }

    private static func object(_ file: String, version: String) -> String { "history/\(version)/\(file)" }

    /// The `history/version` object and its tag, nil when the store has none yet.
    func readVersion() async throws -> (bytes: [UInt8], version: String)? {
        try await backend.getVersioned(Self.versionObject)
    }

    /// Takes the store's history when it is newer than the copy, given the `history/version`
    /// object as ``readVersion()`` read it.
    ///
    /// - Throws: ``StoreError/Code/rollback`` when the store offers a version whose sequence
    ///   number is not above the highest this machine has seen (or an unauthenticated one after
    ///   authenticated ones); ``StoreError/Code/corrupt`` when the version or its files fail
    ///   authentication.
    func pull(key: SecureBytes, version: (bytes: [UInt8], version: String)?) async throws {
        guard let (bytes, tag) = version else { return }
        guard let current = try? JSONDecoder().decode(Version.self, from: Data(bytes)) else {
            throw StoreError(.corrupt, "the history version of store \(location) (\(Self.versionObject)) is damaged")
        }
        let record = readRecord()
        guard current.version != record?.version else { return }
        let seen = record?.highestSequence
        if let sequence = current.sequence {
            guard let authenticator = current.authenticator.flatMap(Hex.decode),
                SecureBytes(copying: authenticator) == SecureBytes(copying: current.expectedAuthenticator(key: key, sequence: sequence))
            else {
                throw StoreError(
                    .corrupt, "the history version of store \(location) (\(Self.versionObject)) fails authentication (damaged or tampered)")
            }
            // Equal is refused too: two versions never share a number (the conditional write
            // lets one machine at a time move past a number).
            if let seen, sequence <= seen {
                throw StoreError(
                    .rollback,
                    "store \(location) offers history version \(sequence), but this machine has seen version \(seen): the store was rolled back (or its history replaced); nothing was taken")
            }
        } else if let seen {
            throw StoreError(
                .rollback,
                "store \(location) offers an unauthenticated history version, but this machine has seen authenticated version \(seen): the store was rolled back; nothing was taken")
        }
        var files: [String: [UInt8]] = [:]
        try await withThrowingTaskGroup(of: (String, [UInt8]).self) { group in
            for file in Self.files {
                group.addTask { [backend] in (file, try await backend.get(Self.object(file, version: current.version))) }
            }
            for try await (file, bytes) in group { files[file] = bytes }
        }
        guard Self.snapshotDigest(files) == current.snapshot else {
            throw StoreError(
                .corrupt, "the history files of store \(location) (history/\(current.version)/) do not match their version (damaged or tampered)")
        }
        for file in Self.files {
            let path = "\(directory)/\(file)"
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            try Self.writeOwnerOnly(Data(files[file]!), to: path)
        }
        // In step with the store from here: the copy is what a push would compare against.
        // (SQLite's VACUUM INTO, which takes that snapshot, does not give back the same bytes it
        // was given, so the store's own digest would make the next push upload an equal copy.)
        let (_, snapshot) = try takeSnapshot()
        try writeRecord(Record(version: current.version, snapshot: snapshot, tag: tag, highestSequence: current.sequence ?? seen))
    }

    /// A consistent copy of each file of the local copy, and its snapshot digest.
    private func takeSnapshot() throws -> (files: [String: [UInt8]], digest: String) {
        let snapshotDirectory = directory + "/snapshot"
        try? FileManager.default.removeItem(atPath: snapshotDirectory)
        try OwnerOnly.createDirectories(snapshotDirectory)
        defer { try? FileManager.default.removeItem(atPath: snapshotDirectory) }
        var snapshots: [String: [UInt8]] = [:]
        for file in Self.files {
            // VACUUM INTO writes one consistent file, write-ahead log included.
            let copy = "\(snapshotDirectory)/\(file)"
            let connection = try SQLiteConnection(path: "\(directory)/\(file)")
            try connection.execute("VACUUM INTO '\(copy.replacingOccurrences(of: "'", with: "''"))'")
            snapshots[file] = Array(FileManager.default.contents(atPath: copy) ?? Data())
        }
        return (snapshots, Self.snapshotDigest(snapshots))
    }

    /// The snapshot a version names: SHA-256 over each file's name and SHA-256.
    private static func snapshotDigest(_ files: [String: [UInt8]]) -> String {
        var hasher = SHA256Hasher()
        for file in Self.files { hasher.update(Array(file.utf8) + SHA256.hash(files[file]!)) }
        return Hex.encode(hasher.finalize())
    }

    /// Uploads the copy when it changed since it was last in step with the store.
    ///
    /// - Throws: ``StoreError/Code/conflict`` when another machine moved the history meanwhile.
    func push(key: SecureBytes) async throws {
        await pushing.acquire()
        defer { pushing.release() }
        let (snapshots, snapshot) = try takeSnapshot()
        let record = readRecord()
        guard snapshot != record?.snapshot else { return }
        let sequence = (record?.highestSequence ?? 0) + 1
        var next = Version(version: Hex.encode(SecureRandom.bytes(count: 16)), snapshot: snapshot, sequence: sequence)
        next.authenticator = Hex.encode(next.expectedAuthenticator(key: key, sequence: sequence))
        // The files go up at once, beside a listing of the versions there before this one (the
        // ones superseded once it is in place): one round trip before the version moves.
        async let listed = try? await backend.list(prefix: "history/")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for file in Self.files {
                let (name, bytes) = (Self.object(file, version: next.version), snapshots[file]!)
                group.addTask { [backend] in try await backend.put(name, bytes) }
            }
            try await group.waitForAll()
        }
        let earlier = await listed ?? []
        let tag: String
        do {
            tag = try await backend.put(Self.versionObject, Array(try JSONEncoder().encode(next)), ifVersion: record?.tag)
        } catch let error as BackendError where error.code == .preconditionFailed {
            // A write that landed but whose answer was lost is retried, and the retry is refused
            // because the version moved: to ours. Then the push succeeded, and its files stay.
            let current = try? await backend.getVersioned(Self.versionObject)
            let currentVersion = current.flatMap { try? JSONDecoder().decode(Version.self, from: Data($0.bytes)) }
            if let current, currentVersion?.version == next.version {
                tag = current.version
            } else {
                // Only files that are certainly not the store's version go; unread, they stay
                // until a later push finds them superseded.
                guard currentVersion != nil else {
                    throw StoreError(
                        .conflict,
                        "the history of store \(location) refused this change to refs, and could not be read back to tell whether it was saved; nothing was deleted: run the command again")
                }
                try? await backend.delete(Self.files.map { Self.object($0, version: next.version) })
                throw StoreError(
                    .conflict,
                    "the history of store \(location) was changed elsewhere while this ran; nothing of it was lost there, but this change to refs was not saved: run the command again")
            }
        }
        try writeRecord(Record(version: next.version, snapshot: snapshot, tag: tag, highestSequence: sequence))
        // Versions before the one this copy came from are no longer read by anyone in step.
        let superseded = earlier.map(\.name).filter { name in
            let parts = name.split(separator: "/")
            return parts.count == 3 && String(parts[1]) != next.version && String(parts[1]) != record?.version
        }
        if !superseded.isEmpty { try? await backend.delete(superseded) }
    }
}

/// The kinds of a store's packs, from its chunk index once the store is open: which packs a
/// cache keeps warm.
final class PackKinds: Sendable {
    let index = Mutex<ChunkIndex?>(nil)

    func kind(ofPack name: String) -> PackKind? {
        guard name.hasPrefix(PackFormat.objectPrefix), let index = index.withLock({ $0 }) else { return nil }
        return try? index.kind(ofPack: name)
    }
}
