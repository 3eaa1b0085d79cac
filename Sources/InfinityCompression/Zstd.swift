import CInfinityZstd

/// Facts about the linked zstd library.
public enum Zstd {
    /// The largest compressed size of `count` bytes; an output buffer this large never
    /// makes ``ZstdCompressor/compress(_:into:)`` return nil.
    public static func compressBound(_ count: Int) -> Int {
        precondition(count >= 0, "a byte count cannot be negative")
        return Int(ZSTD_compressBound(count))
    }

    /// The zstd library version, e.g. "1.5.4".
    public static var versionString: String {
        String(cString: ZSTD_versionString())
    }

    /// The range of levels ``ZstdCompressor`` accepts (negative levels are faster).
    public static var levels: ClosedRange<Int32> {
        ZSTD_minCLevel()...ZSTD_maxCLevel()
    }

    /// zstd's error name for a result that `ZSTD_isError` flags.
    static func errorName(_ result: Int) -> String {
        String(cString: ZSTD_getErrorName(result))
    }

    static func isError(_ result: Int) -> Bool {
        ZSTD_isError(result) != 0
    }
}

/// Compresses whole buffers into single zstd frames, reusing one `ZSTD_CCtx`.
///
/// Not `Sendable`: one thread at a time (keep one compressor per task or behind a lock).
/// Frames carry their content size and no checksum; integrity is the caller's job
/// (chunks are authenticated by the AEAD).
public final class ZstdCompressor {
    /// The compression level this compressor uses.
    public let level: Int32
    /// Literals (the bytes no match covers) are always Huffman-coded, even at the negative levels
    /// that otherwise leave them raw (false if asked for but the linked libzstd refuses it).
    public let alwaysCompressesLiterals: Bool
    private let context: OpaquePointer

    /// - Parameters:
    ///   - level: a level in ``Zstd/levels``; 3 is zstd's default balance.
    ///   - alwaysCompressesLiterals: Huffman-code literals whatever the level. With a fast
    ///     (negative) level, this suits small inputs whose bytes repeat little but are far from
    ///     random (text-like records, names): most of what zstd gains on them is the literals'
    ///     coding, and most of its time is the search for matches.
    ///   - matchTables: log2 of the sizes of the match finder's hash and chain tables, in place
    ///     of those the level picks (which suit inputs of many MiB). Smaller tables stay in the
    ///     cores' caches: faster, for a little less compression.
    public init(level: Int32 = 3, alwaysCompressesLiterals: Bool = false, matchTables: (hashLog: Int32, chainLog: Int32)? = nil) throws {
        guard Zstd.levels.contains(level) else {
            throw CompressionError(
                code: .invalidArgument,
                message: "compression level \(level) is outside \(Zstd.levels.lowerBound)...\(Zstd.levels.upperBound)"
            )
        }
        guard let context = ZSTD_createCCtx() else {
            throw CompressionError(code: .failed, message: "cannot allocate a zstd compression context")
        }
        var settings = [(ZSTD_c_compressionLevel, level, "compression level")]
        if let matchTables {
            settings += [(ZSTD_c_hashLog, matchTables.hashLog, "hash table log"), (ZSTD_c_chainLog, matchTables.chainLog, "chain table log")]
        }
        for (parameter, value, name) in settings {
            let result = ZSTD_CCtx_setParameter(context, parameter, value)
            if Zstd.isError(result) {
                ZSTD_freeCCtx(context)
                throw CompressionError(code: .invalidArgument, message: "zstd refuses \(name) \(value): \(Zstd.errorName(result))")
            }
        }
        // ZSTD_c_experimentalParam5 is ZSTD_c_literalCompressionMode; 1 is ZSTD_ps_enable. A
        // libzstd that refuses it compresses at the level alone: the frames are the same format.
        self.alwaysCompressesLiterals =
            alwaysCompressesLiterals && !Zstd.isError(ZSTD_CCtx_setParameter(context, ZSTD_c_experimentalParam5, 1))
        self.level = level
        self.context = context
    }

    deinit {
        ZSTD_freeCCtx(context)
    }

    /// Compresses `input` into `output` as one frame.
    ///
    /// - Returns: the compressed size, or nil when the frame does not fit in `output`. Size
    ///   `output` as `input.count - 1` to learn whether compression shrinks the data at all.
    public func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int? {
        let result = ZSTD_compress2(context, output.baseAddress, output.count, input.baseAddress, input.count)
        guard Zstd.isError(result) else { return result }
        if ZSTD_getErrorCode(result) == ZSTD_error_dstSize_tooSmall { return nil }
        let name = Zstd.errorName(result)
        throw CompressionError(
            code: .failed,
            message: "zstd cannot compress \(input.count) bytes: \(name)",
            zstdErrorName: name
        )
    }

    /// Compresses `input` into a new array holding one frame.
    public func compress(_ input: [UInt8]) throws -> [UInt8] {
        let bound = Zstd.compressBound(input.count)
        let compressed = try [UInt8](unsafeUninitializedCapacity: bound) { buffer, initializedCount in
            let size = try input.withUnsafeBytes { try compress($0, into: UnsafeMutableRawBufferPointer(buffer)) }
            guard let size else {
                throw CompressionError(code: .failed, message: "zstd output exceeded compressBound(\(input.count))")
            }
            initializedCount = size
        }
        // The array keeps its compressBound-sized capacity; give back the memory when most
        // of it is unused, since callers may hold many compressed buffers.
        return compressed.count * 2 < compressed.capacity ? [UInt8](compressed) : compressed
    }
}

/// Decompresses zstd frames whose decompressed size the caller knows, reusing one `ZSTD_DCtx`.
///
/// Not `Sendable`: one thread at a time. Corrupt, truncated or foreign input throws and
/// never reads or writes outside the given buffers.
public final class ZstdDecompressor {
    private let context: OpaquePointer

    /// Allocates the decompression context.
    public init() throws {
        guard let context = ZSTD_createDCtx() else {
            throw CompressionError(code: .failed, message: "cannot allocate a zstd decompression context")
        }
        self.context = context
    }

    deinit {
        ZSTD_freeDCtx(context)
    }

    /// Decompresses `input` into `output`, which must be exactly the decompressed size.
    ///
    /// - Returns: the decompressed size, always `output.count`.
    /// - Throws: `.sizeMismatch` when the frame holds more or fewer bytes than
    ///   `output.count`; `.corruptInput` when the input is not a valid frame.
    public func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        // Check the size recorded in the frame header first: a mismatch is then reported as
        // such, before any work, rather than as zstd's "destination buffer too small".
        let declaredSize = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if declaredSize == infinity_zstd_contentsize_error() {
            throw CompressionError(
                code: .corruptInput,
                message: "input of \(input.count) bytes does not start with a valid zstd frame header"
            )
        }
        if declaredSize != infinity_zstd_contentsize_unknown() && declaredSize != UInt64(output.count) {
            throw sizeMismatch(expected: output.count, found: "\(declaredSize) bytes (frame header)")
        }

        let result = ZSTD_decompressDCtx(context, output.baseAddress, output.count, input.baseAddress, input.count)
        if Zstd.isError(result) {
            let name = Zstd.errorName(result)
            if ZSTD_getErrorCode(result) == ZSTD_error_dstSize_tooSmall {
                throw CompressionError(
                    code: .sizeMismatch,
                    message: "zstd data decompresses to more than the expected \(output.count) bytes: \(name)",
                    zstdErrorName: name
                )
            }
            throw CompressionError(
                code: .corruptInput,
                message: "cannot decompress \(input.count) bytes of zstd data: \(name)",
                zstdErrorName: name
            )
        }
        guard result == output.count else {
            throw sizeMismatch(expected: output.count, found: "\(result) bytes")
        }
        return result
    }

    /// Decompresses `input` into a new array of exactly `expectedSize` bytes.
    public func decompress(_ input: [UInt8], expectedSize: Int) throws -> [UInt8] {
        guard expectedSize >= 0 else {
            throw CompressionError(code: .invalidArgument, message: "expected size \(expectedSize) is negative")
        }
        return try [UInt8](unsafeUninitializedCapacity: expectedSize) { buffer, initializedCount in
            initializedCount = try input.withUnsafeBytes {
                try decompress($0, into: UnsafeMutableRawBufferPointer(buffer))
            }
        }
    }

    private func sizeMismatch(expected: Int, found: String) -> CompressionError {
        CompressionError(
            code: .sizeMismatch,
            message: "zstd data decompresses to \(found), expected \(expected) bytes"
        )
    }
}

// One context per instance, used without locking: only one thread at a time.
@available(*, unavailable)
extension ZstdCompressor: Sendable {}

@available(*, unavailable)
extension ZstdDecompressor: Sendable {}
