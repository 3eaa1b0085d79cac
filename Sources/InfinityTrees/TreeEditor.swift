/// A run of changes to one level of a tree: at `start` — the child index taken at each internal
/// node from the root down, then a position inside the node — insert `inserts`, then drop the
/// `deleteCount` entries that follow (possibly running on into the next nodes).
struct Splice {
    var start: [Int]
    var deleteCount: Int
    var inserts: [TreeEntry]

    /// Whether this splice starts at position `index` of the node reached by `nodePath`.
    @inline(__always)
    func starts(atNode nodePath: [Int], index: Int) -> Bool {
        guard start.count == nodePath.count + 1, start[nodePath.count] == index else { return false }
        for level in 0..<nodePath.count where start[level] != nodePath[level] { return false }
        return true
    }
}

/// The nodes from the root down to one node at a given depth, able to move to the next node of
/// that level (the level's nodes, left to right, are the tree's content at that level).
struct LevelCursor {
    private(set) var nodes: [TreeNode]
    /// The pointer to each node on the stack; the first is the root's.
    private(set) var pointers: [NodePointer]
    /// The child index taken at each internal node on the stack.
    private(set) var path: [Int] = []
    let depth: Int

    init(root: TreeNode, pointer: NodePointer, depth: Int) {
        nodes = [root]
        pointers = [pointer]
        self.depth = depth
    }

    var node: TreeNode { nodes[nodes.count - 1] }
    var pointer: NodePointer { pointers[pointers.count - 1] }

    /// Moves to the node reached by `target` (one child index per level), reusing the part of the
    /// path it shares with the current one.
    mutating func seek(_ target: [Int], in source: some NodeSource) async throws {
        precondition(target.count == depth, "a level cursor seeks a path as deep as its level")
        var common = 0
        while common < path.count && path[common] == target[common] { common += 1 }
        nodes.removeSubrange((common + 1)...)
        pointers.removeSubrange((common + 1)...)
        path.removeSubrange(common...)
        for level in common..<depth {
            let parent = nodes[level]
            guard target[level] < parent.count else {
                throw TreeError(.invalidArgument, "a tree edit refers to child \(target[level]) of a node with \(parent.count)")
            }
            nodes.append(try await source.child(of: parent, at: target[level]))
            pointers.append(parent.pointer(at: target[level]))
            path.append(target[level])
        }
    }

    /// Moves to the next node of the level; false at the level's last node.
    mutating func advance(in source: some NodeSource) async throws -> Bool {
        var level = depth - 1
        while level >= 0 && path[level] + 1 >= nodes[level].count { level -= 1 }
        guard level >= 0 else { return false }
        var target = Array(path[..<level])
        target.append(path[level] + 1)
        target += repeatElement(0, count: depth - level - 1)
        try await seek(target, in: source)
        return true
    }
}

/// One change to a map: set `key` to a stored value, or remove it (`value == nil`).
struct MapEdit {
    var key: ArraySlice<UInt8>
    var value: ArraySlice<UInt8>?
}

extension TreeWriter {
    /// Applies splices of leaf entries to a tree, rewriting only the nodes around each splice
    /// and their ancestors: about (splices × depth) nodes, however large the tree.
    ///
    /// Each level is re-chunked from the start of the first node a splice touches until the new
    /// boundaries fall back in step with the old ones; the nodes replaced and written become the
    /// splices of the level above.
    func apply(_ leafSplices: [Splice], to root: TreeRoot) async throws -> TreeRoot {
        guard !leafSplices.isEmpty else { return root }
        let rootNode = try await rootNode(of: root)
        let format = try format(of: rootNode)
        var splices = leafSplices
        for level in 0...root.level {
            splices = try await rewrite(
                level: level, splices: splices, root: rootNode, rootPointer: root.pointer, rootLevel: root.level, format: format)
            if splices.isEmpty { return root }
        }
        // What replaced the old root: zero, one or several nodes of its level.
        return try await buildTop(from: splices[0].inserts, level: root.level + 1, kind: root.kind, salt: rootNode.salt, format: format)
    }

    private func rewrite(
        level: Int, splices: [Splice], root: TreeNode, rootPointer: NodePointer, rootLevel: Int, format: TreeFormat
    ) async throws -> [Splice] {
        var cursor = LevelCursor(root: root, pointer: rootPointer, depth: rootLevel - level)
        var builder = NodeBuilder(kind: root.kind, level: level, salt: root.salt, format: format)
        var output: [Splice] = []
        var next = 0
        var lastConsumed: [Int]? = nil
        while next < splices.count {
            let regionStart = Array(splices[next].start.dropLast())
            if let lastConsumed, !lastConsumed.lexicographicallyPrecedes(regionStart) {
                throw TreeError(.invalidArgument, "tree edits are out of order at level \(level)")
            }
            try await cursor.seek(regionStart, in: self)
            var consumed: [NodePointer] = []
            var emitted: [TreeEntry] = []
            var emittedPointers: [NodePointer] = []
            var skip = 0

            func emit() throws {
                let (entry, pointer) = try finishNode(&builder)
                emitted.append(entry)
                emittedPointers.append(pointer)
            }

            while true {
                let node = cursor.node
                let nodePath = cursor.path
                for index in 0...node.count {
                    while next < splices.count && splices[next].starts(atNode: nodePath, index: index) {
                        for entry in splices[next].inserts where builder.append(entry) { try emit() }
                        skip += splices[next].deleteCount
                        next += 1
                    }
                    if index == node.count { break }
                    if skip > 0 {
                        skip -= 1
                        continue
                    }
                    if builder.append(node.entry(at: index)) { try emit() }
                }
                consumed.append(cursor.pointer)
                lastConsumed = nodePath
                // Back in step: this node ended where a new one ended, with nothing left to drop.
                if builder.isEmpty && skip == 0 { break }
                if try await !cursor.advance(in: self) {
                    guard skip == 0 else {
                        throw TreeError(.invalidArgument, "a tree edit removes \(skip) entries past the end")
                    }
                    if !builder.isEmpty { try emit() }
                    break
                }
            }
            if consumed != emittedPointers {
                output.append(Splice(start: regionStart, deleteCount: consumed.count, inserts: emitted))
            }
        }
        return output
    }

    /// Ends the builder's node and returns the entry that points to it from the level above.
    func finishNode(_ builder: inout NodeBuilder) throws -> (entry: TreeEntry, pointer: NodePointer) {
        let (_, pointer, lastKey) = try makeNode(&builder)
        var value: [UInt8] = []
        pointer.append(to: &value)
        return (TreeEntry(key: lastKey, value: value[...], subtreeCount: pointer.count), pointer)
    }

    /// Builds the levels above `entries` (pointers to nodes one level below `level`) until one
    /// node remains, then drops any chain of single-child nodes at the top: a tree's root is the
    /// lowest level that fits in one node, so the same contents always give the same root.
    func buildTop(
        from entries: [TreeEntry], level: Int, kind: TreeKind, salt: ArraySlice<UInt8>, format: TreeFormat
    ) async throws -> TreeRoot {
        var entries = entries
        var level = level
        while entries.count > 1 {
            var builder = NodeBuilder(kind: kind, level: level, salt: salt, format: format)
            var next: [TreeEntry] = []
            func emit() throws { next.append(try finishNode(&builder).entry) }
            for entry in entries where builder.append(entry) { try emit() }
            if !builder.isEmpty { try emit() }
            entries = next
            level += 1
        }
        guard let top = entries.first else { return try emptyTree(kind, salt: salt, format: format) }
        var reader = ByteReader(Array(top.value))
        guard var pointer = NodePointer.read(from: &reader) else {
            throw TreeError(.malformedNode, "a rewritten tree produced an unreadable root pointer")
        }
        var rootLevel = level - 1
        var node = try await self.node(pointer)
        while rootLevel > 0 && node.count == 1 {
            pointer = node.pointer(at: 0)
            node = try await child(of: node, at: 0)
            rootLevel -= 1
        }
        return TreeRoot(kind: kind, level: rootLevel, pointer: pointer)
    }
}
