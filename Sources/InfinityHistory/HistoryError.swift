/// An error in the history layer: commits, refs, revisions and merges. The message names the
/// commit, ref or revision at fault and never contains key material.
public struct HistoryError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// A ref moved since it was read: a compare-and-swap lost a race.
        public static let conflict = Code(name: "conflict")
        /// No branch, tag or commit matches a name, id prefix or revision.
        public static let notFound = Code(name: "not found")
        /// An id prefix matches more than one commit.
        public static let ambiguous = Code(name: "ambiguous")
        /// A commit or ref record is damaged, or its signature does not verify.
        public static let corrupt = Code(name: "corrupt")
        /// A commit of a newer format than this build reads.
        public static let unsupportedFormat = Code(name: "unsupported format")
        /// A ref name, revision or option is not acceptable.
        public static let invalidArgument = Code(name: "invalid argument")
        /// The refs database could not be opened, read or written (I/O, a lock held too long,
        /// not a database); the cause says why.
        public static let storage = Code(name: "storage")
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message): \(cause)" }
        return message
    }
}
