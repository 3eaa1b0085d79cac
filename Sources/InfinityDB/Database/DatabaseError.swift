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
        /// No agent of that name or id is known to this store.
        public static let unknownAgent = Code(name: "unknown agent")
        /// A share comes from an agent this store does not trust.
        public static let untrustedSender = Code(name: "untrusted sender")
        /// A contact, or the record of a share accepted from it, does not verify under this
        /// agent's records key: changed outside InfinityDB, or written before rows were signed.
        public static let unverifiedContact = Code(name: "unverified contact")
        /// A share or spread would exceed what the receiving agent accepts.
        public static let overCapacity = Code(name: "over capacity")
        /// A share was refused: its envelope, a chunk or a commit is forged, altered or missing.
        public static let rejected = Code(name: "rejected")
        /// The agents database or another agent's store could not be read or written.
        public static let storage = Code(name: "storage")
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?
    /// For ``Code/mergeConflict``: every place both sides changed differently.
    public var conflicts: [MergeConflictSite] = []

    /// The conflicting keys of one map field, decoded (keys that do not decode are left out).
    public func conflictingKeys<Key, Value>(in field: VersionedMap<Key, Value>) -> [Key] {
        conflicts.compactMap { site in
            guard site.field == field.name, let key = site.key else { return nil }
            return try? Key(encodedKey: key)
        }
    }

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

/// One place a merge found changed differently on both sides: a field, and for maps the
/// encoded key.
public struct MergeConflictSite: Sendable, Hashable, CustomStringConvertible {
    public var field: String
    public var key: [UInt8]?
    /// What is in conflict, in words.
    public var description: String
}
