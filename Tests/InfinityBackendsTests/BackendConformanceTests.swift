import Foundation
import InfinityBackends
import InfinityTestSupport
import Testing

@Suite struct BackendConformanceTests {
    @Test func memoryBackendConforms() async throws {
        try await BackendConformance.run { MemoryBackend() }
    }

    @Test func localDirectoryBackendConforms() async throws {
        try await runWithStoresInTemporaryDirectory { try LocalDirectoryBackend(root: $0) }
    }

    @Test func sqliteBackendConforms() async throws {
        try await runWithStoresInTemporaryDirectory { try SQLiteBackend(path: $0 + ".sqlite") }
    }

    /// Runs the suite on backends made at new paths of one temporary directory.
    private func runWithStoresInTemporaryDirectory(_ make: (String) throws -> any Backend) async throws {
        try await withTemporaryDirectory { directory in
            var stores = 0
            try await BackendConformance.run {
                stores += 1
                return try make("\(directory)/store-\(stores)")
            }
        }
    }

    @Test func sqliteBackendRefusesAFileThatIsNotADatabase() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/not-a-store"
            try Data("plain text, not SQLite".utf8).write(to: URL(fileURLWithPath: path))
            #expect { try SQLiteBackend(path: path) } throws: { error in
                "\(error)".contains(path)
            }
        }
    }
}
