#!/usr/bin/env bash
# Foundation benchmark: ingest a generated file (half incompressible, half text-like) through
# chunk → seal → pack → local store, read it back, re-ingest it; beside `openssl speed` and
# `zstd -b` measured in the same run. Prints medians of RUNS runs and ratios.
#
#   Benchmarks/ingest.sh [BYTES (default 1 GiB)] [RUNS (default 3)]
#
# The work directory (default: a new folder in /var/tmp, on disk) can be set with INFINITY_BENCH_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bytes=${1:-1073741824}
runs=${2:-3}
work=${INFINITY_BENCH_DIR:-$(mktemp -d /var/tmp/infinity-bench.XXXXXX)}
mkdir -p "$work"
trap 'rm -rf "$work"/store-* "$work"/sample-*' EXIT

for tool in openssl zstd python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "ingest.sh needs $tool (apt-get install openssl zstd python3 time)" >&2; exit 1; }
done

echo "building the benchmark (release)…" >&2
(cd "$here" && swift build -c release --product IngestBenchmark >&2)
bin="$(cd "$here" && swift build -c release --show-bin-path)/IngestBenchmark"

input="$work/input-$bytes.bin"
[ -f "$input" ] || "$bin" generate "$input" "$bytes"
half=$((bytes / 2))
sample=$((256 * 1024 * 1024)); [ $sample -gt $half ] && sample=$half
dd if="$input" of="$work/sample-random" bs=1M count=$((sample / 1048576)) status=none
dd if="$input" of="$work/sample-text" bs=1M skip=$((half / 1048576)) count=$((sample / 1048576)) status=none

results="$work/results.jsonl"
: > "$results"
openssl_rate() { # algorithm flags… → MB/s at 1 MiB blocks
    openssl speed -seconds 2 -bytes 1048576 "$@" 2>/dev/null | tail -1 | awk '{ sub("k", "", $NF); printf "%.1f", $NF * 1000 / 1e6 }'
}
zstd_rates() { # level file → "compress decompress" MB/s
    zstd -b"$1" -i3 "$2" 2>&1 | tr '\r' '\n' | grep -E 'MB/s.*MB/s' | tail -1 | \
        sed -E 's/.* ([0-9.]+) MB\/s, *([0-9.]+) MB\/s.*/\1 \2/'
}
for run in $(seq "$runs"); do
    echo "run $run/$runs…" >&2
    read -r zt3 zd3 <<<"$(zstd_rates 3 "$work/sample-text")"
    read -r zt1 zd1 <<<"$(zstd_rates 1 "$work/sample-text")"
    read -r zr3 _ <<<"$(zstd_rates 3 "$work/sample-random")"
    # The disk's own limit: 1 GiB written in 16 MiB blocks and synced, as packs are.
    disk=$(dd if=/dev/zero of="$work/dd-test" bs=16M count=64 conv=fsync 2>&1 | tail -1 | \
        awk '{ for (i = 1; i <= NF; i++) if ($i == "s,") print $1 / $(i-1) / 1e6 }')
    rm -f "$work/dd-test"
    printf '{"ref_aes_gcm":%s,"ref_sha256":%s,"ref_hmac":%s,"ref_zstd3_text":%s,"ref_zstd3_text_decompress":%s,"ref_zstd1_text":%s,"ref_zstd3_random":%s,"ref_disk_write":%s}\n' \
        "$(openssl_rate -evp aes-256-gcm)" "$(openssl_rate -evp sha256)" "$(openssl_rate -hmac sha256)" \
        "$zt3" "$zd3" "$zt1" "$zr3" "$disk" >> "$results"
    "$bin" stages "$input" >> "$results"
    /usr/bin/time -v -o "$work/time.txt" "$bin" pipeline "$input" "$work" >> "$results"
    awk -F': ' '/Maximum resident set size/ { printf "{\"time_max_rss_kib\":%s}\n", $2 }' "$work/time.txt" >> "$results"
done

python3 - "$results" "$bytes" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
values = {}
for row in rows:
    for key, value in row.items():
        values.setdefault(key, []).append(value)
m = {key: statistics.median(v) for key, v in values.items()}
size = int(sys.argv[2])
print(f"\nInfinityDB foundation benchmark: {size / 2**30:.2f} GiB input, median of {len(values['ingest_random'])} runs\n")
print(f"{'stage (1 core)':<34}{'MB/s':>10}  {'reference (same run)':<34}{'ref MB/s':>10}{'ratio':>8}")
def row(name, ours, ref_name, ref):
    ratio = f"{ours / ref:.2f}" if ref else ""
    print(f"{name:<34}{ours:>10.0f}  {ref_name:<34}{ref:>10.0f}{ratio:>8}")
row("chunk (gear, random)", m["stage_chunk_random"], "openssl sha256", m["ref_sha256"])
row("chunk (gear, text)", m["stage_chunk_text"], "openssl sha256", m["ref_sha256"])
row("chunk key (HMAC-SHA256)", m["stage_hash_random"], "openssl hmac(sha256)", m["ref_hmac"])
row("compress (zstd 3, text)", m["stage_compress_text"], "zstd -b3 (text)", m["ref_zstd3_text"])
row("compress (zstd 3, text)", m["stage_compress_text"], "zstd -b1 (text)", m["ref_zstd1_text"])
row("compress (zstd 3, random)", m["stage_compress_random"], "zstd -b3 (random)", m["ref_zstd3_random"])
row("encrypt (AES-256-GCM)", m["stage_encrypt_random"], "openssl aes-256-gcm", m["ref_aes_gcm"])
row("seal (compress+encrypt, random)", m["stage_seal_random"], "openssl aes-256-gcm", m["ref_aes_gcm"])
row("seal (compress+encrypt, text)", m["stage_seal_text"], "zstd -b3 (text)", m["ref_zstd3_text"])
print(f"\n{'pipeline (all cores, local store)':<34}{'MB/s':>10}  {'goal':>6}  {'reference':<26}{'ratio':>8}")
def goal(name, ours, target, ref_name, ref):
    mark = "ok" if ours >= target else "MISS"
    print(f"{name:<34}{ours:>10.0f}  {target:>6}  {ref_name:<26}{ours / ref:>8.2f}  {mark}")
goal("ingest, incompressible half", m["ingest_random"], 500, "dd write+fsync (disk)", m["ref_disk_write"])
goal("ingest, text-like half", m["ingest_text"], 300, "zstd -b3 (text, 1 core)", m["ref_zstd3_text"])
goal("ingest, text-like half", m["ingest_text"], 300, "zstd -b1 (text, 1 core)", m["ref_zstd1_text"])
goal("read back", m["read_back"], 1000, "openssl aes-256-gcm", m["ref_aes_gcm"])
goal("re-ingest (all duplicates)", m["reingest"], 1000, "openssl hmac(sha256)", m["ref_hmac"])
rss = m["time_max_rss_kib"] / 1024
print(f"\npeak RSS of the pipeline process: {rss:.0f} MiB (goal < 200 MiB) {'ok' if rss < 200 else 'MISS'}")
print("ingest writes and syncs every pack, past the page cache; read back reads the packs from the disk, and re-ingest")
print("reads its input from the page cache (it was just read).")
print(f"stored: {m['stored_bytes'] / 2**20:.0f} MiB in {m['packs']:.0f} packs for {size / 2**20:.0f} MiB of input"
      f" (text sample compresses {m['compression_ratio_text']:.2f}x)")
PY
