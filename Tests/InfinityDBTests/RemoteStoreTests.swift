import Foundation
import InfinityTestSupport
import Testing

@testable import InfinityDB

@Suite struct RemoteStoreTests {
    /// Two machines with their own copies of one single-file store's history: the second to save
    /// is refused, nothing of the first is lost, and after reopening it saves on top.
    @Test func twoMachinesNeverOverwriteEachOthersHistory() async throws {
        try await withTemporaryDirectory { directory in
            let address = try StoreAddress("sqlite:" + directory + "/store.sqlite")
            let created = try await Store.create(
                address: address, agentName: "alice", passphrase: passphrase, options: fastOptions(),
                stateDirectory: directory + "/machine-1")
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
