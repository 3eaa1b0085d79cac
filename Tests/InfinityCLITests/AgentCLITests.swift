import Foundation
import InfinityTestSupport
import Testing

private func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
}

@Suite(.serialized) struct AgentCLITests {
    /// Alice, Bob and Carol, each with a store of their own, share, fork, diff, commit, merge and
    /// share back through the real binary.
    @Test func threeAgentsShareAndShareBack() async throws {
        try await withTemporaryDirectory { directory in
            let environment = ["INFINITY_PASSPHRASE": "agents", "INFINITY_HOME": directory + "/home"]
            let work = directory + "/alice"
            try FileManager.default.createDirectory(atPath: work + "/docs", withIntermediateDirectories: true)
            try Data("hello from alice\n".utf8).write(to: URL(fileURLWithPath: work + "/docs/readme.txt"))
            try Data((0..<700_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }).write(
                to: URL(fileURLWithPath: work + "/data.bin"))
            var alice = Infinity(environment: environment)
            alice.directory = work
            #expect(try await alice.call("init", "--name", "alice", "-q").status == 0)
            #expect(try await alice.call("commit", "-m", "alice's files", "-q").status == 0)

            // Bob and Carol keep working directories of their own; they swap cards as files and text.
            func workingDirectory(_ name: String) async throws -> Infinity {
                try FileManager.default.createDirectory(atPath: directory + "/" + name, withIntermediateDirectories: true)
                var cli = Infinity(environment: environment)
                cli.directory = directory + "/" + name
                #expect(try await cli.call("init", "--name", name, "-q").status == 0)
                return cli
            }
            let bob = try await workingDirectory("bob")
            let carol = try await workingDirectory("carol")
            let aliceCard = try await alice.call("agent", "export").output.trimmingCharacters(in: .whitespacesAndNewlines)
            let bobCard = try await bob.call("agent", "export").output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(bobCard.hasPrefix("infinity-agent:"))
            #expect(try await alice.call("agent", "import", bobCard).status == 0)
            #expect(try await bob.call("agent", "import", aliceCard).status == 0)
            #expect(try await carol.call("agent", "import", bobCard).status == 0)
            try await carol.call("agent", "export", "--output", directory + "/carol.json")
            #expect(try await bob.call("agent", "import", directory + "/carol.json").status == 0)
            let agents = try json(try await bob.call("agent", "list", "--json").output) as? [[String: Any]]
            #expect(agents?.compactMap { $0["handle"] as? String } == ["bob", "alice", "carol"])

            // Alice shares main with Bob; Bob accepts and restores it.
            let shared = try await alice.call("share", "main", "--with", "bob")
            #expect(shared.status == 0, "\(shared.error)")
            #expect(shared.output.contains("as alice/main"))
            let inbox = try json(try await bob.call("inbox", "--json").output) as? [[String: Any]]
            #expect(inbox?.first?["ref"] as? String == "alice/main")
            let accepted = try await bob.call("accept")
            #expect(accepted.status == 0, "\(accepted.error)")
            #expect(accepted.output.contains("Accepted alice/main"))
            // Bob forks, checks out, commits on top, diffs against Alice's commit and shares with Carol.
            #expect(try await bob.call("fork", "work", "alice/main").status == 0)
            let checkout = try await bob.call("checkout", "work")
            #expect(checkout.status == 0, "\(checkout.error)")
            #expect(FileManager.default.contentsEqual(atPath: directory + "/bob/data.bin", andPath: work + "/data.bin"))
            try Data("bob was here\n".utf8).write(to: URL(fileURLWithPath: directory + "/bob/bob.txt"))
            let bobCommit = try await bob.call("commit", "-m", "bob's note")
            #expect(bobCommit.status == 0, "\(bobCommit.error)")
            let diff = try await bob.call("diff", "alice/main", "work")
            #expect(diff.output.contains("bob.txt"), "diff exited \(diff.status): \(diff.output) \(diff.error); the commit said: \(bobCommit.output) \(bobCommit.error)")
            #expect(try await bob.call("share", "work", "--with", "carol").status == 0)
            let carolAccepts = try await carol.call("accept")
            #expect(carolAccepts.status == 0, "\(carolAccepts.error)")
            let carolLog = try await carol.call("log", "bob/work")
            #expect(carolLog.output.contains("bob ✓ (trusted agent)"), "\(carolLog.output)")
            #expect(carolLog.output.contains("alice ✓ (unknown agent"), "\(carolLog.output)")

            // Carol commits on Bob's work and shares it to Alice, who does not know her yet.
            let fork = try await carol.call("fork", "main", "bob/work")
            #expect(fork.status == 0, "\(fork.error)")
            try Data("carol too\n".utf8).write(to: URL(fileURLWithPath: directory + "/carol/carol.txt"))
            #expect(try await carol.call("commit", "-m", "carol's note").status == 0)
            #expect(try await bob.call("agent", "show", "carol").output.contains("trusted"))
            try await alice.call("agent", "import", directory + "/carol.json", "--untrusted")
            #expect(try await carol.call("share", "main", "--with", "alice", "--as", "for-alice").status != 0)  // Carol does not know Alice
            try await carol.call("agent", "import", aliceCard)
            #expect(try await carol.call("share", "main", "--with", "alice", "--as", "for-alice").status == 0)
            let refused = try await alice.call("accept")
            #expect(refused.status == 1 && refused.error.contains("not trusted"), "\(refused.error)")
            #expect(try await alice.call("agent", "trust", "carol").status == 0)
            #expect(try await alice.call("accept").status == 0)
            let merged = try await alice.call("merge", "carol/for-alice")
            #expect(merged.status == 0, "\(merged.error)")
            let log = try json(try await alice.call("log", "--json").output) as? [[String: Any]]
            let standings = Set(log?.compactMap { "\($0["author"] ?? "")=\($0["authorStanding"] ?? "")" } ?? [])
            #expect(standings == ["alice=owner", "bob=trusted", "carol=trusted"], "\(standings)")
            let cat = try await alice.call("cat", "HEAD:carol.txt")
            #expect(cat.output == "carol too\n", "\(cat.error)")
            let update = try await alice.call("checkout", "main")
            #expect(update.status == 0, "\(update.error)")
            #expect(FileManager.default.contentsEqual(atPath: work + "/bob.txt", andPath: directory + "/bob/bob.txt"))
        }
    }

    @Test func tamperSpreadRepairAndCapacity() async throws {
        try await withTemporaryDirectory { directory in
            let environment = ["INFINITY_PASSPHRASE": "agents", "INFINITY_HOME": directory + "/home"]
            let alice = Infinity(environment: environment.merging(["INFINITY_STORE": directory + "/alice"]) { $1 })
            let bob = Infinity(environment: environment.merging(["INFINITY_STORE": directory + "/bob"]) { $1 })
            let carol = Infinity(environment: environment.merging(["INFINITY_STORE": directory + "/carol"]) { $1 })
            #expect(try await alice.call("init", "--bare", directory + "/alice", "--name", "alice", "-q").status == 0)
            #expect(try await alice.call("agent", "create", "bob", "--at", directory + "/bob", "-q").status == 0)
            #expect(try await alice.call("agent", "create", "carol", "--at", directory + "/carol", "-q").status == 0)
            let source = directory + "/files"
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            let photo = Data((0..<2_000_000).map { _ in UInt8.random(in: 0...255) })
            try photo.write(to: URL(fileURLWithPath: source + "/photo.raw"))
            #expect(try await alice.call("commit", source, "-m", "photos", "-q").status == 0)
            let side = try await alice.call("commit", source, "--branch", "side", "-m", "a new branch", "-q")
            #expect(side.status == 0, "\(side.error)")

            // A share whose envelope was altered in Bob's store installs nothing.
            #expect(try await alice.call("share", "main", "--with", "bob").status == 0)
            let envelopes = try FileManager.default.contentsOfDirectory(atPath: directory + "/bob/inbox").filter { $0.hasSuffix(".envelope") }
            let envelopePath = directory + "/bob/inbox/" + envelopes[0]
            var bytes = try Data(contentsOf: URL(fileURLWithPath: envelopePath))
            bytes[bytes.count - 5] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: envelopePath))
            let rejected = try await bob.call("accept")
            #expect(rejected.status == 1 && rejected.error.contains("rejected"), "\(rejected.error)")
            #expect(!(try await bob.call("log", "alice/main").status == 0))
            #expect(try await bob.call("accept", String(envelopes[0].prefix(8)), "--discard").status == 0)
            #expect(try await bob.call("share", "main", "--with", "alice", "--as", "x").status != 0)  // Bob has no main

            // Carol offers too little room: the share is refused and nothing lands in her store.
            #expect(try await carol.call("capacity", "100KiB").status == 0)
            let tooBig = try await alice.call("share", "main", "--with", "carol")
            #expect(tooBig.status == 1 && tooBig.error.contains("accepts 100.0 KiB"), "\(tooBig.error)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/carol/inbox"))

            // Spread over Bob and Carol, lose Alice's packs, read anyway, repair.
            #expect(try await bob.call("capacity", "1GiB").status == 0)
            #expect(try await carol.call("capacity", "1GiB", "--for", "30d").status == 0)
            let spread = try await alice.call("spread", "3", "--json")
            #expect(spread.status == 0, "\(spread.error)")
            let holders = (try json(spread.output) as? [String: Any])?["bytesByHolder"] as? [String: Any]
            #expect(Set(holders?.keys.map { $0 } ?? []) == ["bob", "carol"])
            try FileManager.default.removeItem(atPath: directory + "/alice/packs")
            let cat = try await alice.call("cat", "main:" + String(source.dropFirst()) + "/photo.raw")
            #expect(cat.status == 0 && Data(cat.output.utf8).count > 0, "\(cat.error)")
            let placement = try await alice.call("placement", "main", String(source.dropFirst()) + "/photo.raw", "--json")
            let rows = try json(placement.output) as? [[String: Any]]
            #expect(rows?.allSatisfy { Set($0["holders"] as? [String] ?? []) == ["bob", "carol"] } == true, "\(placement.output)")
            let repair = try await alice.call("repair", "--json")
            #expect(repair.status == 0, "\(repair.error)")
            #expect(((try json(repair.output) as? [String: Any])?["packsRestored"] as? [String])?.isEmpty == false)
            #expect(try await alice.call("check", "--read-data").status == 0)
            let after = try json(try await alice.call("placement", "main", "--json").output) as? [[String: Any]]
            #expect(Set(after?.compactMap { $0["agent"] as? String } ?? []) == ["alice", "bob", "carol"])
        }
    }
}
