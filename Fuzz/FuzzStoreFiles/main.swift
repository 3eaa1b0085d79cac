// A store's JSON objects, read before or right after it is unlocked: the configuration
// (Sources/InfinityDB/StoreConfiguration.swift), the key file (Sources/InfinityCrypto/
// WrappedMasterSecret.swift) and the capacity declaration (Sources/InfinityDB/Agents/Capacity.swift).
import Foundation
import FuzzSupport
import InfinityChunks
import InfinityCrypto
@testable import InfinityDB

private let owner = FuzzKeys.owner
private let location = "/stores/fuzz"

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfRequested {
        let configuration = try StoreConfiguration(
            format: StoreConfiguration.formatName, version: StoreConfiguration.currentVersion,
            storeID: String(repeating: "ab", count: 16), ownerAgentID: owner.identity(name: "alice").id.description,
            ownerName: "alice", created: "2026-01-02T03:04:05Z",
            dataChunking: ChunkerParameters(minimumSize: 512 << 10, averageSize: 1 << 20, maximumSize: 8 << 20),
            metadataChunking: ChunkerParameters(minimumSize: 2 << 10, averageSize: 8 << 10, maximumSize: 64 << 10),
            targetPackSize: 16 << 20, compressionLevel: 3, authenticator: nil
        ).authenticated(with: owner.metadataKey)
        let keyFile = try WrappedMasterSecret.wrap(
            SecureBytes(copying: [UInt8](repeating: 1, count: AgentKeys.masterSecretByteCount)),
            passphrase: SecureBytes(utf8: "correct horse"), parameters: .minimal)
        let capacity = try CapacityDeclaration.signed(
            bytes: 10 << 30, until: Date(timeIntervalSince1970: 1_800_000_000), keys: owner)
        return [
            ("config", try configuration.encoded()),
            ("key-file", try keyFile.encoded()),
            ("capacity", Array(try CapacityDeclaration.encoder.encode(capacity))),
        ]
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    decode {
        let configuration = try StoreConfiguration.decode(bytes, location: location)
        decode { try configuration.verify(with: owner.metadataKey, location: location) }
        // What opening checks once the configuration authenticates, on values only its owner
        // (or someone holding the owner's key) could have written.
        try configuration.authenticated(with: owner.metadataKey).verify(with: owner.metadataKey, location: location)
        _ = try configuration.dataChunking.validated(location: location)
        _ = try configuration.metadataChunking.validated(location: location)
    }
    decode { _ = try WrappedMasterSecret.decode(bytes) }
    decode {
        let declaration = try CapacityDeclaration.decoder.decode(CapacityDeclaration.self, from: Data(bytes))
        _ = declaration.verify(by: owner.identity(name: ""))
    }
    return 0
}
