// Measures the foundation's stages on a generated file (half incompressible, half text-like):
// chunking, keyed hashing, compression, encryption, and the whole ingest into a local store,
// read-back and re-ingest. Prints one JSON object; ingest.sh runs it several times, adds the
// `openssl speed` and `zstd -b` figures of the same machine, and prints medians and ratios.
//
//   IngestBenchmark generate FILE BYTES
//   IngestBenchmark stages FILE             single-thread stage rates on 256 MiB of each half
//   IngestBenchmark pipeline FILE WORKDIR   the whole store on all cores, with peak RSS
// The two measurements run as separate processes so the stage samples do not inflate the
// pipeline's peak memory.
import BenchmarkSupport
import Foundation
import InfinityDB

#if canImport(Glibc)
import Glibc
#endif

func generate(path: String, bytes total: Int) throws {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    var generator = Generator(state: 0x1234_5678_9ABC_DEF1)
    let block = 4 << 20
    var written = 0
    // Incompressible half.
    while written < total / 2 {
        var words = [UInt64](repeating: 0, count: block / 8)
        for index in words.indices { words[index] = generator.next() }
        try handle.write(contentsOf: words.withUnsafeBytes { Data($0) })
        written += block
    }
    // Text-like half: words drawn from a vocabulary, lines of varying length, numbers.
    let vocabulary = (0..<4096).map { index -> [UInt8] in
        let length = 2 + Int(generator.next() % 9)
        return (0..<length).map { _ in UInt8(97 + generator.next() % 26) } + [index % 13 == 0 ? 0x0A : 0x20]
    }
    var text = [UInt8]()
    text.reserveCapacity(block + 64)
    while written < total {
        text.removeAll(keepingCapacity: true)
        while text.count < block {
            let random = generator.next()
            text += vocabulary[Int(random % 4096)]
            if random >> 60 == 0 { text += Array(String(random % 100_000).utf8) + [0x20] }
        }
        try handle.write(contentsOf: Data(text.prefix(block)))
        written += block
    }
    try handle.close()
}

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try await body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func peakResidentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return (Int(line.split(separator: " ")[1]) ?? 0) * 1024
    }
    return 0
}

/// Reads a byte range of a file sequentially, for putStream.
final class RangeReader {
    let handle: FileHandle
    var remaining: Int

    init(path: String, offset: Int, count: Int) throws {
        handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(offset))
        remaining = count
    }

    /// Reads straight into the pipeline's buffer, as `Store.putFile` does: FileHandle's
    /// `read(upToCount:)` would allocate a new buffer for every read and copy it once more.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let wanted = min(buffer.count, remaining)
        guard wanted > 0 else { return 0 }
        var count: Int
        repeat {
            count = Glibc.read(handle.fileDescriptor, buffer.baseAddress, wanted)
        } while count < 0 && errno == EINTR
        guard count >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        remaining -= count
        return count
    }
}

func megabytes(_ bytes: Int, _ time: Double) -> Double { Double(bytes) / time / 1e6 }

func fileSize(_ file: String) throws -> Int {
    Int(try FileManager.default.attributesOfItem(atPath: file)[.size] as! UInt64)
}

func printJSON(_ result: [String: Double]) throws {
    let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
    print(String(decoding: json, as: UTF8.self))
}

func measureStages(file: String) async throws {
    let half = try fileSize(file) / 2
    var result: [String: Double] = [:]

    // Single-thread stage figures on a 256 MiB sample of each half, to compare with openssl/zstd.
    let keys = try AgentKeys(masterSecret: AgentKeys.generateMasterSecret())
    let table = try GearTable(
        keyMaterial: HKDF.expand(pseudoRandomKey: keys.chunkerSecret, info: Array("bench".utf8), outputByteCount: 2048)
            .withUnsafeBytes { Array($0) })
    let chunker = Chunker(parameters: .fileData, table: table)
    let sealer = ChunkSealer(contentKey: keys.contentKey)
    let sampleCount = min(256 << 20, half)
    for (name, offset) in [("random", 0), ("text", half)] {
        let reader = try RangeReader(path: file, offset: offset, count: sampleCount)
        var sample = [UInt8](repeating: 0, count: sampleCount)
        _ = try sample.withUnsafeMutableBytes { try reader.read(into: $0) }
        var lengths: [Int] = []
        let chunkTime = await seconds { lengths = sample.withUnsafeBytes { chunker.chunkLengths(of: $0) } }
        var chunks: [ArraySlice<UInt8>] = []
        var position = 0
        for length in lengths {
            chunks.append(sample[position..<(position + length)])
            position += length
        }
        var refs: [ChunkRef] = []
        let hashTime = await seconds {
            refs = chunks.map { chunk in chunk.withUnsafeBytes { sealer.reference(for: $0) } }
        }
        let compressor = try ZstdCompressor(level: sealer.compressionLevel, matchTables: sealer.dataMatchTables)
        var compressedBytes = 0
        let compressTime = try await seconds {
            for chunk in chunks {
                var output = [UInt8](repeating: 0, count: chunk.count)
                let size = try chunk.withUnsafeBytes { input in try output.withUnsafeMutableBytes { try compressor.compress(input, into: $0) } }
                compressedBytes += size ?? chunk.count
            }
        }
        let key = SecureBytes.random(count: 32)
        let nonce = [UInt8](repeating: 7, count: 12)
        let encryptTime = try await seconds {
            for chunk in chunks {
                var output = [UInt8](repeating: 0, count: chunk.count + 16)
                try key.withUnsafeBytes { key in
                    try nonce.withUnsafeBytes { nonce in
                        try chunk.withUnsafeBytes { input in
                            try output.withUnsafeMutableBytes {
                                try AES256GCM.seal(input, key: key, nonce: nonce, authenticating: UnsafeRawBufferPointer(start: nil, count: 0), into: $0)
                            }
                        }
                    }
                }
            }
        }
        let sealTime = try await seconds {
            for (chunk, ref) in zip(chunks, refs) {
                _ = try chunk.withUnsafeBytes { try sealer.seal($0, as: ref, compressor: compressor) }
            }
        }
        result["stage_chunk_\(name)"] = megabytes(sampleCount, chunkTime)
        result["stage_hash_\(name)"] = megabytes(sampleCount, hashTime)
        result["stage_compress_\(name)"] = megabytes(sampleCount, compressTime)
        result["stage_encrypt_\(name)"] = megabytes(sampleCount, encryptTime)
        result["stage_seal_\(name)"] = megabytes(sampleCount, sealTime)
        result["compression_ratio_\(name)"] = Double(sampleCount) / Double(compressedBytes)
    }

    try printJSON(result)
}

func measurePipeline(file: String, workDirectory: String) async throws {
    let size = try fileSize(file)
    let half = size / 2
    var result: [String: Double] = ["bytes": Double(size)]
    // The whole pipeline on all cores: chunk → hash → seal → pack → local store.
    let storePath = workDirectory + "/store-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: storePath) }
    var options = StoreOptions()
    options.scrypt = .minimal
    if let level = ProcessInfo.processInfo.environment["INFINITY_BENCH_LEVEL"].flatMap(Int32.init) {
        options.compressionLevel = level
    }
    result["compression_level"] = Double(options.compressionLevel)
    let store = try await Store.create(at: storePath, agentName: "bench", passphrase: SecureBytes(utf8: "bench"), options: options)
    var randomRefs: [ChunkRef] = []
    var textRefs: [ChunkRef] = []
    result["ingest_random"] = megabytes(half, try await seconds {
        let reader = try RangeReader(path: file, offset: 0, count: half)
        randomRefs = try await store.putStream(read: reader.read(into:))
        try await store.flush()
    })
    result["ingest_text"] = megabytes(size - half, try await seconds {
        let reader = try RangeReader(path: file, offset: half, count: size - half)
        textRefs = try await store.putStream(read: reader.read(into:))
        try await store.flush()
    })
    let statistics = try store.statistics()
    result["stored_bytes"] = Double(statistics.storedBytes)
    result["packs"] = Double(statistics.packCount)
    var readBytes = 0
    result["read_back"] = megabytes(size, try await seconds {
        try await store.get(randomRefs + textRefs) { readBytes += $0.count }
    })
    guard readBytes == size else { fatalError("read back \(readBytes) bytes of \(size)") }
    // The same two streams again: every chunk is a duplicate.
    result["reingest"] = megabytes(size, try await seconds {
        for (offset, count) in [(0, half), (half, size - half)] {
            let reader = try RangeReader(path: file, offset: offset, count: count)
            _ = try await store.putStream(read: reader.read(into:))
        }
        try await store.flush()
    })
    guard try store.statistics() == statistics else { fatalError("re-ingest wrote new chunks") }
    result["peak_rss_bytes"] = Double(peakResidentBytes())
    try printJSON(result)
}

let arguments = CommandLine.arguments
switch arguments.dropFirst().first {
case "generate" where arguments.count == 4:
    try generate(path: arguments[2], bytes: Int(arguments[3])!)
case "stages" where arguments.count == 3:
    try await measureStages(file: arguments[2])
case "pipeline" where arguments.count == 4:
    try await measurePipeline(file: arguments[2], workDirectory: arguments[3])
default:
    FileHandle.standardError.write(Data("usage: IngestBenchmark generate FILE BYTES | stages FILE | pipeline FILE WORKDIR\n".utf8))
    exit(2)
}
