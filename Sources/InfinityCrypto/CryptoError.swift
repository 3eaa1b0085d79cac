/// An error from InfinityCrypto.
///
/// The message names what was wrong (a parameter, a key file field, an algorithm) and never
/// contains key bytes, passphrases or plaintext. When OpenSSL reported the failure, its error
/// queue is drained into ``openSSLErrors`` so the cause is visible without a debugger.
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; new codes may be added, so switch with a default.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A libcrypto call failed for a reason other than bad input.
        public static let openSSL = Code("openSSL")
        /// An argument had the wrong length, range or shape.
        public static let invalidInput = Code("invalidInput")
        /// An AEAD tag did not verify: wrong key, nonce or associated data, or altered data.
        public static let authenticationFailed = Code("authenticationFailed")
        /// A key file could not be unlocked with the passphrase given.
        public static let wrongPassphrase = Code("wrongPassphrase")
        /// A format version or algorithm this build does not know.
        public static let unsupportedFormat = Code("unsupportedFormat")
        /// A key file that is not valid JSON or has fields of the wrong type or length.
        public static let corruptKeyFile = Code("corruptKeyFile")

        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// The entries of OpenSSL's thread-local error queue at the time of the failure, oldest first.
    public var openSSLErrors: [String]
    public var cause: (any Error)?

    public init(code: Code, message: String, openSSLErrors: [String] = [], cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.openSSLErrors = openSSLErrors
        self.cause = cause
    }

    public var description: String {
        var text = message
        if !openSSLErrors.isEmpty {
            text += " [OpenSSL: " + openSSLErrors.joined(separator: "; ") + "]"
        }
        if let cause {
            text += " (cause: \(cause))"
        }
        return text
    }

    static func invalidInput(_ message: String) -> CryptoError {
        CryptoError(code: .invalidInput, message: message)
    }
}
