import Foundation
import InfinityBackends
import InfinityChunks
import InfinityCrypto
import InfinityHistory
import InfinityPacks

/// Where shares wait in a store: `inbox/<id>.envelope`, with the packs of chunks that came with
/// it under `inbox/<id>/`.
enum Inbox {
    static let prefix = "inbox/"
    static let envelopeSuffix = ".envelope"

    static func envelopeName(_ id: String) -> String { prefix + id + envelopeSuffix }
    static func bundleFolder(_ id: String) -> String { prefix + id + "/" }

    /// The id of an envelope object name, or nil when the name is not one.
    static func id(ofEnvelope name: String) -> String? {
        guard name.hasPrefix(prefix), name.hasSuffix(envelopeSuffix) else { return nil }
        let id = name.dropFirst(prefix.count).dropLast(envelopeSuffix.count)
        guard !id.isEmpty, !id.contains("/") else { return nil }
        return String(id)
    }
}

/// What a share sent.
public struct ShareReport: Sendable, Hashable {
    /// The recipient, by its handle here.
    public var recipient: String
    /// The shared commit.
    public var commit: ChunkID
    /// The ref the recipient will install: `<sender>/<name>`.
    public var refName: String
    /// Chunks reachable from the commit that the walk reached before it skipped what the
    /// recipient holds.
    public var chunksWalked = 0
    /// Chunks the recipient already held (whole subtrees below them were not walked).
    public var chunksSkipped = 0
    /// Chunks sent, and their sealed bytes: the delta.
    public var chunksSent = 0
    public var chunkBytesSent: Int64 = 0
    /// Bytes written into the recipient's store: the packs around those chunks and the envelope.
    public var bytesWritten: Int64 = 0
    /// The envelope's object name in the recipient's store.
    public var envelope: String = ""
}

/// How far a share has got.
public struct ShareProgress: Sendable, Hashable {
    public var chunksSent = 0
    public var bytesSent: Int64 = 0
    public var chunksToSend = 0
    public var bytesToSend: Int64 = 0
}

/// A share waiting in this store's inbox.
public struct InboxEntry: Sendable {
    /// The envelope's object name.
    public let name: String
    /// The opened envelope; nil when it does not open (``problem`` says why).
    public let envelope: ShareEnvelope?
    /// Why the envelope cannot be accepted as it is, if it cannot.
    public let problem: String?
    /// The sender as a contact of this store, if it is one.
    public let sender: Contact?
    /// Packs with no envelope: a share that stopped before its envelope was written. Such an
    /// entry can only be discarded.
    public var isInterrupted = false
}

/// What accepting a share installed.
public struct AcceptReport: Sendable, Hashable {
    /// The sender, by its handle here.
    public var sender: String
    /// The ref installed: `refs/agents/<sender>/<name>`.
    public var ref: RefName
    public var commit: ChunkID
    /// Whether the sender was added to the contacts by this accept.
    public var senderAdded = false
    /// Chunks that came with the envelope, and their sealed bytes.
    public var chunksReceived = 0
    public var bytesReceived: Int64 = 0
    /// Commits whose signatures were verified on the way.
    public var commitsVerified = 0
}

extension Database {
    // MARK: Share

    /// Shares a commit with another agent: copies into its store the sealed chunks reachable
    /// from the commit that it lacks, as they are, and leaves an envelope in its inbox with the
    /// commit's reference, sealed to it and signed by this store's owner.
    ///
    /// What the recipient holds is known from earlier shares in either direction, so sharing a
    /// branch again sends only what is new; the walk skips whole subtrees the recipient holds.
    /// The recipient's declared capacity is checked before anything is written, and if writing
    /// fails, what was written is removed.
    ///
    /// - Parameters:
    ///   - revision: the commit to share (a branch, tag, id…).
    ///   - handle: the recipient, a contact of this store.
    ///   - refName: the branch name the recipient installs it under (`<sender>/<refName>`).
    ///   - everything: send every reachable chunk, whatever the recipient is known to hold.
    /// - Throws: ``DatabaseError/Code/unknownAgent``, ``DatabaseError/Code/overCapacity``,
    ///   ``DatabaseError/Code/storage`` (the recipient's store cannot be reached or written).
    public func share(
        _ revision: String, with handle: String, as refName: String, everything: Bool = false,
        progress: (ShareProgress) -> Void = { _ in }
    ) async throws -> ShareReport {
        let contact = try store.agents.contact(named: handle)
        guard contact.isAuthentic else { throw store.agents.unverified(contact) }
        _ = try RefName.agent(contact.handle, branch: refName)
        let commit = try await resolve(revision)
        let recipientBackend = try await store.peerBackend(of: contact)
        let recipient = contact.id
        var report = ShareReport(recipient: contact.handle, commit: commit.id, refName: refName)

        // The delta: everything reachable that the recipient is not known to hold.
        struct Outgoing {
            let ref: ChunkRef
            let kind: PackKind
        }
        var outgoing: [Outgoing] = []
        let agents = store.agents
        let walker = ReachabilityWalker(
            database: self,
            admit: { ref, kind, _ in
                let held = try !everything && agents.holds(recipient, ref.id)
                if held { report.chunksSkipped += 1 } else { outgoing.append(Outgoing(ref: ref, kind: kind.packKind)) }
                // A held commit or tree node skips everything below it. Blob chunks are walked
                // anyway (not sent): a blob's lists are one stream that cannot be read with a
                // piece left out, and they are small beside the data they list.
                return !held || !kind.skipsSubtreeWhenHeld
            },
            failure: { place, error in
                throw DatabaseError(.corrupt, "cannot share: the walk from the commit stopped at \(place)", cause: error)
            },
            progress: { _ in })
        try await walker.walk(from: [commit])
        report.chunksWalked = walker.reached.count

        // Sizes from the index, so capacity is checked before a byte is written.
        var located: [(Outgoing, ChunkLocation)] = []
        for item in outgoing {
            guard let location = try store.chunks.packs.index.location(of: item.ref.id) else {
                throw DatabaseError(.corrupt, "cannot share: chunk \(item.ref.id) is reachable but not in this store's index")
            }
            located.append((item, location))
        }
        let deltaBytes = located.reduce(Int64(0)) { $0 + Int64($1.1.length) }
        let usage = try await CapacityUsage.read(from: recipientBackend, owner: contact.card.identity, agent: contact.handle)
        // Trailers take 48 bytes a chunk; the envelope a few KiB and about 128 bytes a pack.
        let packCount = Int64(deltaBytes) / Int64(max(1, store.chunks.packs.targetPackSize)) + 2
        let estimate = deltaBytes + Int64(located.count * 48) + 16384 + packCount * 128
        if let refusal = usage.refusal(of: estimate, agent: contact.handle, forCopies: false) {
            throw DatabaseError(.overCapacity, "cannot share with \(contact.handle): \(refusal)")
        }

        // Read in pack order, so each pack is read front to back.
        located.sort { ($0.1.packName, $0.1.offset) < ($1.1.packName, $1.1.offset) }
        let envelopeID = Hex.encode(SecureRandom.bytes(count: 16))
        let bundleKey = SecureBytes.random(count: 32)
        var written: [String] = []
        var state = ShareProgress(chunksToSend: located.count, bytesToSend: deltaBytes)
        progress(state)
        do {
            var builders: [PackKind: PackBuilder] = [:]
            func upload(_ builder: consuming PackBuilder) async throws {
                let pack = try builder.finish(metadataKey: bundleKey)
                let name = Inbox.bundleFolder(envelopeID) + (pack.name.split(separator: "/").last.map(String.init) ?? pack.name)
                try await recipientBackend.put(name, pack.bytes)
                written.append(name)
                report.bytesWritten += Int64(pack.bytes.count)
            }
            for (item, location) in located {
                let sealed = try await sealedBytes(of: item.ref)
                var builder = builders.removeValue(forKey: item.kind)
                    ?? PackBuilder(kind: item.kind, capacity: store.chunks.packs.targetPackSize + sealed.count + 65536)
                builder.append(id: item.ref.id, sealed: sealed, plaintextLength: location.plaintextLength)
                if builder.size >= store.chunks.packs.targetPackSize {
                    try await upload(builder)
                } else {
                    builders[item.kind] = builder
                }
                state.chunksSent += 1
                state.bytesSent += Int64(sealed.count)
                progress(state)
            }
            for kind in PackKind.allCases {
                if let builder = builders.removeValue(forKey: kind), !builder.isEmpty { try await upload(builder) }
            }
            let envelope = try ShareEnvelope(
                sender: try store.card(), recipient: recipient, commit: commit, refName: refName, time: Date(),
                bundleKey: bundleKey, bundlePacks: written, chunkCount: located.count, bundleByteCount: Int(deltaBytes))
            let sealedEnvelope = try envelope.sealed(to: contact.card.identity, senderKeys: store.keys)
            // The envelope goes last: a bundle without one is never accepted, and is removed below.
            report.envelope = Inbox.envelopeName(envelopeID)
            try await recipientBackend.put(report.envelope, sealedEnvelope)
            report.bytesWritten += Int64(sealedEnvelope.count)
        } catch {
            try? await recipientBackend.delete(written)
            if let error = error as? DatabaseError { throw error }
            throw DatabaseError(.storage, "cannot share with \(contact.handle): writing into its store failed", cause: error)
        }
        try store.agents.recordHoldings(located.map(\.0.ref.id), agent: recipient)
        report.chunksSent = located.count
        report.chunkBytesSent = deltaBytes
        return report
    }

    /// A chunk's sealed bytes as stored, opened under its reference first so that damage here
    /// is found before it is sent: from this store or, when its pack here is missing or damaged,
    /// from a copy another agent keeps.
    private func sealedBytes(of ref: ChunkRef) async throws -> [UInt8] {
        let chunks = store.chunks
        let verified = { (sealed: [UInt8]) throws -> [UInt8] in
            _ = try chunks.open(sealed, as: ref)
            return sealed
        }
        do {
            return try verified(try await chunks.packs.read(ref.id))
        } catch {
            if let copy = try await chunks.packs.readFromReplicas(ref.id, open: verified) { return copy.opened }
            throw DatabaseError(.corrupt, "cannot share: chunk \(ref.id) is damaged or missing here and at every agent keeping a copy", cause: error)
        }
    }

    // MARK: Inbox

    /// The shares waiting in this store, oldest first by envelope time; envelopes that do not
    /// open are listed with the reason.
    public func inbox() async throws -> [InboxEntry] {
        var entries: [InboxEntry] = []
        let objects = try await store.backend.list(prefix: Inbox.prefix)
        var envelopes = Set<String>()
        for object in objects where Inbox.id(ofEnvelope: object.name) != nil {
            envelopes.insert(object.name)
            entries.append(try await inboxEntry(object.name))
        }
        // Packs with no envelope: a share that stopped before its envelope was written.
        let orphans = Set(objects.compactMap { object -> String? in
            let rest = object.name.dropFirst(Inbox.prefix.count)
            guard let slash = rest.firstIndex(of: "/") else { return nil }
            let name = Inbox.envelopeName(String(rest[..<slash]))
            return envelopes.contains(name) ? nil : name
        })
        for name in orphans.sorted() {
            entries.append(InboxEntry(
                name: name, envelope: nil, problem: "packs without an envelope: a share that was interrupted (discard it)", sender: nil,
                isInterrupted: true))
        }
        return entries.sorted {
            ($0.envelope?.timeMilliseconds ?? .max, $0.name) < ($1.envelope?.timeMilliseconds ?? .max, $1.name)
        }
    }

    private func inboxEntry(_ name: String) async throws -> InboxEntry {
        let envelope: ShareEnvelope
        do {
            envelope = try await openEnvelope(name)
        } catch {
            return InboxEntry(name: name, envelope: nil, problem: "\(error)", sender: nil)
        }
        let card = envelope.sender
        let sender = try store.agents.contact(id: card.identity.id)
        var problem: String?
        if let sender {
            if !sender.isAuthentic {
                problem = store.agents.unverified(sender).message
            } else if !sender.trusted {
                problem = "sender '\(sender.handle)' is not trusted"
            }
        } else if let other = try store.agents.contact(handle: card.identity.name) {
            problem = "unknown sender '\(card.identity.name)' (\(card.identity.id)), and another agent (\(other.id.description.prefix(16))…) goes by that name here"
        } else {
            problem = "unknown sender '\(card.identity.name)' (\(card.identity.id))"
        }
        do {
            if let last = try store.agents.lastAccepted(from: card.identity.id, ref: envelope.refName), envelope.timeMilliseconds <= last,
                try !wasInstalled(envelope, lastAccepted: last, handle: sender?.handle ?? card.identity.name)
            {
                problem = "not newer than the share of \(envelope.refName) accepted before from this sender (replayed or out of order)"
            }
        } catch let error as DatabaseError where error.code == .unverifiedContact {
            problem = error.message
        }
        return InboxEntry(name: name, envelope: envelope, problem: problem, sender: sender)
    }

    /// Opens an envelope of the inbox, refusing an oversized one before reading it.
    private func openEnvelope(_ name: String) async throws -> ShareEnvelope {
        guard let info = try await store.backend.info(name) else {
            throw DatabaseError(.rejected, "envelope \(name) is not in the inbox (an interrupted share leaves packs without one: discard it)")
        }
        guard info.size <= ShareEnvelope.maximumSealedByteCount else {
            throw HistoryError(.corrupt, "envelope \(name) is \(info.size) bytes, more than any envelope holds")
        }
        return try ShareEnvelope.open(try await store.backend.get(name), keys: store.keys, name: name)
    }

    /// Removes a share from the inbox without installing anything.
    public func discard(_ envelopeName: String) async throws {
        guard let id = Inbox.id(ofEnvelope: envelopeName) else {
            throw DatabaseError(.invalidArgument, "'\(envelopeName)' is not the name of an envelope in the inbox")
        }
        try await store.backend.delete(try await store.backend.list(prefix: Inbox.bundleFolder(id)).map(\.name))
        do {
            try await store.backend.delete(envelopeName)
        } catch let error as BackendError where error.code == .notFound {
            // An interrupted share left packs and no envelope.
        }
    }

    // MARK: Accept

    /// Accepts a share: checks the envelope and its sender, takes in the chunks that came with
    /// it, walks from the shared commit verifying every commit signature and every chunk that
    /// came, and only then installs the ref `refs/agents/<sender>/<name>`.
    ///
    /// - Parameters:
    ///   - envelopeName: the envelope's object name (see ``inbox()``).
    ///   - trustSender: accept from a sender that is not a trusted contact, and make it one.
    /// - Throws: ``DatabaseError/Code/untrustedSender`` for an unknown or untrusted sender;
    ///   ``DatabaseError/Code/rejected`` naming what is wrong when the envelope, a pack, a chunk
    ///   or a commit is forged, altered or missing. Nothing is installed then, and the share
    ///   stays in the inbox until discarded.
    public func accept(_ envelopeName: String, trustSender: Bool = false) async throws -> AcceptReport {
        guard let id = Inbox.id(ofEnvelope: envelopeName) else {
            throw DatabaseError(.invalidArgument, "'\(envelopeName)' is not the name of an envelope in the inbox")
        }
        let envelope: ShareEnvelope
        do {
            envelope = try await openEnvelope(envelopeName)
        } catch {
            throw DatabaseError(.rejected, "share \(envelopeName) is rejected", cause: error)
        }
        let card = envelope.sender
        let known = try store.agents.contact(id: card.identity.id)
        if let known, !known.isAuthentic, !trustSender { throw store.agents.unverified(known) }
        if known?.trusted != true && !trustSender {
            let who = known.map { "'\($0.handle)' is not trusted" }
                ?? "'\(card.identity.name)' (\(card.identity.id)) is not a known agent"
            throw DatabaseError(
                .untrustedSender,
                "share \(envelopeName) is refused: its sender \(who); compare its id with the sender, then accept with --trust")
        }
        let handle = known?.handle ?? card.identity.name
        if known == nil, let other = try store.agents.contact(handle: handle) {
            throw DatabaseError(
                .untrustedSender,
                "share \(envelopeName) comes from a new agent named '\(handle)', but another agent (\(other.id.description.prefix(16))…) goes by that name here; import its card under another name with `infinity agent import --as`")
        }
        let ref = try RefName.agent(handle, branch: envelope.refName)
        // An envelope never moves a ref back to an older share: a replayed one is refused.
        if let last = try store.agents.lastAccepted(from: card.identity.id, ref: envelope.refName),
            envelope.timeMilliseconds <= last
        {
            if try wasInstalled(envelope, lastAccepted: last, handle: handle) {
                // An accept that stopped after installing the ref, before it emptied the inbox:
                // finish it.
                try await discard(envelopeName)
                return AcceptReport(
                    sender: handle, ref: ref, commit: envelope.commit.id, senderAdded: false, chunksReceived: 0,
                    bytesReceived: 0, commitsVerified: 0)
            }
            throw DatabaseError(
                .rejected,
                "share \(envelopeName) is rejected: it is not newer than the share of \(ref.shortName) accepted before (a replayed or out-of-order envelope)")
        }

        // Stage the bundle's chunks: readable by the walk below, but not in this store until
        // each has been opened under its reference.
        let folder = Inbox.bundleFolder(id)
        var staged: [ChunkID: PackStore.StagedChunk] = [:]
        var bytesReceived: Int64 = 0
        for name in envelope.bundlePacks {
            guard name.hasPrefix(folder), ObjectName.isValid(name) else {
                throw DatabaseError(.rejected, "share \(envelopeName) is rejected: it names pack \(name) outside its own folder")
            }
            let trailer: (kind: PackKind, entries: [PackEntry])
            do {
                guard let info = try await store.backend.info(name) else {
                    throw PackError(.malformedPack, "pack \(name) is not there")
                }
                guard info.size <= PackFormat.maximumPackSize else {
                    throw PackError(.malformedPack, "pack \(name) is \(info.size) bytes, more than any pack holds")
                }
                trailer = try PackFormat.verifiedTrailer(
                    ofPack: name, tail: try await PackStore.readTail(ofPack: name, size: info.size, from: store.backend),
                    packSize: info.size, metadataKey: envelope.bundleKey)
            } catch {
                throw DatabaseError(.rejected, "share \(envelopeName) is rejected: pack \(name) is missing, damaged or altered", cause: error)
            }
            for entry in trailer.entries where staged[entry.id] == nil {
                staged[entry.id] = PackStore.StagedChunk(objectName: name, entry: entry, kind: trailer.kind)
                bytesReceived += Int64(entry.length)
            }
        }
        guard staged.count == envelope.chunkCount else {
            throw DatabaseError(
                .rejected, "share \(envelopeName) is rejected: its packs hold \(staged.count) chunks, its envelope says \(envelope.chunkCount)")
        }
        let packs = store.chunks.packs
        packs.stage(staged.values)
        defer { packs.unstage(staged.keys) }

        // Walk from the shared commit: every commit's signature is verified and every node on
        // the way is read (and so verified). What this store held before was verified when it
        // came, so the walk stops there.
        var cameRefs: [ChunkRef] = []
        var commitsReached: [ChunkRef] = []
        let walker = ReachabilityWalker(
            database: self,
            admit: { ref, kind, _ in
                let came = staged[ref.id] != nil
                let heldBefore = try packs.contains(ref.id)
                if came && !heldBefore { cameRefs.append(ref) }
                if kind == .commit && came { commitsReached.append(ref) }
                if kind.packKind == .data {
                    guard came || heldBefore else {
                        throw DatabaseError(.rejected, "share \(envelopeName) is incomplete: chunk \(ref.id) is neither in it nor in this store; ask \(handle) to share again with --full")
                    }
                    return true
                }
                // As in a share: a held commit or node skips its subtree, blob lists are read.
                return came || !heldBefore || !kind.skipsSubtreeWhenHeld
            },
            failure: { place, error in
                if let missing = error as? PackError, missing.code == .chunkNotFound {
                    throw DatabaseError(
                        .rejected,
                        "share \(envelopeName) is incomplete at \(place): a chunk is neither in it nor in this store; ask \(handle) to share again with --full",
                        cause: error)
                }
                throw DatabaseError(.rejected, "share \(envelopeName) is rejected at \(place)", cause: error)
            },
            progress: { _ in })
        try await walker.walk(from: [envelope.commit])
        let unreached = staged.keys.filter { !walker.reached.contains($0) }
        guard unreached.isEmpty else {
            throw DatabaseError(
                .rejected, "share \(envelopeName) is rejected: it holds \(unreached.count) chunks the shared commit does not reach")
        }
        // Every commit that came follows its parents (generations grow), so history stays walkable.
        for commitRef in commitsReached {
            let commit = try await commits.load(commitRef)
            for parentRef in commit.parents {
                let parent = try await commits.load(parentRef)
                guard parent.generation < commit.generation else {
                    throw DatabaseError(
                        .rejected,
                        "share \(envelopeName) is rejected: commit \(commitRef.id.shortDescription) claims generation \(commit.generation), not above its parent \(parentRef.id.shortDescription) (\(parent.generation))")
                }
            }
        }
        // Only now does anything enter the store, each chunk opened under its reference first.
        cameRefs.sort { (staged[$0.id]!.objectName, staged[$0.id]!.entry.offset) < (staged[$1.id]!.objectName, staged[$1.id]!.entry.offset) }
        try await takeIn(cameRefs, kinds: staged.mapValues(\.kind), envelopeName: envelopeName)
        try await store.flush()

        for commitRef in commitsReached {
            let commit = try await commits.load(commitRef)
            try refs.recordCommit(commitRef, generation: commit.generation, time: commit.time)
        }
        // Everything checked: the sender becomes a trusted contact if the user said so, and the ref moves.
        var senderAdded = false
        if known?.trusted != true {
            senderAdded = known == nil
            try store.agents.add(card, handle: handle, trusted: true)
        }
        let current = try refs.ref(ref)
        try refs.update(
            ref, to: envelope.commit, expected: current?.id, agent: store.identity.id,
            message: "accept: \(envelope.refName) from \(handle)")
        try store.agents.recordAccepted(from: card.identity.id, ref: envelope.refName, timeMilliseconds: envelope.timeMilliseconds)
        try store.agents.recordHoldings(walker.reached.ids, agent: card.identity.id)
        try await discard(envelopeName)
        return AcceptReport(
            sender: handle, ref: ref, commit: envelope.commit.id, senderAdded: senderAdded, chunksReceived: staged.count,
            bytesReceived: bytesReceived, commitsVerified: commitsReached.count)
    }

    /// Whether this very envelope is the share last accepted for its ref, and the ref still names
    /// its commit: an accept installed it and stopped before removing it from the inbox. Nothing
    /// is left to install, so it is no replay.
    private func wasInstalled(_ envelope: ShareEnvelope, lastAccepted: Int64, handle: String) throws -> Bool {
        guard envelope.timeMilliseconds == lastAccepted else { return false }
        return try refs.ref(RefName.agent(handle, branch: envelope.refName))?.id == envelope.commit.id
    }

    /// Opens each chunk under its reference (on all cores), then adds them all to this store:
    /// a forged or altered chunk stops the accept before any chunk of the share is added, so the
    /// store never holds a node of it without what lies below.
    private func takeIn(_ refs: [ChunkRef], kinds: [ChunkID: PackKind], envelopeName: String) async throws {
        let chunks = store.chunks
        let received = try await forEachConcurrently(refs) { ref -> ChunkID? in
            let plaintext: [UInt8]
            do {
                plaintext = try chunks.open(try await chunks.packs.read(ref.id), as: ref)
            } catch {
                throw DatabaseError(.rejected, "share \(envelopeName) is rejected: chunk \(ref.id) does not verify", cause: error)
            }
            // Ids are HMACs of the plaintext, under the author's content key: one of this agent's
            // own ids is taken in only with the plaintext that gives it under this agent's key.
            // Any other chunk is marked, so this agent's writes never deduplicate against it; a
            // copy forged under a key of this agent's (its plaintext maps to another id) is then
            // replaced by the first write of the true data instead of standing in for it.
            let ownID = plaintext.withUnsafeBytes { chunks.sealer.reference(for: $0).id }
            return ownID == ref.id ? nil : ref.id
        }
        // Marked before any is added, so no crash can leave one of them unmarked.
        try chunks.packs.index.markReceived(received.compactMap { $0 })
        try await forEachConcurrently(refs) { ref in
            guard try chunks.packs.claim(ref.id) else { return }
            do {
                let sealed = try await chunks.packs.read(ref.id)
                try await chunks.packs.add(ref.id, sealed: sealed, plaintextLength: ref.length, kind: kinds[ref.id] ?? .metadata)
            } catch {
                chunks.packs.releaseClaim(ref.id, failure: error)
                throw error
            }
        }
    }

    /// Runs `body` for each element, as many at once as the chunk store works on, and returns
    /// what it returned, in no particular order.
    @discardableResult
    private func forEachConcurrently<Result: Sendable>(
        _ refs: [ChunkRef], _ body: @escaping @Sendable (ChunkRef) async throws -> Result
    ) async throws -> [Result] {
        let width = store.chunks.concurrency
        return try await withThrowingTaskGroup(of: Result.self) { group in
            var results: [Result] = []
            for (position, ref) in refs.enumerated() {
                if position >= width, let result = try await group.next() { results.append(result) }
                group.addTask { try await body(ref) }
            }
            for try await result in group { results.append(result) }
            return results
        }
    }
}

extension ReachableKind {
    /// Whether a chunk of this kind that an agent holds means it holds everything below it, so
    /// a walk for a share can stop there: commits and tree nodes. Blob chunks are walked through.
    var skipsSubtreeWhenHeld: Bool {
        switch self {
        case .commit, .indexNode, .fieldNode: true
        case .valueList, .valueData, .blobList, .blobData: false
        }
    }

    /// The kind of pack a chunk of this kind goes in.
    var packKind: PackKind {
        switch self {
        case .valueData, .blobData: .data
        case .commit, .indexNode, .fieldNode, .valueList, .blobList: .metadata
        }
    }
}
