import Foundation
import InfinityCompression
import InfinityCrypto
import InfinityPacks

/// Chunks in, ``ChunkRef``s out: cuts streams at content-defined boundaries, seals each new chunk
/// and hands it to the ``PackStore``; reads verify every chunk.
///
/// Work on a stream runs on all cores with a bounded number of chunks in flight, so memory stays
/// bounded whatever the input size. Safe to use from many tasks at once. What was put is durable
/// once ``flush()`` returns.
public final class ChunkStore: Sendable {
    public let packs: PackStore
    public let sealer: ChunkSealer
    public let dataChunker: Chunker
    public let metadataChunker: Chunker
    /// Chunks sealed or opened at once.
    public let concurrency: Int
    /// The largest single chunk ``put(_:kind:)`` accepts.
    public static let maximumChunkSize = ChunkSealer.maximumChunkLength

    private let compressors: ResourcePool<ZstdCompressor>
    private let metadataCompressors: ResourcePool<ZstdCompressor>
    private let decompressors: ResourcePool<ZstdDecompressor>

    public init(
        packs: PackStore, sealer: ChunkSealer, dataChunker: Chunker, metadataChunker: Chunker,
        concurrency: Int = ChunkStore.defaultConcurrency
    ) {
        self.packs = packs
        self.sealer = sealer
        self.dataChunker = dataChunker
        self.metadataChunker = metadataChunker
        self.concurrency = max(1, concurrency)
        let (level, tables) = (sealer.compressionLevel, sealer.dataMatchTables)
        compressors = ResourcePool { try ZstdCompressor(level: level, matchTables: tables) }
        let (metadataLevel, allLiterals) = (sealer.metadataCompressionLevel, sealer.metadataCompressesAllLiterals)
        metadataCompressors = ResourcePool { try ZstdCompressor(level: metadataLevel, alwaysCompressesLiterals: allLiterals) }
        decompressors = ResourcePool { try ZstdDecompressor() }
    }

    /// One worker per core.
    public static var defaultConcurrency: Int { ProcessInfo.processInfo.activeProcessorCount }

    private func chunker(for kind: PackKind) -> Chunker {
        kind == .data ? dataChunker : metadataChunker
    }

    /// Stores `bytes` as one chunk (at most ``maximumChunkSize`` bytes).
    public func put(_ bytes: [UInt8], kind: PackKind) async throws -> ChunkRef {
        guard bytes.count <= Self.maximumChunkSize else {
            throw ChunkError(.input, "a single chunk holds at most \(Self.maximumChunkSize) bytes, not \(bytes.count); put it as a stream")
        }
        return try await store(bytes, kind: kind)
    }

    /// Seals and adds one chunk unless the store already holds it.
    private func store(_ chunk: [UInt8], kind: PackKind) async throws -> ChunkRef {
        let ref = chunk.withUnsafeBytes { sealer.reference(for: $0) }
        try await put(chunk, as: ref, kind: kind)
        return ref
    }

    /// Stores a chunk whose reference the caller already took with ``sealer``'s
    /// ``ChunkSealer/reference(for:)`` (tree writers need a node's reference before its parent is
    /// written, and should not pay the keyed hash twice). Nothing is written if the store holds it.
    public func put(_ chunk: [UInt8], as ref: ChunkRef, kind: PackKind) async throws {
        try Self.checkLength(of: chunk, against: ref)
        guard try packs.claim(ref.id, ownData: true) else { return }
        try await sealAndAdd(chunk, as: ref, kind: kind)
    }

    /// Stores chunks whose references the caller already took, as ``put(_:as:kind:)`` does each,
    /// sealing ``concurrency`` × 2 at a time. One index query for all of them finds those the
    /// store holds (a tree's new nodes ask for thousands at a flush).
    public func putAll(_ chunks: [(bytes: [UInt8], ref: ChunkRef)], kind: PackKind) async throws {
        for (chunk, ref) in chunks { try Self.checkLength(of: chunk, against: ref) }
        try await putAll(sealing: chunks.map { chunk in (chunk.ref, { try self.seal(chunk.bytes, as: chunk.ref, kind: kind) }) }, kind: kind)
    }

    /// ``putAll(_:kind:)`` for chunks whose sealed form comes from `sealed` (a tree writer seals
    /// its nodes in batches as it makes them, beside its work on the next ones): only those the
    /// store does not hold are awaited and added to packs.
    public func putAll(sealing chunks: [(ref: ChunkRef, sealed: @Sendable () async throws -> [UInt8])], kind: PackKind) async throws {
        let claimed = try packs.claim(chunks.map(\.ref.id), ownData: true)
        let wanted = zip(chunks, claimed).filter(\.1).map(\.0)
        // Runs of chunks, each sealed by one task and added to packs under one turn at the pack
        // store's lock: a task per chunk costs more than sealing a small one. Enough runs stay in
        // flight to keep every core busy and to go on filling a pack while a full one is written.
        let window = concurrency * 2
        let runLength = max(1, min(64, wanted.count / (window * 4)))
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var inFlight = 0
                for start in stride(from: 0, to: wanted.count, by: runLength) {
                    if inFlight == window {
                        try await group.next()
                        inFlight -= 1
                    }
                    let run = wanted[start..<min(start + runLength, wanted.count)]
                    group.addTask {
                        var sealedRun: [(id: ChunkID, sealed: [UInt8], plaintextLength: Int)] = []
                        sealedRun.reserveCapacity(run.count)
                        for (ref, sealed) in run { sealedRun.append((ref.id, try await sealed(), ref.length)) }
                        try await self.packs.add(contentsOf: sealedRun, kind: kind)
                    }
                    inFlight += 1
                }
                try await group.waitForAll()
            }
        } catch {
            // Claims of chunks not added are given up (those added are no longer claims), so a
            // later writer stores them.
            for (ref, _) in wanted { packs.releaseClaim(ref.id, failure: error) }
            throw error
        }
    }

    /// A chunk handed in with its reference must have the length the reference says.
    private static func checkLength(of chunk: [UInt8], against ref: ChunkRef) throws {
        guard chunk.count == ref.length, chunk.count <= maximumChunkSize else {
            throw ChunkError(.input, "chunk \(ref.id.shortDescription) is \(chunk.count) bytes, its reference says \(ref.length)")
        }
    }

    /// A chunk's sealed form, compressed when that shrinks it, as a put stores it.
    ///
    /// - Parameter outlook: when given, compression is only tried when it says so, and it learns
    ///   whether the chunk shrank.
    public func seal(_ chunk: [UInt8], as ref: ChunkRef, kind: PackKind, outlook: CompressionOutlook? = nil) throws -> [UInt8] {
        let tried = chunk.count > ChunkSealer.minimumCompressedLength
        if tried, let outlook, !outlook.shouldCompress() {
            return try chunk.withUnsafeBytes { try sealer.seal($0, as: ref, compressor: nil) }
        }
        let sealed = try (kind == .metadata ? metadataCompressors : compressors).withResource { compressor in
            try chunk.withUnsafeBytes { try sealer.seal($0, as: ref, compressor: compressor) }
        }
        if tried { outlook?.record(shrank: ChunkSealer.isCompressed(sealed)) }
        return sealed
    }

    /// Seals a claimed chunk and adds it to its pack; gives the claim up if that fails.
    private func sealAndAdd(_ chunk: [UInt8], as ref: ChunkRef, kind: PackKind) async throws {
        do {
            try await packs.add(ref.id, sealed: try seal(chunk, as: ref, kind: kind), plaintextLength: ref.length, kind: kind)
        } catch {
            packs.releaseClaim(ref.id, failure: error)
            throw error
        }
    }

    /// Cuts a stream into content-defined chunks and stores each new one, in parallel.
    ///
    /// - Parameters:
    ///   - read: fills the buffer it is given and returns how many bytes it wrote; 0 ends the stream.
    ///   - progress: called with the number of input bytes consumed so far.
    ///   - sizeHint: the stream's expected length, if known: a short stream (a small file) then
    ///     gets a buffer of its size instead of one of two maximum chunks. A stream longer than
    ///     its hint is still read whole.
    /// - Returns: the chunks of the stream, in order.
    public func putStream(
        kind: PackKind,
        sizeHint: Int? = nil,
        read: (UnsafeMutableRawBufferPointer) throws -> Int,
        progress: (Int) -> Void = { _ in }
    ) async throws -> [ChunkRef] {
        let chunker = chunker(for: kind)
        let maximum = chunker.parameters.maximumSize
        // One maximum chunk and 1 MiB more: the buffer is refilled only when the chunker finds no
        // cut in what it holds, which is rarely more than an average chunk, so sliding it to the
        // front moves little.
        let fullSize = maximum + (1 << 20)
        // One byte past the hint, so the read that finds the end needs no second buffer.
        var buffer = [UInt8](repeating: 0, count: min(fullSize, sizeHint.map { max($0, 0) + 1 } ?? fullSize))
        var start = 0
        var end = 0
        var atEnd = false
        var consumed = 0
        var refs: [ChunkRef?] = []
        let window = concurrency * 2

        return try await withThrowingTaskGroup(of: (Int, ChunkRef).self) { group in
            var inFlight = 0
            while true {
                let cut: Int? =
                    start < end
                    ? buffer.withUnsafeBytes { raw in
                        chunker.nextBoundary(in: UnsafeRawBufferPointer(rebasing: raw[start..<end]), isFinal: atEnd)
                    } : nil
                guard let length = cut else {
                    // At the end, everything was cut (a final call always cuts what is left).
                    if atEnd { break }
                    // No cut in what is buffered: slide it to the front and read more.
                    if start > 0 {
                        buffer.withUnsafeMutableBytes { raw in
                            raw.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: end - start)
                        }
                        end -= start
                        start = 0
                    }
                    if end == buffer.count && buffer.count < fullSize {
                        buffer.append(contentsOf: repeatElement(0, count: fullSize - buffer.count))
                    }
                    while !atEnd && end < buffer.count {
                        let count = try buffer.withUnsafeMutableBytes { raw in
                            try read(UnsafeMutableRawBufferPointer(rebasing: raw[end...]))
                        }
                        if count == 0 { atEnd = true } else { end += count }
                    }
                    continue
                }
                let chunk = Array(buffer[start..<(start + length)])
                start += length
                consumed += length
                let position = refs.count
                refs.append(nil)
                if inFlight == window {
                    let (done, ref) = try await group.next()!
                    refs[done] = ref
                    inFlight -= 1
                }
                group.addTask { (position, try await self.store(chunk, kind: kind)) }
                inFlight += 1
                progress(consumed)
            }
            for try await (done, ref) in group { refs[done] = ref }
            return refs.map { $0! }
        }
    }

    /// Stores a whole byte array as a stream of content-defined chunks.
    public func putStream(_ bytes: [UInt8], kind: PackKind) async throws -> [ChunkRef] {
        var reader = ArrayReader(bytes)
        return try await putStream(kind: kind, sizeHint: bytes.count) { reader.read(into: $0) }
    }

    /// Reads and verifies one chunk. When the store's own pack is missing or damaged, the copies
    /// of that pack kept by other agents are tried in turn (see ``PackStore/setReplicaFinder(_:)``).
    public func get(_ ref: ChunkRef) async throws -> [UInt8] {
        do {
            return try open(try await packs.read(ref.id), as: ref)
        } catch {
            if let copy = try? await packs.readFromReplicas(ref.id, open: { try open($0, as: ref) }) { return copy.opened }
            throw error
        }
    }

    /// Looks up where the first chunks of these blobs lie, in one index query, ahead of reading
    /// them (see ``PackStore/prefetchLocations(of:)``).
    public func prefetchLocations(of blobs: some Sequence<BlobRef>) throws {
        try packs.prefetchLocations(of: blobs.map(\.root.id))
    }

    /// Opens and verifies sealed bytes read by other means (a whole pack, say).
    ///
    /// - Throws: ``ChunkError/Code/integrity`` naming the chunk when they are not its sealed form.
    public func open(_ sealed: [UInt8], as ref: ChunkRef) throws -> [UInt8] {
        try decompressors.withResource { try ChunkSealer.open(sealed, as: ref, decompressor: $0) }
    }

    /// Reads chunks in parallel and hands their plaintext to `write` in order, with a bounded
    /// number of chunks in memory.
    public func getStream(_ refs: [ChunkRef], write: ([UInt8]) throws -> Void) async throws {
        let window = concurrency * 2
        try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            var next = 0
            var written = 0
            var ready: [Int: [UInt8]] = [:]
            while written < refs.count {
                while next < refs.count && next - written < window {
                    let position = next
                    let ref = refs[position]
                    group.addTask { (position, try await self.get(ref)) }
                    next += 1
                }
                let (position, bytes) = try await group.next()!
                ready[position] = bytes
                while let bytes = ready.removeValue(forKey: written) {
                    try write(bytes)
                    written += 1
                }
            }
        }
    }

    /// Makes everything put so far durable.
    public func flush() async throws {
        try await packs.flush()
    }
}

/// Serves a byte array to the `read` callbacks of ``ChunkStore/putStream(kind:sizeHint:read:progress:)``
/// and ``ChunkStore/putBlob(sizeHint:read:progress:)``, a buffer at a time.
struct ArrayReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(destination.count, bytes.count - offset)
        bytes.withUnsafeBytes { source in
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + count)]))
        }
        offset += count
        return count
    }
}
