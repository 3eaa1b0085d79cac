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

    /// Called with each batch by the task that reads it, before the batch is used.
    let prepare: (@Sendable ([Entry]) -> Void)?

    /// A cursor over the entries of `subtree`; `prepare`, when given, is called with each batch
    /// of entries by the task that reads it, ahead of their use (a restore looks up where their
    /// content lies).
    init(snapshot: Snapshot, subtree start: SnapshotPath, prepare: (@Sendable ([Entry]) -> Void)? = nil) {
        self.snapshot = snapshot
        self.prepare = prepare
        end = start.subtreeEnd
        upcoming = Self.fetch(snapshot, from: start, before: end, prepare: prepare)
    }

    private static func fetch(
        _ snapshot: Snapshot, from start: SnapshotPath, before end: SnapshotPath?, prepare: (@Sendable ([Entry]) -> Void)?
    ) -> Task<Batch, any Error> {
        Task {
            let entries = try await snapshot.entries(in: SnapshotIndex.files, from: start, before: end, limit: batchSize + 1)
            let batch = Batch(
                entries: entries.prefix(batchSize).map { ($0.key, $0.value) },
                next: entries.count > batchSize ? entries[batchSize].key : nil)
            prepare?(batch.entries)
            return batch
        }
    }

    mutating func peek() async throws -> Entry? {
        if position == batch.count {
            guard let task = upcoming else { return nil }
            let fetched = try await task.value
            batch = fetched.entries
            position = 0
            upcoming = fetched.next.map { Self.fetch(snapshot, from: $0, before: end, prepare: prepare) }
            if batch.isEmpty { return nil }
        }
        return batch[position]
    }

    mutating func advance() async throws -> Entry? {
        position += 1
        return try await peek()
    }
}
