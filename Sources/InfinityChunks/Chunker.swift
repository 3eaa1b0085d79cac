// Content-defined chunking: FastCDC (Xia et al., USENIX ATC 2016; IEEE TPDS 2020) with a keyed
// gear table, normalized chunking (level 2) and cut-point skipping.
//
// The boundary rule, stated once so every other piece can rely on it:
//
//   H(end) = Σ_{k=0..<64} gear[data[end - 1 - k]] << k            (wrapping UInt64 arithmetic)
//
// is the gear hash of the 64 bytes that precede offset `end`. Because `hash = (hash << 1) &+ gear[b]`
// shifts every byte out after 64 steps, H depends on those 64 bytes and on nothing else. A chunk
// that starts at offset 0 of `data` ends at the first length `L` with
//
//   minimumSize <= L < averageSize  and  H(L) & strictMask == 0,   or
//   averageSize <= L <= maximumSize and  H(L) & looseMask  == 0,
//
// and at `maximumSize` if there is none. Bytes before `minimumSize - 64` are never hashed (cut-point
// skipping); the 63 bytes before the first candidate only warm the hash up. That warm-up is what
// makes every candidate a property of the content alone, not of where the chunk started, so a scan
// can stop anywhere and resume later (`ChunkStream` relies on this) and an edit disturbs only the
// chunks around it.
//
// The masks cover the *high* bits of the hash. Bit `k` of a gear hash depends only on the last
// `k + 1` bytes, so a low-bit mask would decide boundaries on a window of a dozen or so bytes
// (weak against repetitive data and easy to steer); the high bits see the whole 64-byte window.

/// An invalid chunker parameter or gear-table key.
public struct ChunkerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of mistake it was; new codes may be added.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// A `ChunkerParameters` value is out of range or inconsistent with the others.
        public static let invalidParameters = Code("invalidParameters")
        /// The key material for a `GearTable` has the wrong size or is degenerate.
        public static let invalidKeyMaterial = Code("invalidKeyMaterial")

        public var description: String { name }
    }

    /// What kind of mistake it was.
    public let code: Code
    /// A human-readable explanation that names the offending value.
    public let message: String

    /// An error of kind `code`; `message` must name the offending value and never a secret.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "ChunkerError.\(code): \(message)" }
}

/// Sizes that shape content-defined chunks.
///
/// With normalization level 2, chunks of random data average somewhat more than `averageSize`
/// (about 1.19 × for ``fileData``, 1.14 × for ``metadata``): the strict mask makes cuts before
/// `averageSize` rare, and the loose one makes them come on average `averageSize / 4` bytes after.
///
/// The sizes are read-only outside the validating initializers: the chunker's pointer loops rely
/// on `minimumSize >= 64`, so an invalid value must not be representable.
public struct ChunkerParameters: Sendable, Hashable, Codable, CustomStringConvertible {
    /// No chunk except the last of a stream is shorter. At least 64 (one gear-hash window).
    public private(set) var minimumSize: Int
    /// The normalization point: the stricter mask applies before it, the looser one from it on.
    /// A power of two.
    public private(set) var averageSize: Int
    /// No chunk is longer. At most ``largestMaximumSize``.
    public private(set) var maximumSize: Int

    /// The smallest accepted `minimumSize`: the gear hash window.
    public static let smallestMinimumSize = 64
    /// The largest accepted `maximumSize` (64 MiB), which bounds a stream's buffer.
    public static let largestMaximumSize = 64 << 20

    /// File contents: minimum 512 KiB, average 1 MiB, maximum 8 MiB.
    public static let fileData = ChunkerParameters(
        uncheckedMinimumSize: 512 << 10, averageSize: 1 << 20, maximumSize: 8 << 20)

    /// Tree nodes and other metadata: minimum 2 KiB, average 8 KiB, maximum 64 KiB.
    public static let metadata = ChunkerParameters(
        uncheckedMinimumSize: 2 << 10, averageSize: 8 << 10, maximumSize: 64 << 10)

    /// Validates the sizes: `64 <= minimumSize <= averageSize <= maximumSize <= 64 MiB` and
    /// `averageSize` a power of two.
    ///
    /// - Throws: ``ChunkerError`` with code `invalidParameters`, naming the bad value.
    public init(minimumSize: Int, averageSize: Int, maximumSize: Int) throws {
        func invalid(_ message: String) -> ChunkerError {
            ChunkerError(code: .invalidParameters, message: "invalid chunker parameters: " + message)
        }
        guard minimumSize >= Self.smallestMinimumSize else {
            throw invalid("minimumSize \(minimumSize) is below \(Self.smallestMinimumSize) (the gear hash window)")
        }
        guard averageSize >= minimumSize else {
            throw invalid("averageSize \(averageSize) is below minimumSize \(minimumSize)")
        }
        guard averageSize.nonzeroBitCount == 1 else {
            throw invalid("averageSize \(averageSize) is not a power of two")
        }
        guard maximumSize >= averageSize else {
            throw invalid("maximumSize \(maximumSize) is below averageSize \(averageSize)")
        }
        guard maximumSize <= Self.largestMaximumSize else {
            throw invalid("maximumSize \(maximumSize) is above \(Self.largestMaximumSize) (64 MiB)")
        }
        self.init(uncheckedMinimumSize: minimumSize, averageSize: averageSize, maximumSize: maximumSize)
    }

    private init(uncheckedMinimumSize minimumSize: Int, averageSize: Int, maximumSize: Int) {
        self.minimumSize = minimumSize
        self.averageSize = averageSize
        self.maximumSize = maximumSize
    }

    /// Decodes and validates, so a stored configuration cannot smuggle in bad sizes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            minimumSize: try container.decode(Int.self, forKey: .minimumSize),
            averageSize: try container.decode(Int.self, forKey: .averageSize),
            maximumSize: try container.decode(Int.self, forKey: .maximumSize))
    }

    /// Number of high hash bits that must be zero for a cut before `averageSize`.
    public var strictMaskBits: Int { averageSize.trailingZeroBitCount + 2 }
    /// Number of high hash bits that must be zero for a cut from `averageSize` on.
    public var looseMaskBits: Int { averageSize.trailingZeroBitCount - 2 }

    public var description: String {
        "ChunkerParameters(minimum: \(minimumSize), average: \(averageSize), maximum: \(maximumSize))"
    }
}

/// The 256 random 64-bit values of the gear hash: the chunker's key.
///
/// Keyed boundaries stop an observer of chunk sizes from fingerprinting known files, so
/// production tables come from ``init(keyMaterial:)`` with bytes derived (HKDF) from the agent's
/// chunker secret. The entries live in memory owned by one object that zeroes them when dropped.
public struct GearTable: Sendable {
    /// Bytes of key material: 256 little-endian `UInt64`s.
    public static let keyMaterialSize = 256 * 8

    let storage: Storage

    /// Builds the table from exactly 2048 bytes, read as 256 little-endian `UInt64`s.
    ///
    /// - Throws: ``ChunkerError`` with code `invalidKeyMaterial` for any other size, or for
    ///   all-zero bytes (a table of zeros cuts every chunk at the minimum; zeros are what an
    ///   uninitialized key buffer holds, never an HKDF output).
    public init(keyMaterial: [UInt8]) throws {
        self = try keyMaterial.withUnsafeBytes { try GearTable(keyMaterial: $0) }
    }

    /// Builds the table straight from key bytes held elsewhere (for example in `SecureBytes`), so
    /// no unwiped copy of the key material is made.
    public init(keyMaterial: UnsafeRawBufferPointer) throws {
        guard keyMaterial.count == Self.keyMaterialSize else {
            throw ChunkerError(
                code: .invalidKeyMaterial,
                message: "gear table key material is \(keyMaterial.count) bytes; expected \(Self.keyMaterialSize)")
        }
        guard keyMaterial.contains(where: { $0 != 0 }) else {
            throw ChunkerError(
                code: .invalidKeyMaterial, message: "gear table key material is all zero bytes")
        }
        storage = Storage { index in
            var value: UInt64 = 0
            for byte in 0..<8 {
                value |= UInt64(keyMaterial[index * 8 + byte]) << (8 * byte)
            }
            return value
        }
    }

    /// A fixed table for tests and examples only — it is public knowledge, so boundaries made
    /// with it can be fingerprinted. Entry `i` is the `i`-th output (from 0) of SplitMix64
    /// seeded with 0.
    public static let unkeyed: GearTable = {
        var generator = SplitMix64(seed: 0)
        var entries = [UInt64]()
        entries.reserveCapacity(256)
        for _ in 0..<256 { entries.append(generator.next()) }
        return GearTable(storage: Storage { entries[$0] })
    }()

    private init(storage: Storage) { self.storage = storage }

    /// Owns the 256 entries at a stable address so the hot loop reads them through a plain
    /// pointer (no array bounds checks, no retain/release per call).
    ///
    /// `@unchecked Sendable`: the memory is written only in `init` and then only read until
    /// `deinit`, which no other reference can outlive.
    final class Storage: @unchecked Sendable {
        let entries: UnsafeMutablePointer<UInt64>

        init(_ entry: (Int) -> UInt64) {
            entries = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
            for index in 0..<256 { (entries + index).initialize(to: entry(index)) }
        }

        deinit {
            // Key-derived bytes are wiped before the memory goes back to the allocator.
            entries.update(repeating: 0, count: 256)
            entries.deallocate()
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): the fixed generator behind ``GearTable/unkeyed``.
private struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Finds content-defined chunk boundaries. A value type with no mutable state: share it freely.
public struct Chunker: Sendable {
    /// The sizes this chunker cuts to.
    public let parameters: ChunkerParameters
    /// The key that makes boundaries unpredictable to anyone without it.
    public let table: GearTable
    private let strictMask: UInt64
    private let looseMask: UInt64

    /// A chunker cutting to `parameters` with the gear hash keyed by `table`.
    public init(parameters: ChunkerParameters, table: GearTable) {
        self.parameters = parameters
        self.table = table
        strictMask = ~UInt64(0) << UInt64(64 - parameters.strictMaskBits)
        looseMask = ~UInt64(0) << UInt64(64 - parameters.looseMaskBits)
    }

    /// Returns the length of the next chunk at the start of `data`.
    ///
    /// When `isFinal` is true (no more input follows) the answer is a length in `1...data.count`,
    /// or nil if `data` is empty. When it is false and no cut point lies in `data` while
    /// `data.count < maximumSize`, returns nil: supply more bytes and ask again. A cut found in a
    /// prefix is the cut of the whole input, so the answer never depends on how input arrives.
    public func nextBoundary(in data: UnsafeRawBufferPointer, isFinal: Bool) -> Int? {
        guard let base = data.baseAddress, !data.isEmpty else { return nil }
        var checkedThrough = 0
        if let cut = findCut(in: base, count: data.count, checkedThrough: &checkedThrough) {
            return cut
        }
        return isFinal ? data.count : nil
    }

    /// All chunk lengths of a complete in-memory buffer, in order; they add up to `data.count`.
    public func chunkLengths(of data: UnsafeRawBufferPointer) -> [Int] {
        guard let base = data.baseAddress, !data.isEmpty else { return [] }
        var lengths = [Int]()
        lengths.reserveCapacity(data.count / parameters.averageSize + 1)
        var offset = 0
        while offset < data.count {
            var checkedThrough = 0
            let remaining = data.count - offset
            let length = findCut(in: base + offset, count: remaining, checkedThrough: &checkedThrough) ?? remaining
            lengths.append(length)
            offset += length
        }
        return lengths
    }

    /// All chunk lengths of a byte array.
    public func chunkLengths(of bytes: [UInt8]) -> [Int] {
        bytes.withUnsafeBytes { chunkLengths(of: $0) }
    }

    /// The cut for a chunk starting at `base`, or nil if none lies in the first `count` bytes
    /// (only possible when `count < maximumSize`).
    ///
    /// `checkedThrough` says which chunk lengths are already known not to be cuts, so a caller
    /// that gets nil, appends bytes and asks again resumes where the last scan stopped instead
    /// of hashing the chunk again. Start it at 0 for each new chunk.
    @inline(__always)
    func findCut(in base: UnsafeRawPointer, count: Int, checkedThrough: inout Int) -> Int? {
        let minimumSize = parameters.minimumSize
        let averageSize = parameters.averageSize
        let maximumSize = parameters.maximumSize
        let limit = Swift.min(count, maximumSize)
        let first = Swift.max(minimumSize, checkedThrough &+ 1)
        if first <= limit {
            let gear = UnsafePointer(table.storage.entries)
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            var hash: UInt64 = 0
            // Warm-up: the 63 bytes before the first candidate's last byte (see the rule at the top).
            var index = first &- 64
            while index < first &- 1 {
                hash = (hash &<< 1) &+ gear[Int(bytes[index])]
                index &+= 1
            }
            // `index` is now the last byte of candidate length `index + 1`.
            let strictEnd = Swift.min(averageSize, limit &+ 1) &- 1
            if let cut = Self.scan(bytes, gear, &hash, from: index, to: strictEnd, mask: strictMask) {
                return cut
            }
            if let cut = Self.scan(bytes, gear, &hash, from: Swift.max(index, strictEnd), to: limit, mask: looseMask) {
                return cut
            }
        }
        if count >= maximumSize { return maximumSize }
        checkedThrough = Swift.max(checkedThrough, limit)
        return nil
    }

    /// Hashes `bytes[from..<to]` onto `hash` and returns `i + 1` for the first `i` at which
    /// `hash & mask == 0`, or nil.
    @inline(__always)
    private static func scan(
        _ bytes: UnsafePointer<UInt8>, _ gear: UnsafePointer<UInt64>, _ hash: inout UInt64,
        from start: Int, to end: Int, mask: UInt64
    ) -> Int? {
        var h = hash
        var i = start
        // Four bytes per round. The next round's hash is (h << 4) + a term that does not depend
        // on h, so the loop-carried chain is two instructions per four bytes instead of two per
        // byte; the three intermediate hashes are computed off that chain for the mask tests.
        while i &+ 4 <= end {
            let g0 = gear[Int(bytes[i])]
            let g1 = gear[Int(bytes[i &+ 1])]
            let g2 = gear[Int(bytes[i &+ 2])]
            let g3 = gear[Int(bytes[i &+ 3])]
            let t1 = g0
            let t2 = (t1 &<< 1) &+ g1
            let t3 = (t2 &<< 1) &+ g2
            let t4 = (t3 &<< 1) &+ g3
            let h1 = (h &<< 1) &+ t1
            let h2 = (h &<< 2) &+ t2
            let h3 = (h &<< 3) &+ t3
            let h4 = (h &<< 4) &+ t4
            if (h1 & mask == 0) || (h2 & mask == 0) || (h3 & mask == 0) || (h4 & mask == 0) {
                if h1 & mask == 0 { return i &+ 1 }
                if h2 & mask == 0 { return i &+ 2 }
                if h3 & mask == 0 { return i &+ 3 }
                return i &+ 4
            }
            h = h4
            i &+= 4
        }
        while i < end {
            h = (h &<< 1) &+ gear[Int(bytes[i])]
            if h & mask == 0 { return i &+ 1 }
            i &+= 1
        }
        hash = h
        return nil
    }
}

/// Chunks a stream of any length in bounded memory.
///
/// One buffer of `maximumSize + max(readSize, maximumSize / 2)` bytes is allocated when the
/// stream is made and reused by every ``run(read:consume:)``; no other allocation grows with the
/// input. Boundaries are exactly those ``Chunker/chunkLengths(of:)`` finds on the whole input,
/// whatever sizes `read` returns.
public struct ChunkStream: Sendable {
    /// The chunker that picks the boundaries.
    public let chunker: Chunker
    /// The most bytes asked of `read` at once.
    public let readSize: Int
    private var buffer: [UInt8]

    /// - Parameter readSize: the largest read handed to the source; values below 1 count as 1.
    public init(chunker: Chunker, readSize: Int = 4 << 20) {
        self.chunker = chunker
        self.readSize = Swift.max(1, readSize)
        let maximumSize = chunker.parameters.maximumSize
        // The slack keeps compaction (moving an unfinished chunk to the front) rare even when
        // reads are small: at least maximumSize / 2 bytes arrive between two compactions.
        let slack = Swift.max(self.readSize, maximumSize / 2)
        buffer = [UInt8](repeating: 0, count: maximumSize + slack)
    }

    /// Bytes held by the stream's single buffer; constant for the stream's lifetime.
    public var bufferCapacity: Int { buffer.count }

    /// Reads the whole source and hands every chunk, in order, to `consume`.
    ///
    /// - Parameters:
    ///   - read: fills a prefix of the buffer it is given (at most `readSize` bytes) and returns
    ///     how many bytes it wrote; 0 means the end of the input.
    ///   - consume: receives each chunk. The pointer is valid only during the call.
    /// - Throws: whatever `read` or `consume` throws; the run stops there.
    public mutating func run(
        read: (UnsafeMutableRawBufferPointer) throws -> Int,
        consume: (UnsafeRawBufferPointer) throws -> Void
    ) rethrows {
        let chunker = self.chunker
        let readSize = self.readSize
        try buffer.withUnsafeMutableBytes { storage in
            let base = storage.baseAddress!
            let capacity = storage.count
            var start = 0  // first byte of the unfinished chunk
            var end = 0  // end of buffered input
            var checkedThrough = 0  // lengths of the unfinished chunk known not to be cuts
            var atEnd = false
            while true {
                if !atEnd {
                    if capacity - end < readSize {
                        // Less than maximumSize is pending here, so this frees more than the slack.
                        let pending = end - start
                        base.copyMemory(from: base + start, byteCount: pending)
                        start = 0
                        end = pending
                    }
                    let space = UnsafeMutableRawBufferPointer(start: base + end, count: readSize)
                    let filled = try read(space)
                    precondition(
                        filled >= 0 && filled <= readSize,
                        "ChunkStream: read returned \(filled) for a buffer of \(readSize) bytes")
                    if filled == 0 { atEnd = true } else { end += filled }
                }
                while start < end {
                    let pending = end - start
                    let length: Int
                    if let cut = chunker.findCut(in: base + start, count: pending, checkedThrough: &checkedThrough) {
                        length = cut
                    } else if atEnd {
                        length = pending
                    } else {
                        break
                    }
                    try consume(UnsafeRawBufferPointer(start: base + start, count: length))
                    start += length
                    checkedThrough = 0
                }
                if atEnd { return }
            }
        }
    }
}
