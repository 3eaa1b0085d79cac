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
}
