import Foundation
import InfinityChunks
import Testing

// MARK: - Helpers

/// SplitMix64, used both for test data and to rebuild `GearTable.unkeyed` independently.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Fills `buffer` with pseudo-random bytes, eight at a time.
private func fillRandom(_ buffer: UnsafeMutableRawBufferPointer, _ generator: inout SeededGenerator) {
    var offset = 0
    while offset + 8 <= buffer.count {
        buffer.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self)
        offset += 8
    }
    if offset < buffer.count {
        let last = generator.next()
        for index in offset..<buffer.count {
            buffer[index] = UInt8(truncatingIfNeeded: last >> (8 * UInt64(index - offset)))
        }
    }
}

private func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { fillRandom($0, &generator) }
    return bytes
}

/// 64-bit FNV-1a of a chunk's bytes.
private func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }
    return hash
}

/// Content hashes of the chunks of `bytes`, in order.
private func chunkHashes(_ bytes: [UInt8], _ chunker: Chunker) -> [UInt64] {
    bytes.withUnsafeBytes { raw in
        var offset = 0
        return chunker.chunkLengths(of: raw).map { length in
            defer { offset += length }
            return fnv1a(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + length]))
        }
    }
}

/// Streams `bytes` through a `ChunkStream`, each read returning a random amount.
private func streamedLengths(
    _ bytes: [UInt8], _ chunker: Chunker, readSize: Int, seed: UInt64
) -> (lengths: [Int], hashes: [UInt64]) {
    var stream = ChunkStream(chunker: chunker, readSize: readSize)
    var generator = SeededGenerator(seed: seed)
    var offset = 0
    var lengths: [Int] = []
    var hashes: [UInt64] = []
    bytes.withUnsafeBytes { source in
        stream.run(
            read: { destination in
                let available = min(destination.count, source.count - offset)
                guard available > 0 else { return 0 }
                let count = Int.random(in: 1...available, using: &generator)
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<offset + count]))
                offset += count
                return count
            },
            consume: { chunk in
                lengths.append(chunk.count)
                hashes.append(fnv1a(chunk))
            })
    }
    return (lengths, hashes)
}

/// Checks that `lengths` cover `count` bytes exactly and respect the size bounds.
private func expectWellFormed(_ lengths: [Int], count: Int, _ parameters: ChunkerParameters) {
    #expect(lengths.reduce(0, +) == count)
    for length in lengths.dropLast() {
        #expect(length >= parameters.minimumSize && length <= parameters.maximumSize)
    }
    if let last = lengths.last {
        #expect(last >= 1 && last <= parameters.maximumSize)
    }
}

/// Small parameters with the presets' proportions (minimum = average / 2, maximum = 8 × average).
private let smallParameters = try! ChunkerParameters(minimumSize: 2048, averageSize: 4096, maximumSize: 32768)

/// The boundary rule written out as plainly as possible: recompute the 64-byte gear hash of
/// every candidate from scratch. The fast chunker must agree with it byte for byte.
private func referenceLengths(_ bytes: [UInt8], _ parameters: ChunkerParameters, gear: [UInt64]) -> [Int] {
    let strictMask = ~UInt64(0) << UInt64(64 - (parameters.averageSize.trailingZeroBitCount + 2))
    let looseMask = ~UInt64(0) << UInt64(64 - (parameters.averageSize.trailingZeroBitCount - 2))
    var lengths: [Int] = []
    var start = 0
    while start < bytes.count {
        let remaining = bytes.count - start
        var length = min(remaining, parameters.maximumSize)
        if remaining >= parameters.minimumSize {
            for candidate in parameters.minimumSize...min(remaining, parameters.maximumSize) {
                var hash: UInt64 = 0
                for index in (start + candidate - 64)..<(start + candidate) {
                    hash = (hash &<< 1) &+ gear[Int(bytes[index])]
                }
                let mask = candidate < parameters.averageSize ? strictMask : looseMask
                if hash & mask == 0 {
                    length = candidate
                    break
                }
            }
        }
        lengths.append(length)
        start += length
    }
    return lengths
}

private func unkeyedEntries() -> [UInt64] {
    var generator = SeededGenerator(seed: 0)
    return (0..<256).map { _ in generator.next() }
}

private func littleEndianBytes(_ entries: [UInt64]) -> [UInt8] {
    entries.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
}

/// Random stretches interleaved with runs of one repeated byte, so chunks end in every way:
/// strict-mask cuts, loose-mask cuts, forced cuts at the maximum, and a short final chunk.
private func mixedBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    while bytes.count < count {
        let run = Int.random(in: 1...20_000, using: &generator)
        if Bool.random(using: &generator) {
            bytes += randomBytes(run, seed: generator.next())
        } else {
            bytes += repeatElement(UInt8.random(in: 0...255, using: &generator), count: run)
        }
    }
    return Array(bytes.prefix(count))
}

// MARK: - Parameters

@Suite struct ChunkerParametersTests {
    @Test func presetsAreValid() throws {
        for preset in [ChunkerParameters.fileData, .metadata] {
            let checked = try ChunkerParameters(
                minimumSize: preset.minimumSize, averageSize: preset.averageSize, maximumSize: preset.maximumSize)
            #expect(checked == preset)
        }
        #expect(ChunkerParameters.fileData.minimumSize == 512 << 10)
        #expect(ChunkerParameters.fileData.averageSize == 1 << 20)
        #expect(ChunkerParameters.fileData.maximumSize == 8 << 20)
        #expect(ChunkerParameters.metadata.minimumSize == 2 << 10)
        #expect(ChunkerParameters.metadata.averageSize == 8 << 10)
        #expect(ChunkerParameters.metadata.maximumSize == 64 << 10)
        #expect(ChunkerParameters.fileData.strictMaskBits == 22)
        #expect(ChunkerParameters.fileData.looseMaskBits == 18)
    }

    @Test func edgeValuesAreAccepted() throws {
        _ = try ChunkerParameters(minimumSize: 64, averageSize: 64, maximumSize: 64)
        _ = try ChunkerParameters(minimumSize: 64, averageSize: 64 << 20, maximumSize: 64 << 20)
        _ = try ChunkerParameters(minimumSize: 100, averageSize: 128, maximumSize: 1000)
    }

    @Test(arguments: [
        (-1, 1024, 4096, "minimumSize -1"),
        (0, 1024, 4096, "minimumSize 0"),
        (63, 1024, 4096, "minimumSize 63"),
        (2048, 1024, 4096, "averageSize 1024 is below minimumSize 2048"),
        (512, 1000, 4096, "averageSize 1000 is not a power of two"),
        (512, 3072, 4096, "averageSize 3072 is not a power of two"),
        (512, 1024, 1023, "maximumSize 1023 is below averageSize 1024"),
        (512, 1024, (64 << 20) + 1, "maximumSize 67108865"),
        (512, 1024, Int.max, "maximumSize \(Int.max)"),
    ])
    func invalidValuesAreNamed(minimum: Int, average: Int, maximum: Int, expected: String) {
        do {
            _ = try ChunkerParameters(minimumSize: minimum, averageSize: average, maximumSize: maximum)
            Issue.record("accepted \(minimum)/\(average)/\(maximum)")
        } catch let error as ChunkerError {
            #expect(error.code == .invalidParameters)
            #expect(error.message.contains(expected), "\(error.message)")
            #expect("\(error)".contains(expected))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func codableRoundTripValidates() throws {
        let data = try JSONEncoder().encode(ChunkerParameters.metadata)
        #expect(try JSONDecoder().decode(ChunkerParameters.self, from: data) == .metadata)

        let bad = Data(#"{"minimumSize":2048,"averageSize":3000,"maximumSize":65536}"#.utf8)
        #expect {
            try JSONDecoder().decode(ChunkerParameters.self, from: bad)
        } throws: { error in
            (error as? ChunkerError)?.message.contains("averageSize 3000") == true
        }
    }
}

// MARK: - Gear table

@Suite struct GearTableTests {
    @Test(arguments: [0, 1, 2047, 2049, 4096])
    func wrongKeySizeIsRejected(size: Int) {
        #expect {
            try GearTable(keyMaterial: [UInt8](repeating: 7, count: size))
        } throws: { error in
            guard let error = error as? ChunkerError else { return false }
            return error.code == .invalidKeyMaterial && error.message.contains("\(size) bytes")
        }
    }

    @Test func allZeroKeyIsRejected() {
        #expect(throws: ChunkerError.self) {
            try GearTable(keyMaterial: [UInt8](repeating: 0, count: 2048))
        }
    }

    /// Key material is read as little-endian UInt64s, and `unkeyed` is SplitMix64 from seed 0:
    /// a table keyed with SplitMix64's outputs in little-endian order must chunk identically.
    @Test func keyMaterialIsLittleEndianAndUnkeyedIsSplitMix() throws {
        let entries = unkeyedEntries()
        #expect(entries[0] == 0xE220_A839_7B1D_CDAF)  // SplitMix64's published first output for seed 0
        let bytes = randomBytes(1 << 20, seed: 11)
        let reference = Chunker(parameters: smallParameters, table: .unkeyed).chunkLengths(of: bytes)

        let littleEndian = try GearTable(keyMaterial: littleEndianBytes(entries))
        #expect(Chunker(parameters: smallParameters, table: littleEndian).chunkLengths(of: bytes) == reference)

        let bigEndian = try GearTable(keyMaterial: littleEndianBytes(entries.map(\.byteSwapped)))
        #expect(Chunker(parameters: smallParameters, table: bigEndian).chunkLengths(of: bytes) != reference)
    }

    @Test func differentKeysGiveDifferentBoundaries() throws {
        let bytes = randomBytes(4 << 20, seed: 12)
        let keyA = try GearTable(keyMaterial: randomBytes(2048, seed: 100))
        let keyB = try GearTable(keyMaterial: randomBytes(2048, seed: 101))
        let keyAAgain = try GearTable(keyMaterial: randomBytes(2048, seed: 100))

        let lengthsA = Chunker(parameters: smallParameters, table: keyA).chunkLengths(of: bytes)
        let lengthsB = Chunker(parameters: smallParameters, table: keyB).chunkLengths(of: bytes)
        let lengthsAAgain = Chunker(parameters: smallParameters, table: keyAAgain).chunkLengths(of: bytes)
        let unkeyed = Chunker(parameters: smallParameters, table: .unkeyed).chunkLengths(of: bytes)

        #expect(lengthsA == lengthsAAgain)
        #expect(lengthsA != lengthsB)
        #expect(lengthsA != unkeyed)

        // Not merely shifted: boundary offsets under two keys barely coincide.
        func offsets(_ lengths: [Int]) -> Set<Int> {
            var sum = 0
            return Set(lengths.dropLast().map { sum += $0; return sum })
        }
        let shared = offsets(lengthsA).intersection(offsets(lengthsB)).count
        #expect(shared * 10 < lengthsA.count, "\(shared) of \(lengthsA.count) boundaries shared")
    }
}

// MARK: - Chunker

@Suite struct ChunkerTests {
    let chunker = Chunker(parameters: smallParameters, table: .unkeyed)

    @Test func emptyInputGivesNoChunks() {
        #expect(chunker.chunkLengths(of: [UInt8]()) == [])
        [UInt8]().withUnsafeBytes { empty in
            #expect(chunker.nextBoundary(in: empty, isFinal: true) == nil)
            #expect(chunker.nextBoundary(in: empty, isFinal: false) == nil)
        }
        var stream = ChunkStream(chunker: chunker)
        var reads = 0
        var chunks = 0
        stream.run(read: { _ in reads += 1; return 0 }, consume: { _ in chunks += 1 })
        #expect(reads == 1)
        #expect(chunks == 0)
    }

    @Test(arguments: [1, 63, 64, 2047, 2048])
    func inputUpToMinimumGivesOneChunk(count: Int) {
        let bytes = randomBytes(count, seed: UInt64(count))
        #expect(chunker.chunkLengths(of: bytes) == [count])
        bytes.withUnsafeBytes { raw in
            #expect(chunker.nextBoundary(in: raw, isFinal: true) == count)
            #expect(chunker.nextBoundary(in: raw, isFinal: false) == nil)
        }
        #expect(streamedLengths(bytes, chunker, readSize: 100, seed: 1).lengths == [count])
    }

    @Test(arguments: [0 as UInt64, 1, 2, 3])
    func chunksCoverInputWithinBounds(seed: UInt64) {
        for count in [2049, 32768, 32769, 100_000, 3 << 20] {
            let random = randomBytes(count, seed: seed &+ UInt64(count))
            expectWellFormed(chunker.chunkLengths(of: random), count: count, smallParameters)
            let mixed = mixedBytes(count, seed: seed &+ UInt64(count))
            expectWellFormed(chunker.chunkLengths(of: mixed), count: count, smallParameters)
        }
        let metadata = Chunker(parameters: .metadata, table: .unkeyed)
        let bytes = mixedBytes(2 << 20, seed: seed)
        expectWellFormed(metadata.chunkLengths(of: bytes), count: bytes.count, .metadata)
    }

    /// The optimized loop (unrolled, resumable, cut-point skipping) against the rule written out.
    @Test(arguments: [
        try! ChunkerParameters(minimumSize: 64, averageSize: 64, maximumSize: 64),
        try! ChunkerParameters(minimumSize: 64, averageSize: 256, maximumSize: 1024),
        try! ChunkerParameters(minimumSize: 100, averageSize: 256, maximumSize: 700),
        try! ChunkerParameters(minimumSize: 512, averageSize: 512, maximumSize: 4096),
        try! ChunkerParameters(minimumSize: 300, averageSize: 1024, maximumSize: 1024),
    ])
    func matchesReferenceRule(parameters: ChunkerParameters) {
        let gear = unkeyedEntries()
        let fast = Chunker(parameters: parameters, table: .unkeyed)
        for seed: UInt64 in [5, 6] {
            for bytes in [randomBytes(150_000, seed: seed), mixedBytes(150_000, seed: seed)] {
                let expected = referenceLengths(bytes, parameters, gear: gear)
                #expect(fast.chunkLengths(of: bytes) == expected)
                #expect(streamedLengths(bytes, fast, readSize: 333, seed: seed).lengths == expected)
            }
        }
    }

    /// A byte repeated forever hashes to one constant, so every chunk is cut at the minimum (strict
    /// mask matches), at the average (only the loose one does) or at the maximum (neither).
    @Test func constantInputIsCutAtMinimumOrMaximum() {
        var sawMaximum = false
        for value in 0...255 {
            let bytes = [UInt8](repeating: UInt8(value), count: 100_000)
            let lengths = chunker.chunkLengths(of: bytes)
            expectWellFormed(lengths, count: bytes.count, smallParameters)
            let body = Set(lengths.dropLast())
            #expect(body == [smallParameters.minimumSize] || body == [smallParameters.maximumSize]
                || body == [smallParameters.averageSize], "byte \(value): \(body)")
            sawMaximum = sawMaximum || body == [smallParameters.maximumSize]
        }
        #expect(sawMaximum)
    }

    @Test func nextBoundaryAsksForMoreOnlyWhenItMust() throws {
        // A run that is never cut: the boundary is forced at the maximum.
        let value = try #require((0...255).first { value in
            chunker.chunkLengths(of: [UInt8](repeating: UInt8(value), count: 40_000)).first
                == smallParameters.maximumSize
        })
        let uncut = [UInt8](repeating: UInt8(value), count: 40_000)
        uncut.withUnsafeBytes { raw in
            let maximum = smallParameters.maximumSize
            #expect(chunker.nextBoundary(in: UnsafeRawBufferPointer(rebasing: raw[..<(maximum - 1)]), isFinal: false) == nil)
            #expect(chunker.nextBoundary(in: UnsafeRawBufferPointer(rebasing: raw[..<(maximum - 1)]), isFinal: true) == maximum - 1)
            #expect(chunker.nextBoundary(in: UnsafeRawBufferPointer(rebasing: raw[..<maximum]), isFinal: false) == maximum)
            #expect(chunker.nextBoundary(in: raw, isFinal: false) == maximum)
        }

        // Random data: every prefix that contains the first cut reports it; shorter ones ask for more.
        let bytes = randomBytes(1 << 20, seed: 21)
        let lengths = chunker.chunkLengths(of: bytes)
        bytes.withUnsafeBytes { raw in
            var offset = 0
            for length in lengths.prefix(20) {
                let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                #expect(chunker.nextBoundary(in: rest, isFinal: false) == length)
                #expect(chunker.nextBoundary(in: UnsafeRawBufferPointer(rebasing: rest[..<length]), isFinal: false) == length)
                #expect(chunker.nextBoundary(in: UnsafeRawBufferPointer(rebasing: rest[..<(length - 1)]), isFinal: false) == nil)
                #expect(chunker.nextBoundary(in: UnsafeRawBufferPointer(rebasing: rest[..<(length - 1)]), isFinal: true) == length - 1)
                offset += length
            }
        }
    }

    @Test func averageSizeIsNearTarget() {
        // Small parameters with the presets' proportions, and the metadata preset itself.
        for (parameters, count) in [(smallParameters, 32 << 20), (ChunkerParameters.metadata, 32 << 20)] {
            let lengths = Chunker(parameters: parameters, table: .unkeyed)
                .chunkLengths(of: randomBytes(count, seed: 31))
            let mean = Double(count) / Double(lengths.count)
            let ratio = mean / Double(parameters.averageSize)
            #expect(ratio > 0.75 && ratio < 1.25, "\(parameters): mean \(mean), \(ratio)× average")
        }
    }

    @Test func averageSizeOfFileDataIsNearTarget() {
        let count = 256 << 20
        let lengths = Chunker(parameters: .fileData, table: .unkeyed).chunkLengths(of: randomBytes(count, seed: 32))
        let ratio = Double(count) / Double(lengths.count) / Double(ChunkerParameters.fileData.averageSize)
        #expect(ratio > 0.75 && ratio < 1.25, "\(lengths.count) chunks, \(ratio)× average")
    }

    /// THE property of content-defined chunking: an insertion near the start of a large input
    /// changes only the chunks around it; everything after resynchronizes.
    @Test func insertionNearStartChangesOnlyAFewChunks() {
        let chunker = Chunker(parameters: .fileData, table: .unkeyed)
        let original = randomBytes(64 << 20, seed: 41)
        var edited = original
        edited.insert(contentsOf: [0xDE, 0xAD, 0xBE, 0xEF, 0x42], at: 1000)

        let before = chunkHashes(original, chunker)
        let after = chunkHashes(edited, chunker)
        let changed = Set(after).subtracting(before)
        #expect(before.count > 40)
        #expect(changed.count <= 2, "\(changed.count) of \(after.count) chunks changed")
        #expect(Array(after.suffix(before.count - 2)) == Array(before.suffix(before.count - 2)))
    }

    @Test(arguments: [0 as UInt64, 1, 2])
    func editsInTheMiddleChangeOnlyAFewChunks(seed: UInt64) {
        let original = randomBytes(8 << 20, seed: 50 + seed)
        var generator = SeededGenerator(seed: seed)
        let position = Int.random(in: 1 << 20 ..< 7 << 20, using: &generator)
        let before = chunkHashes(original, chunker)

        var inserted = original
        inserted.insert(contentsOf: randomBytes(17, seed: seed), at: position)
        var deleted = original
        deleted.removeSubrange(position..<position + 300)
        var overwritten = original
        overwritten[position] ^= 0xFF

        for edited in [inserted, deleted, overwritten] {
            let after = chunkHashes(edited, chunker)
            let changed = Set(after).subtracting(before).count
            #expect(changed >= 1 && changed <= 3, "\(changed) of \(after.count) chunks changed")
        }
    }
}

// MARK: - Streaming

@Suite struct ChunkStreamTests {
    @Test(arguments: [1, 7, 4096, 50_000, 1 << 20, 4 << 20])
    func sameBoundariesWhateverTheReadSizes(readSize: Int) {
        let chunker = Chunker(parameters: smallParameters, table: .unkeyed)
        for bytes in [randomBytes(3 << 20, seed: 61), mixedBytes(3 << 20, seed: 62)] {
            let expected = chunkHashes(bytes, chunker)
            let expectedLengths = chunker.chunkLengths(of: bytes)
            let streamed = streamedLengths(bytes, chunker, readSize: readSize, seed: UInt64(readSize))
            #expect(streamed.lengths == expectedLengths)
            #expect(streamed.hashes == expected)
        }
    }

    @Test func metadataStreamMatches() {
        let chunker = Chunker(parameters: .metadata, table: .unkeyed)
        let bytes = mixedBytes(4 << 20, seed: 63)
        #expect(streamedLengths(bytes, chunker, readSize: 10_000, seed: 3).lengths == chunker.chunkLengths(of: bytes))
    }

    /// 256 MiB made up on the fly: the stream keeps one buffer of fixed size and never holds
    /// the input.
    @Test func largeStreamUsesOneFixedBuffer() {
        let parameters = ChunkerParameters.fileData
        let chunker = Chunker(parameters: parameters, table: .unkeyed)
        var stream = ChunkStream(chunker: chunker, readSize: 1 << 20)
        let capacity = stream.bufferCapacity
        #expect(capacity == parameters.maximumSize + max(1 << 20, parameters.maximumSize / 2))

        let total = 256 << 20
        var produced = 0
        var generator = SeededGenerator(seed: 71)
        var lengths: [Int] = []
        var largestRead = 0
        stream.run(
            read: { destination in
                largestRead = max(largestRead, destination.count)
                let count = min(destination.count, total - produced)
                fillRandom(UnsafeMutableRawBufferPointer(rebasing: destination[..<count]), &generator)
                produced += count
                return count
            },
            consume: { chunk in
                #expect(chunk.count <= parameters.maximumSize)
                lengths.append(chunk.count)
            })
        #expect(stream.bufferCapacity == capacity)
        #expect(largestRead == 1 << 20)
        expectWellFormed(lengths, count: total, parameters)
        #expect(lengths.count > 150)
    }

    @Test func streamIsReusable() {
        let chunker = Chunker(parameters: smallParameters, table: .unkeyed)
        let bytes = randomBytes(1 << 20, seed: 81)
        var stream = ChunkStream(chunker: chunker, readSize: 5000)
        for _ in 0..<2 {
            var offset = 0
            var lengths: [Int] = []
            bytes.withUnsafeBytes { source in
                stream.run(
                    read: { destination in
                        let count = min(destination.count, source.count - offset)
                        destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<offset + count]))
                        offset += count
                        return count
                    },
                    consume: { lengths.append($0.count) })
            }
            #expect(lengths == chunker.chunkLengths(of: bytes))
        }
    }

    struct Stop: Error, Equatable {}

    @Test func errorsFromReadAndConsumeStopTheRun() {
        let chunker = Chunker(parameters: smallParameters, table: .unkeyed)
        var stream = ChunkStream(chunker: chunker, readSize: 4096)

        var reads = 0
        #expect(throws: Stop.self) {
            try stream.run(
                read: { destination in
                    reads += 1
                    if reads == 3 { throw Stop() }
                    return destination.count
                },
                consume: { _ in })
        }
        #expect(reads == 3)

        var consumed = 0
        #expect(throws: Stop.self) {
            try stream.run(
                read: { $0.count },  // endless input of whatever the buffer holds
                consume: { _ in
                    consumed += 1
                    if consumed == 5 { throw Stop() }
                })
        }
        #expect(consumed == 5)
    }
}
