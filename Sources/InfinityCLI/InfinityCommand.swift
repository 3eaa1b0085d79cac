import ArgumentParser
import CInfinitySystem
import Foundation
import Synchronization
import InfinityDB

/// The `infinity` command line. The executable target only calls ``main()``, so every command
/// can be tested in-process as well as through the real binary.
@available(macOS 10.15, *)
public struct InfinityCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "infinity",
        abstract: "An encrypted, versioned, content-addressed object store.",
        discussion: """
            Every command that needs a store takes --store PATH or reads INFINITY_STORE.
            The passphrase comes from INFINITY_PASSPHRASE, --passphrase-file, or a prompt.

            Examples:
              infinity init ~/backups/store --name alice
              export INFINITY_STORE=~/backups/store
              infinity blob put ~/photos/2026.tar > photos.ref
              infinity blob get "$(cat photos.ref)" --output restored.tar
              infinity stats --json
              infinity check --read-data-subset 10%
            """,
        version: "0.1.0",
        subcommands: [
            Init.self, CommitCommand.self, Checkout.self, Status.self, Diff.self, Log.self, Show.self, List.self, Cat.self,
            Branch.self, Fork.self, Tag.self, Merge.self, Reflog.self, ForgetCommand.self, GarbageCollect.self, Stats.self,
            Passphrase.self, RebuildIndex.self, Blob.self, Check.self, AgentCommand.self, Share.self, InboxCommand.self,
            Accept.self, Spread.self, Repair.self, Placement.self, Capacity.self,
        ]
    )

    public init() {}

    /// Parses the process arguments, runs the chosen command and exits with its status:
    /// 0 success, 1 error, 3 partial (some objects could not be read), 64 usage error.
    public static func runAsMain() async -> Never {
        infinity_tune_malloc()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            try await OpenedStores.flush()
            exit(withError: nil)
        } catch {
            exit(withError: error)
        }
    }
}

/// Options shared by every command that opens a store.
struct StoreOptionGroup: ParsableArguments {
    @Option(name: .long, help: "The store: a bare store's directory, or a working directory holding .infinity (default: $INFINITY_STORE, else the nearest .infinity above the current directory).")
    var store: String?

    @Option(name: .long, help: "Read the passphrase from the first line of this file.")
    var passphraseFile: String?

    @Flag(name: [.short, .long], help: "Print nothing but results and errors.")
    var quiet = false

    @Flag(name: [.short, .long], help: "Say more about what is done.")
    var verbose = false

    /// Where the store is, and the working directory it belongs to (nil for a bare store).
    func location() throws -> Workspace {
        if let store { return Workspace(given: store) }
        if let store = ProcessInfo.processInfo.environment["INFINITY_STORE"], !store.isEmpty { return Workspace(given: store) }
        if let found = Workspace.search(from: FileManager.default.currentDirectoryPath) { return found }
        throw ValidationError(
            "no store here: run 'infinity init' to make this directory a working directory, or pass --store PATH, or set INFINITY_STORE")
    }

    func storePath() throws -> String { try location().storePath }

    func passphrase(confirm: Bool = false) throws -> SecureBytes {
        try PassphraseSource(file: passphraseFile).read(confirm: confirm)
    }

    func openStore() async throws -> Store {
        try await OpenedStores.open(try storePath(), passphrase: try passphrase())
    }
}

/// A store, and the working directory it was found in (git-style, `DIR/.infinity`), if any.
struct Workspace {
    static let storeFolderName = ".infinity"

    var storePath: String
    /// The directory whose contents `commit` records by default; nil for a bare store.
    var workingDirectory: String?

    /// `path` names a bare store, or a working directory holding `.infinity`, or `.infinity` itself;
    /// or it is a store URL (`sqlite:`, `s3://`), which has no working directory.
    init(given path: String) {
        if case .remote = try? StoreAddress(path) {
            storePath = path
            workingDirectory = nil
            return
        }
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let nested = absolute + "/" + Self.storeFolderName
        if Self.holdsStore(nested) {
            storePath = nested
            workingDirectory = absolute
        } else if URL(fileURLWithPath: absolute).lastPathComponent == Self.storeFolderName {
            storePath = absolute
            workingDirectory = URL(fileURLWithPath: absolute).deletingLastPathComponent().path
        } else {
            storePath = absolute
            workingDirectory = nil
        }
    }

    init(storePath: String, workingDirectory: String?) {
        self.storePath = storePath
        self.workingDirectory = workingDirectory
    }

    /// The nearest `.infinity` store in `directory` or above it.
    static func search(from directory: String) -> Workspace? {
        var current = URL(fileURLWithPath: directory).standardizedFileURL
        while true {
            let candidate = current.appendingPathComponent(storeFolderName).path
            if holdsStore(candidate) { return Workspace(storePath: candidate, workingDirectory: current.path) }
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { return nil }
            current = parent
        }
    }

    static func holdsStore(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + StoreConfiguration.objectName)
    }
}

/// The stores this process opened. Those in other backends save their history when the command
/// is done (see ``Store/flush()``), so every ref a command moved reaches the store.
enum OpenedStores {
    private static let opened = Mutex<[Store]>([])

    static func open(_ location: String, passphrase: SecureBytes) async throws -> Store {
        let store = try await Store.open(address: try StoreAddress(location), passphrase: passphrase)
        opened.withLock { $0.append(store) }
        for note in store.openingNotes { StandardError.print("warning: \(note)") }
        return store
    }

    static func create(_ location: String, agentName: String, passphrase: SecureBytes, options: StoreOptions = StoreOptions()) async throws -> Store {
        let store = try await Store.create(address: try StoreAddress(location), agentName: agentName, passphrase: passphrase, options: options)
        opened.withLock { $0.append(store) }
        return store
    }

    static func flush() async throws {
        for store in opened.withLock({ $0 }) {
            try await store.flush()
            try (store.backend as? SQLiteBackend)?.checkpoint()
        }
    }
}
