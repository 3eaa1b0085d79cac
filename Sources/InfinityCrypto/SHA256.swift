import CInfinityOpenSSL

/// SHA-256 (FIPS 180-4) through OpenSSL's EVP digest API.
public enum SHA256 {
    public static let byteCount = 32

    /// The digest of `data` in one call; the hot path for whole chunks.
    public static func hash(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: byteCount) { digest, initialized in
            var length: UInt32 = 0
            LibCrypto.require(
                EVP_Digest(LibCrypto.bytes(data), data.count, digest.baseAddress, &length, Algorithms.sha256, nil),
                "SHA-256 digest failed")
            initialized = Int(length)
        }
    }

    public static func hash(_ data: [UInt8]) -> [UInt8] {
        data.withUnsafeBytes { hash($0) }
    }
}

/// SHA-256 over data that arrives in pieces.
///
/// `~Copyable` because it owns an OpenSSL digest context: a copy would share that context.
public struct SHA256Hasher: ~Copyable {
    private let context = DigestContext()

    public init() {
        LibCrypto.require(EVP_DigestInit_ex2(context.pointer, Algorithms.sha256, nil), "SHA-256 init failed")
    }

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        LibCrypto.require(EVP_DigestUpdate(context.pointer, LibCrypto.bytes(data), data.count), "SHA-256 update failed")
    }

    public mutating func update(_ data: [UInt8]) {
        data.withUnsafeBytes { update($0) }
    }

    /// The digest of everything passed to `update`; the hasher is used up.
    public consuming func finalize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: SHA256.byteCount) { digest, initialized in
            var length: UInt32 = 0
            LibCrypto.require(EVP_DigestFinal_ex(context.pointer, digest.baseAddress, &length), "SHA-256 final failed")
            initialized = Int(length)
        }
    }
}
