import InfinityBackends
import InfinityTestSupport
import Testing

@Suite struct ObjectNameTests {
    @Test(arguments: ["a", "a/b/c", "packs/00/0123abcd.pack", ".hidden", "a..b", "-", "A_Z-0.9"])
    func acceptsValidNames(_ name: String) throws {
        try ObjectName.validate(name)
        #expect(ObjectName.isValid(name))
    }

    @Test(arguments: BackendConformance.invalidNames)
    func refusesInvalidNamesNamingThem(_ name: String) {
        #expect(!ObjectName.isValid(name))
        let error = #expect(throws: BackendError.self) { try ObjectName.validate(name) }
        #expect(error?.code == .invalidName)
        #expect(error?.objectName == name)
        #expect(error?.message.contains("'\(name)'") == true)
    }

    @Test func explainsWhichRuleIsBroken() {
        func reason(_ name: String) -> String {
            do {
                try ObjectName.validate(name)
                return ""
            } catch {
                return (error as? BackendError)?.message ?? ""
            }
        }
        #expect(reason("").contains("empty"))
        #expect(reason("/a").contains("relative"))
        #expect(reason("a//b").contains("empty segment"))
        #expect(reason("a/../b").contains("'..'"))
        #expect(reason("a b").contains("may only contain"))
        #expect(reason(String(repeating: "a", count: 1025)).contains("1025 bytes"))
    }
}
