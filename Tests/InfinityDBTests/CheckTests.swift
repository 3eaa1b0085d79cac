import Foundation
import InfinityTestSupport
import Synchronization
import Testing

@testable import InfinityDB

/// A store in a local directory with every kind of chunk (`commitGallery`). The store is closed when this returns, so a test can damage
/// its files before opening it again.
private struct CheckSample {
    let path: String
    let head: ChunkRef
    let photo: BlobRef
    let photosRoot: ChunkRef

    static func make(in directory: String) async throws -> CheckSample {
        let path = directory + "/store"
        let store = try await Store.create(at: path, agentName: "checker", passphrase: passphrase, options: try smallChunkOptions())
        let (blobs, head) = try await commitGallery(to: try store.database())
        let photosRoot = try #require(try await head.fieldState(Gallery.photos.name)?.tree).pointer.chunkRef
        return CheckSample(path: path, head: head.commit!.ref, photo: blobs.photo, photosRoot: photosRoot)
    }

    func open() async throws -> Database {
        try await Store.open(at: path, passphrase: passphrase).database()
    }

    /// Where a chunk lives, from the index.
    func location(of id: ChunkID) async throws -> ChunkLocation {
        try #require(try await Store.open(at: path, passphrase: passphrase).chunks.packs.index.location(of: id))
    }

    /// Flips one byte of a pack file.
    func flipByte(at offset: Int, ofPack name: String) throws {
        let file = path + "/" + name
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[offset] ^= 0x55
        try bytes.write(to: URL(fileURLWithPath: file))
    }

    /// The first data chunk of a blob.
    func firstDataChunk(of blob: BlobRef) async throws -> ChunkRef {
        try #require(try await Store.open(at: path, passphrase: passphrase).chunks.chunks(of: blob).first)
    }
}

@Suite struct CheckTests {
    @Test func aCleanStoreChecksClean() async throws {
        try await withTemporaryDirectory { directory in
            let sample = try await CheckSample.make(in: directory)
            let database = try await sample.open()
            var phases: [CheckProgress.Phase] = []
            let report = try await database.check { progress in
                if phases.last != progress.phase { phases.append(progress.phase) }
            }
            #expect(report.isClean, "\(report.problems)")
            #expect(phases == [.packs, .walk])
            #expect(report.summary.commits == 2)
            #expect(report.summary.refs == 3, "main, the tag and HEAD")
            #expect(report.summary.reflogEntries >= 3)
            #expect(report.summary.reachableChunks > 20)
            #expect(report.summary.indexedChunks > report.summary.reachableChunks, "the orphan blob is indexed, not reachable")

            let full = try await database.check(readData: .all)
            #expect(full.isClean, "\(full.problems)")
            #expect(full.summary.packsRead == full.summary.packs)
            #expect(full.summary.chunksVerified == full.summary.reachableChunks, "every reachable chunk is decrypted")
            #expect(full.summary.chunksUnreferenced == full.summary.indexedChunks - full.summary.reachableChunks)

            let storeOnly = try await database.store.check(readData: .all)
            #expect(storeOnly.isClean, "\(storeOnly.problems)")
            #expect(storeOnly.summary.chunksVerified == 0, "without the trees no key is known")
        }
    }

    @Test func aFlippedDataByteIsFoundByReadDataAndNamed() async throws {
        try await withTemporaryDirectory { directory in
            let sample = try await CheckSample.make(in: directory)
            let chunk = try await sample.firstDataChunk(of: sample.photo)
            let location = try await sample.location(of: chunk.id)
            try sample.flipByte(at: location.offset + location.length / 2, ofPack: location.packName)

            let database = try await sample.open()
            #expect(try await database.check().isClean, "file data is not read without --read-data")
            let report = try await database.check(readData: .all)
            #expect(report.problems.count == 1, "\(report.problems)")
            let problem = try #require(report.problems.first)
            #expect(problem.code == .damagedChunk)
            #expect(problem.object == "chunk \(chunk.id)")
            #expect(problem.message.contains(location.packName))
            #expect(problem.message.contains("blob data"))
        }
    }

    @Test func aFlippedNodeByteIsFoundByTheWalkAndNamesTheField() async throws {
        try await withTemporaryDirectory { directory in
            let sample = try await CheckSample.make(in: directory)
            let location = try await sample.location(of: sample.photosRoot.id)
            try sample.flipByte(at: location.offset + location.length / 2, ofPack: location.packName)

            let report = try await sample.open().check()
            let problem = try #require(report.problems.first { $0.code == .brokenTree })
            #expect(problem.object.contains("field \"photos\""))
            #expect(problem.object.contains("commit \(sample.head.id.shortDescription)"))
            #expect(problem.message.contains(sample.photosRoot.id.shortDescription))
        }
    }

    @Test func aDeletedPackIsReportedWithTheCommitsItHeld() async throws {
        try await withTemporaryDirectory { directory in
            let sample = try await CheckSample.make(in: directory)
            let location = try await sample.location(of: sample.head.id)
            try FileManager.default.removeItem(atPath: sample.path + "/" + location.packName)

            let report = try await sample.open().check()
            #expect(!report.isClean)
            let missing = try #require(report.problems.first { $0.code == .missingPack })
            #expect(missing.object == "pack \(location.packName)")
            #expect(missing.message.contains("commit"))
            #expect(missing.message.contains(sample.head.id.shortDescription))
            let commit = try #require(report.problems.first { $0.code == .brokenCommit })
            #expect(commit.object == "commit \(sample.head.id.shortDescription)")
            #expect(commit.message.contains("ref refs/heads/main"))
            #expect(!report.problems.contains { $0.code == .missingChunk }, "chunks of a missing pack are reported with the pack")
        }
    }

    @Test func anIndexEntryPastItsPackIsReported() async throws {
        try await withTemporaryDirectory { directory in
            let sample = try await CheckSample.make(in: directory)
            let chunk = try await sample.firstDataChunk(of: sample.photo)
            let location = try await sample.location(of: chunk.id)
            let index = try SQLiteConnection(path: sample.path + "/local/index.sqlite")
            try index.prepare("UPDATE chunks SET offset = offset + 100000000 WHERE id = ?").run([.blob(chunk.id.bytes)])
            #expect(index.changes == 1)

            let report = try await sample.open().check(readData: .all)
            let problems = report.problems.filter { $0.object == "chunk \(chunk.id)" }
            #expect(problems.count == 1, "\(report.problems)")
            #expect(problems.first?.code == .badIndexEntry)
            #expect(problems.first?.message.contains(location.packName) == true)
        }
    }

    @Test func aPackTheIndexDoesNotKnowIsReported() async throws {
        try await withTemporaryDirectory { directory in
            let sample = try await CheckSample.make(in: directory)
            let stray = "packs/00/" + String(repeating: "0", count: 64)
            try FileManager.default.createDirectory(atPath: sample.path + "/packs/00", withIntermediateDirectories: true)
            try Data(SecureRandom.bytes(count: 500)).write(to: URL(fileURLWithPath: sample.path + "/" + stray))

            let report = try await sample.open().check()
            #expect(report.problems.map(\.code) == [.unindexedPack])
            #expect(report.problems.first?.object == "pack \(stray)")
            #expect(report.problems.first?.message.contains("trailer cannot be read") == true)
        }
    }

    /// A writer stores a pack before it indexes it. A pack check finds in the backend but not
    /// in the index is reported only if the index still does not know it once its trailer has
    /// been read; here the writer indexes it during that read.
    @Test func aPackIndexedWhileCheckReadsItsTrailerIsNotReported() async throws {
        try await withTemporaryDirectory { directory in
            let root = directory + "/store"
            let backend = TrailerReadHookBackend(try LocalDirectoryBackend(root: root))
            let store = try await Store.create(
                backend: backend, indexPath: directory + "/index.sqlite", historyPath: directory + "/refs.sqlite", location: root,
                agentName: "checker", passphrase: passphrase, options: try smallChunkOptions())
            let database = try store.database()
            _ = try await commitGallery(to: database)
            let index = store.chunks.packs.index
            let pack = try #require(try index.packs().first)
            let entries = try index.entries(inPack: pack.name)
            // Stored and not yet indexed, as between a writer's put and its record.
            let db = try SQLiteConnection(path: directory + "/index.sqlite")
            try db.prepare("DELETE FROM chunks WHERE pack = (SELECT id FROM packs WHERE name = ?)").run([.text(pack.name)])
            try db.prepare("DELETE FROM packs WHERE name = ?").run([.text(pack.name)])

            backend.onRangedRead(of: pack.name) {
                _ = try? index.record(packName: pack.name, kind: pack.kind, size: pack.size, entries: entries)
            }
            let report = try await database.check()
            #expect(report.isClean, "\(report.problems)")
            #expect(backend.hookRan)

            // Not indexed at all: reported, with what a rebuild would add (its chunks are missing
            // from the index too).
            try db.prepare("DELETE FROM chunks WHERE pack = (SELECT id FROM packs WHERE name = ?)").run([.text(pack.name)])
            try db.prepare("DELETE FROM packs WHERE name = ?").run([.text(pack.name)])
            let unindexed = try await database.check().problems.filter { $0.code == .unindexedPack }
            #expect(unindexed.map(\.object) == ["pack \(pack.name)"])
            #expect(unindexed.first?.message.contains("its trailer lists \(entries.count) chunks") == true)
        }
    }

    @Test func aDamagedRefIsNamed() async throws {
        try await withTemporaryDirectory { directory in
            let sample = try await CheckSample.make(in: directory)
            let refs = try SQLiteConnection(path: sample.path + "/refs.sqlite")
            try refs.prepare("UPDATE refs SET sealed = ? WHERE name = 'refs/tags/v1'").run([.blob([UInt8](repeating: 7, count: 60))])

            let report = try await sample.open().check()
            #expect(report.problems.map(\.code) == [.brokenRef], "\(report.problems)")
            #expect(report.problems.first?.object == "ref refs/tags/v1")
            #expect(report.problems.first?.message.contains(sample.path + "/refs.sqlite") == true)
        }
    }

    @Test func aDamagedReflogEntryNamesTheRefsDatabase() async throws {
        try await withTemporaryDirectory { directory in
            let sample = try await CheckSample.make(in: directory)
            let refs = try SQLiteConnection(path: sample.path + "/refs.sqlite")
            // Damage from outside the store, which the append-only trigger does not stop.
            try refs.execute("DROP TRIGGER reflog_rows_are_never_updated")
            try refs.prepare("UPDATE reflog SET new_sealed = ? WHERE seq = (SELECT max(seq) FROM reflog)")
                .run([.blob([UInt8](repeating: 7, count: 60))])

            let report = try await sample.open().check()
            let broken = try #require(report.problems.first { $0.code == .brokenReflog }, "\(report.problems)")
            #expect(broken.object.hasPrefix("reflog entry "))
            #expect(broken.message.contains(sample.path + "/refs.sqlite"))
        }
    }

    @Test func aPackStoredAfterTheListingIsNotMissing() async throws {
        /// Lists every pack but one, as a listing taken just before a writer stored it would.
        final class LateListing: Backend {
            let inner = MemoryBackend()
            let hidden = Mutex<String?>(nil)
            func put(_ name: String, _ data: [UInt8]) async throws { try await inner.put(name, data) }
            func get(_ name: String) async throws -> [UInt8] { try await inner.get(name) }
            func get(_ name: String, range: Range<Int>) async throws -> [UInt8] { try await inner.get(name, range: range) }
            func info(_ name: String) async throws -> ObjectInfo? { try await inner.info(name) }
            func list(prefix: String) async throws -> [ObjectInfo] {
                let hidden = hidden.withLock { $0 }
                return try await inner.list(prefix: prefix).filter { $0.name != hidden }
            }
            func delete(_ name: String) async throws { try await inner.delete(name) }
        }
        let backend = LateListing()
        let database = try await makeSmallChunkDatabase(backend: backend)
        let (_, head) = try await commitGallery(to: database)
        let pack = try #require(try database.store.chunks.packs.index.location(of: head.commit!.ref.id)).packName
        backend.hidden.withLock { $0 = pack }
        let report = try await database.check()
        #expect(report.isClean, "\(report.problems)")
        try await backend.inner.delete(pack)
        #expect(try await database.check().problems.contains { $0.code == .missingPack && $0.object == "pack \(pack)" })
    }

    @Test func readDataSubsets() throws {
        #expect(try ReadDataSelection(parsing: "10%") == .fraction(0.1))
        #expect(try ReadDataSelection(parsing: "2/5") == .group(2, of: 5))
        for bad in ["0%", "101%", "x%", "0/3", "4/3", "1/0", "2", "a/b", ""] {
            #expect(throws: DatabaseError.self, "\(bad)") { try ReadDataSelection(parsing: bad) }
        }
        let names = (0..<200).map { "packs/\(String(format: "%02x", $0 % 256))/" + String(format: "%064x", $0 &* 2_654_435_761) }
        var covered: [String] = []
        for n in 1...7 { covered += ReadDataSelection.group(n, of: 7).choose(from: names) }
        #expect(covered.sorted() == names.sorted(), "the t groups read every pack exactly once")
        #expect(ReadDataSelection.group(3, of: 7).choose(from: names).count < 100)
        #expect(ReadDataSelection.fraction(0.1).choose(from: names).count == 20)
        #expect(ReadDataSelection.all.choose(from: names) == names.sorted())
        #expect(ReadDataSelection.none.choose(from: names).isEmpty)
    }
}

/// A backend that runs a closure once, just before the first ranged read of one object: what
/// another process does while this one reads.
private final class TrailerReadHookBackend: Backend, @unchecked Sendable {
    let inner: any Backend
    private let hook = Mutex<(name: String, action: @Sendable () -> Void)?>(nil)
    private let ran = Atomic<Bool>(false)

    init(_ inner: any Backend) {
        self.inner = inner
    }

    var hookRan: Bool { ran.load(ordering: .relaxed) }

    func onRangedRead(of name: String, _ action: @escaping @Sendable () -> Void) {
        hook.withLock { $0 = (name, action) }
    }

    func put(_ name: String, _ data: [UInt8]) async throws { try await inner.put(name, data) }
    func get(_ name: String) async throws -> [UInt8] { try await inner.get(name) }
    func get(_ name: String, range: Range<Int>) async throws -> [UInt8] {
        let action = hook.withLock { hook -> (@Sendable () -> Void)? in
            guard let pending = hook, pending.name == name else { return nil }
            hook = nil
            return pending.action
        }
        if let action {
            action()
            ran.store(true, ordering: .relaxed)
        }
        return try await inner.get(name, range: range)
    }
    func info(_ name: String) async throws -> ObjectInfo? { try await inner.info(name) }
    func list(prefix: String) async throws -> [ObjectInfo] { try await inner.list(prefix: prefix) }
    func delete(_ name: String) async throws { try await inner.delete(name) }
}
