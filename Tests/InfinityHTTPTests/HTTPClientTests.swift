import Foundation
import InfinityHTTP
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The client against servers on loopback made here from plain sockets: one that answers with a
/// canned response, and one that accepts connections and never answers. (The S3 suites run it
/// against a real S3 server.)
@Suite struct HTTPClientTests {
    /// A listening socket on 127.0.0.1 with a port of the kernel's choosing.
    final class Listener: @unchecked Sendable {
        let socket: Int32
        let port: Int

        init() throws {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.socket = socket
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                    bind(socket, address, length) == 0 && listen(socket, 8) == 0 && getsockname(socket, address, &length) == 0
                }
            }
            guard bound else { throw POSIXError(.EADDRNOTAVAIL) }
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        deinit { close(socket) }

        /// Accepts one connection, reads one request (head and Content-Length body), answers
        /// `response` and returns what it read.
        func answerOnce(with response: [UInt8]) -> [UInt8] {
            answer(accept(socket, nil, nil), with: response)
        }

        /// Accepts `count` connections before it answers any of them.
        func answerTogether(_ count: Int, with response: [UInt8]) {
            let connections = (0..<count).map { _ in accept(socket, nil, nil) }
            for connection in connections { _ = answer(connection, with: response) }
        }

        private func answer(_ connection: Int32, with response: [UInt8]) -> [UInt8] {
            defer { close(connection) }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                if let end = received.firstRange(of: Array("\r\n\r\n".utf8)) {
                    let head = String(decoding: received[..<end.lowerBound], as: UTF8.self).lowercased()
                    let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                    if received.count >= end.upperBound + length { break }
                }
                let count = recv(connection, &buffer, buffer.count, 0)
                if count <= 0 { break }
                received += buffer[..<count]
            }
            _ = response.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            return received
        }
    }

    @Test func sendsTheBodyAndReadsTheAnswer() async throws {
        let listener = try Listener()
        let body = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let answer = Array("HTTP/1.1 201 Created\r\nETag: \"abc\"\r\nX-Amz-Request-Id:  42 \r\nContent-Length: 5\r\n\r\nhello".utf8)
        // The server blocks in accept and recv: on a thread of its own, not the task pool's.
        let server = Task {
            await withCheckedContinuation { continuation in
                Thread { continuation.resume(returning: listener.answerOnce(with: answer)) }.start()
            }
        }
        let client = HTTPClient()
        let response = try await client.send(
            HTTPRequest(method: "PUT", url: "http://127.0.0.1:\(listener.port)/bucket/key", headers: [(name: "x-amz-date", value: "20261205T000000Z")], body: body))
        #expect(response.status == 201)
        #expect(response.headers["etag"] == "\"abc\"")
        #expect(response.headers["x-amz-request-id"] == "42")
        #expect(response.body == Array("hello".utf8))
        let request = await server.value
        let end = try #require(request.firstRange(of: Array("\r\n\r\n".utf8)))
        let head = String(decoding: request[..<end.lowerBound], as: UTF8.self)
        #expect(head.hasPrefix("PUT /bucket/key HTTP/1.1\r\n"))
        #expect(head.contains("x-amz-date: 20261205T000000Z"))
        #expect(!head.lowercased().contains("expect:"))
        #expect(Array(request[end.upperBound...]) == body)
    }

    @Test func requestsRunAtOnceBeyondTheNumberOfCores() async throws {
        let listener = try Listener()
        let count = ProcessInfo.processInfo.activeProcessorCount + 2
        let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
        Thread { listener.answerTogether(count, with: answer) }.start()
        // The server answers only once all are connected: a client that ran fewer at once would
        // wait until its idle timeout and fail.
        let client = HTTPClient(timeouts: .init(connect: 5, idle: 5))
        try await withThrowingTaskGroup(of: Int.self) { group in
            for number in 0..<count {
                group.addTask { try await client.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(listener.port)/\(number)")).status }
            }
            for try await status in group { #expect(status == 200) }
        }
    }

    @Test func anUnreachableServerIsAnErrorNamingTheRequest() async throws {
        // A port that was just free: nothing listens there.
        let port = try Listener().port
        await #expect {
            _ = try await HTTPClient().send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/bucket/key"))
        } throws: { error in
            "\(error)".contains("GET http://127.0.0.1:\(port)/bucket/key") && error is HTTPError
        }
    }

    @Test func cancellingATaskStopsItsRequest() async throws {
        let listener = try Listener()  // accepts into its backlog, never answers
        let client = HTTPClient(timeouts: .init(connect: 5, idle: 60))
        let request = Task {
            try await client.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(listener.port)/slow"))
        }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        request.cancel()
        await #expect(throws: CancellationError.self) { _ = try await request.value }
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}
