import InfinityCrypto
import Foundation
import Testing

/// RFC 7748 sections 5.2 and 6.1.
@Suite struct X25519Tests {
    struct Case: Sendable, CustomStringConvertible {
        let scalar: String
        let u: String
        let output: String
        var description: String { String(scalar.prefix(8)) }
    }

    /// Section 5.2. The second u-coordinate has its top bit set, which X25519 must ignore.
    static let scalarMultiplication: [Case] = [
        Case(
            scalar: "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            u: "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            output: "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
        Case(
            scalar: "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            u: "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            output: "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
    ]

    @Test(arguments: scalarMultiplication) func rfc7748Section5_2(_ vector: Case) throws {
        let key = try X25519.PrivateKey(rawRepresentation: secret(hex: vector.scalar))
        let peer = try X25519.PublicKey(rawRepresentation: hex(vector.u))
        #expect(try key.sharedSecret(with: peer).exposed == hex(vector.output))
    }

    @Test func rfc7748Section6_1() throws {
        let alice = try X25519.PrivateKey(
            rawRepresentation: secret(hex: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
        let bob = try X25519.PrivateKey(
            rawRepresentation: secret(hex: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
        #expect(alice.publicKey.rawRepresentation == hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
        #expect(bob.publicKey.rawRepresentation == hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
        let shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        #expect(try alice.sharedSecret(with: bob.publicKey).exposed == shared)
        #expect(try bob.sharedSecret(with: alice.publicKey).exposed == shared)
    }

    @Test func randomKeysAgree() throws {
        let alice = X25519.PrivateKey()
        let bob = X25519.PrivateKey()
        #expect(alice.rawRepresentation != bob.rawRepresentation)
        #expect(try alice.sharedSecret(with: bob.publicKey) == bob.sharedSecret(with: alice.publicKey))
    }

    @Test func wrongKeyLengthsAreInvalidInput() {
        for length in [0, 31, 33] {
            #expect(cryptoErrorCode {
                _ = try X25519.PrivateKey(rawRepresentation: SecureBytes(copying: [UInt8](repeating: 1, count: length)))
            } == .invalidInput)
            #expect(cryptoErrorCode {
                _ = try X25519.PublicKey(rawRepresentation: [UInt8](repeating: 1, count: length))
            } == .invalidInput)
        }
    }

    /// A peer key of small order (here zero) makes the result all zeros; OpenSSL refuses it and
    /// pushes its reason onto the error queue, which must arrive in the thrown error.
    @Test func lowOrderPeerKeyFailsWithOpenSSLErrors() throws {
        let key = X25519.PrivateKey()
        let zero = try X25519.PublicKey(rawRepresentation: [UInt8](repeating: 0, count: 32))
        let error = thrownCryptoError { _ = try key.sharedSecret(with: zero) }
        #expect(error?.code == .openSSL)
        #expect(error?.openSSLErrors.isEmpty == false)
        #expect(error?.description.contains("OpenSSL") == true)
        // The queue was drained: a later failure reports only its own errors.
        let second = thrownCryptoError { _ = try key.sharedSecret(with: zero) }
        #expect(second?.openSSLErrors.count == error?.openSSLErrors.count)
    }

    @Test func publicKeyCodableRoundTrip() throws {
        let key = X25519.PrivateKey().publicKey
        let data = try JSONEncoder().encode([key])
        #expect(try JSONDecoder().decode([X25519.PublicKey].self, from: data) == [key])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([X25519.PublicKey].self, from: Data(#"["AAAA"]"#.utf8))
        }
    }
}
