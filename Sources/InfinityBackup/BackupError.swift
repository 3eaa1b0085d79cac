/// An error of the backup layer: what went wrong, naming the path or revision involved.
public struct BackupError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// A path in a snapshot or on the command line that could escape its directory.
        public static let unsafePath = Code(name: "unsafe path")
        /// A file or directory could not be read or written.
        public static let io = Code(name: "i/o")
        /// The path is not in the snapshot.
        public static let notFound = Code(name: "not found")
        /// A snapshot entry is inconsistent (for example a file under a symlink).
        public static let corrupt = Code(name: "corrupt")
        /// The working directory has changes that the operation would overwrite.
        public static let uncommittedChanges = Code(name: "uncommitted changes")
        /// A request that cannot be carried out as given.
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
