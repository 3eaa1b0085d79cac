import Foundation
import InfinityCrypto
import InfinityHTTP
import Synchronization

/// A store in an S3-compatible bucket: each object is one S3 object under the configured prefix.
///
/// Requests are signed with ``SignatureV4``; at most ``S3Configuration/maximumConcurrentRequests``
/// run at once; a request that fails with 5xx, 429 or a network error is retried with exponential
/// backoff. A PUT replaces an object whole, so readers never see a partial one.
public final class S3Backend: ConditionalWrites {
    public let configuration: S3Configuration
    private let client: HTTPClient
    private let slots: AsyncSemaphore

    public init(configuration: S3Configuration) {
        self.configuration = configuration
        client = HTTPClient(maximumIdleConnections: configuration.maximumConcurrentRequests)
        slots = AsyncSemaphore(configuration.maximumConcurrentRequests)
    }

    /// A backend for a store URL (`s3://bucket/prefix?endpoint=…`); see ``S3Configuration``.
    public convenience init(url: String) throws {
        self.init(configuration: try S3Configuration(url: url))
    }

    /// Creates the bucket when it does not exist yet (a bucket this account already owns is fine).
    public func createBucketIfMissing() async throws {
        let response = try await send("PUT", key: nil, bucketOnly: true)
        let text = String(decoding: response.body.prefix(2048), as: UTF8.self)
        guard response.status == 200 || (response.status == 409 && text.contains("BucketAlreadyOwnedByYou")) else {
            throw failure(response, nil, "create the bucket of")
        }
    }

    // MARK: Backend

    public func put(_ name: String, _ data: [UInt8]) async throws {
        try ObjectName.validate(name)
        if data.count > configuration.multipartThreshold { return try await putInParts(name, data) }
        let response = try await send("PUT", key: name, body: data)
        guard response.status == 200 else { throw failure(response, name, "store") }
    }

    public func get(_ name: String) async throws -> [UInt8] {
        try ObjectName.validate(name)
        let response = try await send("GET", key: name)
        if response.status == 404 { throw notFound(name) }
        guard response.status == 200 else { throw failure(response, name, "read") }
        return response.body
    }

    public func get(_ name: String, range: Range<Int>) async throws -> [UInt8] {
        try ObjectName.validate(name)
        guard range.lowerBound >= 0 else { throw unsatisfiable(name, range, size: nil) }
        if range.isEmpty {
            // HTTP cannot ask for no bytes: check the object and the bounds instead.
            guard let info = try await info(name) else { throw notFound(name) }
            guard range.lowerBound <= info.size else { throw unsatisfiable(name, range, size: info.size) }
            return []
        }
        let response = try await send("GET", key: name, headers: ["range": "bytes=\(range.lowerBound)-\(range.upperBound - 1)"])
        switch response.status {
        case 404: throw notFound(name)
        case 416: throw unsatisfiable(name, range, size: nil)
        case 206, 200:
            // A range reaching past the end comes back short: it is not satisfiable whole.
            guard response.body.count == range.count else { throw unsatisfiable(name, range, size: nil) }
            return response.body
        default: throw failure(response, name, "read")
        }
    }

    public func info(_ name: String) async throws -> ObjectInfo? {
        try ObjectName.validate(name)
        let response = try await send("HEAD", key: name)
        if response.status == 404 { return nil }
        guard response.status == 200, let length = response.headers["content-length"].flatMap({ Int($0) }) else {
            throw failure(response, name, "look up")
        }
        return ObjectInfo(name: name, size: length)
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        var objects: [ObjectInfo] = []
        var continuation: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", configuration.prefix + prefix)]
            if let continuation { query.append(("continuation-token", continuation)) }
            let response = try await send("GET", key: nil, query: query)
            guard response.status == 200 else { throw failure(response, nil, "list objects with prefix '\(prefix)' in") }
            let page = try ListPage(response.body, store: configuration.description)
            // Keys that are no valid object name (another tool's) are not the store's; a prefix
            // like "a//" or "../" matches only such keys, so it lists nothing.
            for object in page.objects {
                let name = String(object.key.dropFirst(configuration.prefix.count))
                if ObjectName.isValid(name) { objects.append(ObjectInfo(name: name, size: object.size)) }
            }
            continuation = page.isTruncated ? page.nextContinuationToken : nil
        } while continuation != nil
        return objects.sorted { $0.name < $1.name }
    }

    public func delete(_ name: String) async throws {
        try ObjectName.validate(name)
        let response = try await send("DELETE", key: name)
        guard response.status == 204 || response.status == 200 || response.status == 404 else { throw failure(response, name, "delete") }
    }

    /// Deletes up to 1,000 objects per request (S3's DeleteObjects).
    public func delete(_ names: [String]) async throws {
        for name in names { try ObjectName.validate(name) }
        var start = 0
        while start < names.count {
            let batch = names[start..<min(start + 1000, names.count)]
            start = batch.endIndex
            if batch.count == 1 {
                try await delete(batch.first!)
                continue
            }
            let body = Array(
                ("<Delete><Quiet>true</Quiet>"
                    + batch.map { "<Object><Key>\(configuration.prefix + $0)</Key></Object>" }.joined()
                    + "</Delete>").utf8)
            guard let checksum = try? MD5.hash(body) else {
                // No MD5 in this OpenSSL (FIPS-only): one request per object instead.
                for name in batch { try await delete(name) }
                continue
            }
            let response = try await send(
                "POST", key: nil, query: [("delete", "")], headers: ["content-md5": Data(checksum).base64EncodedString(), "content-type": "application/xml"],
                body: body)
            guard response.status == 200 else { throw failure(response, nil, "delete \(batch.count) objects from") }
            let result = try S3XML(response.body, record: "Error", store: configuration.description)
            if let refused = result.records.first {
                let name = String((refused["Key"] ?? "").dropFirst(configuration.prefix.count))
                let more = result.records.count > 1 ? " (and \(result.records.count - 1) more objects)" : ""
                throw BackendError(
                    code: refused["Code"] == "AccessDenied" ? .permissionDenied : .io, objectName: name,
                    message: "cannot delete '\(name)' in \(configuration.description): \(refused["Code"] ?? "error"): \(refused["Message"] ?? "")\(more)")
            }
        }
    }

    // MARK: Multipart upload

    /// Uploads `data` in parts of ``S3Configuration/partSize``, a few at once, then joins them;
    /// the object appears whole or not at all. A failed upload is aborted so no parts linger.
    private func putInParts(_ name: String, _ data: [UInt8]) async throws {
        let started = try await send("POST", key: name, query: [("uploads", "")])
        guard started.status == 200,
            let uploadID = try S3XML(started.body, record: "Upload", store: configuration.description).fields["UploadId"]
        else { throw failure(started, name, "start a multipart upload of") }
        do {
            let partSize = max(configuration.partSize, S3Configuration.minimumPartSize)
            let partCount = (data.count + partSize - 1) / partSize
            // A few parts at a time: each copies its bytes, so this bounds the memory beside `data`.
            let partsAtOnce = max(1, min(4, configuration.maximumConcurrentRequests))
            var etags = [String](repeating: "", count: partCount)
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                func upload(_ number: Int) {
                    group.addTask {
                        let range = (number - 1) * partSize..<min(number * partSize, data.count)
                        let response = try await self.send(
                            "PUT", key: name, query: [("partNumber", "\(number)"), ("uploadId", uploadID)], body: Array(data[range]))
                        guard response.status == 200, let etag = response.headers["etag"] else {
                            throw self.failure(response, name, "store part \(number) of \(partCount) of")
                        }
                        return (number, etag)
                    }
                }
                var next = 1
                while next <= min(partsAtOnce, partCount) {
                    upload(next)
                    next += 1
                }
                for try await (number, etag) in group {
                    etags[number - 1] = etag
                    if next <= partCount {
                        upload(next)
                        next += 1
                    }
                }
            }
            let parts = etags.enumerated().map { number, etag in
                "<Part><PartNumber>\(number + 1)</PartNumber><ETag>\(etag.replacingOccurrences(of: "\"", with: "&quot;"))</ETag></Part>"
            }
            let body = Array(("<CompleteMultipartUpload>" + parts.joined() + "</CompleteMultipartUpload>").utf8)
            let completed = try await send(
                "POST", key: name, query: [("uploadId", uploadID)], headers: ["content-type": "application/xml"], body: body)
            // S3 may answer 200 and still report an error in the body.
            let result = completed.status == 200 ? try S3XML(completed.body, record: "Error", store: configuration.description) : nil
            guard let result, result.fields["Code"] == nil, result.records.isEmpty else {
                throw failure(completed, name, "complete the multipart upload of")
            }
        } catch {
            _ = try? await send("DELETE", key: name, query: [("uploadId", uploadID)])
            throw error
        }
    }

    // MARK: Conditional writes

    public func getVersioned(_ name: String) async throws -> (bytes: [UInt8], version: String)? {
        try ObjectName.validate(name)
        let response = try await send("GET", key: name)
        if response.status == 404 { return nil }
        guard response.status == 200, let etag = response.headers["etag"] else { throw failure(response, name, "read") }
        return (response.body, etag)
    }

    @discardableResult
    public func put(_ name: String, _ data: [UInt8], ifVersion expected: String?) async throws -> String {
        try ObjectName.validate(name)
        let condition = expected.map { ["if-match": $0] } ?? ["if-none-match": "*"]
        let response = try await send("PUT", key: name, headers: condition, body: data)
        if response.status == 412 || response.status == 409 {
            throw BackendError(
                code: .preconditionFailed, objectName: name,
                message: "object '\(name)' in \(configuration.description) changed since it was read")
        }
        guard response.status == 200, let etag = response.headers["etag"] else { throw failure(response, name, "store") }
        return etag
    }

    // MARK: Requests

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
    }

    /// Sends one signed request, retrying what may succeed on a second try.
    private func send(
        _ method: String, key: String?, query: [(String, String)] = [], headers extra: [String: String] = [:], body: [UInt8] = [],
        bucketOnly: Bool = false
    ) async throws -> Response {
        await slots.acquire()
        defer { slots.release() }
        let payloadHash = body.isEmpty ? SignatureV4.emptyPayloadHash : Hex.encode(SHA256.hash(body))
        var lastError: (any Error)?
        for attempt in 0..<configuration.maximumAttempts {
            if attempt > 0 {
                // 100 ms, 200 ms, 400 ms… with jitter, so retries of many requests spread out.
                let base = 0.1 * pow(2, Double(attempt - 1))
                try await Task.sleep(for: .seconds(base * Double.random(in: 0.5...1.5)))
            }
            let request = makeRequest(
                method, key: key, query: query, headers: extra, body: body, payloadHash: payloadHash, bucketOnly: bucketOnly)
            do {
                let answer = try await client.send(request)
                let response = Response(status: answer.status, headers: answer.headers, body: answer.body)
                if response.status == 429 || response.status >= 500 {
                    lastError = failure(response, key, method)
                    continue
                }
                return response
            } catch let error as BackendError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastError = error
            }
        }
        throw BackendError(
            code: .io, objectName: key,
            message: "\(method) \(key.map { "'\($0)'" } ?? "") at \(configuration.description) failed after \(configuration.maximumAttempts) attempts",
            cause: lastError)
    }

    private func makeRequest(
        _ method: String, key: String?, query: [(String, String)], headers extra: [String: String], body: [UInt8], payloadHash: String,
        bucketOnly: Bool
    ) -> HTTPRequest {
        let endpoint = configuration.endpoint
        var host = endpoint.host!
        var path = ""
        let encodedKey = key.map { SignatureV4.encode(configuration.prefix + $0, keepingSlashes: true) }
        switch configuration.style {
        case .path:
            path = "/\(configuration.bucket)" + (bucketOnly ? "" : "/" + (encodedKey ?? ""))
        case .virtual:
            host = "\(configuration.bucket).\(host)"
            path = "/" + (encodedKey ?? "")
        }
        let hostHeader = endpoint.port.map { "\(host):\($0)" } ?? host
        var headers = extra
        headers["host"] = hostHeader
        let signed = configuration.signer.signedHeaders(
            method: method, path: path, query: query, headers: headers, payloadHash: payloadHash, date: Date())
        let queryText = query.map { "\(SignatureV4.encode($0.0))=\(SignatureV4.encode($0.1))" }.joined(separator: "&")
        // The Host header goes as signed: curl's own would leave out a default port the
        // endpoint names (https://host:443), and the signature would not match.
        return HTTPRequest(
            method: method, url: "\(endpoint.scheme!)://\(hostHeader)\(path)\(queryText.isEmpty ? "" : "?" + queryText)",
            headers: signed.map { (name: $0.key, value: $0.value) }, body: body)
    }

    // MARK: Errors

    private func notFound(_ name: String) -> BackendError {
        BackendError(code: .notFound, objectName: name, message: "object '\(name)' not found in \(configuration.description)")
    }

    private func unsatisfiable(_ name: String, _ range: Range<Int>, size: Int?) -> BackendError {
        BackendError(
            code: .rangeNotSatisfiable, objectName: name,
            message: "bytes \(range.lowerBound)..<\(range.upperBound) are not all within object '\(name)'\(size.map { " (\($0) bytes)" } ?? "") in \(configuration.description)")
    }

    /// An S3 error response as a ``BackendError``: its code and message from the XML body.
    private func failure(_ response: Response, _ name: String?, _ what: String) -> BackendError {
        let text = String(decoding: response.body.prefix(2048), as: UTF8.self)
        func element(_ tag: String) -> String? {
            guard let start = text.range(of: "<\(tag)>"), let end = text.range(of: "</\(tag)>", range: start.upperBound..<text.endIndex) else { return nil }
            return String(text[start.upperBound..<end.lowerBound])
        }
        let code: BackendError.Code =
            switch response.status {
            case 403: .permissionDenied
            case 404: .notFound
            case 507: .noSpace
            default: .io
            }
        let detail = [element("Code"), element("Message")].compactMap { $0 }.joined(separator: ": ")
        return BackendError(
            code: code, objectName: name,
            message: "cannot \(what) \(name.map { "'\($0)' in " } ?? "")\(configuration.description): HTTP \(response.status)\(detail.isEmpty ? "" : " (\(detail))")")
    }
}

/// A counting semaphore for tasks: bounds the requests in flight, or with one slot, runs
/// async work one at a time.
public final class AsyncSemaphore: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    public init(_ count: Int) { state = Mutex(State(free: max(1, count))) }

    public func acquire() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if state.free > 0 {
                    state.free -= 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    public func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}

/// One page of a ListObjectsV2 response.
struct ListPage {
    var objects: [(key: String, size: Int)] = []
    var isTruncated = false
    var nextContinuationToken: String?

    init(_ body: [UInt8], store: String) throws {
        let xml = try S3XML(body, record: "Contents", store: store)
        objects = xml.records.compactMap { record in
            guard let key = record["Key"], let size = record["Size"].flatMap({ Int($0) }) else { return nil }
            return (key, size)
        }
        isTruncated = xml.fields["IsTruncated"] == "true"
        nextContinuationToken = xml.fields["NextContinuationToken"]
    }
}
