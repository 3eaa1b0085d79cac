/// One difference between two versions of a map, in key order.
public enum MapChange: Sendable, Hashable {
    case added(key: [UInt8], value: [UInt8])
    case removed(key: [UInt8], value: [UInt8])
    case changed(key: [UInt8], old: [UInt8], new: [UInt8])

    public var key: [UInt8] {
        switch self {
        case .added(let key, _), .removed(let key, _), .changed(let key, _, _): key
        }
    }
}

/// One difference between two versions of a list, like a hunk of a text diff: the elements in
/// `oldRange` of the old list became those in `newRange` of the new one.
public struct ListChange: Sendable, Hashable {
    public var oldRange: Range<Int>
    public var newRange: Range<Int>
    public var removed: [[UInt8]]
    public var inserted: [[UInt8]]

    public init(oldRange: Range<Int>, newRange: Range<Int>, removed: [[UInt8]], inserted: [[UInt8]]) {
        self.oldRange = oldRange
        self.newRange = newRange
        self.removed = removed
        self.inserted = inserted
    }
}

/// A change as the diff walk finds it, with values in their stored form.
struct StoredMapChange {
    var key: ArraySlice<UInt8>
    var old: ArraySlice<UInt8>?
    var new: ArraySlice<UInt8>?
}

/// Walks one tree for a diff: its next item is either a whole subtree, which the diff skips when
/// the other side's next item is the identical subtree, or a leaf entry.
private struct DiffWalker {
    enum Head {
        case end
        /// A subtree, named by its chunk key (read in place: equal keys, equal subtrees).
        case subtree(level: Int, key: ArraySlice<UInt8>)
        case entry(key: ArraySlice<UInt8>, value: ArraySlice<UInt8>)
    }

    private var stack: [(node: TreeNode, index: Int)]
    private let source: any NodeSource
    /// Leaf entries passed so far (skipped subtrees count in full).
    private(set) var position = 0

    init(root: TreeNode, source: any NodeSource) {
        stack = [(root, 0)]
        self.source = source
    }

    mutating func head() -> Head {
        while let top = stack.last, top.index >= top.node.count { stack.removeLast() }
        guard let (node, index) = stack.last else { return .end }
        if node.isLeaf { return .entry(key: node.key(at: index), value: node.value(at: index)) }
        return .subtree(level: node.level - 1, key: node.childKeyBytes(at: index))
    }

    /// Passes the head item (a whole subtree, or one entry).
    mutating func skip() {
        let (node, index) = stack[stack.count - 1]
        position += node.isLeaf ? 1 : Int(node.childCount(at: index))
        stack[stack.count - 1].index += 1
    }

    /// Replaces a subtree head by its children.
    mutating func expand() async throws {
        let (node, index) = stack[stack.count - 1]
        let child = try await source.child(of: node, at: index)
        stack[stack.count - 1].index += 1
        stack.append((child, 0))
    }
}

extension TreeReader {
    /// The differences from `old` to `new`, in key order. Subtrees the two versions share are
    /// skipped without being loaded, so the cost is about (changes × depth) nodes.
    public func diff(_ old: TreeRoot, _ new: TreeRoot, _ visit: (MapChange) throws -> Void) async throws {
        // Streamed: memory stays at a path of nodes per side, however many changes there are.
        try await storedDiff(old, new) { change in
            let key = Array(change.key)
            switch (change.old, change.new) {
            case let (old?, new?):
                try visit(.changed(key: key, old: try await store.value(fromStored: old), new: try await store.value(fromStored: new)))
            case let (old?, nil): try visit(.removed(key: key, value: try await store.value(fromStored: old)))
            case let (nil, new?): try visit(.added(key: key, value: try await store.value(fromStored: new)))
            case (nil, nil): break
            }
        }
    }

    /// The map diff with values in their stored form.
    func storedDiff(_ old: TreeRoot, _ new: TreeRoot, _ visit: (StoredMapChange) async throws -> Void) async throws {
        try Self.requireKind(.map, old)
        try Self.requireKind(.map, new)
        guard old.pointer.key != new.pointer.key else { return }
        var a = DiffWalker(root: try await source.rootNode(of: old), source: source)
        var b = DiffWalker(root: try await source.rootNode(of: new), source: source)
        while true {
            switch (a.head(), b.head()) {
            case (.end, .end):
                return
            case let (.subtree(levelA, keyA), .subtree(levelB, keyB)):
                if TreeNode.compare(keyA, keyB) == 0 {
                    a.skip()
                    b.skip()
                } else if levelA > levelB {
                    try await a.expand()
                } else if levelB > levelA {
                    try await b.expand()
                } else {
                    try await a.expand()
                    try await b.expand()
                }
            case (.subtree, _):
                try await a.expand()
            case (_, .subtree):
                try await b.expand()
            case let (.entry(keyA, valueA), .entry(keyB, valueB)):
                let order = TreeNode.compare(keyA, keyB)
                if order < 0 {
                    try await visit(StoredMapChange(key: keyA, old: valueA, new: nil))
                    a.skip()
                } else if order > 0 {
                    try await visit(StoredMapChange(key: keyB, old: nil, new: valueB))
                    b.skip()
                } else {
                    if !valueA.elementsEqual(valueB) { try await visit(StoredMapChange(key: keyA, old: valueA, new: valueB)) }
                    a.skip()
                    b.skip()
                }
            case let (.entry(key, value), .end):
                try await visit(StoredMapChange(key: key, old: value, new: nil))
                a.skip()
            case let (.end, .entry(key, value)):
                try await visit(StoredMapChange(key: key, old: nil, new: value))
                b.skip()
            }
        }
    }

    /// The differences from `old` to `new` as hunks in order. Shared subtrees are skipped; the
    /// elements between two shared stretches are matched with Myers' algorithm.
    public func diff(_ old: TreeRoot, _ new: TreeRoot, _ visit: (ListChange) throws -> Void) async throws {
        var hunks: [StoredListHunk] = []
        try await storedListDiff(old, new) { hunks.append($0) }
        for hunk in hunks {
            var removed: [[UInt8]] = []
            for element in hunk.removed { removed.append(try await store.value(fromStored: element)) }
            var inserted: [[UInt8]] = []
            for element in hunk.inserted { inserted.append(try await store.value(fromStored: element)) }
            try visit(ListChange(oldRange: hunk.oldRange, newRange: hunk.newRange, removed: removed, inserted: inserted))
        }
    }

    func storedListDiff(_ old: TreeRoot, _ new: TreeRoot, _ visit: (StoredListHunk) throws -> Void) async throws {
        try Self.requireKind(.list, old)
        try Self.requireKind(.list, new)
        guard old.pointer.key != new.pointer.key else { return }
        var a = DiffWalker(root: try await source.rootNode(of: old), source: source)
        var b = DiffWalker(root: try await source.rootNode(of: new), source: source)
        // The elements passed on each side since the two were last in step.
        var regionA: [ArraySlice<UInt8>] = []
        var regionB: [ArraySlice<UInt8>] = []
        var startA = 0
        var startB = 0
        func closeRegion() throws {
            try ListMatcher.hunks(regionA, regionB, oldStart: startA, newStart: startB, visit)
            regionA = []
            regionB = []
        }
        while true {
            switch (a.head(), b.head()) {
            case (.end, .end):
                try closeRegion()
                return
            case let (.subtree(levelA, keyA), .subtree(levelB, keyB)):
                if TreeNode.compare(keyA, keyB) == 0 {
                    try closeRegion()
                    a.skip()
                    b.skip()
                    startA = a.position
                    startB = b.position
                } else if levelA != levelB {
                    if levelA > levelB { try await a.expand() } else { try await b.expand() }
                } else {
                    // Open the side that is behind: the other may be waiting at a shared subtree.
                    if a.position <= b.position { try await a.expand() }
                    if b.position <= a.position { try await b.expand() }
                }
            case (.subtree, .end):
                try await a.expand()
            case (.end, .subtree):
                try await b.expand()
            case let (.subtree, .entry(_, value)):
                // Keep the subtree whole: the entries on the other side may lead up to its twin.
                regionB.append(value)
                b.skip()
            case let (.entry(_, value), .subtree):
                regionA.append(value)
                a.skip()
            case let (.entry(_, valueA), .entry(_, valueB)):
                let (positionA, positionB) = (a.position, b.position)
                if positionA <= positionB {
                    regionA.append(valueA)
                    a.skip()
                }
                if positionB <= positionA {
                    regionB.append(valueB)
                    b.skip()
                }
            case let (.entry(_, value), .end):
                regionA.append(value)
                a.skip()
            case let (.end, .entry(_, value)):
                regionB.append(value)
                b.skip()
            }
        }
    }
}

/// A list hunk with elements in their stored form.
struct StoredListHunk {
    var oldRange: Range<Int>
    var newRange: Range<Int>
    var removed: [ArraySlice<UInt8>]
    var inserted: [ArraySlice<UInt8>]
}

/// Matches two runs of elements with Myers' O(ND) algorithm and reports what differs as hunks.
enum ListMatcher {
    /// Above this many edit steps the runs are reported as one replacement, so a list rewritten
    /// wholesale costs linear time rather than quadratic.
    static let maximumEditDistance = 1024

    static func hunks(
        _ old: [ArraySlice<UInt8>], _ new: [ArraySlice<UInt8>], oldStart: Int, newStart: Int,
        _ visit: (StoredListHunk) throws -> Void
    ) throws {
        // Trim the common ends first: most regions differ only in their middle.
        var prefix = 0
        while prefix < old.count && prefix < new.count && old[prefix] == new[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < old.count - prefix && suffix < new.count - prefix
            && old[old.count - 1 - suffix] == new[new.count - 1 - suffix]
        {
            suffix += 1
        }
        let a = Array(old[prefix..<(old.count - suffix)])
        let b = Array(new[prefix..<(new.count - suffix)])
        guard !(a.isEmpty && b.isEmpty) else { return }
        let matches = matchingPairs(a, b) ?? []
        // Walk the matches; everything between two of them is a hunk.
        var i = 0
        var j = 0
        for (matchA, matchB) in matches + [(a.count, b.count)] {
            if i < matchA || j < matchB {
                try visit(StoredListHunk(
                    oldRange: (oldStart + prefix + i)..<(oldStart + prefix + matchA),
                    newRange: (newStart + prefix + j)..<(newStart + prefix + matchB),
                    removed: Array(a[i..<matchA]), inserted: Array(b[j..<matchB])))
            }
            i = matchA + 1
            j = matchB + 1
        }
    }

    /// Index pairs of a longest common subsequence, or nil past ``maximumEditDistance``.
    private static func matchingPairs(_ a: [ArraySlice<UInt8>], _ b: [ArraySlice<UInt8>]) -> [(Int, Int)]? {
        let n = a.count
        let m = b.count
        // The edit distance is at least the difference in length.
        guard abs(n - m) <= maximumEditDistance else { return nil }
        let maximum = min(n + m, maximumEditDistance)
        let offset = maximum + 1
        var frontier = [Int](repeating: 0, count: 2 * maximum + 3)
        var trace: [[Int]] = []
        for distance in 0...maximum {
            trace.append(frontier)
            for diagonal in stride(from: -distance, through: distance, by: 2) {
                var x: Int
                if diagonal == -distance || (diagonal != distance && frontier[offset + diagonal - 1] < frontier[offset + diagonal + 1]) {
                    x = frontier[offset + diagonal + 1]
                } else {
                    x = frontier[offset + diagonal - 1] + 1
                }
                var y = x - diagonal
                while x < n && y < m && a[x] == b[y] {
                    x += 1
                    y += 1
                }
                frontier[offset + diagonal] = x
                if x >= n && y >= m {
                    return backtrack(trace: trace, distance: distance, offset: offset, n: n, m: m)
                }
            }
        }
        return nil
    }

    private static func backtrack(
        trace: [[Int]], distance: Int, offset: Int, n: Int, m: Int
    ) -> [(Int, Int)] {
        var pairs: [(Int, Int)] = []
        var x = n
        var y = m
        for step in stride(from: distance, to: 0, by: -1) {
            let frontier = trace[step]
            let diagonal = x - y
            let previous: Int
            if diagonal == -step || (diagonal != step && frontier[offset + diagonal - 1] < frontier[offset + diagonal + 1]) {
                previous = diagonal + 1
            } else {
                previous = diagonal - 1
            }
            let previousX = frontier[offset + previous]
            let previousY = previousX - previous
            let startX = previous == diagonal + 1 ? previousX : previousX + 1
            let startY = startX - diagonal
            // The snake after the step: matched pairs.
            var sx = x
            var sy = y
            while sx > startX && sy > startY {
                sx -= 1
                sy -= 1
                pairs.append((sx, sy))
            }
            x = previousX
            y = previousY
        }
        while x > 0 && y > 0 {
            x -= 1
            y -= 1
            pairs.append((x, y))
        }
        return pairs.reversed()
    }
}
