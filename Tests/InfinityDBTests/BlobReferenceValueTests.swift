import Foundation
import InfinityTestSupport
import Testing

@testable import InfinityDB

private struct FileEntry: Codable, Hashable, Sendable {
    var name: String
    var content: BlobRef
    var thumbnail: BlobRef?
    var versions: [BlobRef]
    var note: String
    var raw: Data
}

private struct Folder: Codable, Hashable, Sendable {
    var entries: [String: FileEntry]
    var cover: [BlobRef?]
}

/// Distinct references as `putBlob` makes them.
private func makeBlobs(_ count: Int) async throws -> [BlobRef] {
    let store = try makeChunkStore()
    var blobs: [BlobRef] = []
    for index in 0..<count {
        blobs.append(try await store.putBlob(Array("blob number \(index) ".utf8) + SecureRandom.bytes(count: 100 * index)))
    }
    return blobs
}

/// The references the store finds in an encoding, without its type.
private func scan(_ bytes: [UInt8]) throws -> [BlobRef] {
    var found: [BlobRef] = []
    try bytes.withUnsafeBytes { try BinaryValueFormat.forEachBlobReference(in: $0) { found.append($0) } }
    return found
}

@Suite struct BlobReferenceValueTests {
    @Test func valuesHoldingReferencesRoundTrip() async throws {
        let blobs = try await makeBlobs(6)
        let entry = FileEntry(
            name: "a.txt", content: blobs[0], thumbnail: blobs[1], versions: [blobs[2], blobs[3]], note: "", raw: Data([0x0B]))
        let bare = FileEntry(name: "b", content: blobs[4], thumbnail: nil, versions: [], note: "n", raw: Data())
        let folder = Folder(entries: ["a": entry, "b": bare], cover: [nil, blobs[5]])

        let folders = ValueCoder<Folder>()
        #expect(try folders.decode(try folders.encode(folder)) == folder)
        let single = ValueCoder<BlobRef>()
        #expect(try single.decode(try single.encode(blobs[3])) == blobs[3])
        let optional = ValueCoder<BlobRef?>()
        #expect(try optional.decode(try optional.encode(nil)) == nil)
        #expect(try optional.decode(try optional.encode(blobs[2])) == blobs[2])
        let list = ValueCoder<[BlobRef]>()
        #expect(try list.decode(try list.encode(blobs)) == blobs)
    }

    @Test func aReferenceIsItsTagAndCompactForm() async throws {
        let blob = try await makeBlobs(1)[0]
        let encoded = try ValueCoder<BlobRef>().encode(blob)
        #expect(encoded == [BinaryValueFormat.version, 0x0B] + blob.compactForm)
        #expect(ValueCoder<BlobRef>().usesBinaryFormat, "a reference alone is binary too, so the store can find it")
        // Inside a struct: the compact form, not the 100-character token.
        let entry = FileEntry(name: "x", content: blob, thumbnail: nil, versions: [], note: "", raw: Data())
        let bytes = try ValueCoder<FileEntry>().encode(entry)
        #expect(bytes.count < 80 + blob.compactForm.count)
        #expect(!String(decoding: bytes, as: UTF8.self).contains("blob1:"))
    }

    @Test func damagedReferencesAreRefused() async throws {
        let blob = try await makeBlobs(3)[2]
        let coder = ValueCoder<BlobRef>()
        let good = try coder.encode(blob)
        for length in 0..<good.count {
            #expect(throws: FieldError.self, "truncated to \(length)") { try coder.decode(good.prefix(length)) }
        }
        #expect(throws: FieldError.self, "trailing byte") { try coder.decode(good + [0]) }
        var tooDeep = good
        tooDeep[2] = UInt8(BlobRef.maximumDepth + 1)
        #expect(throws: FieldError.self) { try coder.decode(tooDeep) }
        // The length (from byte 3) in one byte more than its shortest form.
        let lengthEnd = 3 + (blob.length < 0x80 ? 1 : 2)
        var overlong = good
        overlong[lengthEnd - 1] |= 0x80
        overlong.insert(0x00, at: lengthEnd)
        #expect(throws: FieldError.self) { try coder.decode(overlong) }
        // A token string where a reference belongs is another value, not a second encoding.
        let token = try ValueCoder<FileEntry>().encode(
            FileEntry(name: "x", content: blob, thumbnail: nil, versions: [], note: "", raw: Data()))
        struct TokenEntry: Codable { var name: String; var content: String; var thumbnail: String?; var versions: [String]; var note: String; var raw: Data }
        let asToken = try ValueCoder<TokenEntry>().encode(
            TokenEntry(name: "x", content: blob.token, thumbnail: nil, versions: [], note: "", raw: Data()))
        #expect(token != asToken)
        #expect(throws: FieldError.self) { try ValueCoder<FileEntry>().decode(asToken) }
        // Every flipped byte is refused or decodes to some value: never a trap.
        for index in good.indices {
            var flipped = good
            flipped[index] ^= 0x40
            _ = try? coder.decode(flipped)
            _ = try? scan(flipped)
        }
    }

    @Test func theScanFindsExactlyTheReferences() async throws {
        let blobs = try await makeBlobs(6)
        // Strings and bytes that look like references (a tag byte, a whole compact form, a
        // token) must not be taken for one.
        let decoy = [0x0B] + blobs[5].compactForm
        let entry = FileEntry(
            name: String(decoding: [0x0B, 0x00], as: UTF8.self), content: blobs[0], thumbnail: blobs[1],
            versions: [blobs[2], blobs[0]], note: blobs[5].token, raw: Data(decoy))
        let other = FileEntry(name: "b", content: blobs[3], thumbnail: nil, versions: [], note: "", raw: Data())
        let folder = Folder(entries: ["a": entry, "b": other], cover: [nil, blobs[4]])
        let found = try scan(try ValueCoder<Folder>().encode(folder))
        // Keyed entries are in key order: "cover" before "entries"; inside an entry "content",
        // "thumbnail", then "versions".
        #expect(found == [blobs[4], blobs[0], blobs[1], blobs[2], blobs[0], blobs[3]])
        #expect(try scan(try ValueCoder<[String: Int]>().encode(["a": 11, "b": 0x0B])) == [])
        #expect(try scan(try ValueCoder<BlobRef?>().encode(nil)) == [])
        #expect(try scan(try ValueCoder<BlobRef>().encode(blobs[2])) == [blobs[2]])
    }

    @Test func theScanRefusesWhatIsNotOneValue() async throws {
        let blob = try await makeBlobs(1)[0]
        let good = try ValueCoder<[BlobRef]>().encode([blob, blob])
        for length in 0..<good.count {
            #expect(throws: FieldError.self, "truncated to \(length)") { try scan(Array(good.prefix(length))) }
        }
        #expect(throws: FieldError.self) { try scan(good + [0]) }
        #expect(throws: FieldError.self, "a newer format") { try scan([BinaryValueFormat.version + 1, 0x00]) }
        #expect(throws: FieldError.self, "raw bytes are not the binary format") { try scan(Array("hello".utf8)) }
    }

    @Test func fieldEntriesRecordTheValueFormat() async throws {
        let database = try await makeDatabase()
        let blob = try await database.store.chunks.putBlob(Array("content".utf8))
        let entries = VersionedMap<String, FileEntry>("entries")
        let names = VersionedMap<String, String>("names")
        let draft = try await database.draft()
        try await draft.set(FileEntry(name: "a", content: blob, thumbnail: nil, versions: [], note: "", raw: Data()), for: "a", in: entries)
        try await draft.set("text", for: "a", in: names)
        try await draft.append([blob], to: List<BlobRef>("blobs"))
        try await draft.set(blob, in: Serialized<BlobRef>("cover"))
        try await draft.set(7, in: Serialized<Int>("count"))
        let snapshot = try await draft.commit(message: "formats")
        #expect(try await snapshot.fieldState("entries")?.format == .binary)
        #expect(try await snapshot.fieldState("blobs")?.format == .binary)
        #expect(try await snapshot.fieldState("cover")?.format == .binary)
        #expect(try await snapshot.fieldState("names")?.format == .raw)
        #expect(try await snapshot.fieldState("count")?.format == .raw)

        // Raw values in a field of binary values would be scanned as binary: refused.
        let next = try await database.draft()
        await #expect {
            try await next.set("raw", for: "b", in: VersionedMap<String, String>("entries"))
        } throws: { error in
            (error as? DatabaseError)?.code == .fieldKindMismatch && "\(error)".contains("entries")
        }
        // A field written before formats were recorded (raw) becomes binary when binary values arrive.
        try await next.set(FileEntry(name: "b", content: blob, thumbnail: nil, versions: [], note: "", raw: Data()), for: "b", in: VersionedMap<String, FileEntry>("names"))
        #expect(try await next.commit(message: "more").fieldState("names")?.format == .binary)
    }

    @Test func theFormatFlagIsTheHighBitOfTheKind() throws {
        let state = FieldState(.serialized([1, 2]), format: .binary)
        #expect(state.encoded == [0x82, 1, 2])
        #expect(try FieldState(encoded: [0x82, 1, 2], field: "f") == state)
        #expect(try FieldState(encoded: [0x02, 1, 2], field: "f").format == .raw)
        #expect(throws: DatabaseError.self) { try FieldState(encoded: [0x83], field: "f") }
    }
}

@Suite struct FieldFormatTests {
    @Test func bufferedBinaryValuesCountWhenRawValuesArrive() async throws {
        let database = try await makeDatabase()
        let blob = try await database.store.chunks.putBlob(Array("content".utf8))
        let draft = try await database.draft()
        try await draft.set(blob, for: "a", in: VersionedMap<String, BlobRef>("mixed"))
        // The reference is still in the edit buffer, not in the tree: the raw value is refused all the same.
        await #expect(throws: DatabaseError.self) {
            try await draft.set("text", for: "b", in: VersionedMap<String, String>("mixed"))
        }
        let snapshot = try await draft.commit(message: "one reference")
        #expect(try await snapshot.fieldState("mixed")?.format == .binary)
        #expect(try await snapshot.get("a", in: VersionedMap<String, BlobRef>("mixed")) == blob)
    }
}
