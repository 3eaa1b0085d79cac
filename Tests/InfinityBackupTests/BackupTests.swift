import Foundation
@testable import InfinityBackup
import InfinityDB
import InfinityTestSupport
import Testing

/// A store and database in a temporary folder, with a cheap passphrase hash.
private func withDatabase(_ body: (Database, String) async throws -> Void) async throws {
    try await withTemporaryDirectory { folder in
        var options = StoreOptions()
        options.scrypt = .minimal
        let store = try await Store.create(at: folder + "/store", agentName: "ann", passphrase: SecureBytes(utf8: "pw"), options: options)
        try await body(try store.database(), folder)
    }
}

/// Everything a tree can hold, with awkward names.
private func makeTree(at root: String) throws {
    let manager = FileManager.default
    try manager.createDirectory(atPath: root + "/sub/deep", withIntermediateDirectories: true)
    try manager.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
    try Data("hello\n".utf8).write(to: URL(fileURLWithPath: root + "/a.txt"))
    try Data("spaces\n".utf8).write(to: URL(fileURLWithPath: root + "/name with spaces"))
    try Data("utf8\n".utf8).write(to: URL(fileURLWithPath: root + "/crème brûlée ✓"))
    try Data("newline\n".utf8).write(to: URL(fileURLWithPath: root + "/new\nline"))
    var random = SeededGenerator(seed: 7)
    let big = (0..<(3 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) }
    try Data(big).write(to: URL(fileURLWithPath: root + "/sub/deep/big.bin"))
    try manager.createSymbolicLink(atPath: root + "/link", withDestinationPath: "a.txt")
    try manager.createSymbolicLink(atPath: root + "/dangling", withDestinationPath: "/nowhere/at/all")
    try manager.linkItem(atPath: root + "/a.txt", toPath: root + "/sub/hard")
    #expect(mkfifo(root + "/pipe", 0o640) == 0)
    #expect(chmod(root + "/sub", 0o750) == 0)
    #expect(chmod(root + "/name with spaces", 0o600) == 0)
}

/// Kind, mode, content or target and modification time of every path under `root`.
private func describeTree(_ root: String) throws -> [String: String] {
    var result: [String: String] = [:]
    let enumerator = FileManager.default.enumerator(atPath: root)!
    while let relative = enumerator.nextObject() as? String {
        let path = root + "/" + relative
        var status = stat()
        guard lstat(path, &status) == 0 else { continue }
        var text = "\(status.st_mode) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)"
        switch status.st_mode & S_IFMT {
        case S_IFREG: text += " " + (FileManager.default.contents(atPath: path)?.base64EncodedString().prefix(64).description ?? "?") + " \(status.st_size)"
        case S_IFLNK: text += " -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?")
        default: break
        }
        result[relative] = text
    }
    return result
}

@Suite struct BackupTests {
    @Test func roundTripOfEveryFileKindIsExact() async throws {
        try await withDatabase { database, folder in
            let source = folder + "/tree"
            try makeTree(at: source)
            let report = try await Backup(database: database).commit(
                [BackupSource(diskPath: source, snapshotPath: .root)], options: BackupOptions(message: "first"))
            #expect(report.warnings.isEmpty)
            #expect(report.summary.files == 5)
            let restored = folder + "/restored"
            let restore = try await Restorer(database: database).restore(report.snapshot, to: restored)
            #expect(restore.warnings.isEmpty)
            #expect(try describeTree(restored) == describeTree(source))
            // The hard link is a link again, not a copy.
            var first = stat(), second = stat()
            lstat(restored + "/a.txt", &first)
            lstat(restored + "/sub/hard", &second)
            #expect(first.st_ino == second.st_ino)
        }
    }

    @Test func unchangedFilesAreNotReadAgain() async throws {
        try await withDatabase { database, folder in
            let source = folder + "/tree"
            try makeTree(at: source)
            let backup = Backup(database: database)
            let sources = [BackupSource(diskPath: source, snapshotPath: .root)]
            let first = try await backup.commit(sources, options: BackupOptions(message: "first"))
            #expect(first.bytesAdded > 3 << 20, "the random 3 MiB file is stored")
            let again = try await backup.commit(sources, options: BackupOptions(message: "again"))
            #expect(again.filesRead == 0)
            #expect(again.bytesAdded < 64 << 10, "only the new commit and its index nodes")
            #expect(again.added == 0 && again.changed == 0 && again.removed == 0)
            try Data("changed\n".utf8).write(to: URL(fileURLWithPath: source + "/name with spaces"))
            try FileManager.default.removeItem(atPath: source + "/pipe")
            let third = try await backup.commit(sources, options: BackupOptions(message: "third"))
            #expect(third.filesRead == 1)
            #expect(third.removed == 1)
            #expect(third.changed >= 1)
            var changes: [PathChange] = []
            try await SnapshotChanges.between(again.snapshot, third.snapshot) { changes.append($0) }
            #expect(changes.map(\.path.description).contains("name with spaces"))
            #expect(changes.contains { $0.path.description == "pipe" && $0.kind == .removed })
        }
    }

    @Test func excludesFollowGitignoreRules() async throws {
        try await withDatabase { database, folder in
            let source = folder + "/tree"
            let manager = FileManager.default
            for directory in ["src/build", "docs/build", "cache", "keep"] {
                try manager.createDirectory(atPath: source + "/" + directory, withIntermediateDirectories: true)
            }
            for file in ["src/main.swift", "src/build/out.o", "docs/build/index.html", "notes.tmp", "keep/important.tmp", "cache/blob", "cache/CACHEDIR.TAG"] {
                try Data(file.utf8).write(to: URL(fileURLWithPath: source + "/" + file))
            }
            try Data("Signature: 8a477f597d28d172789f06886806bc55\n".utf8).write(to: URL(fileURLWithPath: source + "/cache/CACHEDIR.TAG"))
            try Data("*.tmp\n!keep/important.tmp\n/src/build/\n".utf8).write(to: URL(fileURLWithPath: source + "/.infinityignore"))
            var options = BackupOptions(message: "filtered")
            options.excludePatterns = ["docs/**"]
            options.excludeCaches = true
            let report = try await Backup(database: database).commit([BackupSource(diskPath: source, snapshotPath: .root)], options: options)
            var paths: [String] = []
            try await report.snapshot.forEachEntry(in: SnapshotIndex.files) { path, _ in
                paths.append(path.description)
                return true
            }
            #expect(paths == [".infinityignore", "cache", "cache/CACHEDIR.TAG", "docs", "keep", "keep/important.tmp", "src", "src/main.swift"])
        }
    }

    @Test func pathsThatCouldEscapeAreRefused() throws {
        for hostile in ["..", "a/../b", "./x"] {
            #expect(throws: BackupError.self) { try SnapshotPath(hostile) }
        }
        #expect(throws: BackupError.self) { try SnapshotPath(components: [Array("a/b".utf8)]) }
        #expect(throws: BackupError.self) { try SnapshotPath(components: [[]]) }
        #expect(try SnapshotPath("/home//ann/").description == "home/ann")
    }

    @Test func aSnapshotCannotWriteThroughASymlink() async throws {
        try await withDatabase { database, folder in
            // A snapshot whose "link" is a symlink to a directory outside, with a file "under" it.
            let outside = folder + "/outside"
            try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
            let draft = try await database.draft(on: "main")
            let link = FileEntry(kind: .symlink, mode: 0o777, userID: 0, groupID: 0, size: 0, modified: 0, changed: 0, inode: 1, device: 1, linkTarget: Array(outside.utf8))
            let file = FileEntry(kind: .file, mode: 0o644, userID: 0, groupID: 0, size: 0, modified: 0, changed: 0, inode: 2, device: 1)
            try await draft.set(link, for: try SnapshotPath("link"), in: SnapshotIndex.files)
            try await draft.set(file, for: try SnapshotPath("link/escaped"), in: SnapshotIndex.files)
            let snapshot = try await draft.commit(message: "hostile")
            await #expect(throws: BackupError.self) {
                _ = try await Restorer(database: database).restore(snapshot, to: folder + "/target")
            }
            #expect(!FileManager.default.fileExists(atPath: outside + "/escaped"))
        }
    }

    @Test func restoringPartOfASnapshot() async throws {
        try await withDatabase { database, folder in
            let source = folder + "/tree"
            try makeTree(at: source)
            let report = try await Backup(database: database).commit(
                [BackupSource(diskPath: source, snapshotPath: try SnapshotPath("data/tree"))], options: BackupOptions(message: "nested"))
            var options = RestoreOptions()
            options.paths = [try SnapshotPath("data/tree/sub")]
            let restored = folder + "/part"
            _ = try await Restorer(database: database).restore(report.snapshot, to: restored, options: options)
            let paths = Set(try describeTree(restored).keys)
            #expect(paths == ["data", "data/tree", "data/tree/sub", "data/tree/sub/deep", "data/tree/sub/deep/big.bin", "data/tree/sub/hard"])
            // The hard link's first name was not restored, so it got the content itself.
            #expect(FileManager.default.contents(atPath: restored + "/data/tree/sub/hard") == Data("hello\n".utf8))
        }
    }

    @Test func overlappingSourcesAndMissingPathsAreRefused() async throws {
        try await withDatabase { database, folder in
            let source = folder + "/tree"
            try makeTree(at: source)
            let backup = Backup(database: database)
            await #expect(throws: BackupError.self) {
                _ = try await backup.commit(
                    [BackupSource(diskPath: source, snapshotPath: .root), BackupSource(diskPath: source + "/sub", snapshotPath: try SnapshotPath("sub"))],
                    options: BackupOptions(message: "overlap"))
            }
            let report = try await backup.commit([BackupSource(diskPath: source, snapshotPath: .root)], options: BackupOptions(message: "ok"))
            var options = RestoreOptions()
            options.paths = [try SnapshotPath("no/such/path")]
            do {
                _ = try await Restorer(database: database).restore(report.snapshot, to: folder + "/out", options: options)
                Issue.record("restoring a path the snapshot lacks must fail")
            } catch let error as BackupError {
                #expect(error.code == .notFound)
                #expect(error.message.contains("no/such/path"))
            }
        }
    }
}

@Suite struct SourceWarmUpTests {
    /// Waits (at most about ten seconds) for a warm-up to end.
    private func waitUntilFinished(_ warmUp: SourceWarmUp) async throws -> Bool {
        for _ in 0..<1000 where !warmUp.isFinished { try await Task.sleep(for: .milliseconds(10)) }
        return warmUp.isFinished
    }

    /// A warm-up walks to the end of its sources by itself, leaves them as they were, and a
    /// source that is gone or unreadable only ends it.
    @Test func walksToTheEndAndChangesNothing() async throws {
        try await withTemporaryDirectory { folder in
            try makeTree(at: folder + "/tree")
            let before = try describeTree(folder + "/tree")
            let sources = [
                BackupSource(diskPath: folder + "/missing", snapshotPath: try SnapshotPath("missing")),
                BackupSource(diskPath: folder + "/tree", snapshotPath: try SnapshotPath("tree")),
            ]
            let warmUp = SourceWarmUp.start(sources, options: BackupOptions(message: "warm"))
            #expect(try await waitUntilFinished(warmUp))
            #expect(try describeTree(folder + "/tree") == before)
        }
    }

    /// It walks what the commit's walk admits, no more: excludes, ignore files and tagged cache
    /// directories are left unwalked, however the threads share the directories.
    @Test func followsTheWalkRules() async throws {
        try await withTemporaryDirectory { folder in
            let tree = folder + "/tree"
            for directory in ["kept", "kept/inner", "ignored", "excluded", "cache"] {
                try FileManager.default.createDirectory(atPath: tree + "/" + directory, withIntermediateDirectories: true)
                for file in 0..<20 { _ = FileManager.default.createFile(atPath: tree + "/\(directory)/f\(file)", contents: nil) }
            }
            try Data("ignored/\n".utf8).write(to: URL(fileURLWithPath: tree + "/.infinityignore"))
            try Data("Signature: 8a477f597d28d172789f06886806bc55\n".utf8).write(to: URL(fileURLWithPath: tree + "/cache/CACHEDIR.TAG"))
            var options = BackupOptions(message: "warm")
            options.excludePatterns = ["excluded"]
            options.excludeCaches = true
            let warmUp = SourceWarmUp.start([BackupSource(diskPath: tree, snapshotPath: try SnapshotPath("tree"))], options: options)
            #expect(try await waitUntilFinished(warmUp))
            // The root, .infinityignore, kept and kept/inner with their 40 files, the cache
            // directory and its tag.
            #expect(warmUp.pathsWalked == 1 + 1 + 2 + 40 + 2)
        }
    }

    /// The commit's walk takes what the warm-up listed, and finds the same paths, statuses and
    /// link targets as a walk that reads everything itself.
    @Test func itsListingsServeTheCommitsWalk() async throws {
        try await withTemporaryDirectory { folder in
            try makeTree(at: folder + "/tree")
            let source = BackupSource(diskPath: folder + "/tree", snapshotPath: try SnapshotPath("tree"))
            let warmUp = SourceWarmUp.start([source], options: BackupOptions(message: "warm"))
            #expect(try await waitUntilFinished(warmUp))
            #expect(warmUp.listings.waitingNameCount > 0)
            func walk(_ listings: WalkedListings?) throws -> [String] {
                var options = TreeWalker.Options(for: BackupOptions(message: "walk"))
                options.listings = listings
                var walker = try TreeWalker(source: Array(source.diskPath.utf8), prefix: source.snapshotPath, options: options)
                var seen: [String] = []
                while let item = try walker.next() { seen.append("\(item.path) \(item.status) \(item.linkTarget ?? [])") }
                return seen
            }
            let fromListings = try walk(warmUp.listings)
            #expect(warmUp.listings.waitingNameCount == 0, "every listing was taken")
            #expect(fromListings == (try walk(nil)))
            #expect(fromListings.count > 10)
        }
    }

    /// Stopped, it ends at its next path however much is left to walk.
    @Test func stopsWhenTold() async throws {
        try await withTemporaryDirectory { folder in
            for directory in 0..<50 {
                let path = folder + "/tree/d\(directory)"
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                for file in 0..<50 { _ = FileManager.default.createFile(atPath: path + "/f\(file)", contents: nil) }
            }
            let warmUp = SourceWarmUp.start(
                [BackupSource(diskPath: folder + "/tree", snapshotPath: try SnapshotPath("tree"))], options: BackupOptions(message: "warm"))
            warmUp.stop()
            #expect(try await waitUntilFinished(warmUp))
            #expect(warmUp.pathsWalked < 2551, "it stopped before the end of the 2,551 paths")

            let whole = SourceWarmUp.start(
                [BackupSource(diskPath: folder + "/tree", snapshotPath: try SnapshotPath("tree"))], options: BackupOptions(message: "warm"))
            #expect(try await waitUntilFinished(whole))
            #expect(whole.pathsWalked == 2551)
        }
    }

    /// A commit handed a running warm-up uses it and stops it; the snapshot is the same as one
    /// taken without.
    @Test func aCommitStopsTheWarmUpItIsGiven() async throws {
        try await withDatabase { database, folder in
            try makeTree(at: folder + "/tree")
            let source = BackupSource(diskPath: folder + "/tree", snapshotPath: .root)
            var options = BackupOptions(message: "with a warm-up")
            let given = SourceWarmUp.start([source], options: options)
            options.warmUp = given
            let report = try await Backup(database: database).commit([source], options: options)
            #expect(given.isStopped)
            #expect(try await waitUntilFinished(given))
            #expect(report.warnings.isEmpty && report.added > 5)
            // Options used again with the stopped warm-up still commit (with a warm-up of their own).
            let again = try await Backup(database: database).commit([source], options: options)
            #expect(again.warnings.isEmpty && again.unchanged > 5)
        }
    }
}
