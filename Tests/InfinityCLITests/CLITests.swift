import Foundation
import InfinityTestSupport
import Testing

private func size(of path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
}

/// Runs the real `infinity` binary built beside the test bundle.
struct Infinity {
    var environment: [String: String]
    /// The working directory the command runs in (default: the test's).
    var directory: String? = nil

    static var binary: URL {
        // The test runner and the executable are built into the same products folder.
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("infinity").path),
            folder.pathComponents.count > 1
        {
            folder.deleteLastPathComponent()
        }
        return folder.appendingPathComponent("infinity")
    }

    struct Result {
        var status: Int32
        var output: String
        var error: String
    }

    @discardableResult
    func run(_ arguments: String..., input: Data? = nil) throws -> Result {
        try run(arguments, input: input)
    }

    /// Runs the binary on a thread of its own, so a test waiting for it leaves the (small)
    /// pool of task threads to the tests that run beside it.
    @discardableResult
    func call(_ arguments: String..., input: Data? = nil) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Swift.Result { try run(arguments, input: input) }) }
        }
    }

    @discardableResult
    func run(_ arguments: [String], input: Data? = nil) throws -> Result {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "INFINITY_PASSPHRASE")
        env.removeValue(forKey: "INFINITY_STORE")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let output = Pipe()
        let error = Pipe()
        let standardInput = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = standardInput
        try process.run()
        if let input { standardInput.fileHandleForWriting.write(input) }
        try standardInput.fileHandleForWriting.close()
        // Read both pipes before waiting so a large output cannot block the child.
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
            error: String(decoding: errorData, as: UTF8.self))
    }
}

@Suite(.serialized) struct CLITests {
    @Test func initPutGetStats() async throws {
        try await withTemporaryDirectory { directory in
            let store = directory + "/store"
            let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "pass one", "INFINITY_STORE": store])
            let created = try await cli.call("init", "--bare", store, "--name", "alice")
            #expect(created.status == 0, "\(created.error)")
            #expect(created.output.contains("alice"))

            var sample = Data((0..<1_500_000).map { _ in UInt8.random(in: 0...255) })
            sample.append(Data(repeating: 0x41, count: 1_500_000))
            let samplePath = directory + "/sample with space ü"
            try sample.write(to: URL(fileURLWithPath: samplePath))
            let put = try await cli.call("blob", "put", samplePath)
            #expect(put.status == 0, "\(put.error)")
            let token = put.output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(token.hasPrefix("blob1:"))
            #expect(put.error.isEmpty, "no progress when standard error is not a terminal")

            let restored = directory + "/restored"
            let get = try await cli.call("blob", "get", token, "--output", restored)
            #expect(get.status == 0, "\(get.error)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: restored)) == sample)

            let fromStandardInput = try await cli.call("blob", "put", "-", input: Data("piped bytes".utf8))
            #expect(fromStandardInput.status == 0, "\(fromStandardInput.error)")
            let pipedToken = fromStandardInput.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let piped = try await cli.call("blob", "get", pipedToken)
            #expect(piped.output == "piped bytes")

            // Appending to a file through the shell keeps what the file held.
            let appended = directory + "/appended"
            try Data("before ".utf8).write(to: URL(fileURLWithPath: appended))
            let shell = Process()
            shell.executableURL = URL(fileURLWithPath: "/bin/sh")
            shell.arguments = ["-c", "\"$0\" blob get \"$1\" >> \"$2\"", Infinity.binary.path, pipedToken, appended]
            shell.environment = ["INFINITY_PASSPHRASE": "pass one", "INFINITY_STORE": store]
            try shell.run()
            shell.waitUntilExit()
            #expect(try String(contentsOfFile: appended, encoding: .utf8) == "before piped bytes")

            let stats = try await cli.call("stats", "--json")
            #expect(stats.status == 0, "\(stats.error)")
            let json = try JSONSerialization.jsonObject(with: Data(stats.output.utf8)) as? [String: Any]
            #expect(json?["plaintextBytes"] as? Int ?? 0 >= 3_000_000)

            let rebuilt = try await cli.call("rebuild-index")
            #expect(rebuilt.status == 0)
            #expect(rebuilt.output.contains("Indexed"))
        }
    }

    @Test func errorsAreClearAndExitNonZero() async throws {
        try await withTemporaryDirectory { directory in
            let store = directory + "/store"
            let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "right"])
            #expect(try await cli.call("init", "--bare", store).status == 0)

            let wrong = try Infinity(environment: ["INFINITY_PASSPHRASE": "wrong"]).run("stats", "--store", store)
            #expect(wrong.status == 1)
            #expect(wrong.error.contains("wrong passphrase"))

            let missing = try await cli.call("stats", "--store", directory + "/nowhere")
            #expect(missing.status == 1)
            #expect(missing.error.contains(directory + "/nowhere"))

            let noStore = try await cli.call("stats")
            #expect(noStore.status != 0)
            #expect(noStore.error.contains("INFINITY_STORE"))

            let badToken = try await cli.call("blob", "get", "blob1:xyz", "--store", store)
            #expect(badToken.status == 1)
            #expect(badToken.error.contains("blob reference"))

            let again = try await cli.call("init", "--bare", store)
            #expect(again.status == 1)
            #expect(again.error.contains("already"))
        }
    }

    @Test func passphraseChange() async throws {
        try await withTemporaryDirectory { directory in
            let store = directory + "/store"
            let old = Infinity(environment: ["INFINITY_PASSPHRASE": "old", "INFINITY_STORE": store])
            #expect(try await old.call("init", "--bare", store).status == 0)
            let token = try await old.call("blob", "put", "-", input: Data("secret".utf8)).output
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let newFile = directory + "/new.txt"
            try Data("brand new\n".utf8).write(to: URL(fileURLWithPath: newFile))
            let changed = try await old.call("passphrase", "--new-passphrase-file", newFile)
            #expect(changed.status == 0, "\(changed.error)")
            #expect(try await old.call("stats").status == 1)
            let new = Infinity(environment: ["INFINITY_STORE": store])
            #expect(try await new.call("blob", "get", token, "--passphrase-file", newFile).output == "secret")
        }
    }

    @Test func checkFindsDamageInABackupAndExitsOne() async throws {
        try await withTemporaryDirectory { directory in
            let store = directory + "/store"
            let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "pass", "INFINITY_STORE": store])
            #expect(try await cli.call("init", "--bare", store).status == 0)
            let source = directory + "/source"
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            try Data((0..<3_000_000).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: source + "/photo.raw"))
            try Data("notes\n".utf8).write(to: URL(fileURLWithPath: source + "/notes.txt"))
            let committed = try await cli.call("commit", source, "-m", "photos")
            #expect(committed.status == 0, "\(committed.error)")

            let clean = try await cli.call("check")
            #expect(clean.status == 0, "\(clean.output)\(clean.error)")
            #expect(clean.output.contains("1 commit") && clean.output.contains("no problems found"), "\(clean.output)")
            #expect(clean.error.isEmpty, "no progress when standard error is not a terminal")
            let full = try await cli.call("check", "--read-data", "--json")
            #expect(full.status == 0, "\(full.output)\(full.error)")
            let report = try JSONSerialization.jsonObject(with: Data(full.output.utf8)) as? [String: Any]
            #expect(report?["clean"] as? Bool == true)
            let summary = report?["summary"] as? [String: Any]
            #expect(summary?["chunksVerified"] as? Int == summary?["reachableChunks"] as? Int, "every chunk of the backup is decrypted")
            #expect(try await cli.call("check", "--read-data-subset", "1/2").status == 0)
            let badSubset = try await cli.call("check", "--read-data-subset", "half")
            #expect(badSubset.status != 0 && badSubset.status != 1)
            #expect(badSubset.error.contains("half"))

            // A flipped byte in the file's data: only --read-data reads it, and it names the pack.
            let packs = try FileManager.default.subpathsOfDirectory(atPath: store + "/packs").filter { $0.count > 60 }
            let dataPack = try #require(packs.max { (try? size(of: store + "/packs/" + $0)) ?? 0 < (try? size(of: store + "/packs/" + $1)) ?? 0 })
            let packPath = store + "/packs/" + dataPack
            var bytes = try Data(contentsOf: URL(fileURLWithPath: packPath))
            bytes[bytes.count / 2] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: packPath))
            #expect(try await cli.call("check").status == 0)
            let found = try await cli.call("check", "--read-data")
            #expect(found.status == 1)
            #expect(found.output.contains("blob data") && found.output.contains("packs/" + dataPack), "\(found.output)")
            #expect(found.output.contains("1 problem found"))

            // A deleted pack is named with what the backup lost, and --json says what kind of damage it is.
            try FileManager.default.removeItem(atPath: packPath)
            let missing = try await cli.call("check", "--json")
            #expect(missing.status == 1)
            let missingReport = try JSONSerialization.jsonObject(with: Data(missing.output.utf8)) as? [String: Any]
            #expect(missingReport?["clean"] as? Bool == false)
            let problems = missingReport?["problems"] as? [[String: Any]] ?? []
            #expect(problems.count == 1)
            #expect(problems.first?["code"] as? String == "missing pack")
            #expect(problems.first?["object"] as? String == "pack packs/" + dataPack)
            #expect((problems.first?["message"] as? String)?.contains("blob data") == true)
        }
    }

    @Test func everyCommandHasHelpWithExamples() throws {
        for command in [
            ["init"], ["commit"], ["checkout"], ["status"], ["diff"], ["log"], ["show"], ["ls"], ["cat"], ["branch"], ["fork"],
            ["tag"], ["merge"], ["reflog"], ["forget"], ["gc"], ["blob", "put"], ["blob", "get"], ["stats"], ["passphrase"], ["rebuild-index"], ["check"],
        ] {
            let result = try Infinity(environment: [:]).run(command + ["--help"])
            #expect(result.status == 0)
            #expect(result.output.contains("Example"), "\(command) --help shows examples")
        }
    }
}
