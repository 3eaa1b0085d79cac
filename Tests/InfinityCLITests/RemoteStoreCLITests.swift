import Foundation
import InfinityTestSupport
import Testing

private let s3URL = ProcessInfo.processInfo.environment["INFINITY_TEST_S3_URL"]

/// Stores named by URL: the history lives in the store, so a second machine (another
/// INFINITY_HOME, hence another local state) sees every commit and restores it.
@Suite(.serialized) struct RemoteStoreCLITests {
    private func roundTrip(store: String, in directory: String, warmCache: Bool = false) async throws {
        let data = directory + "/data"
        try FileManager.default.createDirectory(atPath: data + "/sub", withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: data + "/a.txt"))
        try Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7919 >> 3) }).write(to: URL(fileURLWithPath: data + "/sub/b.bin"))
        let first = Infinity(environment: ["INFINITY_PASSPHRASE": "remote", "INFINITY_HOME": directory + "/machine-1", "INFINITY_STORE": store])
        let second = Infinity(environment: ["INFINITY_PASSPHRASE": "remote", "INFINITY_HOME": directory + "/machine-2", "INFINITY_STORE": store])
        let created = try await first.call("init", "--bare", store, "--name", "alice")
        #expect(created.status == 0, "\(created.error)")
        #expect(try await first.call("commit", data, "-m", "from the first machine", "-q").status == 0)
        #expect(try await first.call("tag", "v1", "-q").status == 0)

        let log = try await second.call("log")
        #expect(log.status == 0 && log.output.contains("from the first machine") && log.output.contains("tag: v1"), "\(log.output)\(log.error)")
        if warmCache {
            // The commit's metadata pack is now on the second machine's disk; its file data is not.
            let cached = FileManager.default.enumerator(atPath: directory + "/machine-2/stores")?.allObjects
                .compactMap { $0 as? String }.filter { $0.contains("/cache/packs/") && ($0.split(separator: "/").last?.count ?? 0) == 64 } ?? []
            #expect(cached.count >= 1, "\(cached)")
        }
        #expect(try await second.call("checkout", "v1", "--to", directory + "/restored").status == 0)
        #expect(FileManager.default.contentsEqual(atPath: data, andPath: directory + "/restored" + data))
        try Data("more\n".utf8).write(to: URL(fileURLWithPath: data + "/c.txt"))
        #expect(try await second.call("commit", data, "-m", "from the second machine", "-q").status == 0)
        let back = try await first.call("log", "--json")
        #expect(back.output.contains("from the second machine"), "\(back.error)")
        #expect(try await first.call("check", "--read-data").status == 0)
    }

    @Test func aSingleFileStoreIsSharedBetweenMachines() async throws {
        try await withTemporaryDirectory { directory in
            try await roundTrip(store: "sqlite:" + directory + "/store.sqlite", in: directory)
        }
    }

    @Test(.enabled(if: s3URL != nil, "set INFINITY_TEST_S3_URL to run against an S3 endpoint"))
    func anS3StoreIsSharedBetweenMachines() async throws {
        try await withTemporaryDirectory { directory in
            var components = URLComponents(string: s3URL!)!
            components.path = "/cli-\(UUID().uuidString.lowercased())"
            try await roundTrip(store: components.string!, in: directory, warmCache: true)
        }
    }

    /// Alice's store is one SQLite file; Bob's is in the S3 bucket when one is given, else another
    /// file: a share crosses from one to the other.
    @Test func agentsInDifferentKindsOfStoreShare() async throws {
        try await withTemporaryDirectory { directory in
            var bobStore = "sqlite:" + directory + "/bob.sqlite"
            if let s3URL {
                var components = URLComponents(string: s3URL)!
                components.path = "/bob-\(UUID().uuidString.lowercased())"
                bobStore = components.string!
            }
            let environment = ["INFINITY_PASSPHRASE": "remote", "INFINITY_HOME": directory + "/home"]
            let alice = Infinity(environment: environment.merging(["INFINITY_STORE": "sqlite:" + directory + "/alice.sqlite"]) { $1 })
            let bob = Infinity(environment: environment.merging(["INFINITY_STORE": bobStore]) { $1 })
            #expect(try await alice.call("init", "--bare", "sqlite:" + directory + "/alice.sqlite", "--name", "alice", "-q").status == 0)
            #expect(try await bob.call("init", "--bare", bobStore, "--name", "bob", "-q").status == 0)
            let bobCard = try await bob.call("agent", "export").output.trimmingCharacters(in: .whitespacesAndNewlines)
            let aliceCard = try await alice.call("agent", "export").output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await alice.call("agent", "import", bobCard).status == 0)
            #expect(try await bob.call("agent", "import", aliceCard).status == 0)
            let shown = try await alice.call("agent", "show", "bob")
            #expect(shown.output.contains(bobStore), "\(shown.output)")

            try FileManager.default.createDirectory(atPath: directory + "/notes", withIntermediateDirectories: true)
            try Data("shared across stores\n".utf8).write(to: URL(fileURLWithPath: directory + "/notes/n.txt"))
            #expect(try await alice.call("commit", directory + "/notes", "-m", "notes", "-q").status == 0)
            let shared = try await alice.call("share", "main", "--with", "bob")
            #expect(shared.status == 0, "\(shared.error)")
            let accepted = try await bob.call("accept")
            #expect(accepted.status == 0 && accepted.output.contains("alice/main"), "\(accepted.error)")
            let cat = try await bob.call("cat", "alice/main:" + String(directory.dropFirst()) + "/notes/n.txt")
            #expect(cat.output == "shared across stores\n", "\(cat.error)")
        }
    }

    /// A store many times the size of the disk cache, restored whole: the cache never holds
    /// more than INFINITY_CACHE_SIZE, and an option that is no size is refused by name.
    @Test(.enabled(if: s3URL != nil, "set INFINITY_TEST_S3_URL to run against an S3 endpoint"))
    func theDiskCacheStaysWithinItsSize() async throws {
        try await withTemporaryDirectory { directory in
            var components = URLComponents(string: s3URL!)!
            components.path = "/cache-\(UUID().uuidString.lowercased())"
            let store = components.string!
            let data = directory + "/data"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            for index in 0..<12 {
                try Data(SampleData.bytes(count: 1 << 20, seed: UInt64(index))).write(to: URL(fileURLWithPath: data + "/file-\(index)"))
            }
            let cacheSize = 3 << 20
            let first = Infinity(environment: ["INFINITY_PASSPHRASE": "remote", "INFINITY_HOME": directory + "/machine-1", "INFINITY_STORE": store])
            let second = Infinity(environment: [
                "INFINITY_PASSPHRASE": "remote", "INFINITY_HOME": directory + "/machine-2", "INFINITY_STORE": store,
                "INFINITY_CACHE_SIZE": "3MiB",
            ])
            #expect(try await first.call("init", "--bare", store, "--pack-size", "1MiB", "-q").status == 0)
            #expect(try await first.call("commit", data, "-m", "12 MiB in 1 MiB packs", "-q").status == 0)

            let restored = try await second.call("checkout", "main", "--to", directory + "/restored")
            #expect(restored.status == 0, "\(restored.error)")
            #expect(FileManager.default.contentsEqual(atPath: data, andPath: directory + "/restored" + data))
            #expect(try await second.call("check", "--read-data").status == 0)
            var cached = 0
            let stores = directory + "/machine-2/stores"
            for case let path as String in FileManager.default.enumerator(atPath: stores)?.allObjects ?? [] where path.contains("/cache/") {
                let attributes = try FileManager.default.attributesOfItem(atPath: stores + "/" + path)
                if attributes[.type] as? FileAttributeType == .typeRegular { cached += attributes[.size] as? Int ?? 0 }
            }
            #expect(cached > 0 && cached <= cacheSize, "\(cached) bytes cached")

            let refused = try await Infinity(environment: [
                "INFINITY_PASSPHRASE": "remote", "INFINITY_HOME": directory + "/machine-3", "INFINITY_STORE": store,
                "INFINITY_CACHE_SIZE": "plenty",
            ]).call("log")
            #expect(refused.status != 0 && refused.error.contains("INFINITY_CACHE_SIZE"), "\(refused.error)")
            let tooSmall = try await first.call("init", "--bare", directory + "/other", "--pack-size", "10KiB")
            #expect(tooSmall.status != 0 && tooSmall.error.contains("--pack-size"), "\(tooSmall.error)")
        }
    }

    @Test func unknownStoreURLsAreRefused() async throws {
        let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "remote"])
        let result = try await cli.call("log", "--store", "ftp://example.com/store")
        #expect(result.status != 0 && result.error.contains("ftp"), "\(result.error)")
    }
}
