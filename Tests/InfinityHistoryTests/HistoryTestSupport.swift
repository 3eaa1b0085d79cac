import Foundation
import InfinityBackends
import InfinityChunks
import InfinityCrypto
import InfinityPacks
import InfinityTestSupport
import Synchronization

@testable import InfinityHistory

func makeAgentKeys() throws -> AgentKeys {
    try AgentKeys(masterSecret: AgentKeys.generateMasterSecret())
}

/// An agent's commit store over a fresh chunk store, and a stand-in index root.
struct HistoryFixture {
    let chunks: ChunkStore
    let keys: AgentKeys
    let commits: CommitStore
    let root: ChunkRef

    init(backend: any Backend = MemoryBackend(), name: String = "alice") async throws {
        chunks = try makeChunkStore(backend: backend)
        keys = try makeAgentKeys()
        commits = try CommitStore(chunks: chunks, keys: keys, authorName: name)
        root = try await chunks.put(Array("an index root".utf8), kind: .metadata)
    }

    /// Writes a commit with the given parents, at `second` seconds after a fixed epoch.
    func commit(_ message: String, parents: [ChunkRef] = [], second: Int = 0) async throws -> ChunkRef {
        try await commits.write(
            parents: parents, root: root, message: message, time: Date(timeIntervalSince1970: 1_777_000_000 + Double(second))
        ).0
    }

    /// A first-parent line of `count` commits on top of `parent`, oldest first.
    func line(_ count: Int, on parent: ChunkRef? = nil, label: String = "c") async throws -> [ChunkRef] {
        var refs: [ChunkRef] = []
        var tip = parent
        for index in 0..<count {
            let ref = try await commit("\(label)\(index)", parents: tip.map { [$0] } ?? [], second: index)
            refs.append(ref)
            tip = ref
        }
        return refs
    }
}

/// Whether `error` is a ``HistoryError`` with `code` whose message contains every fragment.
func isHistoryError(_ error: any Error, _ code: HistoryError.Code, mentioning fragments: String...) -> Bool {
    guard let error = error as? HistoryError, error.code == code else { return false }
    return fragments.allSatisfy { error.message.contains($0) }
}

/// A reference to a chunk that need not exist: enough for the refs database, which stores
/// refs without reading them.
func fakeRef(_ number: Int) -> ChunkRef {
    Array("commit \(number)".utf8).withUnsafeBytes { fakeRefSealer.reference(for: $0) }
}

private let fakeRefSealer = ChunkSealer(contentKey: SecureBytes(copying: [UInt8](repeating: 7, count: 32)))

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let current: Mutex<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_777_000_000)) {
        current = Mutex(start)
    }

    var now: Date { current.withLock { $0 } }

    func set(_ date: Date) { current.withLock { $0 = date } }

    func advance(seconds: Double) { current.withLock { $0 += seconds } }
}
