import Synchronization

/// Whether chunks of one sort are worth compressing, judged by how the last ones fared.
///
/// Some chunks never shrink: the internal nodes of a tree whose keys are random (hashes, UUIDs)
/// hold little but random bytes, and zstd spends as long finding that out as it would compressing
/// them. Once ``missesBeforeSkipping`` chunks in a row have not shrunk, compression is skipped,
/// except for one chunk in every ``probeInterval``, which is still tried so that a change in the
/// data is noticed: a tried chunk that shrinks turns compression back on for all.
///
/// Only the stored bytes depend on it: a chunk's id and key come from its plaintext.
public final class CompressionOutlook: Sendable {
    /// Chunks in a row that did not shrink before compression is skipped.
    public static let missesBeforeSkipping = 8
    /// While skipping, one chunk in this many is still tried.
    public static let probeInterval = 16

    private let misses = Atomic<Int>(0)
    /// Chunks asked about while skipping, probes included.
    private let considered = Atomic<Int>(0)
    private let skipped = Atomic<Int>(0)

    public init() {}

    /// Chunks not compressed on its advice so far.
    public var skippedCount: Int { skipped.load(ordering: .relaxed) }

    /// Whether the next chunk should be compressed.
    public func shouldCompress() -> Bool {
        guard misses.load(ordering: .relaxed) >= Self.missesBeforeSkipping else { return true }
        if considered.add(1, ordering: .relaxed).newValue % Self.probeInterval == 0 { return true }
        skipped.add(1, ordering: .relaxed)
        return false
    }

    /// Records how a compressed chunk fared.
    public func record(shrank: Bool) {
        if shrank {
            misses.store(0, ordering: .relaxed)
        } else {
            misses.add(1, ordering: .relaxed)
        }
    }
}
