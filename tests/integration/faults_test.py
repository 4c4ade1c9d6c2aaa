"""Fault tolerance of the real greylightd: kill -9 under load, SIGTERM under load, a full
and a read-only dbdir (issues 6 and 7). Loopback only; every loop bounded in count and time.
Lines starting with "figure:" are the figures quoted in docs/reliability.md."""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from greylightd_harness import T, Daemon, request

BINARY = os.environ.get("GREYLIGHTD", "build/src/greylightd")
GREY = "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"


def figure(text):
    print(f"figure: {text}", flush=True)


def stored_triplets(dbdir):
    """{key: value} of the triplets, read with lmdb-utils' mdb_dump: the passed ones are in
    the database "triplets", the pending ones in "pending_triplets", a key in one of them."""
    records = {}
    for database in ("triplets", "pending_triplets"):
        out = subprocess.run(["mdb_dump", "-n", "-p", "-s", database, os.path.join(dbdir, "greylight.lmdb")],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise AssertionError(f"mdb_dump -s {database} failed: {out.stderr}")
        lines = out.stdout.split("HEADER=END\n", 1)[1].splitlines()
        for i in range(0, len(lines) - 1, 2):
            if lines[i] == "DATA=END":
                break
            key = lines[i].strip()
            if key in records:
                raise AssertionError(f"{key} is in two databases")
            records[key] = lines[i + 1].strip()
    return records


class LoadThread(threading.Thread):
    """Sends new triplets on one connection, remembering when each was acknowledged; with
    `pass_after`, also the retry (after the delay) of the triplet sent `pass_after` requests
    earlier, which makes it pass."""

    def __init__(self, daemon, index, limit, deadline, pass_after=0):
        super().__init__()
        self.daemon_ = daemon
        self.index = index
        self.limit = limit
        self.deadline = deadline
        self.pass_after = pass_after
        self.acked = []   # (monotonic time of the reply, recipient): new, pending triplets
        self.passed = []  # (monotonic time of the reply, recipient): their first pass

    def run(self):
        try:
            c = self.daemon_.client()
            for i in range(self.limit):
                if time.monotonic() > self.deadline:
                    break
                rcpt = f"t{self.index}-{i}@example.org"
                if c.ask(request(recipient=rcpt, policy_test_time=T)) is None:
                    break
                self.acked.append((time.monotonic(), rcpt))
                if self.pass_after and i >= self.pass_after:
                    earlier = f"t{self.index}-{i - self.pass_after}@example.org"
                    reply = c.ask(request(recipient=earlier, policy_test_time=T + 300))
                    if reply is None:
                        break
                    if not reply.startswith("DEFER"):  # PREPEND, or DUNNO (one header per instance)
                        self.passed.append((time.monotonic(), earlier))
        except OSError:
            pass


class FaultsTest(unittest.TestCase):
    def daemon(self, *args, **kwargs):
        d = Daemon(BINARY, args, **kwargs)
        self.addCleanup(d.cleanup)
        return d

    def test_kill_9_under_load_loses_nothing_acknowledged_before_the_window(self):
        # Two windows (docs/reliability.md): passed triplets (and auto-whitelist and trap
        # records) are committed every --commit-interval, pending triplets every
        # --pending-commit-interval.
        window_ms, pending_window_ms = 50, 1000
        d = self.daemon(f"--commit-interval={window_ms}",
                        f"--pending-commit-interval={pending_window_ms}").start()
        threads = [LoadThread(d, i, 20000, time.monotonic() + 10, pass_after=50)
                   for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(3)
        killed_at = time.monotonic()
        d.process.kill()
        d.process.wait(10)
        for t in threads:
            t.join(20)
        stored = stored_triplets(d.dbdir)
        prefix = "192.0.2.0/alice@example.net/"
        stored = {k[len(prefix):]: v for k, v in stored.items() if k.startswith(prefix)}

        def passed(value):
            first, last = (int(x) for x in value.split(",")[:2])
            return last - first >= 300

        # Acknowledged more than one window (plus a commit's duration) before the kill.
        results = {}
        for kind, window, acks, kept in (
                ("pending", pending_window_ms, [a for t in threads for a in t.acked],
                 lambda r: r in stored),
                ("passed", window_ms, [a for t in threads for a in t.passed],
                 lambda r: r in stored and passed(stored[r]))):
            margin = window / 1000 + 0.25
            must_survive = {rcpt for when, rcpt in acks if when < killed_at - margin}
            lost = {rcpt for rcpt in must_survive if not kept(rcpt)}
            younger = {rcpt for when, rcpt in acks if when >= killed_at - margin}
            recent_lost = {rcpt for rcpt in younger if not kept(rcpt)}
            figure(f"kill -9 under load (8 connections), {kind} triplets (window "
                   f"{window} ms): {len(acks)} acknowledged, {len(must_survive)} older than "
                   f"{margin * 1000:.0f} ms at the kill, {len(lost)} of those lost; "
                   f"{len(recent_lost)} of {len(younger)} younger ones not yet committed")
            results[kind] = (must_survive, lost)
        for kind, (must_survive, lost) in results.items():
            self.assertGreater(len(must_survive), 100, kind)
            self.assertEqual(lost, set(), kind)
        d.start()  # the database opens and answers
        # A triplet that was pending before the kill passes on its retry after it.
        reply = d.client().ask(request(recipient=sorted(results["pending"][0])[0],
                                       policy_test_time=T + 300))
        self.assertTrue(reply.startswith(("PREPEND", "DUNNO")), reply)

    def test_sigterm_under_load_answers_every_received_request(self):
        d = self.daemon().start()
        clients = [d.client() for _ in range(16)]
        batch = 200
        for i, c in enumerate(clients):
            c.send("".join(request(recipient=f"s{i}-{j}@example.org", policy_test_time=T) for j in range(batch)))
        for c in clients:  # each connection's requests have reached the daemon
            self.assertEqual(c.read_reply(), GREY)
        d.process.send_signal(signal.SIGTERM)
        replies = []
        for c in clients:
            n = 0
            while c.read_reply() is not None:
                n += 1
            replies.append(n + 1)
        self.assertEqual(d.process.wait(15), 0)
        figure(f"SIGTERM with {len(clients)}x{batch} pipelined requests in flight: "
               f"answered {sum(replies)} of {len(clients) * batch}")
        self.assertEqual(replies, [batch] * len(clients))

    def _mount_tmpfs(self, size):
        path = tempfile.mkdtemp(prefix="greylight-fs-")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                                capture_output=True, text=True)
        if result.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {result.stderr.strip()}")

        def unmount():
            subprocess.run(["umount", "-l", path], capture_output=True)
            os.rmdir(path)
        self.addCleanup(unmount)
        return path

    def test_full_disk_is_survived_without_corruption(self):
        mount = self._mount_tmpfs("512k")
        dbdir = os.path.join(mount, "db")
        d = self.daemon("--commit-interval=20", dbdir=dbdir).start()
        c = d.client()
        n = 6000
        for i in range(n):  # far more than 512 KiB of records
            self.assertEqual(c.ask(request(recipient=f"full{i}@example.org", policy_test_time=T)), GREY)
        deadline = time.monotonic() + 10
        while "commit failed" not in d.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("commit failed", d.log_text())
        # Still answering, and from memory it still knows the uncommitted triplets.
        self.assertTrue(c.ask(request(recipient="full1@example.org", policy_test_time=T + 300)).startswith("PREPEND"))
        subprocess.run(["mount", "-o", "remount,size=64m", mount], check=True)
        time.sleep(0.5)
        self.assertEqual(d.stop(), 0)
        keys = stored_triplets(dbdir)
        figure(f"disk full: {n} triplets sent into a 512 KiB dbdir, daemon kept answering; "
               f"after space returned {len(keys)} stored, database opens")
        self.assertEqual(len([k for k in keys if "/full" in k]), n)
        d.start()
        self.assertEqual(d.client().ask(request(recipient=f"full{n-1}@example.org", policy_test_time=T + 300))[:7],
                         "PREPEND")

    # A filesystem cannot be remounted read-only under a daemon holding its files open for
    # writing (EBUSY), so the read-only case is the one an admin meets: at start-up.
    def test_unwritable_dbdir_at_start_is_a_clear_error(self):
        mount = self._mount_tmpfs("1m")
        subprocess.run(["mount", "-o", "remount,ro", mount], check=True)
        d = self.daemon(dbdir=os.path.join(mount, "db")).start(wait=False)
        self.assertNotEqual(d.process.wait(10), 0)
        self.assertIn("ERROR: can't create", d.log_text())
        figure("read-only dbdir at start: exit status {}, '{}'".format(
            d.process.returncode, d.log_text().strip().splitlines()[-1]))


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2, warnings="ignore")
