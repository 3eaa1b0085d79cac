/// Edits of one map, in the order they were made, waiting to be applied to its tree: keys and
/// values back to back in one byte buffer, the last edit of each key found through a hash table.
///
/// A bulk load buffers a million edits here as one buffer and two tables of plain integers,
/// instead of a million small arrays: nothing to count references of, nothing to free one by one.
/// Short values are kept in the form a leaf stores them, so applying the edits copies each byte
/// once, into its node.
public struct MapEditBuffer: Sendable {
    /// One edit: where its key and value lie in `bytes`.
    struct Record {
        /// The key's hash, kept so the table grows without hashing keys again.
        var hash: Int
        var keyStart: Int
        var keyLength: Int32
        /// −1 for a removal.
        var valueLength: Int32
        /// The value's bytes are its stored form (a tag, then the value); otherwise they are the
        /// value itself, too long to stay inline, to be stored as a blob when the edits are applied.
        var isStoredForm: Bool
        /// No later edit of the same key follows.
        var isLast: Bool

        var valueStart: Int { keyStart + Int(keyLength) }
    }

    private(set) var bytes: [UInt8] = []
    private(set) var records: [Record] = []
    /// Open addressing by key hash: index + 1 of the last record of each key; 0 marks a free slot.
    private var slots: [Int] = []
    /// Keys edited (the records that are last of their key).
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { records.isEmpty }

    /// Memory the buffer holds, in bytes.
    public var byteCount: Int {
        bytes.count + records.count * MemoryLayout<Record>.stride + slots.count * MemoryLayout<Int>.stride
    }

    /// Records that `key` is set to `value`, or removed when `value` is nil; a later edit of a key
    /// replaces an earlier one.
    ///
    /// - Throws: ``TreeError/Code/invalidArgument`` for a key longer than
    ///   ``TreeWriter/maximumKeyLength``.
    public mutating func append(key: [UInt8], value: [UInt8]?) throws {
        guard key.count <= TreeWriter.maximumKeyLength else {
            throw TreeError(.invalidArgument, "a key of \(key.count) bytes is longer than the limit of \(TreeWriter.maximumKeyLength)")
        }
        guard value.map({ $0.count < Int32.max }) ?? true else {
            throw TreeError(.invalidArgument, "a value of \(value!.count) bytes is too long for one map entry")
        }
        let keyStart = bytes.count
        bytes.append(contentsOf: key)
        let hash = key.withUnsafeBytes(Self.hash)
        var record = Record(hash: hash, keyStart: keyStart, keyLength: Int32(key.count), valueLength: -1, isStoredForm: true, isLast: true)
        if let value {
            let valueStart = bytes.count
            if value.count <= TreeStore.inlineValueLimit { bytes.append(StoredValue.inlineTag) } else { record.isStoredForm = false }
            bytes.append(contentsOf: value)
            record.valueLength = Int32(bytes.count - valueStart)
        }
        if (count + 1) * 2 > slots.count { growSlots() }
        let (slot, found) = key.withUnsafeBytes { self.slot(for: $0, hash: hash) }
        if let found {
            records[found].isLast = false
        } else {
            count += 1
        }
        records.append(record)
        slots[slot] = records.count
    }

    /// The last edit of `key`: nil if the buffer has none, `.some(nil)` for a removal, else the value.
    public func lastEdit(of key: [UInt8]) -> [UInt8]?? {
        guard !slots.isEmpty else { return nil }
        return key.withUnsafeBytes { probe -> [UInt8]?? in
            guard let found = slot(for: probe, hash: Self.hash(probe)).record else { return nil }
            return .some(value(of: records[found]).map { Array($0) })
        }
    }

    /// The value of an edit as the caller gave it (nil for a removal).
    func value(of record: Record) -> ArraySlice<UInt8>? {
        guard record.valueLength >= 0 else { return nil }
        let start = record.valueStart + (record.isStoredForm ? 1 : 0)
        return bytes[start..<(record.valueStart + Int(record.valueLength))]
    }

    /// The stored form of an inline value, or the raw value of a long one (nil for a removal).
    func storedBytes(of record: Record) -> ArraySlice<UInt8>? {
        guard record.valueLength >= 0 else { return nil }
        return bytes[record.valueStart..<(record.valueStart + Int(record.valueLength))]
    }

    func key(of record: Record) -> ArraySlice<UInt8> {
        bytes[record.keyStart..<record.valueStart]
    }

    /// The last edit of each key, sorted by key.
    func lastEditsInKeyOrder() -> [Record] {
        // A radix sort by each key's first eight bytes (decisive for most keys), then a sort of
        // each run of equal prefixes by the whole keys.
        var order: [(prefix: UInt64, index: Int)] = []
        order.reserveCapacity(count)
        bytes.withUnsafeBytes { buffer in
            for (index, record) in records.enumerated() where record.isLast {
                var prefix: UInt64 = 0
                for offset in 0..<8 {
                    prefix = prefix << 8 | UInt64(offset < Int(record.keyLength) ? buffer[record.keyStart + offset] : 0)
                }
                order.append((prefix, index))
            }
        }
        Self.radixSort(&order)
        bytes.withUnsafeBytes { buffer in
            func key(_ index: Int) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: buffer[records[index].keyStart..<records[index].valueStart])
            }
            var runStart = 0
            while runStart < order.count {
                var runEnd = runStart + 1
                while runEnd < order.count && order[runEnd].prefix == order[runStart].prefix { runEnd += 1 }
                if runEnd - runStart > 1 {
                    order[runStart..<runEnd].sort { TreeNode.compare(key($0.index), key($1.index)) < 0 }
                }
                runStart = runEnd
            }
        }
        return order.map { records[$0.index] }
    }

    /// Sorts by `prefix`, a byte at a time from the lowest, skipping bytes all prefixes share.
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

    private func keyEquals(_ record: Record, _ key: UnsafeRawBufferPointer) -> Bool {
        guard Int(record.keyLength) == key.count else { return false }
        return bytes.withUnsafeBytes { bytes in
            key.isEmpty || memcmp(bytes.baseAddress! + record.keyStart, key.baseAddress!, key.count) == 0
        }
    }

    /// The slot of `key`: the one holding its last record (returned too), or the free slot where
    /// it belongs.
    private func slot(for key: UnsafeRawBufferPointer, hash: Int) -> (slot: Int, record: Int?) {
        let mask = slots.count - 1
        var slot = hash & mask
        while slots[slot] != 0 {
            let index = slots[slot] - 1
            if records[index].hash == hash && keyEquals(records[index], key) { return (slot, index) }
            slot = (slot + 1) & mask
        }
        return (slot, nil)
    }

    private mutating func growSlots() {
        slots = Array(repeating: 0, count: max(64, slots.count * 2))
        let mask = slots.count - 1
        for (index, record) in records.enumerated() where record.isLast {
            var slot = record.hash & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = index + 1
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
