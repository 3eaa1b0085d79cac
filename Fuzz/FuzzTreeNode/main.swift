// Tree nodes (Sources/InfinityTrees/TreeNode.swift) and tree roots: a node's plaintext is what
// its chunk opens to, so anyone who can write a chunk under a key a tree refers to chooses it.
import FuzzSupport
import InfinityChunks
import InfinityCrypto
import InfinityPacks
@testable import InfinityTrees

private let nodeID = ChunkID(bytes: SHA256.hash(Array("a fuzzed tree node".utf8)))!

/// Encodes entries as a node holds them: varint key length, varint value length, key, value.
private func node(kind: TreeKind, level: Int, entries: [(key: [UInt8], value: [UInt8])]) -> [UInt8] {
    var encoded: [UInt8] = []
    for entry in entries {
        LEB128.append(UInt64(entry.key.count), to: &encoded)
        LEB128.append(UInt64(entry.value.count), to: &encoded)
        encoded += entry.key + entry.value
    }
    let salt = [UInt8](repeating: 0x5A, count: TreeNode.saltByteCount)
    return TreeNode.encode(
        version: TreeFormat.current.version, kind: kind, level: level, salt: salt[...], entryCount: entries.count, entries: encoded)
}

private func pointer(_ seed: UInt8, count: UInt64) -> NodePointer {
    NodePointer(key: ChunkKey(bytes: SHA256.hash([seed]))!, length: 100 + Int(seed), count: count)
}

private func encoded(_ pointer: NodePointer) -> [UInt8] {
    var bytes: [UInt8] = []
    pointer.append(to: &bytes)
    return bytes
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfRequested {
        [
            ("map-leaf", node(kind: .map, level: 0, entries: [(Array("apple".utf8), [1, 2, 3]), (Array("pear".utf8), [])])),
            ("list-leaf", node(kind: .list, level: 0, entries: [([], Array("first".utf8)), ([], Array("second".utf8))])),
            ("map-internal", node(kind: .map, level: 1, entries: [
                (Array("m".utf8), encoded(pointer(1, count: 40))), (Array("z".utf8), encoded(pointer(2, count: 2))),
            ])),
            ("list-internal", node(kind: .list, level: 2, entries: [([], encoded(pointer(3, count: 1000)))])),
            ("tree-root", TreeRoot(kind: .map, level: 1, pointer: pointer(4, count: 42)).encoded),
        ]
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    decode {
        let node = try TreeNode(decoding: bytes, id: nodeID)
        // Every accessor a reader uses on a node that decoded: none may trap.
        for index in 0..<node.count {
            let entry = node.entry(at: index)
            _ = node.lowerBound(entry.key)
            if !node.isLeaf {
                _ = node.pointer(at: index)
                _ = node.childCacheKey(at: index)
                _ = node.childKeyBytes(at: index)
            }
        }
        if !node.isLeaf && node.count > 0 {
            var position = node.subtreeCount / 2
            _ = node.childIndex(forPosition: &position)
        }
    }
    decode { _ = try TreeRoot(encoded: bytes, context: "a fuzzed field") }
    return 0
}
