import Foundation
import InfinityCrypto
import Testing

/// RFC 8032 section 7.1.
@Suite struct Ed25519Tests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let seed: String
        let publicKey: String
        let message: String
        let signature: String
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "TEST 1",
            seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            message: "",
            signature: """
                e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b
                d25bf5f0595bbe24655141438e7a100b
                """),
        Case(
            name: "TEST 2",
            seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            message: "72",
            signature: """
                92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c
                387b2eaeb4302aeeb00d291612bb0c00
                """),
        Case(
            name: "TEST 3",
            seed: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            publicKey: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            message: "af82",
            signature: """
                6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659
                4a7c15e9716ed28dc027beceea1ec40a
                """),
        Case(
            name: "TEST SHA(abc)",
            seed: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            publicKey: "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            message: """
                ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a
                2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f
                """,
            signature: """
                dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0
                303dca179c138ac17ad9bef1177331a704
                """),
    ]

    @Test(arguments: cases) func rfc8032(_ vector: Case) throws {
        let key = try Ed25519.PrivateKey(seed: secret(hex: vector.seed))
        #expect(key.publicKey.rawRepresentation == hex(vector.publicKey))
        let signature = try key.signature(for: hex(vector.message))
        #expect(signature == hex(vector.signature))
        let publicKey = try Ed25519.PublicKey(rawRepresentation: hex(vector.publicKey))
        #expect(publicKey.isValidSignature(hex(vector.signature), for: hex(vector.message)))
    }

    @Test(arguments: cases) func modifiedMessageOrSignatureFails(_ vector: Case) throws {
        let publicKey = try Ed25519.PublicKey(rawRepresentation: hex(vector.publicKey))
        let message = hex(vector.message)
        let signature = hex(vector.signature)

        #expect(!publicKey.isValidSignature(signature, for: message + [0]))
        if !message.isEmpty {
            var changed = message
            changed[0] ^= 1
            #expect(!publicKey.isValidSignature(signature, for: changed))
        }
        for index in [0, 31, 32, 63] {
            var changed = signature
            changed[index] ^= 0x04
            #expect(!publicKey.isValidSignature(changed, for: message))
        }
        #expect(!publicKey.isValidSignature(Array(signature.dropLast()), for: message))
        #expect(!publicKey.isValidSignature([], for: message))
        let otherKey = Ed25519.PrivateKey().publicKey
        #expect(!otherKey.isValidSignature(signature, for: message))
    }

    @Test func randomKeySignsAndVerifies() throws {
        let key = Ed25519.PrivateKey()
        let message = SecureRandom.bytes(count: 1000)
        let signature = try key.signature(for: message)
        #expect(signature.count == 64)
        #expect(key.publicKey.isValidSignature(signature, for: message))
    }

    @Test func wrongLengthsAreInvalidInput() {
        for length in [0, 31, 33, 64] {
            #expect(cryptoErrorCode {
                _ = try Ed25519.PrivateKey(seed: SecureBytes(copying: [UInt8](repeating: 1, count: length)))
            } == .invalidInput)
            #expect(cryptoErrorCode {
                _ = try Ed25519.PublicKey(rawRepresentation: [UInt8](repeating: 1, count: length))
            } == .invalidInput)
        }
    }

    @Test func publicKeyCodableRoundTrip() throws {
        let key = Ed25519.PrivateKey().publicKey
        let data = try JSONEncoder().encode([key])
        #expect(try JSONDecoder().decode([Ed25519.PublicKey].self, from: data) == [key])
    }
}
