#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Exclusion rules in gitignore syntax, from `--exclude` and `.infinityignore` files.
///
/// - `#` starts a comment line; blank lines are skipped; a backslash escapes the next character.
/// - A leading `!` re-includes what an earlier rule excluded (not inside an excluded directory,
///   which is never read).
/// - A trailing `/` matches directories only.
/// - A pattern with a `/` elsewhere is anchored to the directory of its file (the source's root
///   for `--exclude`); one without matches a name at any depth.
/// - `*` and `?` never match `/`; `[…]` is a character class; `**` matches any number of
///   directories (`**/x`, `a/**`, `a/**/b`).
///
/// The last rule that matches a path decides.
struct IgnoreRules: Sendable {
    struct Rule: Sendable {
        /// Where the rule applies: the directory of its file, relative to the source root.
        var base: [[UInt8]]
        /// The pattern's segments (one for unanchored patterns).
        var segments: [[UInt8]]
        var anchored: Bool
        var negated: Bool
        var directoryOnly: Bool
    }

    private(set) var rules: [Rule] = []

    var isEmpty: Bool { rules.isEmpty }

    /// Adds the rules of one file (or of the `--exclude` options, joined by newlines).
    mutating func add(_ text: [UInt8], base: [[UInt8]]) {
        for line in text.split(separator: 0x0A, omittingEmptySubsequences: true) {
            if let rule = Self.parse(Array(line), base: base) { rules.append(rule) }
        }
    }

    mutating func add(patterns: [String]) {
        for pattern in patterns { add(Array(pattern.utf8), base: []) }
    }

    /// Removes rules added after the first `count` (leaving a directory drops its file's rules).
    mutating func truncate(to count: Int) {
        rules.removeSubrange(count...)
    }

    private static func parse(_ line: [UInt8], base: [[UInt8]]) -> Rule? {
        var line = line
        if line.last == 0x0D { line.removeLast() }
        // Trailing spaces go unless escaped.
        while line.last == 0x20 && !(line.count >= 2 && line[line.count - 2] == 0x5C) { line.removeLast() }
        guard let first = line.first, first != 0x23 else { return nil }
        var negated = false
        if first == 0x21 {
            negated = true
            line.removeFirst()
        } else if first == 0x5C, line.count > 1, line[1] == 0x21 || line[1] == 0x23 {
            line.removeFirst()
        }
        var directoryOnly = false
        if line.last == 0x2F {
            directoryOnly = true
            line.removeLast()
        }
        guard !line.isEmpty else { return nil }
        let anchored = line.contains(0x2F)
        if line.first == 0x2F { line.removeFirst() }
        let segments = line.split(separator: 0x2F, omittingEmptySubsequences: true).map { Array($0) }
        guard !segments.isEmpty else { return nil }
        return Rule(base: base, segments: segments, anchored: anchored, negated: negated, directoryOnly: directoryOnly)
    }

    /// Whether the path (names relative to the source root) is excluded.
    func excludes(_ components: ArraySlice<[UInt8]>, isDirectory: Bool) -> Bool {
        for rule in rules.reversed() where rule.matches(components, isDirectory: isDirectory) {
            return !rule.negated
        }
        return false
    }
}

extension IgnoreRules.Rule {
    func matches(_ components: ArraySlice<[UInt8]>, isDirectory: Bool) -> Bool {
        if directoryOnly && !isDirectory { return false }
        guard components.count > base.count, components.starts(with: base) else { return false }
        let relative = components.dropFirst(base.count)
        if !anchored { return Self.glob(segments[0], relative.last!) }
        return Self.match(segments[...], relative)
    }

    /// Segment-wise match with `**` standing for any number of whole names.
    private static func match(_ pattern: ArraySlice<[UInt8]>, _ names: ArraySlice<[UInt8]>) -> Bool {
        guard let head = pattern.first else { return names.isEmpty }
        if head == [0x2A, 0x2A] {
            let rest = pattern.dropFirst()
            // "a/**" matches everything inside a, not a itself.
            if rest.isEmpty { return !names.isEmpty }
            for skip in 0...names.count where match(rest, names.dropFirst(skip)) { return true }
            return false
        }
        guard let name = names.first, glob(head, name) else { return false }
        return match(pattern.dropFirst(), names.dropFirst())
    }

    private static func glob(_ pattern: [UInt8], _ name: [UInt8]) -> Bool {
        let patternC = pattern + [0]
        let nameC = name + [0]
        return patternC.withUnsafeBufferPointer { p in
            nameC.withUnsafeBufferPointer { n in
                p.withMemoryRebound(to: CChar.self) { p in
                    n.withMemoryRebound(to: CChar.self) { n in fnmatch(p.baseAddress!, n.baseAddress!, 0) == 0 }
                }
            }
        }
    }
}
