import InfinityChunks
import InfinityTestSupport
import Testing

@testable import InfinityBackup
@testable import InfinityDB

/// Snapshot entries are read directly, not through Codable: both must agree on every value, and
/// on damaged bytes the direct reading must never produce a value Codable would not.
@Suite struct FileEntryDecodingTests {
    private static func randomEntry(_ random: inout SeededGenerator) -> FileEntry {
        let kind = FileEntry.Kind(rawValue: UInt8.random(in: 0...7, using: &random))!
        var entry = FileEntry(
            kind: kind, mode: UInt32.random(in: 0...0o7777, using: &random), userID: UInt32.random(in: 0...UInt32.max, using: &random),
            groupID: UInt32.random(in: 0...70_000, using: &random), size: Int64.random(in: 0...(1 << 40), using: &random),
            modified: Int64.random(in: Int64.min...Int64.max, using: &random), changed: Int64.random(in: -1_000...1 << 62, using: &random),
            inode: UInt64.random(in: 0...UInt64.max, using: &random), device: UInt64.random(in: 0...1 << 20, using: &random))
        if Bool.random(using: &random) {
            let key = ChunkKey(bytes: (0..<ChunkKey.byteCount).map { _ in UInt8.random(in: 0...255, using: &random) })!
            let length = Int.random(in: 1...(1 << 20), using: &random)
            entry.content = BlobRef(root: ChunkRef(id: key.chunkID, key: key, length: length), depth: 0, length: length)
        }
        if Bool.random(using: &random) { entry.linkTarget = Array("../some/where ✓".utf8.prefix(Int.random(in: 0...18, using: &random))) }
        if Bool.random(using: &random) { entry.deviceNumber = UInt64.random(in: 0...UInt64.max, using: &random) }
        if Bool.random(using: &random) {
            entry.extendedAttributes = (0..<Int.random(in: 0...3, using: &random)).map { index in
                FileEntry.ExtendedAttribute(name: Array("user.tag\(index)".utf8), value: (0..<index * 7).map { UInt8($0) })
            }
        }
        return entry
    }

    private static func generic(_ bytes: [UInt8]) -> FileEntry? {
        try? bytes.withUnsafeBytes { try BinaryValueDecoding.decode(FileEntry.self, from: $0) }
    }

    private static func direct(_ bytes: [UInt8]) -> FileEntry? {
        bytes.withUnsafeBytes { ValueCoder<FileEntry>.decodeDirectly($0) }
    }

    @Test func readsWhatCodableReads() throws {
        var random = SeededGenerator(seed: 2026)
        let coder = ValueCoder<FileEntry>()
        for _ in 0..<500 {
            let entry = Self.randomEntry(&random)
            let bytes = try coder.encode(entry)
            #expect(Self.direct(bytes) == entry)
            #expect(Self.generic(bytes) == entry)
            #expect(try coder.decode(bytes) == entry)
        }
    }

    @Test func damagedBytesNeverReadAsAnotherValue() throws {
        var random = SeededGenerator(seed: 77)
        let coder = ValueCoder<FileEntry>()
        var directReads = 0
        for _ in 0..<60 {
            let bytes = try coder.encode(Self.randomEntry(&random))
            var variants: [[UInt8]] = (0..<bytes.count).map { Array(bytes[..<$0]) }  // every truncation
            variants.append(bytes + [0])
            for position in bytes.indices {
                var flipped = bytes
                flipped[position] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
                variants.append(flipped)
            }
            for variant in variants {
                guard let read = Self.direct(variant) else { continue }
                directReads += 1
                // Whatever the direct reading accepts, Codable reads as the same value.
                #expect(Self.generic(variant) == read)
            }
        }
        #expect(directReads > 0)  // some flips land in values (a time, a size) and still decode
    }
}
