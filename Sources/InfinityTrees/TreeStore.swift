import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks
import Synchronization

/// A whole tree, as a field or a commit refers to it: its kind, the level of its root and a
/// pointer to the root node (whose count is the tree's size). The tree's salt lives in its nodes.
///
/// Like a ``ChunkRef``, a `TreeRoot` is a read capability for everything in the tree.
public struct TreeRoot: Hashable, Sendable {
    public let kind: TreeKind
    /// 0 when the root is a leaf.
    public let level: Int
    public let pointer: NodePointer

    public init(kind: TreeKind, level: Int, pointer: NodePointer) {
        self.kind = kind
        self.level = level
        self.pointer = pointer
    }

    /// Number of entries (maps) or elements (lists).
    public var count: Int { Int(pointer.count) }

    /// `kind (1) | level (1) | pointer`.
    public var encoded: [UInt8] {
        var bytes: [UInt8] = [kind.rawValue, UInt8(level)]
        pointer.append(to: &bytes)
        return bytes
    }

    /// Reads ``encoded``; the error names `context` (a field, a commit).
    public init(encoded bytes: [UInt8], context: String) throws {
        var reader = ByteReader(bytes)
        guard let kindByte = reader.readByte(), let kind = TreeKind(rawValue: kindByte),
            let level = reader.readByte(), Int(level) <= TreeNode.maximumLevel,
            let pointer = NodePointer.read(from: &reader), reader.isAtEnd
        else { throw TreeError(.malformedNode, "the tree reference of \(context) is malformed") }
        self.init(kind: kind, level: Int(level), pointer: pointer)
    }
}

/// Where nodes come from: the store (through its cache), or a writer's nodes not yet stored.
protocol NodeSource: Sendable {
    func node(_ pointer: NodePointer) async throws -> TreeNode
    /// The node if it is in memory already (the hot path of every read: no allocation).
    func cachedNode(_ key: NodeCache.Key) -> TreeNode?
    /// Looks up where these nodes lie, in one index query, ahead of reading them.
    func prefetch(_ pointers: [NodePointer])
}

extension NodeSource {
    /// The root node of a tree, checked against what the root reference says.
    func rootNode(of root: TreeRoot) async throws -> TreeNode {
        let node = try await node(root.pointer)
        guard node.level == root.level, node.kind == root.kind, node.subtreeCount == root.pointer.count else {
            throw TreeError(.malformedNode, "tree root \(root.pointer.key.chunkID.shortDescription) is a level \(node.level) \(node.kind) node of \(node.subtreeCount) entries, its reference says level \(root.level) \(root.kind) of \(root.pointer.count)")
        }
        return node
    }

    /// Looks up where the children of a node above the leaves lie, from `index` on, unless the
    /// first of them is in memory: a walk through the leaves then reads them without a lookup
    /// each.
    func prefetchLeaves(of parent: TreeNode, from index: Int) {
        guard parent.level == 1, index < parent.count, cachedNode(parent.childCacheKey(at: index)) == nil else { return }
        prefetch((index..<parent.count).map { parent.pointer(at: $0) })
    }

    /// Child `index` of an internal node, checked to belong to the same tree one level down.
    func child(of parent: TreeNode, at index: Int) async throws -> TreeNode {
        let child: TreeNode
        if let cached = cachedNode(parent.childCacheKey(at: index)) {
            child = cached
        } else {
            child = try await node(parent.pointer(at: index))
        }
        // A map child must end at the key its parent files it under: with each node's keys in
        // order, that keeps the whole tree in order, so a crafted tree cannot repeat a subtree
        // or put keys out of place.
        guard child.level == parent.level - 1, child.kind == parent.kind, child.formatVersion == parent.formatVersion,
            TreeNode.compare(child.salt, parent.salt) == 0,
            child.subtreeCount == parent.childCount(at: index),
            parent.kind == .list || (child.count > 0 && TreeNode.compare(child.key(at: child.count - 1), parent.key(at: index)) == 0)
        else {
            let id = parent.pointer(at: index).key.chunkID
            throw TreeError(.malformedNode, "tree node \(id.shortDescription) does not fit under its parent (level, kind, format, salt, size or last key differ)")
        }
        return child
    }
}

/// Reads tree nodes from a ``ChunkStore`` through a bounded cache of decoded nodes, and resolves
/// values stored out of line. Safe to share between tasks.
public final class TreeStore: NodeSource, Sendable {
    public let chunks: ChunkStore
    private let cache: Mutex<NodeCache>
    private let loads = Atomic<Int>(0)
    /// Whether new leaves, and new internal nodes, are worth compressing: the internal nodes of a
    /// tree with random keys hold little but random bytes (see ``CompressionOutlook``). Shared by
    /// every tree of the store: nodes of a compressible tree edited among many of a random one
    /// may be stored uncompressed until a probe lands on one of them, which costs bytes, never
    /// correctness.
    let leafCompression = CompressionOutlook()
    let internalNodeCompression = CompressionOutlook()

    /// The outlook that decides whether `node` is compressed.
    func compressionOutlook(for node: TreeNode) -> CompressionOutlook {
        node.isLeaf ? leafCompression : internalNodeCompression
    }

    /// Values longer than this are stored as a blob of their own, not inside a leaf.
    public static let inlineValueLimit = 1024

    /// - Parameter cacheCapacity: bytes of decoded nodes kept in memory.
    public init(chunks: ChunkStore, cacheCapacity: Int = 64 << 20) {
        self.chunks = chunks
        cache = Mutex(NodeCache(capacity: cacheCapacity))
    }

    func node(_ pointer: NodePointer) async throws -> TreeNode {
        let cacheKey = NodeCache.Key(pointer.key)
        if let node = cache.withLock({ $0.node(for: cacheKey) }) { return node }
        let ref = pointer.chunkRef
        loads.add(1, ordering: .relaxed)
        let node = try TreeNode(decoding: try await chunks.get(ref), id: ref.id)
        cache.withLock { $0.insert(node, for: cacheKey) }
        return node
    }

    func prefetch(_ pointers: [NodePointer]) {
        // Only a hint: a read whose location was not prefetched looks it up itself.
        try? chunks.packs.prefetchLocations(of: pointers.map(\.key.chunkID))
    }

    func cachedNode(_ key: NodeCache.Key) -> TreeNode? {
        cache.withLock { $0.node(for: key) }
    }

    func remember(_ node: TreeNode, key: ChunkKey) {
        cache.withLock { $0.insert(node, for: NodeCache.Key(key)) }
    }

    /// The tree whose root node is the chunk `ref` (as a commit records its index): loads that
    /// one node to learn the tree's kind, level and size.
    public func treeRoot(at ref: ChunkRef) async throws -> TreeRoot {
        let pointer = NodePointer(key: ref.key, length: ref.length, count: 0)
        let node = try await self.node(pointer)
        return TreeRoot(kind: node.kind, level: node.level, pointer: NodePointer(key: ref.key, length: ref.length, count: node.subtreeCount))
    }

    /// Nodes read from the chunk store so far (cache misses).
    public var nodeLoads: Int { loads.load(ordering: .relaxed) }

    /// Bytes of decoded nodes in the cache now.
    public var cachedBytes: Int { cache.withLock { $0.bytes } }

    // MARK: Values

    /// The form a value takes in a leaf: inline, or a reference to a blob for long values.
    func storedForm(of value: [UInt8]) async throws -> [UInt8] {
        guard value.count > Self.inlineValueLimit else { return Self.inlineForm(of: value) }
        return [StoredValue.blobTag] + (try await chunks.putBlob(value)).compactForm
    }

    /// The stored form of a value short enough to stay inline.
    @inline(__always)
    static func inlineForm(of value: [UInt8]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: value.count + 1) { buffer, count in
            buffer[0] = StoredValue.inlineTag
            value.withUnsafeBufferPointer { source in
                if let base = source.baseAddress { (buffer.baseAddress! + 1).initialize(from: base, count: source.count) }
            }
            count = value.count + 1
        }
    }

    /// The value of a stored form that is inline, or nil for a blob (the hot path of point reads:
    /// no suspension point).
    @inline(__always)
    static func inlineValue(_ stored: ArraySlice<UInt8>) -> [UInt8]? {
        guard stored.first == StoredValue.inlineTag else { return nil }
        return Array(stored.dropFirst())
    }

    /// The value a leaf's stored form stands for, reading its blob if it has one.
    func value(fromStored stored: ArraySlice<UInt8>) async throws -> [UInt8] {
        if let inline = Self.inlineValue(stored) { return inline }
        let blob: BlobRef
        switch try StoredValue(stored: stored) {
        case .inline(let bytes): return Array(bytes)
        case .blob(let reference): blob = reference
        }
        var value: [UInt8] = []
        // The length is only a claim until the chunks are read: never reserve on its word alone.
        value.reserveCapacity(min(blob.length, 1 << 20))
        try await chunks.getBlob(blob) { value += $0 }
        guard value.count == blob.length else {
            throw TreeError(.malformedNode, "a stored value claims \(blob.length) bytes but its blob holds \(value.count)")
        }
        return value
    }
}

/// A value as a leaf keeps it: inline, or, for values over ``TreeStore/inlineValueLimit``
/// bytes, a blob of its own.
public enum StoredValue: Sendable, Hashable {
    case inline(ArraySlice<UInt8>)
    case blob(BlobRef)

    static let inlineTag: UInt8 = 0
    static let blobTag: UInt8 = 1

    /// Reads a leaf entry's stored form: `0x00 ‖ value` or `0x01 ‖ compact blob reference`.
    ///
    /// - Throws: ``TreeError/Code/malformedNode`` for any other form.
    public init(stored: ArraySlice<UInt8>) throws {
        guard let tag = stored.first else { throw TreeError(.malformedNode, "a stored value is empty") }
        switch tag {
        case Self.inlineTag: self = .inline(stored.dropFirst())
        case Self.blobTag:
            guard let blob = try? BlobRef(compactForm: stored.dropFirst()) else {
                throw TreeError(.malformedNode, "a stored value's blob reference is damaged")
            }
            self = .blob(blob)
        default: throw TreeError(.malformedNode, "a stored value has an unknown form (tag \(tag))")
        }
    }
}

/// Decoded nodes by chunk key, at most `capacity` bytes, evicted by the clock algorithm (an
/// approximation of least-recently-used that costs no list surgery on a hit).
struct NodeCache {
    /// The chunk key as four words: cheaper to hash and compare than a 32-byte array.
    struct Key: Hashable {
        let w0, w1, w2, w3: UInt64

        /// Keys are keyed hashes, so one word of them is as good a hash input as four.
        func hash(into hasher: inout Hasher) {
            hasher.combine(w0)
        }

        init(_ key: ChunkKey) {
            self = key.bytes.withUnsafeBytes { Key(raw: $0) }
        }

        /// From the first 32 bytes of `raw`.
        @inline(__always)
        init(raw: UnsafeRawBufferPointer) {
            (w0, w1, w2, w3) = (
                raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        }
    }

    private struct Slot {
        let key: Key
        let node: TreeNode
        var referenced: Bool
    }

    let capacity: Int
    private(set) var bytes = 0
    private var slotOfKey: [Key: Int] = [:]
    private var slots: [Slot?] = []
    private var freeSlots: [Int] = []
    private var hand = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    mutating func node(for key: Key) -> TreeNode? {
        guard let slot = slotOfKey[key] else { return nil }
        slots[slot]!.referenced = true
        return slots[slot]!.node
    }

    mutating func insert(_ node: TreeNode, for key: Key) {
        guard slotOfKey[key] == nil, node.cost <= capacity else { return }
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = Slot(key: key, node: node, referenced: false)
        } else {
            slot = slots.count
            slots.append(Slot(key: key, node: node, referenced: false))
        }
        slotOfKey[key] = slot
        bytes += node.cost
        while bytes > capacity { evictOne() }
    }

    private mutating func evictOne() {
        while true {
            if hand >= slots.count { hand = 0 }
            defer { hand += 1 }
            guard let slot = slots[hand] else { continue }
            if slot.referenced {
                slots[hand]!.referenced = false
                continue
            }
            slotOfKey[slot.key] = nil
            slots[hand] = nil
            freeSlots.append(hand)
            bytes -= slot.node.cost
            return
        }
    }
}

/// A node made by a ``TreeWriter`` and not yet stored.
struct PendingNode: Sendable {
    var node: TreeNode
    var ref: ChunkRef
    /// The batch that seals it, and its place there.
    var sealing: SealingBatch
    var position: Int
}

/// New nodes sealed (compressed and encrypted) together by one task, on another core, while the
/// edit goes on: a task per node cost the editing core as much as hashing the node.
final class SealingBatch: Sendable {
    /// Nodes in a batch: about 32 KiB of leaves.
    static let capacity = 16

    private enum State {
        case collecting([(bytes: [UInt8], ref: ChunkRef, outlook: CompressionOutlook)])
        case started(Task<[[UInt8]], any Error>)
    }

    private let state = Mutex(State.collecting([]))

    /// Adds a node; returns its place in the batch and whether the batch is now full.
    func add(_ bytes: [UInt8], ref: ChunkRef, outlook: CompressionOutlook) -> (position: Int, isFull: Bool) {
        state.withLock { state in
            guard case .collecting(var nodes) = state else { preconditionFailure("a node added to a started sealing batch") }
            nodes.append((bytes, ref, outlook))
            state = .collecting(nodes)
            return (nodes.count - 1, nodes.count == Self.capacity)
        }
    }

    /// Starts sealing its nodes, once it is full (once; later calls do nothing).
    func start(_ chunks: ChunkStore) {
        state.withLock { state in
            guard case .collecting(let nodes) = state else { return }
            state = .started(Task { try nodes.map { try chunks.seal($0.bytes, as: $0.ref, kind: .metadata, outlook: $0.outlook) } })
        }
    }

    /// The sealed form of the node at `position`; nil if the batch was never started.
    func sealed(at position: Int) async throws -> [UInt8]? {
        guard case .started(let task) = state.withLock({ $0 }) else { return nil }
        return try await task.value[position]
    }
}

/// Builds new trees and edited versions of existing ones. New nodes stay in memory until
/// ``flush(keeping:)`` stores those reachable from the roots that matter, so intermediate
/// versions of a tree (between batches of edits) never reach the store.
///
/// One writer serves one sequence of edits (a draft of a commit); it is safe to share between
/// tasks, but edits to one tree must be applied in order.
public final class TreeWriter: NodeSource, Sendable {
    public let store: TreeStore
    /// The format of the trees this writer creates; an edited tree keeps its own.
    public let format: TreeFormat
    /// New nodes, each with the batch that seals it.
    private let pending = Mutex<[NodeCache.Key: PendingNode]>([:])
    /// The batch new nodes join; it starts sealing them once it is full.
    private let sealingBatch = Mutex(SealingBatch())
    private let pendingByteCount = Atomic<Int>(0)

    public init(store: TreeStore, format: TreeFormat = .current) {
        self.store = store
        self.format = format
    }

    /// The format to edit a tree in: the one its nodes carry.
    func format(of root: TreeNode) throws -> TreeFormat {
        if root.formatVersion == format.version { return format }
        guard let published = TreeFormat.published(root.formatVersion) else {
            throw TreeError(.unsupportedFormat, "a tree in node format \(root.formatVersion) cannot be edited by this build")
        }
        return published
    }

    /// New nodes not yet stored.
    public var pendingNodeCount: Int { pending.withLock { $0.count } }

    /// Bytes of new nodes not yet stored.
    public var pendingBytes: Int { pendingByteCount.load(ordering: .relaxed) }

    func node(_ pointer: NodePointer) async throws -> TreeNode {
        if let entry = pending.withLock({ $0[NodeCache.Key(pointer.key)] }) { return entry.node }
        return try await store.node(pointer)
    }

    func prefetch(_ pointers: [NodePointer]) {
        store.prefetch(pointers)
    }

    func cachedNode(_ key: NodeCache.Key) -> TreeNode? {
        if let entry = pending.withLock({ $0[key] }) { return entry.node }
        return store.cachedNode(key)
    }

    /// Takes a finished node: its reference now, its storage at the next flush.
    func makeNode(_ builder: inout NodeBuilder) throws -> (TreeNode, NodePointer, lastKey: ArraySlice<UInt8>) {
        let (node, lastKey) = try builder.finishNode()
        let ref = node.bytes.withUnsafeBytes { store.chunks.sealer.reference(for: $0) }
        return (node, add(node, ref: ref), lastKey)
    }

    /// Takes a node's plaintext as it is, decoded and checked (for nodes made by hand).
    func makeNode(_ bytes: [UInt8]) throws -> (TreeNode, NodePointer) {
        let ref = bytes.withUnsafeBytes { store.chunks.sealer.reference(for: $0) }
        let node = try TreeNode(decoding: bytes, id: ref.id)
        return (node, add(node, ref: ref))
    }

    private func add(_ node: TreeNode, ref: ChunkRef) -> NodePointer {
        // Sealed in a batch, once 16 have gathered, while the edit goes on: most new nodes are
        // stored at the next flush, which then only packs them.
        let outlook = store.compressionOutlook(for: node)
        let (batch, position) = sealingBatch.withLock { current in
            let batch = current
            let (position, isFull) = batch.add(node.bytes, ref: ref, outlook: outlook)
            if isFull {
                batch.start(store.chunks)
                current = SealingBatch()
            }
            return (batch, position)
        }
        pending.withLock { $0[NodeCache.Key(ref.key)] = PendingNode(node: node, ref: ref, sealing: batch, position: position) }
        pendingByteCount.add(node.bytes.count, ordering: .relaxed)
        return NodePointer(key: ref.key, length: node.bytes.count, count: node.subtreeCount)
    }

    /// A new empty tree in this writer's format, with a fresh random salt.
    public func emptyTree(_ kind: TreeKind) throws -> TreeRoot {
        let salt = SecureRandom.bytes(count: TreeNode.saltByteCount)
        return try emptyTree(kind, salt: salt[...], format: format)
    }

    /// An empty tree that shares `tree`'s salt and format (and so its node boundaries): the base
    /// for merging two trees that were created apart.
    public func emptyTree(sameSaltAs tree: TreeRoot) async throws -> TreeRoot {
        let root = try await rootNode(of: tree)
        return try emptyTree(tree.kind, salt: root.salt, format: try format(of: root))
    }

    /// An empty tree with a given salt and format: what deleting every entry of a tree leaves.
    func emptyTree(_ kind: TreeKind, salt: ArraySlice<UInt8>, format: TreeFormat) throws -> TreeRoot {
        var builder = NodeBuilder(kind: kind, level: 0, salt: salt, format: format)
        let (_, pointer, _) = try makeNode(&builder)
        return TreeRoot(kind: kind, level: 0, pointer: pointer)
    }

    /// The stored form of a value (inline, or a blob for long values; blobs are stored at once).
    func storedForm(of value: [UInt8]) async throws -> [UInt8] {
        try await store.storedForm(of: value)
    }

    /// Stores every pending node reachable from `roots`, in parallel, and forgets the rest (they
    /// belonged to intermediate versions). Stored nodes go into the read cache.
    public func flush(keeping roots: [TreeRoot]) async throws {
        // The nodes of the batch still gathering are sealed below, in parallel, rather than
        // one after another by a task of their own.
        sealingBatch.withLock { $0 = SealingBatch() }
        var reachable: [PendingNode] = []
        var frontier = roots.map { NodeCache.Key($0.pointer.key) }
        let all = pending.withLock { pending in
            defer { pending = [:] }
            return pending
        }
        pendingByteCount.store(0, ordering: .relaxed)
        // Only pending nodes are remembered: the children of an edited node are mostly in the
        // store already, and remembering each of those costs more than the walk.
        var seen = Set<NodeCache.Key>(minimumCapacity: all.count)
        while let cacheKey = frontier.popLast() {
            guard let pendingNode = all[cacheKey], seen.insert(cacheKey).inserted else { continue }
            reachable.append(pendingNode)
            let node = pendingNode.node
            if !node.isLeaf {
                for index in 0..<node.count { frontier.append(node.childCacheKey(at: index)) }
            }
        }
        do {
            let chunks = store.chunks
            try await chunks.putAll(
                sealing: reachable.map { pending in
                    // A sealing that failed is done again, so that a flush after a failed one
                    // does not fail the same way for good.
                    (
                        pending.ref,
                        {
                            if let sealed = try? await pending.sealing.sealed(at: pending.position) { return sealed }
                            let outlook = self.store.compressionOutlook(for: pending.node)
                            return try chunks.seal(pending.node.bytes, as: pending.ref, kind: .metadata, outlook: outlook)
                        }
                    )
                }, kind: .metadata)
        } catch {
            // Keep the nodes so the roots stay readable and a later flush can try again.
            pending.withLock { pending in pending.merge(all) { current, _ in current } }
            pendingByteCount.add(all.values.reduce(0) { $0 + $1.node.bytes.count }, ordering: .relaxed)
            throw error
        }
        for pendingNode in reachable { store.remember(pendingNode.node, key: pendingNode.ref.key) }
    }
}
