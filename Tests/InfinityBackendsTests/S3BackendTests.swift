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

    @Test func multipartSettingsFromTheURL() throws {
        let configuration = try S3Configuration(url: "s3://bucket-c?multipart=32MiB&part-size=8M", environment: credentials)
        #expect(configuration.multipartThreshold == 32 << 20 && configuration.partSize == 8 << 20)
        #expect(throws: BackendError.self) { try S3Configuration(url: "s3://bucket-c?part-size=1MiB", environment: credentials) }
        #expect(throws: BackendError.self) { try S3Configuration(url: "s3://bucket-c?multipart=lots", environment: credentials) }
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
    private func freshBackend(_ configure: (inout S3Configuration) -> Void = { _ in }) async throws -> S3Backend {
        var components = URLComponents(string: testURL!)!
        components.path = "/test-\(UUID().uuidString.lowercased())"
        var configuration = try S3Configuration(url: components.string!)
        configure(&configuration)
        let backend = S3Backend(configuration: configuration)
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
        // Two DeleteObjects requests of at most 1,000 keys each.
        try await backend.delete(listed.map(\.name))
        #expect(try await backend.list(prefix: "").isEmpty)
    }

    @Test func uploadsLargeObjectsInParts() async throws {
        let backend = try await freshBackend {
            $0.multipartThreshold = 6 << 20
            $0.partSize = S3Configuration.minimumPartSize
        }
        let large = SampleData.bytes(count: (13 << 20) + 12_345, seed: 7)
        try await backend.put("packs/ab/large", large)  // three parts, the last a short one
        #expect(try await backend.info("packs/ab/large")?.size == large.count)
        #expect(try await backend.get("packs/ab/large") == large)
        let acrossParts = (5 << 20) - 100..<(5 << 20) + 100
        #expect(try await backend.get("packs/ab/large", range: acrossParts) == Array(large[acrossParts]))
        // Replaced whole by a smaller single PUT, and deleted like any object.
        try await backend.put("packs/ab/large", [1, 2, 3])
        #expect(try await backend.get("packs/ab/large") == [1, 2, 3])
        try await backend.delete(["packs/ab/large"])
        #expect(try await backend.list(prefix: "").isEmpty)
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

/// Retries, against a small HTTP server that fails on purpose: the backend signs as usual and
/// the server answers by the object's name — `flaky` fails twice with 503, `busy` once with 429,
/// `broken` always with 500 — and otherwise with the number of requests it has had for the name.
@Suite struct S3RetryTests {
    private static let server = """
        import http.server, os, sys
        counts = {}
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.split("?")[0].rsplit("/", 1)[-1]
                counts[name] = counts.get(name, 0) + 1
                failures = {"flaky": (2, 503), "busy": (1, 429), "broken": (10**9, 500)}.get(name, (0, 200))
                if counts[name] <= failures[0]:
                    body = b"<Error><Code>SlowDown</Code><Message>try again</Message></Error>"
                    self.send_response(failures[1])
                else:
                    body = b"attempt %d" % counts[name]
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *arguments):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        with open(sys.argv[1] + ".partial", "w") as file:
            file.write(str(server.server_address[1]))
        os.rename(sys.argv[1] + ".partial", sys.argv[1])
        server.serve_forever()
        """

    private let credentials = ["AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "retry-secret-value"]

    @Test func retriesServerErrorsAndThrottlingThenGivesUpNamingTheObject() async throws {
        // The server writes the port it listens on into a file once it listens.
        let portFile = FileManager.default.temporaryDirectory.appendingPathComponent("infinitydb-s3-retry-\(UUID().uuidString)").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.server, portFile]
        // Not the test's own output: the runner waits for everyone holding that to finish.
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: portFile)
        }
        var portText: String?
        for _ in 0..<200 where portText == nil {
            portText = try? String(contentsOfFile: portFile, encoding: .utf8)
            if portText == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let port = try #require(portText.flatMap { Int($0) }, "the test server did not start")

        var configuration = try S3Configuration(url: "s3://retry-bucket?endpoint=http://127.0.0.1:\(port)", environment: credentials)
        configuration.maximumAttempts = 4
        let backend = S3Backend(configuration: configuration)
        #expect(try await backend.get("flaky") == Array("attempt 3".utf8), "two 503s, then the object")

        #expect(try await backend.get("busy") == Array("attempt 2".utf8), "one 429, then the object")
        #expect(try await backend.get("steady") == Array("attempt 1".utf8))
        do {
            _ = try await backend.get("broken")
            Issue.record("an object that always fails was read")
        } catch let error as BackendError {
            #expect(error.code == .io && error.objectName == "broken")
            #expect("\(error)".contains("after 4 attempts") && "\(error)".contains("'broken'"))
            #expect(!"\(error)".contains("retry-secret-value") && !"\(error)".contains("AKIDTEST"))
        }
    }

    @Test func networkFailuresAreRetriedAndReported() async throws {
        // Nothing listens on the port: every attempt fails to connect.
        var configuration = try S3Configuration(url: "s3://retry-bucket?endpoint=http://127.0.0.1:9", environment: credentials)
        configuration.maximumAttempts = 2
        let backend = S3Backend(configuration: configuration)
        await #expect { try await backend.put("packs/aa/p", [1]) } throws: { error in
            "\(error)".contains("after 2 attempts") && "\(error)".contains("packs/aa/p") && !"\(error)".contains("retry-secret-value")
        }
    }
}
