import Foundation
import InfinityCrypto
import Testing

@Suite struct AgentKeysTests {
    static let masterSecret = secret(hex: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")

    @Test func derivationIsDeterministic() throws {
        let first = try AgentKeys(masterSecret: Self.masterSecret)
        let second = try AgentKeys(masterSecret: SecureBytes(copying: Self.masterSecret.exposed))
        #expect(first.contentKey == second.contentKey)
        #expect(first.chunkerSecret == second.chunkerSecret)
        #expect(first.metadataKey == second.metadataKey)
        #expect(first.signingKey.seed == second.signingKey.seed)
        #expect(first.agreementKey.rawRepresentation == second.agreementKey.rawRepresentation)
        #expect(first.identity(name: "a") == second.identity(name: "a"))
    }

    @Test func subkeysAreDistinctAndSized() throws {
        let keys = try AgentKeys(masterSecret: Self.masterSecret)
        let all = [
            keys.contentKey, keys.chunkerSecret, keys.metadataKey, keys.signingKey.seed,
            keys.agreementKey.rawRepresentation, Self.masterSecret,
        ]
        for key in all { #expect(key.count == 32) }
        for i in all.indices {
            for j in all.indices where i < j {
                #expect(all[i] != all[j], "keys \(i) and \(j) are equal")
            }
        }
    }

    /// Pins the derivation (salt "infinitydb-agent-keys-v1", label "infinitydb/v1/content-key"):
    /// a change here changes every stored chunk key, so it must be deliberate.
    @Test func contentKeyMatchesTheDocumentedDerivation() throws {
        let keys = try AgentKeys(masterSecret: Self.masterSecret)
        let expected = try HKDF.deriveKey(
            inputKeyMaterial: Self.masterSecret, salt: Array("infinitydb-agent-keys-v1".utf8),
            info: Array("infinitydb/v1/content-key".utf8), outputByteCount: 32)
        #expect(keys.contentKey == expected)
        let seed = try HKDF.deriveKey(
            inputKeyMaterial: Self.masterSecret, salt: Array("infinitydb-agent-keys-v1".utf8),
            info: Array("infinitydb/v1/ed25519-seed".utf8), outputByteCount: 32)
        #expect(keys.signingKey.seed == seed)
    }

    @Test func differentMasterSecretsGiveDifferentKeys() throws {
        let a = try AgentKeys(masterSecret: AgentKeys.generateMasterSecret())
        let b = try AgentKeys(masterSecret: AgentKeys.generateMasterSecret())
        #expect(a.contentKey != b.contentKey)
        #expect(a.identity(name: "x").id != b.identity(name: "x").id)
    }

    @Test func wrongMasterSecretLengthIsInvalidInput() {
        for length in [0, 16, 31, 33, 64] {
            #expect(cryptoErrorCode {
                _ = try AgentKeys(masterSecret: SecureBytes(copying: [UInt8](repeating: 1, count: length)))
            } == .invalidInput)
        }
    }

    @Test func identityIdIsStableAndIndependentOfTheName() throws {
        let keys = try AgentKeys(masterSecret: Self.masterSecret)
        let alice = keys.identity(name: "alice")
        let renamed = keys.identity(name: "alice-laptop")
        #expect(alice.id == renamed.id)
        #expect(alice.id.bytes.count == 32)

        // id = SHA-256("infinitydb-agent-id-v1" || ed25519 public || x25519 public)
        let expected = SHA256.hash(
            Array("infinitydb-agent-id-v1".utf8) + alice.signingPublicKey.rawRepresentation
                + alice.agreementPublicKey.rawRepresentation)
        #expect(alice.id.bytes == expected)
        #expect(alice.id.description == Hex.encode(expected))
        #expect(try AgentID(hex: alice.id.description) == alice.id)
    }

    @Test func identityCodableRoundTrip() throws {
        let identity = try AgentKeys(masterSecret: Self.masterSecret).identity(name: "alice")
        let data = try JSONEncoder().encode(identity)
        let decoded = try JSONDecoder().decode(AgentIdentity.self, from: data)
        #expect(decoded == identity)
        #expect(decoded.id == identity.id)
        let idData = try JSONEncoder().encode([identity.id])
        #expect(String(decoding: idData, as: UTF8.self) == "[\"\(identity.id)\"]")
        #expect(try JSONDecoder().decode([AgentID].self, from: idData) == [identity.id])
    }

    @Test func signingAndAgreementKeysWork() throws {
        let alice = try AgentKeys(masterSecret: AgentKeys.generateMasterSecret())
        let bob = try AgentKeys(masterSecret: AgentKeys.generateMasterSecret())
        let message = Array("commit".utf8)
        let signature = try alice.signingKey.signature(for: message)
        #expect(alice.identity(name: "alice").signingPublicKey.isValidSignature(signature, for: message))
        #expect(
            try alice.agreementKey.sharedSecret(with: bob.identity(name: "bob").agreementPublicKey)
                == bob.agreementKey.sharedSecret(with: alice.identity(name: "alice").agreementPublicKey))
    }
}
