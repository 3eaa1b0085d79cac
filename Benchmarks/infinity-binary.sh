#!/usr/bin/env bash
# Prints the path of the infinity binary a benchmark measures: $INFINITY_BIN when set, else a
# release build made now (after installing the build dependencies).
set -euo pipefail
if [ -n "${INFINITY_BIN:-}" ]; then
    echo "$INFINITY_BIN"
    exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/Scripts/install-dependencies.sh" >&2
(cd "$root" && swift build -c release --product infinity >&2)
echo "$root/.build/release/infinity"
