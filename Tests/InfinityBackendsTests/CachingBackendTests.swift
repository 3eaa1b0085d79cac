import Foundation
import InfinityBackends
import InfinityTestSupport
import Testing

@Suite struct CachingBackendTests {
    /// Every object kept warm, in a cache small enough that the suite's objects evict each other.
    @Test func conforms() async throws {
        try await withTemporaryDirectory { directory in
            var stores = 0
            try await BackendConformance.run {
                stores += 1
                return try await CachingBackend(
                    remote: MemoryBackend(), directory: "\(directory)/cache-\(stores)", capacity: 200_000, keepWarm: { _ in true })
            }
        }
    }

    @Test func servesWarmPacksFromDiskAndPassesTheRestThrough() async throws {
        try await withTemporaryDirectory { directory in
            let remote = CountingBackend()
            let cached = try await CachingBackend(remote: remote, directory: directory, capacity: 1 << 20)
            let pack = SampleData.bytes(count: 50_000, seed: 1)
            try await remote.put("packs/aa/pack", pack)
            try await remote.put("config", [1, 2, 3])

            // The first ranged read fetches the pack whole; the next ones are local.
            #expect(try await cached.get("packs/aa/pack", range: 100..<200) == Array(pack[100..<200]))
            await cached.settle()
            remote.resetCount()
            #expect(try await cached.get("packs/aa/pack", range: 1000..<1500) == Array(pack[1000..<1500]))
            #expect(try await cached.get("packs/aa/pack") == pack)
            #expect(remote.rangedReadCount == 0)
            #expect(cached.statistics.hits == 2 && cached.statistics.objects == 1)

            // What is not kept warm always goes to the backend.
            #expect(try await cached.get("config", range: 0..<2) == [1, 2])
            #expect(remote.rangedReadCount == 1)

            // A new cache over the same directory finds what was kept.
            let again = try await CachingBackend(remote: remote, directory: directory, capacity: 1 << 20)
            remote.resetCount()
            #expect(try await again.get("packs/aa/pack", range: 0..<10) == Array(pack[0..<10]))
            #expect(remote.rangedReadCount == 0 && again.statistics.hits == 1)
        }
    }

    @Test func neverHoldsMoreThanItsCapacity() async throws {
        try await withTemporaryDirectory { directory in
            let remote = MemoryBackend()
            let capacity = 100_000
            let cached = try await CachingBackend(remote: remote, directory: directory, capacity: capacity)
            func diskBytes() throws -> Int {
                let enumerator = FileManager.default.enumerator(atPath: directory)!
                var total = 0
                while let path = enumerator.nextObject() as? String {
                    let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/" + path)
                    if attributes[.type] as? FileAttributeType == .typeRegular { total += attributes[.size] as? Int ?? 0 }
                }
                return total
            }
            for index in 0..<30 {
                let name = "packs/\(String(format: "%02d", index))/p"
                try await cached.put(name, SampleData.bytes(count: 30_000, seed: UInt64(index)))
                _ = try await cached.get(name, range: 5..<10)  // kept, evicting older packs
                _ = try await cached.get("packs/00/p", range: 0..<10)  // keeps one pack in use
                await cached.settle()
                #expect(cached.statistics.bytes <= capacity)
                #expect(try diskBytes() <= capacity)
            }
            // The pack read all along was never the least recently used, so it stayed.
            #expect(cached.statistics.hits >= 29)
            #expect(cached.statistics.objects == 3)
            // An object larger than the cache is passed through, not kept.
            try await cached.put("packs/big/p", SampleData.bytes(count: capacity + 1, seed: 99))
            #expect(try await cached.get("packs/big/p").count == capacity + 1)
            await cached.settle()
            #expect(try diskBytes() <= capacity)
        }
    }

    @Test func dropsFileDataBeforeMetadataAndFetchesEachPackOnce() async throws {
        try await withTemporaryDirectory { directory in
            let remote = CountingBackend()
            let cached = try await CachingBackend(
                remote: remote, directory: directory, capacity: 100_000, evictFirst: { $0.hasPrefix("packs/d") })
            try await remote.put("packs/m1/p", SampleData.bytes(count: 30_000, seed: 1))
            _ = try await cached.get("packs/m1/p", range: 0..<1)
            await cached.settle()
            for index in 0..<5 {
                let name = "packs/d\(index)/p"
                try await remote.put(name, SampleData.bytes(count: 30_000, seed: UInt64(10 + index)))
                // Many readers at once of a pack not yet kept: it is fetched once.
                try await withThrowingTaskGroup(of: [UInt8].self) { group in
                    for offset in 0..<8 { group.addTask { try await cached.get(name, range: offset * 100..<(offset * 100 + 50)) } }
                    try await group.waitForAll()
                }
                await cached.settle()
            }
            // Each pack was fetched once, however many read it at once.
            #expect(remote.wholeReadCount == 6 && remote.rangedReadCount == 0)
            // Data packs came and went; the metadata pack, though least recently used, stayed.
            remote.resetCount()
            _ = try await cached.get("packs/m1/p", range: 10..<20)
            #expect(remote.wholeReadCount == 0 && remote.rangedReadCount == 0)
        }
    }
}

@Suite struct CachingBackendWindowTests {
    /// A restore through a cache the packs do not fit in: each pack is fetched once and its
    /// other ranges are served from memory, not fetched whole again for every chunk.
    @Test func packsTheDiskCannotKeepAreFetchedOnce() async throws {
        try await withTemporaryDirectory { directory in
            let remote = CountingBackend()
            let cached = try await CachingBackend(remote: remote, directory: directory, capacity: 0, memoryCapacity: 100_000)
            var packs: [(name: String, bytes: [UInt8])] = []
            for index in 0..<3 {
                packs.append(("packs/\(index)/p", SampleData.bytes(count: 40_000, seed: UInt64(index))))
                try await remote.put(packs[index].name, packs[index].bytes)
            }
            for pack in packs {
                for offset in stride(from: 0, to: 40_000, by: 4_000) {
                    #expect(try await cached.get(pack.name, range: offset..<(offset + 100)) == Array(pack.bytes[offset..<(offset + 100)]))
                    await cached.settle()
                }
            }
            #expect(remote.wholeReadCount == 3 && remote.rangedReadCount == 0)
            // The window holds two of them (80,000 of 100,000 bytes): the oldest went first.
            remote.resetCount()
            _ = try await cached.get(packs[2].name, range: 0..<10)
            _ = try await cached.get(packs[1].name)
            #expect(remote.wholeReadCount == 0)
            _ = try await cached.get(packs[0].name, range: 0..<10)
            await cached.settle()
            #expect(remote.wholeReadCount == 1)
            // A new copy under the name (a write) is never served from the window.
            let replacement = SampleData.bytes(count: 40_000, seed: 77)
            try await cached.put(packs[0].name, replacement)
            #expect(try await cached.get(packs[0].name, range: 0..<10) == Array(replacement[0..<10]))
            #expect(cached.statistics.bytes == 0)
        }
    }

    /// A pack larger than both the disk cache and the window is fetched whole once, then read
    /// by ranges: never fetched whole for every chunk.
    @Test func packsTooLargeForMemoryAreReadByRanges() async throws {
        try await withTemporaryDirectory { directory in
            let remote = CountingBackend()
            let cached = try await CachingBackend(remote: remote, directory: directory, capacity: 10_000, memoryCapacity: 10_000)
            let pack = SampleData.bytes(count: 50_000, seed: 5)
            try await remote.put("packs/big/p", pack)
            for offset in stride(from: 0, to: 50_000, by: 5_000) {
                #expect(try await cached.get("packs/big/p", range: offset..<(offset + 10)) == Array(pack[offset..<(offset + 10)]))
                await cached.settle()
            }
            #expect(remote.wholeReadCount == 1 && remote.rangedReadCount == 9)
        }
    }
}

@Suite struct CachingBackendScanTests {
    /// Indexing reads the end of every pack: while the cache has room, each pack comes whole
    /// (one request, and a restore after it is local); once it is full, only the end is read,
    /// and nothing already kept is pushed out.
    @Test func scansKeepWholePacksOnlyWhileThereIsRoom() async throws {
        try await withTemporaryDirectory { directory in
            let remote = CountingBackend()
            let cached = try await CachingBackend(remote: remote, directory: directory, capacity: 100_000)
            var packs: [(name: String, bytes: [UInt8])] = []
            for index in 0..<5 {
                let pack = (name: "packs/\(index)/p", bytes: SampleData.bytes(count: 30_000, seed: UInt64(index)))
                try await remote.put(pack.name, pack.bytes)
                packs.append(pack)
            }
            remote.resetCount()
            for pack in packs {
                let tail = try await cached.scan(pack.name, range: 29_000..<30_000, objectSize: pack.bytes.count)
                #expect(tail == Array(pack.bytes[29_000...]))
                await cached.settle()
            }
            // Three packs fit in 100,000 bytes: fetched whole. The other two: their ends only.
            #expect(remote.wholeReadCount == 3 && remote.rangedReadCount == 2)
            #expect(cached.statistics.objects == 3 && cached.statistics.bytes <= 100_000)
            remote.resetCount()
            for pack in packs.prefix(3) {
                #expect(try await cached.get(pack.name, range: 0..<10) == Array(pack.bytes[0..<10]))
            }
            #expect(remote.wholeReadCount == 0 && remote.rangedReadCount == 0)
            // A backend with no cache reads the range.
            #expect(try await remote.scan(packs[4].name, range: 0..<5, objectSize: 30_000) == Array(packs[4].bytes[0..<5]))
        }
    }

    /// A prefetch fetches what is kept warm, in order, as long as it fits without evicting;
    /// the reads after it are local.
    @Test func prefetchFillsOnlyTheRoomThereIs() async throws {
        try await withTemporaryDirectory { directory in
            let remote = CountingBackend()
            let cached = try await CachingBackend(remote: remote, directory: directory, capacity: 100_000)
            try await remote.put("config", [1])
            for index in 0..<5 { try await remote.put("packs/\(index)/p", SampleData.bytes(count: 30_000, seed: UInt64(index))) }
            _ = try await cached.get("packs/0/p", range: 0..<1)
            await cached.settle()
            remote.resetCount()
            await cached.prefetch(try await remote.list(prefix: ""))
            // Pack 0 was there; packs 1 and 2 fit beside it; config is not kept warm.
            #expect(remote.wholeReadCount == 2 && cached.statistics.objects == 3)
            #expect(cached.statistics.bytes <= 100_000)
            remote.resetCount()
            for index in 0..<3 { _ = try await cached.get("packs/\(index)/p", range: 5..<9) }
            #expect(remote.wholeReadCount == 0 && remote.rangedReadCount == 0)
        }
    }

    /// A copy cut short by an exit is swept when a cache next opens over the folder, once it is
    /// old enough that no process can still be writing it; a younger one stays.
    @Test func copiesCutShortAreSweptOnceStale() async throws {
        try await withTemporaryDirectory { directory in
            let folder = directory + "/packs/ab"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let stale = folder + "/.tmp~stale", fresh = folder + "/.tmp~fresh"
            for path in [stale, fresh] { _ = FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3])) }
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: stale)
            _ = try await CachingBackend(remote: MemoryBackend(), directory: directory, capacity: 1 << 20)
            #expect(!FileManager.default.fileExists(atPath: stale))
            #expect(FileManager.default.fileExists(atPath: fresh))
        }
    }
}
