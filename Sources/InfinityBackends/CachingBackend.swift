import Foundation
import Synchronization

/// A bounded local-disk cache in front of a slower backend (the warm tier over the cold one):
/// objects chosen by ``keepWarm`` are fetched whole on their first read and kept in a local
/// directory, and later reads of them, ranged or whole, are served from disk: a restore that
/// reads many chunks of a pack fetches the pack once. The cache never holds more than
/// ``capacity`` bytes: objects ``evictFirst`` names (file data) are dropped before the others
/// (metadata), each group least recently used first.
///
/// An object fetched whole that the disk cannot keep (larger than the cache, or the disk
/// refuses it) stays in a small memory window of recent objects (``memoryCapacity``, 96 MiB by
/// default: room for a pack of the 64 MiB `--pack-size`, which ends a little past it), so the
/// reads of its other ranges that follow, as in a restore, do not fetch it again. One too
/// large for that window too is read by ranges from then on.
///
/// Only objects whose name never gets new contents may be kept warm (packs, which are named by
/// their content): a cached copy is not checked against the backend again. Writes go to the
/// backend first; listings, sizes and deletes always ask the backend.
public final class CachingBackend: Backend {
    public let remote: any Backend
    public let capacity: Int
    /// Bytes of whole objects the disk did not keep that are held in memory.
    public let memoryCapacity: Int
    private let cache: LocalDirectoryBackend
    private let keepWarm: @Sendable (String) -> Bool
    private let evictFirst: @Sendable (String) -> Bool
    /// Whole-object fetches under way, so concurrent first reads of one pack fetch it once.
    private let fetches = Mutex<[String: Task<[UInt8], any Error>]>([:])
    /// Copies of fetched objects being written to the disk.
    private let admissions = Mutex<[String: Task<Void, Never>]>([:])

    private struct Entry {
        var size: Int
        var lastUse: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
        var hits = 0
        var misses = 0
        /// Whole objects the disk did not keep, most recently used last.
        var window: [(name: String, bytes: [UInt8])] = []
        var windowBytes = 0
        /// Objects kept neither on disk nor in the window: read by ranges.
        var tooLarge: Set<String> = []
    }

    private let state = Mutex(State())

    /// How the cache has served reads.
    public struct Statistics: Sendable, Hashable {
        public var hits: Int
        public var misses: Int
        public var bytes: Int
        public var objects: Int
    }

    /// - Parameters:
    ///   - remote: the backend behind the cache.
    ///   - directory: where cached objects are kept; what an earlier run left there is reused.
    ///   - capacity: bytes the cache may hold.
    ///   - keepWarm: which objects to keep (by default every pack).
    ///   - evictFirst: which kept objects go before the others when room is needed.
    ///   - memoryCapacity: bytes of whole objects the disk did not keep to hold in memory.
    public init(
        remote: any Backend, directory: String, capacity: Int,
        keepWarm: @escaping @Sendable (String) -> Bool = { $0.hasPrefix("packs/") },
        evictFirst: @escaping @Sendable (String) -> Bool = { _ in false },
        memoryCapacity: Int = 96 << 20
    ) async throws {
        self.remote = remote
        self.capacity = max(0, capacity)
        self.memoryCapacity = max(0, memoryCapacity)
        self.keepWarm = keepWarm
        self.evictFirst = evictFirst
        cache = try LocalDirectoryBackend(root: directory)
        // Copies are written after readers are served, so an exit can cut one short.
        cache.removeTemporaryFiles(olderThan: .seconds(60))
        var initial = State()
        for object in try await cache.list(prefix: "") {
            initial.entries[object.name] = Entry(size: object.size, lastUse: 0)
            initial.bytes += object.size
        }
        state.withLock { $0 = initial }
        await evict(toFit: 0)
    }

    public var statistics: Statistics {
        state.withLock { Statistics(hits: $0.hits, misses: $0.misses, bytes: $0.bytes, objects: $0.entries.count) }
    }

    // MARK: Backend

    /// Writes through to the backend; a copy is kept only once the object is read, so a large
    /// backup does not also fill the local disk.
    public func put(_ name: String, _ data: [UInt8]) async throws {
        try ObjectName.validate(name)
        try await forget(name)
        try await remote.put(name, data)
    }

    /// Reads ahead the local copy, when the cache holds one; the backend behind is not asked.
    public func readAhead(_ name: String) async {
        guard state.withLock({ $0.entries[name] != nil }) else { return }
        await cache.readAhead(name)
    }

    public func get(_ name: String) async throws -> [UInt8] {
        try ObjectName.validate(name)
        if let bytes = fromWindow(name) { return bytes }
        if touch(name), let bytes = try? await cache.get(name) { return bytes }
        guard keepWarm(name) else { return try await remote.get(name) }
        return try await fetchWhole(name)
    }

    public func get(_ name: String, range: Range<Int>) async throws -> [UInt8] {
        try await read(name, range: range, wantsWhole: keepWarm(name))
    }

    /// A range read in passing (see ``Backend/scan(_:range:objectSize:)``): an object to keep
    /// warm is fetched whole while the cache has room for it without evicting anything, so a
    /// fresh machine's first open of a store that fits downloads each pack once; otherwise
    /// only the range is read.
    public func scan(_ name: String, range: Range<Int>, objectSize: Int) async throws -> [UInt8] {
        try await read(name, range: range, wantsWhole: keepWarm(name) && state.withLock { $0.bytes + objectSize <= capacity })
    }

    /// A range from the cache when it holds the object; else, when `wantsWhole` (asked only then),
    /// from the whole object, fetched and kept so the next ranges are local; else from the
    /// backend.
    private func read(_ name: String, range: Range<Int>, wantsWhole: @autoclosure () -> Bool) async throws -> [UInt8] {
        try ObjectName.validate(name)
        let whole: [UInt8]
        if let held = fromWindow(name) {
            whole = held
        } else {
            if touch(name), let bytes = try? await cache.get(name, range: range) { return bytes }
            guard wantsWhole(), !state.withLock({ $0.tooLarge.contains(name) }) else { return try await remote.get(name, range: range) }
            whole = try await fetchWhole(name)
        }
        guard range.lowerBound >= 0, range.upperBound <= whole.count else {
            throw BackendError(
                code: .rangeNotSatisfiable, objectName: name,
                message: "bytes \(range.lowerBound)..<\(range.upperBound) are not all within object '\(name)' (\(whole.count) bytes)")
        }
        return Array(whole[range])
    }

    /// Fetches the objects to keep warm among `objects` whole, `width` at a time, in order, while
    /// the cache has room for them without evicting anything: what is about to be read on a
    /// machine whose cache is empty, fetched while it does other work. Failures are left for
    /// the reads that follow to report.
    public func prefetch(_ objects: [ObjectInfo], width: Int = 4) async {
        var planned = 0
        let wanted = objects.filter { object in
            guard keepWarm(object.name) else { return false }
            let fits = state.withLock { $0.entries[object.name] == nil && $0.bytes + planned + object.size <= capacity }
            if fits { planned += object.size }
            return fits
        }
        await withTaskGroup(of: Void.self) { group in
            for (number, object) in wanted.enumerated() {
                if number >= width { await group.next() }
                if Task.isCancelled { break }
                group.addTask { [self] in _ = try? await fetchWhole(object.name) }
            }
        }
        await settle()
    }

    /// Waits until the copies of everything fetched so far are written and synced (or given up,
    /// when the disk refuses them).
    public func settle() async {
        while true {
            let pending = admissions.withLock { Array($0.values) }
            if pending.isEmpty { return }
            for admission in pending { await admission.value }
        }
    }

    public func info(_ name: String) async throws -> ObjectInfo? {
        try await remote.info(name)
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        try await remote.list(prefix: prefix)
    }

    public func delete(_ name: String) async throws {
        try ObjectName.validate(name)
        try await forget(name)
        try await remote.delete(name)
    }

    public func delete(_ names: [String]) async throws {
        for name in names { try ObjectName.validate(name) }
        for name in names { try await forget(name) }
        try await remote.delete(names)
    }

    // MARK: Cache

    /// Fetches an object whole and keeps it, once however many readers ask at the same time.
    /// Readers get the fetched bytes at once; the copy is written and synced to the disk after,
    /// and until it is there they are served from the fetch.
    private func fetchWhole(_ name: String) async throws -> [UInt8] {
        // Another reader's fetch may have just finished.
        if state.withLock({ $0.entries[name] != nil }), let bytes = try? await cache.get(name) { return bytes }
        let task = fetches.withLock { fetches in
            if let running = fetches[name] { return running }
            let task = Task { [self] () async throws -> [UInt8] in
                let bytes: [UInt8]
                do {
                    bytes = try await remote.get(name)
                } catch {
                    self.fetches.withLock { $0[name] = nil }
                    throw error
                }
                self.admissions.withLock { admissions in
                    admissions[name] = Task {
                        if await !self.admit(name, bytes) { self.hold(name, bytes) }
                        self.fetches.withLock { $0[name] = nil }
                        self.admissions.withLock { $0[name] = nil }
                    }
                }
                return bytes
            }
            fetches[name] = task
            return task
        }
        return try await task.value
    }

    /// Whether the object is cached; counts a hit (and makes it the most recently used) or a miss.
    private func touch(_ name: String) -> Bool {
        state.withLock { state in
            guard state.entries[name] != nil else {
                state.misses += 1
                return false
            }
            state.clock += 1
            state.entries[name]!.lastUse = state.clock
            state.hits += 1
            return true
        }
    }

    /// Keeps a copy, first dropping the least recently used objects to make room; returns
    /// whether the disk holds it now. An object larger than the whole cache is not kept.
    private func admit(_ name: String, _ data: [UInt8]) async -> Bool {
        guard data.count <= capacity else { return false }
        await evict(toFit: data.count)
        let reserved = state.withLock { state -> Bool in
            guard state.entries[name] == nil, state.bytes + data.count <= capacity else { return false }
            state.clock += 1
            state.entries[name] = Entry(size: data.count, lastUse: state.clock)
            state.bytes += data.count
            return true
        }
        guard reserved else { return state.withLock { $0.entries[name] != nil } }
        do {
            try await cache.put(name, data)
            // Evicted while it was being written: the file must not outlive its entry.
            if state.withLock({ $0.entries[name] == nil }) {
                try? await cache.delete(name)
                return false
            }
            return true
        } catch {
            // A cache that cannot be written (a full disk) only costs speed.
            state.withLock { state in
                if let entry = state.entries.removeValue(forKey: name) { state.bytes -= entry.size }
            }
            return false
        }
    }

    /// Holds an object the disk did not keep in the memory window, dropping the least recently
    /// used ones to make room; one larger than the window is marked to be read by ranges.
    private func hold(_ name: String, _ data: [UInt8]) {
        state.withLock { state in
            guard data.count <= memoryCapacity else {
                state.tooLarge.insert(name)
                return
            }
            state.window.removeAll { $0.name == name }
            state.window.append((name, data))
            state.windowBytes += data.count
            while state.windowBytes > memoryCapacity {
                state.windowBytes -= state.window.removeFirst().bytes.count
            }
        }
    }

    /// The object from the memory window (now its most recently used, and a hit), if it is there.
    private func fromWindow(_ name: String) -> [UInt8]? {
        state.withLock { state in
            guard let index = state.window.lastIndex(where: { $0.name == name }) else { return nil }
            let held = state.window.remove(at: index)
            state.window.append(held)
            state.hits += 1
            return held.bytes
        }
    }

    /// Drops least recently used objects until `incoming` more bytes fit.
    private func evict(toFit incoming: Int) async {
        let victims = state.withLock { state -> [String] in
            var victims: [String] = []
            let byAge = state.entries.sorted { a, b in
                let (first, second) = (evictFirst(a.key), evictFirst(b.key))
                return first != second ? first : a.value.lastUse < b.value.lastUse
            }
            var index = 0
            while state.bytes + incoming > capacity, index < byAge.count {
                let (name, entry) = byAge[index]
                state.entries[name] = nil
                state.bytes -= entry.size
                victims.append(name)
                index += 1
            }
            return victims
        }
        for name in victims { try? await cache.delete(name) }
    }

    private func forget(_ name: String) async throws {
        // A copy still being written would bring back what a write or delete replaces.
        if let admission = admissions.withLock({ $0[name] }) { await admission.value }
        let cached = state.withLock { state -> Bool in
            if let index = state.window.firstIndex(where: { $0.name == name }) {
                state.windowBytes -= state.window.remove(at: index).bytes.count
            }
            state.tooLarge.remove(name)
            guard let entry = state.entries.removeValue(forKey: name) else { return false }
            state.bytes -= entry.size
            return true
        }
        if cached { try? await cache.delete(name) }
    }
}
