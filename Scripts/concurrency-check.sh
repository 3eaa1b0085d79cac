#!/usr/bin/env bash
# Concurrency check: several `infinity commit` processes on one store and one branch at once, with
# gc (short grace) and a reader (log, checkout, check) running beside them; afterwards every
# reported commit resolves and checks out byte for byte, and `check --read-data` is clean. A
# commit that loses the race must fail with the branch-moved error. Exit status 1 on any failure.
#
#   Scripts/concurrency-check.sh [--seconds S (default 40)] [--committers N (default 3)] [--seed N] [--keep]
#
# Builds the release binary first, unless INFINITY_BIN names one to use.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=$("$root/Benchmarks/infinity-binary.sh")
exec python3 "$root/Scripts/concurrency-check.py" --binary "$binary" "$@"
