import InfinityChunks
import InfinityHistory
import InfinityPacks

/// Runs one check: packs and index first, then (with a database) the refs, the reflog and a walk
/// of everything reachable, then the packs chosen for reading. Problems are collected, never
/// thrown; only a failure to run at all (the backend cannot be listed) is thrown.
///
/// Used by one task.
final class Checker {
    private let store: Store
    private let database: Database?
    private let readData: ReadDataSelection
    private let progress: (CheckProgress) -> Void
    private var report = CheckReport()
    private var index: ChunkIndex { store.chunks.packs.index }

    /// Pack name → size, as the backend lists them.
    private var backendPacks: [String: Int] = [:]
    /// Packs the index lists and the backend does not hold, with what of them is reachable.
    private var missingPacks: [String: MissingPack] = [:]
    /// Chunks whose index entry has been reported already.
    private var misplaced = Set<ChunkID>()
    /// The packs to read whole, and the reference (key) of every reachable chunk in them.
    private var chosenPacks = Set<String>()
    private var referencesByPack: [String: [ChunkID: (ref: ChunkRef, kind: ReachableKind)]] = [:]
    /// What names each root commit: refs, HEAD, reflog entries.
    private var namers: [ChunkID: [String]] = [:]

    private struct MissingPack {
        var chunkCount: Int
        var reached: [ReachableKind: Int] = [:]
        var commits: [ChunkID] = []
    }

    private init(store: Store, database: Database?, readData: ReadDataSelection, progress: @escaping (CheckProgress) -> Void) {
        self.store = store
        self.database = database
        self.readData = readData
        self.progress = progress
    }

    static func run(
        store: Store, database: Database?, readData: ReadDataSelection, progress: (CheckProgress) -> Void
    ) async throws -> CheckReport {
        try await withoutActuallyEscaping(progress) { progress in
            try await Checker(store: store, database: database, readData: readData, progress: progress).run()
        }
    }

    private func run() async throws -> CheckReport {
        let indexed = try await surveyPacks()
        chosenPacks = Set(readData.choose(from: indexed.filter { backendPacks[$0] != nil }))
        if let database { try await checkHistory(database) }
        reportMissingPacks()
        try await readChosenPacks()
        return report
    }

    private func problem(_ code: CheckProblem.Code, _ object: String, _ message: String) {
        report.problems.append(CheckProblem(code, object: object, message: message))
    }

    // MARK: Packs and index

    /// Compares the backend's packs with the index's; returns the names the index lists.
    private func surveyPacks() async throws -> [String] {
        progress(CheckProgress(phase: .packs, bytes: 0, totalBytes: nil))
        for object in try await store.backend.list(prefix: PackFormat.objectPrefix) { backendPacks[object.name] = object.size }
        report.summary.packs = backendPacks.count
        let indexed = try index.packs()
        report.summary.indexedChunks = indexed.reduce(0) { $0 + $1.chunkCount }
        for pack in indexed {
            if backendPacks[pack.name] == nil, let stored = try await store.backend.info(pack.name) {
                // Stored after the listing (a writer stores a pack before it indexes it).
                backendPacks[pack.name] = stored.size
                report.summary.packs += 1
            }
            guard let size = backendPacks[pack.name] else {
                missingPacks[pack.name] = MissingPack(chunkCount: pack.chunkCount)
                continue
            }
            if size != pack.size {
                problem(.packSizeMismatch, "pack \(pack.name)", "the index records \(pack.size) bytes, the backend holds \(size)")
            }
        }
        let indexedNames = Set(indexed.map(\.name))
        // A retired pack is one garbage collection has taken out of the index and not yet
        // deleted from the backend (the next gc does): not damage.
        let retired = try index.retiredPackNames()
        for (name, size) in backendPacks.sorted(by: { $0.key < $1.key }) where !indexedNames.contains(name) && !retired.contains(name) {
            // Opening a store indexes such packs, so one left over has a trailer that cannot be
            // read, or is being stored by a writer that indexes it next: one the index knows once
            // the trailer has been read was the latter.
            let outcome: Result<Int, any Error>
            do {
                outcome = .success(try await store.chunks.packs.readTrailer(ofPack: name, size: size).entries.count)
            } catch {
                outcome = .failure(error)
            }
            if try index.kind(ofPack: name) != nil { continue }
            switch outcome {
            case .success(let count):
                problem(
                    .unindexedPack, "pack \(name)",
                    "is in the backend but not in the chunk index (its trailer lists \(count) chunks; rebuild-index adds them)")
            case .failure(let error):
                problem(.unindexedPack, "pack \(name)", "is in the backend but not in the chunk index, and its trailer cannot be read: \(error)")
            }
        }
        for wrong in try index.entriesOutsideTheirPacks() {
            misplaced.insert(wrong.id)
            let place = "offset \(wrong.entry.offset), length \(wrong.entry.length)"
            if let packName = wrong.packName, let packSize = wrong.packSize {
                problem(.badIndexEntry, "chunk \(wrong.id)", "its index entry (\(place)) lies outside pack \(packName), which is \(packSize) bytes")
            } else {
                problem(.badIndexEntry, "chunk \(wrong.id)", "its index entry (\(place)) names no pack the index lists")
            }
        }
        return indexed.map(\.name)
    }

    private func reportMissingPacks() {
        for (name, missing) in missingPacks.sorted(by: { $0.key < $1.key }) {
            var message = "is missing from the backend; the index lists \(missing.chunkCount) chunk\(missing.chunkCount == 1 ? "" : "s") in it"
            if database != nil {
                let reached = missing.reached.values.reduce(0, +)
                if reached == 0 {
                    message += ", none of them reached from the refs and the reflog"
                } else {
                    let kinds = ReachableKind.allCases.compactMap { kind in missing.reached[kind].map { "\($0) \(kind)" } }
                    message += ", \(reached) of them reached from the refs and the reflog: " + kinds.joined(separator: ", ")
                    if !missing.commits.isEmpty {
                        message += " (commits " + Self.list(missing.commits.map(\.shortDescription)) + ")"
                    }
                }
            }
            problem(.missingPack, "pack \(name)", message)
        }
    }

    // MARK: History

    private func checkHistory(_ database: Database) async throws {
        progress(CheckProgress(phase: .walk, bytes: 0, totalBytes: nil))
        var roots: [ChunkRef] = []
        func root(_ ref: ChunkRef, namedBy namer: String) {
            if namers[ref.id] == nil { roots.append(ref) }
            namers[ref.id, default: []].append(namer)
        }
        do {
            for name in try database.refs.refNames() {
                report.summary.refs += 1
                do {
                    if let ref = try database.refs.ref(name) { root(ref, namedBy: "ref \(name)") }
                } catch {
                    problem(.brokenRef, "ref \(name)", "its value in refs database \(database.refs.path) cannot be read: \(error)")
                }
            }
        } catch {
            problem(.brokenRef, "refs database \(database.refs.path)", "the refs cannot be listed: \(error)")
        }
        report.summary.refs += 1
        do {
            if case .detached(let ref) = try database.refs.head() { root(ref, namedBy: "HEAD") }
        } catch {
            problem(.brokenRef, "HEAD", "cannot be read from refs database \(database.refs.path): \(error)")
        }
        do {
            let entries = try database.refs.reflog { sequence, error in
                report.summary.reflogEntries += 1
                problem(.brokenReflog, "reflog entry \(sequence)", "cannot be read from refs database \(database.refs.path): \(error)")
            }
            report.summary.reflogEntries += entries.count
            // Entries released by forget or past the recorded expiry no longer keep their
            // commits: garbage collection may have deleted them.
            let expired = try database.refs.expiredReflogSequences()
            for entry in entries {
                guard !expired.contains(entry.sequence) else {
                    report.summary.expiredReflogEntries += 1
                    continue
                }
                if let new = entry.new { root(new, namedBy: "reflog entry \(entry.sequence) of \(entry.name)") }
            }
        } catch {
            problem(.brokenReflog, "refs database \(database.refs.path)", "the reflog cannot be read: \(error)")
        }

        let walker = ReachabilityWalker(
            database: database,
            admit: { [unowned self] ref, kind, place in try admit(ref, kind, place) },
            failure: { [unowned self] place, error in failed(place, error) },
            progress: { [progress] walked in progress(CheckProgress(phase: .walk, bytes: walked.plaintextBytes, totalBytes: nil)) })
        try await walker.walk(from: roots)
        report.summary.commits = walker.reached[.commit].count
        report.summary.reachableChunks = walker.reached.count
    }

    /// A reachable chunk seen for the first time: it must be in the index, inside a pack the
    /// backend holds. Returns whether the walk may read it.
    private func admit(_ ref: ChunkRef, _ kind: ReachableKind, _ place: WalkPlace) throws -> Bool {
        let what = kind == .commit ? "the commit" : "the \(kind) of \(place)"
        guard let location = try index.location(of: ref.id) else {
            problem(.missingChunk, "chunk \(ref.id)", "\(what) is not in the chunk index\(namedBy(ref.id))")
            return false
        }
        if missingPacks[location.packName] != nil {
            missingPacks[location.packName]!.reached[kind, default: 0] += 1
            if kind == .commit {
                missingPacks[location.packName]!.commits.append(ref.id)
                if namers[ref.id] != nil {
                    problem(.brokenCommit, "commit \(ref.id.shortDescription)", "is in pack \(location.packName), which is missing from the backend\(namedBy(ref.id))")
                }
            }
            return false
        }
        if misplaced.contains(ref.id) { return false }
        if let size = backendPacks[location.packName], !Self.fits(offset: location.offset, length: location.length, in: size) {
            misplaced.insert(ref.id)
            problem(
                .badIndexEntry, "chunk \(ref.id)",
                "its index entry (offset \(location.offset), length \(location.length)) lies past the end of pack \(location.packName) (\(size) bytes); it is \(what)")
            return false
        }
        if chosenPacks.contains(location.packName) { referencesByPack[location.packName, default: [:]][ref.id] = (ref, kind) }
        return true
    }

    private func failed(_ place: WalkPlace, _ error: any Error) {
        if place.field == nil && place.detail == nil {
            problem(.brokenCommit, "commit \(place.commit.shortDescription)", "cannot be loaded or does not verify: \(error)\(namedBy(place.commit))")
        } else {
            problem(.brokenTree, place.description, "\(error)")
        }
    }

    /// Whether `offset..<offset + length` lies inside `size` bytes (without overflowing on
    /// hostile numbers).
    private static func fits(offset: Int, length: Int, in size: Int) -> Bool {
        offset >= 0 && length >= 0 && offset <= size && length <= size - offset
    }

    /// "; named by ref refs/heads/main, reflog entry 3 of refs/heads/main" for a root commit.
    private func namedBy(_ id: ChunkID) -> String {
        guard let names = namers[id] else { return "" }
        return "; named by " + Self.list(names)
    }

    private static func list(_ items: [String]) -> String {
        let shown = items.prefix(5).joined(separator: ", ")
        return items.count > 5 ? "\(shown) and \(items.count - 5) more" : shown
    }

    // MARK: Reading data

    /// Reads each chosen pack whole, in name order: it must match its name, its trailer must
    /// authenticate and agree with the index, and every chunk in it that something refers to must
    /// decrypt and verify.
    private func readChosenPacks() async throws {
        let names = chosenPacks.sorted()
        let total = names.reduce(0) { $0 + (backendPacks[$1] ?? 0) }
        var done = 0
        for name in names {
            progress(CheckProgress(phase: .readData, bytes: done, totalBytes: total))
            done += backendPacks[name] ?? 0
            let bytes: [UInt8]
            do {
                bytes = try await store.backend.get(name)
            } catch {
                problem(.damagedPack, "pack \(name)", "cannot be read: \(error)")
                continue
            }
            report.summary.packsRead += 1
            report.summary.bytesRead += bytes.count
            let entries = try index.entries(inPack: name)
            do {
                let trailer = try store.chunks.packs.verifiedTrailer(ofPack: name, bytes: bytes)
                try compare(trailer.entries, with: entries, pack: name)
            } catch let error as PackError {
                problem(.damagedPack, "pack \(name)", error.message)
            }
            let references = referencesByPack.removeValue(forKey: name) ?? [:]
            for entry in entries where !misplaced.contains(entry.id) {
                guard let (ref, kind) = references[entry.id] else {
                    report.summary.chunksUnreferenced += 1
                    continue
                }
                guard Self.fits(offset: entry.offset, length: entry.length, in: bytes.count) else { continue }
                do {
                    _ = try store.chunks.open(Array(bytes[entry.offset..<(entry.offset + entry.length)]), as: ref)
                    report.summary.chunksVerified += 1
                } catch {
                    problem(.damagedChunk, "chunk \(entry.id)", "the \(kind) at offset \(entry.offset) of pack \(name) fails verification: \(error)")
                }
            }
        }
        if !names.isEmpty { progress(CheckProgress(phase: .readData, bytes: total, totalBytes: total)) }
    }

    /// The index's entries for a pack against what its trailer lists.
    private func compare(_ listed: [PackEntry], with indexed: [PackEntry], pack name: String) throws {
        let byID = Dictionary(listed.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for entry in indexed where !misplaced.contains(entry.id) {
            let place = "offset \(entry.offset), length \(entry.length)"
            guard let inTrailer = byID[entry.id] else {
                misplaced.insert(entry.id)
                problem(.badIndexEntry, "chunk \(entry.id)", "the index places it in pack \(name) (\(place)), but the pack's trailer does not list it")
                continue
            }
            if inTrailer.offset != entry.offset || inTrailer.length != entry.length {
                misplaced.insert(entry.id)
                problem(
                    .badIndexEntry, "chunk \(entry.id)",
                    "the index places it in pack \(name) at \(place), the pack's trailer at offset \(inTrailer.offset), length \(inTrailer.length)")
            }
        }
        let indexedIDs = Set(indexed.map(\.id))
        for entry in listed where !indexedIDs.contains(entry.id) {
            if try index.location(of: entry.id) == nil {
                problem(.badIndexEntry, "chunk \(entry.id)", "pack \(name) holds it but the index does not (rebuild-index adds it)")
            }
        }
    }
}
