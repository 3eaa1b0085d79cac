import Foundation
import InfinityChunks
import InfinityCrypto
import InfinityPacks
import InfinityTestSupport
import Testing

@testable import InfinityHistory

@Suite struct CommitTests {
    let keys: AgentKeys
    let parents: [ChunkRef]
    let root: ChunkRef
    let id: ChunkID

    init() throws {
        keys = try makeAgentKeys()
        let sealer = ChunkSealer(contentKey: .random(count: 32))
        func ref(_ text: String) -> ChunkRef { Array(text.utf8).withUnsafeBytes { sealer.reference(for: $0) } }
        parents = [ref("first parent"), ref("second parent")]
        root = ref("root")
        id = ref("the commit itself").id
    }

    func sample(message: String = "Merge feature\n\nwith details ✓", generation: UInt64 = 7) throws -> Commit {
        try Commit.signed(
            parents: parents, root: root, time: Date(timeIntervalSince1970: 1_777_000_000.123), message: message,
            generation: generation, authorName: "alice", keys: keys)
    }

    @Test func roundTripKeepsEveryField() throws {
        let commit = try sample()
        let bytes = commit.encoded()
        #expect(bytes.first == Commit.formatVersion)
        let decoded = try Commit.decode(bytes, id: id)
        #expect(decoded == commit)
        #expect(decoded.parents == parents)
        #expect(decoded.root == root)
        #expect(decoded.author == keys.identity(name: "alice"))
        #expect(decoded.timeMilliseconds == 1_777_000_000_123)
        #expect(decoded.time == commit.time)
        #expect(decoded.message == "Merge feature\n\nwith details ✓")
        #expect(decoded.generation == 7)
        #expect(decoded.signature.count == Ed25519.signatureByteCount)
        #expect(decoded.encoded() == bytes, "the encoding is deterministic")

        let rootCommit = try Commit.signed(
            parents: [], root: root, time: Date(timeIntervalSince1970: -5), message: "", generation: 1,
            authorName: "", keys: keys)
        #expect(try Commit.decode(rootCommit.encoded(), id: id) == rootCommit)
        #expect(rootCommit.timeMilliseconds == -5000, "times before 1970 survive")
    }

    @Test func everySingleByteFlipIsRejected() throws {
        let bytes = try sample().encoded()
        for position in bytes.indices {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var damaged = bytes
                damaged[position] ^= mask
                #expect(throws: HistoryError.self, "byte \(position) ^ \(mask)") { try Commit.decode(damaged, id: id) }
            }
        }
    }

    @Test func seededRandomInputIsRejectedWithoutCrashing() throws {
        let valid = try sample().encoded()
        for seed in UInt64(0)..<2_000 {
            let noise = SampleData.bytes(count: 1 + Int(seed % 400), seed: seed)
            // Pure noise, noise behind a valid version byte, and a valid commit with a run of
            // bytes overwritten by noise.
            var spliced = valid
            let start = Int(seed % UInt64(valid.count))
            for (offset, byte) in noise.prefix(1 + Int(seed % 7)).enumerated() where start + offset < spliced.count {
                spliced[start + offset] ^= byte | 1
            }
            for input in [noise, [Commit.formatVersion] + noise, spliced] {
                #expect(throws: HistoryError.self, "seed \(seed)") { try Commit.decode(input, id: id) }
            }
        }
    }

    @Test func truncationsAndTrailingBytesAreCorrupt() throws {
        let bytes = try sample().encoded()
        for count in 0..<bytes.count {
            #expect {
                try Commit.decode(Array(bytes.prefix(count)), id: id)
            } throws: { isHistoryError($0, .corrupt, mentioning: "commit \(id.shortDescription)") }
        }
        #expect {
            try Commit.decode(bytes + [0], id: id)
        } throws: { isHistoryError($0, .corrupt, mentioning: "unexpected bytes") }
    }

    @Test func newerFormatVersionIsUnsupported() throws {
        var bytes = try sample().encoded()
        bytes[0] = Commit.formatVersion + 1
        #expect {
            try Commit.decode(bytes, id: id)
        } throws: { isHistoryError($0, .unsupportedFormat, mentioning: id.shortDescription, "version 2") }
        bytes[0] = 0
        #expect { try Commit.decode(bytes, id: id) } throws: { isHistoryError($0, .corrupt) }
    }

    @Test func aCommitClaimingAnotherAgentsKeyDoesNotVerify() throws {
        let mallory = try makeAgentKeys()
        let honest = try sample()
        // Mallory signs, but names alice's keys as the author's.
        let forged = Commit(
            parents: honest.parents, root: honest.root, author: honest.author, timeMilliseconds: honest.timeMilliseconds,
            message: "pay mallory", generation: honest.generation, signature: [])
        let signature = try mallory.signingKey.signature(for: forged.signedMessage())
        let signed = Commit(
            parents: forged.parents, root: forged.root, author: forged.author, timeMilliseconds: forged.timeMilliseconds,
            message: forged.message, generation: forged.generation, signature: signature)
        #expect(!signed.hasValidSignature)
        #expect {
            try Commit.decode(signed.encoded(), id: id)
        } throws: { isHistoryError($0, .corrupt, mentioning: id.shortDescription, "signature does not verify") }
    }

    @Test func limitsAreEnforcedWhenSigning() throws {
        let tooLong = String(repeating: "x", count: Commit.maximumMessageByteCount + 1)
        #expect { try sample(message: tooLong) } throws: { isHistoryError($0, .invalidArgument, mentioning: "message") }
        let longest = String(repeating: "x", count: Commit.maximumMessageByteCount)
        #expect(try Commit.decode(try sample(message: longest).encoded(), id: id).message == longest)

        func sign(parents: [ChunkRef], generation: UInt64, name: String = "alice") throws -> Commit {
            try Commit.signed(
                parents: parents, root: root, time: Date(), message: "", generation: generation, authorName: name, keys: keys)
        }
        let manyParents = (0...Commit.maximumParentCount).map { number in
            Array("parent \(number)".utf8).withUnsafeBytes { ChunkSealer(contentKey: .random(count: 32)).reference(for: $0) }
        }
        #expect { try sign(parents: manyParents, generation: 2) } throws: { isHistoryError($0, .invalidArgument, mentioning: "parents") }
        #expect { try sign(parents: [parents[0], parents[0]], generation: 2) } throws: { isHistoryError($0, .invalidArgument, mentioning: "twice") }
        #expect { try sign(parents: [], generation: 2) } throws: { isHistoryError($0, .invalidArgument, mentioning: "root commit") }
        #expect { try sign(parents: parents, generation: 1) } throws: { isHistoryError($0, .invalidArgument, mentioning: "generation") }
        let longName = String(repeating: "n", count: Commit.maximumAuthorNameByteCount + 1)
        #expect { try sign(parents: [], generation: 1, name: longName) } throws: { isHistoryError($0, .invalidArgument, mentioning: "author name") }
    }

    @Test func oversizedCountsInInputAreRefusedBeforeAllocating() throws {
        // Version 1, then a parent count of 2^63: must be refused by the limit, not trusted.
        let hostile: [UInt8] = [1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]
        #expect { try Commit.decode(hostile, id: id) } throws: { isHistoryError($0, .corrupt, mentioning: "parent count") }
        // A varint with more than 64 bits of payload.
        let overlong: [UInt8] = [1] + [UInt8](repeating: 0xFF, count: 12)
        #expect { try Commit.decode(overlong, id: id) } throws: { isHistoryError($0, .corrupt) }
    }

    @Test func varintsAreCanonical() throws {
        for value: UInt64 in [0, 1, 127, 128, 300, 1 << 35, .max] {
            var writer = ByteWriter()
            writer.appendVarint(value)
            var reader = ByteReader(writer.bytes, subject: "test")
            #expect(try reader.varint("v") == value)
            #expect(reader.isAtEnd)
        }
        for value: Int64 in [0, -1, 1, .min, .max, -1_777_000_000_000] {
            var writer = ByteWriter()
            writer.appendSignedVarint(value)
            var reader = ByteReader(writer.bytes, subject: "test")
            #expect(try reader.signedVarint("v") == value)
        }
        // 1 written in two bytes is not the shortest form.
        var padded = ByteReader([0x81, 0x00], subject: "test")
        #expect { try padded.varint("v") } throws: { isHistoryError($0, .corrupt, mentioning: "shortest") }
    }
}
