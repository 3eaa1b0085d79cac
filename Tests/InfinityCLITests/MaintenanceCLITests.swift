import Foundation
import InfinityTestSupport
import Testing

@Suite(.serialized) struct MaintenanceCLITests {
    /// Snapshots of a directory whose big file changes each time, then forget and gc through the
    /// real binary: the kept snapshots restore byte for byte and the removed ones' data is freed.
    @Test func forgetAndGcEndToEnd() async throws {
        try await withTemporaryDirectory { folder in
            let data = folder + "/data"
            let store = folder + "/store"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "pw", "INFINITY_STORE": store])
            #expect(try await cli.call("init", "--bare", store, "--name", "ann").status == 0)
            var contents: [Data] = []
            for seed in UInt64(0)..<4 {
                let bytes = Data(SampleData.bytes(count: 600_000, seed: 7000 + seed))
                contents.append(bytes)
                try bytes.write(to: URL(fileURLWithPath: data + "/big.bin"))
                try Data("note \(seed)\n".utf8).write(to: URL(fileURLWithPath: data + "/note.txt"))
                let committed = try await cli.call("commit", data, "-m", "nightly \(seed)")
                #expect(committed.status == 0, "\(committed.error)")
            }
            #expect(try await cli.call("tag", "first", "HEAD~3").status == 0)
            let storedBefore = try await statistics(cli)["storedBytes"] as? Int ?? 0

            let dry = try await cli.call("forget", "--keep-last", "2", "--dry-run", "--json")
            #expect(dry.status == 0, "\(dry.error)")
            let plan = try #require(try JSONSerialization.jsonObject(with: Data(dry.output.utf8)) as? [String: Any])
            #expect(plan["kept"] as? Int == 2)
            #expect(plan["removed"] as? Int == 2)
            #expect(plan["removedButPinned"] as? Int == 1)
            let snapshots = try #require(plan["snapshots"] as? [[String: Any]])
            #expect(snapshots.map { $0["keep"] as? Bool } == [true, true, false, false])
            #expect(snapshots.map { $0["reasons"] as? [String] } == [["last"], ["last"], [], []])
            #expect(snapshots.last?["pinnedBy"] as? [String] == ["refs/tags/first"])
            #expect(try await cli.call("log", "--json").output.components(separatedBy: "\"message\"").count == 5, "a dry run changes nothing")

            let listing = try await cli.call("forget", "--keep-last", "2", "--dry-run")
            #expect(listing.output.contains("remove"))
            #expect(listing.output.contains("first keeps the commit and its ancestors stored"), "\(listing.output)")
            #expect(listing.output.contains("nothing was changed"))

            let forgotten = try await cli.call("forget", "--keep-last", "2")
            #expect(forgotten.status == 0, "\(forgotten.error)")
            #expect(forgotten.output.contains("infinity gc"))
            #expect(forgotten.error.contains("keep 1 of the removed snapshots stored"))
            #expect(try await cli.call("log", "--json").output.components(separatedBy: "\"message\"").count == 3)

            let dryGC = try await cli.call("gc", "--grace", "0", "--dry-run")
            #expect(dryGC.status == 0, "\(dryGC.error)")
            #expect(dryGC.output.contains("Dry run"))
            let gc = try await cli.call("gc", "--grace", "0", "--json")
            #expect(gc.status == 0, "\(gc.error)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(gc.output.utf8)) as? [String: Any])
            let sweep = try #require(report["sweep"] as? [String: Any])
            #expect(sweep["deletedBytes"] as? Int ?? 0 >= 600_000, "the removed, untagged snapshot's big file is freed")
            #expect(sweep["missingChunks"] as? Int == 0)
            #expect(gc.error.isEmpty, "no progress when standard error is not a terminal")
            let storedAfter = try await statistics(cli)["storedBytes"] as? Int ?? 0
            #expect(storedAfter < storedBefore - 600_000)

            // What is referenced restores byte for byte: the two kept snapshots and the tagged one.
            let relative = String(data.dropFirst())
            for (revision, index) in [("HEAD", 3), ("HEAD~1", 2), ("first", 0)] {
                let restored = folder + "/restored-\(index)"
                let checkout = try await cli.call("checkout", revision, relative, "--to", restored)
                #expect(checkout.status == 0, "\(revision): \(checkout.error)")
                #expect(FileManager.default.contents(atPath: restored + data + "/big.bin") == contents[index], "\(revision)")
                #expect(try String(contentsOfFile: restored + data + "/note.txt", encoding: .utf8) == "note \(index)\n")
            }
            let again = try await cli.call("gc", "--grace", "0")
            #expect(again.status == 0)
            #expect(again.output.contains("Deleted: 0 packs"), "\(again.output)")
            let check = try await cli.call("check", "--read-data")
            #expect(check.status == 0, "after forget and gc the store checks clean: \(check.output) \(check.error)")
        }
    }

    @Test func badMaintenanceArgumentsAreRefusedClearly() async throws {
        try await withTemporaryDirectory { folder in
            let store = folder + "/store"
            let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "pw", "INFINITY_STORE": store])
            #expect(try await cli.call("init", "--bare", store).status == 0)
            let noRule = try await cli.call("forget")
            #expect(noRule.status != 0)
            #expect(noRule.error.contains("keep"))
            let unborn = try await cli.call("forget", "--keep-last", "1")
            #expect(unborn.status == 1)
            #expect(unborn.error.contains("main"))
            let zone = try await cli.call("forget", "--keep-daily", "1", "--time-zone", "Mars/Olympus")
            #expect(zone.status != 0 && zone.error.contains("Mars/Olympus"))
            let grace = try await cli.call("gc", "--grace", "never")
            #expect(grace.status != 0 && grace.error.contains("grace"))
            let threshold = try await cli.call("gc", "--repack-threshold", "150")
            #expect(threshold.status != 0 && threshold.error.contains("repack-threshold"))
            let span = try await cli.call("gc", "--grace", "an hour")
            #expect(span.status != 0 && span.error.contains("grace"))
            for command in [["forget"], ["gc"]] {
                let help = try cli.run(command + ["--help"])
                #expect(help.status == 0)
                #expect(help.output.contains("Examples"), "\(command) --help shows examples")
            }
        }
    }

    private func statistics(_ cli: Infinity) async throws -> [String: Any] {
        let stats = try await cli.call("stats", "--json")
        return try JSONSerialization.jsonObject(with: Data(stats.output.utf8)) as? [String: Any] ?? [:]
    }
}
