// Pack trailers (Sources/InfinityPacks/PackFormat.swift): a pack's tail as read from a backend,
// and the trailer's plaintext as it is parsed once it authenticates.
import FuzzSupport
import InfinityCrypto
@testable import InfinityPacks

private let metadataKey = FuzzKeys.owner.metadataKey
/// Room for chunks in front of the trailer when the input is parsed as a trailer's plaintext.
private let chunkAreaSize = 1 << 16

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfRequested {
        var builder = PackBuilder(kind: .metadata, capacity: 256)
        for index in 0..<3 {
            let sealed = [UInt8](repeating: UInt8(index), count: 40 + index)
            builder.append(id: ChunkID(bytes: SHA256.hash(sealed))!, sealed: sealed, plaintextLength: 24 + index)
        }
        let pack = try builder.finish(metadataKey: metadataKey)
        let empty = try PackBuilder(kind: .data, capacity: 0).finish(metadataKey: metadataKey)
        return [
            ("pack", pack.bytes),
            ("empty-pack", empty.bytes),
            ("trailer-plaintext", PackFormat.encodeTrailer(kind: .metadata, entries: pack.entries)),
        ]
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    // The input as a whole pack and as the tail of a larger one, under the owner's key: the
    // footer and sealed framing are parsed, and the AEAD refuses anything not sealed by it.
    decode { _ = try PackFormat.verifiedTrailer(ofPack: "packs/00/fuzz", bytes: bytes, metadataKey: metadataKey) }
    decode { _ = try PackFormat.decodeTrailer(tail: bytes, packSize: bytes.count, packName: "fuzz", metadataKey: metadataKey) }
    decode {
        _ = try PackFormat.decodeTrailer(
            tail: bytes, packSize: bytes.count + chunkAreaSize, packName: "fuzz", metadataKey: metadataKey)
    }
    // The input as a trailer's plaintext, sealed here under the key so that it authenticates:
    // what a holder of the key (a share's recipient, for a bundle pack) can make a reader parse.
    decode {
        var tail = try PackFormat.sealTrailer(bytes, metadataKey: metadataKey)
        let name = PackFormat.objectName(forSealedTrailer: tail)
        PackFormat.appendUInt32(UInt32(tail.count), to: &tail)
        tail += PackFormat.magic
        _ = try PackFormat.verifiedTrailer(
            ofPack: name, tail: tail, packSize: tail.count + chunkAreaSize, metadataKey: metadataKey)
    }
    return 0
}
