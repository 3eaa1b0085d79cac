#!/usr/bin/env bash
# Sharing costs what is new to the recipient, not what the snapshot holds.
#
# Alice commits a generated snapshot (default 1 GiB: 256 files of 4 MiB, half random, half
# text-like), shares it with a new agent Bob, who accepts it; then 1% of the bytes change (1 MiB
# rewritten in each of 1% of the snapshot's MiB spread over as many files), Alice commits again
# and shares again. A third share with nothing new shows the fixed cost (the walk that stops
# where Bob already holds everything).
#
# Printed for each share: chunks and sealed bytes sent, bytes written into Bob's store, the delta
# (what Alice's own store grew by for that commit: the chunks the recipient lacks), time (median
# of RUNS runs, each with a fresh Bob), the same for accept, and peak RSS. Then bytes sent over the
# delta and the time of the 1% share over the full share, beside the byte ratio.
#
#   Benchmarks/share.sh [SNAPSHOT_SIZE_MIB (default 1024)]
#
# Environment: RUNS (default 3), INFINITY_BIN (a binary to measure instead of building one),
# INFINITY_BENCH_DIR (default /var/tmp/infinity-share-benchmark).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
size_mib=${1:-1024}
runs=${RUNS:-3}
work=${INFINITY_BENCH_DIR:-/var/tmp/infinity-share-benchmark}
export INFINITY_PASSPHRASE=share-benchmark INFINITY_HOME="$work/home"
for tool in python3 openssl /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "share.sh needs $tool (apt-get install python3 openssl time)" >&2; exit 1; }
done

bin=$("$here/infinity-binary.sh")

rm -rf "$work"
mkdir -p "$work/files" "$work/logs"
files=$((size_mib / 4))
echo "generating $files files of 4 MiB in $work/files…" >&2
for i in $(seq 1 "$files"); do
    if [ $((i % 2)) -eq 0 ]; then
        openssl rand -out "$work/files/f$i.bin" $((4 << 20))
    else
        python3 -c "
import random, sys
r = random.Random($i)
words = ['alpha','beta','gamma','delta','share','agent','commit','chunk','pack','store','seal','merge']
out = []
size = 0
while size < (4 << 20):
    line = ' '.join(r.choice(words) for _ in range(12)) + ' %d\n' % r.randrange(10**9)
    out.append(line); size += len(line)
sys.stdout.write(''.join(out)[:4 << 20])" > "$work/files/f$i.txt"
    fi
done

# Run a command, appending "seconds peak_kib" to $work/logs/measure; its stdout to $1.
measure() {
    local out=$1; shift
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/logs/rss" "$@" > "$out" 2>> "$work/logs/stderr"
    end=$(date +%s.%N)
    echo "$(awk "BEGIN { print $end - $start }") $(cat "$work/logs/rss")" >> "$work/logs/measure"
}
json_field() { python3 -c "import json,sys; print(json.load(open('$1'))$2)"; }

alice="$work/alice"
"$bin" init --bare "$alice" --name alice -q
export INFINITY_STORE=$alice
"$bin" commit "$work/files" -m "the snapshot" --json > "$work/logs/commit1.json"
delta_full=$(json_field "$work/logs/commit1.json" "['bytesAdded']")
"$bin" tag v1 -q

# 1% of the bytes change: 1 MiB rewritten in size_mib/100 files.
changed=$(( (size_mib + 99) / 100 ))
for i in $(seq 1 "$changed"); do
    n=$(( (i * files / changed) ))
    [ "$n" -ge 1 ] || n=1
    target=$(ls "$work/files"/f$n.* | head -1)
    openssl rand -out "$work/logs/patch" $((1 << 20))
    dd if="$work/logs/patch" of="$target" bs=1M seek=1 count=1 conv=notrunc status=none
done
"$bin" commit "$work/files" -m "1% changed" --json > "$work/logs/commit2.json"
delta_small=$(json_field "$work/logs/commit2.json" "['bytesAdded']")

: > "$work/logs/results"
for run in $(seq 1 "$runs"); do
    bob="$work/bob-$run"
    "$bin" agent create "bob$run" --at "$bob" -q
    for step in full small none; do
        rev=main; [ "$step" = full ] && rev=v1
        : > "$work/logs/measure"
        measure "$work/logs/share-$step.json" "$bin" share "$rev" --with "bob$run" --as main --json
        measure "$work/logs/accept-$step.json" "$bin" accept --store "$bob" --json
        read -r share_s share_kib < <(sed -n 1p "$work/logs/measure")
        read -r accept_s accept_kib < <(sed -n 2p "$work/logs/measure")
        sent=$(json_field "$work/logs/share-$step.json" "['chunkBytesSent']")
        chunks=$(json_field "$work/logs/share-$step.json" "['chunksSent']")
        written=$(json_field "$work/logs/share-$step.json" "['bytesWritten']")
        share_in=$(json_field "$work/logs/share-$step.json" "['seconds']")
        accept_in=$(json_field "$work/logs/accept-$step.json" "[0]['seconds']")
        echo "$step $run $chunks $sent $written $share_s $share_kib $accept_s $accept_kib $share_in $accept_in" >> "$work/logs/results"
    done
done

python3 - "$work/logs/results" "$delta_full" "$delta_small" "$size_mib" "$runs" <<'PY'
import statistics, sys
path, delta_full, delta_small, size_mib, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rows = {}
for line in open(path):
    step, run, chunks, sent, written, share_s, share_kib, accept_s, accept_kib, share_in, accept_in = line.split()
    rows.setdefault(step, []).append((int(chunks), int(sent), int(written), float(share_s), int(share_kib), float(accept_s), int(accept_kib), float(share_in), float(accept_in)))
def med(step, i): return statistics.median(r[i] for r in rows[step])
mib = lambda b: b / 2**20
deltas = {"full": delta_full, "small": delta_small, "none": 0}
names = {"full": "first share (everything)", "small": "after a 1% change", "none": "nothing new"}
print(f"Sharing a {size_mib} MiB snapshot with a new agent (median of {runs} runs)")
print(f"{'':28} {'chunks':>7} {'sent MiB':>9} {'delta MiB':>10} {'written MiB':>12} {'share s':>8} {'(in it)':>8} {'accept s':>9} {'(in it)':>8} {'peak RSS MiB':>13}")
for step in ["full", "small", "none"]:
    print(f"{names[step]:28} {med(step,0):7.0f} {mib(med(step,1)):9.2f} {mib(deltas[step]):10.2f} {mib(med(step,2)):12.2f} "
          f"{med(step,3):8.2f} {med(step,7):8.3f} {med(step,5):9.2f} {med(step,8):8.3f} {max(med(step,4), med(step,6))/1024:13.0f}")
print("(share s, accept s: the whole command; (in it): the share or accept itself, without starting the process and unlocking the key)")
ratio = med("small", 1) / delta_small if delta_small else float("nan")
print(f"\nbytes sent / delta after the 1% change: {ratio:.3f}")
print(f"1% share vs first share: bytes {med('small',1)/med('full',1):.3f}, time in the share {med('small',7)/med('full',7):.3f}, "
      f"in the accept {med('small',8)/med('full',8):.3f}; a share with nothing new takes {med('none',7)*1000:.0f} ms in it")
PY
