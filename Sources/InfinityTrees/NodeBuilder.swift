/// Node sizes for a tree. Part of a tree's identity: two agents editing one tree must use the
/// same values, or history independence (same contents, same root) is lost, so they are fixed
/// per format version rather than per store.
public struct TreeParameters: Sendable, Hashable {
    /// No boundary before a node's entries reach this many bytes.
    public let minimumNodeSize: Int
    /// Typical node size: past the minimum, each byte of an entry ends the node with
    /// probability 1 / (target − minimum).
    public let targetNodeSize: Int
    /// A node always ends once its entries reach this many bytes.
    public let maximumNodeSize: Int

    public init(minimumNodeSize: Int, targetNodeSize: Int, maximumNodeSize: Int) {
        precondition(0 < minimumNodeSize && minimumNodeSize < targetNodeSize && targetNodeSize < maximumNodeSize)
        self.minimumNodeSize = minimumNodeSize
        self.targetNodeSize = targetNodeSize
        self.maximumNodeSize = maximumNodeSize
    }

    /// The parameters of format version 1.
    public static let standard = TreeParameters(minimumNodeSize: 1024, targetNodeSize: 4096, maximumNodeSize: 16384)
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
    private let hasher: SipHash24
    private let parameters: TreeParameters
    /// 2^32 / (target − minimum): the boundary threshold per entry byte, in 32-bit hash units.
    private let thresholdPerByte: UInt64

    private(set) var entries: [UInt8] = []
    private(set) var entryCount = 0
    private(set) var subtreeCount: UInt64 = 0
    /// Key of the last entry appended (maps), which becomes the node's key in its parent.
    private(set) var lastKey: ArraySlice<UInt8> = []

    init(kind: TreeKind, level: Int, salt: ArraySlice<UInt8>, parameters: TreeParameters = .standard) {
        self.kind = kind
        self.level = level
        self.salt = salt
        self.hasher = SipHash24(key: salt)
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
        entries.append(contentsOf: entry.key)
        entries.append(contentsOf: entry.value)
        entryCount += 1
        subtreeCount += entry.subtreeCount
        if kind == .map { lastKey = entry.key }
        let size = entries.count
        if size < parameters.minimumNodeSize { return false }
        if size >= parameters.maximumNodeSize { return true }
        // Maps hash the key, so a boundary stays put when only the value changes; lists have no
        // key and hash the value. The level goes in too, or every node boundary at level n would
        // also look like a boundary at level n + 1.
        let hashed = kind == .map ? entry.key : entry.value
        let hash = hashed.withUnsafeBytes { hasher.hash(prefix: UInt8(level), $0) } >> 32
        return hash < thresholdPerByte * UInt64(size - before)
    }

    /// The finished node's plaintext; the builder starts a new node.
    mutating func finishNode() -> (bytes: [UInt8], lastKey: ArraySlice<UInt8>, subtreeCount: UInt64) {
        let bytes = TreeNode.encode(kind: kind, level: level, salt: salt, entryCount: entryCount, entries: entries)
        let result = (bytes, lastKey, subtreeCount)
        entries.removeAll(keepingCapacity: true)
        entryCount = 0
        subtreeCount = 0
        lastKey = []
        return result
    }
}
