import Testing
@testable import InfinityHistory

@Suite struct HistoryErrorTests {
    @Test func descriptionIncludesCause() {
        struct Underlying: Error, CustomStringConvertible { var description: String { "short read" } }
        let error = HistoryError(.corrupt, "commit 0123abcd is damaged", cause: Underlying())
        #expect(error.description == "commit 0123abcd is damaged: short read")
        #expect(error.code == .corrupt)
    }
}
