#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
@testable import InfinityBackends
import InfinityTestSupport
import Testing

@Suite struct LocalDirectoryBackendTests {
    /// Every file below `directory`, relative to it, hidden files included.
    private func allFiles(below directory: String) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: directory)
        var files: [String] = []
        while let path = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(directory)/\(path)", isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(path)
            }
        }
        return files.sorted()
    }

    /// Range reads keep a few files open: a write or delete through the backend is seen by the
    /// next read at once, one by another process within the open files' lifetime, and the number
    /// of descriptors held stays bounded however many objects are read.
    @Test func filesKeptOpenForRangeReadsNeverServeOldContent() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory)
            let otherProcess = try LocalDirectoryBackend(root: directory)
            try await backend.put("packs/p", [1, 2, 3, 4])
            #expect(try await backend.get("packs/p", range: 0..<2) == [1, 2])
            try await backend.put("packs/p", [9, 8, 7, 6, 5])
            #expect(try await backend.get("packs/p", range: 3..<5) == [6, 5])
            try await backend.delete("packs/p")
            await #expect(throws: BackendError.self) { try await backend.get("packs/p", range: 0..<1) }

            try await backend.put("packs/q", [1, 1, 1])
            #expect(try await backend.get("packs/q", range: 0..<1) == [1])
            try await otherProcess.put("packs/q", [2, 2, 2])
            try await Task.sleep(for: LocalDirectoryBackend.openFileLifetime + .milliseconds(50))
            #expect(try await backend.get("packs/q", range: 0..<1) == [2])

            for index in 0..<12 {
                try await backend.put("many/\(index)", [UInt8(index)])
                #expect(try await backend.get("many/\(index)", range: 0..<1) == [UInt8(index)])
                #expect(backend.keptOpenFileCount <= LocalDirectoryBackend.openFileCount)
            }
            // Past their lifetime they are closed at the next read.
            try await Task.sleep(for: LocalDirectoryBackend.openFileLifetime + .milliseconds(50))
            _ = try await backend.get("many/0", range: 0..<1)
            #expect(backend.keptOpenFileCount == 1)
        }
    }

    /// Large objects go to disk past the page cache in whole 4 KiB blocks and the rest through
    /// it: every length around those edges comes back whole, in one read and in ranges, and a
    /// direct write into a file on any filesystem (here the test's temporary one) leaves exactly
    /// the bytes given.
    @Test func largeObjectsOfEveryAlignmentRoundTrip() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory)
            let block = DirectWriteBuffer.alignment
            let sizes = [
                DirectWriteBuffer.size - 1, DirectWriteBuffer.size, DirectWriteBuffer.size + 1, 2 * DirectWriteBuffer.size + block,
                3 * DirectWriteBuffer.size + block - 1, 5 * DirectWriteBuffer.size + 12_345,
            ]
            for (number, size) in sizes.enumerated() {
                let bytes = (0..<size).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13 ^ number) }
                let name = "packs/\(number)"
                try await backend.put(name, bytes)
                #expect(try await backend.get(name) == bytes, "size \(size)")
                let tail = max(0, size - block - 7)..<size
                #expect(try await backend.get(name, range: tail) == Array(bytes[tail]), "size \(size)")
                let onDisk = try FileManager.default.attributesOfItem(atPath: "\(directory)/\(name)")[.size] as? Int
                #expect(onDisk == bytes.count)
            }
        }
    }

    /// A direct write the file refuses goes through the page cache: here the file already holds
    /// 100 bytes, so the first block would start off alignment and the write is refused (EINVAL
    /// on ext4; a filesystem without direct I/O refuses the flag itself). The file then holds
    /// exactly the bytes written, and the descriptor is left as it was.
    @Test func aRefusedDirectWriteGoesThroughThePageCache() async throws {
        try await withTemporaryDirectory { directory in
            let path = "\(directory)/unaligned"
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            try #require(descriptor >= 0)
            defer { close(descriptor) }
            let head = [UInt8](repeating: 0x5A, count: 100)
            let body = (0..<(3 * DirectWriteBuffer.size + 17)).map { UInt8(truncatingIfNeeded: ($0 &* 31) >> 3) }
            let flagsBefore = fcntl(descriptor, F_GETFL)
            try head.withUnsafeBytes { try FileSystem.writeAll(descriptor, $0, path: path) }
            try body.withUnsafeBytes { try FileSystem.writeAllPastCache(descriptor, $0, path: path) }
            #expect(fcntl(descriptor, F_GETFL) == flagsBefore)
            #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) == head + body)
        }
    }

    /// Reading ahead is a hint: an object, a missing one and a name that is no object name are
    /// all taken without an error, and the object reads back the same.
    @Test func readingAheadIsAHintThatNeverFails() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory)
            try await backend.put("packs/ab/one", Array(repeating: 7, count: 10_000))
            await backend.readAhead("packs/ab/one")
            await backend.readAhead("packs/ab/missing")
            await backend.readAhead("../outside")
            #expect(try await backend.get("packs/ab/one") == Array(repeating: 7, count: 10_000))
        }
    }

    /// The folders made ahead of the objects: all of them, again without harm, objects put
    /// into them, and a file in the way of one refused by path.
    @Test func foldersAreMadeAheadOfTheirObjects() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory)
            try backend.createFolders(["00", "7f", "ff"], in: "packs")
            try backend.createFolders(["00", "7f", "ff"], in: "packs")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/packs").sorted() == ["00", "7f", "ff"])
            try await backend.put("packs/7f/one", [1, 2, 3])
            #expect(try await backend.list(prefix: "packs/").map(\.name) == ["packs/7f/one"])
            try Data().write(to: URL(fileURLWithPath: directory + "/packs/ab"))
            #expect { try backend.createFolders(["ab"], in: "packs") } throws: { error in
                "\(error)".contains(directory + "/packs/ab")
            }
        }
    }

    @Test func objectLivesAtItsPathBelowTheRoot() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory + "/store/")
            #expect(backend.root == directory + "/store")
            try await backend.put("a/b/c", [1, 2, 3])
            #expect(backend.path(of: "a/b/c") == directory + "/store/a/b/c")
            #expect(FileManager.default.contents(atPath: directory + "/store/a/b/c") == Data([1, 2, 3]))
        }
    }

    @Test func noTemporaryFileRemainsAfterPuts() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory)
            var names: [String] = []
            for index in 0..<20 {
                let name = "objects/\(index % 3)/object-\(index)"
                names.append(name)
                try await backend.put(name, SampleData.bytes(count: index * 100, seed: UInt64(index)))
                try await backend.put(name, SampleData.bytes(count: index * 50, seed: UInt64(index) + 100))
            }
            #expect(allFiles(below: directory) == names.sorted())
        }
    }

    @Test func temporaryFilesAreNeverListed() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory)
            try await backend.put("dir/object", [1])
            // What a put interrupted by a crash leaves behind.
            let leftover = "\(directory)/dir/\(LocalDirectoryBackend.temporaryPrefix)0123abcd"
            #expect(FileManager.default.createFile(atPath: leftover, contents: Data([9, 9])))
            #expect(!ObjectName.isValid("dir/" + LocalDirectoryBackend.temporaryPrefix + "0123abcd"))
            #expect(try await backend.list(prefix: "").map(\.name) == ["dir/object"])
            #expect(try await backend.list(prefix: "dir/.tmp").isEmpty)
        }
    }

    @Test func fileCreatedByHandIsListedAndReadable() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory)
            try FileManager.default.createDirectory(atPath: directory + "/by-hand", withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: directory + "/by-hand/file.txt", contents: Data("hello".utf8)))
            #expect(FileManager.default.createFile(atPath: directory + "/top", contents: Data()))
            // Names that are not object names are not objects.
            #expect(FileManager.default.createFile(atPath: directory + "/not valid", contents: Data([1])))
            #expect(try await backend.list(prefix: "") == [
                ObjectInfo(name: "by-hand/file.txt", size: 5),
                ObjectInfo(name: "top", size: 0),
            ])
            #expect(try await backend.get("by-hand/file.txt") == Array("hello".utf8))
        }
    }

    @Test func symbolicLinkToFileIsAnObjectAndLinkedDirectoryIsNotFollowed() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory + "/store")
            try await backend.put("real", [1, 2])
            #expect(symlink(directory + "/store/real", directory + "/store/link") == 0)
            #expect(symlink(directory + "/store", directory + "/store/loop") == 0)
            #expect(try await backend.list(prefix: "") == [
                ObjectInfo(name: "link", size: 2), ObjectInfo(name: "real", size: 2),
            ])
        }
    }

    @Test func putBelowARegularFileGivesAClearError() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory)
            try await backend.put("blocker", [1])
            let error = await #expect(throws: BackendError.self) { try await backend.put("blocker/child", [2]) }
            #expect(error?.code == .io)
            #expect(error?.objectName == "blocker/child")
            #expect(error?.message.contains("'blocker/child'") == true)
            #expect(error?.message.contains(directory + "/blocker/child") == true)
            #expect(error?.message.contains(String(cString: strerror(ENOTDIR))) == true)
            #expect((error?.cause as? POSIXError)?.code == .ENOTDIR)
            #expect(allFiles(below: directory) == ["blocker"], "no temporary file is left behind")
        }
    }

    @Test func rootBelowARegularFileGivesAClearError() async {
        await withTemporaryDirectory { directory in
            #expect(FileManager.default.createFile(atPath: directory + "/file", contents: Data()))
            let root = directory + "/file/store"
            let error = #expect(throws: BackendError.self) { try LocalDirectoryBackend(root: root) }
            #expect(error?.code == .io)
            #expect(error?.message.contains(root) == true)
            #expect(error?.message.contains(String(cString: strerror(ENOTDIR))) == true)
        }
    }

    @Test(.enabled(if: geteuid() != 0, "root may write into read-only directories"))
    func putIntoReadOnlyDirectoryIsPermissionDenied() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory + "/store")
            try await backend.put("locked/existing", [1])
            #expect(chmod(directory + "/store/locked", 0o555) == 0)
            defer { chmod(directory + "/store/locked", 0o755) }
            let error = await #expect(throws: BackendError.self) { try await backend.put("locked/new", [2]) }
            #expect(error?.code == .permissionDenied)
            #expect(error?.objectName == "locked/new")
            #expect(error?.message.contains(directory + "/store/locked/new") == true)
        }
    }

    @Test func directoryIsNotAnObject() async throws {
        try await withTemporaryDirectory { directory in
            let backend = try LocalDirectoryBackend(root: directory)
            try await backend.put("dir/object", [1])
            #expect(try await backend.info("dir") == nil)
            let error = await #expect(throws: BackendError.self) { try await backend.get("dir") }
            #expect(error?.code == .notFound)
            try await backend.delete("dir")
            #expect(try await backend.get("dir/object") == [1])
        }
    }

    @Test func newStoreSeesObjectsOfAnEarlierOne() async throws {
        try await withTemporaryDirectory { directory in
            try await LocalDirectoryBackend(root: directory).put("kept/object", [7, 8])
            let reopened = try LocalDirectoryBackend(root: directory)
            #expect(try await reopened.get("kept/object") == [7, 8])
        }
    }

    @Test func errnoMapsToBackendCodes() {
        #expect(LocalDirectoryBackend.code(for: ENOENT) == .notFound)
        #expect(LocalDirectoryBackend.code(for: ENOSPC) == .noSpace)
        #expect(LocalDirectoryBackend.code(for: EDQUOT) == .noSpace)
        #expect(LocalDirectoryBackend.code(for: EACCES) == .permissionDenied)
        #expect(LocalDirectoryBackend.code(for: EPERM) == .permissionDenied)
        #expect(LocalDirectoryBackend.code(for: EROFS) == .readOnly)
        #expect(LocalDirectoryBackend.code(for: EIO) == .io)
        #expect(LocalDirectoryBackend.code(for: ENOTDIR) == .io)
    }
}
