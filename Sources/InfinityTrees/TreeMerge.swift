/// A key both sides of a merge changed, differently. `nil` means absent on that side.
public struct MapConflict: Sendable, Hashable {
    public let key: [UInt8]
    public let base: [UInt8]?
    public let ours: [UInt8]?
    public let theirs: [UInt8]?
}

/// A stretch of a list both sides of a merge changed, differently: the elements of the
/// overlapping stretch in the base, in ours and in theirs.
public struct ListConflict: Sendable, Hashable {
    public let base: [[UInt8]]
    public let ours: [[UInt8]]
    public let theirs: [[UInt8]]
}

extension TreeWriter {
    /// Three-way merge of maps: `theirs`' changes since `base` applied to `ours`. A key changed
    /// on both sides to different values is a conflict; `resolve` returns the value to keep
    /// (nil removes the key). Costs about (changes × depth) nodes.
    public func merge(
        base: TreeRoot, ours: TreeRoot, theirs: TreeRoot, resolve: (MapConflict) async throws -> [UInt8]?
    ) async throws -> TreeRoot {
        if ours == theirs || base == theirs { return ours }
        if base == ours { return theirs }
        var ourChanges: [StoredMapChange] = []
        try await reader.storedDiff(base, ours) { ourChanges.append($0) }
        var theirChanges: [StoredMapChange] = []
        try await reader.storedDiff(base, theirs) { theirChanges.append($0) }
        var edits: [MapEdit] = []
        var next = 0
        for change in theirChanges {
            while next < ourChanges.count && TreeNode.compare(ourChanges[next].key, change.key) < 0 { next += 1 }
            guard next < ourChanges.count, TreeNode.compare(ourChanges[next].key, change.key) == 0 else {
                edits.append(MapEdit(key: change.key, value: change.new))
                continue
            }
            let ourChange = ourChanges[next]
            if ourChange.new.map(Array.init) == change.new.map(Array.init) { continue }
            func resolved(_ stored: ArraySlice<UInt8>?) async throws -> [UInt8]? {
                guard let stored else { return nil }
                return try await store.value(fromStored: stored)
            }
            let conflict = MapConflict(
                key: Array(change.key), base: try await resolved(change.old), ours: try await resolved(ourChange.new),
                theirs: try await resolved(change.new))
            let value = try await resolve(conflict)
            if value == conflict.ours { continue }
            var stored: [UInt8]? = nil
            if let value { stored = try await storedForm(of: value) }
            edits.append(MapEdit(key: change.key, value: stored?[...]))
        }
        // The changes come from diffs, in key order, each key once.
        return try await apply(sortedEdits: edits, to: ours)
    }

    /// Three-way merge of lists, as diff3 does for lines: `theirs`' hunks since `base` are applied
    /// to `ours` where ours left that stretch alone; where both changed overlapping stretches
    /// differently, `resolve` returns the elements to put there.
    public func merge(
        base: TreeRoot, ours: TreeRoot, theirs: TreeRoot, resolve: (ListConflict) async throws -> [[UInt8]]
    ) async throws -> TreeRoot {
        if ours == theirs || base == theirs { return ours }
        if base == ours { return theirs }
        var ourHunks: [StoredListHunk] = []
        try await reader.storedListDiff(base, ours) { ourHunks.append($0) }
        var theirHunks: [StoredListHunk] = []
        try await reader.storedListDiff(base, theirs) { theirHunks.append($0) }

        // Group hunks whose base stretches overlap or touch at an insertion point; each group
        // becomes one replacement in ours, computed in ours' coordinates.
        struct Group {
            var baseRange: Range<Int>
            var ours: [StoredListHunk] = []
            var theirs: [StoredListHunk] = []
        }
        func overlaps(_ range: Range<Int>, _ group: Range<Int>) -> Bool {
            range.lowerBound < group.upperBound || (range.lowerBound == group.upperBound && (range.isEmpty || group.isEmpty))
        }
        let tagged = (ourHunks.map { ($0, true) } + theirHunks.map { ($0, false) }).sorted {
            ($0.0.oldRange.lowerBound, $0.0.oldRange.upperBound) < ($1.0.oldRange.lowerBound, $1.0.oldRange.upperBound)
        }
        var groups: [Group] = []
        for (hunk, isOurs) in tagged {
            if let last = groups.last, overlaps(hunk.oldRange, last.baseRange) {
                let range = last.baseRange.lowerBound..<max(last.baseRange.upperBound, hunk.oldRange.upperBound)
                groups[groups.count - 1].baseRange = range
            } else {
                groups.append(Group(baseRange: hunk.oldRange))
            }
            if isOurs { groups[groups.count - 1].ours.append(hunk) } else { groups[groups.count - 1].theirs.append(hunk) }
        }

        // Replacements in ours, worked out front to back, applied back to front so earlier
        // positions stay valid.
        var replacements: [(range: Range<Int>, elements: [[UInt8]])] = []
        var ourShift = 0
        var theirShift = 0
        for group in groups {
            let ourDelta = group.ours.reduce(0) { $0 + $1.inserted.count - $1.removed.count }
            let theirDelta = group.theirs.reduce(0) { $0 + $1.inserted.count - $1.removed.count }
            let ourRange = (group.baseRange.lowerBound + ourShift)..<(group.baseRange.upperBound + ourShift + ourDelta)
            let theirRange = (group.baseRange.lowerBound + theirShift)..<(group.baseRange.upperBound + theirShift + theirDelta)
            defer {
                ourShift += ourDelta
                theirShift += theirDelta
            }
            if group.theirs.isEmpty { continue }
            let theirElements = try await elements(of: theirs, in: theirRange)
            if group.ours.isEmpty {
                replacements.append((ourRange, theirElements))
                continue
            }
            let ourElements = try await elements(of: ours, in: ourRange)
            if ourElements == theirElements { continue }
            let conflict = ListConflict(
                base: try await elements(of: base, in: group.baseRange), ours: ourElements, theirs: theirElements)
            let chosen = try await resolve(conflict)
            if chosen != ourElements { replacements.append((ourRange, chosen)) }
        }
        var result = ours
        for (range, elements) in replacements.reversed() {
            result = try await replaceSubrange(range, with: elements, in: result)
        }
        return result
    }

    private func elements(of list: TreeRoot, in range: Range<Int>) async throws -> [[UInt8]] {
        var elements: [[UInt8]] = []
        try await reader.forEachElement(in: list, range: range) { _, element in
            elements.append(element)
            return true
        }
        return elements
    }
}
