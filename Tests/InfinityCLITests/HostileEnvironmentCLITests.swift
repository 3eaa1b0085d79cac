import Foundation
import InfinityTestSupport
import Testing

/// Whether this machine lets the tests mount file systems (root with the right to mount, as on
/// CI): a small tmpfs stands for a full disk, a read-only bind mount for read-only media.
private let canMount: Bool = {
    let probe = FileManager.default.temporaryDirectory.appendingPathComponent("infinitydb-mount-probe-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: probe) }
    guard (try? mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe])) == 0 else { return false }
    _ = try? unmount(probe)
    return true
}()

@discardableResult
private func mount(_ arguments: [String]) throws -> Int32 {
    try system(["mount"] + arguments)
}

@discardableResult
private func unmount(_ path: String) throws -> Int32 {
    try system(["umount", path])
}

private func system(_ arguments: [String]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

/// The store's surroundings turn hostile: the disk fills up, the medium is read-only.
@Suite(.serialized, .enabled(if: canMount, "needs the right to mount a tmpfs and a read-only bind mount (root on CI)"))
struct HostileEnvironmentCLITests {
    @Test func aFullDiskFailsTheCommitCleanlyAndTheStoreCarriesOn() async throws {
        try await withTemporaryDirectory { directory in
            let disk = directory + "/disk"
            try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
            #expect(try mount(["-t", "tmpfs", "-o", "size=6m", "tmpfs", disk]) == 0)
            defer { _ = try? unmount(disk) }
            let store = disk + "/store"
            let data = directory + "/data"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            try Data("first\n".utf8).write(to: URL(fileURLWithPath: data + "/a.txt"))
            let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "full", "INFINITY_HOME": directory + "/home", "INFINITY_STORE": store])
            #expect(try await cli.call("init", "--bare", store, "-q").status == 0)
            #expect(try await cli.call("commit", data, "-m", "fits", "-q").status == 0)

            // 20 MiB that does not compress, onto 6 MiB.
            try Data(SampleData.bytes(count: 20 << 20, seed: 3)).write(to: URL(fileURLWithPath: data + "/big.bin"))
            let full = try await cli.call("commit", data, "-m", "does not fit", "-q")
            #expect(full.status == 1, "\(full.output)")
            #expect(full.error.contains("No space left") && full.error.contains(store), "\(full.error)")
            #expect(!full.error.contains("Fatal error"), "\(full.error)")

            // Nothing of the failed commit is left to fill the disk, nothing earlier is harmed.
            let check = try await cli.call("check", "--read-data")
            #expect(check.status == 0, "\(check.output)\(check.error)")
            let log = try await cli.call("log")
            #expect(log.output.contains("fits") && !log.output.contains("does not fit"), "\(log.output)")
            try FileManager.default.removeItem(atPath: data + "/big.bin")
            try Data("second\n".utf8).write(to: URL(fileURLWithPath: data + "/b.txt"))
            #expect(try await cli.call("commit", data, "-m", "after the disk filled", "-q").status == 0)
            #expect(try await cli.call("checkout", "main", "--to", directory + "/restored", "-q").status == 0)
            #expect(FileManager.default.contentsEqual(atPath: data, andPath: directory + "/restored" + data))
        }
    }

    @Test func aStoreOnReadOnlyMediaIsNamedAsSuch() async throws {
        try await withTemporaryDirectory { directory in
            let store = directory + "/store"
            let readOnly = directory + "/read-only"
            let data = directory + "/data"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
            try Data("kept\n".utf8).write(to: URL(fileURLWithPath: data + "/a.txt"))
            let cli = Infinity(environment: ["INFINITY_PASSPHRASE": "media", "INFINITY_HOME": directory + "/home"])
            #expect(try await cli.call("init", "--bare", store, "-q").status == 0)
            #expect(try await cli.call("commit", "--store", store, data, "-m", "kept", "-q").status == 0)
            #expect(try mount(["--bind", store, readOnly]) == 0)
            defer { _ = try? unmount(readOnly) }
            #expect(try mount(["-o", "remount,bind,ro", readOnly]) == 0)

            for arguments in [["log"], ["commit", data, "-m", "refused"]] {
                let result = try cli.run(arguments + ["--store", readOnly])
                #expect(result.status == 1, "\(arguments)")
                #expect(result.error.contains("read-only file system") && result.error.contains(readOnly), "\(result.error)")
            }
            // The store itself is untouched and opens once writable again.
            #expect(try await cli.call("log", "--store", store).output.contains("kept"))
        }
    }
}

/// A file the backup cannot read. Root reads anything, so as root the commands run as `nobody`
/// (through setpriv), over a folder handed to that user.
@Suite struct UnreadableFileCLITests {
    private func infinity(_ arguments: [String], environment: [String: String]) throws -> Infinity.Result {
        guard geteuid() == 0 else { return try Infinity(environment: environment).run(arguments) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", Infinity.binary.path] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Infinity.Result(
            status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
            error: String(decoding: errorData, as: UTF8.self))
    }

    @Test func anUnreadableFileIsNamedAndTheSnapshotIsPartial() async throws {
        try await withTemporaryDirectory { folder in
            let data = folder + "/data"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            try Data("kept\n".utf8).write(to: URL(fileURLWithPath: data + "/kept.txt"))
            try Data("secret\n".utf8).write(to: URL(fileURLWithPath: data + "/locked.txt"))
            if geteuid() == 0 {
                for path in try [folder] + FileManager.default.subpathsOfDirectory(atPath: folder).map({ folder + "/" + $0 }) {
                    chown(path, 65534, 65534)
                }
            }
            chmod(data + "/locked.txt", 0)
            let environment = ["INFINITY_PASSPHRASE": "pw", "INFINITY_STORE": folder + "/store", "INFINITY_HOME": folder + "/home"]
            #expect(try infinity(["init", "--bare", folder + "/store", "-q"], environment: environment).status == 0)
            let partial = try infinity(["commit", data, "-m", "partial"], environment: environment)
            #expect(partial.status == 3, "\(partial.output)\(partial.error)")
            #expect(partial.error.contains("locked.txt") && partial.error.contains("ermission denied"), "\(partial.error)")
            let listed = try infinity(["ls", "HEAD", String(data.dropFirst())], environment: environment)
            #expect(listed.output.contains("kept.txt") && !listed.output.contains("locked.txt"), "\(listed.output)")
        }
    }
}
