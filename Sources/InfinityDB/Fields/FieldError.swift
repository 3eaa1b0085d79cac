/// An error encoding or decoding a field's keys and values. The message names the type and what
/// was wrong with the bytes (or the value) and never contains key material.
public struct FieldError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// Bytes read as an ``IndexKey`` are not an encoding any key of that type produces:
        /// truncated, badly escaped, out of range, or followed by trailing bytes.
        public static let malformedKey = Code(name: "malformed key")
        /// Bytes read as a value are truncated, damaged, or do not match the value's type.
        public static let malformedValue = Code(name: "malformed value")
        /// A value was written in a newer (or unknown) encoding format than this build reads.
        public static let unsupportedFormat = Code(name: "unsupported format")
        /// A value cannot be encoded: its `encode(to:)` failed, misused the encoder, or nests
        /// deeper than a decoder would accept.
        public static let unencodableValue = Code(name: "unencodable value")
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
