/// An error from the pack layer: a pack that cannot be read or trusted, a chunk the index does
/// not know, or an index that cannot be opened.
public struct PackError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// The pack's bytes do not form a pack: bad magic, impossible lengths, truncated.
        public static let malformedPack = Code(name: "malformed pack")
        /// The pack trailer failed authentication: damaged, or sealed by another agent's key.
        public static let trailerAuthenticationFailed = Code(name: "trailer authentication failed")
        /// The pack was written by a newer format than this build reads.
        public static let unsupportedFormat = Code(name: "unsupported format")
        /// The chunk is not in the index, nor in any pack being written.
        public static let chunkNotFound = Code(name: "chunk not found")
        /// The chunk index database could not be used.
        public static let index = Code(name: "index")
        /// An option is out of range.
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
        if let cause { return "\(message) (\(cause))" }
        return message
    }
}
