#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Runs `body` with the path of a new, empty directory under the system temporary directory,
/// and removes the directory with everything in it afterwards, also when `body` throws.
///
/// Fails the process (a test-environment problem, not a test failure) when no directory can
/// be created, so that the function can stay `rethrows`.
public func withTemporaryDirectory<R>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (String) async throws -> R
) async rethrows -> R {
    let base = FileManager.default.temporaryDirectory.path
    var template = Array((base + "/infinitydb-test-XXXXXX").utf8CString)
    guard let created = mkdtemp(&template) else {
        fatalError("cannot create a temporary directory under \(base): \(String(cString: strerror(errno)))")
    }
    let path = String(cString: created)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}
