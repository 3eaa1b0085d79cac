import InfinityBackends
import Synchronization

/// A backend that counts ranged reads (one per chunk read from a pack) and whole reads on top
/// of another (memory by default), to show how many reads an operation costs.
public final class CountingBackend: Backend {
    public let inner: any Backend
    private let rangedReads = Atomic<Int>(0)
    private let wholeReads = Atomic<Int>(0)

    public init(_ inner: any Backend = MemoryBackend()) {
        self.inner = inner
    }

    public var rangedReadCount: Int { rangedReads.load(ordering: .relaxed) }
    public var wholeReadCount: Int { wholeReads.load(ordering: .relaxed) }
    public func resetCount() {
        rangedReads.store(0, ordering: .relaxed)
        wholeReads.store(0, ordering: .relaxed)
    }

    public func put(_ name: String, _ data: [UInt8]) async throws { try await inner.put(name, data) }
    public func get(_ name: String) async throws -> [UInt8] {
        wholeReads.add(1, ordering: .relaxed)
        return try await inner.get(name)
    }
    public func get(_ name: String, range: Range<Int>) async throws -> [UInt8] {
        rangedReads.add(1, ordering: .relaxed)
        return try await inner.get(name, range: range)
    }
    public func info(_ name: String) async throws -> ObjectInfo? { try await inner.info(name) }
    public func list(prefix: String) async throws -> [ObjectInfo] { try await inner.list(prefix: prefix) }
    public func delete(_ name: String) async throws { try await inner.delete(name) }
}
