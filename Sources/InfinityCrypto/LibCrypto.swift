import CInfinityOpenSSL

// The one place for libcrypto plumbing: draining the error queue, checking return codes,
// building OSSL_PARAM arrays, the algorithms fetched once, and the owners of C handles.
// The primitive files call EVP functions only through these.

enum LibCrypto {
    /// Empties this thread's OpenSSL error queue, oldest entry first.
    ///
    /// The queue is thread-local; InfinityCrypto's calls are synchronous, so a failure and the
    /// drain that follows it always run on the same thread.
    static func drainErrors() -> [String] {
        var errors: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            var data: UnsafePointer<CChar>?
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { break }
            var text = buffer.withUnsafeMutableBufferPointer { characters in
                ERR_error_string_n(code, characters.baseAddress, characters.count)
                return String(cString: characters.baseAddress!)
            }
            if let data, flags & ERR_TXT_STRING != 0, data.pointee != 0 {
                text += " (" + String(cString: data) + ")"
            }
            errors.append(text)
        }
        return errors
    }

    /// An error for a failed libcrypto call, carrying whatever OpenSSL queued about it.
    static func failure(_ message: String, code: CryptoError.Code = .openSSL) -> CryptoError {
        CryptoError(code: code, message: message, openSSLErrors: drainErrors())
    }

    /// Throws unless `result` is 1, libcrypto's success value.
    static func check(_ result: Int32, _ message: @autoclosure () -> String) throws {
        guard result == 1 else { throw failure(message()) }
    }

    /// For calls that fail only when libcrypto itself is broken (allocation failure, a
    /// provider missing): the non-throwing API of hashes and MACs cannot report it.
    static func require(_ result: Int32, _ message: @autoclosure () -> String) {
        guard result == 1 else { fatalError(failure(message()).description) }
    }

    /// A length as the `int` that some EVP calls take.
    static func cInt(_ count: Int, _ what: @autoclosure () -> String) throws -> Int32 {
        guard let value = Int32(exactly: count) else {
            throw CryptoError.invalidInput("\(what()) is too long (\(count) bytes)")
        }
        return value
    }

    /// A non-NULL pointer to the bytes, even for an empty buffer: some providers read a NULL
    /// pointer as "parameter absent" even with a zero length (HMAC keys, scrypt passwords).
    static func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8> {
        guard let base = buffer.baseAddress else { return UnsafePointer(emptyByte) }
        return base.assumingMemoryBound(to: UInt8.self)
    }

    static func mutableBytes(_ buffer: UnsafeMutableRawBufferPointer) -> UnsafeMutablePointer<UInt8> {
        guard let base = buffer.baseAddress else { return emptyByte }
        return base.assumingMemoryBound(to: UInt8.self)
    }

    // Never written by libcrypto: it is only passed with a length of zero.
    nonisolated(unsafe) private static let emptyByte: UnsafeMutablePointer<UInt8> = {
        let byte = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        byte.initialize(to: 0)
        return byte
    }()
}

/// Algorithm implementations fetched from the default provider once per process.
///
/// Fetching looks the name up in a locked provider store on every call, which shows on small
/// inputs. A fetched EVP_MD / EVP_CIPHER / EVP_MAC / EVP_KDF is immutable and reference counted,
/// and OpenSSL documents it as safe to use from many threads at once (each operation gets its
/// own context), so sharing one through these `nonisolated(unsafe)` lets is safe. They live as
/// long as the process and are never freed.
enum Algorithms {
    nonisolated(unsafe) static let sha256: OpaquePointer = fetched(EVP_MD_fetch(nil, "SHA256", nil), "digest SHA256")
    nonisolated(unsafe) static let aes256GCM: OpaquePointer = fetched(EVP_CIPHER_fetch(nil, "AES-256-GCM", nil), "cipher AES-256-GCM")
    nonisolated(unsafe) static let hmac: OpaquePointer = fetched(EVP_MAC_fetch(nil, "HMAC", nil), "MAC HMAC")
    nonisolated(unsafe) static let hkdf: OpaquePointer = fetched(EVP_KDF_fetch(nil, "HKDF", nil), "KDF HKDF")
    nonisolated(unsafe) static let scrypt: OpaquePointer = fetched(EVP_KDF_fetch(nil, "SCRYPT", nil), "KDF SCRYPT")

    private static func fetched(_ algorithm: OpaquePointer?, _ name: String) -> OpaquePointer {
        guard let algorithm else {
            // Only a broken OpenSSL installation or configuration lacks these.
            fatalError(LibCrypto.failure("OpenSSL's default provider has no \(name)").description)
        }
        return algorithm
    }
}

/// Copies of everything an OSSL_PARAM array points at, kept alive for the libcrypto call that
/// reads the array and cleansed afterwards, since the values are often keys or passphrases.
final class ParameterList {
    private var parameters: [OSSL_PARAM] = []
    private var allocations: [UnsafeMutableRawBufferPointer] = []

    init() {}

    deinit {
        for allocation in allocations {
            OPENSSL_cleanse(allocation.baseAddress, allocation.count)
            allocation.deallocate()
        }
    }

    func add(_ key: String, string value: String) {
        parameters.append(OSSL_PARAM_construct_utf8_string(cString(key), cString(value), 0))
    }

    /// Adds an octet string; an empty value is still passed (with a valid pointer), because
    /// for scrypt an empty password or salt is a real value, not an absent one.
    func add(_ key: String, octets value: UnsafeRawBufferPointer) {
        let storage = allocate(value.count)
        if value.count > 0 {
            storage.copyMemory(from: value)
        }
        parameters.append(OSSL_PARAM_construct_octet_string(cString(key), storage.baseAddress, value.count))
    }

    func add(_ key: String, octets value: [UInt8]) {
        value.withUnsafeBytes { add(key, octets: $0) }
    }

    func add(_ key: String, uint64 value: UInt64) {
        let storage = allocate(MemoryLayout<UInt64>.size).baseAddress!.bindMemory(to: UInt64.self, capacity: 1)
        storage.initialize(to: value)
        parameters.append(OSSL_PARAM_construct_uint64(cString(key), storage))
    }

    func add(_ key: String, uint32 value: UInt32) {
        let storage = allocate(MemoryLayout<UInt32>.size).baseAddress!.bindMemory(to: UInt32.self, capacity: 1)
        storage.initialize(to: value)
        parameters.append(OSSL_PARAM_construct_uint(cString(key), storage))
    }

    func add(_ key: String, int32 value: Int32) {
        let storage = allocate(MemoryLayout<Int32>.size).baseAddress!.bindMemory(to: Int32.self, capacity: 1)
        storage.initialize(to: value)
        parameters.append(OSSL_PARAM_construct_int(cString(key), storage))
    }

    /// Calls `body` with the END-terminated array.
    func withParameters<R>(_ body: (UnsafePointer<OSSL_PARAM>) throws -> R) rethrows -> R {
        let terminated = parameters + [OSSL_PARAM_construct_end()]
        return try terminated.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    private func allocate(_ count: Int) -> UnsafeMutableRawBufferPointer {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(count, 1), alignment: 8)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        allocations.append(storage)
        return UnsafeMutableRawBufferPointer(rebasing: storage[0..<count])
    }

    private func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
        let characters = text.utf8CString
        let storage = allocate(characters.count)
        characters.withUnsafeBytes { storage.copyMemory(from: $0) }
        return storage.baseAddress!.bindMemory(to: CChar.self, capacity: characters.count)
    }
}

/// Runs an EVP_KDF into `output`; shared by HKDF and scrypt.
func deriveWithKDF(
    _ kdf: OpaquePointer, _ parameters: ParameterList, into output: UnsafeMutableRawBufferPointer, name: String
) throws {
    let context = try KDFContext(kdf, name: name)
    let result = parameters.withParameters { list in
        EVP_KDF_derive(context.pointer, LibCrypto.mutableBytes(output), output.count, list)
    }
    guard result == 1 else {
        OPENSSL_cleanse(output.baseAddress, output.count)
        throw LibCrypto.failure("\(name) derivation failed")
    }
}

// MARK: - Owners of per-operation C handles (one owner each, freed when dropped)

struct DigestContext: ~Copyable {
    let pointer: OpaquePointer

    init() {
        guard let pointer = EVP_MD_CTX_new() else { fatalError(LibCrypto.failure("EVP_MD_CTX_new failed").description) }
        self.pointer = pointer
    }

    deinit { EVP_MD_CTX_free(pointer) }
}

struct MACContext: ~Copyable {
    let pointer: OpaquePointer

    init(_ mac: OpaquePointer) {
        guard let pointer = EVP_MAC_CTX_new(mac) else { fatalError(LibCrypto.failure("EVP_MAC_CTX_new failed").description) }
        self.pointer = pointer
    }

    /// A copy of `other`'s state (its key set, and whatever it has been fed).
    init(copying other: borrowing MACContext) {
        pointer = Self.duplicate(other.pointer)
    }

    /// A new context with `pointer`'s state, which the caller frees.
    static func duplicate(_ pointer: OpaquePointer) -> OpaquePointer {
        guard let copy = EVP_MAC_CTX_dup(pointer) else { fatalError(LibCrypto.failure("EVP_MAC_CTX_dup failed").description) }
        return copy
    }

    deinit { EVP_MAC_CTX_free(pointer) }
}

/// Freeing it cleanses the copies of the key material the KDF holds.
struct KDFContext: ~Copyable {
    let pointer: OpaquePointer

    init(_ kdf: OpaquePointer, name: String) throws {
        guard let pointer = EVP_KDF_CTX_new(kdf) else { throw LibCrypto.failure("EVP_KDF_CTX_new for \(name) failed") }
        self.pointer = pointer
    }

    deinit { EVP_KDF_CTX_free(pointer) }
}

struct CipherContext: ~Copyable {
    let pointer: OpaquePointer

    init() throws {
        guard let pointer = EVP_CIPHER_CTX_new() else { throw LibCrypto.failure("EVP_CIPHER_CTX_new failed") }
        self.pointer = pointer
    }

    /// Frees the key schedule too: EVP_CIPHER_CTX_free cleanses the cipher data.
    deinit { EVP_CIPHER_CTX_free(pointer) }
}

/// An EVP_PKEY built from raw key bytes for one operation. Freeing it cleanses the private key.
struct PKey: ~Copyable {
    let pointer: OpaquePointer

    init(privateKey raw: SecureBytes, type: String) throws {
        let pointer = raw.withUnsafeBytes { raw in
            EVP_PKEY_new_raw_private_key_ex(nil, type, nil, LibCrypto.bytes(raw), raw.count)
        }
        guard let pointer else { throw LibCrypto.failure("\(type) private key could not be loaded", code: .invalidInput) }
        self.pointer = pointer
    }

    init(publicKey raw: [UInt8], type: String) throws {
        let pointer = raw.withUnsafeBytes { raw in
            EVP_PKEY_new_raw_public_key_ex(nil, type, nil, LibCrypto.bytes(raw), raw.count)
        }
        guard let pointer else { throw LibCrypto.failure("\(type) public key could not be loaded", code: .invalidInput) }
        self.pointer = pointer
    }

    deinit { EVP_PKEY_free(pointer) }

    func rawPublicKey(byteCount: Int, type: String) throws -> [UInt8] {
        var length = byteCount
        let key = try [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, initialized in
            try LibCrypto.check(
                EVP_PKEY_get_raw_public_key(pointer, buffer.baseAddress, &length),
                "\(type) public key could not be computed")
            initialized = length
        }
        guard key.count == byteCount else { throw LibCrypto.failure("\(type) public key has \(key.count) bytes") }
        return key
    }
}

struct PKeyContext: ~Copyable {
    let pointer: OpaquePointer

    init(_ key: borrowing PKey) throws {
        guard let pointer = EVP_PKEY_CTX_new_from_pkey(nil, key.pointer, nil) else {
            throw LibCrypto.failure("EVP_PKEY_CTX_new_from_pkey failed")
        }
        self.pointer = pointer
    }

    deinit { EVP_PKEY_CTX_free(pointer) }
}
