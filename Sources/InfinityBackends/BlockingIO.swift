import Dispatch

/// Runs blocking system calls on threads of their own, so that waiting on a disk never holds one
/// of the cooperative threads that Swift concurrency runs computation on (two, on two cores).
enum BlockingIO {
    private static let queue = DispatchQueue(label: "infinitydb.blocking-io", attributes: .concurrent)

    static func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Swift.Result { try body() }) }
        }
    }
}
