#!/usr/bin/env python3
"""Damages a store at random, many times over, and checks what the `infinity` binary makes of it.

A store with a few commits is built once. Each round copies it, picks a file of one kind — a
data pack, a metadata pack, the chunk index, the refs database, the agents database, the config,
a key file — and flips, truncates, deletes or swaps bytes in it. Then, on the damaged copy:

- `check --read-data` must fail and name the damaged object, or pass only if every commit still
  restores byte for byte (damage that touched nothing read, such as a free SQLite page);
- no command may crash (a signal, or a Swift runtime trap);
- every commit is restored: each file written must be byte for byte what was committed, and the
  files that cannot be restored must be listed (exit status 3), never silently wrong;
- a damaged index is set aside and rebuilt from the packs, after which everything is restored.

Prints the outcomes per kind of file and damage, and exits non-zero on any failure.

    Scripts/corruption-harness.py [--rounds N] [--seed S] [--binary PATH]
"""
import argparse
import collections
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from infinity_harness import manifest  # noqa: E402

KINDS = ["data pack", "metadata pack", "index", "refs", "agents", "config", "key file"]
DAMAGES = ["flip", "truncate", "delete", "swap"]


def run(binary, args, env, check=False):
    result = subprocess.run([binary] + args, env=env, capture_output=True, text=True, errors="replace", timeout=600)
    if check and result.returncode != 0:
        sys.exit(f"setup failed: infinity {' '.join(args)}: {result.stderr}")
    return result


def crashed(result):
    return result.returncode < 0 or "Fatal error" in result.stderr or "Segmentation fault" in result.stderr


def build_store(binary, work, env, rng):
    data = os.path.join(work, "data")
    os.makedirs(os.path.join(data, "docs"))
    store = os.path.join(work, "pristine")
    run(binary, ["init", "--bare", store, "--pack-size", "1MiB", "-q"], env, check=True)
    commits = []
    for number in range(3):
        for index in range(8):
            size = rng.choice([200, 5_000, 70_000, 400_000])
            with open(os.path.join(data, f"file-{number}-{index}.bin"), "wb") as file:
                file.write(rng.randbytes(size))
        with open(os.path.join(data, "docs", f"notes-{number}.txt"), "w") as file:
            file.write(f"notes of commit {number}\n" * (number * 500 + 1))
        run(binary, ["commit", "--store", store, data, "-m", f"commit {number}", "-q"], env, check=True)
        run(binary, ["tag", "--store", store, f"c{number}", "-q"], env, check=True)
        commits.append((f"c{number}", manifest(data)))
    return store, data, commits


def files_of_kind(store, kind, pack_kinds):
    if kind in ("data pack", "metadata pack"):
        return [p for p, k in pack_kinds.items() if k == kind]
    paths = {
        "index": [os.path.join(store, "local", "index.sqlite")],
        "refs": [os.path.join(store, "refs.sqlite")],
        "agents": [os.path.join(store, "agents.sqlite")],
        "config": [os.path.join(store, "config")],
        "key file": [os.path.join(store, "keys", name) for name in os.listdir(os.path.join(store, "keys"))],
    }[kind]
    return [p for p in paths if os.path.exists(p)]


def damage(path, how, rng):
    size = os.path.getsize(path)
    if how == "delete" or size < 2:
        os.remove(path)
        return "deleted"
    with open(path, "r+b") as file:
        data = bytearray(file.read())
        if how == "flip":
            offset = rng.randrange(size)
            data[offset] ^= 1 << rng.randrange(8)
            detail = f"bit flipped at {offset}"
        elif how == "truncate":
            keep = rng.randrange(size)
            data = data[:keep]
            detail = f"truncated to {keep} of {size} bytes"
        else:
            length = rng.randint(1, max(1, min(64, size // 2)))
            a = rng.randrange(0, size - length + 1)
            b = rng.randrange(0, size - length + 1)
            data[a:a + length], data[b:b + length] = data[b:b + length], data[a:a + length]
            detail = f"{length} bytes at {a} and {b} swapped"
        file.seek(0)
        file.truncate()
        file.write(data)
    return detail


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", ".build", "debug", "infinity"))
    options = parser.parse_args()
    rng = random.Random(options.seed)
    binary = os.path.abspath(options.binary)
    print(f"corruption harness: {options.rounds} rounds, seed {options.seed}, binary {binary}", flush=True)

    work = tempfile.mkdtemp(prefix="infinity-corruption-")
    env = dict(os.environ, INFINITY_PASSPHRASE="corruption", INFINITY_HOME=os.path.join(work, "home"))
    env.pop("INFINITY_STORE", None)
    store, data, commits = build_store(binary, work, env, rng)
    # Which packs hold file data and which metadata: from a read of the pristine store.
    pack_kinds = {}
    packs = os.path.join(store, "packs")
    for directory, _, names in os.walk(packs):
        for name in names:
            pack_kinds[os.path.join(directory, name)] = None
    # Metadata packs are small here (trees and commits); data packs hold the files.
    for path in pack_kinds:
        pack_kinds[path] = "data pack" if os.path.getsize(path) > 100_000 else "metadata pack"

    outcomes = collections.Counter()
    failures = []
    files_restored = files_lost = 0
    for round_number in range(1, options.rounds + 1):
        copy = os.path.join(work, "copy")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(os.path.join(work, "home"), ignore_errors=True)
        shutil.copytree(store, copy, symlinks=True)
        kind = rng.choice(KINDS)
        how = rng.choice(DAMAGES)
        candidates = files_of_kind(store, kind, pack_kinds)
        if not candidates:
            continue
        original = rng.choice(candidates)
        target = os.path.join(copy, os.path.relpath(original, store))
        name = os.path.relpath(target, copy)
        detail = damage(target, how, rng)
        label = f"round {round_number}: {kind} {name}: {detail}"

        check = run(binary, ["check", "--store", copy, "--read-data"], env)
        if crashed(check):
            failures.append(f"{label}: check crashed ({check.returncode}): {check.stderr[-400:]}")
            continue
        said = check.stdout + check.stderr
        base = os.path.basename(name)
        names_it = (base in said or name in said or (kind == "index" and "rebuilt from the packs" in said)
                    # The only key file deleted: nothing is left to name but the folder.
                    or (kind == "key file" and how == "delete" and "no key files (keys/ is empty)" in said))

        # Restore every commit: what is written must be exact, what is not must be listed.
        exact = True
        lost_here = 0
        for tag, expected in commits:
            out = os.path.join(work, "out")
            shutil.rmtree(out, ignore_errors=True)
            restore = run(binary, ["checkout", "--store", copy, tag, "--to", out, "-q"], env)
            if crashed(restore):
                failures.append(f"{label}: checkout {tag} crashed ({restore.returncode}): {restore.stderr[-400:]}")
                exact = False
                break
            restored_root = os.path.join(out, os.path.relpath(data, "/"))
            got = manifest(restored_root) if os.path.isdir(restored_root) else {}
            for path, digest in got.items():
                if expected.get(path) != digest:
                    failures.append(f"{label}: checkout {tag} wrote {path} with the wrong content")
                    exact = False
            missing = [p for p in expected if p not in got]
            if restore.returncode == 0 and missing:
                failures.append(f"{label}: checkout {tag} succeeded without {len(missing)} files")
                exact = False
            if restore.returncode == 3:
                unlisted = [p for p in missing if p not in restore.stderr]
                if unlisted:
                    failures.append(f"{label}: checkout {tag} did not name lost files {unlisted[:3]}")
                    exact = False
            files_restored += len(got)
            files_lost += len(missing)
            lost_here += len(missing) if restore.returncode != 0 else 0
        if not exact:
            continue

        if check.returncode == 0:
            if lost_here:
                failures.append(f"{label}: check passed but {lost_here} files could not be restored")
                continue
            outcome = "healed (index rebuilt)" if kind == "index" and "rebuilt from the packs" in said else "harmless (nothing read was touched)"
        elif names_it:
            outcome = "detected, object named"
        else:
            failures.append(f"{label}: check failed without naming {name}: {said[-300:]}")
            continue
        outcomes[(kind, how, outcome)] += 1
        # The store must stay usable for what is still there: the next command succeeds or says why.
        after = run(binary, ["log", "--store", copy, "-q"], env)
        if crashed(after):
            failures.append(f"{label}: log crashed afterwards")

    shutil.rmtree(work, ignore_errors=True)
    print(f"{'file':14} {'damage':9} outcome")
    for (kind, how, outcome), count in sorted(outcomes.items()):
        print(f"{kind:14} {how:9} {outcome}: {count}")
    injected = sum(outcomes.values()) + len(failures)
    detected = sum(c for (_, _, o), c in outcomes.items() if o.startswith("detected") or o.startswith("healed"))
    harmless = sum(c for (_, _, o), c in outcomes.items() if o.startswith("harmless"))
    print(f"{injected} corruptions injected: {detected} detected or healed, {harmless} harmless (every commit restored exactly), "
          f"{len(failures)} failures; restores wrote {files_restored} files exactly and listed {files_lost} lost ones")
    for failure in failures:
        print(f"FAILURE {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
