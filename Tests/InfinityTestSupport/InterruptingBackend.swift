import Foundation
import InfinityBackends
import Synchronization

/// A local directory backend whose process "dies" in the middle of one chosen write: a put leaves
/// half of its object behind and fails, a delete does not happen, and from then on every call
/// fails, as nothing more is written by a process that is gone. Open the directory again (without
/// this wrapper) to see what the next process finds.
public final class InterruptingBackend: Backend {
    /// What the interrupted put leaves.
    public enum Leftover: Sendable, CaseIterable, CustomStringConvertible {
        /// The first half of the object under its own name, as a backend without an atomic
        /// rename (or a disk that lost the end of a file) would leave it.
        case truncatedObject
        /// The first half in a temporary file beside it, as a local put stopped before its rename.
        case temporaryFile

        public var description: String { self == .truncatedObject ? "truncated object" : "temporary file" }
    }

    public let inner: LocalDirectoryBackend
    private struct State {
        var writesBeforeInterruption: Int?
        var prefix = ""
        var leftover = Leftover.truncatedObject
        /// The name whose put was interrupted, once it was.
        var interrupted: String?
    }
    private let state = Mutex(State())

    public init(_ inner: LocalDirectoryBackend) {
        self.inner = inner
    }

    /// Lets `count` more writes (puts and deletes) of names starting with `prefix` through, and
    /// interrupts the next.
    public func interrupt(afterWrites count: Int, of prefix: String, leaving leftover: Leftover = .truncatedObject) {
        state.withLock { $0 = State(writesBeforeInterruption: count, prefix: prefix, leftover: leftover) }
    }

    /// The object whose put was interrupted, if one was.
    public var interruptedName: String? { state.withLock { $0.interrupted } }

    private func checkAlive() throws {
        if let name = interruptedName { throw died(writing: name) }
    }

    /// The leftover when this write of `name` is the one interrupted, else nil.
    private func interrupts(_ name: String) -> Leftover? {
        state.withLock { state in
            guard let count = state.writesBeforeInterruption, name.hasPrefix(state.prefix) else { return nil }
            if count > 0 {
                state.writesBeforeInterruption = count - 1
                return nil
            }
            state.interrupted = name
            return state.leftover
        }
    }

    private func died(writing name: String) -> BackendError {
        BackendError(code: .io, objectName: name, message: "the process died while writing \(name)")
    }

    public func put(_ name: String, _ data: [UInt8]) async throws {
        try checkAlive()
        guard let leftover = interrupts(name) else { return try await inner.put(name, data) }
        let half = Array(data.prefix(data.count / 2))
        switch leftover {
        case .truncatedObject:
            try await inner.put(name, half)
        case .temporaryFile:
            let path = inner.path(of: name)
            let folder = (path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(half).write(to: URL(fileURLWithPath: folder + "/.tmp~" + String(UInt64.random(in: .min ... .max), radix: 16)))
        }
        throw died(writing: name)
    }

    public func get(_ name: String) async throws -> [UInt8] {
        try checkAlive()
        return try await inner.get(name)
    }

    public func get(_ name: String, range: Range<Int>) async throws -> [UInt8] {
        try checkAlive()
        return try await inner.get(name, range: range)
    }

    public func info(_ name: String) async throws -> ObjectInfo? {
        try checkAlive()
        return try await inner.info(name)
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        try checkAlive()
        return try await inner.list(prefix: prefix)
    }

    public func delete(_ name: String) async throws {
        try checkAlive()
        if interrupts(name) != nil { throw died(writing: name) }
        try await inner.delete(name)
    }
}
