#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InfinityCrypto

/// Keys every fuzz target derives the same way on every run, so that a crashing input found with
/// them reproduces, and a seed sealed by one run opens in the next.
public enum FuzzKeys {
    /// The agent whose store is read: the owner of packs, the recipient of envelopes.
    public static let owner = agent(seed: 1)
    /// Another agent: the sender of envelopes, the author of commits read by ``owner``.
    public static let other = agent(seed: 2)

    private static func agent(seed: UInt8) -> AgentKeys {
        do {
            return try AgentKeys(masterSecret: SecureBytes(copying: [UInt8](repeating: seed, count: AgentKeys.masterSecretByteCount)))
        } catch {
            fatalError("fixed fuzzing keys cannot be derived: \(error)")
        }
    }
}

/// The input libFuzzer hands to `LLVMFuzzerTestOneInput`, copied into an array.
public func fuzzInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: data, count: size))
}

/// Runs one decoder on the input. A thrown error is the decoder refusing the input, which is
/// what it should do; only a trap (or a sanitizer report) is a finding.
public func decode(_ body: () throws -> Void) {
    do { try body() } catch {}
}

/// Called from `LLVMFuzzerInitialize`: when `INFINITY_FUZZ_WRITE_SEEDS` names a directory, writes
/// each seed (valid encodings of the target's kind, made with ``FuzzKeys``) there under its name
/// and exits, so `Scripts/fuzz.sh --seeds` can refresh `Fuzz/Corpus/<target>/`.
public func writeSeedsIfRequested(_ seeds: () throws -> [(name: String, bytes: [UInt8])]) {
    guard let directory = getenv("INFINITY_FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) else { return }
    do {
        for seed in try seeds() {
            let path = directory + "/" + seed.name
            guard let file = fopen(path, "wb") else { fatalError("cannot create seed file \(path)") }
            let written = seed.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
            guard written == seed.bytes.count else { fatalError("cannot write seed file \(path)") }
        }
    } catch {
        fatalError("seeds cannot be made: \(error)")
    }
    exit(0)
}
