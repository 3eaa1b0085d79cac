import Foundation
import InfinityChunks
import InfinityCrypto
import Testing

@testable import InfinityHistory

private func agent() throws -> AgentKeys { try AgentKeys(masterSecret: AgentKeys.generateMasterSecret()) }

private func someRef() -> ChunkRef {
    let key = ChunkKey(bytes: SecureRandom.bytes(count: 32))!
    return ChunkRef(id: key.chunkID, key: key, length: 1234)
}

@Suite struct AgentCardTests {
    @Test func roundTripsInTextAndBinary() throws {
        let keys = try agent()
        let card = try AgentCard.signed(name: "alice", location: "/srv/alice store", keys: keys)
        #expect(card.text.hasPrefix("infinity-agent:"))
        #expect(!card.text.contains("/") && !card.text.contains("+") && !card.text.contains("="))
        let parsed = try AgentCard(text: "  " + card.text + "\n")
        #expect(parsed == card)
        #expect(parsed.identity.id == keys.identity(name: "alice").id)
        #expect(parsed.location == "/srv/alice store")
    }

    @Test func refusesAlteredTruncatedAndNewerCards() throws {
        let keys = try agent()
        let encoded = try AgentCard.signed(name: "alice", location: "/a", keys: keys).encoded()
        for index in encoded.indices {
            var altered = encoded
            altered[index] ^= 0x04
            #expect(throws: HistoryError.self) { try AgentCard.decode(altered) }
        }
        for length in 0..<encoded.count {
            #expect(throws: HistoryError.self) { try AgentCard.decode(Array(encoded.prefix(length))) }
        }
        #expect(throws: HistoryError.self) { try AgentCard.decode(encoded + [0]) }
        var newer = encoded
        newer[0] = 2
        #expect { try AgentCard.decode(newer) } throws: { ($0 as? HistoryError)?.code == .unsupportedFormat }
        #expect(throws: HistoryError.self) { try AgentCard(text: "infinity-agent:not base64!") }
        #expect(throws: HistoryError.self) { try AgentCard(text: "hello") }
        #expect(throws: HistoryError.self) { try AgentCard.signed(name: "", location: "", keys: keys) }
    }
}

@Suite struct ShareEnvelopeTests {
    private func envelope(from sender: AgentKeys, to recipient: AgentKeys) throws -> ShareEnvelope {
        try ShareEnvelope(
            sender: try AgentCard.signed(name: "alice", location: "/alice", keys: sender),
            recipient: recipient.identity(name: "bob").id, commit: someRef(), refName: "main", time: Date(),
            bundleKey: SecureBytes.random(count: 32), bundlePacks: ["inbox/x/aa", "inbox/x/bb"], chunkCount: 7,
            bundleByteCount: 9000)
    }

    @Test func opensOnlyForItsRecipient() throws {
        let alice = try agent()
        let bob = try agent()
        let carol = try agent()
        let original = try envelope(from: alice, to: bob)
        let sealed = try original.sealed(to: bob.identity(name: "bob"), senderKeys: alice)
        let opened = try ShareEnvelope.open(sealed, keys: bob, name: "e")
        #expect(opened.commit == original.commit && opened.refName == "main" && opened.bundlePacks == original.bundlePacks)
        #expect(opened.sender.identity.id == alice.identity(name: "alice").id)
        #expect(opened.bundleKey == original.bundleKey)
        #expect(opened.chunkCount == 7 && opened.bundleByteCount == 9000)
        #expect(throws: HistoryError.self) { try ShareEnvelope.open(sealed, keys: carol, name: "e") }
        // Sealing twice gives different bytes: a fresh ephemeral key and nonce each time.
        #expect(try original.sealed(to: bob.identity(name: "bob"), senderKeys: alice) != sealed)
    }

    @Test func refusesEveryAlteredByteTruncationAndNewerFormat() throws {
        let alice = try agent()
        let bob = try agent()
        let sealed = try envelope(from: alice, to: bob).sealed(to: bob.identity(name: "bob"), senderKeys: alice)
        for index in stride(from: 0, to: sealed.count, by: 7) {
            var altered = sealed
            altered[index] ^= 0x10
            #expect(throws: HistoryError.self) { try ShareEnvelope.open(altered, keys: bob, name: "e") }
        }
        for length in [0, 1, 30, 45, 60, sealed.count - 1] {
            #expect(throws: HistoryError.self) { try ShareEnvelope.open(Array(sealed.prefix(length)), keys: bob, name: "e") }
        }
        var newer = sealed
        newer[0] = 9
        #expect { try ShareEnvelope.open(newer, keys: bob, name: "e") } throws: { ($0 as? HistoryError)?.code == .unsupportedFormat }
        #expect(throws: HistoryError.self) {
            try ShareEnvelope.open([UInt8](repeating: 1, count: ShareEnvelope.maximumSealedByteCount + 1), keys: bob, name: "e")
        }
    }

    @Test func cannotBeSignedForAnotherSenderOrAddressedToAnotherRecipient() throws {
        let alice = try agent()
        let bob = try agent()
        let mallory = try agent()
        let fromAlice = try envelope(from: alice, to: bob)
        // Mallory cannot sign in Alice's name.
        #expect(throws: HistoryError.self) { try fromAlice.sealed(to: bob.identity(name: "bob"), senderKeys: mallory) }
        #expect(throws: HistoryError.self) { try fromAlice.sealed(to: mallory.identity(name: "m"), senderKeys: alice) }
        // A payload signed by Mallory but carrying Alice's card fails the signature check.
        let payloadForMallory = try ShareEnvelope(
            sender: try AgentCard.signed(name: "alice", location: "/alice", keys: alice), recipient: bob.identity(name: "bob").id,
            commit: someRef(), refName: "main", time: Date(), bundleKey: SecureBytes.random(count: 32), bundlePacks: [],
            chunkCount: 0, bundleByteCount: 0)
        let forged = try payloadForMallory.seal(to: bob.identity(name: "bob"), signingKey: mallory.signingKey)
        #expect { try ShareEnvelope.open(forged, keys: bob, name: "e") } throws: { "\($0)".contains("signature") }
    }
}
