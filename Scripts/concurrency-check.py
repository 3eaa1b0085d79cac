#!/usr/bin/env python3
"""Several processes commit to one store and one branch at once while another runs gc and another
reads (log, checkout, check). Afterwards every commit reported done still resolves, checks out
byte-exact and `check --read-data` is clean; a commit that lost the race must say so (the
branch moved) and nothing else. Run through Scripts/concurrency-check.sh."""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from infinity_harness import (  # noqa: E402
    Infinity, SourceTree, commit_id, log_ids, manifest, new_random, verify_checkout)

CONFLICT = "moved while this draft was open"


class Check:
    def __init__(self, binary, seconds, committers, seed, keep):
        self.seed, self.rng = new_random(seed)
        self.seconds = seconds
        self.keep = keep
        self.work = tempfile.mkdtemp(prefix="infinity-concurrency-")
        self.scratch = os.path.join(self.work, "scratch")
        os.makedirs(self.scratch)
        self.infinity = Infinity(binary, os.path.join(self.work, "store"), "concurrent pass", self.work)
        self.sources = [SourceTree(os.path.join(self.work, "source-%d" % n), self.rng.__class__(self.rng.random()), 1 << 20)
                        for n in range(committers)]
        self.lock = threading.Lock()
        self.committed = []     # (commit id, source root, manifest of that source), in report order
        self.counts = {"commits": 0, "conflicts": 0, "gc runs": 0, "reads": 0}
        self.failures = []
        self.deleted_bytes = 0
        self.deadline = 0

    def fail(self, who, message):
        with self.lock:
            self.failures.append("%s: %s" % (who, message))
        print("FAILURE %s: %s" % (who, message), flush=True)

    def count(self, what):
        with self.lock:
            self.counts[what] += 1

    def committer(self, source):
        who = os.path.basename(source.root)
        while time.monotonic() < self.deadline:
            source.change()
            expected = manifest(source.root)
            status, output, error, _ = self.infinity.run("commit", source.root, "-m", who, "--json")
            if status == 0:
                committed = commit_id(output)
                if committed is None:
                    self.fail(who, "commit exited 0 without its id: %r" % output[:200])
                    continue
                with self.lock:
                    self.committed.append((committed, source.root, expected))
                self.count("commits")
            elif status == 1 and CONFLICT in error:
                self.count("conflicts")
            else:
                self.fail(who, "commit exited %d without a clear conflict: %s" % (status, error.strip()[:400]))

    def collector(self):
        """gc with a grace short enough that it really deletes while the others write, and still
        well above how long a commit takes (its one assumption); each run first leaves it a
        deleted branch of junk to find."""
        junk = os.path.join(self.work, "junk")
        serial = 0
        while time.monotonic() < self.deadline:
            serial += 1
            shutil.rmtree(junk, ignore_errors=True)
            os.makedirs(junk)
            with open(os.path.join(junk, "junk.bin"), "wb") as f:
                f.write(os.urandom(1 << 19))
            branch = "junk-%d" % serial
            for arguments in (["commit", junk, "--branch", branch, "--quiet"], ["branch", "-d", branch, "--quiet"],
                              ["gc", "--grace", "10s", "--reflog-expiry", "0s", "--json"]):
                status, output, error, _ = self.infinity.run(*arguments)
                if status != 0:
                    self.fail("gc", "`infinity %s` exited %d: %s" % (" ".join(arguments), status, error.strip()[:400]))
                elif arguments[0] == "gc":
                    with self.lock:
                        self.deleted_bytes += json.loads(output)["sweep"]["deletedBytes"]
            self.count("gc runs")

    def reader(self):
        rng = self.rng.__class__(self.rng.random())
        while time.monotonic() < self.deadline:
            ids, error = log_ids(self.infinity, "main")
            if ids is None:
                self.fail("reader", "log: " + error[:400])
            with self.lock:
                sample = rng.choice(self.committed) if self.committed else None
            if sample:
                problem = verify_checkout(self.infinity, sample[0], sample[1], sample[2], self.scratch)
                if problem:
                    self.fail("reader", "commit %s: %s" % (sample[0][:12], problem))
            status, output, error, _ = self.infinity.run("check", "--quiet")
            if status != 0:
                self.fail("reader", "check exited %d: %s %s" % (status, output.strip()[:400], error.strip()[:400]))
            self.count("reads")

    def run(self):
        print("concurrency check: seed %d, %d committers, %ds, work folder %s" % (
            self.seed, len(self.sources), self.seconds, self.work), flush=True)
        started = time.monotonic()
        status, _, error, _ = self.infinity.run("init", "--bare", self.infinity.store, "--name", "many", "--quiet")
        if status != 0:
            self.fail("init", error)
            return 1
        self.deadline = time.monotonic() + self.seconds
        threads = [threading.Thread(target=self.committer, args=(source,)) for source in self.sources]
        threads += [threading.Thread(target=self.collector), threading.Thread(target=self.reader)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.verify_all()
        print("commits reported: %d, conflicts (clear error): %d, gc runs: %d (deleted %d bytes), read rounds: %d, %.0f s" % (
            self.counts["commits"], self.counts["conflicts"], self.counts["gc runs"], self.deleted_bytes,
            self.counts["reads"], time.monotonic() - started))
        print("failures: %d (seed %d)" % (len(self.failures), self.seed))
        for failure in self.failures:
            print("  " + failure)
        if self.failures:
            print("work folder kept: " + self.work)
        elif not self.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        return 1 if self.failures else 0

    def verify_all(self):
        """Nothing reported is lost: on main's line, byte-exact, and the store reads whole."""
        ids, error = log_ids(self.infinity, "main")
        if ids is None:
            self.fail("final", "log: " + error[:400])
            ids = []
        for committed, root, expected in self.committed:
            if committed not in ids:
                self.fail("final", "reported commit %s is not on main" % committed[:12])
            problem = verify_checkout(self.infinity, committed, root, expected, self.scratch)
            if problem:
                self.fail("final", "commit %s: %s" % (committed[:12], problem))
        status, output, error, _ = self.infinity.run("check", "--read-data", "--quiet")
        if status != 0:
            self.fail("final", "check --read-data exited %d: %s %s" % (status, output.strip()[:600], error.strip()[:400]))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--seconds", type=int, default=40, help="how long the processes run at once (default 40)")
    parser.add_argument("--committers", type=int, default=3)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args()
    check = Check(os.path.abspath(options.binary), options.seconds, options.committers, options.seed, options.keep)
    sys.exit(check.run())


if __name__ == "__main__":
    main()
