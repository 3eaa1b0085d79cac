import Foundation
import InfinityCrypto

/// Where an S3-compatible store is and how to sign for it, from a store URL and the standard
/// AWS environment:
///
///     s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION&style=path|virtual&multipart=SIZE&part-size=SIZE]
///
/// - endpoint: default `https://s3.REGION.amazonaws.com`; any S3-compatible server otherwise
///   (MinIO, Ceph RGW, R2, B2…).
/// - region: default `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.
/// - style: how the bucket is addressed: `virtual` (`BUCKET.host`) by default on AWS, `path`
///   (`host/BUCKET`) by default on any other endpoint.
/// - multipart, part-size: objects larger than `multipart` (default 64MiB) are uploaded in parts
///   of `part-size` (default 16MiB, at least 5MiB as S3 requires), several at once.
///
/// Credentials come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`,
/// else from the credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`)
/// under the profile `AWS_PROFILE` (default `default`). They never appear in a description.
public struct S3Configuration: Sendable, CustomStringConvertible {
    public enum AddressingStyle: String, Sendable {
        case path, virtual
    }

    public var bucket: String
    /// Prepended to every object name: the store's folder in the bucket, empty or ending in `/`.
    public var prefix: String
    public var endpoint: URL
    public var region: String
    public var style: AddressingStyle
    public var signer: SignatureV4
    /// Requests in flight at once, at most.
    public var maximumConcurrentRequests = 16
    /// Attempts for a request that fails with 5xx, 429 or a network error.
    public var maximumAttempts = 5
    /// Objects larger than this are uploaded in parts.
    public var multipartThreshold = 64 << 20
    /// The size of each part of a multipart upload but the last; S3 needs at least 5 MiB.
    public var partSize = 16 << 20
    /// The smallest part S3 accepts (but for the last).
    public static let minimumPartSize = 5 << 20

    /// The store URL without credentials, for messages.
    public var description: String {
        "s3://\(bucket)/\(prefix) at \(endpoint.absoluteString) (\(region), \(style.rawValue)-style)"
    }

    /// Reads a store URL and the environment.
    ///
    /// - Throws: ``BackendError`` naming what is missing or malformed (never a credential).
    public init(url text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func invalid(_ problem: String) -> BackendError {
            BackendError(code: .invalidName, objectName: nil, message: "invalid S3 store URL '\(text)': \(problem)")
        }
        guard let components = URLComponents(string: text), components.scheme == "s3", let bucket = components.host, !bucket.isEmpty else {
            throw invalid("write s3://BUCKET/PREFIX?endpoint=…&region=…")
        }
        guard bucket.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }), (3...63).contains(bucket.count) else {
            throw invalid("'\(bucket)' is not a valid bucket name (3 to 63 lowercase letters, digits, '-' and '.')")
        }
        var prefix = String(components.path.drop { $0 == "/" })
        if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
        if !prefix.isEmpty && !ObjectName.isValid(String(prefix.dropLast())) {
            throw invalid("the prefix '\(prefix)' is not a valid object name")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { _, last in last }
        for key in query.keys where !["endpoint", "region", "style", "multipart", "part-size"].contains(key) {
            throw invalid("unknown parameter '\(key)' (endpoint, region, style, multipart and part-size are known)")
        }
        func size(_ parameter: String) throws -> Int? {
            guard let text = query[parameter] else { return nil }
            guard let bytes = ByteCount.parse(text), bytes > 0, bytes <= 5 << 30 else {
                throw invalid("\(parameter) '\(text)' is not a size from 1 byte to 5GiB: write 64MiB or a number of bytes")
            }
            return Int(bytes)
        }
        let region = query["region"] ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let endpointText = query["endpoint"] ?? "https://s3.\(region).amazonaws.com"
        guard let endpoint = URL(string: endpointText), ["http", "https"].contains(endpoint.scheme), endpoint.host != nil else {
            throw invalid("the endpoint '\(endpointText)' is not an http or https URL")
        }
        let style: AddressingStyle
        if let given = query["style"] {
            guard let parsed = AddressingStyle(rawValue: given) else { throw invalid("style is 'path' or 'virtual', not '\(given)'") }
            style = parsed
        } else {
            style = query["endpoint"] == nil ? .virtual : .path
        }
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        self.style = style
        if let threshold = try size("multipart") { multipartThreshold = threshold }
        if let part = try size("part-size") {
            guard part >= Self.minimumPartSize else {
                throw invalid("part-size '\(query["part-size"]!)' is below the 5MiB S3 accepts for a part")
            }
            partSize = part
        }
        signer = try Self.credentials(environment: environment, region: region, store: "s3://\(bucket)/\(prefix)")
    }

    private static func credentials(environment: [String: String], region: String, store: String) throws -> SignatureV4 {
        if let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty {
            return SignatureV4(
                accessKeyID: id, secretAccessKey: SecureBytes(utf8: secret), sessionToken: environment["AWS_SESSION_TOKEN"],
                region: region)
        }
        let path = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? (NSHomeDirectory() + "/.aws/credentials")
        let profile = environment["AWS_PROFILE"] ?? "default"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            var section = ""
            var values: [String: String] = [:]
            for line in text.split(whereSeparator: \.isNewline) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("[") && trimmed.hasSuffix("]") {
                    section = String(trimmed.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                } else if section == profile, let equals = trimmed.firstIndex(of: "=") {
                    values[trimmed[..<equals].trimmingCharacters(in: .whitespaces)] =
                        trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                }
            }
            if let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"] {
                return SignatureV4(
                    accessKeyID: id, secretAccessKey: SecureBytes(utf8: secret), sessionToken: values["aws_session_token"],
                    region: region)
            }
        }
        throw BackendError(
            code: .permissionDenied, objectName: nil,
            message: "no credentials for \(store): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add profile '\(profile)' to \(path)")
    }
}
