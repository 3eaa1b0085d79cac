import InfinityCompression
import Testing

@Suite struct ZstdTests {
    /// Deterministic incompressible bytes (this target does not depend on InfinityTestSupport).
    private func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var generator = SplitMix64(state: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }

    private struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var mixed = state
            mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
            mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
            return mixed ^ (mixed >> 31)
        }
    }

    private let text = Array(
        String(repeating: "InfinityDB stores encrypted, versioned objects in packs of sealed chunks. ", count: 2000).utf8
    )

    @Test func textRoundTripsAndShrinks() throws {
        let compressor = try ZstdCompressor()
        let decompressor = try ZstdDecompressor()
        let compressed = try compressor.compress(text)
        #expect(compressed.count < text.count / 10)
        #expect(try decompressor.decompress(compressed, expectedSize: text.count) == text)
    }

    @Test func randomDataRoundTrips() throws {
        let compressor = try ZstdCompressor(level: 1)
        let decompressor = try ZstdDecompressor()
        for (count, seed) in [(1, UInt64(1)), (1000, 2), (1 << 20, 3)] {
            let data = randomBytes(count: count, seed: seed)
            let compressed = try compressor.compress(data)
            #expect(compressed.count <= Zstd.compressBound(count))
            #expect(try decompressor.decompress(compressed, expectedSize: count) == data)
        }
    }

    @Test func contextsAreReusedAcrossManyCalls() throws {
        let compressor = try ZstdCompressor()
        let decompressor = try ZstdDecompressor()
        for index in 0..<50 {
            let data = Array(text.prefix(index * 997))
            let compressed = try compressor.compress(data)
            #expect(try decompressor.decompress(compressed, expectedSize: data.count) == data)
        }
    }

    @Test func emptyInputRoundTrips() throws {
        let compressed = try ZstdCompressor().compress([])
        #expect(!compressed.isEmpty)
        #expect(try ZstdDecompressor().decompress(compressed, expectedSize: 0) == [])
    }

    @Test func incompressibleDataReturnsNilIntoASmallerBuffer() throws {
        let compressor = try ZstdCompressor()
        let data = randomBytes(count: 64 * 1024, seed: 4)
        var output = [UInt8](repeating: 0, count: data.count - 1)
        let size = try data.withUnsafeBytes { input in
            try output.withUnsafeMutableBytes { try compressor.compress(input, into: $0) }
        }
        #expect(size == nil)

        // Compressible data in the same size of buffer fits, and decompresses from it.
        let shrunk = try text.withUnsafeBytes { input in
            try output.withUnsafeMutableBytes { try compressor.compress(input, into: $0) }
        }
        let compressedSize = try #require(shrunk)
        #expect(compressedSize < text.count)
        var restored = [UInt8](repeating: 0, count: text.count)
        let restoredSize = try output.withUnsafeBytes { compressed in
            try restored.withUnsafeMutableBytes {
                try ZstdDecompressor().decompress(UnsafeRawBufferPointer(rebasing: compressed[..<compressedSize]), into: $0)
            }
        }
        #expect(restoredSize == text.count)
        #expect(restored == text)
    }

    @Test func corruptInputThrows() throws {
        let decompressor = try ZstdDecompressor()
        let compressed = try ZstdCompressor().compress(text)

        var badMagic = compressed
        badMagic[0] ^= 0xFF
        let error = #expect(throws: CompressionError.self) {
            try decompressor.decompress(badMagic, expectedSize: text.count)
        }
        #expect(error?.code == .corruptInput)

        for garbage in [[], [0x28], randomBytes(count: 100, seed: 5)] {
            let error = #expect(throws: CompressionError.self) {
                try decompressor.decompress(garbage, expectedSize: 10)
            }
            #expect(error?.code == .corruptInput)
        }

        // The context stays usable after failures.
        #expect(try decompressor.decompress(compressed, expectedSize: text.count) == text)
    }

    @Test func truncatedFramesThrow() throws {
        let decompressor = try ZstdDecompressor()
        let data = randomBytes(count: 10_000, seed: 6) + text
        let compressed = try ZstdCompressor().compress(data)
        for length in [1, 4, 10, compressed.count / 2, compressed.count - 1] {
            let error = #expect(throws: CompressionError.self, "truncated to \(length) bytes") {
                try decompressor.decompress(Array(compressed.prefix(length)), expectedSize: data.count)
            }
            #expect(error?.code == .corruptInput, "truncated to \(length) bytes")
            #expect(error?.zstdErrorName != nil || error?.message.contains("frame header") == true)
        }
    }

    @Test func damagedFramesNeverCrash() throws {
        // Without a checksum a damaged frame may decode to other bytes; what must hold is that
        // it throws or produces exactly the expected size, and never crashes.
        let decompressor = try ZstdDecompressor()
        let data = randomBytes(count: 5000, seed: 7) + text.prefix(20_000)
        let compressed = try ZstdCompressor().compress(Array(data))
        var generator = SplitMix64(state: 8)
        var failures = 0
        for _ in 0..<500 {
            var damaged = compressed
            let position = Int.random(in: 0..<damaged.count, using: &generator)
            damaged[position] ^= UInt8.random(in: 1...255, using: &generator)
            do {
                let output = try decompressor.decompress(damaged, expectedSize: data.count)
                #expect(output.count == data.count)
            } catch {
                #expect(error is CompressionError)
                failures += 1
            }
        }
        #expect(failures > 0)
    }

    @Test func wrongExpectedSizeThrows() throws {
        let decompressor = try ZstdDecompressor()
        let compressed = try ZstdCompressor().compress(text)
        for expected in [0, text.count - 1, text.count + 1, text.count * 2] {
            let error = #expect(throws: CompressionError.self) {
                try decompressor.decompress(compressed, expectedSize: expected)
            }
            #expect(error?.code == .sizeMismatch)
            #expect(error?.message.contains("\(expected)") == true)
        }
        let negative = #expect(throws: CompressionError.self) {
            try decompressor.decompress(compressed, expectedSize: -1)
        }
        #expect(negative?.code == .invalidArgument)
    }

    @Test func sizeMismatchIsCaughtWithoutAContentSizeInTheHeader() throws {
        // A frame whose header omits the content size (as streaming compressors write it):
        // bytes 28 b5 2f fd, descriptor 0x00 (no size, no checksum), window byte, then one
        // last raw block "abc" (header 0x19 0x00 0x00 = last, raw, size 3).
        let frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, 0x19, 0x00, 0x00] + Array("abc".utf8)
        let decompressor = try ZstdDecompressor()
        #expect(try decompressor.decompress(frame, expectedSize: 3) == Array("abc".utf8))
        let error = #expect(throws: CompressionError.self) { try decompressor.decompress(frame, expectedSize: 5) }
        #expect(error?.code == .sizeMismatch)
        let smaller = #expect(throws: CompressionError.self) { try decompressor.decompress(frame, expectedSize: 2) }
        #expect(smaller?.code == .sizeMismatch)
    }

    @Test func invalidLevelIsRefused() throws {
        let error = #expect(throws: CompressionError.self) { try ZstdCompressor(level: 1000) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("1000") == true)
        #expect(try ZstdCompressor(level: Zstd.levels.upperBound).level == Zstd.levels.upperBound)
        #expect(try ZstdCompressor(level: -5).compress(text).count < text.count)
    }

    /// Letters in random order repeat too little for a fast level to find matches, and such a
    /// level leaves literals raw; coding every literal shrinks them all the same.
    @Test func aFastLevelThatCodesLiteralsShrinksTextWithoutRepeats() throws {
        var random = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijklmnopqrstuvwxyz ".utf8)
        let text = (0..<2048).map { _ in letters[Int(random.next() % UInt64(letters.count))] }
        let plain = try ZstdCompressor(level: -3)
        let coding = try ZstdCompressor(level: -3, alwaysCompressesLiterals: true)
        #expect(coding.alwaysCompressesLiterals && !plain.alwaysCompressesLiterals)
        let plainSize = try text.withUnsafeBytes { input in
            var output = [UInt8](repeating: 0, count: Zstd.compressBound(input.count))
            return try output.withUnsafeMutableBytes { try plain.compress(input, into: $0) }
        }
        let coded = try coding.compress(text)
        #expect(plainSize! > text.count * 9 / 10)
        #expect(coded.count < text.count * 7 / 10)
        #expect(try ZstdDecompressor().decompress(coded, expectedSize: text.count) == text)
    }

    @Test func smallerMatchTablesStillRoundTripAndBadOnesAreRefused() throws {
        let compressor = try ZstdCompressor(level: 3, matchTables: (hashLog: 16, chainLog: 14))
        let compressed = try compressor.compress(text)
        #expect(compressed.count < text.count)
        #expect(try ZstdDecompressor().decompress(compressed, expectedSize: text.count) == text)
        let error = #expect(throws: CompressionError.self) { try ZstdCompressor(level: 3, matchTables: (hashLog: 40, chainLog: 14)) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("hash table log 40") == true)
    }

    @Test func libraryFacts() {
        #expect(Zstd.versionString.hasPrefix("1."))
        #expect(Zstd.compressBound(0) > 0)
        #expect(Zstd.compressBound(1 << 20) >= 1 << 20)
    }
}
