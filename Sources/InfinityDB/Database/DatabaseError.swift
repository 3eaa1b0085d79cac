/// An error using a ``Database``: revisions, fields, drafts and merges. The message names the
/// branch, field or key at fault and never contains key material.
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// A field holds another kind (a list read as a map, say).
        public static let fieldKindMismatch = Code(name: "field kind mismatch")
        /// Both sides of a merge changed the same entries differently and the policy says fail.
        public static let mergeConflict = Code(name: "merge conflict")
        /// The branch moved while a draft was being committed, and the draft was not to merge.
        public static let branchMoved = Code(name: "branch moved")
        /// Stored index data is damaged.
        public static let corrupt = Code(name: "corrupt")
        /// An argument is not acceptable (a position, an empty field name).
        public static let invalidArgument = Code(name: "invalid argument")
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
