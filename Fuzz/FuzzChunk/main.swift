// Chunks and references to them (Sources/InfinityChunks): sealed chunks as read from a pack,
// chunk references, and blob references in their binary, compact and text forms.
import FuzzSupport
import InfinityCompression
import InfinityCrypto
@testable import InfinityChunks

private let sealer = ChunkSealer(contentKey: FuzzKeys.owner.contentKey)
private let sample = [UInt8]("a chunk the fuzzer's references point at, long enough to be compressed: 0123456789abcdef0123456789".utf8)
private let sampleRef = sample.withUnsafeBytes { sealer.reference(for: $0) }
nonisolated(unsafe) private let decompressor = try! ZstdDecompressor()

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfRequested {
        let repetitive = [UInt8](repeating: 0x61, count: 300)
        let repetitiveRef = repetitive.withUnsafeBytes { sealer.reference(for: $0) }
        let compressed = try repetitive.withUnsafeBytes { try sealer.seal($0, as: repetitiveRef, compressor: ZstdCompressor()) }
        let blob = BlobRef(root: sampleRef, depth: 0, length: sample.count)
        return [
            ("sealed-chunk", try sample.withUnsafeBytes { try sealer.seal($0, as: sampleRef, compressor: nil) }),
            ("sealed-compressed-chunk", compressed),
            ("chunk-ref", sampleRef.serialized),
            ("blob-compact", blob.compactForm),
            ("blob-token", Array(blob.token.utf8)),
            // A flags byte, a length, and a zstd frame: the body of a chunk once it authenticates.
            ("compressed-body", [ChunkSealer.compressedFlag, 44, 1] + (try ZstdCompressor().compress(repetitive))),
        ]
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    // As a sealed chunk under a real reference: the header is parsed, the AEAD refuses the rest.
    decode { _ = try ChunkSealer.open(bytes, as: sampleRef, decompressor: decompressor) }
    // As what lies under the AEAD: flags (1), the length the reference claims (u16 LE), then the
    // body, sealed here under the reference's key so that it authenticates and is decompressed.
    decode {
        guard bytes.count >= 3 else { return }
        let claimedLength = Int(bytes[1]) | Int(bytes[2]) << 8
        let ref = ChunkRef(id: sampleRef.id, key: sampleRef.key, length: claimedLength)
        let header = [ChunkSealer.formatVersion, bytes[0]] + [UInt8](repeating: 7, count: AES256GCM.nonceByteCount)
        let body = try AES256GCM.seal(
            Array(bytes[3...]), key: SecureBytes(copying: ref.key.bytes), nonce: Array(header[2...]),
            authenticating: header + ref.id.bytes)
        _ = try ChunkSealer.open(header + body, as: ref, decompressor: decompressor)
    }
    decode { _ = try ChunkRef(serialized: bytes) }
    decode { _ = try BlobRef(compactForm: bytes) }
    decode { _ = try BlobRef(token: String(decoding: bytes, as: UTF8.self)) }
    bytes.withUnsafeBytes { raw in
        _ = BlobRef.readCompactForm(from: raw)
        var offset = 0
        while LEB128.read(raw, at: &offset) != nil {}
    }
    return 0
}
