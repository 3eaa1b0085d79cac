/// An error reading or editing a prolly tree. The message names the node (by chunk id) or the
/// argument at fault and never contains key material.
public struct TreeError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// A node decoded to something no writer produces: damaged, or not a tree node.
        public static let malformedNode = Code(name: "malformed node")
        /// A node of a newer format than this build reads.
        public static let unsupportedFormat = Code(name: "unsupported format")
        /// An argument is out of range (a list position, an oversized key).
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
