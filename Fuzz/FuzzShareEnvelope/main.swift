// Share envelopes (Sources/InfinityHistory/ShareEnvelope.swift): what any agent that can write
// to a store's inbox leaves there, sealed to the store's owner.
import Foundation
import FuzzSupport
import InfinityChunks
import InfinityCrypto
@testable import InfinityHistory

private let recipient = FuzzKeys.owner
private let sender = FuzzKeys.other

private func envelope(packs: [String]) throws -> ShareEnvelope {
    let key = ChunkKey(bytes: SHA256.hash(Array("shared commit".utf8)))!
    return try ShareEnvelope(
        sender: try AgentCard.signed(name: "bob", location: "/stores/bob", keys: sender),
        recipient: recipient.identity(name: "").id, commit: ChunkRef(id: key.chunkID, key: key, length: 321),
        refName: "main", time: Date(timeIntervalSince1970: 1_760_000_000),
        bundleKey: SecureBytes(copying: [UInt8](repeating: 9, count: 32)), bundlePacks: packs, chunkCount: 12,
        bundleByteCount: 34_567)
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfRequested {
        let withPacks = try envelope(packs: ["inbox/bundle/packs/aa/one", "inbox/bundle/packs/bb/two"])
        let recipientIdentity = recipient.identity(name: "alice")
        return [
            ("envelope", try withPacks.sealed(to: recipientIdentity, senderKeys: sender)),
            ("envelope-no-packs", try envelope(packs: []).sealed(to: recipientIdentity, senderKeys: sender)),
            ("payload", withPacks.unsignedPayload()),
        ]
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    // Sealed: the framing is parsed, the AEAD refuses what was not sealed to the recipient.
    decode { _ = try ShareEnvelope.open(bytes, keys: recipient, name: "inbox/fuzz") }
    // The payload under the AEAD, which anyone can seal to the recipient: parsed before the
    // sender's signature over it is checked.
    decode { _ = try ShareEnvelope.decodePayload(bytes, name: "inbox/fuzz") }
    return 0
}
