import ArgumentParser
import Foundation
import InfinityBackup
import InfinityDB

/// The agents a store knows: its owner and its contacts.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Create, list, show, export, import, trust and remove agents.",
        discussion: """
            An agent is an identity with its own keys and its own store. Agents share commits by handing each other their cards (public keys and where their store is): nothing secret is ever exchanged. See Docs/AGENTS.md.

            Examples:
              infinity agent create bob --store ~/agents/bob
              infinity agent export > alice.card           # hand this to another agent
              infinity agent import "$(cat alice.card)"    # on the other side
              infinity agent list --json
            """,
        subcommands: [Create.self, ListAgents.self, ShowAgent.self, Export.self, Import.self, Trust.self, Distrust.self, Remove.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new agent with a store of its own.",
            discussion: """
                The new store is bare (no working directory). When run where a store is found (--store, INFINITY_STORE or a .infinity above), the new agent and that store's owner are introduced to each other as trusted contacts, so they can share at once.

                Examples:
                  infinity agent create bob --store ~/agents/bob
                  infinity agent create carol                       # store in ~/.infinity/agents/carol
                  infinity agent create scratch --no-introduce
                """)

        @OptionGroup var options: StoreOptionGroup

        @Argument(help: "The new agent's name.")
        var name: String

        @Option(name: .customLong("at"), help: "Where the new agent's store goes (default: $INFINITY_HOME/agents/NAME, INFINITY_HOME defaulting to ~/.infinity).")
        var at: String?

        @Flag(name: .long, help: "Do not introduce the new agent to the current store's owner.")
        var noIntroduce = false

        func run() async throws {
            try AgentBook.validateHandle(name)
            var path = at ?? "\(StoreAddress.home)/agents/\(name)"
            if case .directory(let directory) = try StoreAddress(path) {
                path = URL(fileURLWithPath: directory).standardizedFileURL.path
                try OwnerOnly.createDirectories(path)
            }
            let passphrase = try options.passphrase(confirm: true)
            let created = try await OpenedStores.create(path, agentName: name, passphrase: passphrase)
            if !options.quiet { print("Created agent \(name) (\(created.identity.id)) with its store at \(path)") }
            guard !noIntroduce, let current = try? options.location() else { return }
            let store = try await OpenedStores.open(current.storePath, passphrase: try options.passphrase())
            try store.agents.add(try created.card(), handle: name, trusted: true)
            try created.agents.add(try store.card(), handle: store.configuration.ownerName, trusted: true)
            if !options.quiet { print("Introduced \(name) and \(store.configuration.ownerName) to each other") }
        }
    }

    struct ListAgents: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List this store's owner and the agents it knows.",
            discussion: """
                Examples:
                  infinity agent list
                  infinity agent list --json | jq '.[] | select(.trusted) | .handle'
                """)

        @OptionGroup var options: StoreOptionGroup

        @Flag(name: .long, help: "Print JSON for scripts.")
        var json = false

        func run() async throws {
            let store = try await options.openStore()
            let rows = try [AgentJSON(owner: store)] + store.agents.contacts().map(AgentJSON.init(contact:))
            if json { return try JSONOutput.print(rows) }
            let width = max(6, rows.map(\.handle.count).max() ?? 0)
            print("NAME".padding(toLength: width, withPad: " ", startingAt: 0) + "  ID                 TRUST    STORE")
            for row in rows {
                let trust = row.isOwner ? "owner" : row.trusted ? "trusted" : "no"
                print(row.handle.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(row.id.prefix(16))…  "
                    + trust.padding(toLength: 7, withPad: " ", startingAt: 0) + "  \(row.store)")
            }
        }
    }

    struct ShowAgent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show an agent: id, keys, store, trust and what its store accepts.",
            discussion: """
                Examples:
                  infinity agent show           # this store's owner
                  infinity agent show bob --json
                """)

        @OptionGroup var options: StoreOptionGroup

        @Argument(help: "A handle or id prefix (default: this store's owner).")
        var name: String?

        @Flag(name: .long, help: "Print JSON for scripts.")
        var json = false

        func run() async throws {
            let store = try await options.openStore()
            var row: AgentJSON
            var usage: CapacityUsage?
            if let name {
                let contact = try store.agents.contact(named: name)
                row = AgentJSON(contact: contact)
                usage = try? await store.capacityUsage(of: contact)
            } else {
                row = try AgentJSON(owner: store)
                usage = try? await store.capacityUsage()
            }
            row.capacity = usage.map(CapacityJSON.init)
            if json { return try JSONOutput.print(row) }
            print("name      \(row.name)\(row.handle != row.name ? " (known here as \(row.handle))" : "")")
            print("id        \(row.id)")
            print("signing   \(row.signingKey) (Ed25519)")
            print("receiving \(row.agreementKey) (X25519)")
            print("store     \(row.store.isEmpty ? "(not given)" : row.store)")
            print("trust     \(row.isOwner ? "this store's owner" : row.trusted ? "trusted: its shares are accepted" : "not trusted: its shares are refused")")
            if let capacity = row.capacity {
                print("accepts   \(capacity.description)")
            }
            print("card      \(row.card)")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print this store's agent card, for other agents to import.",
            discussion: """
                The card holds the agent's name, public keys and where its store is, signed by the agent. It holds nothing secret. Compare the id with the other side by another channel before they trust it.

                Examples:
                  infinity agent export                       # one line: infinity-agent:…
                  infinity agent export --output alice.json
                  infinity agent export --location /mnt/shared/alice
                """)

        @OptionGroup var options: StoreOptionGroup

        @Option(name: [.short, .long], help: "Write a JSON file instead of printing the card.")
        var output: String?

        @Option(name: .long, help: "The store location to put in the card (default: this store's path).")
        var location: String?

        func run() async throws {
            let store = try await options.openStore()
            let card = try store.card(location: location)
            guard let output else { return print(card.text) }
            let file = CardFile(card: card)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(file).write(to: URL(fileURLWithPath: output), options: .atomic)
            if !options.quiet { StandardError.print("Wrote the card of \(card.identity.name) (\(card.identity.id)) to \(output)") }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add another agent from its card (text or file), trusted unless told otherwise.",
            discussion: """
                Examples:
                  infinity agent import infinity-agent:AQVhbGljZ…
                  infinity agent import alice.json --as alice-laptop
                  infinity agent import bob.card --untrusted     # its shares wait until 'agent trust bob'
                """)

        @OptionGroup var options: StoreOptionGroup

        @Argument(help: "A card (infinity-agent:…) or a file holding one (text or the JSON of 'agent export --output').")
        var card: String

        @Option(name: .customLong("as"), help: "The name to know the agent by here (default: its own name).")
        var handle: String?

        @Flag(name: .long, help: "Do not accept its shares until 'infinity agent trust'.")
        var untrusted = false

        func run() async throws {
            let parsed = try CardFile.read(card)
            let store = try await options.openStore()
            guard parsed.identity.id != store.identity.id else {
                throw CLIError("that card is this store's own agent (\(store.identity.name))")
            }
            let contact = try store.agents.add(parsed, handle: handle ?? parsed.identity.name, trusted: !untrusted)
            if !options.quiet {
                print("Added agent \(contact.handle) (\(contact.id))\(untrusted ? ", not trusted yet" : ", trusted")")
            }
        }
    }

    struct Trust: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept shares from an agent.",
            discussion: "Example:\n  infinity agent trust bob")

        @OptionGroup var options: StoreOptionGroup
        @Argument(help: "A handle or id prefix.") var name: String

        func run() async throws { try await setTrust(true, of: name, options) }
    }

    struct Distrust: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Refuse further shares from an agent (what was accepted stays).",
            discussion: "Example:\n  infinity agent distrust bob")

        @OptionGroup var options: StoreOptionGroup
        @Argument(help: "A handle or id prefix.") var name: String

        func run() async throws { try await setTrust(false, of: name, options) }
    }

    private static func setTrust(_ trusted: Bool, of name: String, _ options: StoreOptionGroup) async throws {
        let store = try await options.openStore()
        try store.agents.setTrusted(trusted, handle: try store.agents.contact(named: name).handle)
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget an agent: its card, what it holds and the copies it keeps for the spread.",
            discussion: """
                The copies of this store's packs it keeps are deleted from its store when it can be reached; run 'infinity spread' to place them elsewhere. Its refs (NAME/…) stay, so nothing accepted from it is lost, unless --refs is given.

                Examples:
                  infinity agent remove bob
                  infinity agent remove bob --refs
                """)

        @OptionGroup var options: StoreOptionGroup
        @Argument(help: "A handle or id prefix.") var name: String

        @Flag(name: .long, help: "Delete its refs (NAME/…) too.")
        var refs = false

        func run() async throws {
            let store = try await options.openStore()
            let contact = try store.agents.contact(named: name)
            let left = try await store.removeAgent(contact.handle)
            let database = try store.database()
            let agentRefs = try database.refs.refs(kind: .agent).filter { $0.0.fullName.hasPrefix("refs/agents/\(contact.handle)/") }
            if refs {
                for (ref, commit) in agentRefs {
                    try database.refs.update(ref, to: nil, expected: commit.id, agent: store.identity.id, message: "agent \(contact.handle) removed")
                }
            }
            guard !options.quiet else { return }
            var text = "Removed agent \(contact.handle)"
            if left > 0 { text += "; \(left) copies of this store's packs could not be deleted from its store" }
            if !agentRefs.isEmpty {
                text += refs ? "; deleted its refs" : "; its refs stay (\(agentRefs.map(\.0.shortName).joined(separator: ", ")))"
            }
            print(text)
        }
    }
}

/// An agent as `agent list` and `agent show` print it.
struct AgentJSON: Encodable {
    var handle: String
    var name: String
    var id: String
    var isOwner: Bool
    var trusted: Bool
    var store: String
    var signingKey: String
    var agreementKey: String
    var card: String
    var capacity: CapacityJSON?

    init(owner store: Store) throws {
        let card = try store.card()
        self.init(card: card, handle: card.identity.name, isOwner: true, trusted: true)
    }

    init(contact: Contact) {
        self.init(card: contact.card, handle: contact.handle, isOwner: false, trusted: contact.trusted)
    }

    private init(card: AgentCard, handle: String, isOwner: Bool, trusted: Bool) {
        self.handle = handle
        name = card.identity.name
        id = card.identity.id.description
        self.isOwner = isOwner
        self.trusted = trusted
        store = card.location
        signingKey = Data(card.identity.signingPublicKey.rawRepresentation).base64EncodedString()
        agreementKey = Data(card.identity.agreementPublicKey.rawRepresentation).base64EncodedString()
        self.card = card.text
    }
}

/// What a store accepts from others and holds for them.
struct CapacityJSON: Encodable, CustomStringConvertible {
    var declaredBytes: Int64?
    var until: String?
    var inboxBytes: Int64
    var heldBytes: Int64
    var freeBytes: Int64?

    init(_ usage: CapacityUsage) {
        declaredBytes = usage.declaration?.bytes
        until = usage.declaration?.until.map(DateText.iso)
        inboxBytes = usage.inboxBytes
        heldBytes = usage.heldBytes
        freeBytes = usage.freeBytes
    }

    var description: String {
        let held = "holds \(ByteCount.format(inboxBytes)) of shares and \(ByteCount.format(heldBytes)) of copies for others"
        guard let declaredBytes else { return "shares without limit, no copies for others (no capacity declared); \(held)" }
        let end = until.map { " until \($0)" } ?? ""
        return "\(ByteCount.format(declaredBytes)) from others\(end); \(held); \(ByteCount.format(freeBytes ?? 0)) free"
    }
}

/// The file `agent export --output` writes: the card, and its fields for people to read.
struct CardFile: Codable {
    var format = "infinitydb-agent-card"
    var version = 1
    var name: String
    var id: String
    var store: String
    var card: String

    init(card: AgentCard) {
        name = card.identity.name
        id = card.identity.id.description
        store = card.location
        self.card = card.text
    }

    /// A card given as text, or the path of a file holding the text or this JSON.
    static func read(_ argument: String) throws -> AgentCard {
        if argument.hasPrefix(AgentCard.textPrefix) { return try AgentCard(text: argument) }
        guard let data = FileManager.default.contents(atPath: argument) else {
            throw CLIError("'\(argument)' is neither an agent card (infinity-agent:…) nor a readable file")
        }
        if let file = try? JSONDecoder().decode(CardFile.self, from: data) {
            guard file.format == "infinitydb-agent-card" else { throw CLIError("\(argument) is not an agent card file") }
            guard file.version == 1 else { throw CLIError("\(argument) is an agent card file of version \(file.version); this build reads version 1") }
            return try AgentCard(text: file.card)
        }
        return try AgentCard(text: String(decoding: data, as: UTF8.self))
    }
}

// MARK: Share and accept

struct Share: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Share a commit with another agent.",
        discussion: """
            Copies into the agent's store the sealed chunks reachable from REV that it does not hold yet (nothing is re-encrypted), and leaves an envelope in its inbox: the commit's reference, sealed to that agent and signed by this one. The agent then runs 'infinity accept' and finds the commit as <this agent>/<NAME>. Sharing a branch again sends only what is new.

            Whoever receives a commit can read it and its whole history, forever: it cannot be taken back.

            Examples:
              infinity share main --with bob
              infinity share v1.0 --with carol --as release
              infinity share HEAD --with bob --as draft --json
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "The commit to share: a branch, tag, id, main~2…")
    var revision: String

    @Option(name: .customLong("with"), help: "The agent to share with (a handle or id prefix).")
    var recipient: String

    @Option(name: .customLong("as"), help: "The branch name it gets on the other side (default: REV's branch name).")
    var name: String?

    @Flag(name: .long, help: "Send every chunk, even those the recipient is known to hold (after it lost data).")
    var full = false

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    struct ReportJSON: Encodable {
        var recipient, commit, ref, envelope: String
        var chunksWalked, chunksSkipped, chunksSent: Int
        var chunkBytesSent, bytesWritten: Int64
        /// The share itself, from resolving the revision to the envelope written (not opening the store).
        var seconds: Double
    }

    func run() async throws {
        let opened = try await OpenedStore(options)
        let refName = try name ?? defaultName(opened.database)
        let progress = ProgressLine("Sharing", total: nil, quiet: options.quiet || json)
        let started = ContinuousClock.now
        let report = try await opened.database.share(revision, with: recipient, as: refName, everything: full) { state in
            progress.update(Int(state.bytesSent))
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        progress.finish()
        let sender = opened.store.configuration.ownerName
        if json {
            return try JSONOutput.print(ReportJSON(
                recipient: report.recipient, commit: report.commit.description, ref: "\(sender)/\(report.refName)",
                envelope: report.envelope, chunksWalked: report.chunksWalked, chunksSkipped: report.chunksSkipped,
                chunksSent: report.chunksSent, chunkBytesSent: report.chunkBytesSent, bytesWritten: report.bytesWritten,
                seconds: seconds))
        }
        if !options.quiet {
            print("Shared \(report.commit.shortDescription) with \(report.recipient) as \(sender)/\(report.refName): \(report.chunksSent) chunks, \(ByteCount.format(Int(report.chunkBytesSent))) sent; \(report.chunksSkipped) chunks it already holds were skipped")
        }
    }

    private func defaultName(_ database: Database) throws -> String {
        if revision == "HEAD" || revision == "@", let branch = try database.currentBranch() { return branch }
        if try database.branches().contains(where: { $0.name == revision }) { return revision }
        if try database.tags().contains(where: { $0.name == revision }) { return revision }
        throw ValidationError("\(revision) is not a branch or tag name: say what to call it with --as NAME")
    }
}

struct InboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inbox",
        abstract: "List the shares waiting to be accepted.",
        discussion: """
            Each share shows its sender, the ref it would install, the commit and its size. Shares that cannot be accepted as they are say why (unknown or untrusted sender, damaged envelope).

            Examples:
              infinity inbox
              infinity inbox --json
            """)

    @OptionGroup var options: StoreOptionGroup

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    struct EntryJSON: Encodable {
        var envelope: String
        var sender: String?
        var senderID: String?
        var ref: String?
        var commit: String?
        var time: String?
        var chunks: Int?
        var bytes: Int?
        var problem: String?
    }

    func run() async throws {
        let opened = try await OpenedStore(options)
        let entries = try await opened.database.inbox().map { entry in
            EntryJSON(
                envelope: entry.name, sender: entry.sender?.handle ?? entry.envelope?.sender.identity.name,
                senderID: entry.envelope?.sender.identity.id.description,
                ref: entry.envelope.map { "\(entry.sender?.handle ?? $0.sender.identity.name)/\($0.refName)" },
                commit: entry.envelope?.commit.id.description, time: entry.envelope.map { DateText.iso($0.time) },
                chunks: entry.envelope?.chunkCount, bytes: entry.envelope?.bundleByteCount, problem: entry.problem)
        }
        if json { return try JSONOutput.print(entries) }
        if entries.isEmpty { return print("The inbox is empty.") }
        for entry in entries {
            let id = String(entry.envelope.dropFirst("inbox/".count).prefix(12))
            if let ref = entry.ref, let commit = entry.commit, let chunks = entry.chunks, let bytes = entry.bytes {
                print("\(id)  \(ref)  \(commit.prefix(12))  \(chunks) chunks, \(ByteCount.format(bytes))  \(entry.time ?? "")")
            } else {
                print("\(id)  (unreadable)")
            }
            if let problem = entry.problem { print("    \(problem)") }
        }
    }
}

struct Accept: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accept shares from the inbox, or discard them.",
        discussion: """
            Each share is checked before anything is installed: the envelope's seal and the sender's signature, that the sender is a trusted agent, every commit's signature and every chunk that came with it. Then the ref <sender>/<name> is set. A share that fails any check is refused with the reason and stays in the inbox.

            Examples:
              infinity accept                    # every waiting share
              infinity accept 3fa9c2             # one, by the start of its id
              infinity accept --trust            # also from senders not trusted yet (compare ids first!)
              infinity accept 3fa9c2 --discard
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "Shares to accept, by id or the start of it (default: all).")
    var envelopes: [String] = []

    @Flag(name: .long, help: "Accept from senders that are unknown or not trusted, and trust them.")
    var trust = false

    @Flag(name: .long, help: "Remove the named shares without installing anything.")
    var discard = false

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    struct ResultJSON: Encodable {
        var envelope: String
        var accepted: Bool
        var sender: String?
        var ref: String?
        var commit: String?
        var chunks: Int?
        var bytes: Int64?
        var commitsVerified: Int?
        var error: String?
        /// The accept itself (not opening the store).
        var seconds: Double?
    }

    func run() async throws {
        let opened = try await OpenedStore(options)
        let database = opened.database
        let inbox = try await database.inbox()
        let waiting = inbox.map(\.name)
        var chosen: [String] = []
        if envelopes.isEmpty {
            if discard { throw ValidationError("name the shares to discard (see 'infinity inbox')") }
            // Packs of an interrupted share have no envelope to accept: they are only discarded.
            chosen = inbox.filter { !$0.isInterrupted }.map(\.name)
            let interrupted = waiting.count - chosen.count
            if interrupted > 0 && !json {
                StandardError.print("note: \(interrupted) interrupted share(s) in the inbox; discard with 'infinity accept ID --discard' (see 'infinity inbox')")
            }
        } else {
            for given in envelopes {
                let matches = waiting.filter { $0.hasPrefix("inbox/" + given) || $0 == given }
                guard matches.count == 1 else {
                    throw ValidationError(matches.isEmpty ? "no share '\(given)' in the inbox" : "'\(given)' matches \(matches.count) shares; give more of the id")
                }
                chosen.append(matches[0])
            }
        }
        var results: [ResultJSON] = []
        for name in chosen {
            if discard {
                try await database.discard(name)
                results.append(ResultJSON(envelope: name, accepted: false))
                if !options.quiet && !json { print("Discarded \(name)") }
                continue
            }
            do {
                let started = ContinuousClock.now
                let report = try await database.accept(name, trustSender: trust)
                results.append(ResultJSON(
                    envelope: name, accepted: true, sender: report.sender, ref: report.ref.shortName,
                    commit: report.commit.description, chunks: report.chunksReceived, bytes: report.bytesReceived,
                    commitsVerified: report.commitsVerified, seconds: (ContinuousClock.now - started) / .seconds(1)))
                if !options.quiet && !json {
                    print("Accepted \(report.ref.shortName) = \(report.commit.shortDescription) from \(report.sender)\(report.senderAdded ? " (now a trusted agent)" : ""): \(report.chunksReceived) chunks, \(ByteCount.format(Int(report.bytesReceived))), \(report.commitsVerified) new commits verified")
                }
            } catch {
                results.append(ResultJSON(envelope: name, accepted: false, error: "\(error)"))
                if !json { StandardError.print("infinity: \(error)") }
            }
        }
        if json { try JSONOutput.print(results) } else if chosen.isEmpty && !options.quiet { print("The inbox is empty.") }
        if results.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }
}

// MARK: Spread, repair, placement, capacity

extension Store {
    /// Copies new packs to the agents that keep copies, when the store's spread asks for more
    /// than its own copy. A failure is a warning: the commit itself is safe.
    func keepSpread(quiet: Bool) async throws {
        guard try agents.defaultSpread() > 1 else { return }
        do {
            let report = try await spread()
            if !quiet && report.copiesMade > 0 {
                StandardError.print("spread: \(report.copiesMade) new copies (\(ByteCount.format(Int(report.bytesCopied)))) kept by other agents")
            }
        } catch {
            StandardError.print("warning: the spread of \(try agents.defaultSpread()) is not kept up: \(error)")
        }
    }

}

struct Spread: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep N copies of every pack across agents that accept them.",
        discussion: """
            N counts this store's own copy: 'spread 3' keeps two more, each in another trusted agent's store that declared a capacity for others ('infinity capacity' there). N becomes the store's default, kept up after every commit. Reads fall back to the copies when a pack here is missing or damaged; 'infinity repair' restores the spread after a loss. The whole plan is checked against each holder's capacity before anything is written.

            Examples:
              infinity spread 3
              infinity spread            # apply the default again, and report
              infinity spread 1          # own copy only; removes the copies kept elsewhere
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "Copies of every pack, this store's own included.")
    var copies: Int?

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func run() async throws {
        let store = try await options.openStore()
        if let copies {
            guard copies >= 1 else { throw ValidationError("a spread keeps at least 1 copy (the store's own)") }
            try store.agents.setDefaultSpread(copies)
        }
        let progress = ProgressLine("Spreading", total: nil, quiet: options.quiet || json)
        let report = try await store.spread { done, _ in progress.update(done) }
        progress.finish()
        try printSpread(report, json: json, quiet: options.quiet)
    }
}

struct SpreadJSON: Encodable {
    var copies, packs, copiesMade, copiesRemoved: Int
    var bytesCopied: Int64
    var bytesByHolder: [String: Int64]

    init(_ report: SpreadReport) {
        copies = report.copies
        packs = report.packs
        copiesMade = report.copiesMade
        copiesRemoved = report.copiesRemoved
        bytesCopied = report.bytesCopied
        bytesByHolder = report.bytesByHolder
    }
}

func printSpread(_ report: SpreadReport, json: Bool, quiet: Bool) throws {
    if json { return try JSONOutput.print(SpreadJSON(report)) }
    guard !quiet else { return }
    print("Spread of \(report.copies): \(report.packs) packs; \(report.copiesMade) copies made (\(ByteCount.format(Int(report.bytesCopied)))), \(report.copiesRemoved) removed")
    for (holder, bytes) in report.bytesByHolder.sorted(by: { $0.key < $1.key }) {
        print("  \(holder) keeps \(ByteCount.format(Int(bytes)))")
    }
}

struct Repair: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore lost or damaged packs from the agents that keep copies, and list the files still lost.",
        discussion: """
            Packs missing here (or of the wrong size; with --read-data, also damaged) are copied back from the agents keeping them, after checking they are this store's packs. Copies an agent no longer has are dropped from the placement map, then the spread is made whole again. A damaged chunk index is rebuilt from the packs when the store opens (see also rebuild-index).

            Then every snapshot a branch, tag or agent ref names is gone through, and the files whose content is still damaged or missing are listed by ref: 'checkout' restores every other file of those snapshots exactly, and names these.

            Exit status 3 when some pack or file is lost.

            Examples:
              infinity repair
              infinity repair --read-data --json
            """)

    @OptionGroup var options: StoreOptionGroup

    @Flag(name: .long, help: "Read every pack in full to find damage, not only missing packs.")
    var readData = false

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    struct ReportJSON: Encodable {
        var packsRestored: [String]
        var packsLost: [String]
        var copiesMissing: Int
        var spread: SpreadJSON
        var lostFiles: [String: [LostFileJSON]]
    }

    struct LostFileJSON: Encodable {
        var path: String
        var reason: String
    }

    func run() async throws {
        let store = try await options.openStore()
        let progress = ProgressLine("Checking packs", total: nil, quiet: options.quiet || json)
        let report = try await store.repair(readData: readData) { done, _ in progress.update(done) }
        progress.finish()
        let lostFiles = try await filesStillLost(in: store)
        if json {
            try JSONOutput.print(ReportJSON(
                packsRestored: report.packsRestored, packsLost: report.packsLost, copiesMissing: report.copiesMissing,
                spread: SpreadJSON(report.spread),
                lostFiles: lostFiles.mapValues { $0.map { LostFileJSON(path: $0.path, reason: $0.reason) } }))
        } else if !options.quiet {
            print("Restored \(report.packsRestored.count) packs from copies; \(report.packsLost.count) lost; \(report.copiesMissing) copies were missing at their holders")
            for pack in report.packsLost { print("  lost: \(pack)") }
            try printSpread(report.spread, json: false, quiet: false)
            for (ref, files) in lostFiles.sorted(by: { $0.key < $1.key }) {
                print("\(ref): \(files.count) file\(files.count == 1 ? "" : "s") lost; a checkout restores the rest")
                for file in files { print("  lost: \(file.path): \(file.reason)") }
            }
        }
        if !report.packsLost.isEmpty || !lostFiles.isEmpty { throw ExitCode(3) }
    }

    /// The files each ref's snapshot can no longer give back, by ref name (refs with none left out).
    private func filesStillLost(in store: Store) async throws -> [String: [LostFile]] {
        let database = try store.database()
        let presentPacks = Set(try await store.backend.list(prefix: PackFormat.objectPrefix).map(\.name))
        let salvage = SnapshotSalvage(database: database)
        var lost: [String: [LostFile]] = [:]
        for (name, commit) in try database.refs.refs() {
            let snapshot = try await database.snapshot(commit: commit)
            // App state committed through the library is not a snapshot of files.
            guard try await snapshot.get(SnapshotIndex.summary) != nil else { continue }
            do {
                let files = try await salvage.lostFiles(in: snapshot, readData: readData, presentPacks: presentPacks)
                if !files.isEmpty { lost[name.description] = files }
            } catch {
                lost[name.description] = [LostFile(path: "/", reason: "the snapshot's tree cannot be read: \(error)")]
            }
        }
        return lost
    }
}

struct Placement: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show which agents hold a file's chunks, or a snapshot's.",
        discussion: """
            With PATH, one line per chunk of the file: where it starts, its length, its id and every agent that holds it (this store's owner first when its own copy is there). Without PATH, how many of the snapshot's chunks each agent holds.

            Examples:
              infinity placement HEAD photos/2026/beach.jpg
              infinity placement main --json
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "The snapshot.")
    var revision: String

    @Argument(help: "A file in it.")
    var path: String?

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    struct ChunkJSON: Encodable {
        var offset: Int
        var length: Int
        var chunk: String
        var pack: String?
        var holders: [String]
    }

    struct HolderJSON: Encodable {
        var agent: String
        var chunks: Int
    }

    func run() async throws {
        let opened = try await OpenedStore(options)
        let database = opened.database
        guard let path else {
            let reached = try await database.reachableChunks(from: [try await database.resolve(revision)])
            var counts: [String: Int] = [:]
            var unplaced = 0
            for placement in try await opened.store.placement(of: Array(reached.ids)) {
                if placement.holders.isEmpty { unplaced += 1 }
                for holder in placement.holders { counts[holder, default: 0] += 1 }
            }
            let rows = counts.map { HolderJSON(agent: $0.key, chunks: $0.value) }.sorted { $0.agent < $1.agent }
            if json { return try JSONOutput.print(rows) }
            print("\(reached.count) chunks reachable from \(revision)")
            for row in rows { print("  \(row.agent) holds \(row.chunks)") }
            if unplaced > 0 { print("  \(unplaced) chunks are held by no one") }
            return
        }
        let snapshot = try await database.snapshot(revision)
        let snapshotPath = try opened.snapshotPath(path)
        guard let entry = try await snapshot.get(snapshotPath, in: SnapshotIndex.files) else {
            throw BackupError(.notFound, "\(snapshotPath) is not in \(revision)")
        }
        guard entry.kind == .file else { throw BackupError(.invalidArgument, "\(snapshotPath) is a \(entry.kind), not a file") }
        var refs: [ChunkRef] = []
        if let content = entry.content { refs = try await opened.store.chunks.chunks(of: content) }
        let placements = try await opened.store.placement(of: refs.map(\.id))
        var offset = 0
        var rows: [ChunkJSON] = []
        for (ref, placement) in zip(refs, placements) {
            rows.append(ChunkJSON(offset: offset, length: ref.length, chunk: ref.id.description, pack: placement.pack, holders: placement.holders))
            offset += ref.length
        }
        if json { return try JSONOutput.print(rows) }
        for row in rows {
            print("\(String(row.offset).leftPadded(12)) \(String(row.length).leftPadded(9))  \(row.chunk.prefix(12))  \(row.holders.isEmpty ? "(held by no one)" : row.holders.joined(separator: ", "))")
        }
    }
}

struct Capacity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Declare how much this store accepts from other agents, or show it.",
        discussion: """
            The declaration covers shares waiting in the inbox and copies of other agents' packs kept for their spread. Senders check it before writing anything and refuse what would not fit. Without a declaration, shares are accepted without limit and no copies are kept for others.

            Examples:
              infinity capacity                  # show what is declared and used
              infinity capacity 50GiB
              infinity capacity 10GiB --for 30d
              infinity capacity --withdraw
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "Bytes accepted from others: 500MiB, 20GiB, 1TiB, 10GB or a plain number of bytes.")
    var size: String?

    @Option(name: .customLong("for"), help: "How long the offer stands: 12h, 30d, 8w.")
    var duration: String?

    @Flag(name: .long, help: "Withdraw the declaration.")
    var withdraw = false

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func run() async throws {
        let store = try await options.openStore()
        if withdraw {
            try await store.withdrawCapacity()
        } else if let size {
            guard let bytes = ByteCount.parse(size) else {
                throw ValidationError("'\(size)' is not a size: write 500MiB, 20GiB, 1TB or a number of bytes")
            }
            let until = try duration.map { Date(timeIntervalSinceNow: try DurationText.parse($0)) }
            try await store.declareCapacity(bytes: bytes, until: until)
        } else if duration != nil {
            throw ValidationError("--for needs a SIZE")
        }
        let usage = CapacityJSON(try await store.capacityUsage())
        if json { return try JSONOutput.print(usage) }
        if !options.quiet { print("\(store.configuration.ownerName) accepts \(usage.description)") }
    }
}

/// Durations as people type them.
enum DurationText {
    static func parse(_ text: String) throws -> TimeInterval {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        guard let last = text.last, let unit = units[last], let value = Double(text.dropLast()), value > 0 else {
            throw ValidationError("'\(text)' is not a duration: write 12h, 30d or 8w")
        }
        return value * unit
    }
}
