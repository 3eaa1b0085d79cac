// swift-tools-version:6.0
import PackageDescription

// Benchmarks live apart from the tests: build them in release mode through ingest.sh.
let package = Package(
    name: "InfinityBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "InfinityDB", path: "..")],
    targets: [
        .target(name: "BenchmarkSupport"),
        .executableTarget(
            name: "IngestBenchmark",
            dependencies: ["BenchmarkSupport", .product(name: "InfinityDB", package: "InfinityDB")]
        ),
        .executableTarget(
            name: "IndexBenchmark",
            dependencies: ["BenchmarkSupport", .product(name: "InfinityDB", package: "InfinityDB")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
