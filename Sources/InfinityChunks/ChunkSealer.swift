import InfinityCompression
import InfinityCrypto
import InfinityPacks

/// Turns plaintext into sealed chunks and back (see Docs/FORMAT.md):
///
///     version (1) | flags (1) | nonce (12) | AES-256-GCM ciphertext | tag (16)
///
/// The chunk key is HMAC-SHA256(content key, plaintext): convergent inside one agent, so the same
/// data always gets the same id and is stored once, and opaque to everyone without the content
/// key. The plaintext is zstd-compressed first when that makes it smaller. The header and the
/// chunk id are authenticated as associated data, so a chunk cannot be moved under another id.
/// The nonce is random: one key only ever seals one plaintext, but the bytes it encrypts may
/// differ (compressed or not, by one build or another), and a random nonce keeps even that case
/// safe.
public struct ChunkSealer: Sendable {
    public static let formatVersion: UInt8 = 1
    public static let headerLength = 2 + AES256GCM.nonceByteCount
    /// Bytes a sealed chunk adds to its (possibly compressed) plaintext.
    public static let overhead = headerLength + AES256GCM.tagByteCount
    static let compressedFlag: UInt8 = 1
    /// Chunks of this length or shorter are stored as they are: zstd's frame would take most of
    /// what it saves.
    public static let minimumCompressedLength = 64

    /// Whether a sealed chunk holds its plaintext compressed (read from its header; a chunk too
    /// short to have one reads as not compressed).
    public static func isCompressed(_ sealed: [UInt8]) -> Bool {
        sealed.count > 1 && sealed[1] & compressedFlag != 0
    }

    /// No chunk is longer than this: a reference claiming more is damaged, and is refused before
    /// anything is allocated for it.
    public static let maximumChunkLength = 64 << 20

    private let contentKey: HMACSHA256.PreparedKey
    /// zstd level used when sealing.
    public let compressionLevel: Int32

    /// Match tables of the data compressor at level 3, the default: a hash table of 2^16 entries
    /// and a chain table of 2^14, where zstd takes 2^17 and 2^16 for a chunk of 1 MiB. On 1 MiB
    /// chunks of the backup comparison's corpus (documentation, headers, Python's library) this
    /// compresses 14% faster for 0.9% more output, and a first backup of it takes a fifth less
    /// CPU; other levels keep zstd's tables.
    public var dataMatchTables: (hashLog: Int32, chainLog: Int32)? { compressionLevel == 3 ? (16, 14) : nil }

    /// zstd level for metadata chunks (tree nodes, chunk lists): −3 with literals always
    /// Huffman-coded while the store's level is 0 to 3 (zstd's level 0 is its default, 3).
    /// Metadata chunks are a few KiB of keys, hashes and short records, on which zstd gains
    /// mostly by coding literals: on 2 KiB leaves of 16-byte keys and 100-byte text values this
    /// runs 27% faster than level 1 (267 MB/s against 210) for 0.6% more output, and a bulk load
    /// of a million such entries spends 15% less time in zstd; on 2 KiB blocks of C headers, 7%
    /// faster for 5% more output. Faster (negative) levels and levels above 3 apply to metadata
    /// as they are.
    public var metadataCompressionLevel: Int32 { usesMetadataClass ? -3 : compressionLevel }

    /// Metadata compressors always code literals (see ``metadataCompressionLevel``).
    public var metadataCompressesAllLiterals: Bool { usesMetadataClass }

    private var usesMetadataClass: Bool { (0...3).contains(compressionLevel) }

    public init(contentKey: SecureBytes, compressionLevel: Int32 = 3) {
        self.contentKey = HMACSHA256.PreparedKey(contentKey)
        self.compressionLevel = compressionLevel
    }

    /// The reference a plaintext gets: one keyed-hash pass and nothing more, so a duplicate can be
    /// recognised before any compression or encryption.
    public func reference(for plaintext: UnsafeRawBufferPointer) -> ChunkRef {
        let key = ChunkKey(bytes: contentKey.authenticate(plaintext))!
        return ChunkRef(id: key.chunkID, key: key, length: plaintext.count)
    }

    /// Compresses (when it shrinks the data) and encrypts a chunk under its key.
    public func seal(_ plaintext: UnsafeRawBufferPointer, as ref: ChunkRef, compressor: ZstdCompressor?) throws -> [UInt8] {
        precondition(plaintext.count == ref.length, "sealing a chunk whose length differs from its reference")
        var compressed: [UInt8] = []
        var flags: UInt8 = 0
        if let compressor, plaintext.count > Self.minimumCompressedLength {
            // One byte smaller than the input: zstd reports "does not fit" when it cannot shrink it.
            compressed = [UInt8](unsafeUninitializedCapacity: plaintext.count - 1) { _, count in
                count = plaintext.count - 1
            }
            let size = try compressed.withUnsafeMutableBytes { try compressor.compress(plaintext, into: $0) }
            if let size {
                compressed.removeLast(compressed.count - size)
                flags |= Self.compressedFlag
            } else {
                compressed = []
            }
        }
        let nonce = AES256GCM.randomNonce()
        let header = [Self.formatVersion, flags] + nonce
        let associatedData = header + ref.id.bytes
        let body = flags & Self.compressedFlag != 0 ? nil : plaintext
        let bodyCount = body?.count ?? compressed.count
        // Every byte is written below: the header, then ciphertext and tag.
        var sealed = [UInt8](unsafeUninitializedCapacity: Self.headerLength + bodyCount + AES256GCM.tagByteCount) {
            _, count in count = Self.headerLength + bodyCount + AES256GCM.tagByteCount
        }
        try sealed.withUnsafeMutableBytes { out in
            header.withUnsafeBytes { out.copyMemory(from: $0) }
            try ref.key.bytes.withUnsafeBytes { key in
                try nonce.withUnsafeBytes { nonce in
                    try associatedData.withUnsafeBytes { aad in
                        let destination = UnsafeMutableRawBufferPointer(rebasing: out[Self.headerLength...])
                        if let body {
                            try AES256GCM.seal(body, key: key, nonce: nonce, authenticating: aad, into: destination)
                        } else {
                            try compressed.withUnsafeBytes {
                                try AES256GCM.seal($0, key: key, nonce: nonce, authenticating: aad, into: destination)
                            }
                        }
                    }
                }
            }
        }
        return sealed
    }

    /// Verifies, decrypts and decompresses a sealed chunk. Any damage gives a
    /// ``ChunkError/Code/integrity`` error naming the chunk id.
    public static func open(_ sealed: [UInt8], as ref: ChunkRef, decompressor: ZstdDecompressor) throws -> [UInt8] {
        let id = ref.id
        guard sealed.count >= overhead else {
            throw ChunkError(.integrity, "chunk \(id) is truncated: \(sealed.count) bytes is shorter than a sealed chunk")
        }
        guard sealed[0] == formatVersion else {
            // A newer chunk format only ever comes with a newer store version, which is refused
            // when the store opens; inside a version-1 store an unknown version byte is damage.
            throw ChunkError(.integrity, "chunk \(id) has unknown format \(sealed[0]) (damaged)")
        }
        guard ref.length <= maximumChunkLength else {
            throw ChunkError(
                .integrity, "the reference to chunk \(id) claims \(ref.length) bytes, more than any chunk holds (damaged reference)")
        }
        let flags = sealed[1]
        guard flags & ~compressedFlag == 0 else {
            throw ChunkError(.integrity, "chunk \(id) has unknown flags \(flags) (damaged)")
        }
        let associatedData = Array(sealed[0..<headerLength]) + id.bytes
        let opened: [UInt8]
        do {
            // Not zero-filled first: decryption writes every byte, and nothing is kept if it fails.
            opened = try [UInt8](unsafeUninitializedCapacity: sealed.count - overhead) { output, initializedCount in
                try sealed.withUnsafeBytes { sealed in
                    try ref.key.bytes.withUnsafeBytes { key in
                        try associatedData.withUnsafeBytes { aad in
                            try AES256GCM.open(
                                UnsafeRawBufferPointer(rebasing: sealed[headerLength...]), key: key,
                                nonce: UnsafeRawBufferPointer(rebasing: sealed[2..<headerLength]),
                                authenticating: aad, into: UnsafeMutableRawBufferPointer(output))
                        }
                    }
                }
                initializedCount = output.count
            }
        } catch {
            throw ChunkError(.integrity, "chunk \(id) failed authentication (damaged or tampered)", cause: error)
        }
        guard flags & compressedFlag != 0 else {
            guard opened.count == ref.length else {
                throw ChunkError(.integrity, "chunk \(id) holds \(opened.count) bytes, its reference says \(ref.length)")
            }
            return opened
        }
        do {
            return try decompressor.decompress(opened, expectedSize: ref.length)
        } catch {
            throw ChunkError(.integrity, "chunk \(id) does not decompress to its \(ref.length) bytes", cause: error)
        }
    }
}
