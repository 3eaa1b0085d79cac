/// Edits of one map, in the order they were made, waiting to be applied to its tree: keys and
/// values back to back in segments of bytes, with one small record per edit.
///
/// A bulk load buffers a million edits here as about a hundred segments and one array of plain
/// records, instead of a million small arrays: nothing to count references of, nothing to free
/// one by one. Short values are kept in the form a leaf stores them, so applying the edits copies
/// each byte once, into its node.
///
/// Appending only copies bytes: which edit of a key is the last one is settled when the edits are
/// sorted. A hash table for ``lastEdit(of:)`` is built on the first lookup and kept up to date
/// from then on, so a load that never reads back pays nothing for it.
public struct MapEditBuffer: Sendable {
    /// One edit: where its key and value lie in `segments`.
    struct Record {
        var segment: Int32
        var keyStart: Int32
        var keyLength: Int32
        /// −1 for a removal.
        var valueLength: Int32
        /// The value's bytes are its stored form (a tag, then the value); otherwise they are the
        /// value itself, too long to stay inline, to be stored as a blob when the edits are applied.
        var isStoredForm: Bool

        var valueStart: Int { Int(keyStart) + Int(keyLength) }
    }

    /// Size a segment grows to: the first is small, each next one twice the last, up to this.
    /// Filled segments are never moved or copied; an edit larger than this gets a segment sized
    /// for it (which later edits may fill up).
    static let segmentSize = 1 << 20
    static let firstSegmentSize = 4096

    private(set) var segments: [[UInt8]] = []
    private(set) var records: [Record] = []
    /// Open addressing by key hash, once a lookup asked for it (empty until then): index + 1 of
    /// the last record of each key; 0 marks a free slot.
    private var slots: [Int] = []
    /// Keys in `slots`.
    private var slotsUsed = 0
    /// Bytes held by segments.
    private var segmentBytes = 0

    public init() {}

    public var isEmpty: Bool { records.isEmpty }

    /// Edits appended, counting every edit of a key.
    var editCount: Int { records.count }

    /// Memory the buffer holds, in bytes.
    public var byteCount: Int {
        segmentBytes + records.capacity * MemoryLayout<Record>.stride + slots.count * MemoryLayout<Int>.stride
    }

    /// Records that `key` is set to `value`, or removed when `value` is nil; a later edit of a key
    /// replaces an earlier one.
    ///
    /// - Throws: ``TreeError/Code/invalidArgument`` for a key longer than
    ///   ``TreeWriter/maximumKeyLength``.
    public mutating func append(key: [UInt8], value: [UInt8]?) throws {
        try key.withUnsafeBytes { key in
            if let value {
                try value.withUnsafeBytes { try append(key: key, value: $0) }
            } else {
                try append(key: key, value: nil)
            }
        }
    }

    /// Records an edit whose key and value lie in memory the caller owns (copied here).
    mutating func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?) throws {
        guard key.count <= TreeWriter.maximumKeyLength else {
            throw TreeError(.invalidArgument, "a key of \(key.count) bytes is longer than the limit of \(TreeWriter.maximumKeyLength)")
        }
        // Room for the tag of an inline value, and a value length that fits an Int32.
        guard value.map({ $0.count < Int(Int32.max) - 1 }) ?? true else {
            throw TreeError(.invalidArgument, "a value of \(value!.count) bytes is too long for one map entry")
        }
        let isStoredForm = value.map { $0.count <= TreeStore.inlineValueLimit } ?? true
        let valueLength = value.map { $0.count + (isStoredForm ? 1 : 0) } ?? -1
        let size = key.count + max(valueLength, 0)
        // A segment holds at most Int32.max bytes, so offsets in it fit a record.
        if segments.isEmpty || segments[segments.count - 1].count + size > min(segments[segments.count - 1].capacity, Int(Int32.max)) {
            // Small at first: most drafts edit a few keys of a few maps.
            let grown = segments.last.map { min(Self.segmentSize, $0.capacity * 2) } ?? Self.firstSegmentSize
            var segment: [UInt8] = []
            segment.reserveCapacity(max(size, grown))
            segmentBytes += segment.capacity
            segments.append(segment)
        }
        let segment = segments.count - 1
        let keyStart = segments[segment].count
        segments[segment].append(contentsOf: key)
        if let value {
            if isStoredForm { segments[segment].append(StoredValue.inlineTag) }
            segments[segment].append(contentsOf: value)
        }
        records.append(
            Record(
                segment: Int32(segment), keyStart: Int32(keyStart), keyLength: Int32(key.count),
                valueLength: Int32(valueLength), isStoredForm: isStoredForm))
        if !slots.isEmpty { index(records.count - 1, hash: Self.hash(key)) }
    }

    /// The last edit of `key`: nil if the buffer has none, `.some(nil)` for a removal, else the value.
    ///
    /// The first lookup builds the buffer's hash table (in time proportional to its edits).
    public mutating func lastEdit(of key: [UInt8]) -> [UInt8]?? {
        guard !records.isEmpty else { return nil }
        if slots.isEmpty { rebuildSlots() }
        return key.withUnsafeBytes { probe -> [UInt8]?? in
            guard let found = slot(for: probe, hash: Self.hash(probe)).record else { return nil }
            return .some(value(of: records[found]).map { Array($0) })
        }
    }

    /// The value of an edit as the caller gave it (nil for a removal).
    func value(of record: Record) -> ArraySlice<UInt8>? {
        guard record.valueLength >= 0 else { return nil }
        let start = record.valueStart + (record.isStoredForm ? 1 : 0)
        return segments[Int(record.segment)][start..<(record.valueStart + Int(record.valueLength))]
    }

    /// The stored form of an inline value, or the raw value of a long one (nil for a removal).
    func storedBytes(of record: Record) -> ArraySlice<UInt8>? {
        guard record.valueLength >= 0 else { return nil }
        return segments[Int(record.segment)][record.valueStart..<(record.valueStart + Int(record.valueLength))]
    }

    func key(of record: Record) -> ArraySlice<UInt8> {
        segments[Int(record.segment)][Int(record.keyStart)..<record.valueStart]
    }

    /// Calls `body` with the bytes of a record's key.
    private func withKey<Result>(of record: Record, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try segments[Int(record.segment)].withUnsafeBytes {
            try body(UnsafeRawBufferPointer(rebasing: $0[Int(record.keyStart)..<record.valueStart]))
        }
    }

    /// The last edit of each key, sorted by key.
    func lastEditsInKeyOrder() -> [Record] {
        // A radix sort by each key's first eight bytes (decisive for most keys), then a sort of
        // each run of equal prefixes by the whole keys. Both keep edits of one key in the order
        // they were made, so the last of each run of equal keys is the edit that wins.
        var order: [(prefix: UInt64, index: Int)] = []
        order.reserveCapacity(records.count)
        for (index, record) in records.enumerated() {
            let prefix = withKey(of: record) { key in
                var prefix: UInt64 = 0
                for offset in 0..<8 { prefix = prefix << 8 | UInt64(offset < key.count ? key[offset] : 0) }
                return prefix
            }
            order.append((prefix, index))
        }
        Self.radixSort(&order)
        var sorted: [Record] = []
        sorted.reserveCapacity(order.count)
        var runStart = 0
        while runStart < order.count {
            var runEnd = runStart + 1
            while runEnd < order.count && order[runEnd].prefix == order[runStart].prefix { runEnd += 1 }
            if runEnd - runStart == 1 {
                sorted.append(records[order[runStart].index])
            } else {
                // By key, then in the order the edits were made.
                let run = order[runStart..<runEnd].map(\.index).sorted {
                    let order = compareKeys($0, $1)
                    return order != 0 ? order < 0 : $0 < $1
                }
                for (position, index) in run.enumerated() where position + 1 == run.count || compareKeys(index, run[position + 1]) != 0 {
                    sorted.append(records[index])
                }
            }
            runStart = runEnd
        }
        return sorted
    }

    /// Orders the keys of two records, as `memcmp` does.
    private func compareKeys(_ first: Int, _ second: Int) -> Int {
        withKey(of: records[first]) { a in withKey(of: records[second]) { b in TreeNode.compare(a, b) } }
    }

    /// Sorts by `prefix`, a byte at a time from the lowest, skipping bytes all prefixes share;
    /// items of equal prefix keep their order.
    private static func radixSort(_ items: inout [(prefix: UInt64, index: Int)]) {
        var scratch = items
        for shift in stride(from: UInt64(0), to: 64, by: 8) {
            var counts = [Int](repeating: 0, count: 256)
            for item in items { counts[Int(truncatingIfNeeded: item.prefix >> shift) & 0xFF] += 1 }
            if counts.contains(items.count) { continue }
            var offsets = [Int](repeating: 0, count: 256)
            for digit in 1..<256 { offsets[digit] = offsets[digit - 1] + counts[digit - 1] }
            items.withUnsafeBufferPointer { source in
                scratch.withUnsafeMutableBufferPointer { target in
                    for item in source {
                        let digit = Int(truncatingIfNeeded: item.prefix >> shift) & 0xFF
                        target[offsets[digit]] = item
                        offsets[digit] += 1
                    }
                }
            }
            swap(&items, &scratch)
        }
    }

    // MARK: Hash table

    private static func hash(_ key: UnsafeRawBufferPointer) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes: key)
        return hasher.finalize()
    }

    /// The slot of `key`: the one holding its last record (returned too), or the free slot where
    /// it belongs.
    private func slot(for key: UnsafeRawBufferPointer, hash: Int) -> (slot: Int, record: Int?) {
        let mask = slots.count - 1
        var slot = hash & mask
        while slots[slot] != 0 {
            let index = slots[slot] - 1
            let equal = withKey(of: records[index]) { $0.count == key.count && (key.isEmpty || memcmp($0.baseAddress!, key.baseAddress!, key.count) == 0) }
            if equal { return (slot, index) }
            slot = (slot + 1) & mask
        }
        return (slot, nil)
    }

    /// Makes `index` the last record of its key in the table, growing the table when it fills.
    private mutating func index(_ index: Int, hash: Int) {
        let (slot, found) = withKey(of: records[index]) { self.slot(for: $0, hash: hash) }
        slots[slot] = index + 1
        if found == nil {
            slotsUsed += 1
            if slotsUsed * 2 > slots.count { growSlots() }
        }
    }

    /// Builds the table from every record, in order, so each key ends with its last edit.
    private mutating func rebuildSlots() {
        slots = Array(repeating: 0, count: 64)
        slotsUsed = 0
        for index in records.indices { self.index(index, hash: withKey(of: records[index], Self.hash)) }
    }

    /// Doubles the table, moving the keys it holds (not every record: a key edited many times
    /// is moved once).
    private mutating func growSlots() {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        let mask = slots.count - 1
        for entry in old where entry != 0 {
            var slot = withKey(of: records[entry - 1], Self.hash) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = entry
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
