#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CInfinitySystem
import Foundation
import InfinityDB
import Synchronization

/// Where a passphrase comes from, in order: --passphrase-file, INFINITY_PASSPHRASE, a prompt on
/// the terminal with echo off.
struct PassphraseSource {
    var file: String?
    var environmentVariable = "INFINITY_PASSPHRASE"
    var prompt = "Passphrase: "

    func read(confirm: Bool) throws -> SecureBytes {
        if let file {
            guard let contents = FileManager.default.contents(atPath: file) else {
                throw CLIError("cannot read the passphrase file \(file)")
            }
            let firstLine = contents.split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
            let bytes = Array(firstLine.last == 0x0D ? firstLine.dropLast() : firstLine[...])
            guard !bytes.isEmpty else { throw CLIError("the passphrase file \(file) is empty") }
            return SecureBytes(copying: bytes)
        }
        if let value = ProcessInfo.processInfo.environment[environmentVariable], !value.isEmpty {
            return SecureBytes(utf8: value)
        }
        guard let first = Terminal.readSecret(prompt: prompt) else {
            throw CLIError("no passphrase: set \(environmentVariable), pass --passphrase-file, or run on a terminal")
        }
        guard first.count > 0 else { throw CLIError("the passphrase must not be empty") }
        if confirm {
            guard let second = Terminal.readSecret(prompt: "Repeat \(prompt.lowercased())"), second == first else {
                throw CLIError("the passphrases do not match")
            }
        }
        return first
    }
}

/// A plain error for the command line, printed as is.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum Terminal {
    /// Whether standard error is a terminal: progress is drawn only then.
    static var standardErrorIsTerminal: Bool { isatty(2) == 1 }

    /// Reads one line from the controlling terminal with echo off; nil when there is none.
    static func readSecret(prompt: String) -> SecureBytes? {
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else { return nil }
        defer { close(tty) }
        var saved = termios()
        guard tcgetattr(tty, &saved) == 0 else { return nil }
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        _ = prompt.withCString { write(tty, $0, strlen($0)) }
        tcsetattr(tty, TCSAFLUSH, &silent)
        defer {
            tcsetattr(tty, TCSAFLUSH, &saved)
            _ = write(tty, "\n", 1)
        }
        var line = [UInt8]()
        var byte: UInt8 = 0
        while read(tty, &byte, 1) == 1, byte != 0x0A {
            line.append(byte)
        }
        defer { for index in line.indices { line[index] = 0 } }
        return SecureBytes(copying: line)
    }
}

/// Progress on standard error, redrawn at most a few times a second: bytes, rate and, when the
/// total is known, percentage and time left, after an optional count of files. Silent when
/// standard error is not a terminal. Safe to update from any task.
final class ProgressLine: Sendable {
    private struct State {
        var lastDraw = Date.distantPast
        var drawn = false
    }

    private let label: String
    private let total: Int?
    private let enabled: Bool
    private let start = Date()
    private let state = Mutex(State())

    init(_ label: String, total: Int?, quiet: Bool) {
        self.label = label
        self.total = total
        enabled = !quiet && Terminal.standardErrorIsTerminal
    }

    /// Redraws with `done` bytes (and `files`, when counting files).
    func update(_ done: Int, files: Int? = nil) {
        guard enabled else { return }
        let now = Date()
        let due = state.withLock { state in
            guard now.timeIntervalSince(state.lastDraw) >= 0.2 else { return false }
            state.lastDraw = now
            state.drawn = true
            return true
        }
        guard due else { return }
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        let rate = Double(done) / elapsed
        var text = label
        if let files { text += " \(files) files," }
        text += " \(ByteCount.format(done))"
        if let total, total > 0 {
            let left = rate > 0 ? max(0, Double(total - done)) / rate : 0
            text += " / \(ByteCount.format(total)) (\(min(100, done * 100 / total))%) \(ByteCount.format(Int(rate)))/s ETA \(Int(left.rounded()))s"
        } else {
            text += " \(ByteCount.format(Int(rate)))/s"
        }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
    }

    func finish() {
        guard enabled, state.withLock({ $0.drawn }) else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// Hands the heap's free pages back to the system four times a second while a backup runs. Its
/// chunk streams free large buffers all the time and glibc keeps their pages for reuse, so
/// without this a backup's peak memory is set by buffers it no longer holds. (Restores recycle
/// their buffers at once, so there it would only cost page faults.)
enum HeapTrimmer {
    static func start() {
        Thread.detachNewThread {
            while true {
                Thread.sleep(forTimeInterval: 0.25)
                infinity_release_free_memory()
            }
        }
    }
}
