import CInfinityOpenSSL

/// HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF "HKDF".
public enum HKDF {
    /// RFC 5869 allows at most 255 blocks of output.
    public static let maximumOutputByteCount = 255 * SHA256.byteCount

    /// Extract-then-expand. An empty `salt` means the RFC's default (32 zero bytes).
    public static func deriveKey(
        inputKeyMaterial: SecureBytes, salt: [UInt8], info: [UInt8], outputByteCount: Int
    ) throws -> SecureBytes {
        try checkOutput(outputByteCount)
        let parameters = ParameterList()
        parameters.add(OSSL_KDF_PARAM_DIGEST, string: "SHA256")
        parameters.add(OSSL_KDF_PARAM_MODE, int32: Int32(EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND))
        inputKeyMaterial.withUnsafeBytes { parameters.add(OSSL_KDF_PARAM_KEY, octets: $0) }
        // OpenSSL treats an absent salt as the RFC's zero salt; an empty one is left out.
        if !salt.isEmpty { parameters.add(OSSL_KDF_PARAM_SALT, octets: salt) }
        if !info.isEmpty { parameters.add(OSSL_KDF_PARAM_INFO, octets: info) }
        return try SecureBytes.filling(count: outputByteCount) { output in
            try deriveWithKDF(Algorithms.hkdf, parameters, into: output, name: "HKDF-SHA256")
        }
    }

    /// The extract step alone: a 32-byte pseudorandom key (RFC 5869 §2.2).
    public static func extract(inputKeyMaterial: SecureBytes, salt: [UInt8]) throws -> SecureBytes {
        let parameters = ParameterList()
        parameters.add(OSSL_KDF_PARAM_DIGEST, string: "SHA256")
        parameters.add(OSSL_KDF_PARAM_MODE, int32: Int32(EVP_KDF_HKDF_MODE_EXTRACT_ONLY))
        inputKeyMaterial.withUnsafeBytes { parameters.add(OSSL_KDF_PARAM_KEY, octets: $0) }
        if !salt.isEmpty { parameters.add(OSSL_KDF_PARAM_SALT, octets: salt) }
        return try SecureBytes.filling(count: SHA256.byteCount) { output in
            try deriveWithKDF(Algorithms.hkdf, parameters, into: output, name: "HKDF-SHA256 extract")
        }
    }

    /// The expand step alone, from a pseudorandom key of at least 32 bytes (RFC 5869 §2.3).
    public static func expand(pseudoRandomKey: SecureBytes, info: [UInt8], outputByteCount: Int) throws -> SecureBytes {
        try checkOutput(outputByteCount)
        guard pseudoRandomKey.count >= SHA256.byteCount else {
            throw CryptoError.invalidInput(
                "HKDF pseudoRandomKey must be at least \(SHA256.byteCount) bytes, got \(pseudoRandomKey.count)")
        }
        let parameters = ParameterList()
        parameters.add(OSSL_KDF_PARAM_DIGEST, string: "SHA256")
        parameters.add(OSSL_KDF_PARAM_MODE, int32: Int32(EVP_KDF_HKDF_MODE_EXPAND_ONLY))
        pseudoRandomKey.withUnsafeBytes { parameters.add(OSSL_KDF_PARAM_KEY, octets: $0) }
        if !info.isEmpty { parameters.add(OSSL_KDF_PARAM_INFO, octets: info) }
        return try SecureBytes.filling(count: outputByteCount) { output in
            try deriveWithKDF(Algorithms.hkdf, parameters, into: output, name: "HKDF-SHA256 expand")
        }
    }

    private static func checkOutput(_ count: Int) throws {
        guard (1...maximumOutputByteCount).contains(count) else {
            throw CryptoError.invalidInput(
                "HKDF outputByteCount must be 1...\(maximumOutputByteCount), got \(count)")
        }
    }
}
