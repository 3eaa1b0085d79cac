/// An error from compressing or decompressing.
public struct CompressionError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; extensible by later codecs.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable identifier, e.g. "corruptInput".
        public let rawValue: String
        /// A code; modules may add their own as static lets in an extension.
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The code, the message and any cause.
    public var description: String { rawValue }

        /// The input is not a valid compressed frame (corrupt, truncated or not zstd).
        public static let corruptInput = Code(rawValue: "corruptInput")
        /// The data decompressed to a size other than the one the caller expected.
        public static let sizeMismatch = Code(rawValue: "sizeMismatch")
        /// A parameter is out of range (e.g. a compression level or a negative size).
        public static let invalidArgument = Code(rawValue: "invalidArgument")
        /// zstd could not allocate its context or reported another internal failure.
        public static let failed = Code(rawValue: "failed")
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong, including zstd's error name when there is one.
    public var message: String
    /// zstd's name for the error (`ZSTD_getErrorName`), when zstd reported one.
    public var zstdErrorName: String?
    /// The underlying error, if another error led to this one.
    public var cause: (any Error)?

    /// An error; `message` should say what was being compressed or decompressed.
    public init(code: Code, message: String, zstdErrorName: String? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.zstdErrorName = zstdErrorName
        self.cause = cause
    }

    public var description: String {
        var text = "compression error (\(code)): \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}
