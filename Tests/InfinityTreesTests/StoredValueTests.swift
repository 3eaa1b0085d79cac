import Foundation
import InfinityChunks
import InfinityTestSupport
import Testing

@testable import InfinityTrees

@Suite struct StoredValueTests {
    @Test func longValuesAreStoredAsTheCompactFormOfTheirBlob() async throws {
        let chunks = try makeChunkStore()
        let store = TreeStore(chunks: chunks)
        let value = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let stored = try await store.storedForm(of: value)
        let blob = try await chunks.putBlob(value)
        #expect(stored == [1] + blob.compactForm, "0x01 ‖ the blob's compact form, as FORMAT.md says")
        #expect(try StoredValue(stored: stored[...]) == .blob(blob))
        #expect(try await store.value(fromStored: stored[...]) == value)

        let short = try await store.storedForm(of: [9, 8, 7])
        #expect(short == [0, 9, 8, 7])
        #expect(try StoredValue(stored: short[...]) == .inline([9, 8, 7][...]))
    }

    @Test func damagedStoredFormsAreRefused() async throws {
        let chunks = try makeChunkStore()
        let stored = try await TreeStore(chunks: chunks).storedForm(of: [UInt8](repeating: 3, count: 3000))
        #expect(throws: TreeError.self) { try StoredValue(stored: [][...]) }
        #expect(throws: TreeError.self) { try StoredValue(stored: [2, 0][...]) }
        for length in 1..<stored.count {
            #expect(throws: TreeError.self, "truncated to \(length)") { try StoredValue(stored: stored.prefix(length)) }
        }
        #expect(throws: TreeError.self) { try StoredValue(stored: (stored + [0])[...]) }
    }
}
