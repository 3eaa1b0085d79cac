import Foundation

/// How a sweep runs (see ``PackStore/sweep(live:horizon:options:progress:)``).
public struct SweepOptions: Sendable {
    /// How long a condemned pack is kept before it is deleted: every writer that found one of its
    /// chunks in the index before it was condemned must have committed by then. Zero deletes
    /// what this run condemns at once: only for a store nothing else is writing to.
    public var grace: Duration = .seconds(3600)
    /// A pack is repacked when more than this share of it is unused (0…1).
    public var repackThreshold = 0.10
    /// Report what would be done, and change nothing.
    public var dryRun = false
    /// The time recorded with each condemnation; tests pass their own.
    public var clock: @Sendable () -> Date = { Date() }
    /// Called after each step that changes the store; tests throw from it to stop a sweep there,
    /// as a crash would.
    var interruption: @Sendable (SweepStep) throws -> Void = { _ in }

    public init(grace: Duration = .seconds(3600), repackThreshold: Double = 0.10, dryRun: Bool = false) {
        self.grace = grace
        self.repackThreshold = repackThreshold
        self.dryRun = dryRun
    }
}

/// The points of a sweep after which the store is in a new state.
enum SweepStep: Sendable, Hashable {
    /// The mark is in the index: chunks condemned and revived.
    case marked
    /// A pack of copied chunks is stored, not yet indexed.
    case copiesStored(String)
    /// The index points the copied chunks at their new pack.
    case copiesIndexed(String)
    /// A pack is retired in the index, and still in the backend.
    case retired(String)
    /// A retired pack is deleted from the backend.
    case deleted(String)
}

/// Where a sweep is, for progress displays.
public struct SweepProgress: Sendable, Hashable {
    public enum Phase: String, Sendable {
        /// Deleting packs whose grace period is over; counted in packs.
        case deleting
        /// Copying the used chunks of partly used packs; counted in bytes.
        case repacking
    }

    public var phase: Phase
    public var done: Int
    public var total: Int
}

/// What a sweep did, or with ``dryRun``, would do.
public struct SweepReport: Sendable, Hashable, Codable {
    public var dryRun = false
    /// Chunks the mark found reachable.
    public var liveChunks = 0
    /// Reachable chunks the index does not know: damage that `check` reports in full.
    public var missingChunks = 0
    /// Chunks found unreachable by this run, and their sealed bytes. They stay readable, but
    /// writers no longer deduplicate against them.
    public var condemnedChunks = 0
    public var condemnedBytes = 0
    /// Condemned chunks found reachable again (a writer committed a reference to one).
    public var revivedChunks = 0
    /// Partly used packs whose used chunks were copied into new packs.
    public var repackedPacks = 0
    public var copiedChunks = 0
    public var copiedBytes = 0
    /// New packs written by the repack.
    public var writtenPacks = 0
    /// Packs deleted from the backend, the chunks the index forgot with them and the bytes freed.
    public var deletedPacks = 0
    public var deletedChunks = 0
    public var deletedBytes = 0
    /// Condemned packs still in their grace period, left for a later run.
    public var waitingPacks = 0
    public var waitingBytes = 0
    /// Packs that could not be repacked or deleted, with the reason; a later run tries again.
    public var failures: [String: String] = [:]

    public init() {}
}

extension PackStore {
    /// Starts a garbage collection run: makes this store's pending packs durable, indexes packs
    /// the index does not know (an interrupted writer's or repack's), and returns the horizon
    /// to take *before* computing the set of reachable chunks.
    public func beginSweep(at time: Date = Date()) async throws -> SweepHorizon {
        try await flush()
        _ = try await indexMissingPacks()
        return try index.sweepHorizon(at: time)
    }

    /// Frees what is not in `live`, safely with respect to concurrent writers and crashes.
    ///
    /// 1. Packs a previous run retired but did not delete are deleted.
    /// 2. Mark: chunks in `live` that were condemned are revived; chunks not in `live` (in packs
    ///    indexed before `horizon`) are *condemned* — still readable, but hidden from
    ///    deduplication, so a writer stores a fresh copy rather than reference them; packs that
    ///    serve no visible chunk are condemned, with the time.
    /// 3. Packs condemned at least ``SweepOptions/grace`` before the horizon are retired in the
    ///    index (their rows go, a tombstone stays), then deleted from the backend.
    /// 4. Packs more than ``SweepOptions/repackThreshold`` unused have their visible chunks
    ///    copied, sealed as they are, into new packs: each new pack is stored, then indexed (its
    ///    chunks now point there), and only then is the old pack condemned. It is deleted by a
    ///    later run, after the grace period, like any condemned pack.
    ///
    /// A writer that found a chunk in the index just before it was condemned commits within the
    /// grace period; its commit is then reachable at the next run's mark, which revives the
    /// chunk before any pack holding it can be deleted. A crash at any point leaves every
    /// indexed chunk readable: stored packs are indexed before anything points at them, and a
    /// pack leaves the index before it leaves the backend.
    ///
    /// - Parameters:
    ///   - live: every chunk reachable from the store's roots, computed after `horizon` was taken
    ///     with ``beginSweep(at:)``.
    public func sweep(
        live: some Collection<ChunkID>, horizon: SweepHorizon, options: SweepOptions = SweepOptions(),
        progress: (SweepProgress) -> Void = { _ in }
    ) async throws -> SweepReport {
        guard (0...1).contains(options.repackThreshold) else {
            throw PackError(.invalidArgument, "the repack threshold must lie between 0 and 1, not \(options.repackThreshold)")
        }
        guard options.grace >= .zero else {
            throw PackError(.invalidArgument, "the grace period must not be negative, not \(options.grace)")
        }
        try await flush()
        var report = SweepReport()
        report.dryRun = options.dryRun
        report.liveChunks = live.count
        let graceMilliseconds = Self.milliseconds(options.grace)
        // With no grace period, what this run condemns is deleted by this run.
        let cutoff = graceMilliseconds == 0 ? Int64.max : horizon.milliseconds - graceMilliseconds

        try await deleteRetiredLeftovers(report: &report, dryRun: options.dryRun)
        let now = Self.milliseconds(since1970: options.clock())
        let (outcome, plan) = try index.mark(live: live, horizon: horizon, now: now, dryRun: options.dryRun) { db in
            (
                repack: try ChunkIndex.servingPacks(upTo: horizon, db).filter { $0.unusedFraction > options.repackThreshold },
                condemned: try ChunkIndex.condemnedPacks(db)
            )
        }
        report.missingChunks = outcome.missingCount
        report.condemnedChunks = outcome.condemnedChunks
        report.condemnedBytes = outcome.condemnedBytes
        report.revivedChunks = outcome.revivedChunks
        try options.interruption(.marked)

        if options.dryRun {
            for pack in plan.condemned {
                if pack.since <= cutoff { report.countDeleted(size: pack.size) } else { report.countWaiting(size: pack.size) }
            }
            for pack in plan.repack {
                report.repackedPacks += 1
                report.copiedChunks += pack.visibleCount
                report.copiedBytes += pack.visibleBytes
                if cutoff == .max { report.countDeleted(size: pack.size) } else { report.countWaiting(size: pack.size) }
            }
            return report
        }

        try await deleteCondemned(condemnedNoLaterThan: cutoff, options: options, report: &report, progress: progress)
        try await repack(plan.repack, now: now, options: options, report: &report, progress: progress)
        if cutoff == .max {
            try await deleteCondemned(condemnedNoLaterThan: cutoff, options: options, report: &report, progress: progress)
        }
        for pack in try index.condemnedPacks() { report.countWaiting(size: pack.size) }
        return report
    }

    /// Deletes packs that a stopped run retired but did not delete.
    private func deleteRetiredLeftovers(report: inout SweepReport, dryRun: Bool) async throws {
        let retired = try index.retiredPackNames()
        guard !retired.isEmpty else { return }
        let leftovers = try await backend.list(prefix: PackFormat.objectPrefix).filter { retired.contains($0.name) }
        if !dryRun {
            do {
                try await backend.delete(leftovers.map(\.name))
            } catch {
                for object in leftovers { report.failures[object.name] = "cannot delete retired pack: \(error)" }
                return
            }
        }
        for object in leftovers { report.countDeleted(size: object.size) }
    }

    private func deleteCondemned(
        condemnedNoLaterThan cutoff: Int64, options: SweepOptions, report: inout SweepReport,
        progress: (SweepProgress) -> Void
    ) async throws {
        let due = try index.condemnedPacks().filter { $0.since <= cutoff }
        // Retired in the index first, then deleted in batches (one request per 1,000 on S3): a
        // run stopped in between leaves retired packs that the next run deletes.
        let batchSize = 1000
        var start = 0
        while start < due.count {
            let batch = due[start..<min(start + batchSize, due.count)]
            start = batch.endIndex
            progress(SweepProgress(phase: .deleting, done: batch.startIndex, total: due.count))
            var retiredPacks: [RetiredPack] = []
            for pack in batch {
                guard let retired = try index.retire(packRow: pack.row, condemnedNoLaterThan: cutoff) else { continue }
                try options.interruption(.retired(retired.name))
                retiredPacks.append(retired)
            }
            do {
                try await backend.delete(retiredPacks.map(\.name))
            } catch {
                // Retired already: the next run deletes them.
                for retired in retiredPacks { report.failures[retired.name] = "cannot delete condemned pack: \(error)" }
                continue
            }
            for retired in retiredPacks {
                try options.interruption(.deleted(retired.name))
                report.countDeleted(size: retired.size)
                report.deletedChunks += retired.chunkCount
            }
        }
        if !due.isEmpty { progress(SweepProgress(phase: .deleting, done: due.count, total: due.count)) }
    }

    /// Copies the visible chunks of `packs` into new packs of their kind, sealed as they are.
    private func repack(
        _ packs: [SweepPack], now: Int64, options: SweepOptions, report: inout SweepReport,
        progress: (SweepProgress) -> Void
    ) async throws {
        let total = packs.reduce(0) { $0 + $1.visibleBytes }
        var copying: [PackKind: PackCopy] = [:]
        var copied = 0
        packs: for pack in packs {
            for span in Self.readSpans(try index.visibleEntries(ofPackRow: pack.row)) {
                let bytes: [UInt8]
                do {
                    bytes = try await backend.get(pack.name, range: span.range)
                } catch {
                    // What was copied already is indexed in its new pack; the rest stays here.
                    report.failures[pack.name] = "cannot repack: \(error)"
                    continue packs
                }
                for entry in span.entries {
                    let start = entry.offset - span.range.lowerBound
                    var copy = copying.removeValue(forKey: pack.kind) ?? PackCopy(kind: pack.kind, capacity: targetPackSize)
                    copy.append(entry, sealed: bytes[start..<(start + entry.length)], from: pack.row)
                    copied += entry.length
                    if copy.builder.size >= targetPackSize {
                        try await store(copy, now: now, options: options, report: &report)
                    } else {
                        copying[pack.kind] = copy
                    }
                }
                progress(SweepProgress(phase: .repacking, done: copied, total: total))
            }
            report.repackedPacks += 1
        }
        for copy in copying.values { try await store(copy, now: now, options: options, report: &report) }
    }

    /// Stores a pack of copies, then points the index at it (which condemns the source packs it
    /// empties).
    private func store(_ copy: PackCopy, now: Int64, options: SweepOptions, report: inout SweepReport) async throws {
        let sources = copy.sources
        let pack = try copy.builder.finish(metadataKey: metadataKey)
        try await backend.put(pack.name, pack.bytes)
        try options.interruption(.copiesStored(pack.name))
        try index.recordCopies(
            packName: pack.name, kind: pack.kind, size: pack.bytes.count, entries: pack.entries, sources: sources, now: now)
        try options.interruption(.copiesIndexed(pack.name))
        report.writtenPacks += 1
        report.copiedChunks += pack.entries.count
        report.copiedBytes += pack.entries.reduce(0) { $0 + $1.length }
    }

    /// Groups a pack's entries into ranges worth one read each: neighbours closer than 64 KiB,
    /// up to 4 MiB a read.
    static func readSpans(_ entries: [PackEntry]) -> [(range: Range<Int>, entries: [PackEntry])] {
        var spans: [(range: Range<Int>, entries: [PackEntry])] = []
        for entry in entries.sorted(by: { $0.offset < $1.offset }) {
            let end = entry.offset + entry.length
            if let last = spans.last, entry.offset - last.range.upperBound <= 64 << 10,
                end - last.range.lowerBound <= 4 << 20, entry.offset >= last.range.upperBound
            {
                spans[spans.count - 1] = (last.range.lowerBound..<end, last.entries + [entry])
            } else {
                spans.append((entry.offset..<end, [entry]))
            }
        }
        return spans
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    static func milliseconds(since1970 date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}

/// A pack of copied chunks being filled, and where each came from.
private struct PackCopy {
    var builder: PackBuilder
    var sources: [ChunkID: Int64] = [:]

    init(kind: PackKind, capacity: Int) {
        builder = PackBuilder(kind: kind, capacity: capacity + 64 * 1024)
    }

    mutating func append(_ entry: PackEntry, sealed: ArraySlice<UInt8>, from source: Int64) {
        _ = builder.append(id: entry.id, sealed: Array(sealed), plaintextLength: entry.plaintextLength)
        sources[entry.id] = source
    }
}

extension SweepReport {
    mutating func countDeleted(size: Int) {
        deletedPacks += 1
        deletedBytes += size
    }

    mutating func countWaiting(size: Int) {
        waitingPacks += 1
        waitingBytes += size
    }
}
