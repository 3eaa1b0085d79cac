import Synchronization

/// Objects in a dictionary in memory, for tests. Same semantics as every other backend,
/// including name validation.
public final class MemoryBackend: Backend {
    private let objects = Mutex<[String: [UInt8]]>([:])

    /// An empty store.
    public init() {}

    public func put(_ name: String, _ data: [UInt8]) async throws {
        try ObjectName.validate(name)
        objects.withLock { $0[name] = data }
    }

    public func get(_ name: String) async throws -> [UInt8] {
        try ObjectName.validate(name)
        guard let data = objects.withLock({ $0[name] }) else { throw notFound(name) }
        return data
    }

    public func get(_ name: String, range: Range<Int>) async throws -> [UInt8] {
        let data = try await get(name)
        guard range.lowerBound >= 0, range.upperBound <= data.count else {
            throw BackendError(
                code: .rangeNotSatisfiable,
                objectName: name,
                message: "range \(range) is outside object '\(name)' of \(data.count) bytes in memory"
            )
        }
        return Array(data[range])
    }

    public func info(_ name: String) async throws -> ObjectInfo? {
        try ObjectName.validate(name)
        return objects.withLock { $0[name] }.map { ObjectInfo(name: name, size: $0.count) }
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        let matches = objects.withLock { objects in
            objects.compactMap { name, data in
                name.utf8.starts(with: prefix.utf8) ? ObjectInfo(name: name, size: data.count) : nil
            }
        }
        return matches.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    public func delete(_ name: String) async throws {
        try ObjectName.validate(name)
        _ = objects.withLock { $0.removeValue(forKey: name) }
    }

    private func notFound(_ name: String) -> BackendError {
        BackendError(code: .notFound, objectName: name, message: "object '\(name)' not found in memory")
    }
}
