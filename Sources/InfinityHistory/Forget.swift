import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks

/// One snapshot on a branch's first-parent line, and what `forget` decided for it.
public struct ForgetEntry: Sendable, Hashable {
    /// The commit as it is now.
    public let commit: LoggedCommit
    /// The rules that keep it; empty when it is removed.
    public let reasons: [RetentionRule]
    /// Other refs (tags, branches, agent refs) that point at this very commit. If the commit is
    /// removed or rewritten, they keep it — and every commit below it — stored.
    public let pinnedBy: [RefName]
    /// Whether forgetting changes the commit's id: it is kept, but a commit below it is removed,
    /// so it is written again on its new parent.
    public let isRewritten: Bool

    /// Whether the commit stays on the branch.
    public var isKept: Bool { !reasons.isEmpty }
}

/// What `forget` would do to one branch.
public struct ForgetPlan: Sendable, Hashable {
    public let branch: RefName
    public let policy: RetentionPolicy
    /// The branch's head when the plan was made; applying it fails if the branch has moved.
    public let head: ChunkRef
    /// The branch's first-parent line, newest first.
    public let entries: [ForgetEntry]

    public var keptCount: Int { entries.count { $0.isKept } }
    public var removedCount: Int { entries.count { !$0.isKept } }
    /// Whether applying the plan changes the branch.
    public var changesHistory: Bool { removedCount > 0 }

    /// Removed snapshots that stay stored all the same: those at or below a removed or
    /// rewritten commit that another ref pins (a commit keeps its ancestors).
    public var removedButPinnedCount: Int {
        guard let newestPinned = entries.firstIndex(where: { !$0.pinnedBy.isEmpty && (!$0.isKept || $0.isRewritten) }) else {
            return 0
        }
        return entries[newestPinned...].count { !$0.isKept }
    }
}

/// What `forget` did.
public struct ForgetResult: Sendable, Hashable {
    public let plan: ForgetPlan
    /// The branch's head after forgetting (the old head when nothing was removed).
    public let newHead: ChunkRef
    /// Commits written again on new parents.
    public let rewrittenCount: Int
}

/// Removes snapshots from a branch's history by a ``RetentionPolicy``.
///
/// A commit names its parents and is signed, so a snapshot cannot be cut out of the middle of a
/// history: the kept commits above the oldest removed one are written again as a new
/// first-parent line — the same index roots (no data is rewritten), times and messages, signed
/// by this agent, with new ids — and the branch moves to the new head by compare-and-swap. The
/// move *releases* the commits that left the branch: the reflog entries of the branch and of HEAD
/// that named them no longer keep them alive, so garbage collection can free what only they
/// reached. The reflog itself is never rewritten.
public struct Forget: Sendable {
    public let commits: CommitStore
    public let refs: RefStore
    /// Who moves the branch, for the reflog.
    public let agent: AgentID

    public init(commits: CommitStore, refs: RefStore, agent: AgentID) {
        self.commits = commits
        self.refs = refs
        self.agent = agent
    }

    /// Decides, for each commit on `branch`'s first-parent line, whether `policy` keeps it.
    /// Changes nothing.
    ///
    /// - Throws: ``HistoryError/Code/notFound`` when the branch does not exist or has no commits,
    ///   ``HistoryError/Code/invalidArgument`` for a policy that keeps nothing.
    public func plan(_ branch: RefName, policy: RetentionPolicy) async throws -> ForgetPlan {
        try policy.validate()
        guard branch.kind == .branch else {
            throw HistoryError(.invalidArgument, "forget works on branches, not on \(branch.kind) \(branch)")
        }
        guard let head = try refs.ref(branch) else {
            throw HistoryError(.notFound, "no branch named \(branch.shortName), or it has no commits")
        }
        let line = try await commits.firstParentLine(from: head)
        let reasons = try policy.reasons(forTimes: line.map(\.commit.time))
        var pins: [ChunkID: [RefName]] = [:]
        for (name, ref) in try refs.refs() where name != branch { pins[ref.id, default: []].append(name) }
        // Everything at or above the oldest removed commit changes id.
        let oldestRemoved = reasons.lastIndex { $0.isEmpty }
        let entries = line.indices.map { position in
            ForgetEntry(
                commit: line[position], reasons: reasons[position], pinnedBy: pins[line[position].ref.id] ?? [],
                isRewritten: !reasons[position].isEmpty && oldestRemoved.map { position < $0 } == true)
        }
        return ForgetPlan(branch: branch, policy: policy, head: head, entries: entries)
    }

    /// Applies a plan: writes the kept commits above the oldest removed one again, makes them
    /// durable, and moves the branch from the plan's head to the new one, releasing every commit
    /// that left the branch.
    ///
    /// - Throws: ``HistoryError/Code/conflict`` when the branch moved since the plan was made
    ///   (the commits written are then unreferenced, and garbage collection frees them).
    public func apply(_ plan: ForgetPlan) async throws -> ForgetResult {
        guard plan.changesHistory else { return ForgetResult(plan: plan, newHead: plan.head, rewrittenCount: 0) }
        guard plan.keptCount > 0 else {
            throw HistoryError(.invalidArgument, "forget would remove every commit of \(plan.branch.shortName); delete the branch instead")
        }
        let line = Array(plan.entries.reversed())
        guard let firstChanged = line.firstIndex(where: { !$0.isKept }) else {
            return ForgetResult(plan: plan, newHead: plan.head, rewrittenCount: 0)
        }
        let onLine = Set(line.map(\.commit.ref.id))
        // What each commit of the line becomes: itself below the oldest removed one.
        var replacement = Dictionary(uniqueKeysWithValues: line[..<firstChanged].map { ($0.commit.ref.id, $0.commit.ref) })
        var tip: ChunkRef? = firstChanged > 0 ? line[firstChanged - 1].commit.ref : nil
        var written: [LoggedCommit] = []
        for entry in line[firstChanged...] where entry.isKept {
            let old = entry.commit.commit
            // Other parents stay (a merge still names what it merged), unless they lie on this
            // line: then they follow it to their rewritten commit, or go with the removed one.
            var parents = tip.map { [$0] } ?? []
            for parent in old.parents.dropFirst() {
                let mapped = onLine.contains(parent.id) ? replacement[parent.id] : parent
                if let mapped, !parents.contains(where: { $0.id == mapped.id }) { parents.append(mapped) }
            }
            let (ref, commit) = try await commits.write(parents: parents, root: old.root, message: old.message, time: old.time)
            replacement[entry.commit.ref.id] = ref
            written.append(LoggedCommit(ref: ref, commit: commit))
            tip = ref
        }
        guard let newHead = tip else {
            throw HistoryError(.invalidArgument, "forget would remove every commit of \(plan.branch.shortName); delete the branch instead")
        }
        try await commits.chunks.flush()
        for commit in written {
            try refs.recordCommit(commit.ref, generation: commit.commit.generation, time: commit.commit.time)
        }
        let released = line[firstChanged...].map(\.commit.ref.id)
        try refs.update(
            plan.branch, to: newHead, expected: plan.head.id, agent: agent,
            message: "forget: kept \(plan.keptCount) of \(plan.entries.count) snapshots (\(plan.policy.summary))",
            releasing: released)
        return ForgetResult(plan: plan, newHead: newHead, rewrittenCount: written.count)
    }
}

extension CommitStore {
    /// The commits from `head` down its first parents to a root commit, newest first.
    public func firstParentLine(from head: ChunkRef) async throws -> [LoggedCommit] {
        var line = [LoggedCommit(ref: head, commit: try await load(head))]
        while let child = line.last, let parent = child.commit.parents.first {
            line.append(LoggedCommit(ref: parent, commit: try await loadParent(parent, of: child)))
        }
        return line
    }
}
