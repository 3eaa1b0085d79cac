// Agent cards (Sources/InfinityHistory/AgentCard.swift), binary and in their `infinity-agent:`
// text form: handed over by other agents, pasted into the CLI, carried in envelopes. Also the
// store location a card carries, which a sender parses to reach the agent's store
// (StoreAddress in Sources/InfinityDB/RemoteStores.swift, S3Configuration for `s3://` URLs).
import FuzzSupport
import InfinityBackends
import InfinityDB
@testable import InfinityHistory

/// Credentials given, so that parsing an S3 URL never reads a credentials file.
private let environment = ["AWS_ACCESS_KEY_ID": "fuzz", "AWS_SECRET_ACCESS_KEY": "fuzz"]

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
            ("location-s3", Array("s3://bucket.one/stores/alice?endpoint=http://127.0.0.1:9000&region=eu-1&style=path".utf8)),
            ("location-file", Array("file:///stores/alice".utf8)),
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
    decode { _ = try StoreAddress(text) }
    decode { _ = try S3Configuration(url: text, environment: environment) }
    return 0
}
