import BenchmarkSupport
import Foundation
import InfinityDB

/// 100 bytes of words, as app records tend to be: compressible, but not trivially.
let vocabulary = (0..<2048).map { index -> String in
    var generator = Generator(state: UInt64(index) &* 0x9E37_79B9_7F4A_7C15 | 1)
    let letters = Array("abcdefghijklmnopqrstuvwxyz")
    return String((0..<(3 + Int(generator.next() % 7))).map { _ in letters[Int(generator.next() % 26)] })
}
func textValue(_ generator: inout Generator) -> Data {
    var text = ""
    while text.utf8.count < 100 { text += vocabulary[Int(generator.next() % 2048)] + " " }
    return Data(text.utf8.prefix(100))
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func emit(_ name: String, _ value: Double, _ unit: String) {
    FileHandle.standardOutput.write(Data("{\"figure\":\"\(name)\",\"value\":\(value),\"unit\":\"\(unit)\"}\n".utf8))
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Bytes this process has passed to write calls so far (`wchar` in /proc/self/io): every file,
/// the chunk index's and SQLite's write-ahead logs and checkpoints included.
func bytesWrittenByProcess() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("wchar:") {
        return Int(line.dropFirst("wchar:".count).trimmingCharacters(in: .whitespaces)) ?? 0
    }
    return 0
}

func directorySize(_ path: String) -> Int {
    guard let enumerator = FileManager.default.enumerator(atPath: path) else { return 0 }
    var total = 0
    while let name = enumerator.nextObject() as? String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + name)
        if attributes?[.type] as? FileAttributeType == .typeRegular { total += (attributes?[.size] as? Int) ?? 0 }
    }
    return total
}

/// The whole run, off the main actor: every call below goes straight to the library, as it would
/// from an app's background task, without a hop back to the main thread in between.
enum IndexBenchmark {
    static func run() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2 else {
            FileHandle.standardError.write(Data("usage: IndexBenchmark WORKDIR [ENTRIES] [HISTORY]\n".utf8))
            exit(2)
        }
        let work = arguments[1]
        let entryCount = arguments.count > 2 ? Int(arguments[2])! : 1_000_000
        let historyCount = arguments.count > 3 ? Int(arguments[3])! : 10_000
        let clock = ContinuousClock()
        /// Point reads timed per round (5 rounds), after each key was read once to warm the cache.
        let readsPerRound = min(40_000, entryCount / 5)
        let books = VersionedMap<Data, Data>("entries")

        var generator = Generator(state: 0xC0FF_EE00_1234_5679)
        var keys: [Data] = []
        var values: [Data] = []
        keys.reserveCapacity(entryCount)
        values.reserveCapacity(entryCount)
        for _ in 0..<entryCount {
            keys.append(Data(generator.bytes(16)))
            values.append(textValue(&generator))
        }

        // MARK: InfinityDB

        let storePath = work + "/store"
        try? FileManager.default.removeItem(atPath: storePath)
        var options = StoreOptions()
        options.scrypt = .minimal
        let store = try await Store.create(at: storePath, agentName: "bench", passphrase: SecureBytes(utf8: "bench"), options: options)
        // Large enough to hold the whole tree: "warm" reads are reads from the node cache.
        let database = try store.database(nodeCacheCapacity: 1 << 30)

        // For profiling one figure at a time.
        let only = ProcessInfo.processInfo.environment["INFINITY_BENCH_ONLY"]
        // Loaded as an app imports data: in batches of 10,000 entries, one call each.
        if only != "calls" {
            let start = clock.now
            let draft = try await database.draft()
            for batchStart in stride(from: 0, to: entryCount, by: 10_000) {
                let batch = (batchStart..<min(batchStart + 10_000, entryCount)).map { (key: keys[$0], value: values[$0]) }
                try await draft.set(contentsOf: batch, in: books)
            }
            let buffered = clock.now
            try await draft.commit(message: "bulk load")
            emit("bulk_load_edit_seconds", seconds(buffered - start), "s")
            emit("bulk_load_commit_seconds", seconds(clock.now - buffered), "s")
            let elapsed = seconds(clock.now - start)
            emit("bulk_load_entries_per_s", Double(entryCount) / elapsed, "entries/s")
            emit("bulk_load_seconds", elapsed, "s")
            emit("store_bytes_after_load", Double(directorySize(storePath + "/packs")), "bytes")
        }
        // The same load into a second store with one call per entry.
        if only == nil || only == "calls" {
            let bulkPath = work + "/store-bulk"
            try? FileManager.default.removeItem(atPath: bulkPath)
            let bulkStore = try await Store.create(at: bulkPath, agentName: "bench", passphrase: SecureBytes(utf8: "bench"), options: options)
            let start = clock.now
            let draft = try await bulkStore.database().draft()
            for index in 0..<entryCount { try await draft.set(values[index], for: keys[index], in: books) }
            try await draft.commit(message: "bulk load")
            emit("bulk_load_per_entry_calls_entries_per_s", Double(entryCount) / seconds(clock.now - start), "entries/s")
            try? FileManager.default.removeItem(atPath: bulkPath)
        }
        if only == "bulk" || only == "calls" { return }

        if only == nil {
            let snapshot = try await database.snapshot()
            var order = Array(0..<entryCount).shuffled(using: &generator)
            order = Array(order.prefix(readsPerRound * 5))
            for index in order { _ = try await snapshot.get(keys[index], in: books) }  // warm the cache
            var rounds: [Double] = []
            for round in 0..<5 {
                let start = clock.now
                var found = 0
                for index in order[(round * readsPerRound)..<((round + 1) * readsPerRound)] {
                    if try await snapshot.get(keys[index], in: books) != nil { found += 1 }
                }
                precondition(found == readsPerRound)
                rounds.append(seconds(clock.now - start) / Double(readsPerRound) * 1e6)
            }
            emit("warm_point_read_us", median(rounds), "µs")
        }

        // Commits of 1,000 random changes: enough rounds that the chunk index writes a run of new
        // chunks (ChunkIndex.runThreshold) at least once, so the mean carries that cost.
        var commitTimes: [Double] = []
        var commitBytes: [Double] = []
        var diffTimes: [Double] = []
        var commitAllWrites: [Double] = []
        let commitRounds = Int(ProcessInfo.processInfo.environment["INFINITY_BENCH_COMMIT_ROUNDS"] ?? "") ?? 40
        // Statistics are taken only before and after all rounds.
        let indexBefore = try store.statistics()
        for round in 0..<commitRounds {
            let before = try await database.snapshot()
            let packBytes = directorySize(storePath + "/packs")
            let writtenBefore = bytesWrittenByProcess()
            let start = clock.now
            let draft = try await database.draft()
            for _ in 0..<1000 {
                let index = Int(generator.next() % UInt64(entryCount))
                try await draft.set(textValue(&generator), for: keys[index], in: books)
            }
            let after = try await draft.commit(message: "1,000 changes, round \(round)")
            commitTimes.append(seconds(clock.now - start) * 1000)
            commitAllWrites.append(Double(bytesWrittenByProcess() - writtenBefore) / 1_048_576)
            commitBytes.append(Double(directorySize(storePath + "/packs") - packBytes) / 1_048_576)
            let diffStart = clock.now
            let changes = try await after.changes(in: books, since: before)
            diffTimes.append(seconds(clock.now - diffStart) * 1000)
            precondition(changes.count <= 1000 && changes.count > 990)
        }
        // Anything the index writes to answer for the rounds (an older index filed a log here) is
        // counted in the mean too.
        let writtenBeforeStatistics = bytesWrittenByProcess()
        let indexAfter = try store.statistics()
        let statisticsWrites = Double(bytesWrittenByProcess() - writtenBeforeStatistics) / 1_048_576
        emit("commit_1k_changes_ms", median(commitTimes), "ms")
        emit("commit_1k_changes_ms_mean", commitTimes.reduce(0, +) / Double(commitRounds), "ms")
        emit("commit_1k_changes_mib_written", median(commitBytes), "MiB")
        emit("commit_1k_changes_chunks_written", Double(indexAfter.chunkCount - indexBefore.chunkCount) / Double(commitRounds), "chunks")
        emit(
            "commit_1k_changes_plaintext_mib_written",
            Double(indexAfter.plaintextBytes - indexBefore.plaintextBytes) / 1_048_576 / Double(commitRounds), "MiB")
        emit("commit_1k_changes_all_mib_written", median(commitAllWrites), "MiB")
        emit("commit_1k_changes_all_mib_written_mean", (commitAllWrites.reduce(0, +) + statisticsWrites) / Double(commitRounds), "MiB")
        emit("diff_1k_changes_ms", median(diffTimes), "ms")
        if only == "commit" { return }

        // A history of 10,000 commits (one small change each), then opening commits with cold caches.
        do {
            let counter = Serialized<Int>("counter")
            let draft = try await database.draft(on: "history")
            var first: ChunkRef? = nil
            let start = clock.now
            for number in 0..<historyCount {
                try await draft.set(number, in: counter)
                let snapshot = try await draft.commit(message: "commit \(number)")
                if first == nil { first = snapshot.commit!.ref }
            }
            emit("history_commits_per_s", Double(historyCount) / seconds(clock.now - start), "commits/s")
            let newest = try await database.resolve("history")
            var opens: [Double] = []
            for round in 0..<20 {
                let fresh = try Database(store: store)  // cold caches: nothing of the history in memory
                let target = round % 2 == 0 ? first! : newest
                let openStart = clock.now
                let snapshot = try await fresh.snapshot(String(target.id.description.prefix(12)))
                let value = try await snapshot.get(counter)
                opens.append(seconds(clock.now - openStart) * 1000)
                precondition(value == (round % 2 == 0 ? 0 : historyCount - 1))
            }
            emit("open_commit_in_10k_history_ms", median(opens), "ms")
        }

        // MARK: SQLite through the same wrapper

        do {
            let path = work + "/sqlite-bench.sqlite"
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            let connection = try SQLiteConnection(path: path)
            try connection.enableWriteAheadLog()
            try connection.execute("PRAGMA synchronous=FULL")
            try connection.execute("CREATE TABLE entries (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
            let insert = try connection.prepare("INSERT INTO entries (key, value) VALUES (?, ?)")
            var start = clock.now
            try connection.transaction {
                for index in 0..<entryCount {
                    try insert.run([.blob([UInt8](keys[index])), .blob([UInt8](values[index]))])
                }
            }
            emit("sqlite_bulk_load_entries_per_s", Double(entryCount) / seconds(clock.now - start), "entries/s")
            let select = try connection.prepare("SELECT value FROM entries WHERE key = ?")
            var order = Array(0..<entryCount).shuffled(using: &generator)
            order = Array(order.prefix(readsPerRound * 5))
            for index in order { _ = try select.rows([.blob([UInt8](keys[index]))]) }
            var rounds: [Double] = []
            for round in 0..<5 {
                start = clock.now
                for index in order[(round * readsPerRound)..<((round + 1) * readsPerRound)] {
                    _ = try select.rows([.blob([UInt8](keys[index]))])
                }
                rounds.append(seconds(clock.now - start) / Double(readsPerRound) * 1e6)
            }
            emit("sqlite_warm_point_read_us", median(rounds), "µs")
            let update = try connection.prepare("UPDATE entries SET value = ? WHERE key = ?")
            var times: [Double] = []
            var written: [Double] = []
            var allWrites: [Double] = []
            for _ in 0..<5 {
                try connection.checkpoint(mode: .truncate)
                let writtenBefore = bytesWrittenByProcess()
                start = clock.now
                try connection.transaction {
                    for _ in 0..<1000 {
                        let index = Int(generator.next() % UInt64(entryCount))
                        try update.run([.blob([UInt8](textValue(&generator))), .blob([UInt8](keys[index]))])
                    }
                }
                times.append(seconds(clock.now - start) * 1000)
                allWrites.append(Double(bytesWrittenByProcess() - writtenBefore) / 1_048_576)
                let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
                written.append(Double(wal) / 1_048_576)
            }
            emit("sqlite_commit_1k_changes_ms", median(times), "ms")
            emit("sqlite_commit_1k_changes_mib_written", median(written), "MiB")
            emit("sqlite_commit_1k_changes_all_mib_written", median(allWrites), "MiB")
        }

        // The state as a JSON file for git (one entry per line, sorted), then the same 1,000 changes.
        do {
            let lines = zip(keys, values).map { "\"\(Hex.encode([UInt8]($0.0)))\": \"\(String(decoding: $0.1, as: UTF8.self))\"" }.sorted()
            try ("{\n" + lines.joined(separator: ",\n") + "\n}\n").write(toFile: work + "/state.json", atomically: true, encoding: .utf8)
            var changed = lines
            for _ in 0..<1000 {
                let index = Int(generator.next() % UInt64(entryCount))
                changed[index] = String(changed[index].prefix(36)) + "\"\(String(decoding: textValue(&generator), as: UTF8.self))\""
            }
            try ("{\n" + changed.joined(separator: ",\n") + "\n}\n").write(toFile: work + "/state-changed.json", atomically: true, encoding: .utf8)
        }
    }
}
