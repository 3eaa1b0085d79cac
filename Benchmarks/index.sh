#!/usr/bin/env bash
# Versioned-index benchmark: a 1M-entry map (16-byte keys, 100-byte values) in a local store on
# disk — bulk load + commit, warm point reads, a commit of 1,000 random changes, a diff of two
# commits 1,000 changes apart, opening a commit among 10,000 — beside SQLite (through the same
# wrapper, same data, same run) and git (the same state as a JSON file, same run).
# Figures inside a run are medians of 5 rounds (40 for commits and diffs, with the commit's mean
# shown too; 20 for opens); peak memory comes from /usr/bin/time.
# A commit's bytes are counted twice: what the store's packs grew by (for SQLite: its log), and
# every byte the process passed to write calls (for us: packs, the chunk index's write-ahead log
# and checkpoints, refs; for SQLite: its log and any checkpoint inside the transaction). The
# chunk index appends each new chunk's row and lists new chunks in a run once 65,536 have
# gathered: the mean of all writes carries the runs written during the rounds and the index's
# checkpoints.
#
# For profiling (run the IndexBenchmark binary directly): INFINITY_BENCH_ONLY=bulk runs only the
# batched bulk load, INFINITY_BENCH_ONLY=calls only the load with one call per entry;
# INFINITY_BENCH_ONLY=commit runs it, then only the commits and diffs
# (INFINITY_BENCH_COMMIT_ROUNDS rounds).
#
#   Benchmarks/index.sh [ENTRIES (default 1000000)] [HISTORY (default 10000)]
#
# The work directory (default: a new folder in /var/tmp, on disk) can be set with INFINITY_BENCH_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
entries=${1:-1000000}
history=${2:-10000}
work=${INFINITY_BENCH_DIR:-$(mktemp -d /var/tmp/infinity-index-bench.XXXXXX)}
mkdir -p "$work"
trap 'rm -rf "$work"/store "$work"/store-bulk "$work"/git "$work"/sqlite-bench.sqlite* "$work"/state*.json' EXIT

for tool in git python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "index.sh needs $tool (apt-get install git python3 time)" >&2; exit 1; }
done

echo "building the benchmark (release)…" >&2
(cd "$here" && swift build -c release --product IndexBenchmark >&2)
bin="$(cd "$here" && swift build -c release --show-bin-path)/IndexBenchmark"

results="$work/results.jsonl"
echo "running ($entries entries, $history commits of history)…" >&2
/usr/bin/time -v -o "$work/time.txt" "$bin" "$work" "$entries" "$history" > "$results"
awk -F': ' '/Maximum resident set size/ { printf "{\"figure\":\"peak_rss_mib\",\"value\":%.1f,\"unit\":\"MiB\"}\n", $2 / 1024 }' "$work/time.txt" >> "$results"

# git on the same state as one JSON file: commit it, commit 1,000 changed lines, diff them.
git_time() { # command… → milliseconds (median of 5; the command must be repeatable)
    python3 - "$@" <<'PY'
import statistics, subprocess, sys, time
times = []
for _ in range(5):
    start = time.perf_counter()
    subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
    times.append((time.perf_counter() - start) * 1000)
print(f"{statistics.median(times):.1f}")
PY
}
repo="$work/git"
rm -rf "$repo" && mkdir -p "$repo" && cd "$repo"
git init -q . && git config user.email bench@example.invalid && git config user.name bench
cp "$work/state.json" state.json
time_once() { # command… → milliseconds of one run (commits cannot be repeated alike)
    python3 -c 'import subprocess, sys, time; s = time.perf_counter(); subprocess.run(sys.argv[1:], check=True); print(f"{(time.perf_counter() - s) * 1000:.1f}")' "$@"
}
echo "{\"figure\":\"git_commit_state_ms\",\"value\":$(time_once sh -c 'git add state.json && git commit -q -m "bulk load"'),\"unit\":\"ms\"}" >> "$results"
cp "$work/state-changed.json" state.json
echo "{\"figure\":\"git_commit_1k_changes_ms\",\"value\":$(time_once git commit -q -a -m "1,000 changes"),\"unit\":\"ms\"}" >> "$results"
echo "{\"figure\":\"git_diff_1k_changes_ms\",\"value\":$(git_time git diff HEAD~1 HEAD),\"unit\":\"ms\"}" >> "$results"
cd "$here"

python3 - "$results" "$entries" <<'PY'
import json, sys
figures = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        row = json.loads(line)
        figures[row["figure"]] = (row["value"], row["unit"])
def show(name):
    if name not in figures: return "—"
    value, unit = figures[name]
    if unit == "MiB" and value < 100: return f"{value:.3f} {unit}"  # the goal is 3 MiB: show how near
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.2f} {unit}"
rows = [
    ("bulk load + commit", "bulk_load_entries_per_s", "sqlite_bulk_load_entries_per_s", "git_commit_state_ms", "≥ 500k entries/s", lambda v: v >= 500_000),
    ("  of which: edits", "bulk_load_edit_seconds", None, None, "", None),
    ("  of which: commit", "bulk_load_commit_seconds", None, None, "", None),
    ("  one call per entry", "bulk_load_per_entry_calls_entries_per_s", None, None, "≥ 500k entries/s", lambda v: v >= 500_000),
    ("warm point read", "warm_point_read_us", "sqlite_warm_point_read_us", None, "≤ 5 µs", lambda v: v <= 5),
    ("commit of 1k changes", "commit_1k_changes_ms", "sqlite_commit_1k_changes_ms", "git_commit_1k_changes_ms", "≤ 50 ms", lambda v: v <= 50),
    ("  mean", "commit_1k_changes_ms_mean", None, None, "≤ 50 ms", lambda v: v <= 50),
    ("  store grew by", "commit_1k_changes_mib_written", "sqlite_commit_1k_changes_mib_written", None, "≤ 3 MiB", lambda v: v <= 3),
    ("  all writes to disk", "commit_1k_changes_all_mib_written", "sqlite_commit_1k_changes_all_mib_written", None, "≤ 3 MiB", lambda v: v <= 3),
    ("  all writes, mean", "commit_1k_changes_all_mib_written_mean", None, None, "≤ 3 MiB", lambda v: v <= 3),
    ("  nodes written (mean)", "commit_1k_changes_chunks_written", None, None, "", None),
    ("diff of 1k changes", "diff_1k_changes_ms", None, "git_diff_1k_changes_ms", "≤ 20 ms", lambda v: v <= 20),
    ("open a commit of 10k", "open_commit_in_10k_history_ms", None, None, "≤ 5 ms", lambda v: v <= 5),
]
print(f"{'figure':<24} {'InfinityDB':>18} {'SQLite':>18} {'git (JSON file)':>18}  {'goal':<18} met")
for label, ours, sqlite, git, goal, met in rows:
    value = figures.get(ours, (None,))[0]
    verdict = "" if met is None else ("—" if value is None else ("yes" if met(value) else "NO"))
    print(f"{label:<24} {show(ours):>18} {show(sqlite) if sqlite else '—':>18} {show(git) if git else '—':>18}  {goal:<18} {verdict}")
print(f"\nentries: {int(sys.argv[2]):,}; store size after load: {show('store_bytes_after_load')}; "
      f"history commits/s: {show('history_commits_per_s')}; peak RSS: {show('peak_rss_mib')}")
PY
