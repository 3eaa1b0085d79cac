import Foundation
import InfinityBackends
import InfinityTestSupport
import Testing

@Suite struct BackendConformanceTests {
    @Test func memoryBackendConforms() async throws {
        try await BackendConformance.run { MemoryBackend() }
    }

    @Test func localDirectoryBackendConforms() async throws {
        try await withTemporaryDirectory { directory in
            var stores = 0
            try await BackendConformance.run {
                stores += 1
                return try LocalDirectoryBackend(root: "\(directory)/store-\(stores)")
            }
        }
    }

    @Test func sqliteBackendConforms() async throws {
        try await withTemporaryDirectory { directory in
            var stores = 0
            try await BackendConformance.run {
                stores += 1
                return try SQLiteBackend(path: "\(directory)/store-\(stores).sqlite")
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
