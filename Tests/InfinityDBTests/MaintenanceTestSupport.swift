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

/// The blobs of a gallery: referenced by values (`photo`, `thumbnail`, `second`), by nothing
/// (`orphan`), and only as text (`mentioned`, whose token a raw note holds).
struct GalleryBlobs {
    let photo: BlobRef
    let thumbnail: BlobRef
    let second: BlobRef
    let orphan: BlobRef
    let mentioned: BlobRef
}

/// Commits a gallery with every kind of chunk on main: photos holding references, a long raw note
/// (a value blob), a note holding a token (text, not a reference), a list of references, and a long
/// serialized value holding a reference (an index entry stored as a blob); then tags it `v1` and
/// commits a second photo. Returns the blobs and the second commit.
func commitGallery(to database: Database) async throws -> (blobs: GalleryBlobs, head: Snapshot) {
    let chunks = database.store.chunks
    let blobs = GalleryBlobs(
        photo: try await chunks.putBlob(SecureRandom.bytes(count: 600_000)),
        thumbnail: try await chunks.putBlob(SecureRandom.bytes(count: 3000)),
        second: try await chunks.putBlob(SecureRandom.bytes(count: 90_000)),
        orphan: try await chunks.putBlob(SecureRandom.bytes(count: 100_000)),
        mentioned: try await chunks.putBlob(SecureRandom.bytes(count: 50_000)))
    let draft = try await database.draft()
    try await draft.set(Photo(name: "a", content: blobs.photo, thumbnail: blobs.thumbnail), for: "a", in: Gallery.photos)
    try await draft.set(String(repeating: "long note ", count: 300), for: "long", in: Gallery.notes)
    try await draft.set(blobs.mentioned.token, for: "token", in: Gallery.notes)
    try await draft.append([blobs.photo], to: Gallery.queue)
    try await draft.set(Album(cover: blobs.thumbnail, description: String(repeating: "d", count: 2000)), in: Gallery.album)
    try await draft.commit(message: "first")
    try await database.createTag("v1")
    try await draft.set(Photo(name: "b", content: blobs.second, thumbnail: nil), for: "b", in: Gallery.photos)
    let head = try await draft.commit(message: "second")
    try await database.store.flush()
    return (blobs, head)
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
