import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks
import Testing

@testable import InfinityHistory

/// 2026-05-01T00:00:00Z and 12:00:00Z.
private let mayFirstMidnightUTC = Date(timeIntervalSince1970: 1_777_593_600)
private let mayFirstNoonUTC = Date(timeIntervalSince1970: 1_777_636_800)
/// The "local" zone of these tests: one hour east of UTC, fixed so results do not depend on
/// the machine.
private let localZone = TimeZone(secondsFromGMT: 3600)!

@Suite struct RevisionParsingTests {
    typealias Step = Revision.Step

    @Test(arguments: [
        ("HEAD", Revision.Base.head, nil, []),
        ("@", .head, nil, []),
        ("@~2", .head, nil, [.firstParentAncestor(2)]),
        ("main", .name("main"), nil, []),
        ("main~3", .name("main"), nil, [.firstParentAncestor(3)]),
        ("main~", .name("main"), nil, [.firstParentAncestor(1)]),
        ("main^", .name("main"), nil, [.parent(1)]),
        ("main^2", .name("main"), nil, [.parent(2)]),
        ("main^0", .name("main"), nil, [.parent(0)]),
        ("main~2^2~", .name("main"), nil, [.firstParentAncestor(2), .parent(2), .firstParentAncestor(1)]),
        ("HEAD@{0}", .head, .previous(0), []),
        ("main@{12}^", .name("main"), .previous(12), [.parent(1)]),
        ("alice/main~1", .name("alice/main"), nil, [.firstParentAncestor(1)]),
        ("refs/tags/v1.0^2", .name("refs/tags/v1.0"), nil, [.parent(2)]),
        ("0123abcd", .name("0123abcd"), nil, []),
        ("feature/x@{2026-05-01T12:00:00Z}", .name("feature/x"), .asOf(mayFirstNoonUTC), []),
    ] as [(String, Revision.Base, Revision.ReflogSelector?, [Step])])
    func parses(text: String, base: Revision.Base, selector: Revision.ReflogSelector?, steps: [Step]) throws {
        let revision = try Revision(parsing: text, timeZone: localZone)
        #expect(revision.base == base)
        #expect(revision.reflogSelector == selector)
        #expect(revision.steps == steps)
        #expect(revision.description == text)
    }

    @Test(arguments: [
        ("2026-05-01", mayFirstMidnightUTC - 3600),
        ("2026-05-01 12:00", mayFirstNoonUTC - 3600),
        ("2026-05-01 12:00:30", mayFirstNoonUTC - 3600 + 30),
        ("2026-05-01T12:00", mayFirstNoonUTC - 3600),
        ("2026-05-01T12:00:00Z", mayFirstNoonUTC),
        ("2026-05-01T12:00:00+02:00", mayFirstNoonUTC - 7200),
        ("2026-05-01T12:00:00-0130", mayFirstNoonUTC + 5400),
        ("2026-05-01T12:00:00.250Z", mayFirstNoonUTC + 0.25),
        ("2024-02-29", Date(timeIntervalSince1970: 1_709_164_800 - 3600)),
    ])
    func parsesDates(text: String, expected: Date) throws {
        let revision = try Revision(parsing: "main@{\(text)}~2", timeZone: localZone)
        guard case .asOf(let date) = revision.reflogSelector else {
            Issue.record("\(text) was not read as a date")
            return
        }
        #expect(abs(date.timeIntervalSince(expected)) < 0.001, "\(text)")
        #expect(revision.steps == [.firstParentAncestor(2)])
    }

    @Test(arguments: [
        ("", "does not start"),
        ("~1", "does not start"),
        ("@{1}", "does not start"),
        ("main@{}", "neither a count nor a date"),
        ("main@{yesterday}", "neither a count nor a date"),
        ("main@{2026-02-30}", "neither a count nor a date"),
        ("main@{2025-02-29}", "neither a count nor a date"),
        ("main@{2026-05-01 25:00}", "neither a count nor a date"),
        ("main@{2026-05-01T12:00:00+2}", "neither a count nor a date"),
        ("main@{2026-5-1}", "neither a count nor a date"),
        ("main@{1", "reflog selector"),
        ("main@{1}x", "unexpected 'x'"),
        ("main~1@{1}", "right after the ref name"),
        ("main@{1}@{2}", "right after the ref name"),
        ("main~x", "unexpected 'x'"),
        ("main^{commit}", "unexpected '{'"),
        ("ma..in", "'..'"),
        ("-main", "'-'"),
        ("refs/bogus/x", "refs/heads/"),
        ("main~99999999999999999999", "too large"),
        ("main@{99999999999999999999}", "too large"),
    ])
    func refusesWithTheRevisionNamed(text: String, problem: String) {
        #expect {
            try Revision(parsing: text, timeZone: localZone)
        } throws: { isHistoryError($0, .invalidArgument, mentioning: "'\(text)'", problem) }
    }
}

@Suite struct RevisionResolutionTests {
    let history: HistoryFixture
    let refs: RefStore
    let clock = ManualClock(mayFirstNoonUTC - 2 * 3600)
    let agent: AgentID
    /// main: c0 - c1 - c2 - c3 - c4, moved one commit an hour from 10:00 UTC on 2026-05-01.
    let line: [ChunkRef]
    /// s0 on c1; feature = merge of c4 and s0.
    let side: ChunkRef
    let merge: ChunkRef

    init() async throws {
        history = try await HistoryFixture()
        let clock = clock
        refs = try RefStore(path: ":memory:", metadataKey: .random(count: 32), clock: { clock.now })
        agent = history.commits.author.id
        line = try await history.line(5)
        side = try await history.commit("s0", parents: [line[1]], second: 2)
        merge = try await history.commit("merge", parents: [line[4], side], second: 9)
        var previous: ChunkID?
        for commit in line {
            try refs.update(.main, to: commit, expected: previous, agent: agent, message: "commit")
            previous = commit.id
            clock.advance(seconds: 3600)
        }
        try refs.update(try .branch("feature"), to: merge, expected: nil, agent: agent, message: "merge")
        for ref in line + [side, merge] {
            let commit = try await history.commits.load(ref)
            try refs.recordCommit(ref, generation: commit.generation, time: commit.time)
        }
    }

    func resolve(_ revision: String) async throws -> ChunkRef {
        try await Revision.resolve(revision, refs: refs, commits: history.commits, timeZone: .gmt)
    }

    @Test func ancestorsAndParents() async throws {
        #expect(try await resolve("main") == line[4])
        #expect(try await resolve("HEAD") == line[4])
        #expect(try await resolve("@~1") == line[3])
        #expect(try await resolve("main~3") == line[1])
        #expect(try await resolve("main~~") == line[2])
        #expect(try await resolve("main~4") == line[0])
        #expect(try await resolve("refs/heads/main^") == line[3])
        #expect(try await resolve("feature^2") == side)
        #expect(try await resolve("feature^") == line[4])
        #expect(try await resolve("feature^0") == merge)
        #expect(try await resolve("feature^2~1") == line[1])
        #expect(try await resolve("feature~1~1") == line[3])
        await #expect {
            try await resolve("main~5")
        } throws: { isHistoryError($0, .notFound, mentioning: "'main~5'") }
        await #expect {
            try await resolve("feature^3")
        } throws: { isHistoryError($0, .notFound, mentioning: "'feature^3'", "2 parents") }
        await #expect {
            try await resolve("main^2")
        } throws: { isHistoryError($0, .notFound, mentioning: "'main^2'", "1 parent,") }
    }

    @Test func reflogSelectors() async throws {
        #expect(try await resolve("main@{0}") == line[4])
        #expect(try await resolve("main@{1}") == line[3])
        #expect(try await resolve("main@{1}~1") == line[2])
        #expect(try await resolve("HEAD@{4}") == line[0])
        // Updates happened at 10:00, 11:00, … 14:00 UTC.
        #expect(try await resolve("main@{2026-05-01 12:30}") == line[2])
        #expect(try await resolve("main@{2026-05-01T14:30:00+02:00}") == line[2])
        #expect(try await resolve("main@{2026-05-01T12:00:00Z}~2") == line[0])
        await #expect {
            try await resolve("main@{2026-05-01 09:59}")
        } throws: { isHistoryError($0, .notFound, mentioning: "did not exist") }
        await #expect {
            try await resolve("main@{5}")
        } throws: { isHistoryError($0, .notFound, mentioning: "only 5 changes") }

        // A deleted branch resolves no more, but its log still does.
        let gone = try RefName.branch("gone")
        try refs.update(gone, to: line[1], expected: nil, agent: agent, message: "create")
        try refs.update(gone, to: nil, expected: line[1].id, agent: agent, message: "delete")
        await #expect { try await resolve("gone") } throws: { isHistoryError($0, .notFound, mentioning: "'gone'") }
        #expect(try await resolve("gone@{1}") == line[1])
        await #expect { try await resolve("gone@{0}") } throws: { isHistoryError($0, .notFound, mentioning: "did not exist") }
    }

    @Test func namesResolveBranchThenTagThenAgentRef() async throws {
        try refs.update(try .tag("v1"), to: line[2], expected: nil, agent: agent, message: "tag")
        #expect(try await resolve("v1") == line[2])
        try refs.update(try .tag("dup"), to: line[1], expected: nil, agent: agent, message: "tag")
        try refs.update(try .branch("dup"), to: line[3], expected: nil, agent: agent, message: "branch")
        #expect(try await resolve("dup") == line[3], "a branch wins over a tag")
        #expect(try await resolve("refs/tags/dup") == line[1])
        try refs.update(try .agent("bob", branch: "main"), to: side, expected: nil, agent: agent, message: "accept")
        #expect(try await resolve("bob/main") == side)
        #expect(try await resolve("bob/main~1") == line[1])
        try refs.update(try .branch("bob/main"), to: line[0], expected: nil, agent: agent, message: "branch")
        #expect(try await resolve("bob/main") == line[0], "a branch wins over an agent ref")
        await #expect { try await resolve("nosuch") } throws: { isHistoryError($0, .notFound, mentioning: "'nosuch'") }
    }

    @Test func idPrefixesAndAmbiguity() async throws {
        let hex = line[2].id.description
        #expect(try await resolve(String(hex.prefix(10))) == line[2])
        #expect(try await resolve(String(hex.prefix(9)).uppercased() + "~1") == line[1])
        #expect(try await resolve(hex) == line[2])
        await #expect { try await resolve("deadbeef") } throws: { isHistoryError($0, .notFound, mentioning: "'deadbeef'") }

        // Two recorded commits whose ids share their first four hex digits.
        var byPrefix: [String: ChunkRef] = [:]
        var pair: (ChunkRef, ChunkRef)?
        for number in 0..<20_000 where pair == nil {
            let ref = fakeRef(number)
            let prefix = String(ref.id.description.prefix(4))
            if let earlier = byPrefix[prefix] { pair = (earlier, ref) } else { byPrefix[prefix] = ref }
        }
        let (first, second) = try #require(pair)
        try refs.recordCommit(first, generation: 1, time: Date())
        try refs.recordCommit(second, generation: 1, time: Date())
        let shared = String(first.id.description.prefix(4))
        await #expect {
            try await resolve(shared)
        } throws: {
            isHistoryError($0, .ambiguous, mentioning: "'\(shared)'", first.id.shortDescription, second.id.shortDescription)
        }
        #expect(try await resolve(first.id.description) == first)
    }

    @Test func unbornHeadIsNotFound() async throws {
        let empty = try RefStore(path: ":memory:", metadataKey: .random(count: 32))
        await #expect {
            try await Revision.resolve("HEAD", refs: empty, commits: history.commits)
        } throws: { isHistoryError($0, .notFound, mentioning: "'HEAD'", "no commits yet") }
    }
}
