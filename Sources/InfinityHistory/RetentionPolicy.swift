import Foundation

/// One rule of a ``RetentionPolicy``: the newest snapshot of each period it counts is kept.
public enum RetentionRule: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// The newest snapshots, one each.
    case last
    /// The newest snapshot of each hour.
    case hourly
    /// The newest snapshot of each day.
    case daily
    /// The newest snapshot of each ISO 8601 week (Monday to Sunday).
    case weekly
    /// The newest snapshot of each calendar month.
    case monthly
    /// The newest snapshot of each calendar year.
    case yearly

    public var description: String { rawValue }
}

/// Which snapshots to keep, with restic's semantics: for each rule with a count N, the newest
/// snapshot of each of the last N periods (hours, days, ISO weeks, months, years) that have a
/// snapshot is kept; `last` keeps the N newest snapshots. A snapshot is kept when any rule keeps
/// it; the others are removed.
///
/// ```swift
/// let policy = RetentionPolicy(last: 3, daily: 7, weekly: 4, monthly: 12)
/// let reasons = try policy.reasons(forTimes: times)   // [] means "remove"
/// ```
public struct RetentionPolicy: Sendable, Hashable {
    /// How many of each rule's periods to keep; 0 turns the rule off.
    public var counts: [RetentionRule: Int]
    /// The time zone in which hours, days, weeks, months and years are counted.
    public var timeZone: TimeZone

    public init(
        last: Int = 0, hourly: Int = 0, daily: Int = 0, weekly: Int = 0, monthly: Int = 0, yearly: Int = 0,
        timeZone: TimeZone = .current
    ) {
        counts = [.last: last, .hourly: hourly, .daily: daily, .weekly: weekly, .monthly: monthly, .yearly: yearly]
        self.timeZone = timeZone
    }

    /// How many periods `rule` keeps.
    public subscript(rule: RetentionRule) -> Int {
        get { counts[rule] ?? 0 }
        set { counts[rule] = newValue }
    }

    /// Whether no rule keeps anything (such a policy would remove every snapshot, so it is refused).
    public var isEmpty: Bool { RetentionRule.allCases.allSatisfy { self[$0] == 0 } }

    /// The rules in effect with their counts, e.g. `last 3, daily 7`.
    public var summary: String {
        RetentionRule.allCases.filter { self[$0] > 0 }.map { "\($0) \(self[$0])" }.joined(separator: ", ")
    }

    /// Throws unless every count is 0 or more and at least one is above 0.
    public func validate() throws {
        for rule in RetentionRule.allCases where self[rule] < 0 {
            throw HistoryError(.invalidArgument, "keep-\(rule) must be 0 or more, not \(self[rule])")
        }
        guard !isEmpty else {
            throw HistoryError(
                .invalidArgument,
                "no keep rule given: a policy needs at least one of keep-last, -hourly, -daily, -weekly, -monthly or -yearly (nothing was removed)")
        }
    }

    /// For each time, the rules that keep it (empty: remove), in the order given.
    ///
    /// Snapshots are considered newest first; two with the same time count in the order given,
    /// the first as the newer (pass a branch's commits from its head down).
    public func reasons(forTimes times: [Date]) throws -> [[RetentionRule]] {
        try validate()
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = timeZone
        let order = times.indices.sorted { times[$0] > times[$1] || (times[$0] == times[$1] && $0 < $1) }
        var remaining = counts
        var lastPeriod: [RetentionRule: [Int]] = [:]
        var reasons = [[RetentionRule]](repeating: [], count: times.count)
        for position in order {
            for rule in RetentionRule.allCases where remaining[rule, default: 0] > 0 {
                let period = Self.period(of: times[position], rule: rule, position: position, calendar: calendar)
                guard period != lastPeriod[rule] else { continue }
                lastPeriod[rule] = period
                remaining[rule, default: 0] -= 1
                reasons[position].append(rule)
            }
        }
        return reasons
    }

    /// A value equal for two times exactly when they fall in the same period of `rule`.
    private static func period(of time: Date, rule: RetentionRule, position: Int, calendar: Calendar) -> [Int] {
        switch rule {
        case .last:
            return [position]
        case .weekly:
            let parts = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: time)
            return [parts.yearForWeekOfYear ?? 0, parts.weekOfYear ?? 0]
        case .hourly, .daily, .monthly, .yearly:
            let units: [Calendar.Component] = [.year, .month, .day, .hour]
            let depth = [RetentionRule.yearly: 1, .monthly: 2, .daily: 3, .hourly: 4][rule] ?? 4
            let parts = calendar.dateComponents(Set(units.prefix(depth)), from: time)
            return units.prefix(depth).map { parts.value(for: $0) ?? 0 }
        }
    }
}
