import CInfinityOpenSSL

/// scrypt (RFC 7914) through OpenSSL's EVP_KDF "SCRYPT", for turning passphrases into keys.
public enum Scrypt {
    /// The cost parameters, stored in key files next to the salt.
    public struct Parameters: Codable, Hashable, Sendable {
        /// CPU/memory cost: a power of two greater than 1.
        public var n: UInt64
        /// Block size factor.
        public var r: UInt32
        /// Parallelization factor (OpenSSL runs the lanes one after another).
        public var p: UInt32

        public init(n: UInt64, r: UInt32, p: UInt32) {
            self.n = n
            self.r = r
            self.p = p
        }

        /// The default for wrapping master secrets: N = 2^16, r = 8, p = 1 (64 MiB, about 0.4 s
        /// on one core of the 2-core development server, OpenSSL 3.0).
        ///
        /// What a guesser pays is memory × time, which grows as N²·p: the same as the earlier
        /// default N = 2^15, p = 4 (32 MiB for four times as long), in half the time for the
        /// user, since OpenSSL runs lanes one after another. Every command opens the store, so
        /// that time is paid by each one; 64 MiB is freed before any other work starts.
        public static let interactive = Parameters(n: 1 << 16, r: 8, p: 1)

        /// Cheap parameters (N = 1024, r = 8, p = 1; 1 MiB, about a millisecond) for tests only.
        public static let minimal = Parameters(n: 1024, r: 8, p: 1)

        /// Upper bound for 128·N·r·p, which bounds both the memory and the work of one derivation.
        public static let maximumCost: UInt64 = 2 << 30

        /// 128·N·r bytes of memory per lane, times p lanes run one after another.
        public var cost: UInt64? {
            let (perLane, overflow1) = UInt64(128).multipliedReportingOverflow(by: n)
            let (withR, overflow2) = perLane.multipliedReportingOverflow(by: UInt64(r))
            let (total, overflow3) = withR.multipliedReportingOverflow(by: UInt64(p))
            return overflow1 || overflow2 || overflow3 ? nil : total
        }

        /// Throws `.invalidInput` naming the offending parameter. Parameters read from a key file
        /// are untrusted: without these checks a crafted file could ask for terabytes of memory.
        public func validate() throws {
            guard n > 1, n & (n - 1) == 0 else {
                throw CryptoError.invalidInput("scrypt parameter n must be a power of two greater than 1, got \(n)")
            }
            guard r >= 1 else { throw CryptoError.invalidInput("scrypt parameter r must be at least 1, got \(r)") }
            guard p >= 1 else { throw CryptoError.invalidInput("scrypt parameter p must be at least 1, got \(p)") }
            guard let cost, cost <= Self.maximumCost else {
                throw CryptoError.invalidInput(
                    "scrypt parameters n=\(n), r=\(r), p=\(p) need 128·n·r·p = \(cost.map(String.init) ?? "more than 2^64") "
                        + "bytes of work, above the limit of \(Self.maximumCost) (2 GiB)")
            }
            // What OpenSSL really allocates also grows with r alone (n = 2 with a huge r passes the
            // cost check above), so bound the allocation itself too.
            let (memory, memoryOverflow) = (128 * UInt64(r)).multipliedReportingOverflow(by: n + 2 + UInt64(p))
            guard !memoryOverflow, memory <= Self.maximumCost + (1 << 20) else {
                throw CryptoError.invalidInput(
                    "scrypt parameters n=\(n), r=\(r), p=\(p) need more than \(Self.maximumCost) bytes (2 GiB) of memory")
            }
            // RFC 7914 requires N < 2^(128·r/8); OpenSSL enforces it.
            if r < 4, n >= UInt64(1) << (16 * UInt64(r)) {
                throw CryptoError.invalidInput("scrypt parameter n=\(n) must be below 2^\(16 * r) when r=\(r)")
            }
        }

        /// Bytes OpenSSL allocates: the N-block table plus p lanes (crypto/evp/pbe_scrypt.c).
        var memoryNeeded: UInt64 { 128 * UInt64(r) * (n + 2) + 128 * UInt64(r) * UInt64(p) }
    }

    public static let maximumOutputByteCount = 1 << 20

    public static func deriveKey(
        passphrase: SecureBytes, salt: [UInt8], parameters: Parameters, outputByteCount: Int
    ) throws -> SecureBytes {
        try parameters.validate()
        guard (1...maximumOutputByteCount).contains(outputByteCount) else {
            throw CryptoError.invalidInput(
                "scrypt outputByteCount must be 1...\(maximumOutputByteCount), got \(outputByteCount)")
        }
        let list = ParameterList()
        passphrase.withUnsafeBytes { list.add(OSSL_KDF_PARAM_PASSWORD, octets: $0) }
        list.add(OSSL_KDF_PARAM_SALT, octets: salt)
        list.add(OSSL_KDF_PARAM_SCRYPT_N, uint64: parameters.n)
        list.add(OSSL_KDF_PARAM_SCRYPT_R, uint32: parameters.r)
        list.add(OSSL_KDF_PARAM_SCRYPT_P, uint32: parameters.p)
        // OpenSSL's default cap is 32 MiB; validated parameters get exactly what they need.
        list.add(OSSL_KDF_PARAM_SCRYPT_MAXMEM, uint64: parameters.memoryNeeded + (1 << 20))
        return try SecureBytes.filling(count: outputByteCount) { output in
            try deriveWithKDF(Algorithms.scrypt, list, into: output, name: "scrypt")
        }
    }
}
