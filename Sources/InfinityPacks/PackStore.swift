import InfinityBackends
import InfinityCrypto
import Synchronization

/// Sealed chunks in, sealed chunks out: groups chunks into packs of about ``targetPackSize``,
/// stores each finished pack in the backend, then records it in the ``ChunkIndex``
/// (write order: pack → index, so the index never points at a pack that is not there).
///
/// Safe to use from many tasks at once. Chunks in packs not yet stored are served from memory, so
/// a caller can read what it just wrote before ``flush()``.
public final class PackStore: Sendable {
    public let backend: any Backend
    public let index: ChunkIndex
    public let targetPackSize: Int
    let metadataKey: SecureBytes
    private let state: Mutex<State>
    private let replicaFinder = Mutex<PackReplicaFinder?>(nil)
    /// Staged chunks, with how many stagings hold each (two accepts may stage the same chunk).
    private let staged = Mutex<[ChunkID: (chunk: StagedChunk, holds: Int)]>([:])
    /// Locations looked up ahead of reads: see ``prefetchLocations(of:)``.
    private let prefetched = Mutex<[ChunkID: ChunkLocation]>([:])

    /// A chunk readable before it is in any pack of this store: it lies in another object of
    /// the backend (a share waiting in the inbox) until it is verified and added, or dropped.
    public struct StagedChunk: Sendable, Hashable {
        public let objectName: String
        public let entry: PackEntry
        public let kind: PackKind

        public init(objectName: String, entry: PackEntry, kind: PackKind) {
            self.objectName = objectName
            self.entry = entry
            self.kind = kind
        }
    }

    /// A pack being uploaded; its bytes stay readable until the index knows it.
    private final class Upload: Sendable {
        let pack: FinishedPack
        init(_ pack: FinishedPack) { self.pack = pack }
    }

    private enum PendingLocation {
        /// Claimed by a writer that is still sealing the chunk.
        case claimed
        case open(PackKind, PackEntry)
        case uploading(Upload, PackEntry)
    }

    private struct State {
        var open: [PackKind: PackBuilder] = [:]
        var pending: [ChunkID: PendingLocation] = [:]
        var uploads: [String: Task<Void, any Error>] = [:]
        /// The first pack that failed to be stored since the last flush. Writers that skipped a
        /// chunk because another writer was adding it learn of that writer's failure here.
        var failure: (any Error)?
        /// Bytes of the packs stored and indexed so far.
        var storedPackBytes = 0
        /// The memory of a pack stored since, for the next pack of its kind: a backup writes
        /// hundreds of packs, and a fresh 16 MiB for each is 4,096 page faults as it fills. (Of its
        /// kind: a metadata pack fills slowly, and would hold a data pack's memory all along.)
        var spareBuffers: [PackKind: [UInt8]] = [:]
    }

    /// Room a pack's buffer has past the target size: for the chunk that takes it past (chunks of
    /// file data are at most 8 MiB by default) and the trailer, since growing the buffer copies
    /// it. Memory not written to is not taken. A 16 MiB pack's buffer stays under 32 MiB, the
    /// largest block glibc learns to keep in its heap: above it, every block freed is unmapped,
    /// and a chunk-sized buffer is then mapped in anew for every chunk.
    static let packRoom = 9 << 20

    /// Bytes of the packs this pack store has stored and indexed since it was made: how much
    /// the store grew by, without a pass over the index.
    public var storedPackBytes: Int { state.withLock { $0.storedPackBytes } }

    /// - Parameters:
    ///   - metadataKey: seals and opens pack trailers (the store owner's metadata key).
    ///   - targetPackSize: a pack is finished once it reaches this many bytes (default 16 MiB).
    public init(backend: any Backend, index: ChunkIndex, metadataKey: SecureBytes, targetPackSize: Int = 16 << 20) {
        self.backend = backend
        self.index = index
        self.metadataKey = metadataKey
        self.targetPackSize = max(1, min(targetPackSize, PackFormat.maximumPackSize / 2))
        state = Mutex(State())
    }

    /// Claims a chunk for writing. Returns `true` when the caller must now ``add(_:sealed:plaintextLength:kind:)``
    /// it (or ``releaseClaim(_:failure:)`` on failure), `false` when the store already holds it or another
    /// writer is adding it — the duplicate then costs nothing more. `ownData`: the id came from
    /// this agent's content key, so only a copy it wrote itself counts
    /// (``ChunkIndex/containsOwnData(_:)``).
    ///
    /// The index is asked outside the state lock, as the claim of many ids does:
    /// other writers add their chunks meanwhile instead of waiting for the query (on two cores,
    /// a writer waiting on the lock is a core doing nothing).
    public func claim(_ id: ChunkID, ownData: Bool = false) throws -> Bool {
        if state.withLock({ $0.pending[id] != nil }) { return false }
        if try ownData ? index.containsOwnData(id) : index.contains(id) { return false }
        return state.withLock { state in
            if state.pending[id] != nil { return false }
            state.pending[id] = .claimed
            return true
        }
    }

    /// `claim(_:ownData:)` for many ids, with one index query for all of them
    /// made outside the state lock, so writers adding chunks meanwhile do not wait for it.
    /// An id another writer stores between the query and the claim is stored twice (a harmless
    /// duplicate the index keeps one location of); an id given twice is claimed once.
    public func claim(_ ids: [ChunkID], ownData: Bool = false) throws -> [Bool] {
        let unknown = state.withLock { state in ids.indices.filter { state.pending[ids[$0]] == nil } }
        let unknownIDs = unknown.map { ids[$0] }
        let stored = try ownData ? index.containsOwnData(unknownIDs) : index.contains(unknownIDs)
        return state.withLock { state in
            var claimed = [Bool](repeating: false, count: ids.count)
            for (position, isStored) in zip(unknown, stored) where !isStored && state.pending[ids[position]] == nil {
                state.pending[ids[position]] = .claimed
                claimed[position] = true
            }
            return claimed
        }
    }

    /// Gives up a claim after sealing failed, so a later writer may try again. Writers that skipped
    /// the chunk because it was claimed learn of the failure at their next ``flush()``.
    public func releaseClaim(_ id: ChunkID, failure: any Error) {
        state.withLock { state in
            if case .claimed = state.pending[id] { state.pending[id] = nil }
            if state.failure == nil { state.failure = failure }
        }
    }

    /// Whether the chunk is stored, or on its way into the store.
    public func contains(_ id: ChunkID) throws -> Bool {
        if state.withLock({ $0.pending[id] != nil }) { return true }
        return try index.contains(id)
    }

    /// Appends a sealed chunk to the open pack of its kind. When that pack reaches the target size
    /// it is finished and stored before this returns, which bounds how much waits in memory.
    public func add(_ id: ChunkID, sealed: [UInt8], plaintextLength: Int, kind: PackKind) async throws {
        try await add(contentsOf: [(id, sealed, plaintextLength)], kind: kind)
    }

    /// Appends sealed chunks to the open pack of their kind, in order, as ``add(_:sealed:plaintextLength:kind:)``
    /// does each but under one turn at the lock. Every pack they fill is stored before this returns.
    public func add(contentsOf chunks: [(id: ChunkID, sealed: [UInt8], plaintextLength: Int)], kind: PackKind) async throws {
        let uploads: [Task<Void, any Error>] = try state.withLock { state in
            var uploads: [Task<Void, any Error>] = []
            var open = state.open.removeValue(forKey: kind)
            for (id, sealed, plaintextLength) in chunks {
                var builder = open.take()
                    ?? PackBuilder(
                        kind: kind, capacity: targetPackSize + max(sealed.count, Self.packRoom),
                        reusing: state.spareBuffers.removeValue(forKey: kind))
                let entry = builder.append(id: id, sealed: sealed, plaintextLength: plaintextLength)
                state.pending[id] = .open(kind, entry)
                if builder.size >= targetPackSize {
                    uploads.append(try startUpload(consume builder, state: &state))
                } else {
                    open = builder
                }
            }
            state.open[kind] = open
            return uploads
        }
        for upload in uploads { try await upload.value }
    }

    /// Finishes every open pack and waits until every pack begun so far is stored and indexed.
    public func flush() async throws {
        let uploads = try state.withLock { state in
            for kind in Array(state.open.keys) {
                let builder = state.open.removeValue(forKey: kind)!
                if !builder.isEmpty { _ = try startUpload(consume builder, state: &state) }
            }
            return Array(state.uploads.values)
        }
        var firstError: (any Error)?
        for upload in uploads {
            do { try await upload.value } catch { firstError = firstError ?? error }
        }
        let earlierFailure = state.withLock { state in
            // Between flushes (a commit and the next), the spare would only hold memory.
            state.spareBuffers = [:]
            defer { state.failure = nil }
            return state.failure
        }
        if let failure = firstError ?? earlierFailure { throw failure }
    }

    /// Finishes a pack and starts storing it. Runs under the state lock, so that from the moment a
    /// builder leaves `open` its chunks are readable from the upload and `flush()` waits for it.
    private func startUpload(_ builder: consuming PackBuilder, state: inout State) throws -> Task<Void, any Error> {
        let pack = try builder.finish(metadataKey: metadataKey)
        let upload = Upload(pack)
        for entry in pack.entries { state.pending[entry.id] = .uploading(upload, entry) }
        let task = Task { [self] in
            let result = await Result(catching: {
                try await backend.put(pack.name, pack.bytes)
                try index.record(packName: pack.name, kind: pack.kind, size: pack.bytes.count, entries: pack.entries)
            })
            self.state.withLock { state in
                state.uploads[pack.name] = nil
                if case .failure(let error) = result, state.failure == nil { state.failure = error }
                if case .success = result {
                    state.storedPackBytes += pack.bytes.count
                    // Kept only while no other pack is being stored, so that the spare never adds
                    // to the most memory packs take at once (one filling, one being stored).
                    if state.uploads.isEmpty && state.spareBuffers[pack.kind] == nil { state.spareBuffers[pack.kind] = pack.bytes }
                }
                for entry in pack.entries {
                    // On failure the chunks are forgotten: a later writer seals them again.
                    if case .uploading(let current, _) = state.pending[entry.id], current === upload {
                        state.pending[entry.id] = nil
                    }
                }
            }
            try result.get()
        }
        state.uploads[pack.name] = task
        return task
    }

    /// Looks up where chunks are, many in one index query, for reads about to come: a restore
    /// knows the chunks its next thousand files start with. Each location serves one read; at
    /// most ``prefetchLimit`` wait, and a read that finds its pack changed looks again.
    public func prefetchLocations(of ids: [ChunkID]) throws {
        let found = try index.locations(of: ids)
        prefetched.withLock { prefetched in
            if prefetched.count + ids.count > Self.prefetchLimit { prefetched.removeAll(keepingCapacity: true) }
            for (id, location) in zip(ids, found) where location != nil { prefetched[id] = location }
        }
    }

    /// Prefetched locations kept at most.
    public static let prefetchLimit = 16_384

    /// Prefetched locations no read has used yet.
    public var prefetchedLocationCount: Int { prefetched.withLock { $0.count } }

    /// The sealed bytes of a chunk, from memory while its pack is being written, else from the
    /// backend through the index (or a location prefetched for it).
    public func read(_ id: ChunkID) async throws -> [UInt8] {
        let inMemory: [UInt8]? = state.withLock { state in
            switch state.pending[id] {
            case .open(let kind, let entry):
                return state.open[kind].map { Array($0.bytes[entry.offset..<(entry.offset + entry.length)]) }
            case .uploading(let upload, let entry):
                return Array(upload.pack.bytes[entry.offset..<(entry.offset + entry.length)])
            case .claimed, nil:
                return nil
            }
        }
        if let inMemory { return inMemory }
        if let location = prefetched.withLock({ $0.removeValue(forKey: id) }), let bytes = try? await read(id, at: location) {
            return bytes
        }
        guard let location = try index.location(of: id) else {
            if let chunk = staged.withLock({ $0[id]?.chunk }) {
                return try await backend.get(chunk.objectName, range: chunk.entry.offset..<(chunk.entry.offset + chunk.entry.length))
            }
            throw PackError(.chunkNotFound, "chunk \(id) is not in the index (missing, or the index needs a rebuild)")
        }
        return try await read(id, at: location)
    }

    private func read(_ id: ChunkID, at location: ChunkLocation) async throws -> [UInt8] {
        guard location.offset >= 0, location.length >= 0, location.offset <= PackFormat.maximumPackSize,
            location.length <= PackFormat.maximumPackSize
        else {
            throw PackError(.index, "the index entry of chunk \(id) is damaged (offset \(location.offset), length \(location.length)); rebuild the index")
        }
        do {
            return try await backend.get(location.packName, range: location.offset..<(location.offset + location.length))
        } catch {
            throw PackError(.chunkNotFound, "chunk \(id) cannot be read from pack \(location.packName)", cause: error)
        }
    }

    /// Makes chunks readable from where they lie, without adding them to the store: ``read(_:)``
    /// serves them, ``contains(_:)`` and ``claim(_:)`` do not count them. Used to verify what
    /// came from elsewhere before any of it is added.
    public func stage(_ chunks: some Sequence<StagedChunk>) {
        staged.withLock { staged in
            for chunk in chunks { staged[chunk.entry.id] = (chunk, (staged[chunk.entry.id]?.holds ?? 0) + 1) }
        }
    }

    /// Releases one staging of each chunk; a chunk is forgotten when no staging holds it.
    public func unstage(_ ids: some Sequence<ChunkID>) {
        staged.withLock { staged in
            for id in ids {
                guard let entry = staged[id] else { continue }
                staged[id] = entry.holds > 1 ? (entry.chunk, entry.holds - 1) : nil
            }
        }
    }

    /// Says where copies of this store's packs are kept (the placement map of the layer above);
    /// reads that fail here then try them in turn.
    public func setReplicaFinder(_ finder: PackReplicaFinder?) {
        replicaFinder.withLock { $0 = finder }
    }

    /// The copies of a pack kept elsewhere, in the order to try them; none when no finder is set.
    public func replicas(ofPack name: String) throws -> [PackReplica] {
        guard let finder = replicaFinder.withLock({ $0 }) else { return [] }
        return try finder(name)
    }

    /// Reads a chunk from each copy of its pack kept elsewhere, in turn, until `open` accepts
    /// the bytes (it verifies them); nil when no copy gives bytes it accepts.
    public func readFromReplicas<Opened>(
        _ id: ChunkID, open: ([UInt8]) throws -> Opened
    ) async throws -> (opened: Opened, holder: String)? {
        guard let location = try index.location(of: id) else { return nil }
        let range = location.offset..<(location.offset + location.length)
        for copy in try replicas(ofPack: location.packName) {
            guard let sealed = try? await copy.backend.get(copy.objectName, range: range),
                let opened = try? open(sealed)
            else { continue }
            return (opened, copy.holder)
        }
        return nil
    }

    /// What a pack's trailer says, read with as few range requests as possible.
    public func readTrailer(ofPack name: String, size: Int) async throws -> (kind: PackKind, entries: [PackEntry]) {
        try PackFormat.decodeTrailer(
            tail: try await Self.readTail(ofPack: name, size: size, from: backend), packSize: size, packName: name,
            metadataKey: metadataKey)
    }

    /// The end of a pack holding its sealed trailer and footer: most trailers fit in the last
    /// 64 KiB, and a second request fetches longer ones.
    public static func readTail(ofPack name: String, size: Int, from backend: any Backend) async throws -> [UInt8] {
        let guess = min(size, 64 * 1024)
        var tail = try await backend.scan(name, range: (size - guess)..<size, objectSize: size)
        let needed = try PackFormat.sealedTrailerLength(tail: tail, packSize: size, packName: name) + PackFormat.footerLength
        if needed > tail.count {
            tail = try await backend.scan(name, range: (size - needed)..<size, objectSize: size)
        }
        return tail
    }

    /// What the trailer of a whole pack says, after checking that the pack is the one its name
    /// names (the name is the SHA-256 of the sealed trailer) and that the trailer authenticates.
    ///
    /// - Throws: ``PackError`` naming the pack when either fails.
    public func verifiedTrailer(ofPack name: String, bytes: [UInt8]) throws -> (kind: PackKind, entries: [PackEntry]) {
        try PackFormat.verifiedTrailer(ofPack: name, bytes: bytes, metadataKey: metadataKey)
    }

    /// What a rebuild found.
    public struct RebuildReport: Sendable, Hashable {
        public var packsIndexed = 0
        public var chunksIndexed = 0
        /// Packs whose trailer could not be read, with the reason; their chunks are not indexed.
        public var unreadablePacks: [String: String] = [:]
    }

    /// Recreates the index from the pack trailers alone: every pack's chunks are recorded again
    /// (replacing what the index said), then packs that are no longer in the backend are
    /// forgotten. An interruption leaves the index no emptier than before.
    public func rebuildIndex(progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) async throws -> RebuildReport {
        try await flush()
        let packs = try await backend.list(prefix: PackFormat.objectPrefix)
        let report = try await index(packs, replacing: true, progress: progress)
        try index.retainOnly(packs: Set(packs.map(\.name)))
        return report
    }

    /// Indexes the packs the backend holds and the index does not know: packs stored by a writer
    /// that stopped before recording them, or a whole index that is missing.
    ///
    /// - Parameter listed: the backend's packs, when the caller listed them already.
    public func indexMissingPacks(listed: [ObjectInfo]? = nil) async throws -> RebuildReport {
        let known = try index.packNames()
        let packs: [ObjectInfo]
        if let listed { packs = listed } else { packs = try await backend.list(prefix: PackFormat.objectPrefix) }
        let missing = packs.filter { !known.contains($0.name) }
        return try await index(missing, replacing: false, progress: { _, _ in })
    }

    /// How many pack trailers are read at once when indexing: a remote store answers each read
    /// after a round trip, so a fresh machine's first open waits for the slowest of a few
    /// reads rather than for all of them in turn.
    static let concurrentTrailerReads = 4

    private func index(
        _ packs: [ObjectInfo], replacing: Bool, progress: (Int, Int) -> Void
    ) async throws -> RebuildReport {
        var report = RebuildReport()
        var done = 0
        try await withThrowingTaskGroup(of: (ObjectInfo, Result<(kind: PackKind, entries: [PackEntry]), any Error>).self) { group in
            var next = packs.makeIterator()
            func startNext() {
                guard let pack = next.next() else { return }
                group.addTask { [self] in (pack, await Result { try await readTrailer(ofPack: pack.name, size: pack.size) }) }
            }
            for _ in 0..<Self.concurrentTrailerReads { startNext() }
            // The index is written here, one pack at a time, while the next trailers are read.
            while let (pack, trailer) = try await group.next() {
                startNext()
                do {
                    let trailer = try trailer.get()
                    // A retired pack (garbage collection is deleting it) is not indexed again.
                    if try index.record(
                        packName: pack.name, kind: trailer.kind, size: pack.size, entries: trailer.entries, replacing: replacing)
                    {
                        report.packsIndexed += 1
                        report.chunksIndexed += trailer.entries.count
                    }
                } catch let error as PackError where error.code == .index {
                    throw error
                } catch {
                    report.unreadablePacks[pack.name] = "\(error)"
                }
                done += 1
                progress(done, packs.count)
            }
        }
        return report
    }
}

extension Result where Failure == any Error {
    /// Captures the outcome of async work.
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// A copy of one of a store's packs kept outside it: in another agent's store, for the spread.
public struct PackReplica: Sendable {
    /// Who keeps the copy, for messages (an agent's name).
    public let holder: String
    /// Where the copy is.
    public let backend: any Backend
    /// The copy's object name in that backend.
    public let objectName: String

    public init(holder: String, backend: any Backend, objectName: String) {
        self.holder = holder
        self.backend = backend
        self.objectName = objectName
    }
}

/// The copies kept elsewhere of the pack of this name, in the order to try them.
public typealias PackReplicaFinder = @Sendable (_ packName: String) throws -> [PackReplica]
