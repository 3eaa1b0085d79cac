import InfinityDB

/// Which files of a snapshot the store can no longer give back, so a damaged store can say what
/// was lost and what a restore will still bring back whole.
public struct SnapshotSalvage: Sendable {
    public let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Every file of `snapshot` whose content is damaged or missing, with the chunk or pack at
    /// fault. With `readData` each chunk is read and verified; without, a chunk counts as there
    /// when the index places it in one of `presentPacks` (the packs the backend lists).
    ///
    /// - Throws: when the snapshot's own tree cannot be read (then no file of it can be listed).
    public func lostFiles(in snapshot: Snapshot, readData: Bool, presentPacks: Set<String>) async throws -> [LostFile] {
        let chunks = database.store.chunks
        var lost: [LostFile] = []
        var cursor = EntryCursor(snapshot: snapshot, subtree: .root)
        var next = try await cursor.peek()
        while let (path, entry) = next {
            next = try await cursor.advance()
            guard entry.kind == .file, let content = entry.content else { continue }
            do {
                if readData {
                    try await chunks.getBlob(content) { _ in }
                } else {
                    for ref in try await chunks.chunks(of: content) {
                        guard let location = try chunks.packs.index.location(of: ref.id) else {
                            throw PackError(.chunkNotFound, "chunk \(ref.id) is in no pack the index knows")
                        }
                        guard presentPacks.contains(location.packName) else {
                            throw BackendError(
                                code: .notFound, objectName: location.packName,
                                message: "pack \(location.packName), which holds chunk \(ref.id), is missing")
                        }
                    }
                }
            } catch let error where Restorer.isDamage(error) {
                lost.append(LostFile(path: "\(path)", reason: "\(error)"))
            }
        }
        return lost
    }
}
