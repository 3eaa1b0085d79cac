import InfinityChunks
import InfinityHistory

extension Database {
    /// What forgetting by `policy` would do to `branch` (by default the branch HEAD is on):
    /// for each commit of its first-parent line, newest first, whether it is kept and why, and
    /// which other refs pin it. Changes nothing.
    public func planForget(on branch: String? = nil, policy: RetentionPolicy) async throws -> ForgetPlan {
        try await forgetter.plan(try branchName(branch), policy: policy)
    }

    /// Removes the snapshots `policy` does not keep from `branch`'s history (see ``Forget``):
    /// the kept ones above the oldest removed one are committed again on a new line, and the
    /// branch moves there by compare-and-swap. If a snapshot is committed on the branch
    /// meanwhile, the plan is made again, up to `attempts` times.
    ///
    /// Nothing is deleted yet: ``collectGarbage(_:progress:)`` frees what is no longer reachable.
    public func forget(on branch: String? = nil, policy: RetentionPolicy, attempts: Int = 8) async throws -> ForgetResult {
        let name = try branchName(branch)
        var attempt = 1
        while true {
            let plan = try await forgetter.plan(name, policy: policy)
            do {
                return try await forgetter.apply(plan)
            } catch let error as HistoryError where error.code == .conflict && attempt < attempts {
                attempt += 1
            }
        }
    }

    private var forgetter: Forget {
        Forget(commits: commits, refs: refs, agent: store.identity.id)
    }
}
