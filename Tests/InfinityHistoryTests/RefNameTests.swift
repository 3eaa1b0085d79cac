import Testing

@testable import InfinityHistory

@Suite struct RefNameTests {
    @Test func kindsAndShortNames() throws {
        let main = try RefName.branch("main")
        #expect(main == .main)
        #expect(main.fullName == "refs/heads/main")
        #expect(main.kind == .branch)
        #expect(main.shortName == "main")
        #expect(try RefName.branch("feature/login").fullName == "refs/heads/feature/login")
        let tag = try RefName.tag("v1.0")
        #expect(tag.fullName == "refs/tags/v1.0")
        #expect(tag.kind == .tag)
        let agent = try RefName.agent("alice", branch: "main")
        #expect(agent.fullName == "refs/agents/alice/main")
        #expect(agent.kind == .agent)
        #expect(agent.shortName == "alice/main")
        #expect(agent.agentName == "alice")
        #expect(try RefName(validating: "refs/agents/bob/feature/x").shortName == "bob/feature/x")
        #expect(try RefName(validating: "HEAD") == .head)
        #expect(RefName.head.shortName == "HEAD")
        #expect(try RefName(validating: "refs/heads/main") == main)
        #expect("\(main)" == "refs/heads/main")
        #expect([try RefName.branch("b"), try RefName.branch("a-b"), try RefName.branch("a")].sorted().map(\.shortName) == ["a", "a-b", "b"])
    }

    @Test(arguments: [
        ("", "empty"),
        ("a..b", "'..'"),
        ("a b", "space"),
        ("tab\there", "control"),
        ("x~1", "'~'"),
        ("x^", "'^'"),
        ("x:y", "':'"),
        ("what?", "'?'"),
        ("glob*", "'*'"),
        ("[x", "'['"),
        ("back\\slash", "'\\'"),
        ("a@{1}", "'@{'"),
        ("@", "'@'"),
        ("-flag", "'-'"),
        ("dir/-flag", "'-'"),
        (".hidden", "'.'"),
        ("dir/.hidden", "'.'"),
        ("x.lock", ".lock"),
        ("dir.lock/x", ".lock"),
        ("trailing/", "'/'"),
        ("trailing.", "'.'"),
        ("a//b", "empty component"),
        ("/lead", "empty component"),
        (String(repeating: "x", count: 250), "bytes"),
        ("HEAD", "reserved"),
    ])
    func invalidBranchNamesAreRefusedByName(name: String, problem: String) {
        #expect {
            try RefName.branch(name)
        } throws: { isHistoryError($0, .invalidArgument, mentioning: "'\(name)'", problem) }
    }

    @Test func invalidFullNames() throws {
        for name in ["refs/heads/", "refs/heads", "refs/remotes/origin/main", "main", "refs/agents/alice", "refs/agents/alice/", "head"] {
            #expect(throws: HistoryError.self, "\(name)") { try RefName(validating: name) }
        }
        #expect { try RefName.agent("a/b", branch: "main") } throws: { isHistoryError($0, .invalidArgument, mentioning: "a/b") }
        #expect { try RefName.agent("", branch: "main") } throws: { isHistoryError($0, .invalidArgument) }
        #expect(try RefName.branch(String(repeating: "x", count: 255 - "refs/heads/".count)).fullName.utf8.count == 255)
    }
}
