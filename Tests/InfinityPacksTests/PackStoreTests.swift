import Foundation
import InfinityBackends
import InfinityCrypto
import InfinityTestSupport
import Testing

@testable import InfinityPacks

/// A chunk id for tests: SHA-256 of a number.
func testID(_ number: Int) -> ChunkID {
    ChunkID(bytes: SHA256.hash(Array("chunk \(number)".utf8)))!
}

/// Bytes standing in for a sealed chunk.
func testBytes(_ number: Int, count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ number) }
}

@Suite struct ChunkIDTests {
    @Test func hexRoundTripAndOrder() throws {
        let id = testID(1)
        #expect(ChunkID(hex: id.description) == id)
        #expect(id.description.count == 64)
        #expect(ChunkID(bytes: [1, 2, 3]) == nil)
        let low = ChunkID(bytes: [UInt8](repeating: 0, count: 31) + [1])!
        let high = ChunkID(bytes: [1] + [UInt8](repeating: 0, count: 31))!
        #expect(low < high)
        #expect(high.bytes.first == 1)
    }
}

@Suite struct PackFormatTests {
    let key = SecureBytes.random(count: 32)

    func makePack(count: Int) throws -> FinishedPack {
        var builder = PackBuilder(kind: .metadata, capacity: 1024)
        for number in 0..<count {
            _ = builder.append(id: testID(number), sealed: testBytes(number, count: 100 + number), plaintextLength: 7 * number)
        }
        return try builder.finish(metadataKey: key)
    }

    @Test func trailerListsEveryChunk() throws {
        let pack = try makePack(count: 20)
        let trailer = try PackFormat.decodeTrailer(tail: pack.bytes, packSize: pack.bytes.count, packName: pack.name, metadataKey: key)
        #expect(trailer.kind == .metadata)
        #expect(trailer.entries == pack.entries)
        for entry in trailer.entries {
            let number = (0..<20).first { testID($0) == entry.id }!
            #expect(Array(pack.bytes[entry.offset..<(entry.offset + entry.length)]) == testBytes(number, count: 100 + number))
            #expect(entry.plaintextLength == 7 * number)
        }
        #expect(pack.name.hasPrefix("packs/"))
    }

    @Test func anotherKeyCannotReadTheTrailer() throws {
        let pack = try makePack(count: 3)
        #expect {
            try PackFormat.decodeTrailer(
                tail: pack.bytes, packSize: pack.bytes.count, packName: pack.name, metadataKey: .random(count: 32))
        } throws: { ($0 as? PackError)?.code == .trailerAuthenticationFailed }
    }

    @Test func damagedPacksGiveClearErrors() throws {
        let pack = try makePack(count: 3)
        var flipped = pack.bytes
        flipped[flipped.count - 20] ^= 0x01
        #expect {
            try PackFormat.decodeTrailer(tail: flipped, packSize: flipped.count, packName: "p", metadataKey: key)
        } throws: { ($0 as? PackError)?.code == .trailerAuthenticationFailed }

        let truncated = Array(pack.bytes.dropLast(3))
        #expect {
            try PackFormat.decodeTrailer(tail: truncated, packSize: truncated.count, packName: "p", metadataKey: key)
        } throws: { ($0 as? PackError)?.code == .malformedPack && "\($0)".contains("p") }

        var hugeLength = pack.bytes
        hugeLength[hugeLength.count - 9] = 0xFF
        #expect {
            try PackFormat.decodeTrailer(tail: hugeLength, packSize: hugeLength.count, packName: "p", metadataKey: key)
        } throws: { ($0 as? PackError)?.code == .malformedPack }

        #expect {
            try PackFormat.decodeTrailer(tail: [1, 2], packSize: 2, packName: "tiny", metadataKey: key)
        } throws: { "\($0)".contains("tiny") }
    }
}

@Suite struct PackStoreTests {
    /// A store with an in-memory index and 4 KiB packs.
    func smallPackStore(_ backend: MemoryBackend) throws -> PackStore {
        PackStore(backend: backend, index: try ChunkIndex(path: ":memory:"), metadataKey: .random(count: 32), targetPackSize: 4096)
    }

    /// Claiming many ids at once claims those neither pending nor indexed, each once.
    @Test func claimingManyIdsAtOnce() async throws {
        let store = try smallPackStore(MemoryBackend())
        #expect(try store.claim(testID(1)))
        #expect(try store.claim(testID(2)))
        try await store.add(testID(2), sealed: testBytes(2, count: 100), plaintextLength: 100, kind: .data)
        try await store.flush()
        #expect(try store.claim([1, 2, 3, 3, 4].map(testID)) == [false, false, true, false, true])
        #expect(try !store.claim(testID(3)), "claimed by the call for many")
        #expect(try store.claim([]) == [])
    }

    /// A prefetched location serves the read; one made stale since (the chunk moved to another
    /// pack, the old one deleted) is looked up again.
    @Test func prefetchedLocations() async throws {
        let backend = MemoryBackend()
        let store = try smallPackStore(backend)
        for number in 0..<3 {
            #expect(try store.claim(testID(number)))
            try await store.add(testID(number), sealed: testBytes(number, count: 100), plaintextLength: 100, kind: .data)
        }
        try await store.flush()
        try store.prefetchLocations(of: [0, 1, 2, 7].map(testID))
        #expect(try await store.read(testID(0)) == testBytes(0, count: 100))

        let moved = testBytes(1, count: 100)
        try await backend.put("packs/ff/moved", moved)
        _ = try store.index.record(
            packName: "packs/ff/moved", kind: .data, size: moved.count,
            entries: [PackEntry(id: testID(1), offset: 0, length: moved.count, plaintextLength: 100)], replacing: true)
        for pack in try await backend.list(prefix: "packs/") where pack.name != "packs/ff/moved" {
            try await backend.delete(pack.name)
        }
        #expect(try await store.read(testID(1)) == moved, "the stale location is looked up again")
        await #expect(throws: PackError.self) { try await store.read(testID(2)) }
        await #expect(throws: PackError.self) { try await store.read(testID(7)) }
    }

    @Test func chunksAreReadableBeforeAndAfterFlush() async throws {
        let backend = MemoryBackend()
        let store = try smallPackStore(backend)
        for number in 0..<50 {
            #expect(try store.claim(testID(number)))
            #expect(try !store.claim(testID(number)), "a second claim of a pending chunk is refused")
            try await store.add(testID(number), sealed: testBytes(number, count: 300), plaintextLength: 300, kind: number % 2 == 0 ? .data : .metadata)
        }
        for number in 0..<50 {
            #expect(try await store.read(testID(number)) == testBytes(number, count: 300))
        }
        try await store.flush()
        let packs = try await backend.list(prefix: "packs/")
        #expect(packs.count >= 4, "4 KiB packs for 15 KiB of chunks")
        var kinds: [PackKind: Int] = [:]
        for pack in packs {
            let trailer = try await store.readTrailer(ofPack: pack.name, size: pack.size)
            kinds[trailer.kind, default: 0] += trailer.entries.count
            for entry in trailer.entries {
                let number = (0..<50).first { testID($0) == entry.id }!
                #expect((number % 2 == 0) == (trailer.kind == .data), "data and metadata never share a pack")
            }
        }
        #expect(kinds == [.data: 25, .metadata: 25])
        for number in 0..<50 {
            #expect(try await store.read(testID(number)) == testBytes(number, count: 300))
            #expect(try !store.claim(testID(number)), "an indexed chunk is not written again")
        }
        let statistics = try store.index.statistics()
        #expect(statistics.chunkCount == 50)
        #expect(statistics.storedBytes == 50 * 300)
        #expect(statistics.packCount == packs.count)
    }

    @Test func missingChunkNamesTheID() async throws {
        let store = PackStore(backend: MemoryBackend(), index: try ChunkIndex(path: ":memory:"), metadataKey: .random(count: 32))
        await #expect {
            try await store.read(testID(9))
        } throws: { ($0 as? PackError)?.code == .chunkNotFound && "\($0)".contains(testID(9).description) }
    }

    @Test func rebuildIndexAfterTheIndexIsDeleted() async throws {
        try await withTemporaryDirectory { directory in
            let backend = MemoryBackend()
            let key = SecureBytes.random(count: 32)
            let indexPath = directory + "/index.sqlite"
            var locations: [ChunkID: ChunkLocation] = [:]
            do {
                let store = PackStore(backend: backend, index: try ChunkIndex(path: indexPath), metadataKey: key, targetPackSize: 2048)
                for number in 0..<40 {
                    _ = try store.claim(testID(number))
                    try await store.add(testID(number), sealed: testBytes(number, count: 200 + number), plaintextLength: 1000, kind: .data)
                }
                try await store.flush()
                for number in 0..<40 { locations[testID(number)] = try store.index.location(of: testID(number)) }
            }
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: indexPath + suffix) }

            // A stray object under packs/ that is not a pack must be reported, not fatal.
            try await backend.put("packs/zz/not-a-pack", Array("hello".utf8))

            let store = PackStore(backend: backend, index: try ChunkIndex(path: indexPath), metadataKey: key, targetPackSize: 2048)
            #expect(try store.index.statistics().chunkCount == 0)
            let report = try await store.rebuildIndex()
            #expect(report.chunksIndexed == 40)
            #expect(report.unreadablePacks.keys.sorted() == ["packs/zz/not-a-pack"])
            for number in 0..<40 {
                #expect(try store.index.location(of: testID(number)) == locations[testID(number)])
                #expect(try await store.read(testID(number)) == testBytes(number, count: 200 + number))
            }
        }
    }

    @Test func concurrentWritersStoreEachChunkOnce() async throws {
        let backend = MemoryBackend()
        let store = PackStore(backend: backend, index: try ChunkIndex(path: ":memory:"), metadataKey: .random(count: 32), targetPackSize: 8192)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for number in 0..<100 where try store.claim(testID(number)) {
                        try await store.add(testID(number), sealed: testBytes(number, count: 100), plaintextLength: 100 + writer, kind: .data)
                    }
                }
            }
            try await group.waitForAll()
        }
        try await store.flush()
        var stored = 0
        for pack in try await backend.list(prefix: "packs/") {
            stored += try await store.readTrailer(ofPack: pack.name, size: pack.size).entries.count
        }
        #expect(stored == 100)
    }

    @Test func readsDuringPackTurnoverAndConcurrentFlushes() async throws {
        // Small packs turn over constantly while other writers add, read back and flush.
        let store = PackStore(backend: MemoryBackend(), index: try ChunkIndex(path: ":memory:"), metadataKey: .random(count: 32), targetPackSize: 700)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<6 {
                group.addTask {
                    for step in 0..<60 {
                        let number = writer * 1000 + step
                        #expect(try store.claim(testID(number)))
                        try await store.add(testID(number), sealed: testBytes(number, count: 100 + step), plaintextLength: 1, kind: step % 3 == 0 ? .metadata : .data)
                        #expect(try await store.read(testID(number)) == testBytes(number, count: 100 + step))
                        if step % 20 == 19 {
                            try await store.flush()
                            for earlier in 0...step {
                                #expect(try store.index.contains(testID(writer * 1000 + earlier)), "flushed means indexed")
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
