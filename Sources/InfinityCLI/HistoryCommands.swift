import ArgumentParser
import Foundation
import InfinityBackup
import InfinityDB

/// A commit as `log --json` and `show --json` print it.
struct CommitJSON: Encodable {
    var id: String
    var parents: [String]
    var time: String
    var author: String
    var authorID: String
    /// Every commit's Ed25519 signature is checked when it is loaded; an invalid one stops the command.
    var signatureVerified = true
    /// Who the author is to this store: "owner", "trusted", "untrusted" or "unknown".
    var authorStanding: String?
    var message: String
    var refs: [String]
    var snapshot: SnapshotSummary?

    init(_ logged: LoggedCommit, refs: [String], snapshot: SnapshotSummary? = nil, standing: AuthorStanding? = nil) {
        id = logged.ref.id.description
        authorStanding = standing?.rawValue
        parents = logged.commit.parents.map(\.id.description)
        time = DateText.iso(logged.commit.time)
        author = logged.commit.author.name
        authorID = logged.commit.author.id.description
        message = logged.commit.message
        self.refs = refs
        self.snapshot = snapshot
    }
}

extension OpenedStore {
    /// Branch and tag names by the commit they point at, for decorating logs.
    func refNamesByCommit() throws -> [ChunkID: [String]] {
        var names: [ChunkID: [String]] = [:]
        let current = try database.currentBranch()
        for (name, commit) in try database.branches() { names[commit.id, default: []].append(name == current ? "HEAD -> \(name)" : name) }
        for (name, commit) in try database.tags() { names[commit.id, default: []].append("tag: \(name)") }
        for (name, commit) in try database.refs.refs(kind: .agent) { names[commit.id, default: []].append(name.shortName) }
        return names
    }

    /// Who a commit's author is to this store.
    func standing(of author: AgentIdentity) throws -> AuthorStanding {
        if author.id == store.identity.id { return .owner }
        guard let contact = try store.agents.contact(id: author.id) else { return .unknown }
        return contact.trusted ? .trusted : .untrusted
    }

    /// The author as `log` and `show` print it: the name this store knows it by, and its standing.
    func authorText(_ author: AgentIdentity) throws -> String {
        let handle = try store.agents.contact(id: author.id)?.handle ?? author.name
        switch try standing(of: author) {
        case .owner: return "\(handle) ✓"
        case .trusted: return "\(handle) ✓ (trusted agent)"
        case .untrusted: return "\(handle) ✓ (agent not trusted)"
        case .unknown: return "\(author.name) ✓ (unknown agent \(author.id.description.prefix(12)))"
        }
    }
}

/// Who a commit's author is to the store reading it. Whatever the standing, the signature was
/// verified: the commit was made by the holder of that agent's key.
enum AuthorStanding: String {
    case owner, trusted, untrusted, unknown
}

struct Log: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List commits, newest first, with a graph of branches and merges.",
        discussion: """
            Each commit shows its id, time, author agent and message; every signature is verified as the commit is read (✓), and the author is marked when it is another agent, trusted or not, or one this store does not know.

            Examples:
              infinity log
              infinity log main~10 --limit 5
              infinity log --json | jq '.[0].id'
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "Where to start (default: HEAD).")
    var revision = "HEAD"

    @Option(name: [.short, .long], help: "Show at most this many commits.")
    var limit: Int = .max

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func run() async throws {
        let opened = try await OpenedStore(options)
        let commits = try await opened.database.log(revision, limit: limit)
        let names = try opened.refNamesByCommit()
        if json {
            return try JSONOutput.print(commits.map { CommitJSON($0, refs: names[$0.ref.id] ?? [], standing: try opened.standing(of: $0.commit.author)) })
        }
        var graph = LogGraph()
        for logged in commits {
            let decoration = names[logged.ref.id].map { " (\($0.joined(separator: ", ")))" } ?? ""
            let lanes = graph.place(logged)
            print("\(lanes) \(logged.ref.id.shortDescription)\(decoration)  \(DateText.format(logged.commit.time))  \(try opened.authorText(logged.commit.author))")
            if logged.commit.parents.count > 1 {
                print("\(graph.continuation)     merge of \(logged.commit.parents.map(\.id.shortDescription).joined(separator: " "))")
            }
            for line in logged.commit.message.split(separator: "\n", omittingEmptySubsequences: false) {
                print("\(graph.continuation)     \(line)")
            }
        }
    }
}

/// Lanes for `log`'s graph: each lane waits for one commit; a commit takes its lane (or a new
/// one), hands it to its first parent and opens lanes for its other parents.
struct LogGraph {
    private var lanes: [ChunkID?] = []

    mutating func place(_ logged: LoggedCommit) -> String {
        let id = logged.ref.id
        let column = lanes.firstIndex(of: id) ?? {
            lanes.append(id)
            return lanes.count - 1
        }()
        let text = lanes.indices.map { $0 == column ? "*" : (lanes[$0] == nil ? " " : "|") }.joined(separator: " ")
        // Other lanes waiting for this commit end here.
        for index in lanes.indices where index != column && lanes[index] == id { lanes[index] = nil }
        let parents = logged.commit.parents.map(\.id)
        lanes[column] = parents.first
        for parent in parents.dropFirst() where !lanes.contains(parent) {
            if let free = lanes.firstIndex(where: { $0 == nil }) { lanes[free] = parent } else { lanes.append(parent) }
        }
        while lanes.last == .some(nil) { lanes.removeLast() }
        return text
    }

    /// The lanes drawn between commits.
    var continuation: String {
        lanes.map { $0 == nil ? " " : "|" }.joined(separator: " ")
    }
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one commit: its parents, author, message and snapshot totals.",
        discussion: """
            Examples:
              infinity show HEAD
              infinity show v1 --json
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "The revision (default: HEAD).")
    var revision = "HEAD"

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func run() async throws {
        let opened = try await OpenedStore(options)
        let snapshot = try await opened.database.snapshot(revision)
        guard let logged = snapshot.commit else { throw ValidationError("\(revision) has no commits yet") }
        let summary = try await snapshot.get(SnapshotIndex.summary)
        let refs = try opened.refNamesByCommit()[logged.ref.id] ?? []
        if json {
            return try JSONOutput.print(CommitJSON(logged, refs: refs, snapshot: summary, standing: try opened.standing(of: logged.commit.author)))
        }
        print("commit \(logged.ref.id)\(refs.isEmpty ? "" : " (\(refs.joined(separator: ", ")))")")
        for parent in logged.commit.parents { print("parent \(parent.id)") }
        print("author \(try opened.authorText(logged.commit.author)) (\(logged.commit.author.id)), signature verified")
        print("date   \(DateText.format(logged.commit.time))")
        print("")
        for line in logged.commit.message.split(separator: "\n", omittingEmptySubsequences: false) { print("    \(line)") }
        if let summary {
            print("")
            print("snapshot of \(summary.sources.joined(separator: ", ")) on \(summary.hostname) by \(summary.username)")
            print("  \(summary.files) files, \(summary.directories) directories, \(summary.otherEntries) other; \(ByteCount.format(Int(summary.bytes)))")
            print("  taken in \(String(format: "%.1f", summary.finished - summary.started)) s")
        }
    }
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the paths of a snapshot, or of a subtree of it.",
        discussion: """
            Examples:
              infinity ls HEAD
              infinity ls main~2 docs -l
              infinity ls nightly home/ann --json --store /srv/backups
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "The revision.")
    var revision = "HEAD"

    @Argument(help: "A path inside the snapshot (default: all).")
    var path: String?

    @Flag(name: .shortAndLong, help: "Show type, mode, owner, size and time.")
    var long = false

    @Flag(name: .long, help: "Print JSON for scripts (one array).")
    var json = false

    struct EntryJSON: Encodable {
        var path: String
        var type: String
        var mode: String
        var uid: UInt32
        var gid: UInt32
        var size: Int64
        var modified: String
        var target: String?
    }

    func run() async throws {
        let opened = try await OpenedStore(options)
        let snapshot = try await opened.database.snapshot(revision)
        let subtree = try path.map { try SnapshotPath($0) } ?? .root
        if !subtree.isRoot, try await snapshot.get(subtree, in: SnapshotIndex.files) == nil {
            throw BackupError(.notFound, "\(subtree) is not in \(revision)")
        }
        var entries: [EntryJSON] = []
        try await snapshot.forEachEntry(in: SnapshotIndex.files, from: subtree, before: subtree.subtreeEnd) { path, entry in
            let modified = DateText.format(Date(timeIntervalSince1970: Double(entry.modified) / 1e9))
            let target = entry.linkTarget.map { String(decoding: $0, as: UTF8.self) }
            if json {
                entries.append(EntryJSON(
                    path: path.description, type: entry.kind.description, mode: String(entry.mode, radix: 8), uid: entry.userID,
                    gid: entry.groupID, size: entry.size, modified: modified, target: target))
            } else if long {
                let arrow = target.map { entry.kind == .symlink ? " -> \($0)" : " => \($0)" } ?? ""
                print("\(Self.typeLetter(entry.kind))\(String(entry.mode, radix: 8).leftPadded(4)) \(String(entry.userID).leftPadded(5)) \(String(entry.groupID).leftPadded(5)) \(String(entry.size).leftPadded(12)) \(modified) \(path)\(arrow)")
            } else {
                print(path.description + (entry.kind == .directory ? "/" : ""))
            }
            return true
        }
        if json { try JSONOutput.print(entries) }
    }

    static func typeLetter(_ kind: FileEntry.Kind) -> String {
        switch kind {
        case .file: "-"
        case .directory: "d"
        case .symlink: "l"
        case .hardLink: "h"
        case .fifo: "p"
        case .socket: "s"
        case .characterDevice: "c"
        case .blockDevice: "b"
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

struct Cat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write one file of a snapshot to standard output.",
        discussion: """
            Examples:
              infinity cat HEAD:notes/todo.md
              infinity cat main~3:config.json | jq .
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "REV:PATH")
    var target: String

    func run() async throws {
        guard let colon = target.firstIndex(of: ":") else { throw ValidationError("give REV:PATH, for example HEAD:notes/todo.md") }
        let opened = try await OpenedStore(options)
        let snapshot = try await opened.database.snapshot(String(target[..<colon]))
        let path = try SnapshotPath(String(target[target.index(after: colon)...]))
        guard var entry = try await snapshot.get(path, in: SnapshotIndex.files) else {
            throw BackupError(.notFound, "\(path) is not in \(target[..<colon])")
        }
        if entry.kind == .hardLink, let first = entry.linkTarget,
            let linked = try await snapshot.get(try SnapshotPath(String(decoding: first, as: UTF8.self)), in: SnapshotIndex.files)
        {
            entry = linked
        }
        guard entry.kind == .file else { throw BackupError(.invalidArgument, "\(path) is a \(entry.kind), not a file") }
        guard let content = entry.content else { return }
        let output = OutputFile(standardOutput: ())
        try await opened.store.chunks.getBlob(content) { try output.write($0) }
    }
}

struct Branch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, create or delete branches.",
        discussion: """
            Examples:
              infinity branch
              infinity branch experiment main~2
              infinity branch --delete experiment
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "A branch to create.")
    var name: String?

    @Argument(help: "Where the new branch starts (default: HEAD).")
    var revision = "HEAD"

    @Flag(name: [.short, .long], help: "Delete the branch NAME (its reflog is kept).")
    var delete = false

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    struct RefJSON: Encodable {
        var name: String
        var commit: String
        var current: Bool
    }

    func run() async throws {
        let opened = try await OpenedStore(options)
        if let name {
            if delete {
                try opened.database.deleteBranch(name)
                if !options.quiet { print("deleted branch \(name)") }
            } else {
                let commit = try await opened.database.createBranch(name, at: revision)
                if !options.quiet { print("created branch \(name) at \(commit.id.shortDescription)") }
            }
            return
        }
        let current = try opened.database.currentBranch()
        let branches = try opened.database.branches()
        if json { return try JSONOutput.print(branches.map { RefJSON(name: $0.name, commit: $0.commit.id.description, current: $0.name == current) }) }
        for branch in branches { print("\(branch.name == current ? "*" : " ") \(branch.name)  \(branch.commit.id.shortDescription)") }
    }
}

struct Fork: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a branch at any revision and switch to it.",
        discussion: """
            In a working directory, the files are updated to the revision as 'checkout' would.

            Examples:
              infinity fork experiment
              infinity fork before-cleanup main@{2026-05-01 12:00}
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "The new branch.")
    var name: String

    @Argument(help: "Where it starts (default: HEAD).")
    var revision = "HEAD"

    @Flag(name: .long, help: "Overwrite uncommitted changes in the working directory.")
    var force = false

    func run() async throws {
        let opened = try await OpenedStore(options)
        // Forking onto the branch HEAD is on before its first commit (a new working directory
        // taking in a shared commit): there is nothing committed to compare with, so only an
        // empty working directory can take the fork's files without losing any.
        var force = self.force
        if let root = opened.workspace.workingDirectory, !force, try opened.database.currentBranch() == name,
            try await opened.headSnapshot() == nil
        {
            let present = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0 != Workspace.storeFolderName }
            guard present.isEmpty else {
                throw BackupError(
                    .uncommittedChanges,
                    "\(name) has no commits yet and the working directory is not empty: commit its files first, or pass --force to overwrite them")
            }
            force = true
        }
        let commit = try await opened.database.createBranch(name, at: revision)
        if let root = opened.workspace.workingDirectory {
            let target = try await opened.database.snapshot(name)
            try await WorkingDirectoryUpdate(opened: opened, root: root, quiet: true).move(to: target, revision: name, paths: [], force: force)
        } else {
            try opened.database.switchBranch(to: name)
        }
        if !options.quiet { print("forked \(name) at \(commit.id.shortDescription) and switched to it") }
    }
}

struct Tag: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List tags, or tag a revision.",
        discussion: """
            A tag never moves, so the snapshot it names stays stored even after forget removes it from its branch.

            Examples:
              infinity tag
              infinity tag v1.0
              infinity tag before-upgrade main~1
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "A tag to create.")
    var name: String?

    @Argument(help: "The revision to tag (default: HEAD).")
    var revision = "HEAD"

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func run() async throws {
        let opened = try await OpenedStore(options)
        if let name {
            let commit = try await opened.database.createTag(name, at: revision)
            if !options.quiet { print("tagged \(commit.id.shortDescription) as \(name)") }
            return
        }
        let tags = try opened.database.tags()
        if json { return try JSONOutput.print(tags.map { Branch.RefJSON(name: $0.name, commit: $0.commit.id.description, current: false) }) }
        for tag in tags { print("\(tag.name)  \(tag.commit.id.shortDescription)") }
    }
}

struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a revision into the current branch.",
        discussion: """
            Fast-forwards when it can; otherwise merges the two snapshots path by path against their merge base and commits with two parents. Paths changed differently on both sides are listed and nothing is committed, unless --ours or --theirs says which side wins.

            Examples:
              infinity merge feature
              infinity merge alice/main --theirs -m "take Alice's edits"
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "The revision to merge.")
    var revision: String

    @Flag(name: .long, help: "Our side wins conflicts.")
    var ours = false

    @Flag(name: .long, help: "Their side wins conflicts.")
    var theirs = false

    @Option(name: [.short, .long], help: "The merge commit's message.")
    var message: String?

    func run() async throws {
        guard !(ours && theirs) else { throw ValidationError("choose --ours or --theirs, not both") }
        let opened = try await OpenedStore(options)
        let before = try await opened.headSnapshot()
        let update = opened.workspace.workingDirectory.map { WorkingDirectoryUpdate(opened: opened, root: $0, quiet: true) }
        if let update, !(try await update.uncommittedChanges(within: []).isEmpty) {
            throw BackupError(.uncommittedChanges, "the working directory has uncommitted changes; commit them before merging")
        }
        var policy: MergePolicy = ours ? .ours : theirs ? .theirs : .fail
        policy = policy.resolving(SnapshotIndex.summary) { base, ours, theirs in SnapshotSummary.merged(base: base, ours: ours, theirs: theirs) }
        let outcome: MergeOutcome
        do {
            outcome = try await opened.database.merge(revision, policy: policy, message: message)
        } catch let error as DatabaseError where error.code == .mergeConflict {
            let paths = error.conflictingKeys(in: SnapshotIndex.files)
            StandardError.print("merge of \(revision) stopped: \(paths.count) path(s) changed differently on both sides; nothing was committed")
            for path in paths { print("conflict: \(path)") }
            StandardError.print("choose a side with --ours or --theirs, or change the paths and commit first")
            throw ExitCode(1)
        }
        if let update, let before {
            try await update.move(from: before, to: outcome.snapshot, revision: try opened.database.currentBranch() ?? revision, paths: [], force: false)
        }
        if !options.quiet {
            switch outcome {
            case .upToDate: print("already up to date with \(revision)")
            case .fastForwarded(let snapshot): print("fast-forwarded to \(snapshot.commit?.ref.id.shortDescription ?? "?")")
            case .merged(let snapshot): print("merged \(revision): commit \(snapshot.commit?.ref.id.shortDescription ?? "?")")
            }
        }
    }
}

extension SnapshotSummary {
    /// Totals of a merge: what both sides added to the base (exact when no path conflicted).
    static func merged(base: SnapshotSummary?, ours: SnapshotSummary, theirs: SnapshotSummary) -> SnapshotSummary {
        var merged = ours
        merged.files = ours.files + theirs.files - (base?.files ?? 0)
        merged.directories = ours.directories + theirs.directories - (base?.directories ?? 0)
        merged.otherEntries = ours.otherEntries + theirs.otherEntries - (base?.otherEntries ?? 0)
        merged.bytes = ours.bytes + theirs.bytes - (base?.bytes ?? 0)
        merged.sources = Array(Set(ours.sources + theirs.sources)).sorted()
        merged.started = max(ours.started, theirs.started)
        merged.finished = max(ours.finished, theirs.finished)
        return merged
    }
}

struct Reflog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every change of a ref (or of all refs), newest first.",
        discussion: """
            The reflog is only ever appended to; it records who moved which ref, from what, to what, and why.

            Examples:
              infinity reflog
              infinity reflog main --limit 20
              infinity reflog --json
            """)

    @OptionGroup var options: StoreOptionGroup

    @Argument(help: "A branch or tag name, or HEAD (default: all refs).")
    var ref: String?

    @Option(name: [.short, .long], help: "Show at most this many entries.")
    var limit = 100

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    struct EntryJSON: Encodable {
        var sequence: Int64
        var ref: String
        var old: String?
        var new: String?
        var time: String
        var agent: String
        var message: String
    }

    func run() async throws {
        let opened = try await OpenedStore(options)
        var name: RefName? = nil
        if let ref {
            if ref == "HEAD" { name = .head }
            else if try opened.database.tags().contains(where: { $0.name == ref }) { name = try .tag(ref) }
            else { name = try .branch(ref) }
        }
        let entries = try opened.database.refs.reflog(name, limit: limit)
        if json {
            return try JSONOutput.print(entries.map {
                EntryJSON(sequence: $0.sequence, ref: $0.name.fullName, old: $0.oldID?.description, new: $0.new?.id.description,
                          time: DateText.iso($0.time), agent: $0.agent.description, message: $0.message)
            })
        }
        for entry in entries {
            let change = "\(entry.oldID?.shortDescription ?? "(none)") → \(entry.new?.id.shortDescription ?? "(deleted)")"
            print("\(entry.sequence)  \(DateText.format(entry.time))  \(entry.name.shortName.isEmpty ? entry.name.fullName : entry.name.shortName)  \(change)  \(entry.message)")
        }
    }
}
