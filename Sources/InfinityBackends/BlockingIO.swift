import Dispatch

/// Runs blocking system calls on a dispatch queue of their own, so that waiting on a disk never
/// holds one of the cooperative threads that Swift concurrency runs computation on (two, on two
/// cores). The queue runs no more calls at once than there are cores, which suits disk writes;
/// network requests, which mostly wait, take a thread each (see `HTTPClient`).
enum BlockingIO {
    private static let queue = DispatchQueue(label: "infinitydb.blocking-io", attributes: .concurrent)

    static func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Swift.Result { try body() }) }
        }
    }
}
