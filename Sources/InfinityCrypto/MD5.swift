import CInfinityOpenSSL

/// MD5 (RFC 1321), for protocol checksums only: S3 asks for a `Content-MD5` header on some
/// requests. It protects nothing here; every security use is SHA-256.
public enum MD5 {
    public static let byteCount = 16

    /// The digest of `data`.
    ///
    /// - Throws: ``CryptoError`` when OpenSSL offers no MD5 (a FIPS-only configuration).
    public static func hash(_ data: [UInt8]) throws -> [UInt8] {
        guard let algorithm = EVP_MD_fetch(nil, "MD5", nil) else {
            throw LibCrypto.failure("OpenSSL offers no MD5 here")
        }
        defer { EVP_MD_free(algorithm) }
        return try [UInt8](unsafeUninitializedCapacity: byteCount) { digest, initialized in
            var length: UInt32 = 0
            try data.withUnsafeBytes {
                try LibCrypto.check(EVP_Digest(LibCrypto.bytes($0), $0.count, digest.baseAddress, &length, algorithm, nil), "MD5 digest failed")
            }
            initialized = Int(length)
        }
    }
}
