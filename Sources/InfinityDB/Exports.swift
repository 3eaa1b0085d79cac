// `import InfinityDB` gives apps the whole stack they need: stores, chunk references, agent keys.
@_exported import InfinityBackends
@_exported import InfinityChunks
@_exported import InfinityCrypto
@_exported import InfinityPacks
