// `import InfinityDB` gives apps the whole stack they need: stores, chunk references, agent keys,
// trees, history, and the wrappers below them (for tools such as the benchmarks that measure each stage).
@_exported import InfinityBackends
@_exported import InfinityChunks
@_exported import InfinityCompression
@_exported import InfinityCrypto
@_exported import InfinityPacks
@_exported import InfinityHistory
@_exported import InfinityTrees
@_exported import InfinitySQLite
