import ArgumentParser
import Foundation
import InfinityDB

struct ForgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Remove snapshots from a branch's history by a retention policy.",
        discussion: """
            Looks at the commits of BRANCH's first-parent line (default: the current branch) by their time and keeps, for each rule, the newest snapshot of each of the last N hours, days, ISO weeks, months or years that have one (--keep-last N: the N newest). A snapshot is kept if any rule keeps it. At least one rule is required.

            A commit names its parent and is signed, so the kept snapshots above the oldest removed one are committed again on a new line: same contents, times and messages, new ids, signed by this agent. The branch then moves by compare-and-swap, and the reflog records the move and releases the old commits, so that 'infinity gc' can free what only they kept. Tags never move: a tag on a removed or rewritten snapshot keeps that commit, and everything below it, stored.

            Nothing is deleted until 'infinity gc' runs.

            Examples:
              infinity forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
              infinity forget nightly --keep-last 10 --keep-yearly 5
              infinity forget --keep-hourly 24 --time-zone UTC --json
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "The branch (default: the current branch).")
    var branch: String?

    @Option(name: .customLong("keep-last"), help: "Keep the N newest snapshots.")
    var last = 0
    @Option(name: .customLong("keep-hourly"), help: "Keep the newest snapshot of each of the last N hours that have one.")
    var hourly = 0
    @Option(name: .customLong("keep-daily"), help: "Keep the newest snapshot of each of the last N days that have one.")
    var daily = 0
    @Option(name: .customLong("keep-weekly"), help: "Keep the newest snapshot of each of the last N ISO weeks that have one.")
    var weekly = 0
    @Option(name: .customLong("keep-monthly"), help: "Keep the newest snapshot of each of the last N months that have one.")
    var monthly = 0
    @Option(name: .customLong("keep-yearly"), help: "Keep the newest snapshot of each of the last N years that have one.")
    var yearly = 0

    @Option(name: .long, help: "Count hours, days, weeks, months and years in this time zone, e.g. UTC or Europe/Paris (default: local).")
    var timeZone: String?

    @Flag(name: .long, help: "List what would be kept and removed, and change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    struct SnapshotJSON: Encodable {
        var id: String
        var time: String
        var message: String
        var keep: Bool
        var reasons: [String]
        var rewritten: Bool
        var pinnedBy: [String]
    }

    struct ResultJSON: Encodable {
        var branch: String
        var dryRun: Bool
        var policy: [String: Int]
        var kept: Int
        var removed: Int
        var removedButPinned: Int
        var rewritten: Int
        var head: String
        var snapshots: [SnapshotJSON]
    }

    func policy() throws -> RetentionPolicy {
        var zone = TimeZone.current
        if let timeZone {
            guard let named = TimeZone(identifier: timeZone) else {
                throw ValidationError("unknown time zone '\(timeZone)': give an identifier such as UTC or Europe/Paris")
            }
            zone = named
        }
        let policy = RetentionPolicy(last: last, hourly: hourly, daily: daily, weekly: weekly, monthly: monthly, yearly: yearly, timeZone: zone)
        do {
            try policy.validate()
        } catch let error as HistoryError {
            throw ValidationError(error.message)
        }
        return policy
    }

    func run() async throws {
        let policy = try policy()
        let database = try await options.openStore().database()
        let plan: ForgetPlan
        var result: ForgetResult?
        if dryRun {
            plan = try await database.planForget(on: branch, policy: policy)
        } else {
            let done = try await database.forget(on: branch, policy: policy)
            plan = done.plan
            result = done
        }
        if json {
            return try JSONOutput.print(ResultJSON(
                branch: plan.branch.shortName, dryRun: dryRun,
                policy: Dictionary(uniqueKeysWithValues: RetentionRule.allCases.filter { policy[$0] > 0 }.map { ($0.rawValue, policy[$0]) }),
                kept: plan.keptCount, removed: plan.removedCount, removedButPinned: plan.removedButPinnedCount,
                rewritten: result?.rewrittenCount ?? plan.entries.count(where: \.isRewritten),
                head: (result?.newHead ?? plan.head).id.description,
                snapshots: plan.entries.map { entry in
                    SnapshotJSON(
                        id: entry.commit.ref.id.description, time: DateText.iso(entry.commit.commit.time),
                        message: entry.commit.commit.message, keep: entry.isKept, reasons: entry.reasons.map(\.rawValue),
                        rewritten: entry.isRewritten, pinnedBy: entry.pinnedBy.map(\.fullName))
                }))
        }
        if !options.quiet || dryRun { printListing(plan) }
        if plan.removedButPinnedCount > 0 {
            StandardError.print(
                "note: tags or other refs keep \(plan.removedButPinnedCount) of the removed snapshots stored; delete them to free those too")
        }
        guard !options.quiet else { return }
        if let result, plan.changesHistory {
            print("Branch \(plan.branch.shortName) is now at \(result.newHead.id.shortDescription): kept \(plan.keptCount), removed \(plan.removedCount) of \(plan.entries.count) snapshots (\(result.rewrittenCount) committed again). Run 'infinity gc' to free the space.")
        } else if dryRun {
            print("Dry run: would keep \(plan.keptCount) and remove \(plan.removedCount) of \(plan.entries.count) snapshots on \(plan.branch.shortName); nothing was changed.")
        } else {
            print("Nothing to forget on \(plan.branch.shortName): the policy keeps all \(plan.entries.count) snapshots.")
        }
    }

    private func printListing(_ plan: ForgetPlan) {
        print("\(plan.branch.shortName): \(plan.policy.summary)")
        for entry in plan.entries {
            var why = entry.reasons.map(\.rawValue).joined(separator: ", ")
            if entry.isRewritten { why += why.isEmpty ? "rewritten" : "; rewritten" }
            if !entry.pinnedBy.isEmpty && (!entry.isKept || entry.isRewritten) {
                let names = entry.pinnedBy.map(\.shortName).joined(separator: ", ")
                why += "\(why.isEmpty ? "" : "; ")\(names) keeps the \(entry.isKept ? "original commit" : "commit") and its ancestors stored"
            }
            let subject = entry.commit.commit.message.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
            print("\(entry.isKept ? "keep  " : "remove")  \(entry.commit.ref.id.shortDescription)  \(DateText.format(entry.commit.commit.time))  \(subject)\(why.isEmpty ? "" : "  [\(why)]")")
        }
    }
}

struct GarbageCollect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Free the space of data no ref or live reflog entry reaches.",
        discussion: """
            Marks everything reachable from every branch, tag and agent ref, a detached HEAD and each reflog entry that is younger than --reflog-expiry and was not released by 'forget'. Then, in the chunk index, it condemns the rest: condemned data stays readable but is never deduplicated against again. Packs condemned for longer than the grace period, and still unreachable, are deleted; packs more than --repack-threshold unused have their live chunks copied into new packs first.

            The grace period protects writers running at the same time: one that found a chunk just before it was condemned has that long to commit, and its commit then revives the chunk. So space is freed by a later run, once the grace period is over; --grace 0 frees at once and is only safe when nothing else uses the store.

            Exit status 3 when a pack could not be read or deleted, or reachable chunks are missing (see 'infinity check').

            Examples:
              infinity gc --dry-run
              infinity gc
              infinity gc --grace 0 --repack-threshold 25 --json
              infinity gc --reflog-expiry 30d
            """)

    @OptionGroup var options: StoreOptionGroup

    @Option(name: .long, help: "Keep condemned packs this long before deleting them: 90s, 30m, 1h, 7d, 2w (default: 1h).")
    var grace = TimeSpan(seconds: 3600)

    @Option(name: .long, help: "Repack packs more than this percentage unused (0–100, default: 10).")
    var repackThreshold = Percentage(value: 10)

    @Option(name: .long, help: "Reflog entries older than this stop keeping their commits: 30d, 2w… or 'never' (default: 90d).")
    var reflogExpiry = TimeSpan(seconds: 90 * 86_400)

    @Flag(name: .long, help: "Report what would be freed, and change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print the report as JSON for scripts.")
    var json = false

    func validate() throws {
        if grace.seconds == nil { throw ValidationError("--grace takes a length of time such as 1h or 0, not 'never'") }
    }

    func run() async throws {
        let database = try await options.openStore().database()
        let gcOptions = GarbageCollectionOptions(
            grace: grace.duration ?? .zero, repackThreshold: repackThreshold.value / 100,
            reflogExpiry: reflogExpiry.duration, dryRun: dryRun)
        let quiet = options.quiet || json
        let marking = ProgressLine("marking", total: nil, quiet: quiet)
        var repacking: ProgressLine?
        let report = try await database.collectGarbage(gcOptions) { progress in
            switch progress {
            case .marking(let walked):
                marking.update(walked.plaintextBytes)
            case .sweeping(let sweep) where sweep.phase == .repacking:
                if repacking == nil {
                    marking.finish()
                    repacking = ProgressLine("repacking", total: sweep.total, quiet: quiet)
                }
                repacking?.update(sweep.done)
            case .sweeping:
                break
            }
        }
        marking.finish()
        repacking?.finish()
        if json { try JSONOutput.print(report) } else if !options.quiet { describe(report) }
        if !dryRun { try await database.store.keepSpread(quiet: quiet) }
        for (pack, reason) in report.sweep.failures.sorted(by: { $0.key < $1.key }) {
            StandardError.print("\(pack): \(reason)")
        }
        if report.sweep.missingChunks > 0 {
            StandardError.print(
                "warning: \(report.sweep.missingChunks) reachable chunks are not in the index (run 'infinity check', or 'infinity rebuild-index')")
        }
        if !report.sweep.failures.isEmpty || report.sweep.missingChunks > 0 { throw ExitCode(3) }
    }

    private func describe(_ report: GarbageCollectionReport) {
        let sweep = report.sweep
        let would = report.dryRun ? "would be " : ""
        print("Marked \(sweep.liveChunks) reachable chunks from \(report.roots) root commit\(report.roots == 1 ? "" : "s").")
        print("Condemned: \(sweep.condemnedChunks) chunks (\(ByteCount.format(sweep.condemnedBytes))) \(would)newly found unreachable; \(sweep.revivedChunks) \(would)revived.")
        if sweep.repackedPacks > 0 {
            print("Repacked: \(sweep.repackedPacks) partly used packs, \(sweep.copiedChunks) chunks (\(ByteCount.format(sweep.copiedBytes))) \(would)copied.")
        }
        print("Deleted: \(sweep.deletedPacks) packs (\(ByteCount.format(sweep.deletedBytes))) \(would)freed.")
        if sweep.waitingPacks > 0 {
            print("Waiting: \(sweep.waitingPacks) condemned packs (\(ByteCount.format(sweep.waitingBytes))) are in their grace period of \(grace); a later gc deletes them.")
        }
        if report.dryRun { print("Dry run: nothing was changed.") }
    }
}

/// A length of time typed as a number and a unit: `90s`, `30m`, `1h`, `7d`, `2w`; `0`; `never`.
struct TimeSpan: ExpressibleByArgument, CustomStringConvertible {
    /// Nil for `never`.
    var seconds: Int64?

    init(seconds: Int64?) {
        self.seconds = seconds
    }

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "never" {
            seconds = nil
            return
        }
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400]
        let unit = text.last.flatMap { units[$0] }
        guard let number = Int64(unit == nil ? text : String(text.dropLast())), number >= 0 else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: unit ?? 1)
        guard !overflow, unit != nil || number == 0 else { return nil }
        seconds = product
    }

    var duration: Duration? { seconds.map { .seconds($0) } }

    var description: String {
        guard let seconds else { return "never" }
        for (unit, size) in [("w", Int64(7 * 86_400)), ("d", 86_400), ("h", 3600), ("m", 60)] where seconds >= size && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// A percentage from 0 to 100, typed with or without `%`.
struct Percentage: ExpressibleByArgument, CustomStringConvertible {
    var value: Double

    init(value: Double) {
        self.value = value
    }

    init?(argument: String) {
        let text = argument.hasSuffix("%") ? String(argument.dropLast()) : argument
        guard let value = Double(text), (0...100).contains(value) else { return nil }
        self.value = value
    }

    var description: String {
        value == value.rounded() ? "\(Int(value))%" : "\(value)%"
    }
}
