/// A stored object's name and size.
public struct ObjectInfo: Sendable, Hashable {
    /// The object's name (see ``ObjectName``).
    public let name: String
    /// The object's size in bytes.
    public let size: Int

    /// Describes object `name` of `size` bytes.
    public init(name: String, size: Int) {
        self.name = name
        self.size = size
    }
}

/// Where objects live: a flat namespace of immutable byte strings addressed by name.
///
/// Names follow ``ObjectName``; every operation refuses an invalid name with `.invalidName`.
/// Implementations: ``LocalDirectoryBackend`` (the embedded default) and ``MemoryBackend``
/// (tests). Every implementation must pass `BackendConformance` in InfinityTestSupport.
public protocol Backend: Sendable {
    /// Stores `data` under `name`, replacing any existing object. Atomic: a reader sees the
    /// old object or the complete new one, never a mixture or a partial write.
    func put(_ name: String, _ data: [UInt8]) async throws

    /// The whole object. Throws `.notFound` naming the object when it does not exist.
    func get(_ name: String) async throws -> [UInt8]

    /// The bytes of `range` inside the object. The range must lie within `0...size`
    /// (an empty range is allowed anywhere in there); otherwise `.rangeNotSatisfiable`.
    func get(_ name: String, range: Range<Int>) async throws -> [UInt8]

    /// The object's size, or nil when it does not exist.
    func info(_ name: String) async throws -> ObjectInfo?

    /// Every object whose name starts with `prefix` (plain string prefix; "" lists all),
    /// sorted by name in byte order. Incomplete writes are never listed.
    func list(prefix: String) async throws -> [ObjectInfo]

    /// The bytes of `range` inside an object of `objectSize` bytes, read in passing (the end of
    /// each pack while indexing): a cache in front keeps the whole object only while it has
    /// room to spare, so indexing a large store does not push out what the cache holds. By
    /// default the same as ``get(_:range:)``.
    func scan(_ name: String, range: Range<Int>, objectSize: Int) async throws -> [UInt8]

    /// Removes the object. Deleting a missing object is not an error.
    func delete(_ name: String) async throws

    /// Removes every object in `names`; missing ones are not an error. Backends that can remove
    /// many objects in one request (S3) do; the default deletes them one by one.
    func delete(_ names: [String]) async throws

    /// A hint that the object will be read soon: a local directory starts reading its file into
    /// the page cache and returns without waiting. Errors and missing objects are ignored. By
    /// default nothing is done.
    func readAhead(_ name: String) async
}

extension Backend {
    public func scan(_ name: String, range: Range<Int>, objectSize: Int) async throws -> [UInt8] {
        try await get(name, range: range)
    }

    public func readAhead(_ name: String) async {}

    public func delete(_ names: [String]) async throws {
        for name in names { try ObjectName.validate(name) }
        for name in names { try await delete(name) }
    }
}

/// The object-name rules shared by every backend.
///
/// A name is relative and `/`-separated; each segment is one or more of `A-Z a-z 0-9 . _ -`
/// and is neither `.` nor `..`; there is no leading, trailing or doubled `/`; the whole name
/// is at most ``maximumByteCount`` bytes. These names are safe as file paths below a root
/// directory and as S3 keys.
public enum ObjectName {
    /// The longest name allowed, in bytes.
    public static let maximumByteCount = 1024

    /// Throws `.invalidName`, naming `name` and the broken rule, unless `name` is valid.
    public static func validate(_ name: String) throws {
        if let problem = problem(in: name) {
            throw BackendError(code: .invalidName, objectName: name, message: "invalid object name '\(name)': \(problem)")
        }
    }

    /// Whether `name` follows the rules.
    public static func isValid(_ name: String) -> Bool {
        problem(in: name) == nil
    }

    /// Whether `segment` is valid as one `/`-free part of a name.
    static func isValidSegment<Bytes: Collection<UInt8>>(_ segment: Bytes) -> Bool {
        !segment.isEmpty
            && segment.allSatisfy(isAllowed)
            && !segment.elementsEqual(".".utf8)
            && !segment.elementsEqual("..".utf8)
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    /// One pass over the bytes, with no allocation: every chunk read checks its pack's name.
    private static func problem(in name: String) -> String? {
        let bytes = name.utf8
        if bytes.isEmpty { return "the name is empty" }
        if bytes.count > maximumByteCount {
            return "the name is \(bytes.count) bytes long, more than \(maximumByteCount)"
        }
        if bytes.first == UInt8(ascii: "/") { return "the name must be relative (no leading '/')" }
        // The segment being read: its length, and how many of its bytes are dots.
        var length = 0
        var dots = 0
        func segmentProblem() -> String? {
            if length == 0 { return "the name has an empty segment ('//' or a trailing '/')" }
            if dots == length && length <= 2 { return "the segments '.' and '..' are not allowed" }
            return nil
        }
        for byte in bytes {
            if byte == UInt8(ascii: "/") {
                if let problem = segmentProblem() { return problem }
                (length, dots) = (0, 0)
                continue
            }
            guard isAllowed(byte) else { return "segments may only contain A-Z, a-z, 0-9, '.', '_' and '-'" }
            length += 1
            if byte == UInt8(ascii: ".") { dots += 1 }
        }
        return segmentProblem()
    }
}

/// A backend that can replace an object only if nobody changed it since it was read: a
/// compare-and-swap on one object, which is how writers on several machines take turns.
public protocol ConditionalWrites: Backend {
    /// The object's bytes and a tag that changes whenever the object does; nil when it is absent.
    func getVersioned(_ name: String) async throws -> (bytes: [UInt8], version: String)?

    /// Stores `data` only if the object is still at `expected` (nil: only if it does not exist),
    /// and returns the new version.
    ///
    /// - Throws: ``BackendError/Code/preconditionFailed`` naming the object when it is not.
    @discardableResult
    func put(_ name: String, _ data: [UInt8], ifVersion expected: String?) async throws -> String
}
