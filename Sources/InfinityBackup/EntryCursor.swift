import InfinityDB

/// A snapshot's entries from one path through its subtree, in key order, read a batch at a time;
/// the next batch is read and decoded by a task of its own while this one is used, so a walk
/// beside it runs on one core and the decoding on another.
struct EntryCursor {
    typealias Entry = (path: SnapshotPath, entry: FileEntry)
    private struct Batch: Sendable {
        var entries: [Entry]
        var next: SnapshotPath?
    }

    let snapshot: Snapshot
    let end: SnapshotPath?
    private var batch: [Entry] = []
    private var position = 0
    private var upcoming: Task<Batch, any Error>?
    static let batchSize = 1024

    init(snapshot: Snapshot, subtree start: SnapshotPath) {
        self.snapshot = snapshot
        end = start.subtreeEnd
        upcoming = Self.fetch(snapshot, from: start, before: end)
    }

    private static func fetch(_ snapshot: Snapshot, from start: SnapshotPath, before end: SnapshotPath?) -> Task<Batch, any Error> {
        Task {
            let entries = try await snapshot.entries(in: SnapshotIndex.files, from: start, before: end, limit: batchSize + 1)
            return Batch(
                entries: entries.prefix(batchSize).map { ($0.key, $0.value) },
                next: entries.count > batchSize ? entries[batchSize].key : nil)
        }
    }

    mutating func peek() async throws -> Entry? {
        if position == batch.count {
            guard let task = upcoming else { return nil }
            let fetched = try await task.value
            batch = fetched.entries
            position = 0
            upcoming = fetched.next.map { Self.fetch(snapshot, from: $0, before: end) }
            if batch.isEmpty { return nil }
        }
        return batch[position]
    }

    mutating func advance() async throws -> Entry? {
        position += 1
        return try await peek()
    }
}
