/// An error opening, creating or using a store. The message names the store, object or option at
/// fault and never contains key material.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// The location holds no store, or something that is not one.
        public static let notAStore = Code(name: "not a store")
        /// The location already holds a store (or other files) and cannot be initialised.
        public static let alreadyExists = Code(name: "already exists")
        /// The store was written by a newer (or unknown) format than this build reads.
        public static let unsupportedFormat = Code(name: "unsupported format")
        /// No key file of the store opens with the given passphrase.
        public static let wrongPassphrase = Code(name: "wrong passphrase")
        /// The store's configuration or key files are damaged or were tampered with.
        public static let corrupt = Code(name: "corrupt")
        /// Reading or writing a local file failed.
        public static let io = Code(name: "i/o")
        /// An option or argument is not acceptable.
        public static let invalidArgument = Code(name: "invalid argument")
        /// The store is on a read-only file system, or this user may not write it.
        public static let readOnly = Code(name: "read-only")
        /// Another writer changed the store's history at the same time.
        public static let conflict = Code(name: "conflict")
        /// A remote store offers a history older than one this machine has already seen.
        public static let rollback = Code(name: "rollback")
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
