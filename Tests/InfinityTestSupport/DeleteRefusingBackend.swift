import InfinityBackends
import Synchronization

/// A backend whose deletes fail while ``isRefusing`` is set, as one without delete permission:
/// for tests of what a garbage collection leaves when it cannot delete.
public final class DeleteRefusingBackend: Backend {
    public let inner: any Backend
    private let refusing = Atomic<Bool>(false)

    public init(_ inner: any Backend) {
        self.inner = inner
    }

    /// Whether deletes fail now.
    public var isRefusing: Bool {
        get { refusing.load(ordering: .relaxed) }
        set { refusing.store(newValue, ordering: .relaxed) }
    }

    public func put(_ name: String, _ data: [UInt8]) async throws { try await inner.put(name, data) }
    public func get(_ name: String) async throws -> [UInt8] { try await inner.get(name) }
    public func get(_ name: String, range: Range<Int>) async throws -> [UInt8] { try await inner.get(name, range: range) }
    public func info(_ name: String) async throws -> ObjectInfo? { try await inner.info(name) }
    public func list(prefix: String) async throws -> [ObjectInfo] { try await inner.list(prefix: prefix) }
    public func delete(_ name: String) async throws {
        if isRefusing {
            throw BackendError(code: .permissionDenied, objectName: name, message: "deleting \(name) is not allowed")
        }
        try await inner.delete(name)
    }
}
