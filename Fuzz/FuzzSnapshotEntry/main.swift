// What a snapshot commit stores (Sources/InfinityBackup/FileEntry.swift, SnapshotPath.swift):
// file entries and the summary in the binary value format, paths as map keys, and the index
// entries that say how a field's values are stored. Also the blob-reference scan the store runs
// over every binary value it keeps alive.
import FuzzSupport
import InfinityChunks
import InfinityCrypto
@testable import InfinityBackup
@testable import InfinityDB

private let fileEntries = ValueCoder<FileEntry>()
private let summaries = ValueCoder<SnapshotSummary>()

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfRequested {
        let key = ChunkKey(bytes: SHA256.hash(Array("file content".utf8)))!
        let content = BlobRef(root: ChunkRef(id: key.chunkID, key: key, length: 4321), depth: 0, length: 4321)
        let file = FileEntry(
            kind: .file, mode: 0o644, userID: 1000, groupID: 1000, size: 4321, modified: 1_760_000_000_000_000_000,
            changed: 1_760_000_000_000_000_001, inode: 123_456, device: 2049, content: content,
            extendedAttributes: [.init(name: Array("user.tag".utf8), value: [1, 2, 3])])
        let link = FileEntry(
            kind: .symlink, mode: 0o777, userID: 0, groupID: 0, size: 7, modified: -5, changed: 0, inode: 9, device: 1,
            linkTarget: Array("../else".utf8))
        let device = FileEntry(
            kind: .characterDevice, mode: 0o600, userID: 0, groupID: 5, size: 0, modified: 0, changed: 0, inode: 1,
            device: 1, deviceNumber: 0x0501)
        let summary = SnapshotSummary(
            hostname: "host", username: "alice", sources: ["/home/alice", "/etc"], started: 1_760_000_000.25,
            finished: 1_760_000_100.5, files: 10, directories: 3, otherEntries: 1, bytes: 1 << 33)
        let tree = TreeRoot(kind: .map, level: 2, pointer: NodePointer(key: key, length: 900, count: 77))
        return [
            ("file-entry", try fileEntries.encode(file)),
            ("symlink-entry", try fileEntries.encode(link)),
            ("device-entry", try fileEntries.encode(device)),
            ("summary", try summaries.encode(summary)),
            ("path-key", try SnapshotPath("home/alice/report.pdf").encodedKey),
            ("field-state-map", FieldState(.map(tree), format: .binary).encoded),
            ("field-state-serialized", FieldState(.serialized(try summaries.encode(summary)), format: .binary).encoded),
        ]
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    decode { _ = try fileEntries.decode(bytes) }
    decode { _ = try summaries.decode(bytes) }
    decode { _ = try SnapshotPath(encodedKey: bytes) }
    decode { _ = try FieldState(encoded: bytes, field: "files") }
    decode { try bytes.withUnsafeBytes { try BinaryValueFormat.forEachBlobReference(in: $0) { _ in } } }
    return 0
}
