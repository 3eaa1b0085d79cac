// What a snapshot commit stores (Sources/InfinityBackup/FileEntry.swift, SnapshotPath.swift):
// file entries and the summary in the binary value format, paths as map keys, and the index
// entries that say how a field's values are stored. Also the blob-reference scan the store runs
// over every binary value it keeps alive, the binary value format for every kind of value an app
// can store, and the encodings of map keys.
import Foundation
import FuzzSupport
import InfinityChunks
import InfinityCrypto
@testable import InfinityBackup
@testable import InfinityDB

private let fileEntries = ValueCoder<FileEntry>()
private let summaries = ValueCoder<SnapshotSummary>()

/// A value of every kind the binary value format has a tag or a special form for.
private struct AppValue: Codable {
    enum Shape: Codable { case point, circle(radius: Float), polygon([Int8]) }
    var flag: Bool
    var small: Int8
    var wide: UInt128
    var signed: Int
    var ratio: Double
    var when: Date
    var id: UUID
    var payload: Data
    var shape: Shape
    var names: Set<String>
    var counts: [String: Int]
    var byNumber: [Int: String]
    var missing: String?
    var content: BlobRef?
}
private let appValues = ValueCoder<AppValue>()

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
            ("app-value", try appValues.encode(AppValue(
                flag: true, small: -3, wide: 1 << 100, signed: -123_456, ratio: 0.25, when: Date(timeIntervalSince1970: 1e9),
                id: UUID(uuid: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)), payload: Data([0, 1, 0xFF]),
                shape: .circle(radius: 2.5), names: ["a", "bc"], counts: ["x": 1, "y": -2], byNumber: [3: "three", -1: "minus"],
                missing: nil, content: content))),
            ("keys", "über".encodedKey + 42.encodedKey + (-1.5).encodedKey + UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7)).encodedKey
                + Float.infinity.encodedKey + true.encodedKey),
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
    decode { _ = try appValues.decode(bytes) }
    decode {
        // Keys one after another, as a compound key holds them.
        var keys = KeyDecoder(bytes)
        while !keys.isAtEnd {
            _ = try keys.decode(String.self)
            _ = try keys.decode(Int.self)
            _ = try keys.decode(Double.self)
            _ = try keys.decode(UUID.self)
            _ = try keys.decode(Float.self)
            _ = try keys.decode(Bool.self)
        }
    }
    return 0
}
