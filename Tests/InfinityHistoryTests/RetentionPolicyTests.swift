import Foundation
import Testing

@testable import InfinityHistory

/// Snapshot times for the policy table, in UTC, given out of order on purpose.
private let snapshots: [(name: String, time: String)] = [
    ("h", "2026-04-30T12:00:00Z"),  // Thursday of ISO week 18
    ("a", "2026-05-20T14:30:00Z"),
    ("c", "2026-05-20T09:00:00Z"),
    ("b", "2026-05-20T14:05:00Z"),  // same hour as a
    ("d", "2026-05-19T23:59:00Z"),
    ("e", "2026-05-18T10:00:00Z"),  // Monday, ISO week 21
    ("f", "2026-05-17T10:00:00Z"),  // Sunday, ISO week 20
    ("g", "2026-05-03T08:00:00Z"),  // Sunday, ISO week 18
    ("i", "2026-01-01T00:30:00Z"),  // ISO week 1 of 2026
    ("j", "2025-12-31T23:30:00Z"),  // also ISO week 1 of 2026, but calendar year 2025
    ("k", "2024-06-01T00:00:00Z"),
]

private let utc = TimeZone(identifier: "UTC")!

private func kept(by policy: RetentionPolicy) throws -> String {
    let formatter = ISO8601DateFormatter()
    let times = snapshots.map { formatter.date(from: $0.time)! }
    let reasons = try policy.reasons(forTimes: times)
    return snapshots.indices.filter { !reasons[$0].isEmpty }.map { snapshots[$0].name }.sorted().joined()
}

@Suite struct RetentionPolicyTests {
    struct Case: Sendable, CustomStringConvertible {
        var policy: RetentionPolicy
        var kept: String
        var description: String { "\(policy.summary) in \(policy.timeZone.identifier) keeps \(kept)" }
    }

    static let cases: [Case] = [
        Case(policy: RetentionPolicy(last: 3, timeZone: utc), kept: "abc"),
        Case(policy: RetentionPolicy(last: 50, timeZone: utc), kept: "abcdefghijk"),
        Case(policy: RetentionPolicy(hourly: 3, timeZone: utc), kept: "acd"),
        Case(policy: RetentionPolicy(daily: 3, timeZone: utc), kept: "ade"),
        Case(policy: RetentionPolicy(weekly: 5, timeZone: utc), kept: "afgik"),
        Case(policy: RetentionPolicy(monthly: 3, timeZone: utc), kept: "ahi"),
        Case(policy: RetentionPolicy(yearly: 3, timeZone: utc), kept: "ajk"),
        Case(policy: RetentionPolicy(yearly: 2, timeZone: utc), kept: "aj"),
        // The union of rules: the newest of each covers several.
        Case(policy: RetentionPolicy(daily: 2, monthly: 2, timeZone: utc), kept: "adh"),
        Case(policy: RetentionPolicy(last: 1, yearly: 3, timeZone: utc), kept: "ajk"),
        Case(policy: RetentionPolicy(last: 2, hourly: 1, daily: 2, weekly: 2, monthly: 2, yearly: 2, timeZone: utc), kept: "abdfhj"),
        // Periods are counted in the policy's time zone: at UTC+10, j falls on 1 January 2026.
        Case(policy: RetentionPolicy(yearly: 3, timeZone: TimeZone(secondsFromGMT: 10 * 3600)!), kept: "ak"),
        Case(policy: RetentionPolicy(daily: 3, timeZone: TimeZone(secondsFromGMT: 10 * 3600)!), kept: "ace"),
    ]

    @Test(arguments: cases)
    func policyTable(_ test: Case) throws {
        #expect(try kept(by: test.policy) == test.kept)
    }

    @Test func reasonsNameEveryRuleThatKeeps() throws {
        let times = [0.0, -60, -86_400].map { Date(timeIntervalSince1970: 1_779_287_400 + $0) }
        let reasons = try RetentionPolicy(last: 1, hourly: 2, daily: 2, timeZone: utc).reasons(forTimes: times)
        #expect(reasons == [[.last, .hourly, .daily], [], [.hourly, .daily]])
    }

    @Test func equalTimesCountInTheOrderGiven() throws {
        let time = Date(timeIntervalSince1970: 1_779_287_400)
        #expect(try RetentionPolicy(last: 1, timeZone: utc).reasons(forTimes: [time, time, time]) == [[.last], [], []])
        #expect(try RetentionPolicy(daily: 1, timeZone: utc).reasons(forTimes: [time - 5, time, time]) == [[], [.daily], []])
    }

    @Test func aPolicyThatKeepsNothingOrCountsBackwardsIsRefused() throws {
        #expect {
            try RetentionPolicy().reasons(forTimes: [Date()])
        } throws: { isHistoryError($0, .invalidArgument, mentioning: "no keep rule") }
        #expect {
            try RetentionPolicy(last: 2, weekly: -1).validate()
        } throws: { isHistoryError($0, .invalidArgument, mentioning: "keep-weekly", "-1") }
        #expect(try RetentionPolicy(daily: 1).reasons(forTimes: []).isEmpty)
    }
}
