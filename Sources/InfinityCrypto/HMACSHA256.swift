import CInfinityOpenSSL
import Synchronization

/// HMAC-SHA256 (RFC 2104, RFC 4231) through OpenSSL's EVP_MAC "HMAC".
public enum HMACSHA256 {
    public static let byteCount = 32

    /// The full 32-byte tag of `data` under `key` (any key length, including empty).
    /// Keys longer than 2 GiB are a programming error (OpenSSL takes an `int` key length).
    public static func authenticate(_ data: UnsafeRawBufferPointer, key: SecureBytes) -> [UInt8] {
        let context = keyedContext(key)
        return tag(of: data, context: context.pointer)
    }

    public static func authenticate(_ data: [UInt8], key: SecureBytes) -> [UInt8] {
        data.withUnsafeBytes { authenticate($0, key: key) }
    }

    /// A context set up with `key`: the digest looked up and the key's inner and outer pads
    /// hashed, ready for the message.
    fileprivate static func keyedContext(_ key: SecureBytes) -> MACContext {
        precondition(key.count <= Int32.max, "HMAC-SHA256 key longer than 2 GiB")
        let context = MACContext(Algorithms.hmac)
        let parameters = ParameterList()
        parameters.add(OSSL_MAC_PARAM_DIGEST, string: "SHA256")
        key.withUnsafeBytes { key in
            parameters.withParameters { list in
                LibCrypto.require(
                    EVP_MAC_init(context.pointer, LibCrypto.bytes(key), key.count, list), "HMAC-SHA256 init failed")
            }
        }
        return context
    }

    /// Feeds `data` to a keyed context and returns the tag; the context is spent.
    fileprivate static func tag(of data: UnsafeRawBufferPointer, context: OpaquePointer) -> [UInt8] {
        LibCrypto.require(EVP_MAC_update(context, LibCrypto.bytes(data), data.count), "HMAC-SHA256 update failed")
        return [UInt8](unsafeUninitializedCapacity: byteCount) { tag, initialized in
            var length = 0
            LibCrypto.require(EVP_MAC_final(context, tag.baseAddress, &length, byteCount), "HMAC-SHA256 final failed")
            initialized = length
        }
    }

    /// A key set up once for many tags, as a chunk sealer tags every chunk under one content
    /// key: each tag then starts from the keyed state instead of looking the digest up and
    /// hashing the key's pads again, which costs more than tagging a small message. Contexts
    /// holding that state are kept and restarted rather than copied for each tag: a copy cost
    /// twice what hashing a 2 KiB tree node does. Safe to use from many threads at once (each
    /// tag has a context to itself). Freeing it cleanses the key material OpenSSL holds.
    public final class PreparedKey: @unchecked Sendable {
        private let keyed: MACContext
        /// Copies of `keyed`, each used by one tag at a time: no more than tags ever ran at once.
        private let spares = Mutex<[SpareContext]>([])

        /// A context handed from tag to tag, by one thread at a time.
        private struct SpareContext: @unchecked Sendable {
            let pointer: OpaquePointer
        }

        /// Whether restarting a used context gives the keyed state back: OpenSSL 3.0.0 to 3.0.2
        /// ignored the restart (openssl/openssl#17811) and went on from the used state, which
        /// gives wrong tags. Checked once per key; without it, every tag copies the keyed state.
        private let restarts: Bool

        public init(_ key: SecureBytes) {
            keyed = HMACSHA256.keyedContext(key)
            let probe: [UInt8] = Array("infinitydb-hmac-restart-probe".utf8)
            let context = MACContext.duplicate(keyed.pointer)
            let first = probe.withUnsafeBytes { HMACSHA256.tag(of: $0, context: context) }
            LibCrypto.require(EVP_MAC_init(context, nil, 0, nil), "HMAC-SHA256 restart failed")
            let again = probe.withUnsafeBytes { HMACSHA256.tag(of: $0, context: context) }
            restarts = first == again
            if restarts {
                spares.withLock { $0.append(SpareContext(pointer: context)) }
            } else {
                EVP_MAC_CTX_free(context)
            }
        }

        deinit {
            for spare in spares.withLock({ $0 }) { EVP_MAC_CTX_free(spare.pointer) }
        }

        /// The full 32-byte tag of `data`: what `HMACSHA256.authenticate(data, key:)` gives with
        /// this key.
        public func authenticate(_ data: UnsafeRawBufferPointer) -> [UInt8] {
            guard restarts else {
                let copy = MACContext(copying: keyed)
                return HMACSHA256.tag(of: data, context: copy.pointer)
            }
            let context: OpaquePointer
            if let spare = spares.withLock({ $0.popLast() }) {
                // Initialising a used context with no key brings its keyed state back.
                LibCrypto.require(EVP_MAC_init(spare.pointer, nil, 0, nil), "HMAC-SHA256 restart failed")
                context = spare.pointer
            } else {
                context = MACContext.duplicate(keyed.pointer)
            }
            let tag = HMACSHA256.tag(of: data, context: context)
            let spare = SpareContext(pointer: context)
            spares.withLock { $0.append(spare) }
            return tag
        }

        public func authenticate(_ data: [UInt8]) -> [UInt8] {
            data.withUnsafeBytes { authenticate($0) }
        }
    }
}
