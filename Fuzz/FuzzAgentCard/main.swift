// Agent cards (Sources/InfinityHistory/AgentCard.swift), binary and in their `infinity-agent:`
// text form: handed over by other agents, pasted into the CLI, carried in envelopes.
import FuzzSupport
@testable import InfinityHistory

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfRequested {
        let card = try AgentCard.signed(name: "alice", location: "s3://bucket/stores/alice", keys: FuzzKeys.owner)
        let unlisted = try AgentCard.signed(name: "bob", location: "", keys: FuzzKeys.other)
        return [
            ("card", card.encoded()),
            ("card-text", Array(card.text.utf8)),
            ("card-without-location", unlisted.encoded()),
            ("card-without-location-text", Array((unlisted.text + "\n").utf8)),
        ]
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    decode { _ = try AgentCard.decode(bytes) }
    let text = String(decoding: bytes, as: UTF8.self)
    decode { _ = try AgentCard(text: text) }
    _ = Base64URL.decode(text)
    return 0
}
