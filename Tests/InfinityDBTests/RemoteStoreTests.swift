import Foundation
import InfinityBackends
import InfinityCrypto
import InfinitySQLite
import InfinityTestSupport
import Synchronization
import Testing

@testable import InfinityDB

@Suite struct RemoteStoreTests {
    /// A store in `directory/store.sqlite`, created from the state folder `machine-1`.
    private func createSingleFileStore(in directory: String) async throws -> (StoreAddress, Store) {
        let address = try StoreAddress("sqlite:" + directory + "/store.sqlite")
        let store = try await Store.create(
            address: address, agentName: "alice", passphrase: passphrase, options: fastOptions(),
            stateDirectory: directory + "/machine-1")
        return (address, store)
    }

    /// Two machines with their own copies of one single-file store's history: the second to save
    /// is refused, nothing of the first is lost, and after reopening it saves on top.
    @Test func twoMachinesNeverOverwriteEachOthersHistory() async throws {
        try await withTemporaryDirectory { directory in
            let (address, created) = try await createSingleFileStore(in: directory)
            let first = try created.database()
            let second = try await Store.open(address: address, passphrase: passphrase, stateDirectory: directory + "/machine-2").database()

            let draftOne = try await first.draft(on: "main")
            try await draftOne.set("one", for: "a", in: Gallery.notes)
            try await draftOne.commit(message: "on machine one")
            try await first.store.flush()

            // Machine two, still on the history before machine one's commit, is refused (at the
            // commit's own save or at the flush after it).
            let draftTwo = try await second.draft(on: "main")
            try await draftTwo.set("two", for: "b", in: Gallery.notes)
            await #expect {
                try await draftTwo.commit(message: "on machine two")
                try await second.store.flush()
            } throws: { error in
                (error as? StoreError)?.code == .conflict
            }

            // Run again: reopened, it takes machine one's history and commits on top.
            let reopened = try await Store.open(address: address, passphrase: passphrase, stateDirectory: directory + "/machine-2").database()
            #expect(try await reopened.snapshot("main").get("a", in: Gallery.notes) == "one")
            let again = try await reopened.draft(on: "main")
            try await again.set("two", for: "b", in: Gallery.notes)
            try await again.commit(message: "on machine two, again")
            try await reopened.store.flush()
            let third = try await Store.open(address: address, passphrase: passphrase, stateDirectory: directory + "/machine-3").database()
            let state = try await third.snapshot("main")
            #expect(try await state.get("a", in: Gallery.notes) == "one")
            #expect(try await state.get("b", in: Gallery.notes) == "two")
        }
    }

    /// A single-file store whose conditional write of the history's version lands but answers
    /// "changed since read" (as a retry after a lost answer is answered): once. With
    /// `unreadableAfterwards`, the version then cannot be read back, once: the push cannot tell
    /// whether its write landed.
    final class VersionAnswerLost: ConditionalWrites {
        let store: SQLiteBackend
        let unreadableAfterwards: Bool
        let lost = Mutex(false)
        let failedRead = Mutex(false)
        init(_ store: SQLiteBackend, unreadableAfterwards: Bool = false) {
            self.store = store
            self.unreadableAfterwards = unreadableAfterwards
        }
        func put(_ name: String, _ data: [UInt8]) async throws { try await store.put(name, data) }
        func get(_ name: String) async throws -> [UInt8] { try await store.get(name) }
        func get(_ name: String, range: Range<Int>) async throws -> [UInt8] { try await store.get(name, range: range) }
        func info(_ name: String) async throws -> ObjectInfo? { try await store.info(name) }
        func list(prefix: String) async throws -> [ObjectInfo] { try await store.list(prefix: prefix) }
        func delete(_ name: String) async throws { try await store.delete(name) }
        func getVersioned(_ name: String) async throws -> (bytes: [UInt8], version: String)? {
            let fails =
                unreadableAfterwards && lost.withLock { $0 } && failedRead.withLock { failed in defer { failed = true }; return !failed }
            guard !fails else {
                throw BackendError(code: .io, objectName: name, message: "object '\(name)' could not be read")
            }
            return try await store.getVersioned(name)
        }
        func put(_ name: String, _ data: [UInt8], ifVersion expected: String?) async throws -> String {
            let tag = try await store.put(name, data, ifVersion: expected)
            if name == RemoteHistory.versionObject, lost.withLock({ lost in defer { lost = true }; return !lost }) {
                throw BackendError(code: .preconditionFailed, objectName: name, message: "object '\(name)' changed since it was read")
            }
            return tag
        }
    }

    private let historyKey = SecureBytes(copying: Array(repeating: 7, count: 32))

    /// The history of a machine whose files each hold one row naming the file.
    private func historyOfMachineOne(backend: any Backend, directory: String) throws -> RemoteHistory {
        try FileManager.default.createDirectory(atPath: directory + "/machine-1", withIntermediateDirectories: true)
        for file in RemoteHistory.files {
            let connection = try SQLiteConnection(path: directory + "/machine-1/" + file)
            try connection.execute("CREATE TABLE saved(value TEXT); INSERT INTO saved VALUES ('\(file)')")
        }
        return try RemoteHistory(backend: backend, directory: directory + "/machine-1", location: "test store")
    }

    /// Another machine pulls the store's history and finds what ``historyOfMachineOne`` saved.
    private func expectMachineTwoTakesTheHistory(backend: any Backend, directory: String) async throws {
        try FileManager.default.createDirectory(atPath: directory + "/machine-2", withIntermediateDirectories: true)
        let second = try RemoteHistory(backend: backend, directory: directory + "/machine-2", location: "test store")
        try await second.pull(key: historyKey, version: try await second.readVersion())
        let rows = try SQLiteConnection(path: directory + "/machine-2/refs.sqlite").prepare("SELECT value FROM saved").rows()
        #expect(rows.first?.first == .text("refs.sqlite"))
    }

    /// A push whose version write landed, though the answer said it had not, succeeds: its files
    /// stay, and another machine takes the history it saved.
    @Test func aPushWhoseAnswerWasLostStillSaves() async throws {
        try await withTemporaryDirectory { directory in
            let backend = VersionAnswerLost(try SQLiteBackend(path: directory + "/store.sqlite"))
            let first = try historyOfMachineOne(backend: backend, directory: directory)
            try await first.push(key: historyKey)
            #expect(backend.lost.withLock { $0 })

            try await expectMachineTwoTakesTheHistory(backend: backend, directory: directory)
        }
    }

    /// A push that is told its version write failed, and cannot read the version back, says it
    /// cannot tell whether the change was saved, and deletes nothing: the write did land, and the
    /// history it saved stays readable.
    @Test func aPushThatCannotReadItsVersionBackDeletesNothing() async throws {
        try await withTemporaryDirectory { directory in
            let backend = VersionAnswerLost(try SQLiteBackend(path: directory + "/store.sqlite"), unreadableAfterwards: true)
            let first = try historyOfMachineOne(backend: backend, directory: directory)
            await #expect {
                try await first.push(key: historyKey)
            } throws: { error in
                (error as? StoreError)?.code == .conflict && "\(error)".contains("test store") && "\(error)".contains("read back")
            }
            #expect(backend.failedRead.withLock { $0 })
            let pushed = try await backend.list(prefix: "history/").filter { $0.name != RemoteHistory.versionObject }
            #expect(pushed.count == RemoteHistory.files.count, "the pushed files stay: \(pushed.map(\.name))")

            try await expectMachineTwoTakesTheHistory(backend: backend, directory: directory)
        }
    }

    /// An address with no store behind it is refused by name.
    @Test func anAddressWithNoStoreIsNamed() async throws {
        await withTemporaryDirectory { directory in
            let url = "sqlite:" + directory + "/empty.sqlite"
            await #expect {
                _ = try await Store.open(address: try StoreAddress(url), passphrase: passphrase, stateDirectory: directory + "/machine")
            } throws: { error in
                (error as? StoreError)?.code == .notAStore && "\(error)".contains(url)
            }
        }
    }

    /// A machine that only reads saves nothing: its first open takes the store's history, and
    /// flushing after it leaves the store's history as it was (no new version, no request).
    @Test func aMachineThatOnlyReadsSavesNoHistory() async throws {
        try await withTemporaryDirectory { directory in
            let (address, created) = try await createSingleFileStore(in: directory)
            let draft = try await created.database().draft(on: "main")
            try await draft.set("one", for: "a", in: Gallery.notes)
            try await draft.commit(message: "on machine one")
            try await created.flush()
            let versionObject = try SQLiteBackend(path: directory + "/store.sqlite")
            let before = try await versionObject.get(RemoteHistory.versionObject)

            let reader = try await Store.open(address: address, passphrase: passphrase, stateDirectory: directory + "/machine-2")
            #expect(try await reader.database().snapshot("main").get("a", in: Gallery.notes) == "one")
            try await reader.flush()
            #expect(try await versionObject.get(RemoteHistory.versionObject) == before)
        }
    }

    /// The provider of a single-file store puts back the history objects of an earlier save:
    /// they still authenticate, but their sequence number is below the one this machine saw.
    @Test func aHistoryRolledBackByTheProviderIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/store.sqlite"
            let machine = directory + "/machine"
            let database = try await Store.create(
                address: try StoreAddress("sqlite:" + path), agentName: "alice", passphrase: passphrase, options: fastOptions(),
                stateDirectory: machine
            ).database()
            let draft = try await database.draft(on: "main")
            try await draft.set("one", for: "a", in: Gallery.notes)
            try await draft.commit(message: "one")
            try await database.store.flush()
            let provider = try SQLiteBackend(path: path)
            var saved: [(String, [UInt8])] = []
            for object in try await provider.list(prefix: "history/") { saved.append((object.name, try await provider.get(object.name))) }

            try await draft.set("two", for: "b", in: Gallery.notes)
            try await draft.commit(message: "two")
            try await database.store.flush()
            for (name, bytes) in saved { try await provider.put(name, bytes) }
            await #expect {
                try await Store.open(address: try StoreAddress("sqlite:" + path), passphrase: passphrase, stateDirectory: machine)
            } throws: { error in
                let error = error as? StoreError
                return error?.code == .rollback && error!.message.contains(path) && error!.message.contains("offers history version")
                    && error!.message.contains("has seen version")
            }
            // This machine's copy is untouched: what it saw last is still there.
            let reopened = try await Store.open(backend: provider, indexPath: machine + "/index.sqlite", historyPath: machine + "/refs.sqlite", location: path, passphrase: passphrase).database()
            #expect(try await reopened.snapshot("main").get("b", in: Gallery.notes) == "two")
        }
    }

    @Test func conditionalWritesRefuseStaleVersions() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try SQLiteBackend(path: directory + "/objects.sqlite")
            #expect(try await backend.getVersioned("v") == nil)
            let first = try await backend.put("v", [1], ifVersion: nil)
            await #expect { try await backend.put("v", [2], ifVersion: nil) } throws: { ($0 as? BackendError)?.code == .preconditionFailed }
            let second = try await backend.put("v", [3], ifVersion: first)
            await #expect { try await backend.put("v", [4], ifVersion: first) } throws: { ($0 as? BackendError)?.code == .preconditionFailed }
            #expect(try await backend.getVersioned("v")?.version == second)
            #expect(try await backend.get("v") == [3])
        }
    }
}
