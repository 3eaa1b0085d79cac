#!/usr/bin/env bash
# Quick start: installs the build dependencies, builds `infinity` (release), creates a local store
# and stores, reads back and verifies a directory tree packed as one stream; then stores it again
# to show deduplication, and prints the store's statistics. Last, it runs the library guide
# (Snippets/LibraryGuide.swift): versioned app state committed, time-travelled, forked, diffed
# and merged in a local store.
#
#   Scripts/quickstart.sh [DIRECTORY TO STORE (default: /usr/share/doc)]
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/install-dependencies.sh
swift build -c release --product infinity
infinity="$(swift build -c release --show-bin-path)/infinity"
source_dir=${1:-/usr/share/doc}
demo=$(mktemp -d "${TMPDIR:-/tmp}/infinity-quickstart.XXXXXX")
export INFINITY_STORE="$demo/store" INFINITY_PASSPHRASE="quickstart passphrase"

echo "== infinity init $INFINITY_STORE"
"$infinity" init "$INFINITY_STORE" --name quickstart
echo "== infinity blob put (a tar of $source_dir)"
tar cf "$demo/source.tar" -C "$(dirname "$source_dir")" "$(basename "$source_dir")" 2>/dev/null
time "$infinity" blob put "$demo/source.tar" > "$demo/source.ref"
echo "reference: $(cut -c1-24 "$demo/source.ref")… (a read capability: it carries the keys)"
echo "== infinity blob get (read back and compare)"
"$infinity" blob get "$(cat "$demo/source.ref")" --output "$demo/restored.tar"
cmp "$demo/source.tar" "$demo/restored.tar" && echo "restored $(stat -c %s "$demo/restored.tar") bytes, identical"
echo "== the same data again: nothing new is stored"
time "$infinity" blob put "$demo/source.tar" > /dev/null
"$infinity" stats
echo "The store is in $INFINITY_STORE (passphrase: \"$INFINITY_PASSPHRASE\")."
echo "== versioned app state: the library guide (Snippets/LibraryGuide.swift, Docs/LIBRARY.md)"
swift run -c release LibraryGuide
