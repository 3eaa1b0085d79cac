import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks

/// A revision as a user writes it, parsed: a starting point, an optional reflog selector and a
/// chain of steps to ancestors.
///
/// Grammar (as in git):
///
///     revision := base [ "@{" selector "}" ] step*
///     base     := "HEAD" | "@" | branch | tag | agent "/" branch | full ref name | hex id prefix
///     selector := N                   the N-th previous value in the ref's reflog
///               | date                the value at that time
///     step     := "~" [N]             N-th first-parent ancestor (1 when N is left out)
///               | "^" [N]             N-th parent (1 when left out; 0 is the commit itself)
///
/// A date is `2026-05-01`, `2026-05-01 12:00`, `2026-05-01 12:00:00`, or ISO 8601 with `T`
/// (`2026-05-01T12:00:00Z`, `2026-05-01T12:00:00+02:00`); without a zone it is local time.
/// Example: `main@{2026-05-01}~2`.
public struct Revision: Sendable, Hashable, CustomStringConvertible {
    /// Where a revision starts.
    public enum Base: Sendable, Hashable {
        /// `HEAD` (or `@`).
        case head
        /// A name: a branch, tag, agent ref, full ref name or commit id prefix; which one is
        /// decided when resolving.
        case name(String)
    }

    /// Which value out of a ref's reflog.
    public enum ReflogSelector: Sendable, Hashable {
        /// `@{N}`: the value N changes ago; 0 is the current one.
        case previous(Int)
        /// `@{date}`: the value at that time.
        case asOf(Date)
    }

    /// One move from a commit to an ancestor.
    public enum Step: Sendable, Hashable {
        /// `~N`: follow the first parent N times.
        case firstParentAncestor(Int)
        /// `^N`: the N-th parent (counting from 1); `^0` stays on the commit.
        case parent(Int)
    }

    /// The text as written.
    public let text: String
    /// Where resolution starts.
    public let base: Base
    /// Which of the base ref's logged values to start from; nil for its current value.
    public let reflogSelector: ReflogSelector?
    /// The moves to ancestors, applied in order.
    public let steps: [Step]

    public var description: String { text }

    /// Parses a revision.
    ///
    /// - Parameter timeZone: the zone of dates written without one.
    /// - Throws: ``HistoryError/Code/invalidArgument`` naming the revision and what is wrong.
    public init(parsing text: String, timeZone: TimeZone = .current) throws {
        self.text = text
        func invalid(_ problem: String) -> HistoryError {
            HistoryError(.invalidArgument, "invalid revision '\(text)': \(problem)")
        }
        let characters = Array(text)
        let baseEnd = Self.endOfBase(in: characters)
        let baseText = String(characters[..<baseEnd])
        switch baseText {
        case "":
            throw invalid("it does not start with a ref name or commit id")
        case "HEAD", "@":
            base = .head
        default:
            if baseText.hasPrefix("refs/") {
                do { _ = try RefName(validating: baseText) } catch let error as HistoryError { throw invalid(error.message) }
            } else if let problem = RefName.problem(in: "refs/heads/" + baseText) {
                throw invalid("'\(baseText)' is not a valid name: \(problem)")
            }
            base = .name(baseText)
        }

        var position = baseEnd
        var selector: ReflogSelector?
        var steps: [Step] = []
        while position < characters.count {
            switch characters[position] {
            case "@":
                guard position + 1 < characters.count, characters[position + 1] == "{",
                    let close = characters[position...].firstIndex(of: "}")
                else { throw invalid("'@' must start a reflog selector '@{…}'") }
                guard selector == nil, steps.isEmpty else {
                    throw invalid("'@{…}' must come right after the ref name, once")
                }
                let inside = String(characters[(position + 2)..<close])
                if !inside.isEmpty, inside.allSatisfy(\.isASCIIDigit) {
                    guard let count = Int(inside) else { throw invalid("'@{\(inside)}' is too large") }
                    selector = .previous(count)
                } else if let date = RevisionDate.parse(inside, timeZone: timeZone) {
                    selector = .asOf(date)
                } else {
                    throw invalid(
                        "'\(inside)' in '@{…}' is neither a count nor a date like 2026-05-01, 2026-05-01 12:00[:00] or 2026-05-01T12:00:00Z")
                }
                position = close + 1
            case "~", "^":
                let isParent = characters[position] == "^"
                var end = position + 1
                while end < characters.count, characters[end].isASCIIDigit { end += 1 }
                let digits = String(characters[(position + 1)..<end])
                guard let count = digits.isEmpty ? 1 : Int(digits) else {
                    throw invalid("'\(characters[position])\(digits)' is too large")
                }
                steps.append(isParent ? .parent(count) : .firstParentAncestor(count))
                position = end
            default:
                throw invalid("unexpected '\(characters[position])' after '\(String(characters[..<position]))'")
            }
        }
        reflogSelector = selector
        self.steps = steps
    }

    /// The base runs up to the first `~`, `^` or `@{`, which no ref name contains. A lone `@`
    /// is HEAD's short form, so an `@` at the very start belongs to the base unless `{` follows.
    private static func endOfBase(in characters: [Character]) -> Int {
        var index = 0
        while index < characters.count {
            switch characters[index] {
            case "~", "^": return index
            case "@" where index + 1 < characters.count && characters[index + 1] == "{": return index
            default: index += 1
            }
        }
        return index
    }

    /// Parses and resolves `revision` to a commit. See ``resolve(refs:commits:)``.
    public static func resolve(
        _ revision: String, refs: RefStore, commits: CommitStore, timeZone: TimeZone = .current
    ) async throws -> ChunkRef {
        try await Revision(parsing: revision, timeZone: timeZone).resolve(refs: refs, commits: commits)
    }

    /// The commit this revision names.
    ///
    /// A name is tried as a branch, then a tag, then an agent ref (`agent/branch`), then a commit
    /// id prefix of at least 4 hex digits from the commit catalog.
    ///
    /// - Throws: ``HistoryError/Code/notFound`` naming the revision when nothing matches or a
    ///   step leads past the start of history; ``HistoryError/Code/ambiguous`` listing the
    ///   candidates when an id prefix matches several commits.
    public func resolve(refs: RefStore, commits: CommitStore) async throws -> ChunkRef {
        var commit = try resolveBase(refs)
        for step in steps {
            commit = try await take(step, from: commit, commits)
        }
        return commit
    }

    private func notFound(_ problem: String) -> HistoryError {
        HistoryError(.notFound, "revision '\(text)': \(problem)")
    }

    private func resolveBase(_ refs: RefStore) throws -> ChunkRef {
        let candidates = try candidateRefs()
        if let reflogSelector {
            // A deleted branch still has its log, so the first candidate with a log is meant.
            guard let name = try candidates.first(where: { !(try refs.reflog($0, limit: 1)).isEmpty }) else {
                throw notFound("no ref of that name has a reflog")
            }
            switch reflogSelector {
            case .previous(let count):
                guard let value = try refs.ref(name, previous: count) else {
                    throw notFound("\(name) did not exist \(count) changes ago")
                }
                return value
            case .asOf(let date):
                guard let value = try refs.ref(name, asOf: date) else {
                    throw notFound("\(name) did not exist at \(date)")
                }
                return value
            }
        }
        for name in candidates {
            if let value = try refs.ref(name) { return value }
        }
        if case .head = base { throw notFound("HEAD is on a branch with no commits yet") }
        return try commitByIDPrefix(refs)
    }

    /// The refs the base may name, in the order they are tried.
    private func candidateRefs() throws -> [RefName] {
        guard case .name(let name) = base else { return [.head] }
        if name.hasPrefix("refs/") { return [try RefName(validating: name)] }
        var candidates = [(try? RefName.branch(name)), (try? RefName.tag(name))].compactMap { $0 }
        let parts = name.split(separator: "/", maxSplits: 1)
        if parts.count == 2, let agentRef = try? RefName.agent(String(parts[0]), branch: String(parts[1])) {
            candidates.append(agentRef)
        }
        return candidates
    }

    private func commitByIDPrefix(_ refs: RefStore) throws -> ChunkRef {
        guard case .name(let name) = base, name.count >= 4, name.count <= ChunkID.byteCount * 2,
            name.allSatisfy({ $0.isASCII && $0.isHexDigit })
        else {
            throw notFound("no branch, tag or agent ref of that name")
        }
        let matches = try refs.commits(withHexPrefix: name, limit: 10)
        guard let first = matches.first else {
            throw notFound("no branch, tag, agent ref or known commit id starts with '\(name)'")
        }
        guard matches.count == 1 else {
            let listed = matches.map(\.id.shortDescription).joined(separator: ", ")
            throw HistoryError(
                .ambiguous,
                "revision '\(text)': commit id prefix '\(name)' matches \(matches.count == 10 ? "10 or more" : "\(matches.count)") commits: \(listed)")
        }
        return first
    }

    private func take(_ step: Step, from ref: ChunkRef, _ commits: CommitStore) async throws -> ChunkRef {
        switch step {
        case .firstParentAncestor(let count):
            do {
                return try await commits.firstParentAncestor(ref, generations: count)
            } catch let error as HistoryError where error.code == .notFound {
                throw notFound(error.message)
            }
        case .parent(0):
            return ref
        case .parent(let index):
            let parents = try await commits.load(ref).parents
            guard index <= parents.count else {
                throw notFound(
                    "commit \(ref.id.shortDescription) has \(parents.count) parent\(parents.count == 1 ? "" : "s"), not \(index)")
            }
            return parents[index - 1]
        }
    }
}

/// The dates a reflog selector accepts.
enum RevisionDate {
    /// `YYYY-MM-DD[( |T)HH:MM[:SS[.fraction]]][Z|±HH[:]MM|±HH]`; nil for anything else,
    /// including days that do not exist.
    static func parse(_ text: String, timeZone: TimeZone) -> Date? {
        var scanner = DigitScanner(Array(text.utf8))
        guard let year = scanner.number(digits: 4), scanner.skip("-"), let month = scanner.number(digits: 2),
            scanner.skip("-"), let day = scanner.number(digits: 2),
            (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        var hour = 0
        var minute = 0
        var second = 0
        var nanosecond = 0
        var zone = timeZone
        if scanner.skip(" ") || scanner.skip("T") {
            guard let h = scanner.number(digits: 2), scanner.skip(":"), let m = scanner.number(digits: 2),
                h < 24, m < 60
            else { return nil }
            (hour, minute) = (h, m)
            if scanner.skip(":") {
                guard let s = scanner.number(digits: 2), s < 60 else { return nil }
                second = s
                if scanner.skip(".") {
                    guard let fraction = scanner.fraction() else { return nil }
                    nanosecond = fraction
                }
            }
            if !scanner.isAtEnd {
                guard let offset = scanner.zoneOffset(), let explicit = TimeZone(secondsFromGMT: offset) else { return nil }
                zone = explicit
            }
        }
        guard scanner.isAtEnd else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.date(
            from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second, nanosecond: nanosecond))
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Reads fixed-width ASCII numbers and separators.
    private struct DigitScanner {
        let bytes: [UInt8]
        var position = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var isAtEnd: Bool { position == bytes.count }

        mutating func skip(_ character: Character) -> Bool {
            guard position < bytes.count, let ascii = character.asciiValue, bytes[position] == ascii else { return false }
            position += 1
            return true
        }

        mutating func number(digits: Int) -> Int? {
            guard position + digits <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[position..<(position + digits)] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            position += digits
            return value
        }

        /// One to nine fraction digits, as nanoseconds.
        mutating func fraction() -> Int? {
            var value = 0
            var count = 0
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                guard count < 9 else { return nil }
                value = value * 10 + Int(bytes[position] - UInt8(ascii: "0"))
                count += 1
                position += 1
            }
            guard count > 0 else { return nil }
            for _ in count..<9 { value *= 10 }
            return value
        }

        /// `Z`, `±HH`, `±HHMM` or `±HH:MM`, as seconds east of UTC; the rest of the text.
        mutating func zoneOffset() -> Int? {
            if skip("Z") { return isAtEnd ? 0 : nil }
            let sign: Int
            if skip("+") { sign = 1 } else if skip("-") { sign = -1 } else { return nil }
            guard let hours = number(digits: 2), hours <= 18 else { return nil }
            var minutes = 0
            if !isAtEnd {
                _ = skip(":")
                guard let m = number(digits: 2), m < 60 else { return nil }
                minutes = m
            }
            return isAtEnd ? sign * (hours * 3600 + minutes * 60) : nil
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isWholeNumber }
}
