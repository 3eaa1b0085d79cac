import InfinityDB

/// A snapshot's entries from one path through its subtree, in key order, read a batch at a time.
struct EntryCursor {
    let snapshot: Snapshot
    let end: SnapshotPath?
    var batch: [(path: SnapshotPath, entry: FileEntry)] = []
    var position = 0
    var next: SnapshotPath?
    static let batchSize = 1024

    init(snapshot: Snapshot, subtree start: SnapshotPath) {
        self.snapshot = snapshot
        end = start.subtreeEnd
        next = start
    }

    mutating func peek() async throws -> (path: SnapshotPath, entry: FileEntry)? {
        if position == batch.count {
            guard let start = next else { return nil }
            let entries = try await snapshot.entries(in: SnapshotIndex.files, from: start, before: end, limit: Self.batchSize + 1)
            batch = entries.prefix(Self.batchSize).map { ($0.key, $0.value) }
            position = 0
            next = entries.count > Self.batchSize ? entries[Self.batchSize].key : nil
            if batch.isEmpty { return nil }
        }
        return batch[position]
    }

    mutating func advance() async throws -> (path: SnapshotPath, entry: FileEntry)? {
        position += 1
        return try await peek()
    }
}
