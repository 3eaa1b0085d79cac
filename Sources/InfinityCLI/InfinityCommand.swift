import ArgumentParser
import Foundation
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
        subcommands: [Init.self, Blob.self, Stats.self, Passphrase.self, RebuildIndex.self, Check.self]
    )

    public init() {}

    /// Parses the process arguments, runs the chosen command and exits with its status:
    /// 0 success, 1 error, 3 partial (some objects could not be read), 64 usage error.
    public static func runAsMain() async -> Never {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(withError: nil)
        } catch {
            exit(withError: error)
        }
    }
}

/// Options shared by every command that opens a store.
struct StoreOptionGroup: ParsableArguments {
    @Option(name: .long, help: "The store's directory (default: $INFINITY_STORE).")
    var store: String?

    @Option(name: .long, help: "Read the passphrase from the first line of this file.")
    var passphraseFile: String?

    @Flag(name: [.short, .long], help: "Print nothing but results and errors.")
    var quiet = false

    func storePath() throws -> String {
        if let store { return store }
        if let store = ProcessInfo.processInfo.environment["INFINITY_STORE"], !store.isEmpty { return store }
        throw ValidationError("no store given: pass --store PATH or set INFINITY_STORE")
    }

    func passphrase(confirm: Bool = false) throws -> SecureBytes {
        try PassphraseSource(file: passphraseFile).read(confirm: confirm)
    }

    func openStore() async throws -> Store {
        try await Store.open(at: try storePath(), passphrase: try passphrase())
    }
}
