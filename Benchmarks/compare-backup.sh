#!/usr/bin/env bash
# Backup benchmark beside restic and borg: one corpus copied from the machine's own trees (the
# Swift toolchain, /usr/share, /usr/include, Python's library), and for each tool, encryption on
# and its default compression: first backup, unchanged re-backup, re-backup after appending to 1%
# of the files, restore of the latest snapshot to a tmpfs and to disk, repo size and peak RSS.
# Medians of RUNS runs, printed with InfinityDB/restic and InfinityDB/borg ratios and the goals;
# every restored tree is verified byte for byte (contents, symlink targets, modes).
#
#   Benchmarks/compare-backup.sh [CORPUS_SIZE (default 2.5G, ~60k files)]
#
# Environment:
#   RUNS                 runs (default 3)
#   TOOLS                tools to measure (default "infinity restic borg")
#   CORPUS_SIZE          as the argument; 300M, 2.5G… (binary units)
#   CORPUS_SOURCES       colon-separated trees to copy from (default: the Swift toolchain's folder,
#                        /usr/share, /usr/include, /usr/lib/python3 and /usr/lib/python3.X); each
#                        gives an equal share of the size, spread over its whole tree
#   INFINITY_BIN         an infinity binary to measure instead of building one
#   INFINITY_BENCH_DIR   work directory (default /var/tmp/infinity-compare-backup, on disk). The
#                        corpus is built there once and reused while size and sources stay the same;
#                        results.jsonl (raw figures) is written there.
#
# restic and borgbackup are installed from Debian when missing (apt-get, through sudo when not
# root). As root, the page cache is dropped before every timed step and the tmpfs is mounted for
# the run; otherwise caches stay warm and /dev/shm serves as the tmpfs. Every timed step ends
# with `sync`, so its time covers getting the data onto the disk. The tools take turns going first
# (run 1: infinity restic borg, run 2: restic borg infinity, …): the tool after a large deletion
# (a repo and two restored corpora) writes onto a filesystem still freeing them, which here
# (ext4 without a journal) slows writes for minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
size_arg=${1:-${CORPUS_SIZE:-2.5G}}
runs=${RUNS:-3}
tools=${TOOLS:-infinity restic borg}
work=${INFINITY_BENCH_DIR:-/var/tmp/infinity-compare-backup}
mkdir -p "$work"
work=$(cd "$work" && pwd)
corpus="$work/corpus"
results="$work/results.jsonl"
logs="$work/logs"
export RESTIC_PASSWORD=compare-backup-benchmark
export BORG_PASSPHRASE=compare-backup-benchmark
export INFINITY_PASSPHRASE=compare-backup-benchmark
export BORG_DISPLAY_PASSPHRASE=no BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export RESTIC_CACHE_DIR="$work/home/restic-cache" BORG_BASE_DIR="$work/home" # fresh for every repo

for tool in python3 numfmt awk /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "compare-backup.sh needs $tool (apt-get install python3 coreutils time)" >&2; exit 1; }
done
target_bytes=$(numfmt --from=iec "$size_arg") || { echo "corpus size '$size_arg' is not a size (try 300M or 2.5G)" >&2; exit 1; }
for tool in $tools; do
    case $tool in infinity|restic|borg) ;; *) echo "TOOLS: unknown tool '$tool' (infinity, restic, borg)" >&2; exit 1 ;; esac
done
as_root=false; [ "$(id -u)" -eq 0 ] && as_root=true

# The helper for everything that walks trees: corpus selection, the 1% append and its undo,
# the expected state of the corpus, verification of restored trees, and the report.
helper=$(cat <<'PY'
import hashlib, json, os, stat, statistics, sys
from multiprocessing import Pool

def walk(root):
    """(relative path, lstat) of everything under root, sorted, symlinks not followed."""
    out = []
    def visit(directory, prefix):
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            out.append((rel, st))
            if stat.S_ISDIR(st.st_mode):
                visit(entry.path, rel + "/")
    visit(root, "")
    return out

def kind(st):
    m = st.st_mode
    return "f" if stat.S_ISREG(m) else "d" if stat.S_ISDIR(m) else "l" if stat.S_ISLNK(m) else "?"

def select(target, out_path, *sources):
    """Picks a deterministic sample of the sources' files summing to about target bytes. Every
    source gets an equal share (a source smaller than its share passes the rest on), and inside a
    source files are taken systematically along the sorted walk, so the sample spreads over the
    whole tree. Symlinks and empty directories come along in the same proportion."""
    listed = []
    for source in sources:
        entries = []
        for rel, st in walk(source):
            k = kind(st)
            if k == "f" or k == "l" or (k == "d" and not os.listdir(os.path.join(source, rel))):
                entries.append((os.path.join(source, rel), k, st.st_size if k == "f" else 0))
        listed.append((source, entries, sum(size for _, _, size in entries)))
    budgets, remaining = {}, float(target)
    ordered = sorted(listed, key=lambda s: s[2])
    for i, (source, _, total) in enumerate(ordered):
        budgets[source] = min(total, remaining / (len(ordered) - i))
        remaining -= budgets[source]
    files = nbytes = 0
    with open(out_path, "wb") as out:
        for source, entries, total in listed:
            share = budgets[source] / total if total else 0
            taken = seen = count = 0
            for path, k, size in entries:
                seen += size
                if share >= 1 or (share > 0 and taken + size / 2 <= share * seen):
                    taken += size
                    count += k == "f"
                    out.write(path.lstrip("/").encode() + b"\0")  # relative to /, for cp --parents
            files += count; nbytes += taken
            print(f"  {source}: {count:,} files, {taken / 2**20:,.0f} MiB (of {total / 2**20:,.0f} MiB)", file=sys.stderr)
    print(f"  total: {files:,} files, {nbytes / 2**20:,.0f} MiB", file=sys.stderr)

def fix_directories(corpus):
    """Gives every copied directory its source's times (cp --parents leaves later batches' times)."""
    for rel, st in reversed(walk(corpus)):
        if kind(st) == "d":
            src = os.lstat("/" + rel)
            os.utime(os.path.join(corpus, rel), ns=(src.st_atime_ns, src.st_mtime_ns), follow_symlinks=False)

def shape(corpus):
    return [[rel, kind(st), stat.S_IMODE(st.st_mode), st.st_size if kind(st) == "f" else 0,
             st.st_mtime_ns, os.readlink(os.path.join(corpus, rel)) if kind(st) == "l" else None]
            for rel, st in walk(corpus)]

def manifest(corpus, out_path):
    """The corpus's shape (paths, types, modes, sizes, times, link targets), to check it before each run."""
    entries = shape(corpus)
    with open(out_path + ".tmp", "w") as out:
        json.dump(entries, out)
    os.replace(out_path + ".tmp", out_path)
    files = [e for e in entries if e[1] == "f"]
    print(json.dumps({"files": len(files), "bytes": sum(e[3] for e in files),
                      "symlinks": sum(e[1] == "l" for e in entries), "dirs": sum(e[1] == "d" for e in entries)}))

def check(corpus, manifest_path):
    expected, actual = json.load(open(manifest_path)), shape(corpus)
    if expected != actual:
        exp, act = {e[0]: e for e in expected}, {e[0]: e for e in actual}
        diffs = [p for p in sorted(set(exp) | set(act)) if exp.get(p) != act.get(p)]
        print(f"the corpus {corpus} changed since it was built ({len(diffs)} entries differ, e.g. {diffs[:3]});"
              f" delete it to rebuild", file=sys.stderr)
        sys.exit(1)

def appended_bytes(rel):
    line = f"appended by compare-backup.sh to {rel}\n".encode()
    return (line * (4096 // len(line) + 1))[:4096]

def append(corpus, state_path):
    """Appends 4 KiB to every 100th regular file (sorted order) and moves its mtime on by a second,
    so the changed state is the same in every run. The original sizes and times are saved first."""
    files = [(rel, st) for rel, st in walk(corpus) if kind(st) == "f"][::100]
    with open(state_path + ".tmp", "w") as out:
        json.dump([[rel, st.st_size, st.st_atime_ns, st.st_mtime_ns] for rel, st in files], out)
    os.replace(state_path + ".tmp", state_path)
    for rel, st in files:
        path = os.path.join(corpus, rel)
        with open(path, "ab") as f:
            f.write(appended_bytes(rel))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    print(len(files))

def revert(corpus, state_path):
    for rel, size, atime, mtime in json.load(open(state_path)):
        path = os.path.join(corpus, rel)
        os.truncate(path, size)
        os.utime(path, ns=(atime, mtime))
    os.remove(state_path)

def digest(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()

def state(root):
    """Everything verification compares, for the tree under root."""
    entries = walk(root)
    files = [os.path.join(root, rel) for rel, st in entries if kind(st) == "f"]
    with Pool(os.cpu_count()) as pool:
        digests = dict(zip(files, pool.map(digest, files, chunksize=64)))
    result = {}
    for rel, st in entries:
        path, k = os.path.join(root, rel), kind(st)
        result[rel] = {"kind": k, "mode": stat.S_IMODE(st.st_mode), "size": st.st_size if k == "f" else 0,
                       "sha256": digests.get(path), "target": os.readlink(path) if k == "l" else None,
                       "mtime_ns": st.st_mtime_ns, "owner": [st.st_uid, st.st_gid]}
    return result

def expect(corpus, out_path):
    with open(out_path + ".tmp", "w") as out:
        json.dump(state(corpus), out)
    os.replace(out_path + ".tmp", out_path)

def verify(expected_path, restored, label):
    """Fails loudly unless restored holds exactly the expected tree: the same paths and types,
    contents (SHA-256 of every file), symlink targets and modes. Differences in modification times
    and owners are reported, not failed."""
    expected = json.load(open(expected_path))
    if not os.path.isdir(restored):
        print(f"VERIFICATION FAILED ({label}): {restored} was not restored", file=sys.stderr); sys.exit(1)
    actual = state(restored)
    problems, notes = [], {"mtime_ns": {}, "owner": {}}
    for rel in sorted(set(expected) | set(actual)):
        e, a = expected.get(rel), actual.get(rel)
        if a is None: problems.append(f"missing: {rel}"); continue
        if e is None: problems.append(f"not in the corpus: {rel}"); continue
        for field in ("kind", "size", "sha256", "target", "mode"):
            if e[field] != a[field]:
                problems.append(f"{field} differs: {rel} (expected {e[field]!r}, restored {a[field]!r})")
                break
        for field in notes:
            if e[field] != a[field]:
                notes[field][e["kind"]] = notes[field].get(e["kind"], 0) + 1
    if problems:
        print(f"\nVERIFICATION FAILED ({label}): {len(problems)} differences under {restored}", file=sys.stderr)
        for p in problems[:20]: print("  " + p, file=sys.stderr)
        sys.exit(1)
    files = [e for e in expected.values() if e["kind"] == "f"]
    kinds = {"f": "files", "d": "directories", "l": "symlinks"}
    note = "; ".join(f"{'modification times' if field == 'mtime_ns' else 'owners'} differ for "
                     + ", ".join(f"{n:,} {kinds[k]}" for k, n in sorted(counts.items()))
                     for field, counts in notes.items() if counts)
    print(f"  verified {label}: {len(files):,} files ({sum(e['size'] for e in files) / 2**20:,.0f} MiB), "
          f"symlinks, directories and modes identical{'; ' + note if note else ''}", file=sys.stderr)
    print(json.dumps({"mtime_differences": notes["mtime_ns"], "owner_differences": notes["owner"]}))

def report(results_path):
    rows = [json.loads(line) for line in open(results_path) if line.strip()]
    meta = next(r["meta"] for r in rows if "meta" in r)
    values = {}
    for r in rows:
        if "tool" in r:
            for key, value in r.items():
                if key not in ("tool", "run", "step", "verified"):
                    values.setdefault((r["tool"], r.get("step"), key), []).append(value)
    def med(tool, step, key):
        v = values.get((tool, step, key))
        return statistics.median(v) if v else None
    tools = ["infinity", "restic", "borg"]
    corpus_mb = meta["corpus_bytes"] / 1e6
    nruns = max((len(v) for k, v in values.items() if k[2] == "seconds"), default=0)
    print(f"\nBackup comparison: {meta['corpus_bytes'] / 2**30:.2f} GiB corpus, {meta['corpus_files']:,} files, "
          f"{meta['corpus_symlinks']:,} symlinks; median of {nruns} run{'s' if nruns != 1 else ''}; {meta['cores']} cores")
    for tool in tools:
        if tool in meta["versions"]: print(f"  {tool:<9}{meta['versions'][tool]}")
    print(f"  caches dropped before every step: {meta['caches_dropped']}; tmpfs: {meta['tmpfs']}; "
          f"every timed step ends with sync")
    figures = [
        ("first backup (s)", lambda t: med(t, "first_backup", "seconds"), "{:.1f}"),
        ("first backup (MB/s)", lambda t: corpus_mb / s if (s := med(t, "first_backup", "seconds")) else None, "{:.0f}"),
        ("unchanged re-backup (s)", lambda t: med(t, "unchanged_backup", "seconds"), "{:.2f}"),
        ("1%-changed re-backup (s)", lambda t: med(t, "changed_backup", "seconds"), "{:.2f}"),
        ("restore to tmpfs (s)", lambda t: med(t, "restore_tmpfs", "seconds"), "{:.1f}"),
        ("restore to tmpfs (MB/s)", lambda t: corpus_mb / s if (s := med(t, "restore_tmpfs", "seconds")) else None, "{:.0f}"),
        ("restore to disk (s)", lambda t: med(t, "restore_disk", "seconds"), "{:.1f}"),
        ("restore to disk (MB/s)", lambda t: corpus_mb / s if (s := med(t, "restore_disk", "seconds")) else None, "{:.0f}"),
        ("repo after 1st backup (MiB)", lambda t: b / 2**20 if (b := med(t, "repo", "bytes_after_first")) else None, "{:,.0f}"),
        ("repo after 3 backups (MiB)", lambda t: b / 2**20 if (b := med(t, "repo", "bytes_after_all")) else None, "{:,.0f}"),
    ]
    steps = [("first backup", "first_backup"), ("unchanged re-backup", "unchanged_backup"),
             ("changed re-backup", "changed_backup"), ("restore to tmpfs", "restore_tmpfs"), ("restore to disk", "restore_disk")]
    for label, step in steps:
        figures.append((f"peak RSS {label} (MiB)", lambda t, step=step: k / 1024 if (k := med(t, step, "max_rss_kib")) else None, "{:,.0f}"))
    def peak(t):
        ks = [k for _, step in steps if (k := med(t, step, "max_rss_kib"))]
        return max(ks) / 1024 if ks else None
    figures.append(("peak RSS, largest (MiB)", peak, "{:,.0f}"))
    show = lambda v, f: "—" if v is None else f.format(v)
    ratio = lambda a, b: "—" if a is None or not b else f"{a / b:.2f}"
    print(f"\n{'figure':<36}{'InfinityDB':>12}{'restic':>12}{'borg':>12}{'ours/restic':>13}{'ours/borg':>11}")
    for label, get, fmt in figures:
        v = {t: get(t) for t in tools}
        print(f"{label:<36}{show(v['infinity'], fmt):>12}{show(v['restic'], fmt):>12}{show(v['borg'], fmt):>12}"
              f"{ratio(v['infinity'], v['restic']):>13}{ratio(v['infinity'], v['borg']):>11}")
    print("(ratios divide InfinityDB's figure by the other tool's: below 1 is better for times, sizes and memory)")
    verified = {}
    for r in rows:
        if "verified" in r:
            v = verified.setdefault(r["tool"], {"restores": 0, "mtime": set(), "owner": set()})
            v["restores"] += 1
            v["mtime"] |= set(r["verified"]["mtime_differences"]); v["owner"] |= set(r["verified"]["owner_differences"])
    kinds = {"f": "files", "d": "directories", "l": "symlinks"}
    for tool in tools:
        if tool in verified:
            v = verified[tool]
            gaps = [f"{what} of {', '.join(kinds[k] for k in sorted(v[key]))}" for key, what in
                    (("mtime", "modification times"), ("owner", "owners")) if v[key]]
            print(f"{tool}: {v['restores']} restores verified byte for byte (contents, symlink targets, modes)"
                  + (f"; not restored: {'; '.join(gaps)}" if gaps else "; times and owners restored too"))
    print(f"\n{'goal (InfinityDB against restic, medians)':<52}{'measured':>10}  result")
    def goal(label, value, met):
        print(f"{label:<52}{'—' if value is None else value:>10}  {'—' if value is None else ('met' if met else 'MISSED')}")
    def speedup(step):
        ours, theirs = med("infinity", step, "seconds"), med("restic", step, "seconds")
        return theirs / ours if ours and theirs else None
    s = speedup("first_backup"); goal("first backup throughput ≥ 2× restic's", s and f"{s:.2f}×", s and s >= 2)
    a, b = med("infinity", "repo", "bytes_after_first"), med("restic", "repo", "bytes_after_first")
    goal("repo after first backup ≤ restic's", a and b and f"{a / b:.2f}×", a and b and a <= b)
    s = speedup("unchanged_backup"); goal("unchanged re-backup ≥ 3× faster than restic", s and f"{s:.2f}×", s and s >= 3)
    s = speedup("restore_tmpfs"); goal("restore to tmpfs ≥ 2× faster than restic", s and f"{s:.2f}×", s and s >= 2)
    s = speedup("restore_disk"); goal("restore to disk ≥ 2× faster than restic", s and f"{s:.2f}×", s and s >= 2)
    a, b = peak("infinity"), peak("restic")
    goal("peak RSS ≤ restic's (largest over the steps)", a and b and f"{a / b:.2f}×", a and b and a <= b)

if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY
)
py() { python3 -c "$helper" "$@"; }

# --- tools -------------------------------------------------------------------------------------
missing=()
for tool in $tools; do
    case $tool in
        restic) command -v restic >/dev/null || missing+=(restic) ;;
        borg) command -v borg >/dev/null || missing+=(borgbackup) ;;
    esac
done
if [ ${#missing[@]} -gt 0 ]; then
    if $as_root; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
        echo "compare-backup.sh needs ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root" >&2; exit 1
    fi
    echo "installing ${missing[*]} from Debian…" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
        { "${sudo[@]}" apt-get update -q >&2 && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
fi
declare -A version
if [[ " $tools " == *" infinity "* ]]; then
    if [ -n "${INFINITY_BIN:-}" ]; then
        infinity=$(readlink -f "$INFINITY_BIN")
    else
        echo "building infinity (release)…" >&2
        infinity=$("$here/infinity-binary.sh")
    fi
    for command in commit checkout; do
        "$infinity" "$command" --help >/dev/null 2>&1 ||
            { echo "this infinity has no '$command' command yet: update the branch, or run with TOOLS='restic borg'" >&2; exit 1; }
    done
    if [ -n "${INFINITY_BIN:-}" ]; then built="$infinity"; else
        built="commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- Sources Package.swift || echo ", modified")"
    fi
    version[infinity]="infinity $("$infinity" --version 2>/dev/null || echo "?") ($built)"
fi
if [[ " $tools " == *" restic "* ]]; then # which repository format (and so compression) `restic init` gives
    rm -rf "$work/restic-probe"
    restic init --repo "$work/restic-probe" --no-cache >/dev/null 2>&1
    format=$(restic cat config --repo "$work/restic-probe" --no-cache | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
    rm -rf "$work/restic-probe"
    [ "$format" -ge 2 ] && compression="compression auto (zstd)" || compression="no compression"
    version[restic]="$(restic version | awk '{ print $1, $2 }') (repository format $format, $compression; AES-256-CTR + Poly1305)"
fi
if [[ " $tools " == *" borg "* ]]; then
    version[borg]="$(borg --version) (repokey: AES-256-CTR + HMAC-SHA256; lz4)"
fi

# --- the corpus (built once) -------------------------------------------------------------------
if [ -n "${CORPUS_SOURCES:-}" ]; then
    IFS=: read -r -a sources <<<"$CORPUS_SOURCES"
    for i in "${!sources[@]}"; do sources[i]=$(readlink -f "${sources[i]}"); done
else
    command -v swift >/dev/null || { echo "compare-backup.sh copies the Swift toolchain: put swift on PATH or set CORPUS_SOURCES" >&2; exit 1; }
    toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
    sources=("$toolchain" /usr/share /usr/include)
    for tree in /usr/lib/python3 "/usr/lib/python$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"; do
        [ -d "$tree" ] && sources+=("$tree")
    done
fi
params="corpus v1 size=$target_bytes sources=${sources[*]}"  # v1: how the corpus and its 1% change are made
if [ ! -f "$work/corpus.manifest" ] || [ "$(cat "$work/corpus.params" 2>/dev/null)" != "$params" ]; then
    echo "building the corpus ($(numfmt --to=iec "$target_bytes") from ${sources[*]}) in $corpus (once; about a minute per GiB)…" >&2
    rm -rf "$corpus" "$corpus.partial" "$work/corpus.manifest" "$work/corpus.params" "$work/expected.json" "$work/appended.json"
    mkdir -p "$corpus.partial"
    py select "$target_bytes" "$work/corpus.list" "${sources[@]}"
    # From /, with relative paths: cp --parents gives the parent directories their sources' modes
    # by looking them up relative to the current directory.
    (cd / && xargs -0 -a "$work/corpus.list" cp -a --no-preserve=links --parents -t "$corpus.partial")
    mv "$corpus.partial" "$corpus"
    py fix-directories "$corpus"
    echo "hashing the corpus in its changed state (once)…" >&2
    py append "$corpus" "$work/appended.json" >/dev/null
    py expect "$corpus" "$work/expected.json"
    py revert "$corpus" "$work/appended.json"
    py manifest "$corpus" "$work/corpus.manifest" > "$work/corpus.json"
    echo "$params" > "$work/corpus.params"
fi
[ -f "$work/appended.json" ] && py revert "$corpus" "$work/appended.json" # an interrupted run's change
py check "$corpus" "$work/corpus.manifest"
read -r corpus_files corpus_bytes corpus_symlinks < <(python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); print(c["files"], c["bytes"], c["symlinks"])' "$work/corpus.json")

# --- scratch space, caches, cleanup ------------------------------------------------------------
repo="$work/repo"
disk_target="$work/restore-disk"
tmpfs_mount=""
tmpfs_note=""
cleanup() {
    [ -f "$work/appended.json" ] && py revert "$corpus" "$work/appended.json"
    rm -rf "$repo" "$disk_target" "$work/home" "${tmpfs_target:-$work/no-tmpfs}"
    [ -n "$tmpfs_mount" ] && umount "$tmpfs_mount" && rmdir "$tmpfs_mount"
    return 0
}
trap cleanup EXIT
need=$((corpus_bytes * 5 / 4 + 512 * 1048576))
if $as_root && mkdir -p "$work/tmpfs" && mount -t tmpfs -o size=$need,mode=0755 compare-backup "$work/tmpfs" 2>/dev/null; then
    tmpfs_mount="$work/tmpfs"; tmpfs_target="$tmpfs_mount/restore"
    tmpfs_note="a tmpfs mounted for the run at $tmpfs_mount"
elif [ "$(df --output=avail -B1 /dev/shm 2>/dev/null | tail -1)" -gt "$need" ] 2>/dev/null; then
    tmpfs_target="/dev/shm/infinity-compare-backup.$$"
    tmpfs_note="/dev/shm (not root: no tmpfs of its own)"
else
    tmpfs_target=""; tmpfs_note="none (not root and /dev/shm too small): tmpfs restores skipped"
fi
free=$(df --output=avail -B1 "$work" | tail -1)
if [ "$free" -lt $((corpus_bytes * 5 / 2)) ]; then
    echo "not enough space in $work: $(numfmt --to=iec "$free") free, about $(numfmt --to=iec $((corpus_bytes * 5 / 2))) needed (a repo and a restore)" >&2; exit 1
fi
caches_dropped=no
if $as_root && sync && echo 3 2>/dev/null > /proc/sys/vm/drop_caches; then caches_dropped=yes; fi
[ "$caches_dropped" = no ] && caches_note="no (not root, or not allowed: caches stay warm)" || caches_note=yes
drop_caches() { if [ "$caches_dropped" = yes ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi; }

rm -rf "$logs" "$work/corpus.list"; mkdir -p "$logs"
python3 - "$results" "$corpus_bytes" "$corpus_files" "$corpus_symlinks" "$caches_note" "$tmpfs_note" "$(nproc)" \
    "${version[infinity]:-}" "${version[restic]:-}" "${version[borg]:-}" <<'PY'
import json, sys
_, path, nbytes, files, links, caches, tmpfs, cores, infinity, restic, borg = sys.argv
versions = {k: v for k, v in (("infinity", infinity), ("restic", restic), ("borg", borg)) if v}
with open(path, "w") as out:
    out.write(json.dumps({"meta": {"corpus_bytes": int(nbytes), "corpus_files": int(files), "corpus_symlinks": int(links),
                                   "caches_dropped": caches, "tmpfs": tmpfs, "cores": int(cores), "versions": versions}}) + "\n")
PY

# --- measuring ---------------------------------------------------------------------------------
record() { echo "$1" >> "$results"; }
measure() { # tool step directory command… → appends {"seconds", "max_rss_kib"} to the results
    local tool=$1 step=$2 dir=$3 start end rc=0; shift 3
    drop_caches
    start=$(date +%s.%N)
    (cd "$dir" && /usr/bin/time -f '%M' -o "$work/time.txt" "$@") >> "$logs/$tool.log" 2>&1 || rc=$?
    sync
    end=$(date +%s.%N)
    if [ "$rc" -ne 0 ]; then
        echo "$tool failed in step $step (exit $rc): $*" >&2; tail -20 "$logs/$tool.log" >&2; exit 1
    fi
    local rss; rss=$(tail -1 "$work/time.txt")
    local seconds; seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    record "{\"run\":$run,\"tool\":\"$tool\",\"step\":\"$step\",\"seconds\":$seconds,\"max_rss_kib\":$rss}"
    printf '  %-9s %-17s %8.2f s  %6d MiB\n' "$tool" "$step" "$seconds" $((rss / 1024)) >&2
}
init_repo() {
    rm -rf "$repo" "$work/home"; mkdir -p "$work/home"
    case $1 in
        infinity) "$infinity" init --bare "$repo" --name bench ;;
        restic) restic init --repo "$repo" ;;
        borg) borg init --encryption=repokey "$repo" ;;
    esac >> "$logs/$1.log" 2>&1 || { echo "$1 could not create its repo" >&2; tail -20 "$logs/$1.log" >&2; exit 1; }
}
backup() { # tool step archive-name
    case $1 in
        infinity) measure infinity "$2" "$work" "$infinity" commit "$corpus" -m "$3" --store "$repo" --quiet ;;
        restic) measure restic "$2" "$work" restic backup --repo "$repo" --quiet "$corpus" ;;
        borg) measure borg "$2" "$work" borg create "$repo::$3" "$corpus" ;;
    esac
}
restore() { # tool step target
    rm -rf "$3"; mkdir -p "$3"
    case $1 in
        infinity) measure infinity "$2" "$3" "$infinity" checkout HEAD --to "$3" --store "$repo" --quiet ;;
        restic) measure restic "$2" "$3" restic restore latest --repo "$repo" --target "$3" --quiet ;;
        borg) measure borg "$2" "$3" borg extract "$repo::changed" ;;
    esac
    local verified
    verified=$(py verify "$work/expected.json" "$3$corpus" "$1, $2, run $run")
    record "{\"run\":$run,\"tool\":\"$1\",\"step\":\"verify_$2\",\"verified\":${verified}}"
    rm -rf "$3"
}
repo_bytes() { du -sb "$repo" | cut -f1; }

# restic and borg took about 80 s per GiB of corpus per run each on a 2-core machine, with
# verification of both restores.
ntools=$(wc -w <<<"$tools")
estimate=$(( (corpus_bytes / 1048576) * runs * ntools * 80 / 1024 / 60 + 1 ))
echo "corpus: $(numfmt --to=iec "$corpus_bytes") in $corpus_files files; $runs runs of: $tools; estimated ~$estimate min" >&2
echo "caches dropped: $caches_note; tmpfs: $tmpfs_note" >&2
started=$(date +%s)
for run in $(seq "$runs"); do
    echo "run $run/$runs…" >&2
    py check "$corpus" "$work/corpus.manifest"
    read -r -a order <<<"$tools"
    shift_by=$(( (run - 1) % ${#order[@]} ))
    for tool in "${order[@]:shift_by}" "${order[@]:0:shift_by}"; do
        init_repo "$tool"
        backup "$tool" first_backup first
        after_first=$(repo_bytes)
        backup "$tool" unchanged_backup unchanged
        py append "$corpus" "$work/appended.json" > /dev/null
        backup "$tool" changed_backup changed
        py revert "$corpus" "$work/appended.json"
        record "{\"run\":$run,\"tool\":\"$tool\",\"step\":\"repo\",\"bytes_after_first\":$after_first,\"bytes_after_all\":$(repo_bytes)}"
        [ -n "$tmpfs_target" ] && restore "$tool" restore_tmpfs "$tmpfs_target"
        restore "$tool" restore_disk "$disk_target"
        rm -rf "$repo" "$work/home"
    done
    elapsed=$(( $(date +%s) - started ))
    echo "run $run took $((elapsed / run / 60)) min $((elapsed / run % 60)) s; about $(( elapsed / run * (runs - run) / 60 )) min to go" >&2
done

py report "$results"
echo -e "\nraw results: $results; tool output: $logs/" >&2
