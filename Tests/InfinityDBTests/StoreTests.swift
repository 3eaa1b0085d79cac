import Foundation
import InfinityDB
import InfinityTestSupport
import Testing

func fastOptions() -> StoreOptions {
    var options = StoreOptions()
    options.scrypt = .minimal
    return options
}

let passphrase = SecureBytes(utf8: "correct horse battery staple")

/// Writes `count` bytes, half random and half text-like, to a file.
func writeSample(_ path: String, count: Int) throws {
    var bytes = SecureRandom.bytes(count: count / 2)
    let line = Array("the quick brown fox jumps over the lazy dog 0123456789\n".utf8)
    while bytes.count < count { bytes += line }
    try Data(bytes.prefix(count)).write(to: URL(fileURLWithPath: path))
}

@Suite struct StoreTests {
    @Test func createPutFlushReopenGet() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/store"
            let sample = directory + "/sample"
            try writeSample(sample, count: 3_000_000)
            let refs: [ChunkRef]
            do {
                let store = try await Store.create(at: path, agentName: "alice", passphrase: passphrase, options: fastOptions())
                refs = try await store.putFile(at: sample)
                try await store.flush()
                #expect(store.identity.name == "alice")
            }
            let store = try await Store.open(at: path, passphrase: passphrase)
            #expect(store.configuration.ownerName == "alice")
            try await store.writeFile(refs, to: directory + "/restored")
            #expect(FileManager.default.contentsEqual(atPath: sample, andPath: directory + "/restored"))
            let statistics = try store.statistics()
            #expect(statistics.plaintextBytes == 3_000_000)
            #expect(statistics.storedBytes < 3_000_000, "the text-like half compresses")
        }
    }

    @Test func wrongPassphraseIsAClearError() async throws {
        try await withTemporaryDirectory { directory in
            _ = try await Store.create(at: directory + "/s", agentName: "a", passphrase: passphrase, options: fastOptions())
            await #expect {
                try await Store.open(at: directory + "/s", passphrase: SecureBytes(utf8: "wrong"))
            } throws: { error in
                guard let error = error as? StoreError else { return false }
                return error.code == .wrongPassphrase && error.message.contains("wrong passphrase") && error.message.contains(directory)
            }
        }
    }

    @Test func notAStoreErrorsNameThePath() async throws {
        try await withTemporaryDirectory { directory in
            for (path, setup): (String, () throws -> Void) in [
                (directory + "/missing", {}),
                (directory + "/empty", { try FileManager.default.createDirectory(atPath: directory + "/empty", withIntermediateDirectories: false) }),
                (directory + "/file", { try Data("x".utf8).write(to: URL(fileURLWithPath: directory + "/file")) }),
                (directory + "/garbage", {
                    try FileManager.default.createDirectory(atPath: directory + "/garbage", withIntermediateDirectories: false)
                    try Data("{\"hello\": 1}".utf8).write(to: URL(fileURLWithPath: directory + "/garbage/config"))
                }),
            ] {
                try setup()
                await #expect {
                    try await Store.open(at: path, passphrase: passphrase)
                } throws: { error in
                    (error as? StoreError)?.code == .notAStore && "\(error)".contains(path)
                }
            }
            #expect(!FileManager.default.fileExists(atPath: directory + "/empty/local"), "opening a non-store creates nothing")
        }
    }

    @Test func newerFormatIsRefusedWithTheVersion() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/s"
            _ = try await Store.create(at: path, agentName: "a", passphrase: passphrase, options: fastOptions())
            let configPath = path + "/config"
            var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as! [String: Any]
            json["version"] = 7
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: configPath))
            await #expect {
                try await Store.open(at: path, passphrase: passphrase)
            } throws: { error in
                (error as? StoreError)?.code == .unsupportedFormat && "\(error)".contains("version 7")
            }
        }
    }

    @Test func tamperedConfigurationIsDetected() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/s"
            _ = try await Store.create(at: path, agentName: "a", passphrase: passphrase, options: fastOptions())
            let configPath = path + "/config"
            let text = try String(contentsOfFile: configPath, encoding: .utf8)
            try text.replacingOccurrences(of: "\"compressionLevel\" : 3", with: "\"compressionLevel\" : 9")
                .write(toFile: configPath, atomically: true, encoding: .utf8)
            await #expect {
                try await Store.open(at: path, passphrase: passphrase)
            } throws: { ($0 as? StoreError)?.code == .corrupt }
        }
    }

    @Test func createRefusesAnExistingStore() async throws {
        try await withTemporaryDirectory { directory in
            _ = try await Store.create(at: directory + "/s", agentName: "a", passphrase: passphrase, options: fastOptions())
            await #expect {
                try await Store.create(at: directory + "/s", agentName: "a", passphrase: passphrase, options: fastOptions())
            } throws: { ($0 as? StoreError)?.code == .alreadyExists }
        }
    }

    @Test func changePassphraseKeepsTheData() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/s"
            let store = try await Store.create(at: path, agentName: "a", passphrase: passphrase, options: fastOptions())
            let ref = try await store.put(Array("kept".utf8))
            try await store.flush()
            let newPassphrase = SecureBytes(utf8: "new passphrase")
            try await store.changePassphrase(to: newPassphrase, parameters: .minimal)
            await #expect(throws: StoreError.self) { try await Store.open(at: path, passphrase: passphrase) }
            let reopened = try await Store.open(at: path, passphrase: newPassphrase)
            #expect(reopened.identity == store.identity)
            #expect(try await reopened.get(ref) == Array("kept".utf8))

            // A second change in the same session retires the passphrase set by the first.
            let third = SecureBytes(utf8: "third passphrase")
            try await store.changePassphrase(to: third, parameters: .minimal)
            await #expect(throws: StoreError.self) { try await Store.open(at: path, passphrase: newPassphrase) }
            #expect(try await Store.open(at: path, passphrase: third).identity == store.identity)
            #expect(try await store.backend.list(prefix: "keys/").count == 1)
        }
    }

    @Test func deletedIndexIsRebuiltFromPacks() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/s"
            let sample = directory + "/sample"
            try writeSample(sample, count: 2_500_000)
            var options = fastOptions()
            options.targetPackSize = 256 * 1024
            options.dataChunking = try ChunkerParameters(minimumSize: 16 << 10, averageSize: 64 << 10, maximumSize: 256 << 10)
            let store = try await Store.create(at: path, agentName: "a", passphrase: passphrase, options: options)
            let refs = try await store.putFile(at: sample)
            try await store.flush()
            let before = try store.statistics()
            #expect(before.packCount > 1)

            try FileManager.default.removeItem(atPath: path + "/local")
            let reopened = try await Store.open(at: path, passphrase: passphrase)
            #expect(try reopened.statistics() == before, "opening with no index rebuilds it from the packs")
            try await reopened.writeFile(refs, to: directory + "/restored")
            #expect(FileManager.default.contentsEqual(atPath: sample, andPath: directory + "/restored"))

            let report = try await reopened.rebuildIndex()
            #expect(report.packsIndexed == before.packCount)
            #expect(report.unreadablePacks.isEmpty)
        }
    }

    @Test func aFlippedBitInAPackNamesTheChunk() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/s"
            let store = try await Store.create(at: path, agentName: "a", passphrase: passphrase, options: fastOptions())
            let ref = try await store.put(SecureRandom.bytes(count: 10_000))
            try await store.flush()
            let packs = try await store.backend.list(prefix: "packs/")
            #expect(packs.count == 1)
            let packPath = path + "/" + packs[0].name
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: packPath)))
            bytes[5000] ^= 0x10
            try Data(bytes).write(to: URL(fileURLWithPath: packPath))
            await #expect {
                try await store.get(ref)
            } throws: { error in
                (error as? ChunkError)?.code == .integrity && "\(error)".contains(ref.id.description)
            }
        }
    }

    @Test func concurrentReadersAndAWriter() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Store.create(at: directory + "/s", agentName: "a", passphrase: passphrase, options: fastOptions())
            var expected: [(ChunkRef, [UInt8])] = []
            for number in 0..<20 {
                let bytes = Array("value \(number) ".utf8) + SecureRandom.bytes(count: 50_000)
                expected.append((try await store.put(bytes), bytes))
            }
            try await store.flush()
            let known = expected
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for number in 0..<50 { _ = try await store.put(SecureRandom.bytes(count: 20_000 + number)) }
                    try await store.flush()
                }
                for _ in 0..<8 {
                    group.addTask {
                        for (ref, bytes) in known.shuffled() {
                            let read = try await store.get(ref)
                            #expect(read == bytes)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func inMemoryBackendStore() async throws {
        let backend = MemoryBackend()
        let store = try await Store.create(
            backend: backend, indexPath: ":memory:", location: "memory", agentName: "m", passphrase: passphrase, options: fastOptions())
        let ref = try await store.put(Array("in memory".utf8))
        try await store.flush()
        let reopened = try await Store.open(backend: backend, indexPath: ":memory:", location: "memory", passphrase: passphrase)
        #expect(try await reopened.get(ref) == Array("in memory".utf8), "a fresh in-memory index is rebuilt on open")
    }

    @Test func aPackStoredButNotIndexedIsFoundOnOpen() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/s"
            let store = try await Store.create(at: path, agentName: "a", passphrase: passphrase, options: fastOptions())
            let first = try await store.put(Array("first".utf8))
            try await store.flush()
            let indexCopy = directory + "/index-copy"
            try FileManager.default.copyItem(atPath: path + "/local", toPath: indexCopy)
            let second = try await store.put(Array("second".utf8))
            try await store.flush()
            // As if the writer stopped after storing the second pack, before indexing it.
            try FileManager.default.removeItem(atPath: path + "/local")
            try FileManager.default.copyItem(atPath: indexCopy, toPath: path + "/local")
            let reopened = try await Store.open(at: path, passphrase: passphrase)
            #expect(try await reopened.get(first) == Array("first".utf8))
            #expect(try await reopened.get(second) == Array("second".utf8))
        }
    }

    @Test func failedRestoreLeavesNoFile() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await Store.create(at: directory + "/s", agentName: "a", passphrase: passphrase, options: fastOptions())
            let ref = try await store.put(Array("x".utf8))
            let missing = ChunkRef(id: testChunkID, key: ref.key, length: 1)
            let target = directory + "/out"
            try Data("previous".utf8).write(to: URL(fileURLWithPath: target))
            await #expect(throws: (any Error).self) { try await store.writeFile([ref, missing], to: target) }
            #expect(try String(contentsOfFile: target, encoding: .utf8) == "previous", "the old file is untouched")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["out", "s"])
        }
    }

    /// Key files, packs, the history, contacts and index databases, and the folders holding
    /// them are the owner's alone, even under a umask that lets others read, for a store in a
    /// folder and for a single-file store with its local state folder.
    @Test func storeFilesAreReadableByTheOwnerOnly() async throws {
        let previousMask = umask(0o022)
        defer { umask(previousMask) }
        try await withTemporaryDirectory { directory in
            let local = try await Store.create(at: directory + "/local/store", agentName: "a", passphrase: passphrase, options: fastOptions())
            _ = try await local.put(Array("some data".utf8))
            try await local.flush()
            // The folder of a single-file store is the user's: only the file and its state count.
            try FileManager.default.createDirectory(atPath: directory + "/single", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            let remote = try await Store.create(
                address: try StoreAddress("sqlite:" + directory + "/single/store.sqlite"), agentName: "b",
                passphrase: passphrase, options: fastOptions(), stateDirectory: directory + "/state/b")
            _ = try await remote.put(Array("more data".utf8))
            try await remote.flush()

            var checked: Set<String> = []
            for top in ["local", "single", "state"] {
                let root = directory + "/" + top
                for relative in try FileManager.default.subpathsOfDirectory(atPath: root) + [""] {
                    let path = relative.isEmpty ? root : root + "/" + relative
                    var status = stat()
                    try #require(lstat(path, &status) == 0)
                    let isDirectory = status.st_mode & S_IFMT == S_IFDIR
                    #expect(status.st_mode & 0o777 == (isDirectory ? 0o700 : 0o600), "\(path)")
                    checked.insert((relative as NSString).lastPathComponent)
                }
            }
            for expected in ["config", "keys", "packs", "refs.sqlite", "agents.sqlite", "index.sqlite", "store.sqlite", "b"] {
                #expect(checked.contains(expected), "\(expected) was checked")
            }
        }
    }
}

let testChunkID = ChunkID(bytes: [UInt8](repeating: 7, count: 32))!
