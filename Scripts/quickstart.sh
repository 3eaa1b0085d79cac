#!/usr/bin/env bash
# Quick start: installs the build dependencies, builds `infinity` (release), and backs up a
# directory tree into a new local store: a first snapshot, a second one after a change (only the
# change is read), the log and the diff, and a restore checked byte for byte against the source.
# Then a second agent gets its own store, the latest snapshot is shared with it, and it restores
# the shared snapshot from its own store. Last, it runs the library guide (Snippets/LibraryGuide.swift): versioned app state committed,
# time-travelled, forked, diffed and merged in a local store.
#
#   Scripts/quickstart.sh [DIRECTORY TO BACK UP (default: /usr/share/doc)]
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/install-dependencies.sh
infinity=$(Benchmarks/infinity-binary.sh)
source_dir=$(cd "${1:-/usr/share/doc}" && pwd)
demo=$(mktemp -d "${TMPDIR:-/tmp}/infinity-quickstart.XXXXXX")
export INFINITY_STORE="$demo/store" INFINITY_PASSPHRASE="quickstart passphrase"

echo "== infinity init --bare $INFINITY_STORE"
"$infinity" init --bare "$INFINITY_STORE" --name quickstart
echo "== a working copy of $source_dir, backed up"
mkdir -p "$demo/data" && cp -a "$source_dir" "$demo/data/"
copy="$demo/data/$(basename "$source_dir")"
time "$infinity" commit "$copy" -m "first backup"
echo "== one file changed: only it is read again"
echo "a new line" >> "$(find "$copy" -type f | sort | head -1)"
time "$infinity" commit "$copy" -m "second backup"
"$infinity" log
"$infinity" diff HEAD --stat
echo "== restore the latest snapshot and compare it with the source"
"$infinity" checkout HEAD --to "$demo/restored"
diff -r --no-dereference "$copy" "$demo/restored${copy}" && echo "restored tree is identical"
"$infinity" stats
echo "== a second agent, bob, with a store of his own: share the snapshot, accept it, restore it from bob's store"
"$infinity" agent create bob --at "$demo/bob"
"$infinity" share main --with bob
"$infinity" accept --store "$demo/bob"
"$infinity" log --store "$demo/bob" quickstart/main --limit 1
"$infinity" checkout --store "$demo/bob" quickstart/main --to "$demo/bob-restored"
diff -r --no-dereference "$copy" "$demo/bob-restored${copy}" && echo "bob's copy is identical"
echo "The store is in $INFINITY_STORE, bob's in $demo/bob (passphrase: \"$INFINITY_PASSPHRASE\")."
echo "== versioned app state: the library guide (Snippets/LibraryGuide.swift, Docs/LIBRARY.md)"
swift run -c release LibraryGuide
