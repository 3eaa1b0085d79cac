import InfinityBackends
import InfinityChunks
import InfinityCrypto
import InfinityPacks

/// A chunk store with fresh random keys over `backend` (memory by default), an in-memory index
/// and small chunk sizes, so tests exercise many chunks with little data.
public func makeChunkStore(
    backend: any Backend = MemoryBackend(), data: ChunkerParameters? = nil, packSize: Int = 1 << 20
) throws -> ChunkStore {
    let packs = PackStore(
        backend: backend, index: try ChunkIndex(path: ":memory:"), metadataKey: .random(count: 32),
        targetPackSize: packSize)
    return ChunkStore(
        packs: packs, sealer: ChunkSealer(contentKey: .random(count: 32)),
        dataChunker: Chunker(
            parameters: try data ?? ChunkerParameters(minimumSize: 4096, averageSize: 16384, maximumSize: 65536),
            table: .unkeyed),
        metadataChunker: Chunker(
            parameters: try ChunkerParameters(minimumSize: 256, averageSize: 1024, maximumSize: 4096), table: .unkeyed))
}

/// SplitMix64: a tiny seeded generator, so a failing random test can be replayed from its seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
