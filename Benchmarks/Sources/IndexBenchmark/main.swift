// Measures the versioned index on a 1M-entry map (16-byte keys, 100-byte text-like values) in a
// local store on disk: bulk load + commit, warm point reads, a commit of 1,000 random changes
// (time and bytes written), a diff of two commits 1,000 changes apart, and opening a commit in a
// store with 10,000 commits. Beside them, in the same process: SQLite through the project's own
// wrapper on the same data. Prints one JSON object per figure; index.sh adds git's figures and
// peak memory and prints the table.
//
//   IndexBenchmark WORKDIR [ENTRIES] [HISTORY]
import Foundation

try await IndexBenchmark.run()
