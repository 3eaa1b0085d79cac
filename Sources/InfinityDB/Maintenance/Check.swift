import InfinityPacks

/// One thing a check found wrong, naming the object at fault.
public struct CheckProblem: Sendable, Hashable, Codable, CustomStringConvertible {
    /// What kind of damage (in JSON, the raw value).
    public enum Code: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
        /// The index lists a pack the backend does not hold.
        case missingPack = "missing pack"
        /// The backend holds a pack the index does not list.
        case unindexedPack = "unindexed pack"
        /// The index and the backend disagree on a pack's size.
        case packSizeMismatch = "pack size mismatch"
        /// A pack read whole does not match its name, or its trailer does not authenticate.
        case damagedPack = "damaged pack"
        /// An index entry lies outside its pack, or disagrees with the pack's trailer.
        case badIndexEntry = "bad index entry"
        /// A reachable chunk is not in the index.
        case missingChunk = "missing chunk"
        /// A chunk read from its pack fails decryption or verification.
        case damagedChunk = "damaged chunk"
        /// A ref, or HEAD, or the refs database, cannot be read.
        case brokenRef = "broken ref"
        /// A reflog entry cannot be read.
        case brokenReflog = "broken reflog entry"
        /// A commit cannot be read, or its signature does not verify.
        case brokenCommit = "broken commit"
        /// A tree node, a stored value or a blob cannot be read or decoded.
        case brokenTree = "broken tree"

        public var description: String { rawValue }
    }

    public let code: Code
    /// The object at fault: `pack packs/ab/…`, `chunk 0123…`, `commit 0123…`, `ref refs/heads/main`,
    /// `key "x" in field "books" of commit 0123…`.
    public let object: String
    /// What is wrong with it.
    public let message: String

    public init(_ code: Code, object: String, message: String) {
        self.code = code
        self.object = object
        self.message = message
    }

    public var description: String { "\(object): \(message)" }
}

/// Which packs a check reads whole, decrypting and verifying every chunk.
public enum ReadDataSelection: Sendable, Hashable, CustomStringConvertible {
    /// None: the structure only.
    case none
    /// Every pack.
    case all
    /// A share of the packs (0 to 1), chosen at random, so that repeated checks cover different packs.
    case fraction(Double)
    /// The `n`-th (from 1) of `t` groups of packs, by the first bytes of their names, so that `t`
    /// checks with `n` from 1 to `t` read every pack once.
    case group(Int, of: Int)

    /// Parses `10%` (or `2.5%`) and `n/t`, as `--read-data-subset` takes them.
    ///
    /// - Throws: ``DatabaseError/Code/invalidArgument`` saying what is accepted.
    public init(parsing text: String) throws {
        func invalid() -> DatabaseError {
            DatabaseError(.invalidArgument, "read-data subset '\(text)' is neither a percentage (10%) nor a group n/t (2/5, 1 ≤ n ≤ t)")
        }
        if text.hasSuffix("%") {
            guard let percent = Double(text.dropLast()), percent > 0, percent <= 100 else { throw invalid() }
            self = .fraction(percent / 100)
            return
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = Int(parts[0]), let t = Int(parts[1]), t >= 1, (1...t).contains(n) else { throw invalid() }
        self = .group(n, of: t)
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .all: "all"
        case .fraction(let share): "\(share * 100)%"
        case .group(let n, let t): "\(n)/\(t)"
        }
    }

    /// The packs to read, in name order.
    func choose(from names: [String]) -> [String] {
        switch self {
        case .none: return []
        case .all: return names.sorted()
        case .fraction(let share):
            let count = Int((Double(names.count) * share).rounded(.up))
            return Array(names.shuffled().prefix(count)).sorted()
        case .group(let n, let t):
            return names.filter { Self.groupNumber(of: $0) % UInt64(t) == UInt64(n - 1) }.sorted()
        }
    }

    /// A pack's name ends in the hex SHA-256 of its trailer, evenly spread: its first 16 digits.
    private static func groupNumber(of name: String) -> UInt64 {
        let last = name.split(separator: "/").last.map(String.init) ?? name
        return UInt64(last.prefix(16), radix: 16) ?? 0
    }
}

/// Counts of what a check looked at.
public struct CheckSummary: Sendable, Hashable, Codable {
    /// Packs in the backend.
    public var packs = 0
    /// Chunks in the index.
    public var indexedChunks = 0
    /// Refs, HEAD included.
    public var refs = 0
    public var reflogEntries = 0
    /// Reflog entries released by `forget` or older than the reflog expiry gc recorded: their
    /// commits may be deleted, so they are not walked.
    public var expiredReflogEntries = 0
    /// Commits walked (each once).
    public var commits = 0
    /// Distinct chunks reachable from the refs and the reflog.
    public var reachableChunks = 0
    /// Packs read whole (`--read-data`).
    public var packsRead = 0
    public var bytesRead = 0
    /// Chunks decrypted and verified.
    public var chunksVerified = 0
    /// Chunks in the packs read that nothing reachable refers to: their keys are unknown, so only
    /// their place in the pack's trailer is checked (a garbage collection would remove them).
    public var chunksUnreferenced = 0

    public init() {}
}

/// What a check found.
public struct CheckReport: Sendable, Hashable, Codable {
    public var problems: [CheckProblem] = []
    public var summary = CheckSummary()

    public init() {}

    /// Whether nothing is wrong.
    public var isClean: Bool { problems.isEmpty }
}

/// How far a check has got.
public struct CheckProgress: Sendable, Hashable {
    public enum Phase: String, Sendable, Hashable {
        /// Comparing the backend's packs with the index.
        case packs
        /// Reading refs and the reflog, and walking everything reachable from them.
        case walk
        /// Reading packs whole and verifying their chunks.
        case readData
    }

    public var phase: Phase
    /// Plaintext bytes reached (walk) or pack bytes read (read data).
    public var bytes: Int
    /// Pack bytes to read in all (read data), else nil.
    public var totalBytes: Int?
}

extension Store {
    /// Checks the packs and the chunk index without the history: every pack the index lists is in
    /// the backend with the same size and the other way round, every index entry lies inside its
    /// pack, and, with `readData`, the chosen packs match their names and their trailers
    /// authenticate and agree with the index. Chunks are not decrypted (their keys are in the
    /// trees): ``Database/check(readData:progress:)`` does that.
    ///
    /// - Throws: only when the check cannot run (the backend cannot be listed, the index cannot
    ///   be read); damage is reported in the result.
    public func check(
        readData: ReadDataSelection = .none, progress: (CheckProgress) -> Void = { _ in }
    ) async throws -> CheckReport {
        try await Checker.run(store: self, database: nil, readData: readData, progress: progress)
    }
}

extension Database {
    /// Checks the whole store: what ``Store/check(readData:progress:)`` checks, and that every ref,
    /// HEAD and reflog entry names a commit that loads and whose signature verifies, that every
    /// chunk reachable from them (commits, index and field nodes, long values, referenced blobs) is
    /// in the index inside a pack the backend holds, and that every tree node decodes and fits its
    /// parent. With `readData`, the chosen packs are read in name order and every chunk in them
    /// that something refers to is decrypted and verified.
    ///
    /// - Throws: only when the check cannot run; damage is reported in the result, each problem
    ///   naming the pack, chunk, commit, ref or field.
    public func check(
        readData: ReadDataSelection = .none, progress: (CheckProgress) -> Void = { _ in }
    ) async throws -> CheckReport {
        try await Checker.run(store: store, database: self, readData: readData, progress: progress)
    }
}
