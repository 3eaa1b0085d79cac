import Foundation
import InfinityTestSupport
import Testing

private let s3URL = ProcessInfo.processInfo.environment["INFINITY_TEST_S3_URL"]

/// Stores named by URL: the history lives in the store, so a second machine (another
/// INFINITY_HOME, hence another local state) sees every commit and restores it.
@Suite(.serialized) struct RemoteStoreCLITests {
    private func roundTrip(store: String, in directory: String) async throws {
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
            try await roundTrip(store: components.string!, in: directory)
        }
    }

    @Test func unknownStoreURLsAreRefused() async throws {
        let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "remote"])
        let result = try await cli.call("log", "--store", "ftp://example.com/store")
        #expect(result.status != 0 && result.error.contains("ftp"), "\(result.error)")
    }
}
