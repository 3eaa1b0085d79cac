"""What the crash harness and the concurrency check share: running the real `infinity` binary,
file trees that change between commits, manifests of SHA-256 per file, and checking a committed
state out to compare it byte for byte with the manifest it was committed from."""

import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import time


class Infinity:
    """Runs the binary against one store, with its passphrase in INFINITY_PASSPHRASE."""

    def __init__(self, binary, store, passphrase, home):
        self.binary = binary
        self.store = store
        self.passphrase = passphrase
        self.home = home

    def environment(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFINITY_")}
        env.update(INFINITY_STORE=self.store, INFINITY_PASSPHRASE=self.passphrase, INFINITY_HOME=self.home)
        env.update(extra or {})
        return env

    def start(self, arguments, extra_env=None, output_prefix=None):
        """Starts a command with its output going to files (read back by `finish`)."""
        prefix = output_prefix or tempfile.mktemp(prefix="infinity-", dir=self.home)
        out = open(prefix + ".out", "wb")
        err = open(prefix + ".err", "wb")
        process = subprocess.Popen(
            [self.binary] + arguments, env=self.environment(extra_env), stdin=subprocess.DEVNULL,
            stdout=out, stderr=err)
        out.close()
        err.close()
        process.output_prefix = prefix
        process.started = time.monotonic()
        return process

    @staticmethod
    def finish(process):
        """Waits for a started command; returns (status, stdout, stderr, seconds)."""
        status = process.wait()
        seconds = time.monotonic() - process.started
        with open(process.output_prefix + ".out", "rb") as f:
            output = f.read().decode("utf-8", "replace")
        with open(process.output_prefix + ".err", "rb") as f:
            error = f.read().decode("utf-8", "replace")
        os.unlink(process.output_prefix + ".out")
        os.unlink(process.output_prefix + ".err")
        return status, output, error, seconds

    def run(self, *arguments, extra_env=None, timeout=600):
        process = self.start(list(arguments), extra_env)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
        return self.finish(process)


def commit_id(output):
    """The full commit id in `commit --json` output, or None when it was not printed whole."""
    try:
        return json.loads(output)["commit"] or None
    except (ValueError, KeyError, TypeError):
        return None


def log_ids(infinity, revision="HEAD"):
    """Commit ids of the first-parent line from `revision`, newest first; None when log fails."""
    status, output, error, _ = infinity.run("log", revision, "--json")
    if status != 0:
        return None, error.strip()
    try:
        entries = json.loads(output)
    except ValueError:
        return None, "log --json printed no JSON: " + output[:200]
    if isinstance(entries, dict):
        entries = entries.get("commits", [])
    return [entry["id"] for entry in entries], ""


class SourceTree:
    """A directory of files a few MB in all, incompressible, changed a little between commits."""

    def __init__(self, root, rng, target_bytes):
        self.root = root
        self.rng = rng
        self.target = target_bytes
        os.makedirs(root, exist_ok=True)
        self.serial = 0
        while self.total() < target_bytes:
            self.add_file()

    def files(self):
        found = []
        for folder, _, names in os.walk(self.root):
            found += [os.path.join(folder, name) for name in names]
        return sorted(found)

    def total(self):
        return sum(os.path.getsize(path) for path in self.files())

    def add_file(self):
        self.serial += 1
        folder = os.path.join(self.root, "d%d" % self.rng.randrange(4))
        os.makedirs(folder, exist_ok=True)
        size = self.rng.randrange(1 << 10, 1 << 20)
        with open(os.path.join(folder, "f%05d.bin" % self.serial), "wb") as f:
            f.write(self.rng.randbytes(size))

    def change(self):
        """One to three edits: a file rewritten in part, grown, added, removed, or a note edited."""
        for _ in range(self.rng.randint(1, 3)):
            files = self.files()
            kind = self.rng.choice(["patch", "append", "add", "remove", "note"])
            if kind == "add" or not files or (kind == "remove" and self.total() < self.target // 2):
                self.add_file()
            elif kind == "remove" and len(files) > 2:
                os.unlink(self.rng.choice(files))
            elif kind == "note":
                with open(os.path.join(self.root, "notes.txt"), "a") as f:
                    f.write("note %d\n" % self.rng.randrange(1 << 30))
            else:
                path = self.rng.choice(files)
                size = os.path.getsize(path)
                with open(path, "r+b") as f:
                    f.seek(size if kind == "append" else self.rng.randrange(size + 1))
                    f.write(self.rng.randbytes(self.rng.randrange(1, 200_000)))
            if self.total() > 2 * self.target:
                os.unlink(self.rng.choice(self.files()))


def manifest(root):
    """Relative path → SHA-256 of every file below `root`."""
    result = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                result[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return result


def differences(expected, actual):
    """What differs between two manifests, or an empty string."""
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(path for path in set(expected) & set(actual) if expected[path] != actual[path])
    parts = []
    for label, paths in (("missing", missing), ("unexpected", extra), ("different", changed)):
        if paths:
            parts.append("%s %d: %s" % (label, len(paths), ", ".join(paths[:5])))
    return "; ".join(parts)


def verify_checkout(infinity, revision, source_root, expected, scratch):
    """Checks `source_root` out of `revision` (a bare store records it under its absolute path)
    and compares it with `expected`. Returns an empty string when byte-exact, else what is wrong."""
    target = tempfile.mkdtemp(prefix="checkout-", dir=scratch)
    try:
        snapshot_path = source_root.lstrip("/")
        status, _, error, _ = infinity.run("checkout", revision, snapshot_path, "--to", target)
        if status != 0:
            return "checkout %s failed (%d): %s" % (revision, status, error.strip()[:300])
        restored = os.path.join(target, snapshot_path)
        return differences(expected, manifest(restored) if os.path.isdir(restored) else {})
    finally:
        shutil.rmtree(target, ignore_errors=True)


def new_random(seed):
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 32)
    return seed, random.Random(seed)
