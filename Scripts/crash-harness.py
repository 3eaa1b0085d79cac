#!/usr/bin/env python3
"""Kills the real `infinity` binary with SIGKILL at random moments of commit, gc, share, accept
and passphrase, and after every kill checks that nothing reported as done was lost. Run through
Scripts/crash-harness.sh, which builds the binary; see "Crash safety" in Docs/ARCHITECTURE.md."""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from infinity_harness import (  # noqa: E402
    Infinity, SourceTree, commit_id, log_ids, manifest, new_random, verify_checkout)

OPERATIONS = ["commit", "gc", "share", "accept", "passphrase"]


class Harness:
    """One world: alice's store, bob's, and the source tree alice commits, driven round by round."""

    def __init__(self, binary, seed, data_bytes, name):
        self.seed, self.rng = new_random(seed)
        self.name = name
        self.work = tempfile.mkdtemp(prefix="infinity-crash-")
        self.scratch = os.path.join(self.work, "scratch")
        os.makedirs(self.scratch)
        self.alice = Infinity(binary, os.path.join(self.work, "alice"), "alice pass 0", self.work)
        self.bob = Infinity(binary, os.path.join(self.work, "bob"), "alice pass 0", self.work)
        self.source = SourceTree(os.path.join(self.work, "source"), self.rng, data_bytes)
        self.junk = os.path.join(self.work, "junk")
        # Every commit known to hold the source tree as it was: id → manifest. A commit gets in
        # when `commit --json` printed its id (whether or not the process then lived to exit 0),
        # or when a killed commit's id turns up as the new head (unreported, but then it must be
        # just as intact).
        self.commits = {}
        self.reported = []          # ids printed by commit, oldest first
        self.accepted = set()       # commits bob's alice/main was at after an accept that exited 0
        self.passphrase_serial = 0
        self.estimate = {}          # seconds a normal run of each operation takes
        self.kills = {op: 0 for op in OPERATIONS}
        self.finished_first = {op: 0 for op in OPERATIONS}
        self.survived = {op: 0 for op in OPERATIONS}   # kills after which every check passed
        self.failures = []
        self.round = 0

    # MARK: Running

    def fail(self, message):
        text = "%s round %d: %s" % (self.name, self.round, message)
        self.failures.append(text)
        print("FAILURE " + text, flush=True)

    def must(self, infinity, *arguments, what=None, extra_env=None):
        status, output, error, seconds = infinity.run(*arguments, extra_env=extra_env)
        if status != 0:
            self.fail("%s: `infinity %s` exited %d: %s" % (
                what or "next command", " ".join(arguments), status, error.strip()[:400]))
        return status == 0, output, seconds

    def arguments(self, operation):
        """The command line of an operation and the environment it needs beyond the store's."""
        if operation == "commit":
            return self.alice, ["commit", self.source.root, "-m", "round %d" % self.round, "--json"], None
        if operation == "gc":
            return self.alice, ["gc", "--grace", "0", "--reflog-expiry", "0s", "--quiet"], None
        if operation == "share":
            return self.alice, ["share", "main", "--with", "bob", "--quiet"], None
        if operation == "accept":
            return self.bob, ["accept", "--quiet"], None
        self.passphrase_serial += 1
        new = "alice pass %d" % self.passphrase_serial
        return self.alice, ["passphrase", "--quiet"], {"INFINITY_NEW_PASSPHRASE": new}

    def prepare(self, operation):
        """Gives the operation real work: changed files to commit, garbage to collect, a share
        waiting to be accepted."""
        if operation == "commit":
            self.source.change()
        elif operation == "gc":
            # A branch of incompressible junk, then deleted: gc must find it unreachable and delete
            # its packs (--reflog-expiry 0s lets the branch's reflog go too).
            shutil.rmtree(self.junk, ignore_errors=True)
            os.makedirs(self.junk)
            with open(os.path.join(self.junk, "junk.bin"), "wb") as f:
                f.write(self.rng.randbytes(self.rng.randrange(1 << 19, 3 << 20)))
            branch = "junk-%d" % self.round
            self.must(self.alice, "commit", self.junk, "--branch", branch, "--quiet", what="preparing gc")
            self.must(self.alice, "branch", "-d", branch, "--quiet", what="preparing gc")
        elif operation == "accept":
            if not self.pending_shares():
                self.must(self.alice, "share", "main", "--with", "bob", "--quiet", what="preparing accept")

    def pending_shares(self):
        status, output, _, _ = self.bob.run("inbox", "--json")
        try:
            return [entry for entry in json.loads(output) if entry.get("commit")] if status == 0 else []
        except ValueError:
            return []

    def calibrate(self):
        """One normal run of each operation: how long it takes is where kills are spread."""
        for operation in OPERATIONS:
            self.prepare(operation)
            infinity, arguments, env = self.arguments(operation)
            ok, output, seconds = self.must(infinity, *arguments, what="calibrating", extra_env=env)
            self.estimate[operation] = seconds
            self.after_success(operation, output, env)
        print(self.name + ", normal run (s): " + ", ".join("%s %.2f" % (op, self.estimate[op]) for op in OPERATIONS), flush=True)

    def after_success(self, operation, output, env):
        """Records what an operation that exited 0 reported."""
        if operation == "commit":
            committed = commit_id(output)
            if committed is None:
                self.fail("commit exited 0 without printing its id: %r" % output[:200])
            else:
                self.record_commit(committed)
        elif operation == "passphrase":
            self.alice.passphrase = env["INFINITY_NEW_PASSPHRASE"]
            # Once a change succeeded only its passphrase may open the store, whatever key files
            # interrupted changes had left.
            keys = [name for name in os.listdir(os.path.join(self.alice.store, "keys")) if "~" not in name]
            if len(keys) != 1:
                self.fail("after a passphrase change that exited 0 the store has %d key files" % len(keys))
        elif operation == "accept":
            ids, _ = log_ids(self.bob, "alice/main")
            if ids:
                self.accepted.add(ids[0])

    def record_commit(self, committed):
        if committed not in self.commits:
            self.commits[committed] = manifest(self.source.root)
        if committed not in self.reported:
            self.reported.append(committed)

    # MARK: One round

    def run_round(self, operation):
        self.round += 1
        failures_before = len(self.failures)
        self.prepare(operation)
        infinity, arguments, env = self.arguments(operation)
        delay = self.rng.uniform(0, 1.2 * self.estimate[operation])
        process = infinity.start(arguments, env)
        time.sleep(max(0, delay - (time.monotonic() - process.started)))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        status, output, error, seconds = Infinity.finish(process)
        killed = status == -signal.SIGKILL
        if killed:
            self.kills[operation] += 1
        else:
            self.finished_first[operation] += 1
            if status != 0:
                self.fail("%s (not killed) exited %d: %s" % (operation, status, error.strip()[:400]))
            else:
                self.learn(operation, seconds)
                self.after_success(operation, output, env)
        if killed and operation == "commit" and commit_id(output):
            # Killed after printing its id: it was reported, so it must be there.
            self.record_commit(commit_id(output))
        if killed and operation == "passphrase":
            self.find_passphrase(env["INFINITY_NEW_PASSPHRASE"])
        self.verify(operation, killed)
        if killed:
            self.next_command_succeeds(operation)
            if len(self.failures) == failures_before:
                self.survived[operation] += 1

    def learn(self, operation, seconds):
        """Follows how long a normal run takes as the store grows."""
        self.estimate[operation] = 0.7 * self.estimate[operation] + 0.3 * seconds

    def find_passphrase(self, new):
        """After a killed change either passphrase may open the store, never neither."""
        for candidate in (new, self.alice.passphrase):
            status, _, error, _ = self.alice.run("log", "--limit", "1", "--quiet",
                                                 extra_env={"INFINITY_PASSPHRASE": candidate})
            if status == 0:
                self.alice.passphrase = candidate
                return
        self.fail("after a killed passphrase change neither the old nor the new passphrase opens the store: %s"
                  % error.strip()[:300])

    def next_command_succeeds(self, operation):
        if operation == "accept":
            self.discard_interrupted_shares()
        infinity, arguments, env = self.arguments(operation)
        ok, output, seconds = self.must(infinity, *arguments, what="the run after the kill", extra_env=env)
        if ok:
            self.learn(operation, seconds)
            self.after_success(operation, output, env)

    def discard_interrupted_shares(self):
        status, output, _, _ = self.bob.run("inbox", "--json")
        for entry in json.loads(output) if status == 0 else []:
            if not entry.get("commit"):
                self.must(self.bob, "accept", entry["envelope"][len("inbox/"):], "--discard", "--quiet",
                          what="discarding an interrupted share")

    # MARK: Checks

    def verify(self, operation, killed):
        """The store opens, checks clean, and every reported commit is there and byte-exact."""
        ids, error = log_ids(self.alice)
        if ids is None:
            self.fail("after %s%s the store does not open: %s" % ("a killed " if killed else "", operation, error[:400]))
            return
        head = ids[0] if ids else None
        if head is not None and head not in self.commits:
            if operation == "commit" and killed:
                self.commits[head] = manifest(self.source.root)  # landed, though unreported
            else:
                self.fail("HEAD is %s, which no commit made (after %s)" % (head, operation))
        lost = [c for c in self.reported if c not in ids]
        if lost:
            self.fail("reported commits lost after %s: %s" % (operation, ", ".join(c[:12] for c in lost)))
        sample = {head} if head in self.commits else set()
        if len(self.reported) > 1 and self.round % 4 == 0:
            sample.add(self.rng.choice(self.reported[:-1]))
        # The checks read only: run them side by side.
        checks = [lambda: self.must(self.alice, "check", "--quiet", what="check after %s" % operation)]
        checks += [lambda committed=committed: self.compare(self.alice, committed, "alice") for committed in sample]
        if operation in ("share", "accept"):
            checks += [lambda: self.must(self.bob, "check", "--quiet", what="bob's check after %s" % operation),
                       lambda: self.check_bob_line(operation)]
        with ThreadPoolExecutor(max_workers=len(checks)) as pool:
            for future in [pool.submit(check) for check in checks]:
                future.result()

    def check_bob_line(self, operation):
        bob_ids, _ = log_ids(self.bob, "alice/main")
        if not bob_ids:
            return
        lost = sorted(c for c in self.accepted if c not in bob_ids)
        if lost:
            self.fail("accepted commits lost in bob's store after %s: %s" % (operation, ", ".join(c[:12] for c in lost)))
        if bob_ids[0] in self.commits:
            self.compare(self.bob, bob_ids[0], "bob")
        else:
            self.fail("bob's alice/main is %s, which alice never committed" % bob_ids[0])

    def compare(self, infinity, committed, who):
        problem = verify_checkout(infinity, committed, self.source.root, self.commits[committed], self.scratch)
        if problem:
            self.fail("%s's commit %s is not byte-exact: %s" % (who, committed[:12], problem))

    def final_check(self):
        """Every reported commit byte-exact, and both stores read whole."""
        for committed in self.reported:
            self.compare(self.alice, committed, "alice")
        for committed in sorted(self.accepted):
            self.compare(self.bob, committed, "bob")
        self.must(self.alice, "check", "--read-data", "--quiet", what="final check --read-data of alice")
        self.must(self.bob, "check", "--read-data", "--quiet", what="final check --read-data of bob")

    # MARK: The loop

    def run(self, enough):
        """Rounds until `enough()` says the kills wanted are done, then the final check."""
        self.must(self.alice, "init", "--bare", self.alice.store, "--name", "alice", "--quiet", what="init")
        self.must(self.alice, "agent", "create", "bob", "--at", self.bob.store, "--quiet", what="agent create")
        self.calibrate()
        order = []
        while not enough():
            if not order:
                order = list(OPERATIONS)
                self.rng.shuffle(order)
            self.run_round(order.pop())
        self.final_check()

    def leftovers(self):
        """Temporary files that killed writes left in the stores."""
        return [os.path.join(folder, name) for store in (self.alice.store, self.bob.store)
                for folder, _, names in os.walk(store) for name in names if name.startswith(".tmp~")]


def run_worlds(binary, kills, seed, data_bytes, worlds, keep):
    """Runs `worlds` independent worlds side by side (world n with seed + n) until their kills add
    up to `kills`; prints the report and returns the exit status."""
    seed, _ = new_random(seed)
    harnesses = [Harness(binary, seed + n, data_bytes, "world %d" % n) for n in range(worlds)]
    print("crash harness: seed %d, %d kills, %d world(s), work folders %s" % (
        seed, kills, worlds, " ".join(h.work for h in harnesses)), flush=True)
    started = time.monotonic()

    def total_kills():
        return sum(sum(h.kills.values()) for h in harnesses)

    threads = [threading.Thread(target=h.run, args=(lambda: total_kills() >= kills,)) for h in harnesses]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        for _ in range(60):
            if any(thread.is_alive() for thread in threads):
                time.sleep(1)
        print("  %d kills, %d failures, %.0f s" % (
            total_kills(), sum(len(h.failures) for h in harnesses), time.monotonic() - started), flush=True)
    for thread in threads:
        thread.join()

    def total(attribute, op):
        return sum(getattr(h, attribute)[op] for h in harnesses)

    print("\n%-11s %6s %9s %9s %16s" % ("operation", "kills", "survived", "failures", "finished first"))
    for op in OPERATIONS + ["total"]:
        ops = OPERATIONS if op == "total" else [op]
        kills_done, survived, finished = (sum(total(attribute, o) for o in ops)
                                          for attribute in ("kills", "survived", "finished_first"))
        print("%-11s %6d %9d %9d %16d" % (op, kills_done, survived, kills_done - survived, finished))
    leftovers = [path for h in harnesses for path in h.leftovers()]
    failures = [failure for h in harnesses for failure in h.failures]
    print("commits reported: %d, accepted by bob: %d, rounds: %d, %.0f s, seed %d" % (
        sum(len(h.reported) for h in harnesses), sum(len(h.accepted) for h in harnesses),
        sum(h.round for h in harnesses), time.monotonic() - started, seed))
    print("temporary files left by killed writes: %d (%d bytes)" % (
        len(leftovers), sum(os.path.getsize(path) for path in leftovers)))
    print("failures: %d" % len(failures))
    for failure in failures:
        print("  " + failure)
    for h in harnesses:
        if failures:
            print("work folder kept: " + h.work)
        elif not keep:
            shutil.rmtree(h.work, ignore_errors=True)
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kills", nargs="?", type=int, default=300, help="SIGKILLs to deliver (default 300)")
    parser.add_argument("--seed", type=int, help="replay a run: the same data, operations and kill points")
    parser.add_argument("--binary", required=True)
    parser.add_argument("--data-mb", type=float, default=4, help="size of the committed tree (default 4 MB)")
    parser.add_argument("--worlds", type=int, default=1,
                        help="independent pairs of stores run side by side, their kills counted together (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the work folders after a clean run")
    options = parser.parse_args()
    sys.exit(run_worlds(os.path.abspath(options.binary), options.kills, options.seed, int(options.data_mb * (1 << 20)),
                        options.worlds, options.keep))


if __name__ == "__main__":
    main()
