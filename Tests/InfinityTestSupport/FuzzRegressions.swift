import Foundation
import InfinityCrypto

/// The inputs under `Fuzz/Regressions/<target>/` that once made a decoder trap (Docs/FUZZING.md).
/// Each has a test that decodes it and expects a thrown error.
public enum FuzzRegressions {
    /// The bytes of `Fuzz/Regressions/<target>/<name>` in this checkout.
    public static func input(target: String, name: String) throws -> [UInt8] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return [UInt8](try Data(contentsOf: root.appendingPathComponent("Fuzz/Regressions/\(target)/\(name)")))
    }

    /// The keys the fuzz targets read and seal with (`FuzzKeys.owner` in Fuzz/FuzzSupport), so
    /// that inputs signed or sealed by them authenticate here too.
    public static func ownerKeys() throws -> AgentKeys {
        try AgentKeys(masterSecret: SecureBytes(copying: [UInt8](repeating: 1, count: AgentKeys.masterSecretByteCount)))
    }
}
