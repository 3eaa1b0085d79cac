import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks
import InfinitySQLite
import InfinityTestSupport
import Testing

@testable import InfinityHistory

/// A branch of snapshots one day apart, over a commit store and a refs database.
struct ForgetFixture {
    let history: HistoryFixture
    let refs: RefStore
    let clock = ManualClock()
    let agent: AgentID
    let forget: Forget
    static let day = 86_400

    init() async throws {
        history = try await HistoryFixture()
        refs = try RefStore(path: ":memory:", metadataKey: .random(count: 32), clock: { [clock] in clock.now })
        agent = history.keys.identity(name: "alice").id
        forget = Forget(commits: history.commits, refs: refs, agent: agent)
    }

    /// Commits `count` snapshots on `branch`, one a day, each moving the branch; oldest first.
    @discardableResult
    func snapshots(_ count: Int, on branch: RefName = .main, startDay: Int = 0) async throws -> [ChunkRef] {
        var refs: [ChunkRef] = []
        var tip = try self.refs.ref(branch)
        for day in startDay..<(startDay + count) {
            let root = try await history.chunks.put(Array("snapshot of day \(day)".utf8), kind: .metadata)
            let (ref, _) = try await history.commits.write(
                parents: tip.map { [$0] } ?? [], root: root, message: "day \(day)",
                time: Date(timeIntervalSince1970: 1_777_000_000 + Double(day * Self.day)))
            try self.refs.update(branch, to: ref, expected: tip?.id, agent: agent, message: "commit: day \(day)")
            refs.append(ref)
            tip = ref
        }
        return refs
    }

    func line(_ branch: RefName = .main) async throws -> [LoggedCommit] {
        try await history.commits.firstParentLine(from: try #require(try refs.ref(branch)))
    }
}

@Suite struct ForgetTests {
    let utc = TimeZone(identifier: "UTC")!

    @Test func keptSnapshotsAreRewrittenAsANewLineWithTheSameRoots() async throws {
        let fixture = try await ForgetFixture()
        let old = try await fixture.snapshots(6)
        let before = try await fixture.line()

        let plan = try await fixture.forget.plan(.main, policy: RetentionPolicy(last: 2, timeZone: utc))
        #expect(plan.entries.map(\.commit.ref) == old.reversed())
        #expect(plan.entries.map(\.isKept) == [true, true, false, false, false, false])
        #expect(plan.entries.map(\.isRewritten) == [true, true, false, false, false, false])
        #expect(plan.entries[0].reasons == [.last])
        #expect(try fixture.refs.ref(.main) == old[5], "planning changes nothing")

        let result = try await fixture.forget.apply(plan)
        #expect(result.rewrittenCount == 2)
        let after = try await fixture.line()
        #expect(after.count == 2)
        #expect(after[0].ref == result.newHead)
        #expect(try fixture.refs.ref(.main) == result.newHead)
        #expect(Set(after.map(\.ref.id)).isDisjoint(with: old.map(\.id)), "rewritten commits have new ids")
        for (new, original) in zip(after, before.prefix(2)) {
            #expect(new.commit.root == original.commit.root, "no data is rewritten")
            #expect(new.commit.time == original.commit.time)
            #expect(new.commit.message == original.commit.message)
            #expect(new.commit.hasValidSignature)
        }
        #expect(after[1].commit.parents.isEmpty)
        #expect(after[0].commit.generation == 2)
        #expect(try fixture.refs.commit(id: result.newHead.id) == result.newHead, "new commits are in the catalog")
        let logged = try fixture.refs.reflog(.main, limit: 1)[0]
        #expect(logged.message.contains("forget: kept 2 of 6"))
    }

    @Test func olderKeptCommitsBelowTheOldestRemovedOneKeepTheirIds() async throws {
        let fixture = try await ForgetFixture()
        let old = try await fixture.snapshots(5)
        let plan = try await fixture.forget.plan(.main, policy: RetentionPolicy(last: 1, daily: 5, timeZone: utc))
        #expect(plan.removedCount == 0, "one snapshot a day: daily 5 keeps all")
        let unchanged = try await fixture.forget.apply(plan)
        #expect(unchanged.newHead == old[4])
        #expect(try fixture.refs.reflog(.main, limit: 10).count == 5, "nothing to forget moves nothing")

        // A second snapshot on the last day: daily keeps only the newer of the two.
        let extra = try await fixture.snapshots(1, startDay: 4)
        let second = try await fixture.forget.plan(.main, policy: RetentionPolicy(daily: 5, timeZone: utc))
        #expect(second.entries.map(\.isKept) == [true, false, true, true, true, true])
        let result = try await fixture.forget.apply(second)
        #expect(result.rewrittenCount == 1)
        let line = try await fixture.line()
        #expect(line.count == 5)
        #expect(Array(line.map(\.ref).dropFirst()) == old.prefix(4).reversed(), "commits below the removed one are untouched")
        #expect(line[0].commit.parents == [old[3]])
        #expect(line[0].commit.root == (try await fixture.history.commits.load(extra[0])).root)
    }

    @Test func forgetReleasesTheOldLineFromTheReflogButTagsKeepTheirCommits() async throws {
        let fixture = try await ForgetFixture()
        let old = try await fixture.snapshots(4)
        let tag = try RefName.tag("release")
        try fixture.refs.update(tag, to: old[1], expected: nil, agent: fixture.agent, message: "tag")
        // A deleted branch's commits stay roots through its reflog.
        let scratch = try RefName.branch("scratch")
        let side = try await fixture.snapshots(1, on: scratch, startDay: 100)
        try fixture.refs.update(scratch, to: nil, expected: side[0].id, agent: fixture.agent, message: "delete")

        let rootsBefore = Set(try fixture.refs.liveRoots().map(\.id))
        #expect(rootsBefore.isSuperset(of: old.map(\.id)), "the reflog keeps every snapshot")

        let plan = try await fixture.forget.plan(.main, policy: RetentionPolicy(last: 1, timeZone: utc))
        #expect(plan.entries.map(\.pinnedBy) == [[], [], [tag], []])
        let result = try await fixture.forget.apply(plan)

        let roots = Set(try fixture.refs.liveRoots().map(\.id))
        #expect(roots.contains(result.newHead.id))
        #expect(roots.contains(old[1].id), "the tag keeps its commit")
        #expect(roots.contains(side[0].id), "a deleted branch's reflog still keeps its commits")
        #expect(!roots.contains(old[0].id))
        #expect(!roots.contains(old[2].id))
        #expect(!roots.contains(old[3].id), "HEAD's reflog entries are released with the branch's")
        #expect(try fixture.refs.reflog(.main, limit: 100).count == 5, "the reflog is not rewritten")
        // Every entry of main and HEAD naming the old line; the tag's own entry still counts.
        let released = try fixture.refs.reflog(nil, limit: 100).filter { entry in
            [RefName.main, .head].contains(entry.name) && old.map(\.id).contains(entry.new?.id)
        }
        #expect(!released.isEmpty)
        #expect(try fixture.refs.expiredReflogSequences() == Set(released.map(\.sequence)), "what check may find gone")

        // A released commit named again later is a root again through the new entries.
        let revived = try RefName.branch("revived")
        try fixture.refs.update(revived, to: old[2], expected: nil, agent: fixture.agent, message: "restore")
        try fixture.refs.update(revived, to: nil, expected: old[2].id, agent: fixture.agent, message: "delete")
        #expect(try fixture.refs.liveRoots().contains { $0.id == old[2].id })
    }

    @Test func reflogEntriesOlderThanTheExpiryStopBeingRoots() async throws {
        let fixture = try await ForgetFixture()
        let scratch = try RefName.branch("scratch")
        let old = try await fixture.snapshots(1, on: scratch)
        try fixture.refs.update(scratch, to: nil, expected: old[0].id, agent: fixture.agent, message: "delete")
        fixture.clock.advance(seconds: 10 * 86_400)
        let kept = try await fixture.snapshots(1, on: .main, startDay: 10)
        let cutoff = fixture.clock.now - 86_400
        #expect(Set(try fixture.refs.liveRoots().map(\.id)) == [old[0].id, kept[0].id])
        #expect(try fixture.refs.liveRoots(reflogSince: cutoff).map(\.id) == [kept[0].id])
        #expect(try fixture.refs.expiredReflogSequences().isEmpty)

        // Once recorded, an expiry holds for every later reader, and never moves back.
        try fixture.refs.expireReflog(before: cutoff)
        try fixture.refs.expireReflog(before: cutoff - 86_400)
        #expect(try fixture.refs.reflogExpiry() == cutoff)
        #expect(try fixture.refs.liveRoots().map(\.id) == [kept[0].id])
        let scratchEntries = try fixture.refs.reflog(scratch, limit: 10).compactMap { $0.new == nil ? nil : $0.sequence }
        #expect(try fixture.refs.expiredReflogSequences() == Set(scratchEntries))
    }

    @Test func mergeParentsFollowTheRewrittenLine() async throws {
        let fixture = try await ForgetFixture()
        let old = try await fixture.snapshots(3)
        // A side commit merged in, and a merge that names a commit of the line itself.
        let sideRoot = try await fixture.history.chunks.put(Array("side".utf8), kind: .metadata)
        let (side, _) = try await fixture.history.commits.write(
            parents: [], root: sideRoot, message: "side", time: Date(timeIntervalSince1970: 1_777_000_000 + 3 * 86_400))
        let (merge, _) = try await fixture.history.commits.write(
            parents: [old[2], side, old[0]], root: sideRoot, message: "merge",
            time: Date(timeIntervalSince1970: 1_777_000_000 + 4 * 86_400))
        try fixture.refs.update(.main, to: merge, expected: old[2].id, agent: fixture.agent, message: "merge")

        let plan = try await fixture.forget.plan(.main, policy: RetentionPolicy(last: 2, timeZone: utc))
        #expect(plan.entries.map(\.isKept) == [true, true, false, false])
        let result = try await fixture.forget.apply(plan)
        let newMerge = try await fixture.history.commits.load(result.newHead)
        #expect(newMerge.parents.count == 2, "the removed commit of the line is dropped, the side commit stays")
        #expect(newMerge.parents[1] == side)
        #expect(try await fixture.history.commits.load(newMerge.parents[0]).message == "day 2")
    }

    @Test func aBranchThatMovedIsNotOverwritten() async throws {
        let fixture = try await ForgetFixture()
        try await fixture.snapshots(3)
        let plan = try await fixture.forget.plan(.main, policy: RetentionPolicy(last: 1, timeZone: utc))
        let concurrent = try await fixture.snapshots(1, startDay: 3)
        await #expect {
            try await fixture.forget.apply(plan)
        } throws: { isHistoryError($0, .conflict, mentioning: "main") }
        #expect(try fixture.refs.ref(.main) == concurrent[0])
    }

    @Test func badRequestsAreRefusedWithTheirReason() async throws {
        let fixture = try await ForgetFixture()
        await #expect {
            try await fixture.forget.plan(.main, policy: RetentionPolicy(last: 1))
        } throws: { isHistoryError($0, .notFound, mentioning: "main") }
        try await fixture.snapshots(1)
        await #expect {
            try await fixture.forget.plan(.main, policy: RetentionPolicy())
        } throws: { isHistoryError($0, .invalidArgument, mentioning: "no keep rule") }
        await #expect {
            try await fixture.forget.plan(try RefName.tag("v1"), policy: RetentionPolicy(last: 1))
        } throws: { isHistoryError($0, .invalidArgument, mentioning: "branches") }
    }
}
