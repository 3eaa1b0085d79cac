import InfinityDB

/// A path inside a snapshot: a list of names, each a non-empty byte string without `/` or NUL
/// and never `.` or `..`, so no path can climb out of the directory it is restored into.
///
/// Its key in the files map is the names joined by a NUL byte. NUL sorts below every other byte,
/// so a directory's key comes just before everything inside it, all of which come before the
/// directory's next sibling: the map's key order is the depth-first order of a walk that visits
/// the names of each directory sorted by their bytes, and a subtree is one range of keys.
public struct SnapshotPath: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The names, joined by NUL bytes.
    public let joined: [UInt8]

    /// The empty path: the root of the snapshot.
    public static let root = SnapshotPath(uncheckedJoined: [])

    init(uncheckedJoined: [UInt8]) {
        joined = uncheckedJoined
    }

    /// A path from its names; throws if a name could escape (empty, `.`, `..`, or holding `/`
    /// or NUL).
    public init(components: [[UInt8]]) throws {
        var joined: [UInt8] = []
        for (index, name) in components.enumerated() {
            try Self.validate(name, in: components)
            if index > 0 { joined.append(0) }
            joined += name
        }
        self.joined = joined
    }

    /// A path from slash-separated text (`docs/report.pdf`); leading, trailing and repeated
    /// slashes are ignored, and `.` and `..` refused.
    public init(_ text: String) throws {
        try self.init(components: text.utf8.split(separator: UInt8(ascii: "/")).map { Array($0) })
    }

    private static func validate(_ name: [UInt8], in components: [[UInt8]]) throws {
        let problem: String? =
            if name.isEmpty { "an empty name" }
            else if name == [0x2E] || name == [0x2E, 0x2E] { "the name \(String(decoding: name, as: UTF8.self))" }
            else if name.contains(0x2F) { "a name holding /" }
            else if name.contains(0) { "a name holding a NUL byte" }
            else { nil }
        if let problem {
            let shown = components.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
            throw BackupError(.unsafePath, "the path \"\(shown)\" has \(problem); it could escape the restore target")
        }
    }

    public var isRoot: Bool { joined.isEmpty }

    /// The names, in order.
    public var components: [[UInt8]] {
        joined.isEmpty ? [] : joined.split(separator: 0, omittingEmptySubsequences: false).map { Array($0) }
    }

    /// The last name (empty for the root).
    public var name: [UInt8] {
        guard let separator = joined.lastIndex(of: 0) else { return joined }
        return Array(joined[(separator + 1)...])
    }

    /// The directory that holds this path; nil for the root.
    public var parent: SnapshotPath? {
        if joined.isEmpty { return nil }
        guard let separator = joined.lastIndex(of: 0) else { return .root }
        return SnapshotPath(uncheckedJoined: Array(joined[..<separator]))
    }

    /// This path with `name` appended (the name must be valid: it comes from a directory listing).
    func appending(_ name: [UInt8]) -> SnapshotPath {
        SnapshotPath(uncheckedJoined: joined.isEmpty ? name : joined + [0] + name)
    }

    /// Whether `self` is `other` or lies inside it.
    public func isWithin(_ other: SnapshotPath) -> Bool {
        if other.joined.isEmpty { return true }
        guard joined.count >= other.joined.count, joined.starts(with: other.joined) else { return false }
        return joined.count == other.joined.count || joined[other.joined.count] == 0
    }

    /// The first key after this path's whole subtree: `[self, subtreeEnd)` is the path and
    /// everything inside it. Nil for the root, whose subtree is everything.
    public var subtreeEnd: SnapshotPath? {
        joined.isEmpty ? nil : SnapshotPath(uncheckedJoined: joined + [1])
    }

    /// Slash-separated, as the bytes read in UTF-8 (invalid bytes shown as U+FFFD).
    public var description: String {
        String(decoding: joined.map { $0 == 0 ? 0x2F : $0 }, as: UTF8.self)
    }

    /// The path's bytes with `/` between names, for system calls relative to a restore target.
    public var slashSeparated: [UInt8] { joined.map { $0 == 0 ? 0x2F : $0 } }

    public static func < (lhs: SnapshotPath, rhs: SnapshotPath) -> Bool {
        lhs.joined.lexicographicallyPrecedes(rhs.joined)
    }
}

extension SnapshotPath: IndexKey {
    public func encodeKey(into encoder: inout KeyEncoder) {
        encoder.encode(joined)
    }

    public static func decodeKey(from decoder: inout KeyDecoder) throws -> SnapshotPath {
        let joined = try decoder.decode([UInt8].self)
        // Stored paths are checked like any other input: a hostile snapshot must not name `..`.
        // The check runs on every key read, so it scans the bytes in place.
        var start = 0
        var safe = true
        for index in 0...joined.count where index == joined.count || joined[index] == 0 {
            let length = index - start
            if length == 0 && !joined.isEmpty
                || length == 1 && joined[start] == 0x2E
                || length == 2 && joined[start] == 0x2E && joined[start + 1] == 0x2E
            {
                safe = false
            }
            start = index + 1
        }
        if !safe || joined.contains(0x2F) {
            // The slow path names the offending component.
            return try SnapshotPath(components: SnapshotPath(uncheckedJoined: joined).components)
        }
        return SnapshotPath(uncheckedJoined: joined)
    }
}
