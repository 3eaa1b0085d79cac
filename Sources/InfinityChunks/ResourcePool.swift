import Synchronization

/// A small pool of reusable, non-thread-safe helpers (zstd contexts): each caller takes one out,
/// uses it alone, and puts it back, so contexts are reused instead of reallocated per chunk.
final class ResourcePool<Resource>: Sendable {
    // A resource is only ever used by the one caller that took it out of the pool, so moving it
    // between threads through the mutex is safe even though the resource itself is not Sendable.
    private final class Box: @unchecked Sendable {
        let resource: Resource
        init(_ resource: Resource) { self.resource = resource }
    }

    private let idle = Mutex<[Box]>([])
    private let make: @Sendable () throws -> Resource

    init(make: @escaping @Sendable () throws -> Resource) {
        self.make = make
    }

    func withResource<R>(_ body: (Resource) throws -> R) throws -> R {
        let box = try idle.withLock { $0.popLast() } ?? Box(make())
        defer { idle.withLock { $0.append(box) } }
        return try body(box.resource)
    }
}
