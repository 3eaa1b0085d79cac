import Testing
@testable import InfinityTrees

@Suite struct TreeErrorTests {
    @Test func descriptionIncludesCause() {
        struct Underlying: Error, CustomStringConvertible { var description: String { "short read" } }
        let error = TreeError(.malformedNode, "node 0123abcd is malformed", cause: Underlying())
        #expect(error.description == "node 0123abcd is malformed: short read")
        #expect(error.code == .malformedNode)
    }
}
