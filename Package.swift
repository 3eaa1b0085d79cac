// swift-tools-version:6.0
import Foundation
import PackageDescription

// Layers, bottom up (see Docs/ARCHITECTURE.md):
//   C libraries (one system-library target each, imported by exactly one wrapper)
//   InfinityCrypto · InfinitySQLite · InfinityCompression · InfinityHTTP   — the wrappers
//   InfinityBackends  — where objects live (local directory, SQLite file, S3, memory)
//   InfinityPacks     — sealed chunks grouped into packs, and the chunk index
//   InfinityChunks    — content-defined chunking, sealing, ChunkRef
//   InfinityTrees     — prolly-tree maps and lists over sealed chunks: edit, diff
//   InfinityHistory   — signed commits, refs and the reflog, revisions, merge bases
//   InfinityDB        — the store an app or the CLI opens (library product)
//   InfinityBackup    — snapshots of directory trees: commit, restore, diff, status
//   InfinityCLI       — the `infinity` commands; `infinity` is a thin @main over it
let package = Package(
    name: "InfinityDB",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "InfinityDB", targets: ["InfinityDB"]),
        .executable(name: "infinity", targets: ["infinity"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C libraries from the system, each reached through one Swift wrapper only.
        .systemLibrary(
            name: "CInfinityOpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        .systemLibrary(
            name: "CInfinitySQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),
        .systemLibrary(
            name: "CInfinityZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        .systemLibrary(
            name: "CInfinityCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"]), .brew(["curl"])]
        ),

        // Linux system calls the Glibc module lacks (extended attributes, O_NOATIME, O_DIRECT).
        .target(name: "CInfinitySystem"),

        .target(name: "InfinityCrypto", dependencies: ["CInfinityOpenSSL"]),
        .target(name: "InfinitySQLite", dependencies: ["CInfinitySQLite"]),
        .target(name: "InfinityCompression", dependencies: ["CInfinityZstd"]),
        .target(name: "InfinityHTTP", dependencies: ["CInfinityCurl"]),

        .target(name: "InfinityBackends", dependencies: ["InfinityCrypto", "InfinitySQLite", "InfinityHTTP", "CInfinitySystem"]),
        .target(name: "InfinityPacks", dependencies: ["InfinityBackends", "InfinityCrypto", "InfinitySQLite"]),
        .target(
            name: "InfinityChunks",
            dependencies: ["InfinityPacks", "InfinityCrypto", "InfinityCompression"]
        ),
        .target(name: "InfinityTrees", dependencies: ["InfinityChunks", "InfinityCrypto"]),
        .target(
            name: "InfinityHistory",
            dependencies: ["InfinityChunks", "InfinityCrypto", "InfinitySQLite"]
        ),
        .target(
            name: "InfinityDB",
            dependencies: [
                "InfinityHistory", "InfinityTrees", "InfinityChunks", "InfinityPacks", "InfinityBackends",
                "InfinityCrypto", "InfinitySQLite",
            ]
        ),
        .target(name: "InfinityBackup", dependencies: ["InfinityDB", "CInfinitySystem"]),
        .target(
            name: "InfinityCLI",
            dependencies: ["InfinityDB", "InfinityBackup", "CInfinitySystem", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "infinity", dependencies: ["InfinityCLI"]),

        // Shared test support: the backend conformance suite, temporary directories, sample data.
        .target(
            name: "InfinityTestSupport",
            dependencies: ["InfinityBackends", "InfinityCrypto", "InfinityPacks", "InfinityChunks"],
            path: "Tests/InfinityTestSupport"
        ),
        .testTarget(name: "InfinityCryptoTests", dependencies: ["InfinityCrypto"]),
        .testTarget(name: "InfinitySQLiteTests", dependencies: ["InfinitySQLite", "InfinityTestSupport"]),
        .testTarget(name: "InfinityCompressionTests", dependencies: ["InfinityCompression"]),
        .testTarget(name: "InfinityHTTPTests", dependencies: ["InfinityHTTP"]),
        .testTarget(name: "InfinityBackendsTests", dependencies: ["InfinityBackends", "InfinityCrypto", "InfinityTestSupport"]),
        .testTarget(name: "InfinityPacksTests", dependencies: ["InfinityPacks", "InfinitySQLite", "InfinityTestSupport"]),
        .testTarget(name: "InfinityChunksTests", dependencies: ["InfinityChunks", "InfinityTestSupport"]),
        .testTarget(name: "InfinityTreesTests", dependencies: ["InfinityTrees", "InfinityTestSupport"]),
        .testTarget(name: "InfinityHistoryTests", dependencies: ["InfinityHistory", "InfinityTestSupport"]),
        .testTarget(name: "InfinityDBTests", dependencies: ["InfinityDB", "InfinityTestSupport"]),
        .testTarget(name: "InfinityBackupTests", dependencies: ["InfinityBackup", "InfinityTestSupport"]),
        .testTarget(name: "InfinityCLITests", dependencies: ["infinity", "InfinityTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets, one per family of decoders of stored or received bytes (Docs/FUZZING.md).
// Each defines LLVMFuzzerTestOneInput and no main, so it links only with `--sanitize=fuzzer`:
// they exist only when INFINITY_FUZZ is set, which Scripts/fuzz.sh does.
if ProcessInfo.processInfo.environment["INFINITY_FUZZ"] != nil {
    package.targets.append(
        .target(
            name: "FuzzSupport", dependencies: ["InfinityCrypto"], path: "Fuzz/FuzzSupport"))
    let fuzzTargets: [(name: String, decoders: Target.Dependency)] = [
        ("FuzzPackTrailer", "InfinityPacks"),
        ("FuzzChunk", "InfinityChunks"),
        ("FuzzTreeNode", "InfinityTrees"),
        ("FuzzCommit", "InfinityHistory"),
        ("FuzzShareEnvelope", "InfinityHistory"),
        ("FuzzAgentCard", "InfinityDB"),
        ("FuzzStoreFiles", "InfinityDB"),
        ("FuzzSnapshotEntry", "InfinityBackup"),
    ]
    for target in fuzzTargets {
        package.targets.append(
            .executableTarget(
                name: target.name, dependencies: [target.decoders, "FuzzSupport"], path: "Fuzz/\(target.name)",
                swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
