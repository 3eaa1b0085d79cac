import CInfinityCurl
import Foundation
import Synchronization

/// One HTTP request: the method, the whole URL, the headers to send and the body.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// A server's answer: its status, its headers (names in lower case) and its body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]
}

/// A request that got no answer: the server could not be reached, the connection broke or went
/// idle too long. The message names the method and URL and says what libcurl saw.
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// HTTP and HTTPS through libcurl's easy interface: each request runs on a thread of its own
/// (curl blocks while it sends and receives), and finished handles are kept for the next
/// request, so their connections are reused.
///
/// This is the only code that calls libcurl. Bodies go to and from curl straight from the
/// request's and response's byte arrays; a PUT of 16 MiB is not copied on the way.
public final class HTTPClient: Sendable {
    /// How long to wait for a connection, and for any progress once connected, in seconds.
    public struct Timeouts: Sendable {
        public var connect: Int
        public var idle: Int
        public init(connect: Int = 30, idle: Int = 120) {
            self.connect = connect
            self.idle = idle
        }
    }

    /// A curl easy handle, owned by whoever took it from the pool.
    private struct EasyHandle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    public let timeouts: Timeouts
    private let idleHandles = Mutex<[EasyHandle]>([])
    /// Handles kept between requests; more than this many at once are closed after use.
    private let maximumIdleHandles: Int

    /// curl_global_init must run once before any handle is made.
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK

    public init(maximumIdleConnections: Int = 16, timeouts: Timeouts = Timeouts()) {
        self.maximumIdleHandles = maximumIdleConnections
        self.timeouts = timeouts
    }

    deinit {
        for handle in idleHandles.withLock({ $0 }) { curl_easy_cleanup(handle.pointer) }
    }

    /// Sends `request` and returns the server's answer, whatever its status. Throws
    /// `HTTPError` when there is no answer, and `CancellationError` when the task is cancelled
    /// while the request is under way.
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let transfer = Transfer(body: request.body, expectsBody: request.method != "HEAD")
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // A thread per request: a concurrent dispatch queue would run no more requests at
                // once than there are cores, and these threads mostly wait on the network.
                let thread = Thread { continuation.resume(with: Result { try self.perform(request, transfer) }) }
                thread.name = "infinity-http"
                thread.start()
            }
        } onCancel: {
            transfer.cancelled.store(true, ordering: .relaxed)
        }
    }

    private func perform(_ request: HTTPRequest, _ transfer: Transfer) throws -> HTTPResponse {
        guard Self.initialized else { throw HTTPError(message: "\(request.method) \(request.url): libcurl did not initialize") }
        if transfer.cancelled.load(ordering: .relaxed) { throw CancellationError() }
        let handle = try takeHandle(for: request)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for header in request.headers { headerList = curl_slist_append(headerList, "\(header.name): \(header.value)") }
        // No "Expect: 100-continue" round trip before a body, and no content type curl would add
        // on its own to a POST.
        headerList = curl_slist_append(headerList, "Expect:")
        if !request.headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            headerList = curl_slist_append(headerList, "Content-Type:")
        }

        let code = withExtendedLifetime(transfer) { () -> CURLcode in
            let context = Unmanaged.passUnretained(transfer).toOpaque()
            let h = handle.pointer
            var set = CURLE_OK
            func check(_ result: CURLcode) { if set == CURLE_OK { set = result } }
            check(infinity_curl_set_pointer(h, CURLOPT_URL, request.url))
            check(infinity_curl_set_long(h, CURLOPT_NOSIGNAL, 1))
            check(infinity_curl_set_pointer(h, CURLOPT_HTTPHEADER, headerList))
            check(infinity_curl_set_long(h, CURLOPT_CONNECTTIMEOUT, timeouts.connect))
            // Fails a transfer that moves less than a byte a second for `idle` seconds: a pack
            // may take long to send, but never long without progress.
            check(infinity_curl_set_long(h, CURLOPT_LOW_SPEED_LIMIT, 1))
            check(infinity_curl_set_long(h, CURLOPT_LOW_SPEED_TIME, timeouts.idle))
            check(infinity_curl_set_long(h, CURLOPT_BUFFERSIZE, 512 << 10))
            check(infinity_curl_set_long(h, CURLOPT_UPLOAD_BUFFERSIZE, 512 << 10))
            check(infinity_curl_set_pointer(h, CURLOPT_ERRORBUFFER, transfer.errorBuffer))
            check(infinity_curl_set_write_function(h, receiveBody))
            check(infinity_curl_set_pointer(h, CURLOPT_WRITEDATA, context))
            check(infinity_curl_set_header_function(h, receiveHeader))
            check(infinity_curl_set_pointer(h, CURLOPT_HEADERDATA, context))
            check(infinity_curl_set_long(h, CURLOPT_NOPROGRESS, 0))
            check(infinity_curl_set_progress_function(h, checkCancelled))
            check(infinity_curl_set_pointer(h, CURLOPT_XFERINFODATA, context))
            let sendsBody = !request.body.isEmpty || request.method == "PUT" || request.method == "POST"
            switch request.method {
            case "GET": check(infinity_curl_set_long(h, CURLOPT_HTTPGET, 1))
            case "HEAD": check(infinity_curl_set_long(h, CURLOPT_NOBODY, 1))
            case "POST":
                check(infinity_curl_set_long(h, CURLOPT_POST, 1))
                check(infinity_curl_set_offset(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count)))
            default:
                if sendsBody {
                    check(infinity_curl_set_long(h, CURLOPT_UPLOAD, 1))
                    check(infinity_curl_set_offset(h, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.count)))
                }
                if request.method != "PUT" { check(infinity_curl_set_pointer(h, CURLOPT_CUSTOMREQUEST, request.method)) }
            }
            if sendsBody {
                check(infinity_curl_set_read_function(h, sendBody))
                check(infinity_curl_set_pointer(h, CURLOPT_READDATA, context))
                // A reused connection the server had closed makes curl send the body again.
                check(infinity_curl_set_seek_function(h, rewindBody))
                check(infinity_curl_set_pointer(h, CURLOPT_SEEKDATA, context))
            }
            guard set == CURLE_OK else { return set }
            return curl_easy_perform(h)
        }

        guard code == CURLE_OK else {
            curl_easy_cleanup(handle.pointer)
            if code == CURLE_ABORTED_BY_CALLBACK && transfer.cancelled.load(ordering: .relaxed) { throw CancellationError() }
            let detail = transfer.errorMessage ?? String(cString: curl_easy_strerror(code))
            throw HTTPError(message: "\(request.method) \(request.url): \(detail)")
        }
        var status = 0
        _ = infinity_curl_get_long(handle.pointer, CURLINFO_RESPONSE_CODE, &status)
        returnHandle(handle)
        return HTTPResponse(status: status, headers: transfer.headers, body: transfer.received)
    }

    private func takeHandle(for request: HTTPRequest) throws -> EasyHandle {
        if let handle = idleHandles.withLock({ $0.popLast() }) { return handle }
        guard let pointer = curl_easy_init() else {
            throw HTTPError(message: "\(request.method) \(request.url): libcurl could not make a handle")
        }
        return EasyHandle(pointer: pointer)
    }

    private func returnHandle(_ handle: EasyHandle) {
        // Forget the request's options, which point into its finished transfer; the connection
        // and DNS caches stay.
        curl_easy_reset(handle.pointer)
        let kept = idleHandles.withLock { handles in
            guard handles.count < maximumIdleHandles else { return false }
            handles.append(handle)
            return true
        }
        if !kept { curl_easy_cleanup(handle.pointer) }
    }
}

/// The state of one request while curl runs it: touched only by curl's callbacks on the
/// request's thread, except `cancelled`.
private final class Transfer: @unchecked Sendable {
    let body: [UInt8]
    var sent = 0
    var received: [UInt8] = []
    var headers: [String: String] = [:]
    let cancelled = Atomic<Bool>(false)
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))

    /// The most a Content-Length reserves up front; a larger body still arrives, in steps.
    static let largestReservation = 64 << 20

    /// Whether a body may follow the headers: a HEAD's Content-Length is the object's, not a
    /// body's, and reserves nothing.
    let expectsBody: Bool

    init(body: [UInt8], expectsBody: Bool) {
        self.body = body
        self.expectsBody = expectsBody
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit { errorBuffer.deallocate() }

    var errorMessage: String? {
        let message = String(cString: errorBuffer)
        return message.isEmpty ? nil : message
    }

    func header(_ line: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix("HTTP/") {
            // A new response starts (after a 100 Continue, say): only its headers count.
            headers = [:]
            return
        }
        guard let colon = text.firstIndex(of: ":") else { return }
        let name = text[..<colon].trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        headers[name] = value
        if expectsBody, name == "content-length", let length = Int(value), length > 0 {
            received.reserveCapacity(min(length, Self.largestReservation))
        }
    }
}

private func transfer(_ context: UnsafeMutableRawPointer?) -> Transfer {
    Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
}

private let sendBody: curl_read_callback = { buffer, size, count, context in
    let transfer = transfer(context)
    let length = min(size * count, transfer.body.count - transfer.sent)
    guard length > 0, let buffer else { return 0 }
    transfer.body.withUnsafeBytes { bytes in
        UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + transfer.sent, byteCount: length)
    }
    transfer.sent += length
    return length
}

private let rewindBody: curl_seek_callback = { context, offset, origin in
    let transfer = transfer(context)
    guard origin == SEEK_SET, offset >= 0, offset <= transfer.body.count else { return Int32(CURL_SEEKFUNC_CANTSEEK) }
    transfer.sent = Int(offset)
    return Int32(CURL_SEEKFUNC_OK)
}

private let receiveBody: curl_write_callback = { data, size, count, context in
    let length = size * count
    if length > 0, let data {
        transfer(context).received.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
    }
    return length
}

private let receiveHeader: curl_write_callback = { data, size, count, context in
    let length = size * count
    if length > 0, let data {
        transfer(context).header(UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: length))
    }
    return length
}

private let checkCancelled: curl_xferinfo_callback = { context, _, _, _, _ in
    transfer(context).cancelled.load(ordering: .relaxed) ? 1 : 0
}
