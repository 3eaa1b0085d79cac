import Foundation
import InfinityCrypto

/// AWS Signature Version 4 for S3 requests, computed with the OpenSSL wrapper: the canonical
/// request, the string to sign, the derived signing key and the `Authorization` header.
///
/// The secret key is held as ``SecureBytes`` and appears in no description or error.
public struct SignatureV4: Sendable {
    public let accessKeyID: String
    let secretAccessKey: SecureBytes
    public let sessionToken: String?
    public let region: String
    public let service: String

    public init(accessKeyID: String, secretAccessKey: SecureBytes, sessionToken: String? = nil, region: String, service: String = "s3") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.region = region
        self.service = service
    }

    /// The SHA-256 of an empty payload, in hex.
    public static let emptyPayloadHash = Hex.encode(SHA256.hash([UInt8]()))

    /// The headers to add to a request: `x-amz-date`, `x-amz-content-sha256`, the session token
    /// when there is one, and `Authorization`.
    ///
    /// - Parameters:
    ///   - path: the request path, already percent-encoded as it is sent (`/bucket/key`).
    ///   - query: the query parameters, not encoded.
    ///   - headers: the other headers that are sent and signed (`host` among them).
    ///   - payloadHash: hex SHA-256 of the body.
    public func signedHeaders(
        method: String, path: String, query: [(String, String)], headers: [String: String], payloadHash: String, date: Date
    ) -> [String: String] {
        let timestamp = Self.timestamp(date)
        let day = String(timestamp.prefix(8))
        var all = Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value) })
        all["x-amz-date"] = timestamp
        all["x-amz-content-sha256"] = payloadHash
        if let sessionToken { all["x-amz-security-token"] = sessionToken }
        let names = all.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(Self.trimmed(all[$0]!))\n" }.joined()
        let signedNames = names.joined(separator: ";")
        let encodedQuery: [(name: String, value: String)] = query.map { (Self.encode($0.0), Self.encode($0.1)) }
        let sortedQuery = encodedQuery.sorted { (a, b) -> Bool in a.name != b.name ? a.name < b.name : a.value < b.value }
        let canonicalQuery = sortedQuery.map { pair -> String in pair.name + "=" + pair.value }.joined(separator: "&")
        let canonicalRequest = [method, path, canonicalQuery, canonicalHeaders, signedNames, payloadHash].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", timestamp, scope, Hex.encode(SHA256.hash(Array(canonicalRequest.utf8)))]
            .joined(separator: "\n")
        let signature = Hex.encode(HMACSHA256.authenticate(Array(stringToSign.utf8), key: signingKey(day: day)))
        var result = all
        result["authorization"] =
            "AWS4-HMAC-SHA256 Credential=\(accessKeyID)/\(scope),SignedHeaders=\(signedNames),Signature=\(signature)"
        return result
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request").
    private func signingKey(day: String) -> SecureBytes {
        let secret = secretAccessKey.withUnsafeBytes { SecureBytes(copying: Array("AWS4".utf8) + Array($0)) }
        var key = secret
        for part in [day, region, service, "aws4_request"] {
            key = SecureBytes(copying: HMACSHA256.authenticate(Array(part.utf8), key: key))
        }
        return key
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    private static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters (and `/` when asked):
    /// the encoding SigV4 wants for query strings and S3 object keys.
    public static func encode(_ text: String, keepingSlashes: Bool = false) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            case UInt8(ascii: "/") where keepingSlashes:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
