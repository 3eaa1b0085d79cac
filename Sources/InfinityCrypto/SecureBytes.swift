import CInfinityOpenSSL

/// Secret bytes (keys, seeds, passphrases) in memory that InfinityCrypto owns.
///
/// - The bytes live in one heap allocation that is never copied by Swift's copy-on-write and is
///   wiped with `OPENSSL_cleanse` when the last reference goes away.
/// - `==` runs in constant time for equal lengths (`CRYPTO_memcmp`); only the length can leak.
/// - `description`, `debugDescription` and mirrors show the length, never the bytes.
///
/// Everything InfinityCrypto derives or unwraps (HKDF and scrypt output, unwrapped master
/// secrets, X25519/Ed25519 private keys and shared secrets, ``AgentKeys``) is returned as
/// `SecureBytes`, so it is zeroed on drop. Plain `[UInt8]` results (hashes, MACs, ciphertext,
/// plaintext from ``AES256GCM/open(_:key:nonce:authenticating:)``, public keys) are not.
public final class SecureBytes: @unchecked Sendable, Equatable, CustomStringConvertible,
    CustomDebugStringConvertible, CustomReflectable
{
    // @unchecked Sendable: the buffer is written only while the instance is being created
    // (before it can be shared) and is read-only afterwards; deinit runs once no thread holds it.
    private let storage: UnsafeMutableRawBufferPointer

    private init(storage: UnsafeMutableRawBufferPointer) {
        self.storage = storage
    }

    deinit {
        OPENSSL_cleanse(storage.baseAddress, storage.count)
        storage.baseAddress!.deallocate()
    }

    /// Copies `bytes` into secure storage. The caller still owns (and should clear) the source.
    public convenience init(copying bytes: some Sequence<UInt8>) {
        self.init(storage: Self.copy(bytes))
    }

    /// The UTF-8 bytes of `text`, e.g. a passphrase (no normalization is applied).
    public convenience init(utf8 text: String) {
        self.init(copying: text.utf8)
    }

    /// `count` bytes from OpenSSL's CSPRNG.
    public static func random(count: Int) -> SecureBytes {
        precondition(count >= 0, "SecureBytes.random: negative count")
        return filling(count: count) { SecureRandom.fill($0) }
    }

    /// Creates zeroed storage and lets `body` write into it directly, so derived secrets never
    /// pass through an array. If `body` throws, the storage is wiped and freed.
    static func filling(count: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows -> SecureBytes {
        let result = SecureBytes(storage: allocate(count: count))
        try body(result.storage)
        return result
    }

    public var count: Int { storage.count }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage))
    }

    /// Constant time in the contents; lengths are compared first (a length is not a secret).
    public static func == (lhs: SecureBytes, rhs: SecureBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return CRYPTO_memcmp(lhs.storage.baseAddress, rhs.storage.baseAddress, lhs.count) == 0
    }

    public var description: String { "SecureBytes(\(count) bytes)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["count": count], displayStyle: .struct) }

    /// Zero-filled storage with a real base address even for zero bytes.
    private static func allocate(count: Int) -> UnsafeMutableRawBufferPointer {
        let base = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1), alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: Swift.max(count, 1))
        return UnsafeMutableRawBufferPointer(start: base, count: count)
    }

    private static func copy(_ bytes: some Sequence<UInt8>) -> UnsafeMutableRawBufferPointer {
        if let copied = bytes.withContiguousStorageIfAvailable({ copy(UnsafeRawBufferPointer($0)) }) {
            return copied
        }
        // A non-contiguous sequence: gather it in a temporary array that is wiped afterwards.
        var gathered = Array(bytes)
        defer { gathered.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        return gathered.withUnsafeBytes { copy($0) }
    }

    private static func copy(_ source: UnsafeRawBufferPointer) -> UnsafeMutableRawBufferPointer {
        let storage = allocate(count: source.count)
        if source.count > 0 { storage.copyMemory(from: source) }
        return storage
    }
}
