import InfinityChunks

extension TreeStore {
    /// Visits the nodes of a tree depth first, children in order, and the entries of every leaf
    /// it enters: for tools that must see every chunk a tree uses (reachability, checks), not for
    /// reads (``TreeReader`` is the way to read).
    ///
    /// Each node is checked as it is read: it must decode and fit under its parent (level, kind,
    /// salt, size and last key), as for any read.
    ///
    /// - Parameters:
    ///   - enter: called with each node's chunk and level before the node is read; returns false
    ///     to skip the node and everything below it (a subtree already seen).
    ///   - entry: called with each leaf entry's key (empty in lists) and stored value, in order.
    ///   - failed: called when a node entered cannot be read or does not fit; return to skip it
    ///     and go on with its siblings, or throw to stop the walk.
    public func walk(
        _ root: TreeRoot,
        enter: (_ node: ChunkRef, _ level: Int) async throws -> Bool,
        entry: (_ key: ArraySlice<UInt8>, _ stored: ArraySlice<UInt8>) async throws -> Void,
        failed: (_ node: ChunkRef, _ error: any Error) async throws -> Void
    ) async throws {
        let rootRef = root.pointer.chunkRef
        guard try await enter(rootRef, root.level) else { return }
        let node: TreeNode
        do {
            node = try await rootNode(of: root)
        } catch {
            try await failed(rootRef, error)
            return
        }
        try await walk(below: node, enter: enter, entry: entry, failed: failed)
    }

    private func walk(
        below node: TreeNode,
        enter: (ChunkRef, Int) async throws -> Bool,
        entry: (ArraySlice<UInt8>, ArraySlice<UInt8>) async throws -> Void,
        failed: (ChunkRef, any Error) async throws -> Void
    ) async throws {
        if node.isLeaf {
            for index in 0..<node.count { try await entry(node.key(at: index), node.value(at: index)) }
            return
        }
        for index in 0..<node.count {
            let ref = node.pointer(at: index).chunkRef
            guard try await enter(ref, node.level - 1) else { continue }
            let child: TreeNode
            do {
                child = try await self.child(of: node, at: index)
            } catch {
                try await failed(ref, error)
                continue
            }
            try await walk(below: child, enter: enter, entry: entry, failed: failed)
        }
    }
}
