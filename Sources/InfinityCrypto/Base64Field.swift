#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Byte fields in JSON (keys, salts, sealed secrets) as standard base64 strings, independent of
/// the encoder's data strategy, with the length checked on the way in.
enum Base64Field {
    static func string(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    static func bytes(_ text: String) -> [UInt8]? {
        Data(base64Encoded: text).map { [UInt8]($0) }
    }

    static func encode(_ bytes: [UInt8], to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(string(bytes))
    }

    /// Decodes a single base64 value of exactly `count` bytes.
    static func decode(from decoder: any Decoder, what: String, count: Int) throws -> [UInt8] {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let bytes = bytes(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(what) is not valid base64")
        }
        guard bytes.count == count else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\(what) must be \(count) bytes, got \(bytes.count)")
        }
        return bytes
    }
}

extension KeyedDecodingContainer {
    /// A base64 byte field; bad base64 is a `DecodingError` naming the field.
    func decodeBase64(forKey key: Key) throws -> [UInt8] {
        let text = try decode(String.self, forKey: key)
        guard let bytes = Base64Field.bytes(text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "not valid base64")
        }
        return bytes
    }
}

extension KeyedEncodingContainer {
    mutating func encodeBase64(_ bytes: [UInt8], forKey key: Key) throws {
        try encode(Base64Field.string(bytes), forKey: key)
    }
}
