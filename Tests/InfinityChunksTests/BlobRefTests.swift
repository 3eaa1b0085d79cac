import InfinityBackends
import InfinityCrypto
import InfinityPacks
import InfinityTestSupport
import Testing

@testable import InfinityChunks

@Suite struct BlobRefTests {
    /// A reference as `putBlob` makes them, for a blob of `count` random bytes.
    private func storedBlob(_ count: Int) async throws -> (ChunkStore, BlobRef) {
        let store = try makeChunkStore()
        let blob = try await store.putBlob(randomBytes(count))
        return (store, blob)
    }

    @Test(arguments: [0, 1, 5000, 300_000])
    func compactFormRoundTrips(count: Int) async throws {
        let (_, blob) = try await storedBlob(count)
        let compact = blob.compactForm
        #expect(compact.count == blob.compactFormByteCount)
        #expect(try BlobRef(compactForm: compact) == blob)
        // Followed by other bytes, the reader says where the reference ends.
        let followed = compact + [0xAA, 0xBB]
        let read = followed.withUnsafeBytes { BlobRef.readCompactForm(from: $0) }
        #expect(read?.blob == blob)
        #expect(read?.byteCount == compact.count)
    }

    @Test func compactFormIsTheDocumentedLayout() async throws {
        let (_, blob) = try await storedBlob(300_000)
        var expected: [UInt8] = [UInt8(blob.depth)]
        var length = UInt64(blob.length)
        while length >= 0x80 {
            expected.append(UInt8(truncatingIfNeeded: length) | 0x80)
            length >>= 7
        }
        expected.append(UInt8(length))
        expected += blob.root.key.bytes
        #expect(blob.root.length < 0x80 * 0x80)
        expected += blob.root.length < 0x80
            ? [UInt8(blob.root.length)] : [UInt8(blob.root.length & 0x7F) | 0x80, UInt8(blob.root.length >> 7)]
        #expect(blob.compactForm == expected)
    }

    @Test func damagedCompactFormsAreRefused() async throws {
        let (_, blob) = try await storedBlob(5000)
        let compact = blob.compactForm
        // Every truncation, and a byte too many.
        for length in 0..<compact.count {
            #expect(throws: ChunkError.self, "truncated to \(length)") { try BlobRef(compactForm: compact.prefix(length)) }
        }
        #expect(throws: ChunkError.self) { try BlobRef(compactForm: compact + [0]) }
        // The length in a longer form than the shortest.
        let lengthSize = compact.count - 1 - ChunkKey.byteCount - 1 - (blob.root.length >= 0x80 ? 1 : 0)
        var overlong = compact
        overlong[lengthSize] |= 0x80
        overlong.insert(0x00, at: lengthSize + 1)
        #expect(throws: ChunkError.self) { try BlobRef(compactForm: overlong) }
        // Impossible depths and lengths.
        var tooDeep = compact
        tooDeep[0] = UInt8(BlobRef.maximumDepth + 1)
        #expect(throws: ChunkError.self) { try BlobRef(compactForm: tooDeep) }
        let dataRoot = ChunkRef(id: blob.root.id, key: blob.root.key, length: 100)
        #expect(throws: ChunkError.self, "a depth-0 root is the whole blob") {
            try BlobRef(compactForm: BlobRef(root: dataRoot, depth: 0, length: 101).compactForm)
        }
        #expect(throws: ChunkError.self, "a list root holds whole chunk references") {
            try BlobRef(compactForm: BlobRef(root: dataRoot, depth: 1, length: 5000).compactForm)
        }
        #expect(throws: ChunkError.self, "the tokens check the same rules") {
            try BlobRef(token: BlobRef(root: dataRoot, depth: 1, length: 5000).token)
        }
    }

    @Test func forEachChunkVisitsListsThenDataInOrder() async throws {
        let (store, blob) = try await storedBlob(3_000_000)
        #expect(blob.depth >= 2)
        var visited: [(ChunkRef, Int)] = []
        try await store.forEachChunk(of: blob) { ref, level in
            visited.append((ref, level))
            return true
        }
        #expect(visited.first?.0 == blob.root)
        #expect(visited.first?.1 == blob.depth)
        #expect(visited.map(\.1) == visited.map(\.1).sorted(by: >), "level by level from the root down")
        let data = visited.filter { $0.1 == 0 }.map(\.0)
        #expect(data == (try await store.chunks(of: blob)))
        #expect(data.reduce(0) { $0 + $1.length } == blob.length)

        // Returning false stops before anything else is read or visited.
        var count = 0
        try await store.forEachChunk(of: blob) { _, _ in
            count += 1
            return count < 3
        }
        #expect(count == 3)
    }

    @Test func forEachChunkNamesTheBlobWhenTheLengthsDisagree() async throws {
        let (store, blob) = try await storedBlob(300_000)
        let lying = BlobRef(root: blob.root, depth: blob.depth, length: blob.length + 1)
        await #expect {
            try await store.forEachChunk(of: lying) { _, _ in true }
        } throws: { error in
            (error as? ChunkError)?.code == .integrity && "\(error)".contains(blob.root.id.shortDescription)
        }
    }
}
