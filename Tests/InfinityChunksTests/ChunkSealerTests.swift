import InfinityCompression
import InfinityCrypto
import InfinityPacks
import Testing

@testable import InfinityChunks

/// Text-like bytes that compress well.
func textLike(_ count: Int, seed: Int = 0) -> [UInt8] {
    let words = ["alpha ", "beta ", "gamma ", "delta\n", "infinity ", "store ", "chunk ", "pack "]
    var out = [UInt8]()
    out.reserveCapacity(count + 16)
    var state = UInt64(seed) &+ 0x9E37_79B9_7F4A_7C15
    while out.count < count {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        out += Array(words[Int(state >> 61)].utf8)
    }
    return Array(out.prefix(count))
}

/// Random bytes (incompressible).
func randomBytes(_ count: Int) -> [UInt8] {
    SecureRandom.bytes(count: count)
}

@Suite struct ChunkSealerTests {
    let sealer = ChunkSealer(contentKey: .random(count: 32))

    func seal(_ plaintext: [UInt8]) throws -> (ChunkRef, [UInt8]) {
        let ref = plaintext.withUnsafeBytes { sealer.reference(for: $0) }
        let sealed = try plaintext.withUnsafeBytes { try sealer.seal($0, as: ref, compressor: try ZstdCompressor()) }
        return (ref, sealed)
    }

    @Test(arguments: [0, 1, 100, 70_000])
    func roundTrip(count: Int) throws {
        for plaintext in [textLike(count), randomBytes(count)] {
            let (ref, sealed) = try seal(plaintext)
            #expect(ref.length == count)
            #expect(try ChunkSealer.open(sealed, as: ref, decompressor: try ZstdDecompressor()) == plaintext)
        }
    }

    @Test func compressesOnlyWhenItShrinks() throws {
        let text = textLike(100_000)
        let (_, sealedText) = try seal(text)
        #expect(sealedText.count < text.count / 3)
        #expect(sealedText[1] & 1 == 1)
        let noise = randomBytes(100_000)
        let (_, sealedNoise) = try seal(noise)
        #expect(sealedNoise.count == noise.count + ChunkSealer.overhead)
        #expect(sealedNoise[1] & 1 == 0)
    }

    /// Metadata is sealed at level −3 with every literal coded while the store's level is 0 to 3;
    /// faster levels and levels above 3 apply as they are.
    @Test func metadataUsesAFastLevelThatCodesLiterals() {
        let key = SecureBytes.random(count: 32)
        let levels: [(Int32, Int32, Bool)] = [(3, -3, true), (2, -3, true), (1, -3, true), (0, -3, true), (-3, -3, false), (4, 4, false), (19, 19, false)]
        for (store, metadata, allLiterals) in levels {
            let sealer = ChunkSealer(contentKey: key, compressionLevel: store)
            #expect(sealer.metadataCompressionLevel == metadata && sealer.metadataCompressesAllLiterals == allLiterals, "store level \(store)")
        }
    }

    /// The default level compresses data with smaller match tables; other levels keep zstd's.
    @Test func dataAtTheDefaultLevelUsesSmallerMatchTables() {
        let key = SecureBytes.random(count: 32)
        #expect(ChunkSealer(contentKey: key).dataMatchTables.map { [$0.hashLog, $0.chainLog] } == [16, 14])
        for level: Int32 in [1, 2, 4, 19, -3] { #expect(ChunkSealer(contentKey: key, compressionLevel: level).dataMatchTables == nil) }
    }

    @Test func convergentWithinAnAgentOpaqueAcrossAgents() throws {
        let data = textLike(5000)
        let first = data.withUnsafeBytes { sealer.reference(for: $0) }
        let second = data.withUnsafeBytes { sealer.reference(for: $0) }
        #expect(first == second)
        let other = ChunkSealer(contentKey: .random(count: 32))
        #expect(data.withUnsafeBytes { other.reference(for: $0) }.id != first.id)
        let (_, sealedOnce) = try seal(data)
        let (_, sealedTwice) = try seal(data)
        #expect(sealedOnce != sealedTwice, "nonces are random, so sealing twice differs")
    }

    @Test func everyFlippedBitIsAnIntegrityErrorNamingTheChunk() throws {
        for plaintext in [textLike(3000), randomBytes(300)] {
            let (ref, sealed) = try seal(plaintext)
            for position in sealed.indices {
                var damaged = sealed
                damaged[position] ^= UInt8(1 << (position % 8))
                #expect {
                    try ChunkSealer.open(damaged, as: ref, decompressor: try ZstdDecompressor())
                } throws: { error in
                    guard let error = error as? ChunkError else { return false }
                    return error.code == .integrity && error.message.contains(ref.id.description)
                }
            }
        }
    }

    @Test func truncatedOrWrongKeyIsRefused() throws {
        let (ref, sealed) = try seal(textLike(1000))
        for cut in [0, 5, ChunkSealer.overhead - 1, sealed.count - 1] {
            #expect(throws: ChunkError.self) {
                try ChunkSealer.open(Array(sealed.prefix(cut)), as: ref, decompressor: try ZstdDecompressor())
            }
        }
        let wrongKey = ChunkRef(id: ref.id, key: ChunkKey(bytes: randomBytes(32))!, length: ref.length)
        #expect(throws: ChunkError.self) { try ChunkSealer.open(sealed, as: wrongKey, decompressor: try ZstdDecompressor()) }
        for length in [ref.length + 1, ref.length - 1, Int(Int32.max), Int.max] {
            let wrongLength = ChunkRef(id: ref.id, key: ref.key, length: length)
            #expect { try ChunkSealer.open(sealed, as: wrongLength, decompressor: try ZstdDecompressor()) } throws: {
                ($0 as? ChunkError)?.code == .integrity
            }
        }
        let (otherRef, _) = try seal(textLike(1000, seed: 7))
        let movedID = ChunkRef(id: otherRef.id, key: ref.key, length: ref.length)
        #expect(throws: ChunkError.self) { try ChunkSealer.open(sealed, as: movedID, decompressor: try ZstdDecompressor()) }
    }

    @Test func referenceSerialization() throws {
        let (ref, _) = try seal(textLike(10))
        #expect(try ChunkRef(serialized: ref.serialized) == ref)
        var mismatched = ref.serialized
        mismatched[40] ^= 1
        #expect { try ChunkRef(serialized: mismatched) } throws: { ($0 as? ChunkError)?.code == .malformedReference }
        #expect(throws: ChunkError.self) { try ChunkRef(serialized: [1, 2, 3]) }
        #expect(!ref.description.contains(Hex.encode(ref.key.bytes)), "descriptions never print keys")
    }
}
