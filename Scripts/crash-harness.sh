#!/usr/bin/env bash
# Crash safety harness: kills the real `infinity` binary with SIGKILL at random moments of commit,
# gc, share, accept and passphrase, and checks after every kill that the store opens, checks clean,
# keeps every reported commit byte for byte, and that the next command succeeds. Exit status 1 on
# any failure. See "Crash safety" in Docs/ARCHITECTURE.md.
#
#   Scripts/crash-harness.sh [KILLS (default 300)] [--seed N] [--worlds W] [--data-mb M] [--keep]
#
# Builds the release binary first, unless INFINITY_BIN names one to use.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=$("$root/Benchmarks/infinity-binary.sh")
exec python3 "$root/Scripts/crash-harness.py" --binary "$binary" "$@"
