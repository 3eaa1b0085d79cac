import Foundation
import InfinityBackends
import InfinityTestSupport
import Testing

@testable import InfinityDB

/// Inputs the fuzz targets found that once trapped (Fuzz/Regressions/FuzzStoreFiles/).
@Suite struct StoreFilesFuzzRegressionTests {
    /// A capacity whose end is 10^30 ms after 1970, signed by its agent: reading it converted the
    /// end to a 64-bit millisecond count to check the signature, which trapped.
    @Test func capacityWithAnEndTooFarAwayIsRefused() async throws {
        let bytes = try FuzzRegressions.input(target: "FuzzStoreFiles", name: "capacity-until-out-of-range.json")
        let backend = MemoryBackend()
        try await backend.put(CapacityDeclaration.objectName, bytes)
        let owner = try FuzzRegressions.ownerKeys().identity(name: "alice")
        await #expect(throws: DatabaseError.self) {
            try await CapacityUsage.read(from: backend, owner: owner, agent: "alice")
        }
    }

    @Test func capacityCannotBeSignedWithAnEndTooFarAway() throws {
        #expect(throws: DatabaseError.self) {
            try CapacityDeclaration.signed(bytes: 1, until: Date(timeIntervalSince1970: 1e20), keys: try FuzzRegressions.ownerKeys())
        }
    }
}
