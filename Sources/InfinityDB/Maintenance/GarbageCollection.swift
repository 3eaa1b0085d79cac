import Foundation
import InfinityChunks
import InfinityHistory
import InfinityPacks

/// How ``Database/collectGarbage(_:progress:)`` runs.
public struct GarbageCollectionOptions: Sendable {
    /// How long an unreachable pack is kept before it is deleted (default one hour). Every
    /// writer that found one of its chunks in the index before the run condemned it must have
    /// committed by then. Zero deletes at once: only for a store nothing else is writing to.
    public var grace: Duration
    /// Packs more than this share unused are repacked (default 10 %).
    public var repackThreshold: Double
    /// Reflog entries older than this no longer keep their commits (default 90 days, as git);
    /// nil keeps every entry's commit for good. Entries released by ``Database/forget(on:policy:attempts:)``
    /// stop counting at once, whatever their age.
    public var reflogExpiry: Duration?
    /// Report what would be freed, and change nothing.
    public var dryRun: Bool
    /// The time of the run; tests pass their own.
    public var clock: @Sendable () -> Date = { Date() }

    public init(
        grace: Duration = .seconds(3600), repackThreshold: Double = 0.10, reflogExpiry: Duration? = .seconds(90 * 86_400),
        dryRun: Bool = false
    ) {
        self.grace = grace
        self.repackThreshold = repackThreshold
        self.reflogExpiry = reflogExpiry
        self.dryRun = dryRun
    }
}

/// What a garbage collection run did, or with ``dryRun``, would do.
public struct GarbageCollectionReport: Sendable, Hashable, Codable {
    public var dryRun: Bool
    /// Commits the mark started from: refs, a detached HEAD and live reflog entries.
    public var roots: Int
    /// What the sweep found, freed and copied.
    public var sweep: SweepReport
    /// Deleted commits taken out of the commit catalog, so their id prefixes no longer resolve.
    public var uncatalogedCommits: Int
}

/// Where a garbage collection run is.
public enum GarbageCollectionProgress: Sendable, Hashable {
    /// Finding what is reachable from the root commits.
    case marking(ReachabilityProgress)
    /// Deleting and repacking.
    case sweeping(SweepProgress)
}

extension Database {
    /// Frees the packs that hold nothing reachable, and repacks partly used ones.
    ///
    /// The mark starts from every branch, tag and agent ref, a detached HEAD, and each reflog
    /// entry that has neither expired (``GarbageCollectionOptions/reflogExpiry``) nor been
    /// released by `forget`, and takes in everything they reach: commits and their ancestors,
    /// index and field trees, values' blobs. The sweep then condemns the rest and deletes it
    /// after the grace period (see ``PackStore/sweep(live:horizon:options:progress:)``), so a
    /// writer committing at the same time is never harmed.
    public func collectGarbage(
        _ options: GarbageCollectionOptions = GarbageCollectionOptions(),
        progress: (GarbageCollectionProgress) -> Void = { _ in }
    ) async throws -> GarbageCollectionReport {
        // Checked before anything is recorded or walked.
        if let expiry = options.reflogExpiry, expiry < .zero {
            throw DatabaseError(.invalidArgument, "the reflog expiry must not be negative, not \(expiry)")
        }
        guard (0...1).contains(options.repackThreshold), options.grace >= .zero else {
            throw DatabaseError(
                .invalidArgument,
                "the repack threshold must lie between 0 and 1 (not \(options.repackThreshold)) and the grace period must not be negative (not \(options.grace))")
        }
        let now = options.clock()
        let packs = store.chunks.packs
        // The horizon comes first: whatever is stored after it is not condemned by this run.
        let horizon = try await packs.beginSweep(at: now)
        let reflogSince = options.reflogExpiry.map { now - Self.seconds($0) }
        // Recorded before anything is deleted, so `check` knows which reflog entries may name
        // commits that are gone.
        if let reflogSince, !options.dryRun { try refs.expireReflog(before: reflogSince) }
        let roots = try refs.liveRoots(reflogSince: reflogSince)
        // The walk stops at the first chunk it cannot read: sweeping by an incomplete set would
        // delete what is still in use.
        let live = try await reachableChunks(from: roots) { progress(.marking($0)) }

        var sweepOptions = SweepOptions(grace: options.grace, repackThreshold: options.repackThreshold, dryRun: options.dryRun)
        sweepOptions.clock = options.clock
        let sweep = try await packs.sweep(live: live.ids, horizon: horizon, options: sweepOptions) { progress(.sweeping($0)) }

        var uncataloged: [ChunkID] = []
        if !options.dryRun {
            for id in try refs.catalogedCommitIDs() where !live.contains(id) {
                if try packs.index.location(of: id) == nil { uncataloged.append(id) }
            }
            try refs.removeFromCatalog(uncataloged)
        }
        return GarbageCollectionReport(dryRun: options.dryRun, roots: roots.count, sweep: sweep, uncatalogedCommits: uncataloged.count)
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
