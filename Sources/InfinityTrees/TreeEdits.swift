extension TreeWriter {
    // MARK: Maps

    /// Sets and removes keys of a map; for a key given more than once, the last edit wins.
    /// Rewrites about (edits × depth) nodes. Values longer than ``TreeStore/inlineValueLimit``
    /// are stored as blobs of their own.
    ///
    /// - Parameter edits: `(key, value)`; a nil value removes the key.
    public func apply(_ edits: [(key: [UInt8], value: [UInt8]?)], to root: TreeRoot) async throws -> TreeRoot {
        var buffer = MapEditBuffer()
        for (key, value) in edits { try buffer.append(key: key, value: value) }
        return try await apply(buffer, to: root)
    }

    /// Applies buffered edits of a map (the last edit of each key). Rewrites about
    /// (keys edited × depth) nodes.
    public func apply(_ buffer: MapEditBuffer, to root: TreeRoot) async throws -> TreeRoot {
        try TreeReader.requireKind(.map, root)
        let records = buffer.lastEditsInKeyOrder()
        // Values too long to stay inline are stored as blobs first; the rest are read in place.
        var blobValues: [Int: ArraySlice<UInt8>] = [:]
        for (position, record) in records.enumerated() where !record.isStoredForm {
            if let raw = buffer.storedBytes(of: record) { blobValues[position] = try await storedForm(of: Array(raw))[...] }
        }
        let edits = records.indices.lazy.map { position in
            MapEdit(
                key: buffer.key(of: records[position]),
                value: (blobValues.isEmpty ? nil : blobValues[position]) ?? buffer.storedBytes(of: records[position]))
        }
        return try await apply(sortedEdits: edits, to: root)
    }

    /// Applies edits whose values are in their stored form, sorted by key with no key twice.
    func apply(sortedEdits edits: some Sequence<MapEdit>, to root: TreeRoot) async throws -> TreeRoot {
        try TreeReader.requireKind(.map, root)
        if root.count == 0 { return try await build(sortedEdits: edits, replacing: root) }
        return try await apply(try await splices(for: edits, in: root), to: root)
    }

    /// A map filled from empty (a first load or import): the entries go straight into leaves,
    /// with no splices to gather them in first. The nodes are those the splices would give,
    /// since the boundary rule sees the same entries in the same order.
    private func build(sortedEdits edits: some Sequence<MapEdit>, replacing root: TreeRoot) async throws -> TreeRoot {
        let rootNode = try await rootNode(of: root)
        let format = try format(of: rootNode)
        var builder = NodeBuilder(kind: .map, level: 0, salt: rootNode.salt, format: format)
        var leaves: [TreeEntry] = []
        // Removals have nothing to remove.
        for edit in edits {
            if let value = edit.value, builder.append(TreeEntry(key: edit.key, value: value, subtreeCount: 1)) {
                leaves.append(try finishNode(&builder).entry)
            }
        }
        if !builder.isEmpty { leaves.append(try finishNode(&builder).entry) }
        guard !leaves.isEmpty else { return root }
        return try await buildTop(from: leaves, level: 1, kind: .map, salt: rootNode.salt, format: format)
    }

    /// Keys are bounded so that nodes are too: an internal node of two children with keys this
    /// long is about the largest node size of format 2.
    public static let maximumKeyLength = 2048

    /// Turns sorted, unique map edits into leaf splices, descending once per edit but reusing the
    /// path of the previous edit while the key stays within its subtree.
    func splices(for edits: some Sequence<MapEdit>, in root: TreeRoot) async throws -> [Splice] {
        var splices: [Splice] = []
        // Each frame: a node on the current path and the last key its subtree may hold (nil on
        // the right edge of the tree, which takes any larger key).
        var stack: [(node: TreeNode, bound: ArraySlice<UInt8>?)] = [(try await rootNode(of: root), nil)]
        var path: [Int] = []
        for edit in edits {
            let key = edit.key
            while stack.count > 1, let bound = stack[stack.count - 1].bound, TreeNode.compare(key, bound) > 0 {
                stack.removeLast()
                path.removeLast()
            }
            while !stack[stack.count - 1].node.isLeaf {
                let node = stack[stack.count - 1].node
                let found = node.lowerBound(key)
                let index = min(found, node.count - 1)
                let bound = found < node.count ? node.key(at: found) : stack[stack.count - 1].bound
                stack.append((try await child(of: node, at: index), bound))
                path.append(index)
            }
            let leaf = stack[stack.count - 1].node
            let position = leaf.lowerBound(key)
            let exists = position < leaf.count && TreeNode.compare(leaf.key(at: position), key) == 0
            if exists, let value = edit.value, leaf.value(at: position).elementsEqual(value) { continue }
            if !exists && edit.value == nil { continue }
            // Edits at one position (new keys between the same two old ones) share a splice.
            if let last = splices.last, last.starts(atNode: path, index: position) {
                if let value = edit.value {
                    splices[splices.count - 1].inserts.append(TreeEntry(key: key, value: value, subtreeCount: 1))
                }
                splices[splices.count - 1].deleteCount += exists ? 1 : 0
            } else {
                var start = path
                start.append(position)
                let inserts = edit.value.map { [TreeEntry(key: key, value: $0, subtreeCount: 1)] } ?? []
                splices.append(Splice(start: start, deleteCount: exists ? 1 : 0, inserts: inserts))
            }
        }
        return splices
    }

    // MARK: Lists

    /// Replaces the elements in `range` with `elements` (an insertion when the range is empty, a
    /// removal when `elements` is). Rewrites about (changed nodes × depth) nodes.
    public func replaceSubrange(_ range: Range<Int>, with elements: [[UInt8]], in root: TreeRoot) async throws -> TreeRoot {
        try TreeReader.requireKind(.list, root)
        guard range.lowerBound >= 0 && range.upperBound <= root.count else {
            throw TreeError(.invalidArgument, "range \(range) is outside a list of \(root.count) elements")
        }
        guard !(range.isEmpty && elements.isEmpty) else { return root }
        var inserts: [TreeEntry] = []
        inserts.reserveCapacity(elements.count)
        for element in elements {
            inserts.append(TreeEntry(key: [], value: try await storedForm(of: element)[...], subtreeCount: 1))
        }
        let start = try await path(toPosition: range.lowerBound, in: root)
        return try await apply([Splice(start: start, deleteCount: range.count, inserts: inserts)], to: root)
    }

    /// Appends elements at the end of a list.
    public func append(contentsOf elements: [[UInt8]], to root: TreeRoot) async throws -> TreeRoot {
        try await replaceSubrange(root.count..<root.count, with: elements, in: root)
    }

    /// The splice path of a list position: child indices by subtree counts, then the position in
    /// the leaf (which may be the leaf's end, for the list's end).
    private func path(toPosition position: Int, in root: TreeRoot) async throws -> [Int] {
        var node = try await rootNode(of: root)
        var remaining = UInt64(position)
        var path: [Int] = []
        while !node.isLeaf {
            let index = node.childIndex(forPosition: &remaining)
            path.append(index)
            node = try await child(of: node, at: index)
        }
        path.append(Int(remaining))
        return path
    }
}
