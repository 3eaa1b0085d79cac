/// Node sizes for one level of a tree.
public struct TreeParameters: Sendable, Hashable {
    /// No boundary before a node's entries reach this many bytes.
    public let minimumNodeSize: Int
    /// Typical node size: past the minimum, each byte of an entry ends the node with
    /// probability 1 / (target − minimum).
    public let targetNodeSize: Int
    /// A node always ends once its entries reach this many bytes…
    public let maximumNodeSize: Int
    /// …unless it holds fewer entries than this: no boundary comes before. Two for internal
    /// nodes, so each level has at most half the nodes of the one below and a tree of long keys
    /// still ends in one root.
    public let minimumEntryCount: Int

    public init(minimumNodeSize: Int, targetNodeSize: Int, maximumNodeSize: Int, minimumEntryCount: Int = 1) {
        precondition(0 < minimumNodeSize && minimumNodeSize < targetNodeSize && targetNodeSize < maximumNodeSize)
        precondition(minimumEntryCount >= 1)
        self.minimumNodeSize = minimumNodeSize
        self.targetNodeSize = targetNodeSize
        self.maximumNodeSize = maximumNodeSize
        self.minimumEntryCount = minimumEntryCount
    }
}

/// A tree node format: the version byte every node of a tree carries, and the node sizes that go
/// with it. The sizes are part of a tree's identity: two agents editing one tree must split it
/// alike, or history independence (same contents, same root) is lost. So a tree keeps the format
/// it was created in for all its edits, and new trees take ``current``.
public struct TreeFormat: Sendable, Hashable {
    public let version: UInt8
    /// Sizes of leaves (level 0).
    public let leafNodes: TreeParameters
    /// Sizes of internal nodes.
    public let internalNodes: TreeParameters

    /// Custom sizes are for tests: a store uses only the published formats.
    init(version: UInt8, leafNodes: TreeParameters, internalNodes: TreeParameters) {
        self.version = version
        self.leafNodes = leafNodes
        self.internalNodes = internalNodes
    }

    /// Nodes of 1–16 KiB, about 4 KiB, at every level. (Keys of at most 2 KiB leave an internal
    /// node room for several children.)
    public static let version1 = TreeFormat(
        version: 1,
        leafNodes: TreeParameters(minimumNodeSize: 1024, targetNodeSize: 4096, maximumNodeSize: 16384),
        internalNodes: TreeParameters(minimumNodeSize: 1024, targetNodeSize: 4096, maximumNodeSize: 16384))

    /// Leaves of about 2 KiB and internal nodes of about 1 KiB, each with a narrow spread (the
    /// minimum is three quarters of the target). A random edit lands in a node with odds in
    /// proportion to its size, so the nodes an edit rewrites are larger than the average one:
    /// by 56% in version 1, by 6% here. Small internal nodes matter most, because edits spread
    /// over a large map rewrite most of the level above the leaves. A commit of 1,000 random
    /// changes to a 1M-entry map writes half the bytes of version 1.
    public static let version2 = TreeFormat(
        version: 2,
        leafNodes: TreeParameters(minimumNodeSize: 1536, targetNodeSize: 2048, maximumNodeSize: 8192),
        internalNodes: TreeParameters(minimumNodeSize: 768, targetNodeSize: 1024, maximumNodeSize: 4096, minimumEntryCount: 2))

    /// The format of new trees.
    public static let current = version2

    /// The published format with this version byte, or nil if this build does not know it.
    public static func published(_ version: UInt8) -> TreeFormat? {
        switch version {
        case 1: version1
        case 2: version2
        default: nil
        }
    }

    func parameters(level: Int) -> TreeParameters { level == 0 ? leafNodes : internalNodes }
}

/// Packs the entries of one tree level into nodes, ending a node where the boundary rule says.
///
/// The rule depends only on the entries since the previous boundary (their bytes, and a keyed hash
/// of the last one), so the same sequence of entries always splits the same way: that is what
/// makes a tree's shape a function of its contents, whatever order the edits came in.
struct NodeBuilder {
    let kind: TreeKind
    let level: Int
    let salt: ArraySlice<UInt8>
    let formatVersion: UInt8
    private let hasher: SipHash24
    private let parameters: TreeParameters
    /// 2^32 / (target − minimum): the boundary threshold per entry byte, in 32-bit hash units.
    private let thresholdPerByte: UInt64

    private(set) var entries: [UInt8] = []
    /// Where each entry's key and value start and end in `entries`: the finished node needs no
    /// decoding.
    private var keyStarts: [UInt32] = []
    private var valueStarts: [UInt32] = []
    private var valueEnds: [UInt32] = []
    /// A map's keys came in strictly increasing order.
    private var keysAreOrdered = true
    private(set) var entryCount = 0
    private(set) var subtreeCount: UInt64 = 0
    /// Key of the last entry appended (maps), which becomes the node's key in its parent.
    private(set) var lastKey: ArraySlice<UInt8> = []

    init(kind: TreeKind, level: Int, salt: ArraySlice<UInt8>, format: TreeFormat) {
        self.kind = kind
        self.level = level
        self.salt = salt
        formatVersion = format.version
        self.hasher = SipHash24(key: salt)
        let parameters = format.parameters(level: level)
        self.parameters = parameters
        thresholdPerByte = (UInt64(1) << 32) / UInt64(parameters.targetNodeSize - parameters.minimumNodeSize)
        entries.reserveCapacity(parameters.targetNodeSize * 2)
    }

    var isEmpty: Bool { entryCount == 0 }

    /// Appends an entry; returns true when the node must end after it.
    @inline(__always)
    mutating func append(_ entry: TreeEntry) -> Bool {
        let before = entries.count
        Varint.append(UInt64(entry.key.count), to: &entries)
        Varint.append(UInt64(entry.value.count), to: &entries)
        keyStarts.append(UInt32(entries.count))
        entries.append(contentsOf: entry.key)
        valueStarts.append(UInt32(entries.count))
        entries.append(contentsOf: entry.value)
        valueEnds.append(UInt32(entries.count))
        if kind == .map {
            if entryCount > 0 && TreeNode.compare(lastKey, entry.key) >= 0 { keysAreOrdered = false }
            lastKey = entry.key
        }
        entryCount += 1
        subtreeCount += entry.subtreeCount
        let size = entries.count
        if size < parameters.minimumNodeSize || entryCount < parameters.minimumEntryCount { return false }
        if size >= parameters.maximumNodeSize { return true }
        // Maps hash the key, so a boundary stays put when only the value changes; lists have no
        // key and hash the value. The level goes in too, or every node boundary at level n would
        // also look like a boundary at level n + 1.
        let hashed = kind == .map ? entry.key : entry.value
        let hash = hashed.withUnsafeBytes { hasher.hash(prefix: UInt8(level), $0) } >> 32
        return hash < thresholdPerByte * UInt64(size - before)
    }

    /// The finished node; the builder starts a new one.
    ///
    /// - Throws: ``TreeError/Code/invalidArgument`` if a map's keys were not appended in strictly
    ///   increasing order.
    mutating func finishNode() throws -> (node: TreeNode, lastKey: ArraySlice<UInt8>) {
        guard keysAreOrdered else { throw TreeError(.invalidArgument, "tree edits put keys out of order at level \(level)") }
        let bytes = TreeNode.encode(version: formatVersion, kind: kind, level: level, salt: salt, entryCount: entryCount, entries: entries)
        let header = UInt32(bytes.count - entries.count)
        let node = TreeNode(
            built: bytes, formatVersion: formatVersion, kind: kind, level: level,
            keyStarts: keyStarts.map { $0 + header }, valueStarts: valueStarts.map { $0 + header },
            valueEnds: valueEnds.map { $0 + header }, subtreeCount: subtreeCount)
        let result = (node, lastKey)
        entries.removeAll(keepingCapacity: true)
        keyStarts.removeAll(keepingCapacity: true)
        valueStarts.removeAll(keepingCapacity: true)
        valueEnds.removeAll(keepingCapacity: true)
        keysAreOrdered = true
        entryCount = 0
        subtreeCount = 0
        lastKey = []
        return result
    }
}
