/// Reads maps and lists: point reads, ordered scans and positions. Obtained from a
/// ``TreeStore`` (stored trees) or a ``TreeWriter`` (which also sees its nodes not yet stored).
///
/// Nothing is loaded up front: a point read loads the nodes on one root-to-leaf path, through
/// the store's bounded node cache.
public struct TreeReader: Sendable {
    let source: any NodeSource
    public let store: TreeStore

    init(source: any NodeSource, store: TreeStore) {
        self.source = source
        self.store = store
    }

    // MARK: Maps

    /// The value stored under `key`, or nil.
    public func value(forKey key: [UInt8], in root: TreeRoot) async throws -> [UInt8]? {
        guard let stored = try await storedValue(forKey: key[...], in: root) else { return nil }
        if let inline = TreeStore.inlineValue(stored) { return inline }
        return try await store.value(fromStored: stored)
    }

    /// The value under `key` in the form the leaf keeps it (inline, or a blob reference).
    func storedValue(forKey key: ArraySlice<UInt8>, in root: TreeRoot) async throws -> ArraySlice<UInt8>? {
        try Self.requireKind(.map, root)
        var node = try await source.rootNode(of: root)
        while !node.isLeaf {
            let index = node.lowerBound(key)
            guard index < node.count else { return nil }
            node = try await source.child(of: node, at: index)
        }
        let index = node.lowerBound(key)
        guard index < node.count, TreeNode.compare(node.key(at: index), key) == 0 else { return nil }
        return node.value(at: index)
    }

    /// Visits entries in key order, starting at the first key ≥ `start` (or the first key) and
    /// stopping before `end` (or at the last key); `visit` returns false to stop early.
    public func forEachEntry(
        in root: TreeRoot, from start: [UInt8]? = nil, before end: [UInt8]? = nil,
        _ visit: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool
    ) async throws {
        try Self.requireKind(.map, root)
        var iterator = try await EntryIterator(root: root, source: source, seekKey: start.map { $0[...] })
        while let (key, stored) = try await iterator.next() {
            if let end, TreeNode.compare(key, end[...]) >= 0 { return }
            guard try visit(Array(key), try await store.value(fromStored: stored)) else { return }
        }
    }

    // MARK: Lists

    /// The element at `position` (0-based).
    public func element(at position: Int, in root: TreeRoot) async throws -> [UInt8] {
        try Self.requireKind(.list, root)
        guard position >= 0 && position < root.count else {
            throw TreeError(.invalidArgument, "position \(position) is outside a list of \(root.count) elements")
        }
        var iterator = try await EntryIterator(root: root, source: source, seekPosition: position)
        guard let (_, stored) = try await iterator.next() else {
            throw TreeError(.malformedNode, "a list of \(root.count) elements has no element \(position)")
        }
        return try await store.value(fromStored: stored)
    }

    /// Visits the elements in `range` in order; `visit` returns false to stop early.
    public func forEachElement(
        in root: TreeRoot, range: Range<Int>? = nil, _ visit: (_ position: Int, _ element: [UInt8]) throws -> Bool
    ) async throws {
        try Self.requireKind(.list, root)
        let range = range ?? 0..<root.count
        guard range.lowerBound >= 0 && range.upperBound <= root.count else {
            throw TreeError(.invalidArgument, "range \(range) is outside a list of \(root.count) elements")
        }
        guard !range.isEmpty else { return }
        var iterator = try await EntryIterator(root: root, source: source, seekPosition: range.lowerBound)
        for position in range {
            guard let (_, stored) = try await iterator.next() else {
                throw TreeError(.malformedNode, "a list of \(root.count) elements ends before element \(position)")
            }
            guard try visit(position, try await store.value(fromStored: stored)) else { return }
        }
    }

    static func requireKind(_ kind: TreeKind, _ root: TreeRoot) throws {
        guard root.kind == kind else { throw TreeError(.invalidArgument, "a \(root.kind) was used as a \(kind)") }
    }
}

extension TreeStore {
    /// Reads stored trees.
    public var reader: TreeReader { TreeReader(source: self, store: self) }
}

extension TreeWriter {
    /// Reads trees, including this writer's nodes that are not stored yet.
    public var reader: TreeReader { TreeReader(source: self, store: store) }
}

/// Walks a tree's leaf entries in order from a starting key or position, loading one node at a
/// time: a stack of nodes with the next index to visit in each.
struct EntryIterator {
    private var stack: [(node: TreeNode, next: Int)] = []
    private let source: any NodeSource

    /// Positioned at the first entry whose key is ≥ `seekKey` (the first entry if nil).
    init(root: TreeRoot, source: any NodeSource, seekKey: ArraySlice<UInt8>?) async throws {
        self.source = source
        var node = try await source.rootNode(of: root)
        while true {
            let index = seekKey.map { node.lowerBound($0) } ?? 0
            if node.isLeaf || index >= node.count {
                stack.append((node, index))
                return
            }
            stack.append((node, index + 1))
            source.prefetchLeaves(of: node, from: index)
            node = try await source.child(of: node, at: index)
        }
    }

    /// Positioned at the entry with 0-based position `seekPosition`.
    init(root: TreeRoot, source: any NodeSource, seekPosition: Int) async throws {
        self.source = source
        var node = try await source.rootNode(of: root)
        var remaining = UInt64(seekPosition)
        while !node.isLeaf {
            let index = node.childIndex(forPosition: &remaining)
            stack.append((node, index + 1))
            node = try await source.child(of: node, at: index)
        }
        stack.append((node, Int(min(remaining, UInt64(node.count)))))
    }

    /// The next (key, stored value), or nil at the end.
    mutating func next() async throws -> (ArraySlice<UInt8>, ArraySlice<UInt8>)? {
        while let (node, index) = stack.last {
            guard index < node.count else {
                stack.removeLast()
                continue
            }
            stack[stack.count - 1].next = index + 1
            if node.isLeaf { return (node.key(at: index), node.value(at: index)) }
            let child = try await source.child(of: node, at: index)
            source.prefetchLeaves(of: child, from: 0)
            stack.append((child, 0))
        }
        return nil
    }
}
