import ArgumentParser
import Foundation
import InfinityBackup
import InfinityDB

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a store and its first agent.",
        discussion: """
            Without --bare, PATH (default: the current directory) becomes a working directory, git-style: the store lives in PATH/.infinity and 'infinity commit' with no paths records PATH. With --bare, PATH itself is the store (for backups of other directories). The agent's master secret is stored only wrapped under the passphrase.

            Examples:
              infinity init                                  # this directory, store in ./.infinity
              infinity init ~/notes --name alice
              infinity init --bare /srv/backups --name backup-bot
              infinity init --bare "s3://backups/laptop?region=eu-west-1" --pack-size 64MiB
              INFINITY_PASSPHRASE=… infinity init --bare "$INFINITY_STORE"
            """)

    @Argument(help: "The working directory (or with --bare, the store's directory).")
    var path: String?

    @Flag(name: .long, help: "Make PATH the store itself, with no working directory.")
    var bare = false

    @Option(name: .long, help: "The agent's name (default: the user name).")
    var name: String?

    @Option(name: .long, help: "Read the passphrase from the first line of this file.")
    var passphraseFile: String?

    @Option(name: .long, help: "The size a pack is finished at, 1MiB to 512MiB (default 16MiB). Larger packs mean fewer objects and requests in a bucket.")
    var packSize: String?

    @Flag(name: [.short, .long], help: "Print nothing but errors.")
    var quiet = false

    func run() async throws {
        var options = StoreOptions()
        if let packSize {
            guard let bytes = ByteCount.parse(packSize), (1 << 20...512 << 20).contains(bytes) else {
                throw ValidationError("--pack-size '\(packSize)' is not a size from 1MiB to 512MiB")
            }
            options.targetPackSize = Int(bytes)
        }
        let given = path ?? (bare ? ProcessInfo.processInfo.environment["INFINITY_STORE"] : nil) ?? FileManager.default.currentDirectoryPath
        if case .remote(let url) = try StoreAddress(given) {
            guard bare else { throw ValidationError("a store at a URL has no working directory: use --bare") }
            let passphrase = try PassphraseSource(file: passphraseFile).read(confirm: true)
            let store = try await OpenedStores.create(url, agentName: name ?? ProcessInfo.processInfo.userName, passphrase: passphrase, options: options)
            if !quiet { print("Created store \(url), owned by agent \(store.identity.name) (\(store.identity.id))") }
            return
        }
        let absolute = URL(fileURLWithPath: given).standardizedFileURL.path
        let storePath = bare ? absolute : absolute + "/" + Workspace.storeFolderName
        if !bare { try FileManager.default.createDirectory(atPath: absolute, withIntermediateDirectories: true) }
        let passphrase = try PassphraseSource(file: passphraseFile).read(confirm: true)
        let store = try await Store.create(
            at: storePath, agentName: name ?? ProcessInfo.processInfo.userName, passphrase: passphrase, options: options)
        if !quiet {
            let created = bare ? "bare store \(storePath)" : "working directory \(absolute) with its store in .infinity"
            print("Created \(created), owned by agent \(store.identity.name) (\(store.identity.id))")
        }
    }
}

struct Blob: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store and read back byte streams (plumbing).",
        subcommands: [Put.self, Get.self])

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a file (or standard input) and print its blob reference.",
            discussion: """
                The reference printed is a read capability for the stored bytes: it carries their keys. Keep it as you would keep the data.

                Examples:
                  infinity blob put photos.tar > photos.ref
                  tar c ~/photos | infinity blob put - > photos.ref
                """)

        @OptionGroup var options: StoreOptionGroup

        @Argument(help: "The file to store, or - for standard input.")
        var file: String

        func run() async throws {
            let store = try await options.openStore()
            let path = file == "-" ? "/dev/stdin" : file
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
            let progress = ProgressLine("storing", total: file == "-" ? nil : size, quiet: options.quiet)
            let input = try InputFile(path: path)
            let blob = try await store.chunks.putBlob(read: input.read(into:), progress: { progress.update($0) })
            try await store.flush()
            progress.finish()
            print(blob.token)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the bytes of a blob reference to a file or standard output.",
            discussion: """
                Every chunk is verified as it is read; damage stops the command with an error that names the chunk.

                Examples:
                  infinity blob get "$(cat photos.ref)" --output photos.tar
                  infinity blob get "$(cat photos.ref)" | tar x
                """)

        @OptionGroup var options: StoreOptionGroup

        @Argument(help: "A reference printed by 'infinity blob put'.")
        var reference: String

        @Option(name: [.short, .long], help: "Write to this file instead of standard output.")
        var output: String?

        func run() async throws {
            let blob = try BlobRef(token: reference.trimmingCharacters(in: .whitespacesAndNewlines))
            let store = try await options.openStore()
            let destination = try output.map { try OutputFile(path: $0) } ?? OutputFile(standardOutput: ())
            let progress = ProgressLine("reading", total: blob.length, quiet: options.quiet || output == nil)
            var written = 0
            try await store.chunks.getBlob(blob) { bytes in
                try destination.write(bytes)
                written += bytes.count
                progress.update(written)
            }
            try destination.commit()
            progress.finish()
        }
    }
}

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the store holds: snapshots, logical and stored size, deduplication and compression.",
        discussion: """
            Logical bytes add up the files of every snapshot reachable from a branch or tag, as a restore of each would write them. Unique bytes are the plaintext of the distinct chunks stored; stored bytes are what the packs take on disk. Deduplication is logical ÷ unique, compression unique ÷ stored.

            Examples:
              infinity stats
              infinity stats --json | jq .storedBytes
            """)

    @OptionGroup var options: StoreOptionGroup

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    struct Report: Encodable {
        var packCount: Int
        var chunkCount: Int
        var snapshots: Int
        var logicalBytes: Int64
        var plaintextBytes: Int
        var storedBytes: Int
        var deduplicationRatio: Double
        var compressionRatio: Double
        /// Chunks gc found unreachable, deleted by a later run once their grace period is over.
        var condemnedChunks: Int
        var condemnedBytes: Int
    }

    func run() async throws {
        let opened = try await OpenedStore(options)
        let statistics = try opened.store.statistics()
        var seen = Set<ChunkID>()
        var logical: Int64 = 0
        let heads = try opened.database.branches().map(\.commit) + opened.database.tags().map(\.commit)
        for head in heads {
            for logged in try await opened.database.commits.log(from: head, limit: .max) where seen.insert(logged.ref.id).inserted {
                logical += try await opened.database.snapshot(commit: logged.ref).get(SnapshotIndex.summary)?.bytes ?? 0
            }
        }
        let report = Report(
            packCount: statistics.packCount, chunkCount: statistics.chunkCount, snapshots: seen.count, logicalBytes: logical,
            plaintextBytes: statistics.plaintextBytes, storedBytes: statistics.storedBytes,
            deduplicationRatio: statistics.plaintextBytes > 0 ? Double(logical) / Double(statistics.plaintextBytes) : 1,
            compressionRatio: statistics.storedBytes > 0 ? Double(statistics.plaintextBytes) / Double(statistics.storedBytes) : 1,
            condemnedChunks: statistics.condemnedChunkCount, condemnedBytes: statistics.condemnedBytes)
        if json { return try JSONOutput.print(report) }
        print("""
            store:            \(opened.store.location)
            owner:            \(opened.store.identity.name) (\(opened.store.identity.id))
            snapshots:        \(report.snapshots)
            logical bytes:    \(ByteCount.format(Int(logical)))
            unique bytes:     \(ByteCount.format(statistics.plaintextBytes)) in \(statistics.chunkCount) chunks
            stored bytes:     \(ByteCount.format(statistics.storedBytes)) in \(statistics.packCount) packs
            deduplication:    \(String(format: "%.2f", report.deduplicationRatio))x
            compression:      \(String(format: "%.2f", report.compressionRatio))x
            """)
        if statistics.condemnedChunkCount > 0 {
            print("condemned:        \(ByteCount.format(statistics.condemnedBytes)) in \(statistics.condemnedChunkCount) chunks, freed by a later gc")
        }
    }
}

struct Passphrase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change the store's passphrase (no data is re-encrypted).",
        discussion: """
            The new passphrase comes from INFINITY_NEW_PASSPHRASE, --new-passphrase-file, or a prompt.

            Examples:
              infinity passphrase
              infinity passphrase --passphrase-file old.txt --new-passphrase-file new.txt
            """)

    @OptionGroup var options: StoreOptionGroup

    @Option(name: .long, help: "Read the new passphrase from the first line of this file.")
    var newPassphraseFile: String?

    func run() async throws {
        let store = try await options.openStore()
        let newPassphrase = try PassphraseSource(
            file: newPassphraseFile, environmentVariable: "INFINITY_NEW_PASSPHRASE", prompt: "New passphrase: "
        ).read(confirm: true)
        try await store.changePassphrase(to: newPassphrase)
        if !options.quiet { print("Passphrase changed for store \(store.location)") }
    }
}

struct RebuildIndex: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild-index",
        abstract: "Recreate the chunk index from the packs alone.",
        discussion: """
            Reads every pack's trailer. Packs that cannot be read are listed on standard error and the exit status is 3; their chunks stay out of the index.

            Example:
              infinity rebuild-index --store ~/backups/store
            """)

    @OptionGroup var options: StoreOptionGroup

    func run() async throws {
        let store = try await options.openStore()
        let report = try await store.rebuildIndex()
        if !options.quiet {
            print("Indexed \(report.chunksIndexed) chunks in \(report.packsIndexed) packs")
        }
        for (pack, reason) in report.unreadablePacks.sorted(by: { $0.key < $1.key }) {
            FileHandle.standardError.write(Data("unreadable pack \(pack): \(reason)\n".utf8))
        }
        if !report.unreadablePacks.isEmpty { throw ExitCode(3) }
    }
}
