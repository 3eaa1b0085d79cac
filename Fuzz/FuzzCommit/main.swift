// Commits (Sources/InfinityHistory/Commit.swift), the sealed ref values of the refs database
// (SealedRefValue.swift) and ref names (RefName.swift).
import Foundation
import FuzzSupport
import InfinityChunks
import InfinityCrypto
import InfinityPacks
@testable import InfinityHistory

private let commitID = ChunkID(bytes: SHA256.hash(Array("a fuzzed commit".utf8)))!
private let refSealer = try! RefValueSealer(metadataKey: FuzzKeys.owner.metadataKey)
private let refTable = "refs"
private let refName = "refs/heads/main"

private func chunkRef(_ text: String) -> ChunkRef {
    let key = ChunkKey(bytes: SHA256.hash(Array(text.utf8)))!
    return ChunkRef(id: key.chunkID, key: key, length: text.utf8.count)
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfRequested {
        let time = Date(timeIntervalSince1970: 1_760_000_000)
        let root = try Commit.signed(
            parents: [], root: chunkRef("index 1"), time: time, message: "first", generation: 1, authorName: "alice",
            keys: FuzzKeys.other)
        let merge = try Commit.signed(
            parents: [chunkRef("commit a"), chunkRef("commit b")], root: chunkRef("index 2"), time: time,
            message: "merge\n\nwith a body", generation: 7, authorName: "bob", keys: FuzzKeys.owner)
        let head = chunkRef("head commit")
        return [
            ("commit-root", root.encoded()),
            ("commit-merge", merge.encoded()),
            ("sealed-ref-value", try refSealer.seal(head, table: refTable, name: refName)),
            ("ref-value-plaintext", head.key.bytes + [UInt8(head.length), 0, 0, 0, 0, 0, 0, 0]),
            ("ref-name-branch", Array("refs/heads/feature/x-1".utf8)),
            ("ref-name-agent", Array("refs/agents/alice/main".utf8)),
        ]
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    decode { _ = try Commit.decode(bytes, id: commitID) }
    let text = String(decoding: bytes, as: UTF8.self)
    decode { _ = try RefName(validating: text) }
    decode { _ = try RefName.branch(text) }
    decode { _ = try RefName.agent("alice", branch: text) }
    decode { _ = try refSealer.open(bytes, id: commitID, table: refTable, name: refName, subject: "ref \(refName)") }
    // The plaintext of a sealed value, sealed here so that it authenticates: the input's first
    // bytes as the chunk key and length a refs database row holds.
    decode {
        let plaintextCount = RefValueSealer.sealedByteCount - 1 - AES256GCM.nonceByteCount - AES256GCM.tagByteCount
        guard bytes.count >= plaintextCount else { return }
        let key = ChunkKey(bytes: Array(bytes[..<ChunkKey.byteCount]))!
        let nonce = [UInt8](repeating: 3, count: AES256GCM.nonceByteCount)
        let sealed = try AES256GCM.seal(
            Array(bytes[..<plaintextCount]), key: refSealer.key, nonce: nonce,
            authenticating: RefValueSealer.associatedData(table: refTable, name: refName, id: key.chunkID))
        _ = try refSealer.open(
            [RefValueSealer.version] + nonce + sealed, id: key.chunkID, table: refTable, name: refName,
            subject: "ref \(refName)")
    }
    return 0
}
