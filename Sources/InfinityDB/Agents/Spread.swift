import Foundation
import InfinityBackends
import InfinityCrypto
import InfinityHistory
import InfinityPacks

/// What a spread did.
public struct SpreadReport: Sendable, Hashable {
    /// Copies of every pack the store aims at, its own included.
    public var copies = 1
    /// Packs in the store.
    public var packs = 0
    /// Copies written to other agents, and their bytes.
    public var copiesMade = 0
    public var bytesCopied: Int64 = 0
    /// Copies removed: of packs the store no longer has, or beyond the spread.
    public var copiesRemoved = 0
    /// Bytes each agent keeps for this store after the spread, by handle.
    public var bytesByHolder: [String: Int64] = [:]
}

/// What a repair found and did.
public struct RepairReport: Sendable, Hashable {
    /// The store's own packs that were missing or damaged and were copied back from a holder.
    public var packsRestored: [String] = []
    /// Packs missing or damaged here with no good copy anywhere: their chunks are lost.
    public var packsLost: [String] = []
    /// Copies the placement map listed that their holder no longer has.
    public var copiesMissing = 0
    /// Agents keeping copies whose stores are there but could not be listed; their copies were
    /// left in the map. (Copies at an agent whose store is gone count as missing.)
    public var holdersUnreachable = 0
    /// The spread that brought every pack back to the store's number of copies.
    public var spread = SpreadReport()
}

/// Which agents hold one chunk.
public struct ChunkPlacement: Sendable, Hashable {
    public let chunk: ChunkID
    /// The pack it is in, or nil when the index does not know it.
    public let pack: String?
    /// Handles of the agents that keep the pack, this store's owner first when its own copy is there.
    public let holders: [String]
}

extension Store {
    /// Keeps `copies` copies of every pack (this store's own included) across the trusted
    /// agents that declared a capacity for others, writing each copy into the holder's store
    /// as it is (packs are sealed; a holder learns nothing from them). Copies of packs this store
    /// no longer has, and copies beyond the spread, are removed.
    ///
    /// The whole plan is checked against every holder's declared capacity before anything is
    /// written; a spread that does not fit is refused.
    ///
    /// - Parameter copies: the number of copies, which becomes the store's default; nil for the
    ///   default (see ``AgentBook/defaultSpread()``).
    /// - Throws: ``DatabaseError/Code/overCapacity`` when there are too few holders or too little
    ///   room, naming them; ``DatabaseError/Code/storage`` when a holder cannot be written.
    public func spread(copies: Int? = nil, progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) async throws -> SpreadReport {
        let target = try copies ?? agents.defaultSpread()
        guard target >= 1 else { throw DatabaseError(.invalidArgument, "a spread keeps at least 1 copy (the store's own)") }
        if let copies { try agents.setDefaultSpread(copies) }
        try await flush()
        var report = SpreadReport(copies: target)
        let packs = try chunks.packs.index.packs()
        report.packs = packs.count
        let packNames = Set(packs.map(\.name))
        var placements = try agents.placements()

        // Holders: trusted contacts whose stores take copies, with the room they have left.
        struct Holder {
            let contact: Contact
            let backend: any Backend
            var free: Int64?
        }
        var holders: [AgentID: Holder] = [:]
        var declined: [String] = []
        for contact in try agents.contacts() where contact.trusted && !contact.card.location.isEmpty {
            guard let backend = try? await peerBackend(of: contact),
                let usage = try? await CapacityUsage.read(from: backend, owner: contact.card.identity, agent: contact.handle),
                usage.refusal(of: 0, agent: contact.handle, forCopies: true) == nil
            else {
                declined.append(contact.handle)
                continue
            }
            holders[contact.id] = Holder(contact: contact, backend: backend, free: usage.freeBytes)
        }

        // Copies to remove: of packs gone from the store, of agents no longer known, and beyond the spread.
        var removals: [AgentBook.Placement] = []
        var kept: [String: [AgentBook.Placement]] = [:]
        for placement in placements {
            // Forgotten or no longer trusted: its copies are no longer counted (and are removed).
            let holderDropped = try holders[placement.agent] == nil && agents.contact(id: placement.agent)?.trusted != true
            if !packNames.contains(placement.pack) || holderDropped {
                removals.append(placement)
            } else {
                kept[placement.pack, default: []].append(placement)
            }
        }
        for (pack, copies) in kept where copies.count > target - 1 {
            removals.append(contentsOf: copies.dropFirst(max(0, target - 1)))
            kept[pack] = Array(copies.prefix(max(0, target - 1)))
        }

        // Plan the new copies: each pack to the holders with the most room that lack it.
        var plan: [(pack: IndexedPack, holder: AgentID)] = []
        var short: [String] = []
        for pack in packs {
            let have = Set((kept[pack.name] ?? []).map(\.agent))
            var needed = target - 1 - have.count
            guard needed > 0 else { continue }
            let candidates = holders.filter { !have.contains($0.key) && ($0.value.free ?? .max) >= Int64(pack.size) }
                .sorted { ($0.value.free ?? .max, $0.value.contact.handle) > ($1.value.free ?? .max, $1.value.contact.handle) }
            for (id, _) in candidates where needed > 0 {
                plan.append((pack, id))
                if let free = holders[id]!.free { holders[id]!.free = free - Int64(pack.size) }
                needed -= 1
            }
            if needed > 0 { short.append(pack.name) }
        }
        guard short.isEmpty else {
            let available = holders.values.map { holder in
                holder.contact.handle + (holder.free.map { " (\(ByteCount.format($0)) free)" } ?? "")
            }.sorted()
            let declinedText = declined.isEmpty ? "" : "; not taking copies: \(declined.sorted().joined(separator: ", "))"
            throw DatabaseError(
                .overCapacity,
                "a spread of \(target) needs \(target - 1) other agents with room for every pack; \(short.count) of \(packs.count) packs do not fit. Agents taking copies: \(available.isEmpty ? "none" : available.joined(separator: ", "))\(declinedText)")
        }

        for placement in removals {
            if let contact = try agents.contact(id: placement.agent),
                let backend = try? peers.backend(for: contact.card.location, agent: contact.handle)
            {
                try? await backend.delete(HeldPack.objectName(pack: placement.pack, owner: identity.id))
            }
            try agents.removePlacement(pack: placement.pack, agent: placement.agent)
            report.copiesRemoved += 1
        }
        for (number, step) in plan.enumerated() {
            let holder = holders[step.holder]!
            let bytes = try await packBytes(step.pack.name)
            let name = HeldPack.objectName(pack: step.pack.name, owner: identity.id)
            do {
                try await holder.backend.put(name, bytes)
            } catch {
                throw DatabaseError(.storage, "cannot keep a copy of pack \(step.pack.name) at agent '\(holder.contact.handle)'", cause: error)
            }
            try agents.recordPlacement(pack: step.pack.name, agent: step.holder, size: bytes.count, digest: SHA256.hash(bytes))
            report.copiesMade += 1
            report.bytesCopied += Int64(bytes.count)
            progress(number + 1, plan.count)
        }
        placements = try agents.placements()
        for placement in placements {
            if let contact = try agents.contact(id: placement.agent) {
                report.bytesByHolder[contact.handle, default: 0] += Int64(placement.size)
            }
        }
        return report
    }

    /// A whole pack of this store: its own copy, or a holder's good copy when its own is missing
    /// or does not match its name.
    private func packBytes(_ name: String) async throws -> [UInt8] {
        if let bytes = try? await backend.get(name), (try? chunks.packs.verifiedTrailer(ofPack: name, bytes: bytes)) != nil {
            return bytes
        }
        if let good = try await goodReplica(of: name) { return good }
        throw DatabaseError(.storage, "pack \(name) is missing or damaged here and no other agent keeps a good copy")
    }

    /// The first copy of a pack kept elsewhere whose bytes are exactly those copied there (their
    /// SHA-256 was recorded), so a holder cannot hand back a pack it altered.
    private func goodReplica(of name: String) async throws -> [UInt8]? {
        guard let digest = try agents.digest(ofPack: name) else { return nil }
        for replica in try chunks.packs.replicas(ofPack: name) {
            if let bytes = try? await replica.backend.get(replica.objectName), SHA256.hash(bytes) == digest {
                return bytes
            }
        }
        return nil
    }

    /// Brings the store back to its spread after a loss: copies its own missing or damaged
    /// packs back from the agents that keep them, drops from the placement map the copies their
    /// holders no longer have, then spreads again.
    ///
    /// - Parameter readData: read every pack in full to find damage, not only missing packs
    ///   and wrong sizes.
    public func repair(readData: Bool = false, progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) async throws -> RepairReport {
        var report = RepairReport()
        try await flush()
        let packs = try chunks.packs.index.packs()
        let present = Dictionary(try await backend.list(prefix: PackFormat.objectPrefix).map { ($0.name, $0.size) }) { a, _ in a }
        for (number, pack) in packs.enumerated() {
            var damaged = present[pack.name] != pack.size
            if !damaged && readData {
                damaged = (try? chunks.packs.verifiedTrailer(ofPack: pack.name, bytes: try await backend.get(pack.name))) == nil
            }
            if damaged {
                if let bytes = try await goodReplica(of: pack.name) {
                    try await backend.put(pack.name, bytes)
                    report.packsRestored.append(pack.name)
                } else {
                    report.packsLost.append(pack.name)
                }
            }
            progress(number + 1, packs.count)
        }

        // Copies their holders lost. A holder whose store is gone lost them all; one whose store
        // is there but cannot be listed now keeps its place: the copies are likely still there.
        var listings: [AgentID: [String: Int]?] = [:]
        for placement in try agents.placements() {
            if listings[placement.agent] == nil {
                var listing: [String: Int]? = [:]
                if let contact = try agents.contact(id: placement.agent), !peers.isGone(contact) {
                    listing = try? await peerBackend(of: contact).list(prefix: HeldPack.folder(owner: identity.id))
                        .reduce(into: [:]) { listing, object in listing[object.name] = object.size }
                }
                listings[placement.agent] = .some(listing)
                if listing == nil { report.holdersUnreachable += 1 }
            }
            guard let listing = listings[placement.agent]!, listing[HeldPack.objectName(pack: placement.pack, owner: identity.id)] != placement.size
            else { continue }
            try agents.removePlacement(pack: placement.pack, agent: placement.agent)
            report.copiesMissing += 1
        }
        if !report.packsLost.isEmpty { _ = try await rebuildIndex() }
        report.spread = try await spread()
        return report
    }

    /// Forgets an agent (see ``AgentBook/remove(handle:)``), first deleting the copies of this
    /// store's packs it keeps, when its store can be reached, so none are left behind unowned.
    /// - Returns: the copies that could not be deleted.
    @discardableResult
    public func removeAgent(_ handle: String) async throws -> Int {
        let contact = try agents.contact(named: handle)
        var left = 0
        let backend = try? await peerBackend(of: contact)
        for placement in try agents.placements() where placement.agent == contact.id {
            do {
                guard let backend else { throw DatabaseError(.storage, "unreachable") }
                try await backend.delete(HeldPack.objectName(pack: placement.pack, owner: identity.id))
            } catch {
                left += 1
            }
        }
        try agents.remove(handle: contact.handle)
        return left
    }

    /// Which agents hold each chunk: this store's owner when its own pack is there, then the
    /// agents the placement map lists for that pack.
    public func placement(of ids: [ChunkID]) async throws -> [ChunkPlacement] {
        let present = Set(try await backend.list(prefix: PackFormat.objectPrefix).map(\.name))
        var result: [ChunkPlacement] = []
        for id in ids {
            guard let location = try chunks.packs.index.location(of: id) else {
                result.append(ChunkPlacement(chunk: id, pack: nil, holders: []))
                continue
            }
            var holders: [String] = present.contains(location.packName) ? [configuration.ownerName] : []
            for agent in try agents.holders(ofPack: location.packName) {
                if let contact = try agents.contact(id: agent) { holders.append(contact.handle) }
            }
            result.append(ChunkPlacement(chunk: id, pack: location.packName, holders: holders))
        }
        return result
    }
}
