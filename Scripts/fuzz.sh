#!/usr/bin/env bash
# Builds the libFuzzer targets under Fuzz/ with the fuzzer and address sanitizers, runs every
# saved regression input once, then fuzzes each target for SECONDS_PER_TARGET seconds (default
# 20) from its seed corpus and regressions, as many targets at once as there are cores. Prints
# the executions each target ran and their total; exits non-zero on any crash, leak or timeout,
# leaving the input that caused it in .build/fuzz/findings/. See Docs/FUZZING.md.
#
#   Scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET…]   fuzz (all targets unless some are named)
#   Scripts/fuzz.sh --seeds [0 TARGET…]              rewrite Fuzz/Corpus/ from the targets' seeds
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(
    FuzzPackTrailer FuzzChunk FuzzTreeNode FuzzCommit FuzzShareEnvelope FuzzAgentCard FuzzStoreFiles
    FuzzSnapshotEntry
)
build_path=.build/fuzz
# Every input the seeds hold fits, with room for the fuzzer to grow them.
max_len=4096
# No decoder may allocate this much for an input of at most max_len bytes: a larger allocation
# is a length field trusted too far, and fails the run.
malloc_limit_mb=256

write_seeds=false
if [[ "${1:-}" == "--seeds" ]]; then
    write_seeds=true
    shift
fi
seconds=${1:-20}
shift || true
if (($# > 0)); then targets=("$@"); fi

# The fuzz targets exist in the package only with INFINITY_FUZZ set (see Package.swift). Swift's
# own crash backtracer would hold a crashing target for half a minute: libFuzzer reports instead.
export INFINITY_FUZZ=1 SWIFT_BACKTRACE=enable=no

# SwiftPM passes its sanitizers to swiftc in no fixed order, and swiftc adds the fuzzer's coverage
# instrumentation only when the last -sanitize option names the fuzzer: the extra option makes it
# so (without it, about one build in two fuzzes blind).
sanitizers=(--sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address)

build_start=$SECONDS
for target in "${targets[@]}"; do
    swift build "${sanitizers[@]}" --build-path "$build_path" --product "$target" 2>&1 |
        grep -v "Cannot export local symbol" | grep -E "error|warning: |Compiling|complete" || true
    if [[ ! -x "$build_path/debug/$target" ]]; then
        echo "fuzz: $target did not build" >&2
        exit 1
    fi
done
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - build_start)) s"
bin="$build_path/debug"

if $write_seeds; then
    for target in "${targets[@]}"; do
        rm -rf "Fuzz/Corpus/$target"
        mkdir -p "Fuzz/Corpus/$target"
        INFINITY_FUZZ_WRITE_SEEDS="Fuzz/Corpus/$target" "$bin/$target" > /dev/null
        echo "fuzz: $target: $(ls "Fuzz/Corpus/$target" | wc -l) seeds"
    done
    exit 0
fi

findings="$build_path/findings"
logs="$build_path/logs"
mkdir -p "$findings" "$logs"
failed=()

# Each regression input once: every one of them once made a decoder trap.
for target in "${targets[@]}"; do
    regressions=(Fuzz/Regressions/"$target"/*)
    [[ -e "${regressions[0]}" ]] || continue
    if ! "$bin/$target" -runs=1 "${regressions[@]}" > "$logs/$target.regressions.log" 2>&1; then
        echo "fuzz: $target fails on a regression input:" >&2
        tail -n 30 "$logs/$target.regressions.log" >&2
        failed+=("$target (regression)")
    else
        echo "fuzz: $target: ${#regressions[@]} regression inputs pass"
    fi
done

run_target() {
    local target=$1
    # New inputs the fuzzer finds go to a working corpus kept under .build, so that longer local
    # runs build on earlier ones; the committed seeds and regressions are only read.
    local working="$build_path/corpus/$target"
    mkdir -p "$working" "Fuzz/Regressions/$target"
    "$bin/$target" "$working" "Fuzz/Corpus/$target" "Fuzz/Regressions/$target" \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb="$malloc_limit_mb" \
        -print_final_stats=1 -artifact_prefix="$findings/$target-" > "$logs/$target.log" 2>&1
}

jobs_at_once=$(nproc 2> /dev/null || echo 2)
declare -A pids
fuzz_start=$SECONDS
for target in "${targets[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs_at_once)); do wait -n || true; done
    run_target "$target" &
    pids[$target]=$!
done

total=0
for target in "${targets[@]}"; do
    status=0
    wait "${pids[$target]}" || status=$?
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -n 1)
    executions=${executions:-0}
    total=$((total + executions))
    printf 'fuzz: %-18s %10d executions in %d s\n' "$target" "$executions" "$seconds"
    if ! grep -q "inline 8-bit counters" "$logs/$target.log"; then
        echo "fuzz: $target has no coverage instrumentation: it fuzzed blind" >&2
        status=1
    fi
    if ((status != 0)); then
        echo "fuzz: $target failed (exit $status); the input is in $findings/:" >&2
        grep -E "^(==[0-9]+==|SUMMARY|Fatal error|.*Fatal error)" "$logs/$target.log" | head -n 5 >&2 || true
        grep -E "Test unit written to" "$logs/$target.log" >&2 || true
        failed+=("$target")
    fi
done
echo "fuzz: $total executions in all, ${#targets[@]} targets, $((SECONDS - fuzz_start)) s of fuzzing"

if ((${#failed[@]} > 0)); then
    echo "fuzz: FAILED: ${failed[*]} (logs in $logs/)" >&2
    exit 1
fi
