import InfinityBackends
import InfinityCrypto
import InfinityPacks
import InfinityTestSupport
import Testing

@testable import InfinityChunks

@Suite struct ChunkStoreTests {
    @Test func streamRoundTripAndDeduplication() async throws {
        let backend = MemoryBackend()
        let store = try makeChunkStore(backend: backend)
        let input = textLike(600_000) + randomBytes(600_000)
        let refs = try await store.putStream(input, kind: .data)
        #expect(refs.count > 10)
        #expect(refs.reduce(0) { $0 + $1.length } == input.count)
        var output: [UInt8] = []
        try await store.getStream(refs) { output += $0 }
        #expect(output == input, "readable before flush")
        try await store.flush()
        output = []
        try await store.getStream(refs) { output += $0 }
        #expect(output == input)

        let packsBefore = try await backend.list(prefix: "packs/")
        let again = try await store.putStream(input, kind: .data)
        try await store.flush()
        #expect(again == refs)
        #expect(try await backend.list(prefix: "packs/") == packsBefore, "a duplicate stream writes nothing")
    }

    /// Chunks put together are stored once each, readable, and those already stored are skipped.
    @Test func putAllStoresWhatIsNew() async throws {
        let backend = MemoryBackend()
        let store = try makeChunkStore(backend: backend)
        let chunks = (0..<40).map { textLike(300 + $0 * 10, seed: $0) }
        let refs = chunks.map { chunk in chunk.withUnsafeBytes { store.sealer.reference(for: $0) } }
        try await store.put(chunks[0], as: refs[0], kind: .metadata)
        try await store.flush()
        let statisticsBefore = try store.packs.index.statistics()
        try await store.putAll(Array(zip(chunks, refs)) + [(chunks[5], refs[5])], kind: .metadata)
        for (chunk, ref) in zip(chunks, refs) { #expect(try await store.get(ref) == chunk, "readable before flush") }
        try await store.flush()
        for (chunk, ref) in zip(chunks, refs) { #expect(try await store.get(ref) == chunk) }
        #expect(try store.packs.index.statistics().chunkCount == statisticsBefore.chunkCount + 39, "each new chunk once")
        await #expect(throws: ChunkError.self) {
            try await store.putAll([(chunks[1], refs[2])], kind: .metadata)
        }
    }

    /// A sealing that fails fails the put and gives its claim up: the chunk can be put again.
    @Test func putAllGivesUpTheClaimOfAFailedSealing() async throws {
        struct SealingFailed: Error {}
        let store = try makeChunkStore()
        let chunk = textLike(500, seed: 7)
        let ref = chunk.withUnsafeBytes { store.sealer.reference(for: $0) }
        await #expect(throws: SealingFailed.self) {
            let failing: @Sendable () async throws -> [UInt8] = { throw SealingFailed() }
            try await store.putAll(sealing: [(ref, failing)], kind: .metadata)
        }
        await #expect(throws: SealingFailed.self, "the flush reports the failure") { try await store.flush() }
        let sealing: @Sendable () async throws -> [UInt8] = { try store.seal(chunk, as: ref, kind: .metadata) }
        try await store.putAll(sealing: [(ref, sealing)], kind: .metadata)
        try await store.flush()
        #expect(try await store.get(ref) == chunk)
    }

    /// One failed sealing among many: every chunk not stored gives its claim up, including those
    /// whose turn had not come, so a second put stores them all (none is skipped as "in flight").
    @Test func putAllGivesUpEveryClaimItDidNotStore() async throws {
        struct SealingFailed: Error {}
        let store = try makeChunkStore()
        let chunks = (0..<300).map { textLike(400, seed: 1_000 + $0) }
        let refs = chunks.map { chunk in chunk.withUnsafeBytes { store.sealer.reference(for: $0) } }
        let sealings: [(ref: ChunkRef, sealed: @Sendable () async throws -> [UInt8])] = zip(chunks, refs).enumerated().map {
            index, pair in
            let (chunk, ref) = pair
            return (ref, { if index == 3 { throw SealingFailed() }; return try store.seal(chunk, as: ref, kind: .metadata) })
        }
        await #expect(throws: SealingFailed.self) { try await store.putAll(sealing: sealings, kind: .metadata) }
        _ = try? await store.flush()
        try await store.putAll(Array(zip(chunks, refs)), kind: .metadata)
        try await store.flush()
        for (chunk, ref) in zip(chunks, refs) { #expect(try await store.get(ref) == chunk) }
    }

    @Test func singleChunkPutAndLimit() async throws {
        let store = try makeChunkStore()
        let ref = try await store.put(Array("hello".utf8), kind: .metadata)
        #expect(try await store.get(ref) == Array("hello".utf8))
        let empty = try await store.put([], kind: .data)
        #expect(try await store.get(empty) == [])
        await #expect(throws: ChunkError.self) {
            try await store.put([UInt8](repeating: 0, count: ChunkStore.maximumChunkSize + 1), kind: .data)
        }
    }

    @Test(arguments: [0, 1, 50_000, 3_000_000])
    func blobsOfAnySize(count: Int) async throws {
        let store = try makeChunkStore()
        let input = randomBytes(count)
        var offset = 0
        let blob = try await store.putBlob { destination in
            let n = min(destination.count, input.count - offset)
            input.withUnsafeBytes { destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + n)])) }
            offset += n
            return n
        }
        #expect(blob.length == count)
        if count == 3_000_000 { #expect(blob.depth >= 2, "many chunks need lists of lists with 1 KiB metadata chunks") }
        let parsed = try BlobRef(token: blob.token)
        #expect(parsed == blob)
        var output: [UInt8] = []
        try await store.getBlob(parsed) { output += $0 }
        #expect(output == input)
    }

    @Test func damagedTokensAreRefused() throws {
        #expect(throws: ChunkError.self) { try BlobRef(token: "nonsense") }
        #expect(throws: ChunkError.self) { try BlobRef(token: "blob1:AAAA") }
    }

    @Test func concurrentReaders() async throws {
        let store = try makeChunkStore()
        let input = textLike(400_000)
        let refs = try await store.putStream(input, kind: .data)
        try await store.flush()
        try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<16 {
                group.addTask {
                    var output: [UInt8] = []
                    try await store.getStream(refs) { output += $0 }
                    return output
                }
            }
            for try await output in group { #expect(output == input) }
        }
    }
}

@Suite struct CompressionOutlookTests {
    /// Chunks that do not shrink turn compression off, but for a probe every so often; a probe
    /// that shrinks turns it back on. Every chunk opens whichever way it was sealed.
    @Test func sealingLearnsWhichChunksDoNotShrink() async throws {
        let store = try makeChunkStore()
        let outlook = CompressionOutlook()
        func seal(_ chunk: [UInt8]) throws -> [UInt8] {
            let ref = chunk.withUnsafeBytes { store.sealer.reference(for: $0) }
            let sealed = try store.seal(chunk, as: ref, kind: .metadata, outlook: outlook)
            #expect(try store.open(sealed, as: ref) == chunk)
            return sealed
        }
        for _ in 0..<CompressionOutlook.missesBeforeSkipping {
            #expect(!ChunkSealer.isCompressed(try seal(randomBytes(1000))))
        }
        #expect(outlook.skippedCount == 0, "every chunk was tried until the misses added up")
        for _ in 0..<32 { _ = try seal(randomBytes(1000)) }
        #expect(outlook.skippedCount == 30, "32 chunks while skipping: all but two probes skipped")
        #expect(try seal(randomBytes(40)).count == 40 + ChunkSealer.overhead, "a short chunk is neither tried nor counted")
        #expect(outlook.skippedCount == 30)

        // Text shrinks: once a probe finds that out, every chunk is compressed again.
        var compressed = 0
        for seed in 0..<CompressionOutlook.probeInterval where ChunkSealer.isCompressed(try seal(textLike(1000, seed: seed))) {
            compressed += 1
        }
        #expect(compressed == 1, "only the probe among the text chunks was compressed")
        for seed in 200..<220 { #expect(ChunkSealer.isCompressed(try seal(textLike(1000, seed: seed)))) }
    }
}
