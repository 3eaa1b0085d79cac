/// The full name of a ref: `refs/heads/<branch>`, `refs/tags/<tag>`,
/// `refs/agents/<agent>/<branch>` (a branch received from another agent), or `HEAD`.
///
/// Names follow git's `check-ref-format` rules, so they are safe in paths, on a command line and
/// in revision syntax: at most 255 bytes; `/`-separated components that are not empty and do
/// not start with `.` or `-` or end with `.lock`; no `..`, no `@{`, no trailing `.`, no control
/// characters, spaces or any of ``forbiddenCharacters``.
public struct RefName: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// What a ref names.
    public enum Kind: Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// `HEAD`: the current branch, or a detached commit.
        case head
        /// `refs/heads/<branch>`: a local branch.
        case branch
        /// `refs/tags/<tag>`.
        case tag
        /// `refs/agents/<agent>/<branch>`: a branch received from another agent.
        case agent

        /// Where refs of this kind live; empty for HEAD.
        public var prefix: String {
            switch self {
            case .head: ""
            case .branch: "refs/heads/"
            case .tag: "refs/tags/"
            case .agent: "refs/agents/"
            }
        }

        public var description: String {
            switch self {
            case .head: "HEAD"
            case .branch: "branch"
            case .tag: "tag"
            case .agent: "agent ref"
            }
        }
    }

    /// The longest full name, in UTF-8 bytes.
    public static let maximumByteCount = 255
    /// Characters no ref name may contain (besides control characters), because revision
    /// syntax or git's rules give them a meaning.
    public static let forbiddenCharacters: Set<Character> = [" ", "~", "^", ":", "?", "*", "[", "\\"]

    /// `HEAD`.
    public static let head = RefName(checkedFullName: "HEAD", kind: .head)
    /// `refs/heads/main`, the branch a new store's HEAD points to.
    public static let main = RefName(checkedFullName: "refs/heads/main", kind: .branch)

    /// The full name, e.g. `refs/heads/main`.
    public let fullName: String
    /// What the ref names: HEAD, a branch, a tag or an agent ref.
    public let kind: Kind

    private init(checkedFullName: String, kind: Kind) {
        self.fullName = checkedFullName
        self.kind = kind
    }

    /// Checks a full name (`refs/heads/…`, `refs/tags/…`, `refs/agents/<agent>/…` or `HEAD`).
    ///
    /// - Throws: ``HistoryError/Code/invalidArgument`` naming the name and what is wrong with it.
    public init(validating fullName: String) throws {
        if fullName == "HEAD" {
            self = .head
            return
        }
        guard let kind = [Kind.branch, .tag, .agent].first(where: { fullName.hasPrefix($0.prefix) }) else {
            throw HistoryError(
                .invalidArgument,
                "invalid ref name '\(fullName)': it must be HEAD or start with refs/heads/, refs/tags/ or refs/agents/")
        }
        if let problem = Self.problem(in: fullName) {
            throw HistoryError(.invalidArgument, "invalid ref name '\(fullName)': \(problem)")
        }
        // An agent ref needs an agent component and a branch below it.
        let minimumComponents = kind == .agent ? 4 : 3
        guard fullName.split(separator: "/").count >= minimumComponents else {
            throw HistoryError(
                .invalidArgument,
                kind == .agent
                    ? "invalid ref name '\(fullName)': an agent ref is refs/agents/<agent>/<branch>"
                    : "invalid ref name '\(fullName)': the \(kind) name is missing")
        }
        self.init(checkedFullName: fullName, kind: kind)
    }

    /// The local branch `name` (`refs/heads/<name>`); `name` may contain `/`.
    public static func branch(_ name: String) throws -> RefName {
        // In a revision `HEAD` always means HEAD, so a branch of that name could never be named.
        guard name != "HEAD" else { throw HistoryError(.invalidArgument, "invalid branch name 'HEAD': the name is reserved") }
        return try RefName(shortName: name, kind: .branch)
    }

    /// The tag `name` (`refs/tags/<name>`).
    public static func tag(_ name: String) throws -> RefName {
        try RefName(shortName: name, kind: .tag)
    }

    /// The branch `branch` received from agent `agent` (`refs/agents/<agent>/<branch>`).
    public static func agent(_ agent: String, branch: String) throws -> RefName {
        guard !agent.isEmpty, !agent.contains("/") else {
            throw HistoryError(.invalidArgument, "invalid agent name '\(agent)': it must be one non-empty component without '/'")
        }
        return try RefName(shortName: "\(agent)/\(branch)", kind: .agent)
    }

    private init(shortName: String, kind: Kind) throws {
        let fullName = kind.prefix + shortName
        if let problem = shortName.isEmpty ? "it is empty" : Self.problem(in: fullName) {
            throw HistoryError(.invalidArgument, "invalid \(kind) name '\(shortName)': \(problem)")
        }
        try self.init(validating: fullName)
    }

    /// The name without its prefix: `main` for `refs/heads/main`, `alice/main` for
    /// `refs/agents/alice/main`, `HEAD` for HEAD.
    public var shortName: String { String(fullName.dropFirst(kind.prefix.count)) }

    /// For an agent ref, the agent's name; nil otherwise.
    public var agentName: String? {
        guard kind == .agent else { return nil }
        return shortName.split(separator: "/", maxSplits: 1).first.map(String.init)
    }

    public var description: String { fullName }

    /// Byte order of the full names, the order SQLite keeps them in.
    public static func < (lhs: RefName, rhs: RefName) -> Bool {
        lhs.fullName.utf8.lexicographicallyPrecedes(rhs.fullName.utf8)
    }

    /// What breaks git's ref-name rules in `name`, or nil.
    static func problem(in name: String) -> String? {
        if name.utf8.count > maximumByteCount {
            return "it is \(name.utf8.count) bytes long; at most \(maximumByteCount) are allowed"
        }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "it contains a control character"
        }
        // Scalar by scalar, so a forbidden character cannot hide inside a grapheme cluster.
        if let forbidden = name.unicodeScalars.first(where: { forbiddenCharacters.contains(Character($0)) }) {
            return forbidden == " " ? "it contains a space" : "it contains '\(forbidden)'"
        }
        if name.contains("..") { return "it contains '..'" }
        if name.contains("@{") { return "it contains '@{'" }
        if name.hasSuffix("/") { return "it ends with '/'" }
        if name.hasSuffix(".") { return "it ends with '.'" }
        for component in name.split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty { return "it has an empty component" }
            if component == "@" { return "'@' alone is not a name (it means HEAD)" }
            if component.hasPrefix(".") { return "a component starts with '.'" }
            if component.hasPrefix("-") { return "a component starts with '-'" }
            if component.hasSuffix(".lock") { return "a component ends with '.lock'" }
        }
        return nil
    }
}
