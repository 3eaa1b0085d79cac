import CInfinityOpenSSL

/// HMAC-SHA256 (RFC 2104, RFC 4231) through OpenSSL's EVP_MAC "HMAC".
public enum HMACSHA256 {
    public static let byteCount = 32

    /// The full 32-byte tag of `data` under `key` (any key length, including empty).
    /// Keys longer than 2 GiB are a programming error (OpenSSL takes an `int` key length).
    public static func authenticate(_ data: UnsafeRawBufferPointer, key: SecureBytes) -> [UInt8] {
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
        LibCrypto.require(EVP_MAC_update(context.pointer, LibCrypto.bytes(data), data.count), "HMAC-SHA256 update failed")
        return [UInt8](unsafeUninitializedCapacity: byteCount) { tag, initialized in
            var length = 0
            LibCrypto.require(
                EVP_MAC_final(context.pointer, tag.baseAddress, &length, byteCount), "HMAC-SHA256 final failed")
            initialized = length
        }
    }

    public static func authenticate(_ data: [UInt8], key: SecureBytes) -> [UInt8] {
        data.withUnsafeBytes { authenticate($0, key: key) }
    }
}
