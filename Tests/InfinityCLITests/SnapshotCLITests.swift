import Foundation
import InfinityTestSupport
import Testing

private func write(_ text: String, to path: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

private func read(_ path: String) -> String? {
    FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
}

@Suite(.serialized) struct SnapshotCLITests {
    @Test func workingDirectoryRoundTripHistoryAndMerge() async throws {
        try await withTemporaryDirectory { folder in
            let work = folder + "/work"
            try FileManager.default.createDirectory(atPath: work + "/docs/empty", withIntermediateDirectories: true)
            try write("one\n", to: work + "/notes.txt")
            try write("spaces\n", to: work + "/docs/a file with spaces.md")
            try write("utf8\n", to: work + "/docs/résumé ✓.txt")
            try write("newline\n", to: work + "/docs/odd\nname")
            try FileManager.default.createSymbolicLink(atPath: work + "/latest", withDestinationPath: "notes.txt")
            let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "pw"], directory: work)

            #expect(try await cli.call("init", work, "--name", "ann").status == 0)
            let first = try await cli.call("commit", "-m", "first")
            #expect(first.status == 0, "\(first.error)")
            #expect(try await cli.call("status").output.contains("nothing changed"))

            try write("one\ntwo\n", to: work + "/notes.txt")
            try write("new\n", to: work + "/added.txt")
            let status = try await cli.call("status", "--json")
            #expect(status.output.contains("\"added.txt\"") && status.output.contains("\"modified\""))
            #expect(try await cli.call("commit", "-m", "second").status == 0)

            let diff = try await cli.call("diff", "HEAD")
            #expect(diff.output.contains("M notes.txt") && diff.output.contains("+ added.txt"), "\(diff.output)")
            let log = try await cli.call("log", "--json")
            #expect(log.output.components(separatedBy: "\"message\"").count == 3)
            #expect(try await cli.call("cat", "HEAD~1:notes.txt").output == "one\n")
            #expect(try await cli.call("ls", "HEAD", "docs").output.contains("docs/a file with spaces.md"))

            // An old revision restored elsewhere, byte for byte.
            let old = folder + "/old"
            #expect(try await cli.call("checkout", "HEAD~1", "--to", old).status == 0)
            #expect(read(old + "/notes.txt") == "one\n")
            #expect(read(old + "/docs/odd\nname") == "newline\n")
            #expect(!FileManager.default.fileExists(atPath: old + "/added.txt"))
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: old + "/latest") == "notes.txt")
            #expect(FileManager.default.fileExists(atPath: old + "/docs/empty"))

            // Uncommitted changes are not overwritten without --force.
            try write("uncommitted\n", to: work + "/notes.txt")
            let refused = try await cli.call("checkout", "HEAD~1")
            #expect(refused.status != 0 && refused.error.contains("notes.txt"))
            #expect(try await cli.call("checkout", "HEAD", "notes.txt", "--force").status == 0)
            #expect(read(work + "/notes.txt") == "one\ntwo\n")

            // Two branches change one file differently: the merge lists it and commits nothing.
            #expect(try await cli.call("fork", "other").status == 0)
            try write("theirs\n", to: work + "/notes.txt")
            #expect(try await cli.call("commit", "-m", "on other").status == 0)
            #expect(try await cli.call("checkout", "main").status == 0)
            #expect(read(work + "/notes.txt") == "one\ntwo\n")
            try write("ours\n", to: work + "/notes.txt")
            #expect(try await cli.call("commit", "-m", "on main").status == 0)
            let conflict = try await cli.call("merge", "other")
            #expect(conflict.status == 1)
            #expect(conflict.output.contains("conflict: notes.txt"), "\(conflict.output) \(conflict.error)")
            let merged = try await cli.call("merge", "other", "--theirs")
            #expect(merged.status == 0, "\(merged.error)")
            #expect(try await cli.call("cat", "HEAD:notes.txt").output == "theirs\n")
            #expect(read(work + "/notes.txt") == "theirs\n")
            #expect(try await cli.call("log", "--json").output.contains("\"parents\" : [\n      \""))
            #expect(try await cli.call("reflog").output.contains("merge"))
        }
    }

    @Test func bareStoreBacksUpAbsolutePathsAndExitsThreeOnUnreadableFiles() async throws {
        try await withTemporaryDirectory { folder in
            let data = folder + "/data"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            try write("kept\n", to: data + "/kept.txt")
            let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "pw", "INFINITY_STORE": folder + "/store"])
            #expect(try await cli.call("init", "--bare", folder + "/store").status == 0)
            #expect(try await cli.call("commit", data, "-m", "nightly").status == 0)
            let stats = try await cli.call("stats", "--json")
            #expect(stats.output.contains("\"snapshots\" : 1") && stats.output.contains("\"logicalBytes\" : 5"), "\(stats.output)")
            let relative = String(data.dropFirst())
            #expect(try await cli.call("ls", "HEAD", relative).output.contains("\(relative)/kept.txt"))
            #expect(try await cli.call("commit", "-m", "no paths").status != 0)
            let restored = folder + "/restored"
            #expect(try await cli.call("checkout", "HEAD", relative, "--to", restored).status == 0)
            #expect(read(restored + data + "/kept.txt") == "kept\n")
        }
    }
}
