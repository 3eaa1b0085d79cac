import InfinityChunks
import InfinityPacks

/// What a tree holds: a sorted map from byte keys to values, or a list of values by position.
public enum TreeKind: UInt8, Sendable, Hashable, CustomStringConvertible {
    case map = 0
    case list = 1

    public var description: String { self == .map ? "map" : "list" }
}

/// A reference from a parent entry (or a ``TreeRoot``) to a node: the node's chunk key and
/// length, and how many leaf entries lie beneath it.
///
/// Only the key is kept, not the chunk id: the id derives from the key one-way, so storing both
/// would spend 32 bytes per entry on redundancy.
public struct NodePointer: Hashable, Sendable {
    public let key: ChunkKey
    /// Length of the node's plaintext.
    public let length: Int
    /// Leaf entries in the subtree.
    public let count: UInt64

    /// More entries than any tree holds (2^48), and far below `Int.max`, so counts from storage
    /// can be used as `Int` without trapping.
    static let maximumCount: UInt64 = 1 << 48

    public init(key: ChunkKey, length: Int, count: UInt64) {
        self.key = key
        self.length = length
        self.count = count
    }

    /// The chunk to read.
    public var chunkRef: ChunkRef { ChunkRef(id: key.chunkID, key: key, length: length) }

    func append(to bytes: inout [UInt8]) {
        bytes.append(contentsOf: key.bytes)
        Varint.append(UInt64(length), to: &bytes)
        Varint.append(count, to: &bytes)
    }

    static func read(from reader: inout ByteReader) -> NodePointer? {
        guard let keyBytes = reader.readBytes(ChunkKey.byteCount), let key = ChunkKey(bytes: Array(keyBytes)),
            let length = reader.readLength(limit: ChunkStore.maximumChunkSize),
            let count = reader.readVarint(), count <= maximumCount
        else { return nil }
        return NodePointer(key: key, length: length, count: count)
    }
}

/// One entry as the tree layer moves it around: a key (empty in lists), a value (for internal
/// nodes, an encoded ``NodePointer``), and the number of leaf entries it stands for.
struct TreeEntry {
    var key: ArraySlice<UInt8>
    var value: ArraySlice<UInt8>
    var subtreeCount: UInt64
}

/// A decoded tree node. Immutable; shared through the node cache.
///
/// Plaintext layout (before the chunk layer compresses and encrypts it):
/// `version (1) | kind (1) | level (1) | salt (16) | varint entry count | entries`, where each
/// entry is `varint key length | varint value length | key | value`. Leaves hold the map's or
/// list's values; internal nodes hold, per child, the child's last key (maps; empty in lists)
/// and an encoded ``NodePointer``.
final class TreeNode: Sendable {
    static let saltByteCount = 16
    static let headerByteCount = 3 + saltByteCount
    /// Deeper than any tree of a realistic size could grow (internal nodes of format 2 hold at least
    /// two children; in format 1, keys of at most 2 KiB leave room for several).
    static let maximumLevel = 48

    /// The ``TreeFormat`` version: every node of a tree has its root's.
    let formatVersion: UInt8
    let kind: TreeKind
    let level: Int
    let salt: ArraySlice<UInt8>
    let bytes: [UInt8]
    /// Offsets of each entry's key, value and end; the value starts where the key ends.
    private let keyStarts: [UInt32]
    private let valueStarts: [UInt32]
    private let valueEnds: [UInt32]
    /// Leaf entries beneath this node.
    let subtreeCount: UInt64

    var count: Int { keyStarts.count }
    var isLeaf: Bool { level == 0 }

    /// Decodes and validates a node's plaintext; `id` names it in errors.
    init(decoding bytes: [UInt8], id: ChunkID) throws {
        func malformed(_ why: String) -> TreeError {
            TreeError(.malformedNode, "tree node \(id.shortDescription) is malformed: \(why)")
        }
        var reader = ByteReader(bytes)
        guard let version = reader.readByte() else { throw malformed("it is empty") }
        guard TreeFormat.published(version) != nil else {
            let newest = TreeFormat.current.version
            if version > newest {
                throw TreeError(.unsupportedFormat, "tree node \(id.shortDescription) has format version \(version); this build reads versions 1 to \(newest)")
            }
            throw malformed("unknown format version \(version)")
        }
        guard let kindByte = reader.readByte(), let kind = TreeKind(rawValue: kindByte) else { throw malformed("unknown tree kind") }
        guard let level = reader.readByte(), Int(level) <= Self.maximumLevel else { throw malformed("impossible level") }
        guard let salt = reader.readBytes(Self.saltByteCount) else { throw malformed("truncated header") }
        // An entry takes at least two bytes, which bounds the count before anything is allocated.
        guard let count = reader.readLength(limit: reader.remaining / 2) else { throw malformed("impossible entry count") }
        var keyStarts: [UInt32] = []
        var valueStarts: [UInt32] = []
        var valueEnds: [UInt32] = []
        keyStarts.reserveCapacity(count)
        valueStarts.reserveCapacity(count)
        valueEnds.reserveCapacity(count)
        var subtreeCount: UInt64 = 0
        for index in 0..<count {
            guard let keyLength = reader.readLength(limit: reader.remaining),
                let valueLength = reader.readLength(limit: reader.remaining),
                keyLength + valueLength <= reader.remaining
            else { throw malformed("entry \(index) is truncated") }
            let keyStart = reader.offset
            _ = reader.readBytes(keyLength + valueLength)
            keyStarts.append(UInt32(keyStart))
            valueStarts.append(UInt32(keyStart + keyLength))
            valueEnds.append(UInt32(keyStart + keyLength + valueLength))
            if kind == .list && keyLength != 0 { throw malformed("list entry \(index) has a key") }
            if level == 0 {
                subtreeCount += 1
            } else {
                var valueReader = ByteReader(bytes, offset: keyStart + keyLength)
                guard let pointer = NodePointer.read(from: &valueReader), valueReader.offset == keyStart + keyLength + valueLength
                else { throw malformed("child pointer \(index) is malformed") }
                let (sum, overflow) = subtreeCount.addingReportingOverflow(pointer.count)
                guard !overflow, sum <= NodePointer.maximumCount else { throw malformed("impossible subtree size") }
                subtreeCount = sum
            }
        }
        guard reader.isAtEnd else { throw malformed("\(reader.remaining) bytes follow the last entry") }
        guard level == 0 || count > 0 else { throw malformed("an internal node has no children") }
        formatVersion = version
        self.kind = kind
        self.level = Int(level)
        self.salt = salt
        self.bytes = bytes
        self.keyStarts = keyStarts
        self.valueStarts = valueStarts
        self.valueEnds = valueEnds
        self.subtreeCount = subtreeCount
        if kind == .map {
            for index in 1..<max(1, count) where !(Self.compare(key(at: index - 1), key(at: index)) < 0) {
                throw malformed("keys are not in strictly increasing order at entry \(index)")
            }
        }
    }

    /// A node a ``NodeBuilder`` has just encoded, with the offsets it recorded (nothing to check:
    /// the builder wrote every byte).
    init(
        built bytes: [UInt8], formatVersion: UInt8, kind: TreeKind, level: Int,
        keyStarts: [UInt32], valueStarts: [UInt32], valueEnds: [UInt32], subtreeCount: UInt64
    ) {
        self.formatVersion = formatVersion
        self.kind = kind
        self.level = level
        salt = bytes[3..<Self.headerByteCount]
        self.bytes = bytes
        self.keyStarts = keyStarts
        self.valueStarts = valueStarts
        self.valueEnds = valueEnds
        self.subtreeCount = subtreeCount
    }

    /// Encodes a node from already-encoded entries.
    static func encode(version: UInt8, kind: TreeKind, level: Int, salt: ArraySlice<UInt8>, entryCount: Int, entries: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerByteCount + 5 + entries.count)
        bytes.append(version)
        bytes.append(kind.rawValue)
        bytes.append(UInt8(level))
        bytes.append(contentsOf: salt)
        Varint.append(UInt64(entryCount), to: &bytes)
        bytes.append(contentsOf: entries)
        return bytes
    }

    @inline(__always)
    func key(at index: Int) -> ArraySlice<UInt8> {
        bytes[Int(keyStarts[index])..<Int(valueStarts[index])]
    }

    @inline(__always)
    func value(at index: Int) -> ArraySlice<UInt8> {
        bytes[Int(valueStarts[index])..<Int(valueEnds[index])]
    }

    /// The child pointer of entry `index` of an internal node (validated when the node was decoded).
    func pointer(at index: Int) -> NodePointer {
        var reader = ByteReader(bytes, offset: Int(valueStarts[index]))
        return NodePointer.read(from: &reader)!
    }

    /// The cache key of child `index` of an internal node, read in place (no allocation).
    @inline(__always)
    func childCacheKey(at index: Int) -> NodeCache.Key {
        bytes.withUnsafeBytes { NodeCache.Key(raw: UnsafeRawBufferPointer(rebasing: $0[Int(valueStarts[index])...])) }
    }

    /// The chunk key bytes of child `index` of an internal node.
    @inline(__always)
    func childKeyBytes(at index: Int) -> ArraySlice<UInt8> {
        let start = Int(valueStarts[index])
        return bytes[start..<(start + ChunkKey.byteCount)]
    }

    /// The leaf entries beneath child `index` of an internal node, read in place.
    func childCount(at index: Int) -> UInt64 {
        var reader = ByteReader(bytes, offset: Int(valueStarts[index]) + ChunkKey.byteCount)
        _ = reader.readVarint()
        return reader.readVarint() ?? 0
    }

    func entry(at index: Int) -> TreeEntry {
        TreeEntry(key: key(at: index), value: value(at: index), subtreeCount: isLeaf ? 1 : childCount(at: index))
    }

    /// The first entry whose key is at least `key` (for internal nodes: the child that holds or
    /// would hold it), or `count` if every key is smaller.
    func lowerBound(_ key: ArraySlice<UInt8>) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if Self.compare(self.key(at: middle), key) < 0 { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The child of an internal node that holds leaf position `position` of this subtree;
    /// `position` becomes the position inside that child. Past the end, the last child.
    func childIndex(forPosition position: inout UInt64) -> Int {
        var index = 0
        while index < count - 1 {
            let childCount = childCount(at: index)
            if position < childCount { break }
            position -= childCount
            index += 1
        }
        return index
    }

    /// Unsigned lexicographic order of byte strings (memcmp, then length).
    @inline(__always)
    static func compare(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Int {
        a.withUnsafeBytes { a in b.withUnsafeBytes { b in compare(a, b) } }
    }

    @inline(__always)
    static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let common = min(a.count, b.count)
        if common > 0 {
            let result = memcmp(a.baseAddress!, b.baseAddress!, common)
            if result != 0 { return Int(result) }
        }
        return a.count - b.count
    }

    /// Bytes this node holds in the cache.
    var cost: Int { bytes.count + 12 * count + 128 }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
