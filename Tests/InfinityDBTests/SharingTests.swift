import Foundation
import InfinityTestSupport
import Testing

@testable import InfinityDB

/// An agent with its own store in a directory of its own, small chunks and packs.
private func makeAgent(_ name: String, in directory: String) async throws -> Database {
    let store = try await Store.create(
        at: directory + "/" + name, agentName: name, passphrase: passphrase, options: try smallChunkOptions())
    return try store.database()
}

/// Each agent imports the other's card and trusts it.
private func introduce(_ agents: Database...) throws {
    for a in agents {
        for b in agents where a !== b {
            try a.store.agents.add(try b.store.card(), handle: b.store.configuration.ownerName, trusted: true)
        }
    }
}

/// Accepts every share waiting in the agent's inbox.
@discardableResult
private func acceptAll(_ database: Database, trust: Bool = false) async throws -> [AcceptReport] {
    var reports: [AcceptReport] = []
    for entry in try await database.inbox() { reports.append(try await database.accept(entry.name, trustSender: trust)) }
    return reports
}

private func read(_ blob: BlobRef, from store: Store) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    try await store.chunks.getBlob(blob) { bytes += $0 }
    return bytes
}

private func objects(under prefix: String, in store: Store) async throws -> [ObjectInfo] {
    try await store.backend.list(prefix: prefix)
}

@Suite struct SharingTests {
    /// An accept killed after it moved the ref, before it removed the share from the inbox: the
    /// next accept finishes it (it used to refuse the envelope as a replay, every time).
    @Test func anAcceptStoppedBeforeEmptyingTheInboxIsFinishedByTheNext() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            try introduce(alice, bob)
            let (_, head) = try await commitGallery(to: alice)
            _ = try await alice.share("main", with: "bob", as: "main")
            var inbox: [(String, [UInt8])] = []
            for object in try await objects(under: "inbox/", in: bob.store) {
                inbox.append((object.name, try await bob.store.backend.get(object.name)))
            }
            try await acceptAll(bob)
            for (name, bytes) in inbox { try await bob.store.backend.put(name, bytes) }

            let waiting = try await bob.inbox()
            #expect(waiting.count == 1)
            #expect(waiting.first?.problem == nil, "\(waiting.first?.problem ?? "")")
            let finished = try await acceptAll(bob)
            #expect(finished.map(\.commit) == [try #require(head.commit).ref.id])
            #expect(try await objects(under: "inbox/", in: bob.store).isEmpty)
            #expect(try await bob.snapshot("alice/main").commit?.ref == head.commit?.ref)
            #expect(try await bob.check(readData: .all).isClean)
        }
    }

    @Test func threeAgentsShareForkDiffMergeAndShareBack() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            let carol = try await makeAgent("carol", in: directory)
            try introduce(alice, bob, carol)
            let (blobs, aliceHead) = try await commitGallery(to: alice)

            let first = try await alice.share("main", with: "bob", as: "main")
            #expect(first.chunksSent > 0 && first.chunksSkipped == 0)
            let accepted = try await acceptAll(bob)
            #expect(accepted.map(\.ref.fullName) == ["refs/agents/alice/main"])
            #expect(accepted[0].commitsVerified == 2)
            #expect(try await objects(under: "inbox/", in: bob.store).isEmpty)

            // Bob reads Alice's snapshot, down to the bytes of a photo.
            let shared = try await bob.snapshot("alice/main")
            #expect(shared.commit?.ref == aliceHead.commit?.ref)
            let photo = try #require(try await shared.get("a", in: Gallery.photos))
            #expect(try await read(photo.content, from: bob.store) == read(blobs.photo, from: alice.store))
            #expect(shared.commit?.commit.author.name == "alice")

            // Bob forks, commits on top, diffs against Alice's commit and shares with Carol.
            _ = try await bob.createBranch("work", at: "alice/main")
            try bob.switchBranch(to: "work")
            let bobDraft = try await bob.draft(on: "work")
            try await bobDraft.set("from bob", for: "bob", in: Gallery.notes)
            let bobHead = try await bobDraft.commit(message: "bob's note")
            let changes = try await bobHead.changes(in: Gallery.notes, since: shared)
            #expect(changes.count == 1)
            try await bob.store.flush()
            let toCarol = try await bob.share("work", with: "carol", as: "work")
            #expect(toCarol.chunksSent > 0)
            try await acceptAll(carol)

            // Carol commits on Bob's work and shares it back to Alice, who merges it.
            _ = try await carol.createBranch("main", at: "bob/work")
            let carolDraft = try await carol.draft(on: "main")
            try await carolDraft.set("from carol", for: "carol", in: Gallery.notes)
            try await carolDraft.commit(message: "carol's note")
            try await carol.store.flush()
            let back = try await carol.share("main", with: "alice", as: "main")
            // Alice's own commits came from her: Carol does not know Alice holds them, but
            // Alice skips what she holds, and the merge needs nothing else.
            #expect(back.chunksSent > 0)
            try await acceptAll(alice)
            let outcome = try await alice.merge("carol/main", into: "main")
            _ = outcome
            let merged = try await alice.snapshot("main")
            #expect(try await merged.get("bob", in: Gallery.notes) == "from bob")
            #expect(try await merged.get("carol", in: Gallery.notes) == "from carol")
            let authors = try await alice.log("main").map(\.commit.author.name)
            #expect(Set(authors) == ["alice", "bob", "carol"])

            // Sharing a branch again sends only what is new.
            let aliceDraft = try await alice.draft(on: "main")
            try await aliceDraft.set("again", for: "again", in: Gallery.notes)
            try await aliceDraft.commit(message: "again")
            try await alice.store.flush()
            let again = try await alice.share("main", with: "bob", as: "main")
            #expect(again.chunksSkipped > 0)
            #expect(again.chunksSent < first.chunksSent / 2)
            let update = try await acceptAll(bob)
            #expect(update.map(\.ref.fullName) == ["refs/agents/alice/main"])
            #expect(try await bob.snapshot("alice/main").get("again", in: Gallery.notes) == "again")
            #expect(try await bob.check().isClean)
        }
    }

    @Test func aRecipientReadsOnlyWhatWasSharedEvenHoldingEveryPack() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            try introduce(alice, bob)
            try await bob.store.declareCapacity(bytes: 1 << 30)
            _ = try await commitGallery(to: alice)
            let draft = try await alice.draft(on: "main")
            try await draft.set("the secret", for: "secret", in: Gallery.notes)
            let secret = try #require(try await draft.commit(message: "secret").commit?.ref)
            try await alice.store.flush()
            // Bob keeps a copy of every one of Alice's packs, but is given only v1.
            let spread = try await alice.store.spread(copies: 2)
            #expect(spread.copiesMade == spread.packs)
            _ = try await alice.share("v1", with: "bob", as: "v1")
            try await acceptAll(bob)

            let shared = try await alice.resolve("v1")
            let allowed = try await alice.reachableChunks(from: [shared])
            let reached = try await bob.reachableChunks(from: bob.rootCommits().commits())
            #expect(reached.ids.allSatisfy { allowed.contains($0) || !(try! alice.store.chunks.packs.contains($0)) })
            #expect(!reached.contains(secret.id))
            await #expect(throws: (any Error).self) { try await bob.resolve(String(secret.id.description.prefix(16))) }

            // The held packs do not even list their chunks for Bob: their trailers are sealed to Alice.
            let held = try await objects(under: "held/", in: bob.store)
            #expect(!held.isEmpty)
            for object in held {
                let bytes = try await bob.store.backend.get(object.name)
                #expect(throws: (any Error).self) {
                    try PackFormat.verifiedTrailer(ofPack: object.name, bytes: bytes, metadataKey: bob.store.keys.metadataKey)
                }
                #expect(try PackFormat.verifiedTrailer(ofPack: object.name, bytes: bytes, metadataKey: alice.store.keys.metadataKey).entries.count > 0)
            }
            // And the secret commit's chunk, sealed in a pack Bob holds, opens with no key Bob has.
            let secretSealed = try await alice.store.chunks.packs.read(secret.id)
            for id in Array(reached.ids.prefix(50)) {
                guard let key = try await keyBobKnows(for: id, in: bob) else { continue }
                #expect(throws: (any Error).self) {
                    try bob.store.chunks.open(secretSealed, as: ChunkRef(id: secret.id, key: key, length: secret.length))
                }
            }
        }
    }

    /// The key of a commit Bob holds a ref to, if `id` is one.
    private func keyBobKnows(for id: ChunkID, in bob: Database) async throws -> ChunkKey? {
        try bob.rootCommits().commits().first { $0.id == id }?.key
    }

    @Test func unknownSendersAreRefusedUnlessTrusted() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            // Alice knows Bob; Bob does not know Alice.
            try alice.store.agents.add(try bob.store.card(), handle: "bob", trusted: true)
            _ = try await commitGallery(to: alice)
            _ = try await alice.share("main", with: "bob", as: "main")
            let entries = try await bob.inbox()
            #expect(entries.count == 1 && entries[0].problem?.contains("unknown sender") == true)
            await #expect { try await bob.accept(entries[0].name) } throws: { error in
                (error as? DatabaseError)?.code == .untrustedSender
            }
            #expect(try bob.refs.refs(kind: .agent).isEmpty)
            let report = try await bob.accept(entries[0].name, trustSender: true)
            #expect(report.senderAdded && report.sender == "alice")
            #expect(try bob.store.agents.contact(handle: "alice")?.trusted == true)
        }
    }

    @Test func tamperedSharesAreRejectedAndInstallNothing() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            try introduce(alice, bob)
            _ = try await commitGallery(to: alice)

            /// Shares main afresh, lets `tamper` damage the share in Bob's store, and expects it rejected.
            func expectRejected(_ what: String, _ tamper: (String, [ObjectInfo]) async throws -> Void) async throws {
                try bob.store.agents.forgetHoldings(of: alice.store.identity.id)
                try alice.store.agents.forgetHoldings(of: bob.store.identity.id)
                let report = try await alice.share("main", with: "bob", as: "main", everything: true)
                let bundle = try await objects(under: "inbox/", in: bob.store).filter { $0.name != report.envelope }
                try await tamper(report.envelope, bundle)
                await #expect(throws: DatabaseError.self, "\(what)") { try await bob.accept(report.envelope) }
                #expect(try bob.refs.refs(kind: .agent).isEmpty, "\(what)")
                try await bob.discard(report.envelope)
            }
            let backend = bob.store.backend
            try await expectRejected("a flipped envelope byte") { envelope, _ in
                var bytes = try await backend.get(envelope)
                bytes[bytes.count / 2] ^= 0x01
                try await backend.put(envelope, bytes)
            }
            try await expectRejected("a truncated envelope") { envelope, _ in
                try await backend.put(envelope, Array(try await backend.get(envelope).prefix(40)))
            }
            try await expectRejected("a flipped chunk byte in a data pack") { _, bundle in
                let pack = try #require(bundle.max { $0.size < $1.size })
                var bytes = try await backend.get(pack.name)
                bytes[100] ^= 0x80
                try await backend.put(pack.name, bytes)
            }
            try await expectRejected("a flipped byte in every pack") { _, bundle in
                for pack in bundle {
                    var bytes = try await backend.get(pack.name)
                    bytes[20] ^= 0x01
                    try await backend.put(pack.name, bytes)
                }
            }
            try await expectRejected("a missing pack") { _, bundle in
                try await backend.delete(bundle[0].name)
            }
            try await expectRejected("a pack from another share swapped in") { _, bundle in
                let other = try await alice.share("v1", with: "bob", as: "other", everything: true)
                let otherPacks = try await objects(under: "inbox/", in: bob.store).filter {
                    $0.name.hasPrefix(String(other.envelope.dropLast(".envelope".count)) + "/")
                }
                try await backend.put(bundle[0].name, try await backend.get(otherPacks[0].name))
                try await bob.discard(other.envelope)
            }

            // A commit whose signature does not verify, sent by an agent that means harm.
            let head = try await alice.resolve("main")
            var forged = try await alice.commits.load(head).encoded()
            forged[forged.count - 1] ^= 0x01
            let forgedRef = try await alice.store.chunks.put(forged, kind: .metadata)
            try await alice.store.flush()
            let key = SecureBytes.random(count: 32)
            var builder = PackBuilder(kind: .metadata, capacity: 1 << 16)
            builder.append(id: forgedRef.id, sealed: try await alice.store.chunks.packs.read(forgedRef.id), plaintextLength: forged.count)
            let pack = try builder.finish(metadataKey: key)
            let packName = "inbox/forged/" + pack.name.split(separator: "/").last!
            try await backend.put(packName, pack.bytes)
            let envelope = try ShareEnvelope(
                sender: try alice.store.card(), recipient: bob.store.identity.id, commit: forgedRef, refName: "main", time: Date(),
                bundleKey: key, bundlePacks: [packName], chunkCount: 1, bundleByteCount: pack.bytes.count)
            try await backend.put("inbox/forged.envelope", try envelope.sealed(to: bob.store.identity, senderKeys: alice.store.keys))
            await #expect { try await bob.accept("inbox/forged.envelope") } throws: { error in
                "\(error)".contains("signature")
            }
            #expect(try bob.refs.refs(kind: .agent).isEmpty)

            // After all that, an honest share still goes through.
            try await bob.discard("inbox/forged.envelope")
            try bob.store.agents.forgetHoldings(of: alice.store.identity.id)
            try alice.store.agents.forgetHoldings(of: bob.store.identity.id)
            _ = try await alice.share("main", with: "bob", as: "main")
            #expect(try await acceptAll(bob).count == 1)
            #expect(try await bob.check().isClean)
        }
    }

    /// A sender that learned one of Bob's chunk references seals other bytes of the same length
    /// under it and shares them after Bob's own copy is gone. The share goes in (Bob cannot tell
    /// it from Alice's own data), but when Bob writes the true data again he stores it himself
    /// instead of deduplicating against the forged copy, which it then replaces.
    @Test func aChunkForgedUnderTheRecipientsKeyNeverStandsInForItsData() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            try introduce(alice, bob)
            let original = Array("Bob's own words, which Alice must not replace.".utf8)
            let bobsRef = original.withUnsafeBytes { bob.store.chunks.sealer.reference(for: $0) }

            let forged = Array("Alice's own words, sealed under a key of Bob's".utf8)
            try #require(forged.count == original.count && forged != original)
            let sealed = try forged.withUnsafeBytes { try alice.store.chunks.sealer.seal($0, as: bobsRef, compressor: nil) }
            try #require(try alice.store.chunks.packs.claim(bobsRef.id))
            try await alice.store.chunks.packs.add(bobsRef.id, sealed: sealed, plaintextLength: forged.count, kind: .data)
            let draft = try await alice.draft(on: "main")
            try await draft.set(
                Photo(name: "forged", content: BlobRef(root: bobsRef, depth: 0, length: forged.count), thumbnail: nil),
                for: "forged", in: Gallery.photos)
            try await draft.commit(message: "a forged chunk")
            try await alice.store.flush()
            _ = try await alice.share("main", with: "bob", as: "main")
            #expect(try await acceptAll(bob).count == 1)

            let written = try await bob.store.chunks.put(original, kind: .data)
            #expect(written == bobsRef)
            try await bob.store.flush()
            #expect(try await bob.store.chunks.get(written) == original, "Bob reads his own data, not the forged copy")
            let shared = try #require(try await bob.snapshot("alice/main").get("forged", in: Gallery.photos))
            #expect(try await read(shared.content, from: bob.store) == original, "the forged copy is gone")
            #expect(try await bob.check().isClean)
        }
    }

    /// Whoever can write Bob's agents database (a bucket's provider) adds a trusted contact and
    /// winds a replay record back. Neither row verifies under Bob's key: the share is refused
    /// naming the contact, the record is reported, and `agent trust` signs both again.
    @Test func contactsAndReplayRecordsChangedOutsideAreNotTrusted() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            let mallory = try await makeAgent("mallory", in: directory)
            try introduce(alice, bob)
            try mallory.store.agents.add(try bob.store.card(), handle: "bob", trusted: true)
            _ = try await commitGallery(to: alice)
            _ = try await commitGallery(to: mallory)
            _ = try await alice.share("main", with: "bob", as: "main")
            #expect(try await acceptAll(bob).count == 1)

            let outside = try SQLiteConnection(path: bob.store.agents.path)
            let card = try mallory.store.card()
            try outside.prepare("INSERT INTO contacts(id, handle, card, trusted, added_ms) VALUES (?, 'mallory', ?, 1, 0)")
                .run([.blob(card.identity.id.bytes), .blob(card.encoded())])
            try outside.execute("UPDATE accepted SET time_ms = 1")

            let contact = try #require(try bob.store.agents.contact(handle: "mallory"))
            #expect(!contact.isAuthentic && !contact.trusted)
            let share = try await mallory.share("main", with: "bob", as: "main")
            await #expect {
                try await bob.accept(share.envelope)
            } throws: { error in
                let error = error as? DatabaseError
                return error?.code == .unverifiedContact && error!.message.contains("'mallory'") && error!.message.contains("agent trust")
            }
            #expect(try bob.refs.refs(kind: .agent).map(\.0.shortName) == ["alice/main"])
            #expect {
                try bob.store.agents.lastAccepted(from: alice.store.identity.id, ref: "main")
            } throws: { error in
                let error = error as? DatabaseError
                return error?.code == .unverifiedContact && error!.message.contains("'alice'")
            }

            // Vouching for them again signs them: the share goes in, the record reads.
            try bob.store.agents.setTrusted(true, handle: "mallory")
            try bob.store.agents.setTrusted(true, handle: "alice")
            #expect(try bob.store.agents.lastAccepted(from: alice.store.identity.id, ref: "main") == 1)
            #expect(try await bob.accept(share.envelope).sender == "mallory")
        }
    }

    @Test func aChangedLargeFileIsSharedWhole() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            try introduce(alice, bob)
            // 6 MB in ~16 KiB chunks: its chunk lists span several list chunks below a root list.
            var content = SecureRandom.bytes(count: 6_000_000)
            let first = try await alice.store.chunks.putBlob(content)
            #expect(first.depth >= 2)
            let draft = try await alice.draft(on: "main")
            try await draft.set(Photo(name: "big", content: first, thumbnail: nil), for: "big", in: Gallery.photos)
            try await draft.commit(message: "big file")
            try await alice.store.flush()
            _ = try await alice.share("main", with: "bob", as: "main")
            try await acceptAll(bob)

            content += SecureRandom.bytes(count: 300_000)
            let second = try await alice.store.chunks.putBlob(content)
            try await draft.set(Photo(name: "big", content: second, thumbnail: nil), for: "big", in: Gallery.photos)
            try await draft.commit(message: "big file grew")
            try await alice.store.flush()
            let again = try await alice.share("main", with: "bob", as: "main")
            #expect(again.chunksSkipped > 0)
            try await acceptAll(bob)
            let shared = try #require(try await bob.snapshot("alice/main").get("big", in: Gallery.photos))
            #expect(try await read(shared.content, from: bob.store) == content)
        }
    }

    @Test func aRejectedShareLeavesNoPartialTreeBehind() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            try introduce(alice, bob)
            _ = try await commitGallery(to: alice)
            let report = try await alice.share("main", with: "bob", as: "main")
            let pack = try #require(try await objects(under: "inbox/", in: bob.store).filter { $0.name != report.envelope }.max { $0.size < $1.size })
            var bytes = try await bob.store.backend.get(pack.name)
            bytes[bytes.count / 3] ^= 0x01
            try await bob.store.backend.put(pack.name, bytes)
            await #expect(throws: DatabaseError.self) { try await bob.accept(report.envelope) }
            try await bob.discard(report.envelope)

            // Alice believes Bob holds it all now: her next share sends nothing, and Bob's
            // accept says what is missing instead of installing a broken ref.
            let again = try await alice.share("main", with: "bob", as: "main")
            #expect(again.chunksSent == 0)
            await #expect { try await bob.accept(again.envelope) } throws: { error in
                (error as? DatabaseError)?.code == .rejected && "\(error)".contains("--full")
            }
            #expect(try bob.refs.refs(kind: .agent).isEmpty)
            try await bob.discard(again.envelope)
            _ = try await alice.share("main", with: "bob", as: "main", everything: true)
            #expect(try await acceptAll(bob).count == 1)
            #expect(try await bob.check(readData: .all).isClean)
        }
    }

    @Test func replayedAndInterruptedSharesAreHandled() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            try introduce(alice, bob)
            _ = try await commitGallery(to: alice)
            let report = try await alice.share("v1", with: "bob", as: "main")
            let saved = try await objects(under: "inbox/", in: bob.store)
            var copies: [(String, [UInt8])] = []
            for object in saved { copies.append((object.name, try await bob.store.backend.get(object.name))) }
            try await acceptAll(bob)
            _ = try await alice.share("main", with: "bob", as: "main")
            try await acceptAll(bob)
            let newest = try bob.refs.ref(try RefName.agent("alice", branch: "main"))

            // The older envelope, put back, would move alice/main backwards: it is refused.
            for (name, bytes) in copies { try await bob.store.backend.put(name, bytes) }
            await #expect { try await bob.accept(report.envelope) } throws: { error in
                (error as? DatabaseError)?.code == .rejected && "\(error)".contains("not newer")
            }
            #expect(try bob.refs.ref(try RefName.agent("alice", branch: "main")) == newest)
            try await bob.discard(report.envelope)

            // Packs of a share that stopped before its envelope are listed, and can be discarded.
            try await bob.store.backend.put("inbox/0123abcd/pack", [1, 2, 3])
            let entries = try await bob.inbox()
            #expect(entries.count == 1 && entries[0].problem?.contains("interrupted") == true)
            try await bob.discard(entries[0].name)
            #expect(try await objects(under: "inbox/", in: bob.store).isEmpty)
        }
    }

    @Test func readsFallBackToTheSpreadAndRepairRestoresIt() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            let carol = try await makeAgent("carol", in: directory)
            try introduce(alice, bob, carol)
            try await bob.store.declareCapacity(bytes: 1 << 30)
            try await carol.store.declareCapacity(bytes: 1 << 30)
            let (blobs, _) = try await commitGallery(to: alice)
            let original = try await read(blobs.photo, from: alice.store)

            let spread = try await alice.store.spread(copies: 3)
            #expect(spread.copiesMade == 2 * spread.packs)
            #expect(Set(spread.bytesByHolder.keys) == ["bob", "carol"])

            // Alice loses every pack of her own: reads still succeed from Bob's and Carol's copies.
            try FileManager.default.removeItem(atPath: directory + "/alice/packs")
            let reopened = try await Store.open(at: directory + "/alice", passphrase: passphrase).database()
            #expect(try await read(blobs.photo, from: reopened.store) == original)
            #expect(try await reopened.snapshot("v1").get("a", in: Gallery.photos)?.name == "a")
            let placement = try await reopened.store.placement(of: [blobs.photo.root.id])
            #expect(placement[0].holders.sorted() == ["bob", "carol"])

            // Bob alters his copies: the repair takes Carol's, whose bytes are those copied.
            for object in try await objects(under: "held/", in: bob.store) {
                var bytes = try await bob.store.backend.get(object.name)
                bytes[0] ^= 0x01
                try await bob.store.backend.put(object.name, bytes)
            }
            let repair = try await reopened.store.repair()
            #expect(repair.packsRestored.count == spread.packs && repair.packsLost.isEmpty)
            #expect(try await reopened.store.placement(of: [blobs.photo.root.id])[0].holders.first == "alice")
            #expect(try await reopened.check(readData: .all).isClean)

            // Bob's store is lost: with a spread of 2 the repair moves his copies to Carol.
            _ = try await reopened.store.spread(copies: 2)
            let onBob = try reopened.store.agents.placements().filter { $0.agent == bob.store.identity.id }.count
            try FileManager.default.removeItem(atPath: directory + "/bob")
            let second = try await reopened.store.repair()
            #expect(second.copiesMissing == onBob)
            #expect(second.spread.copiesMade == onBob)
            for placement in try reopened.store.agents.placements() {
                #expect(try reopened.store.agents.contact(id: placement.agent)?.handle == "carol")
            }

            // Removing Carol deletes the copies she keeps.
            #expect(try await reopened.store.removeAgent("carol") == 0)
            #expect(try await objects(under: "held/", in: carol.store).isEmpty)
        }
    }

    @Test func capacityRefusesUpFrontAndLeavesNothingBehind() async throws {
        try await withTemporaryDirectory { directory in
            let alice = try await makeAgent("alice", in: directory)
            let bob = try await makeAgent("bob", in: directory)
            try introduce(alice, bob)
            try await bob.store.declareCapacity(bytes: 20_000)
            _ = try await commitGallery(to: alice)
            await #expect { try await alice.share("main", with: "bob", as: "main") } throws: { error in
                (error as? DatabaseError)?.code == .overCapacity && "\(error)".contains("accepts 19.5 KiB")
            }
            await #expect { try await alice.store.spread(copies: 2) } throws: { error in
                (error as? DatabaseError)?.code == .overCapacity
            }
            #expect(try await objects(under: "inbox/", in: bob.store).isEmpty)
            #expect(try await objects(under: "held/", in: bob.store).isEmpty)
            #expect(try alice.store.agents.placements().isEmpty)

            // An offer that has run out accepts nothing.
            try await bob.store.declareCapacity(bytes: 1 << 30, until: Date(timeIntervalSinceNow: -60))
            await #expect { try await alice.share("main", with: "bob", as: "main") } throws: { error in
                "\(error)".contains("only until")
            }
            try await bob.store.declareCapacity(bytes: 1 << 30)
            _ = try await alice.share("main", with: "bob", as: "main")
            let usage = try await bob.store.capacityUsage()
            #expect(usage.inboxBytes > 0 && usage.freeBytes! < 1 << 30)
        }
    }
}
