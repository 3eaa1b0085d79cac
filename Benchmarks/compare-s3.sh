#!/usr/bin/env bash
# Backup and restore through an S3 server, beside restic's own S3 backend against the same server
# in the same run: a corpus copied from the machine's own trees (/usr/share/doc, /usr/include and
# Python's library, to about CORPUS_MIB), backed up into a fresh bucket and restored from it.
# For each tool and step: time (median of RUNS runs), HTTP requests the server answered (from
# its log) and bytes that crossed the loopback interface (both directions, from /proc/net/dev);
# each run's user and system CPU time goes to logs/cpu in the work directory.
# Restores go to a tmpfs (mounted for the run as root, else /dev/shm): on disk, creating the
# corpus's 16k files costs more than the transfer and varies several-fold with how many files the
# filesystem freed in the last minutes, for both tools. The tools take turns going first.
# Every restored tree is compared with the corpus. The server's own ceiling is measured in the same
# run: the corpus's size in 16 MiB objects of random bytes put and got by curl (SigV4), 16 at once,
# with no chunking, compression or encryption, so each tool's figure can be read against it.
#
#   Benchmarks/compare-s3.sh [CORPUS_MIB (default 300)]
#
# Environment: RUNS (default 3), INFINITY_BIN (a binary to measure instead of building one),
# INFINITY_BENCH_DIR (default /var/tmp/infinity-compare-s3). The S3 server is moto's standalone
# server on loopback (Scripts/start-test-s3.sh, port 9100 here); restic is installed from Debian
# when missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
corpus_mib=${1:-300}
runs=${RUNS:-3}
work=${INFINITY_BENCH_DIR:-/var/tmp/infinity-compare-s3}
port=9100
export INFINITY_PASSPHRASE=compare-s3 RESTIC_PASSWORD=compare-s3 INFINITY_HOME="$work/home"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
endpoint="http://127.0.0.1:$port"

if ! command -v restic >/dev/null; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get install -y -qq restic >/dev/null
fi
bin=$("$here/infinity-binary.sh")

[ -d "$work/restore" ] && mountpoint -q "$work/restore" && umount "$work/restore"
rm -rf "$work"
mkdir -p "$work/corpus" "$work/logs" "$work/restore"
echo "copying about $corpus_mib MiB of the machine's trees into $work/corpus…" >&2
budget=$((corpus_mib << 20))
for source in /usr/share/doc /usr/include /usr/lib/python3*; do
    [ -d "$source" ] || continue
    used=$(du -sb "$work/corpus" | cut -f1)
    [ "$used" -lt "$budget" ] || break
    mkdir -p "$work/corpus$(dirname "$source")"
    cp -a "$source" "$work/corpus$(dirname "$source")/" 2>/dev/null || true
done
python3 - "$work/corpus" "$budget" <<'PY'
import os, sys
root, budget = sys.argv[1], int(sys.argv[2])
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if not os.path.islink(os.path.join(d, f)))
total = sum(os.path.getsize(f) for f in files)
for f in reversed(files):
    if total <= budget: break
    total -= os.path.getsize(f); os.remove(f)
print(f"corpus: {sum(1 for d, _, fs in os.walk(root) for _ in fs)} files, {total / 2**20:.0f} MiB", file=sys.stderr)
PY

# A fresh server for the run, logging every request it answers.
pkill -f "moto.server.*-p $port" 2>/dev/null || true
sleep 0.5
"$root/Scripts/start-test-s3.sh" "$port" 2>/dev/null
server_log="$root/.build/test-s3-$port.log"

loopback_bytes() { awk '/^ *lo:/ { printf "%.0f\n", $2 + $10 }' /proc/net/dev; }
requests() { grep -c '" [0-9][0-9][0-9] ' "$server_log" 2>/dev/null || echo 0; }

# step tool run: runs the rest of the arguments, records seconds, requests and loopback bytes.
measure() {
    local step=$1 tool=$2 run=$3; shift 3
    local requests_before bytes_before start end
    requests_before=$(requests); bytes_before=$(loopback_bytes); start=$(date +%s.%N)
    /usr/bin/time -f "%M %U %S" -o "$work/logs/rss" "$@" > "$work/logs/$tool-$step-$run.out" 2>&1
    end=$(date +%s.%N)
    echo "$step $tool $run $(awk "BEGIN { print $end - $start }") $(( $(requests) - requests_before )) $(( $(loopback_bytes) - bytes_before )) $(cut -d" " -f1 "$work/logs/rss")" >> "$work/logs/results"
    echo "$step $tool $run cpu $(cut -d" " -f2- "$work/logs/rss")" >> "$work/logs/cpu"
}

corpus_bytes=$(du -sb "$work/corpus" | cut -f1)
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=$((corpus_bytes * 2 + (256 << 20))) compare-s3 "$work/restore"; then
    restore_root="$work/restore"
    trap 'umount "$work/restore" 2>/dev/null || true' EXIT
else
    restore_root=$(mktemp -d /dev/shm/infinity-compare-s3.XXXXXX)
    trap 'rm -rf "$restore_root"' EXIT
fi
echo "restores go to the tmpfs at $restore_root" >&2

run_infinity() {
    local run=$1 store="s3://infinity-bench-$1/store?endpoint=$endpoint&region=us-east-1"
    "$bin" init --bare "$store" --name bench -q
    measure backup infinity "$run" "$bin" commit --store "$store" "$work/corpus" -m bench -q
    rm -rf "$work/home/stores"  # restore as another machine would: no local cache, no index
    measure restore infinity "$run" "$bin" checkout --store "$store" HEAD --to "$restore_root/infinity"
    diff -r --no-dereference "$work/corpus" "$restore_root/infinity$work/corpus" > /dev/null
    rm -rf "$restore_root/infinity"
}
run_restic() {
    local run=$1 repo="s3:$endpoint/restic-bench-$1"
    restic -r "$repo" init -q > /dev/null
    measure backup restic "$run" restic -r "$repo" backup -q "$work/corpus"
    rm -rf ~/.cache/restic
    measure restore restic "$run" restic -r "$repo" restore latest -q --target "$restore_root/restic"
    diff -r --no-dereference "$work/corpus" "$restore_root/restic$work/corpus" > /dev/null
    rm -rf "$restore_root/restic"
}

: > "$work/logs/results"
for run in $(seq 1 "$runs"); do
    if [ $((run % 2)) -eq 1 ]; then run_infinity "$run"; run_restic "$run"; else run_restic "$run"; run_infinity "$run"; fi
done

# The server's ceiling: the same number of bytes, moved by curl with nothing else to do.
mkdir -p "$work/raw"
objects=$(( ($(du -sb "$work/corpus" | cut -f1) + (16 << 20) - 1) / (16 << 20) ))
for i in $(seq 1 "$objects"); do head -c $((16 << 20)) /dev/urandom > "$work/raw/object-$i"; done
raw_bytes=$(du -sb "$work/raw" | cut -f1)
curl_s3() { curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$@"; }
export -f curl_s3
for run in $(seq 1 "$runs"); do
    curl_s3 -X PUT "$endpoint/raw-bench-$run" > /dev/null
    measure put curl "$run" bash -c "ls '$work/raw' | xargs -P 16 -I{} bash -c 'curl_s3 -T \"$work/raw/{}\" \"$endpoint/raw-bench-$run/{}\" > /dev/null'"
    measure get curl "$run" bash -c "ls '$work/raw' | xargs -P 16 -I{} bash -c 'curl_s3 \"$endpoint/raw-bench-$run/{}\" -o /dev/null'"
done

python3 - "$work/logs/results" "$(du -sb "$work/corpus" | cut -f1)" "$runs" "$raw_bytes" <<'PY'
import statistics, sys
path, corpus, runs, raw = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rows = {}
for line in open(path):
    step, tool, run, seconds, requests, nbytes, rss = line.split()
    rows.setdefault((step, tool), []).append((float(seconds), int(requests), int(nbytes), int(rss)))
med = lambda key, i: statistics.median(r[i] for r in rows[key])
print(f"S3 through a loopback moto server, corpus {corpus / 2**20:.0f} MiB (median of {runs} runs)")
print(f"{'':10} {'':9} {'seconds':>8} {'MB/s':>7} {'requests':>9} {'loopback MiB':>13} {'peak RSS MiB':>13}")
for step in ["backup", "restore"]:
    for tool in ["infinity", "restic"]:
        s = med((step, tool), 0)
        print(f"{step:10} {tool:9} {s:8.2f} {corpus / s / 1e6:7.1f} {med((step, tool), 1):9.0f} {med((step, tool), 2) / 2**20:13.1f} {med((step, tool), 3) / 1024:13.0f}")
for step, raw_step in [("put", "put"), ("get", "get")]:
    s = med((step, "curl"), 0)
    print(f"{'server ' + step:10} {'curl':9} {s:8.2f} {raw / s / 1e6:7.1f} {med((step, 'curl'), 1):9.0f} {med((step, 'curl'), 2) / 2**20:13.1f}")
ceiling = {"backup": raw / med(("put", "curl"), 0), "restore": raw / med(("get", "curl"), 0)}
for step in ["backup", "restore"]:
    t = med((step, "restic"), 0) / med((step, "infinity"), 0)
    for tool in ["infinity", "restic"]:
        share = corpus / med((step, tool), 0) / ceiling[step]
        print(f"{step}: {tool} moves the corpus at {share:.0%} of the rate the server takes raw bytes in 16 MiB objects")
    print(f"{step}: InfinityDB at {t:.2f}x restic's throughput (goal 2x), {med((step, 'infinity'), 1):.0f} requests "
          f"against restic's {med((step, 'restic'), 1):.0f} (goal: fewer)")
PY
