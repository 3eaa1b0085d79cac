import CInfinityOpenSSL

/// AES-256-GCM with a 96-bit nonce and a 128-bit tag, through OpenSSL's EVP_CIPHER API.
///
/// Sealed data is the ciphertext followed by the tag. A (key, nonce) pair must never seal two
/// different messages; callers use random nonces or keys that are unique per message.
public enum AES256GCM {
    public static let keyByteCount = 32
    public static let nonceByteCount = 12
    public static let tagByteCount = 16

    /// A random nonce (see ``SecureRandom/nonceBytes(count:)``). Random 96-bit nonces keep a
    /// repeat out of reach for up to 2^32 messages under one key (NIST SP 800-38D's bound); the
    /// store's keys each seal far fewer.
    public static func randomNonce() -> [UInt8] {
        SecureRandom.nonceBytes(count: nonceByteCount)
    }

    /// EVP update calls take an `int` length; larger buffers go through in pieces of this size.
    private static let pieceByteCount = 1 << 30

    /// Encrypts `plaintext` into `output` (`plaintext.count + 16` bytes: ciphertext, then tag).
    /// `output` may start at the same address as `plaintext` (in place), but must not overlap it
    /// otherwise.
    public static func seal(
        _ plaintext: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer,
        authenticating aad: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) throws {
        try checkKeyAndNonce(key, nonce)
        guard output.count == plaintext.count + tagByteCount else {
            throw CryptoError.invalidInput(
                "AES-256-GCM seal output must be \(plaintext.count + tagByteCount) bytes "
                    + "(plaintext + \(tagByteCount)-byte tag), got \(output.count)")
        }
        let context = try CipherContext()
        try LibCrypto.check(
            EVP_EncryptInit_ex2(context.pointer, Algorithms.aes256GCM, LibCrypto.bytes(key), LibCrypto.bytes(nonce), nil),
            "AES-256-GCM encryption setup failed")
        try feed(context, aad, into: nil, encrypting: true)
        try feed(context, plaintext, into: output.baseAddress, encrypting: true)
        let tag = LibCrypto.mutableBytes(output) + plaintext.count
        var finalLength: Int32 = 0
        try LibCrypto.check(EVP_EncryptFinal_ex(context.pointer, tag, &finalLength), "AES-256-GCM encryption failed")
        try LibCrypto.check(
            EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_AEAD_GET_TAG, Int32(tagByteCount), tag),
            "AES-256-GCM tag could not be read")
    }

    /// Verifies and decrypts `sealed` (ciphertext then tag) into `output` (`sealed.count - 16`
    /// bytes). Throws `.authenticationFailed` if the tag does not match; `output` is then zeroed.
    /// In-place use (same start address) is allowed, as for `seal`.
    public static func open(
        _ sealed: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer,
        authenticating aad: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) throws {
        try checkKeyAndNonce(key, nonce)
        guard sealed.count >= tagByteCount else {
            throw CryptoError.invalidInput(
                "AES-256-GCM sealed data must hold at least the \(tagByteCount)-byte tag, got \(sealed.count) bytes")
        }
        let ciphertextCount = sealed.count - tagByteCount
        guard output.count == ciphertextCount else {
            throw CryptoError.invalidInput(
                "AES-256-GCM open output must be \(ciphertextCount) bytes (sealed - tag), got \(output.count)")
        }
        // Copied out first: decryption in place may overwrite the region before the tag is needed,
        // and the ctrl call takes a mutable pointer.
        var tag = (UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &tag) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: sealed[ciphertextCount...])) }

        let context = try CipherContext()
        try LibCrypto.check(
            EVP_DecryptInit_ex2(context.pointer, Algorithms.aes256GCM, LibCrypto.bytes(key), LibCrypto.bytes(nonce), nil),
            "AES-256-GCM decryption setup failed")
        try withUnsafeMutableBytes(of: &tag) { tag in
            try LibCrypto.check(
                EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_AEAD_SET_TAG, Int32(tagByteCount), tag.baseAddress),
                "AES-256-GCM tag could not be set")
        }
        try feed(context, aad, into: nil, encrypting: false)
        try feed(context, UnsafeRawBufferPointer(rebasing: sealed[..<ciphertextCount]), into: output.baseAddress, encrypting: false)
        var finalLength: Int32 = 0
        var unused: UInt8 = 0
        guard EVP_DecryptFinal_ex(context.pointer, &unused, &finalLength) == 1 else {
            OPENSSL_cleanse(output.baseAddress, output.count)
            throw LibCrypto.failure(
                "AES-256-GCM authentication failed: the data, tag, key, nonce or associated data do not match",
                code: .authenticationFailed)
        }
    }

    /// Returns ciphertext followed by the 16-byte tag.
    public static func seal(
        _ plaintext: [UInt8], key: SecureBytes, nonce: [UInt8], authenticating aad: [UInt8] = []
    ) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: plaintext.count + tagByteCount) { output, initialized in
            try plaintext.withUnsafeBytes { plaintext in
                try key.withUnsafeBytes { key in
                    try nonce.withUnsafeBytes { nonce in
                        try aad.withUnsafeBytes { aad in
                            try seal(plaintext, key: key, nonce: nonce, authenticating: aad,
                                     into: UnsafeMutableRawBufferPointer(output))
                        }
                    }
                }
            }
            initialized = output.count
        }
    }

    /// Returns the plaintext; throws `.authenticationFailed` on a bad tag.
    public static func open(
        _ sealed: [UInt8], key: SecureBytes, nonce: [UInt8], authenticating aad: [UInt8] = []
    ) throws -> [UInt8] {
        guard sealed.count >= tagByteCount else {
            throw CryptoError.invalidInput(
                "AES-256-GCM sealed data must hold at least the \(tagByteCount)-byte tag, got \(sealed.count) bytes")
        }
        return try [UInt8](unsafeUninitializedCapacity: sealed.count - tagByteCount) { output, initialized in
            try sealed.withUnsafeBytes { sealed in
                try key.withUnsafeBytes { key in
                    try nonce.withUnsafeBytes { nonce in
                        try aad.withUnsafeBytes { aad in
                            try open(sealed, key: key, nonce: nonce, authenticating: aad,
                                     into: UnsafeMutableRawBufferPointer(output))
                        }
                    }
                }
            }
            initialized = output.count
        }
    }

    private static func checkKeyAndNonce(_ key: UnsafeRawBufferPointer, _ nonce: UnsafeRawBufferPointer) throws {
        guard key.count == keyByteCount else {
            throw CryptoError.invalidInput("AES-256-GCM key must be \(keyByteCount) bytes, got \(key.count)")
        }
        guard nonce.count == nonceByteCount else {
            throw CryptoError.invalidInput("AES-256-GCM nonce must be \(nonceByteCount) bytes, got \(nonce.count)")
        }
    }

    /// Passes `input` through EVP_{En,De}cryptUpdate; a nil `output` feeds associated data.
    private static func feed(
        _ context: borrowing CipherContext, _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawPointer?,
        encrypting: Bool
    ) throws {
        var offset = 0
        while offset < input.count {
            let pieceCount = Swift.min(input.count - offset, pieceByteCount)
            let source = LibCrypto.bytes(input) + offset
            let destination = output.map { $0.assumingMemoryBound(to: UInt8.self) + offset }
            var written: Int32 = 0
            let result = encrypting
                ? EVP_EncryptUpdate(context.pointer, destination, &written, source, Int32(pieceCount))
                : EVP_DecryptUpdate(context.pointer, destination, &written, source, Int32(pieceCount))
            try LibCrypto.check(result, "AES-256-GCM \(output == nil ? "associated data" : "update") failed")
            // GCM is a stream mode: OpenSSL's provider emits every input byte right away.
            guard output == nil || Int(written) == pieceCount else {
                throw LibCrypto.failure("AES-256-GCM update wrote \(written) of \(pieceCount) bytes")
            }
            offset += pieceCount
        }
    }
}
