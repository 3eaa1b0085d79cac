import Foundation
import InfinityBackends
import InfinityTestSupport
import Testing

@testable import InfinityDB

/// A process that dies in the middle of writing an object: the store opens again, the last
/// commit before it reads back byte for byte, `check` is clean or names the one damaged object,
/// and the next commit succeeds.
@Suite struct InterruptedWriteTests {
    static let files = VersionedMap<String, BlobRef>("files")

    /// A store in a folder, opened either through an interrupting backend or plainly.
    struct Place {
        let folder: String
        var root: String { folder + "/store" }
        var indexPath: String { folder + "/local/index.sqlite" }
        var historyPath: String { folder + "/refs.sqlite" }

        func create() async throws -> (Database, InterruptingBackend) {
            try FileManager.default.createDirectory(atPath: folder + "/local", withIntermediateDirectories: true)
            let backend = InterruptingBackend(try LocalDirectoryBackend(root: root))
            let store = try await Store.create(
                backend: backend, indexPath: indexPath, historyPath: historyPath, location: root, agentName: "writer",
                passphrase: passphrase, options: try smallChunkOptions())
            return (try store.database(), backend)
        }

        /// What the next process does: open the folder as it was left.
        func reopen(with key: SecureBytes = passphrase) async throws -> Database {
            let store = try await Store.open(
                backend: try LocalDirectoryBackend(root: root), indexPath: indexPath, historyPath: historyPath,
                location: root, passphrase: key)
            return try store.database()
        }
    }

    static func contents(seed: UInt64) -> [String: [UInt8]] {
        ["a": SampleData.bytes(count: 150_000, seed: seed), "b": SampleData.bytes(count: 90_000, seed: seed + 1),
         "c": Array("note \(seed)".utf8)]
    }

    @discardableResult
    static func commit(_ contents: [String: [UInt8]], to database: Database) async throws -> Snapshot {
        let draft = try await database.draft()
        for (name, bytes) in contents.sorted(by: { $0.key < $1.key }) {
            try await draft.set(try await database.store.chunks.putBlob(bytes), for: name, in: files)
        }
        return try await draft.commit(message: "files")
    }

    static func expectContents(_ expected: [String: [UInt8]], at revision: String, in database: Database) async throws {
        let snapshot = try await database.snapshot(revision)
        for (name, bytes) in expected {
            let blob = try #require(try await snapshot.get(name, in: files), "\(name) at \(revision)")
            var read: [UInt8] = []
            try await database.store.chunks.getBlob(blob) { read += $0 }
            #expect(read == bytes, "\(name) at \(revision)")
        }
    }

    /// Every pack put of a commit in turn is the one interrupted, with either leftover.
    @Test(arguments: InterruptingBackend.Leftover.allCases)
    func aCommitInterruptedAtAnyPackLeavesTheStoreUsable(leftover: InterruptingBackend.Leftover) async throws {
        var interruptedCommits = 0
        for putsBefore in 0..<32 {
            let finished = try await withTemporaryDirectory { folder -> Bool in
                let place = Place(folder: folder)
                let (database, backend) = try await place.create()
                let first = try await Self.commit(Self.contents(seed: 1), to: database)
                backend.interrupt(afterWrites: putsBefore, of: "packs/", leaving: leftover)
                do {
                    try await Self.commit(Self.contents(seed: 2), to: database)
                    #expect(backend.interruptedName == nil)
                    return true
                } catch {
                    #expect(backend.interruptedName != nil, "\(error)")
                }
                let torn = try #require(backend.interruptedName)

                let reopened = try await place.reopen()
                #expect(try await reopened.snapshot("main").commit?.ref == first.commit?.ref, "the branch stays where it was")
                try await Self.expectContents(Self.contents(seed: 1), at: "main", in: reopened)
                try Self.expectOnlyDamage(to: torn, leftover: leftover, in: try await reopened.check(readData: .all))

                try await Self.commit(Self.contents(seed: 2), to: reopened)
                try await Self.expectContents(Self.contents(seed: 2), at: "main", in: reopened)
                try await Self.expectContents(Self.contents(seed: 1), at: "main~1", in: reopened)
                try Self.expectOnlyDamage(to: torn, leftover: leftover, in: try await reopened.check(readData: .all))
                return false
            }
            if finished { break }
            interruptedCommits += 1
        }
        #expect(interruptedCommits >= 2, "a commit writes several packs, each interrupted once")
    }

    /// A torn object left under its own name is named by check, precisely and alone; a
    /// temporary file is no object at all.
    static func expectOnlyDamage(to torn: String, leftover: InterruptingBackend.Leftover, in report: CheckReport) throws {
        switch leftover {
        case .temporaryFile:
            #expect(report.isClean, "\(report.problems)")
        case .truncatedObject:
            #expect(!report.problems.isEmpty, "the half pack \(torn) is reported")
            for problem in report.problems {
                #expect(problem.object == "pack \(torn)", "\(problem)")
                #expect(problem.code == .unindexedPack, "\(problem)")
            }
        }
    }

    /// A passphrase change that dies writing the new key file leaves the old passphrase working,
    /// and the next change succeeds.
    @Test(arguments: InterruptingBackend.Leftover.allCases)
    func aPassphraseChangeInterruptedLeavesTheOldOneWorking(leftover: InterruptingBackend.Leftover) async throws {
        try await withTemporaryDirectory { folder in
            let place = Place(folder: folder)
            let (database, backend) = try await place.create()
            try await Self.commit(Self.contents(seed: 3), to: database)
            backend.interrupt(afterWrites: 0, of: Store.keysPrefix, leaving: leftover)
            let newPassphrase = SecureBytes(utf8: "a new passphrase")
            await #expect(throws: BackendError.self) {
                try await database.store.changePassphrase(to: newPassphrase, parameters: .minimal)
            }
            await #expect(throws: StoreError.self) { _ = try await place.reopen(with: newPassphrase) }
            let reopened = try await place.reopen()
            try await Self.expectContents(Self.contents(seed: 3), at: "main", in: reopened)
            try await reopened.store.changePassphrase(to: newPassphrase, parameters: .minimal)
            let again = try await place.reopen(with: newPassphrase)
            try await Self.expectContents(Self.contents(seed: 3), at: "main", in: again)
            #expect(try await again.check(readData: .all).isClean)
        }
    }

    /// A change that dies after writing the new key file, before removing the old one, leaves
    /// both passphrases working; the next change that succeeds leaves only its own.
    @Test func aSuccessfulChangeRemovesTheKeyFileAnInterruptedOneLeft() async throws {
        try await withTemporaryDirectory { folder in
            let place = Place(folder: folder)
            let (database, backend) = try await place.create()
            try await Self.commit(Self.contents(seed: 4), to: database)
            let second = SecureBytes(utf8: "second passphrase")
            let third = SecureBytes(utf8: "third passphrase")
            backend.interrupt(afterWrites: 1, of: Store.keysPrefix)
            await #expect(throws: BackendError.self) {
                try await database.store.changePassphrase(to: second, parameters: .minimal)
            }
            _ = try await place.reopen(with: passphrase)
            let reopened = try await place.reopen(with: second)

            try await reopened.store.changePassphrase(to: third, parameters: .minimal)
            for old in [passphrase, second] {
                await #expect(throws: StoreError.self, "a passphrase from before the change still opens the store") {
                    _ = try await place.reopen(with: old)
                }
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: place.root + "/keys").count == 1)
            try await Self.expectContents(Self.contents(seed: 4), at: "main", in: try await place.reopen(with: third))
        }
    }
}
