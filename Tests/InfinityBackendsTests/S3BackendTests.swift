import Foundation
import InfinityBackends
import InfinityCrypto
import InfinityTestSupport
import Testing

/// The S3 store under test: `INFINITY_TEST_S3_URL` (`s3://bucket?endpoint=…`), with credentials
/// from the usual AWS variables. `.ci/run` starts a loopback S3 server and sets it; any S3
/// endpoint works the same.
private let testURL = ProcessInfo.processInfo.environment["INFINITY_TEST_S3_URL"]

@Suite struct SignatureV4Tests {
    /// The GET Object example of the S3 API reference ("Signature Calculations for the
    /// Authorization Header", example bucket and keys).
    @Test func matchesTheAWSGetObjectExample() throws {
        let signer = SignatureV4(
            accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: SecureBytes(utf8: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let date = ISO8601DateFormatter().date(from: "2013-05-24T00:00:00Z")!
        let headers = signer.signedHeaders(
            method: "GET", path: "/test.txt", query: [],
            headers: ["Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9"],
            payloadHash: SignatureV4.emptyPayloadHash, date: date)
        #expect(headers["x-amz-date"] == "20130524T000000Z")
        #expect(headers["x-amz-content-sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            headers["authorization"]
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func encodesLikeS3() {
        #expect(SignatureV4.encode("a b/c~d+e=f") == "a%20b%2Fc~d%2Be%3Df")
        #expect(SignatureV4.encode("packs/ab/x-y_z.1", keepingSlashes: true) == "packs/ab/x-y_z.1")
        #expect(SignatureV4.encode("ü") == "%C3%BC")
    }
}

@Suite struct S3ConfigurationTests {
    private let credentials = ["AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "very-secret-value"]

    @Test func readsURLsAndTheEnvironment() throws {
        let local = try S3Configuration(url: "s3://my-bucket/stores/alice?endpoint=http://127.0.0.1:9000&region=eu-west-1", environment: credentials)
        #expect(local.bucket == "my-bucket" && local.prefix == "stores/alice/" && local.region == "eu-west-1")
        #expect(local.style == .path && local.endpoint.absoluteString == "http://127.0.0.1:9000")
        let aws = try S3Configuration(url: "s3://my-bucket", environment: credentials.merging(["AWS_REGION": "us-west-2"]) { $1 })
        #expect(aws.style == .virtual && aws.endpoint.absoluteString == "https://s3.us-west-2.amazonaws.com" && aws.prefix == "")
        let styled = try S3Configuration(url: "s3://my-bucket/p?endpoint=https://minio.example:9000&style=virtual", environment: credentials)
        #expect(styled.style == .virtual)
        #expect(!"\(local)".contains("very-secret-value") && !"\(local)".contains("AKIDTEST"))
    }

    @Test func readsTheCredentialsFile() throws {
        try withTemporaryDirectorySync { directory in
            let file = directory + "/credentials"
            try "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file-secret\n[other]\naws_access_key_id=AKIDOTHER\naws_secret_access_key=x\n"
                .write(toFile: file, atomically: true, encoding: .utf8)
            let configuration = try S3Configuration(url: "s3://bucket-a", environment: ["AWS_SHARED_CREDENTIALS_FILE": file])
            #expect(configuration.signer.accessKeyID == "AKIDFILE")
            let other = try S3Configuration(url: "s3://bucket-a", environment: ["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "other"])
            #expect(other.signer.accessKeyID == "AKIDOTHER")
        }
    }

    @Test func refusesBadURLsWithoutLeakingCredentials() {
        for url in ["s3://", "s3://UPPER", "http://bucket", "s3://bucket?endpoint=ftp://x", "s3://bucket?style=diagonal", "s3://bucket?colour=red", "s3://bucket/a//b"] {
            #expect(throws: BackendError.self, "\(url)") { try S3Configuration(url: url, environment: credentials) }
        }
        #expect { try S3Configuration(url: "s3://bucket-b", environment: ["AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"]) } throws: { error in
            "\(error)".contains("AWS_ACCESS_KEY_ID")
        }
    }
}

/// Runs `body` with a new temporary directory, removed afterwards.
private func withTemporaryDirectorySync(_ body: (String) throws -> Void) throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("infinitydb-s3-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    try body(path)
}

@Suite(.enabled(if: testURL != nil, "set INFINITY_TEST_S3_URL (and AWS credentials) to run against an S3 endpoint"))
struct S3BackendTests {
    /// A backend over a new, empty prefix of the test bucket.
    private func freshBackend() async throws -> S3Backend {
        var components = URLComponents(string: testURL!)!
        components.path = "/test-\(UUID().uuidString.lowercased())"
        let backend = try S3Backend(url: components.string!)
        try await backend.createBucketIfMissing()
        return backend
    }

    @Test func conformance() async throws {
        try await BackendConformance.run { try await freshBackend() }
    }

    @Test func listsAcrossPages() async throws {
        let backend = try await freshBackend()
        // More than one page of ListObjectsV2 (1,000 keys a page).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<1100 { group.addTask { try await backend.put(String(format: "many/%05d", index), [UInt8(index % 256)]) } }
            try await group.waitForAll()
        }
        let listed = try await backend.list(prefix: "many/")
        #expect(listed.count == 1100)
        #expect(listed.map(\.name) == (0..<1100).map { String(format: "many/%05d", $0) })
    }

    @Test func errorsNameTheObjectAndNoCredential() async throws {
        let backend = try await freshBackend()
        let secret = ProcessInfo.processInfo.environment["AWS_SECRET_ACCESS_KEY"] ?? "unset"
        do {
            _ = try await backend.get("missing/object")
            Issue.record("a missing object was read")
        } catch let error as BackendError {
            #expect(error.code == .notFound && "\(error)".contains("missing/object"))
            #expect(!"\(error)".contains(secret))
        }
    }
}
