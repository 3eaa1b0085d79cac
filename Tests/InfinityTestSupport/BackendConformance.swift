import InfinityBackends
import Testing

/// The behaviour every ``Backend`` must show, checked with Swift Testing expectations.
///
/// Call it from a `@Test` of each backend:
///
///     @Test func conformance() async throws {
///         try await BackendConformance.run { MemoryBackend() }
///     }
///
/// `makeBackend` is called once per group of checks and must return a backend over a new,
/// empty store each time (a fresh directory, file or bucket prefix), so that the groups
/// cannot see each other's objects. Expectation failures are recorded against the calling
/// test; an unexpected error from the backend is rethrown.
public enum BackendConformance {
    /// Checks every behaviour of ``Backend`` on stores made by `makeBackend` (see above).
    public static func run(_ makeBackend: () async throws -> any Backend) async throws {
        try await checkEmptyStore(makeBackend())
        try await checkRoundTrip(makeBackend())
        try await checkOverwrite(makeBackend())
        try await checkMissingObjects(makeBackend())
        try await checkRanges(makeBackend())
        try await checkInfo(makeBackend())
        try await checkList(makeBackend())
        try await checkDelete(makeBackend())
        try await checkDeleteMany(makeBackend())
        try await checkInvalidNames(makeBackend())
        try await checkValidUnusualNames(makeBackend())
        try await checkConcurrentAccess(makeBackend())
        try await checkAtomicReplacement(makeBackend())
    }

    /// Names every backend must refuse with `.invalidName`.
    public static let invalidNames: [String] = [
        "", "/", "/absolute", "trailing/", "double//slash", ".", "..", "../escape", "a/../b", "a/.",
        "./a", "with space", "back\\slash", "colon:name", "tilde~name", "ümlaut", "nul\u{0}byte",
        "new\nline", "star*", "question?", String(repeating: "n", count: ObjectName.maximumByteCount + 1),
    ]

    // MARK: Groups of checks

    static func checkEmptyStore(_ backend: any Backend) async throws {
        #expect(try await backend.list(prefix: "").isEmpty, "a new store lists no objects")
        #expect(try await backend.list(prefix: "a").isEmpty)
        #expect(try await backend.info("a") == nil)
        await expectError(.notFound, naming: "a") { try await backend.get("a") }
    }

    static func checkRoundTrip(_ backend: any Backend) async throws {
        let objects: [(name: String, data: [UInt8])] = [
            ("empty", []),
            ("one-byte", [0xA5]),
            ("small", SampleData.bytes(count: 1000, seed: 1)),
            ("nested/large/object.bin", SampleData.bytes(count: 3 * 1024 * 1024 + 17, seed: 2)),
        ]
        for (name, data) in objects {
            try await backend.put(name, data)
        }
        for (name, data) in objects {
            let read = try await backend.get(name)
            expectSameBytes(read, data, name)
            #expect(try await backend.info(name) == ObjectInfo(name: name, size: data.count))
        }
    }

    static func checkOverwrite(_ backend: any Backend) async throws {
        let name = "replaced"
        for (size, seed) in [(1000, UInt64(10)), (10, 11), (5000, 12), (0, 13)] {
            let data = SampleData.bytes(count: size, seed: seed)
            try await backend.put(name, data)
            expectSameBytes(try await backend.get(name), data, name)
            #expect(try await backend.info(name)?.size == size, "after overwrite with \(size) bytes")
            #expect(try await backend.list(prefix: "") == [ObjectInfo(name: name, size: size)],
                    "an overwritten object is listed once")
        }
    }

    static func checkMissingObjects(_ backend: any Backend) async throws {
        try await backend.put("file", [1, 2, 3])
        try await backend.put("dir/inside", [4])
        // "dir" only prefixes another object, and "file/child" would be below an object.
        for name in ["missing", "missing/nested/object", "dir", "file/child"] {
            await expectError(.notFound, naming: name) { try await backend.get(name) }
            await expectError(.notFound, naming: name) { try await backend.get(name, range: 0..<0) }
            #expect(try await backend.info(name) == nil, "info of missing '\(name)'")
        }
        #expect(try await backend.list(prefix: "").map(\.name) == ["dir/inside", "file"])
    }

    static func checkRanges(_ backend: any Backend) async throws {
        let name = "ranged"
        let data = SampleData.bytes(count: 1000, seed: 20)
        try await backend.put(name, data)
        for range in [0..<10, 100..<250, 990..<1000, 0..<1000, 0..<0, 500..<500, 1000..<1000] {
            let read = try await backend.get(name, range: range)
            expectSameBytes(read, Array(data[range]), "\(name) range \(range)")
        }
        for range in [990..<1001, 1000..<1001, 1001..<1001, 2000..<3000, -1..<5] {
            await expectError(.rangeNotSatisfiable, naming: name) { try await backend.get(name, range: range) }
        }

        try await backend.put("empty", [])
        #expect(try await backend.get("empty", range: 0..<0) == [])
        await expectError(.rangeNotSatisfiable, naming: "empty") { try await backend.get("empty", range: 0..<1) }
    }

    static func checkInfo(_ backend: any Backend) async throws {
        #expect(try await backend.info("sized") == nil)
        try await backend.put("sized", SampleData.bytes(count: 4321, seed: 30))
        #expect(try await backend.info("sized") == ObjectInfo(name: "sized", size: 4321))
        try await backend.put("sized", [9])
        #expect(try await backend.info("sized") == ObjectInfo(name: "sized", size: 1))
        try await backend.delete("sized")
        #expect(try await backend.info("sized") == nil)
    }

    static func checkList(_ backend: any Backend) async throws {
        // Stored in an order unrelated to the sorted order; '-' < '.' < '/' < '0' < 'X' < '_' < 'a'.
        let names = ["b/d/e", "x0", "a", "X", "x/1", "b/c", "_u", "x.1", "ba", "x-1"]
        for (index, name) in names.enumerated() {
            try await backend.put(name, SampleData.bytes(count: index + 1, seed: UInt64(index)))
        }
        let sizes = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0 + 1) })
        func expectListing(_ prefix: String, _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation)
            async throws
        {
            let listed = try await backend.list(prefix: prefix)
            #expect(listed.map(\.name) == expected, "list(prefix: \"\(prefix)\")", sourceLocation: sourceLocation)
            for object in listed {
                #expect(object.size == sizes[object.name], "size of listed '\(object.name)'", sourceLocation: sourceLocation)
            }
        }
        try await expectListing("", ["X", "_u", "a", "b/c", "b/d/e", "ba", "x-1", "x.1", "x/1", "x0"])
        try await expectListing("b", ["b/c", "b/d/e", "ba"])
        try await expectListing("b/", ["b/c", "b/d/e"])
        try await expectListing("b/d", ["b/d/e"])
        try await expectListing("b/d/e", ["b/d/e"])
        try await expectListing("b/d/e/", [])
        try await expectListing("x", ["x-1", "x.1", "x/1", "x0"])
        try await expectListing("nothing", [])
        try await expectListing("b//", [])
        try await expectListing("../", [])
        try await expectListing("/", [])

        try await backend.delete("b/d/e")
        try await expectListing("b/", ["b/c"])
    }

    static func checkDelete(_ backend: any Backend) async throws {
        try await backend.put("kept", [1])
        try await backend.put("doomed/object", [2, 3])
        try await backend.delete("doomed/object")
        await expectError(.notFound, naming: "doomed/object") { try await backend.get("doomed/object") }
        #expect(try await backend.info("doomed/object") == nil)
        #expect(try await backend.list(prefix: "").map(\.name) == ["kept"])
        try await backend.delete("doomed/object")
        try await backend.delete("never/existed")
        #expect(try await backend.get("kept") == [1], "deleting one object leaves the others")
        try await backend.put("doomed/object", [4])
        #expect(try await backend.get("doomed/object") == [4], "a deleted name can be stored again")
    }

    static func checkDeleteMany(_ backend: any Backend) async throws {
        let names = (0..<12).map { "many/object-\($0)" }
        for name in names { try await backend.put(name, [1]) }
        try await backend.put("kept", [2])
        try await backend.delete([])
        try await backend.delete(names + ["never/existed"])
        #expect(try await backend.list(prefix: "").map(\.name) == ["kept"], "deleting many objects leaves the others")
        try await backend.delete(["kept"])
        #expect(try await backend.list(prefix: "").isEmpty)
        try await backend.put("kept", [3])
        await expectError(.invalidName, naming: "../escape") { try await backend.delete(["kept", "../escape"]) }
        #expect(try await backend.get("kept") == [3], "a batch with an invalid name deletes nothing")
    }

    static func checkInvalidNames(_ backend: any Backend) async throws {
        for name in invalidNames {
            await expectError(.invalidName, naming: name) { try await backend.put(name, [1]) }
            await expectError(.invalidName, naming: name) { try await backend.get(name) }
            await expectError(.invalidName, naming: name) { try await backend.get(name, range: 0..<0) }
            await expectError(.invalidName, naming: name) { try await backend.info(name) }
            await expectError(.invalidName, naming: name) { try await backend.delete(name) }
        }
        #expect(try await backend.list(prefix: "").isEmpty, "refused puts store nothing")
    }

    static func checkValidUnusualNames(_ backend: any Backend) async throws {
        // The longest valid name, in segments short enough for any file system.
        let segment = String(repeating: "s", count: 100)
        let longest = Array(repeating: segment, count: 10).joined(separator: "/") + "/" + String(repeating: "t", count: 14)
        #expect(longest.utf8.count == ObjectName.maximumByteCount)
        let names = [".hidden", "a..b", "...", "-dash", "under_score", "UPPER.lower-09", longest]
        for (index, name) in names.enumerated() {
            let data = SampleData.bytes(count: 10 + index, seed: UInt64(40 + index))
            try await backend.put(name, data)
            expectSameBytes(try await backend.get(name), data, name)
        }
        #expect(try await backend.list(prefix: "").map(\.name) == names.sorted())
    }

    static func checkConcurrentAccess(_ backend: any Backend) async throws {
        let count = 48
        func name(_ index: Int) -> String { "concurrent/\(index % 4)/object-\(index)" }
        func data(_ index: Int) -> [UInt8] {
            SampleData.bytes(count: (index * 7919) % 200_000 + index, seed: UInt64(1000 + index))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask { try await backend.put(name(index), data(index)) }
            }
            try await group.waitForAll()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    expectSameBytes(try await backend.get(name(index)), data(index), name(index))
                    let middle = data(index).count / 2
                    let part = try await backend.get(name(index), range: middle..<data(index).count)
                    expectSameBytes(part, Array(data(index)[middle...]), "\(name(index)) second half")
                }
            }
            try await group.waitForAll()
        }
        let listed = try await backend.list(prefix: "concurrent/")
        #expect(listed == (0..<count).map { ObjectInfo(name: name($0), size: data($0).count) }.sorted { $0.name < $1.name })
    }

    /// Readers racing writers of one name see nothing or one writer's complete object.
    static func checkAtomicReplacement(_ backend: any Backend) async throws {
        let name = "contended"
        let writers = 6
        func size(_ writer: Int) -> Int { 64 * 1024 + writer * 1000 }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for _ in 0..<3 {
                        try await backend.put(name, [UInt8](repeating: UInt8(writer), count: size(writer)))
                    }
                }
            }
            for _ in 0..<4 {
                group.addTask {
                    for _ in 0..<20 {
                        let read: [UInt8]
                        do {
                            read = try await backend.get(name)
                        } catch let error as BackendError where error.code == .notFound {
                            continue
                        }
                        expectWholeObjectOfOneWriter(read, size: size)
                    }
                }
            }
            try await group.waitForAll()
        }
        expectWholeObjectOfOneWriter(try await backend.get(name), size: size)
        #expect(try await backend.list(prefix: "").map(\.name) == [name])
    }

    // MARK: Expectation helpers

    private static func expectWholeObjectOfOneWriter(
        _ read: [UInt8], size: (Int) -> Int, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let first = read.first else {
            Issue.record("read an empty object while only non-empty objects were written", sourceLocation: sourceLocation)
            return
        }
        let isWhole = read.count == size(Int(first)) && read.allSatisfy { $0 == first }
        #expect(isWhole, "read \(read.count) bytes that are not one writer's complete object", sourceLocation: sourceLocation)
    }

    /// Compares without printing megabytes of operands when they differ.
    private static func expectSameBytes(
        _ read: [UInt8], _ expected: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let equal = read == expected
        #expect(equal, "'\(what)': read \(read.count) bytes that differ from the \(expected.count) expected",
                sourceLocation: sourceLocation)
    }

    /// Expects `body` to throw a `BackendError` with `code` whose `objectName` is `name` and
    /// whose message mentions it (when it is not empty).
    private static func expectError<Result>(
        _ code: BackendError.Code,
        naming name: String,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Result
    ) async {
        let error = await #expect(throws: BackendError.self, "expected \(code) for '\(name)'", sourceLocation: sourceLocation) {
            _ = try await body()
        }
        guard let error else { return }
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(error.objectName == name, "\(error)", sourceLocation: sourceLocation)
        if !name.isEmpty {
            #expect(error.message.contains(name), "the message names the object: \(error)", sourceLocation: sourceLocation)
        }
    }
}
