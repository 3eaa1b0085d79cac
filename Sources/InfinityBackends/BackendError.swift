/// An error from a backend, naming the object (and for files, the path) it concerns.
public struct BackendError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; backends may add codes in extensions.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable identifier, e.g. "notFound".
        public let rawValue: String
        /// A code; modules may add their own as static lets in an extension.
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The object does not exist.
        public static let notFound = Code(rawValue: "notFound")
        /// The name breaks the ``ObjectName`` rules.
        public static let invalidName = Code(rawValue: "invalidName")
        /// The requested byte range does not lie within the object.
        public static let rangeNotSatisfiable = Code(rawValue: "rangeNotSatisfiable")
        /// Any other input/output failure.
        public static let io = Code(rawValue: "io")
        /// The storage is full (or a quota is exhausted).
        public static let noSpace = Code(rawValue: "noSpace")
        /// The process may not read or write the object.
        public static let permissionDenied = Code(rawValue: "permissionDenied")
        /// The storage is read-only.
        public static let readOnly = Code(rawValue: "readOnly")
        /// A conditional write found the object changed (or present) since it was read.
        public static let preconditionFailed = Code(rawValue: "preconditionFailed")
    }

    /// What kind of failure this is.
    public var code: Code
    /// The object concerned, when there is one.
    public var objectName: String?
    /// What went wrong, naming the object and where it lives.
    public var message: String
    /// The underlying error, e.g. a `POSIXError`.
    public var cause: (any Error)?

    /// An error; `message` should name the object and where it lives.
    public init(code: Code, objectName: String?, message: String, cause: (any Error)? = nil) {
        self.code = code
        self.objectName = objectName
        self.message = message
        self.cause = cause
    }

    /// The code and the message, e.g. `backend error (notFound): object 'a' not found at /s/a`.
    public var description: String {
        "backend error (\(code)): \(message)"
    }
}
