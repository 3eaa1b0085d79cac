import Foundation
import InfinityDB
import InfinityTestSupport
import Testing

/// Small chunks and packs, so modest test data spans many chunks, chunk lists and packs.
func smallChunkOptions() throws -> StoreOptions {
    var options = fastOptions()
    options.dataChunking = try ChunkerParameters(minimumSize: 4 << 10, averageSize: 16 << 10, maximumSize: 64 << 10)
    options.metadataChunking = try ChunkerParameters(minimumSize: 256, averageSize: 1024, maximumSize: 4096)
    options.targetPackSize = 64 << 10
    return options
}

/// A database with small chunks over `backend`, its index and refs in memory.
func makeSmallChunkDatabase(backend: any Backend = MemoryBackend()) async throws -> Database {
    let store = try await Store.create(
        backend: backend, indexPath: ":memory:", location: "memory", agentName: "tester", passphrase: passphrase,
        options: try smallChunkOptions())
    return try store.database()
}

/// A file as a backup keeps it: a name and blobs of content.
struct Photo: Codable, Sendable, Hashable {
    var name: String
    var content: BlobRef
    var thumbnail: BlobRef?
}

/// A serialized value long enough to be stored as a blob of its own, holding a reference.
struct Album: Codable, Sendable, Hashable {
    var cover: BlobRef
    var description: String
}

enum Gallery {
    static let photos = VersionedMap<String, Photo>("photos")
    static let notes = VersionedMap<String, String>("notes")
    static let queue = List<BlobRef>("queue")
    static let album = Serialized<Album>("album")
}

/// Every chunk id the index holds.
func indexedChunkIDs(_ store: Store) throws -> Set<ChunkID> {
    var ids = Set<ChunkID>()
    for pack in try store.chunks.packs.index.packs() {
        for entry in try store.chunks.packs.index.entries(inPack: pack.name) { ids.insert(entry.id) }
    }
    return ids
}

/// The ids of every chunk of a blob.
func chunkIDs(of blob: BlobRef, in store: Store) async throws -> Set<ChunkID> {
    var ids = Set<ChunkID>()
    try await store.chunks.forEachChunk(of: blob) { ref, _ in
        ids.insert(ref.id)
        return true
    }
    return ids
}
