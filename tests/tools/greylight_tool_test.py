#!/usr/bin/env python3
"""Integration tests of the greylight admin tool.

    python3 tests/tools/greylight_tool_test.py --greylight build/src/greylight \\
        --greylightd build/src/greylightd [unittest options]

Every command runs against the store of a real greylightd that is running (LMDB beside
the daemon, commit interval 0), after known requests with policy_test_time, and its exact
output is checked; decisions the tool predicts or changes are checked against the
daemon's answers. import-postgrey imports the state of the real postgrey (/usr/sbin/postgrey,
Debian package postgrey; those cases are skipped if it is not installed) and greylightd
is then started on the imported store. Loopback only, every wait bounded, servers
stopped by PID. Standard library only.
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from greylightd_harness import T, Daemon, PolicyClient, free_port, request  # noqa: E402
from redis_test import Redis  # noqa: E402

GREYLIGHT = None   # set by main()
GREYLIGHTD = None
POSTGREY = "/usr/sbin/postgrey"
GREY = "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"
TIMEOUT = 60  # seconds for any one tool run


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def when(t):
    """A time as the tool prints it for people."""
    return f"{iso(t)} ({t})"


# The traffic every test starts from (policy_test_time, request changes, expected reply
# prefix). Afterwards the store holds:
#   192.0.2.0/alice@example.net/bob@example.org          T,T+300        passed
#   192.0.2.0/alice@example.net/pending@example.org      T+10,T+10      pending
#   2001:db8:0:0:0:0:0:0/v6@example.net/carol@example.org T+20,T+20     pending
#   198.51.100.0/awl@example.com/r<i>@example.org        T+4000i,+300   passed (i = 0..4)
#   clients 192.0.2.10 => 1,T+300 and 198.51.100.7 => 5,T+16300 (auto-whitelisted)
def traffic():
    steps = [
        (T, {}, "DEFER_IF_PERMIT"),
        (T + 300, {}, "PREPEND"),
        (T + 10, {"recipient": "pending@example.org"}, "DEFER_IF_PERMIT"),
        (T + 20, {"client_address": "2001:db8::5", "client_name": "v6.example.net",
                  "sender": "V6+x@Example.net", "recipient": "carol@example.org"},
         "DEFER_IF_PERMIT"),
    ]
    for i in range(5):  # five first deliveries, more than an hour apart: auto-whitelisted
        awl = {"client_address": "198.51.100.7", "client_name": "unknown",
               "sender": "awl@example.com", "recipient": f"r{i}@example.org"}
        steps.append((T + 4000 * i, awl, "DEFER_IF_PERMIT"))
        steps.append((T + 4000 * i + 300, awl, "PREPEND"))
    return steps


PASSED = "192.0.2.0/alice@example.net/bob@example.org"
PENDING = "192.0.2.0/alice@example.net/pending@example.org"
PENDING_V6 = "2001:db8:0:0:0:0:0:0/v6@example.net/carol@example.org"


def awl_key(i):
    return f"198.51.100.0/awl@example.com/r{i}@example.org"


def send_traffic(address, tag):
    c = PolicyClient(address)
    try:
        for n, (t, changes, expected) in enumerate(traffic()):
            reply = c.ask(request(policy_test_time=t, instance=f"{tag}{n}", **changes))
            assert reply.startswith(expected), (n, t, changes, reply)
    finally:
        c.close()


class ToolTestCase(unittest.TestCase):
    """A running greylightd with whitelists and the standard traffic, and the tool."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="greylight-tool-it-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.clients_list = os.path.join(self.tmp, "whitelist_clients")
        self.recipients_list = os.path.join(self.tmp, "whitelist_recipients")
        with open(self.clients_list, "w") as f:
            f.write("# test clients\nwhitelisted.example\n203.0.113.0/24\n")
        with open(self.recipients_list, "w") as f:
            f.write("postmaster@\n")
        self.policy = [f"--whitelist-clients={self.clients_list}",
                       f"--whitelist-recipients={self.recipients_list}", "--hostname=mx.test",
                       *self.extra_policy()]
        self.daemon = self.start_daemon()
        self.dbdir = self.daemon.dbdir
        send_traffic(self.daemon.address(), "setup")

    def extra_policy(self):
        """More options for both greylightd and the tool (subclasses; self.tmp exists)."""
        return []

    def start_daemon(self, dbdir=None):
        d = Daemon(GREYLIGHTD, ["--commit-interval=0", *self.policy], dbdir=dbdir)
        self.addCleanup(d.cleanup)
        return d.start()

    def tool(self, *args, dbdir=True, stdin=None, code=0):
        """Runs greylight with the daemon's dbdir and policy options; checks the exit code."""
        cmd = [GREYLIGHT, *args]
        if dbdir:
            cmd += [f"--dbdir={self.dbdir}", *self.policy]
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, code, f"{cmd}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def ask(self, t, address=None, **changes):
        c = PolicyClient(address or self.daemon.address())
        try:
            return c.ask(request(policy_test_time=t, instance=f"ask{t}", **changes))
        finally:
            c.close()


class ExplainTest(ToolTestCase):
    def head(self, client, name, sender, recipient, t):
        return (f"request: client_address={client} client_name={name} sender={sender} "
                f"recipient={recipient}\n"
                f"time: {when(t)}\n"
                "client whitelist: no match\n"
                "recipient whitelist: no match\n"
                "greytraps: none (no --greytrap-recipients)\n")

    def explain(self, t, client="192.0.2.10", name="mail.example.net", sender="alice@example.net",
                recipient="bob@example.org"):
        return self.tool("explain", f"--client-address={client}", f"--client-name={name}",
                         f"--sender={sender}", f"--recipient={recipient}", f"--at={t}").stdout

    def test_new_triplet(self):
        t = T + 20000
        out = self.explain(t, client="192.0.2.99", sender="new@example.net",
                           recipient="x@example.org")
        self.assertEqual(out, self.head("192.0.2.99", "mail.example.net", "new@example.net",
                                        "x@example.org", t) +
                         "client auto-whitelist: key 192.0.2.99 (threshold 5)\n"
                         "  stored: none\n"
                         "reply tracking: key new@example.net/x@example.org\n"
                         "  stored: none\n"
                         "triplet: key 192.0.2.0/new@example.net/x@example.org\n"
                         "  stored: none\n"
                         "  state: new\n"
                         "decision: greylist (new, 300 s (5m) missing); the record becomes first "
                         f"seen {when(t)}, last seen now\n"
                         f"action={GREY}\n")
        self.assertEqual(self.ask(t, client_address="192.0.2.99", sender="new@example.net",
                                  recipient="x@example.org"), GREY)

    def test_pending_triplet_then_first_acceptance(self):
        t = T + 60
        out = self.explain(t, recipient="pending@example.org")
        self.assertEqual(out, self.head("192.0.2.10", "mail.example.net", "alice@example.net",
                                        "pending@example.org", t) +
                         "client auto-whitelist: key 192.0.2.10 (threshold 5)\n"
                         f"  stored: count 1, last seen {when(T + 300)}\n"
                         "  state: below the threshold (4 more first deliveries, counted at most "
                         "once per hour)\n"
                         "reply tracking: key alice@example.net/pending@example.org\n"
                         "  stored: none\n"
                         f"triplet: key {PENDING}\n"
                         f"  stored: first seen {when(T + 10)}, last seen {when(T + 10)}\n"
                         "  state: pending, 250 s (4m 10s) left: a retry passes from "
                         f"{when(T + 310)}\n"
                         f"  retry window: a retry passes until {when(T + 10 + 172800)}; the "
                         f"record is removed after {when(T + 10 + 172800)} if not retried\n"
                         "decision: greylist (early-retry, 250 s (4m 10s) missing); the record "
                         f"becomes first seen {when(T + 10)}, last seen now\n"
                         f"action={GREY}\n")
        self.assertEqual(self.ask(t, recipient="pending@example.org"), GREY)
        self.assertIn("action=greylist, reason=early-retry (250s missing)", self.daemon.log_text())

        t = T + 4400  # the delay is over, and the AWL was last counted more than an hour ago
        out = self.explain(t, recipient="pending@example.org")
        self.assertIn("  state: pending, delay over: this request is its first accepted "
                      "delivery\n", out)
        self.assertIn("decision: pass (triplet found, delay=4390): the first accepted delivery "
                      "of this triplet; a PREPEND X-Greylist header is added (once per message: "
                      "further recipients of the same delivery get DUNNO)\n"
                      "  client auto-whitelist: this delivery counts: count becomes 2 of 5\n", out)
        action = out.splitlines()[-1]
        self.assertTrue(action.startswith("action=PREPEND X-Greylist: delayed 4390 seconds by "
                                          "greylight-"), action)
        reply = self.ask(t, recipient="pending@example.org")
        # Identical up to the header date (real time, may have moved on by a second).
        self.assertEqual(reply.rsplit("; ", 1)[0], action[len("action="):].rsplit("; ", 1)[0])
        self.assertEqual(self.tool("list", "--clients", "--client=192.0.2.10",
                                   "--format=csv").stdout,
                         f"client,count,last,state\n192.0.2.10,2,{t},counting\n")

    def test_passed_triplet(self):
        t = T + 20000
        out = self.explain(t)
        self.assertEqual(out, self.head("192.0.2.10", "mail.example.net", "alice@example.net",
                                        "bob@example.org", t) +
                         "client auto-whitelist: key 192.0.2.10 (threshold 5)\n"
                         f"  stored: count 1, last seen {when(T + 300)}\n"
                         "  state: below the threshold (4 more first deliveries, counted at most "
                         "once per hour)\n"
                         "reply tracking: key alice@example.net/bob@example.org\n"
                         "  stored: none\n"
                         f"triplet: key {PASSED}\n"
                         f"  stored: first seen {when(T)}, last seen {when(T + 300)}\n"
                         "  state: passed (it was delivered before: later deliveries are not "
                         "delayed)\n"
                         f"  expires: removed after {when(T + 300 + 35 * 86400)} unless seen again "
                         "(max-age 3024000 s (35d) since last seen)\n"
                         "decision: pass (triplet found)\n"
                         "action=DUNNO\n")
        self.assertEqual(self.ask(t), "DUNNO")

    def test_whitelisted_client_and_recipient(self):
        t = T + 20000
        out = self.explain(t, client="192.0.2.99", name="mx1.whitelisted.example")
        self.assertEqual(out,
                         "request: client_address=192.0.2.99 client_name=mx1.whitelisted.example "
                         "sender=alice@example.net recipient=bob@example.org\n"
                         f"time: {when(t)}\n"
                         f"client whitelist: {self.clients_list}:2: whitelisted.example\n"
                         "decision: pass (client whitelist); the store is not consulted\n"
                         "action=DUNNO\n")
        self.assertEqual(self.ask(t, client_address="192.0.2.99",
                                  client_name="mx1.whitelisted.example"), "DUNNO")
        out = self.explain(t, client="203.0.113.9", name="unknown")
        self.assertIn(f"client whitelist: {self.clients_list}:3: 203.0.113.0/24\n", out)
        out = self.explain(t, client="192.0.2.99", recipient="postmaster@example.org")
        self.assertIn("client whitelist: no match\n"
                      f"recipient whitelist: {self.recipients_list}:1: postmaster@\n"
                      "decision: pass (recipient whitelist); the store is not consulted\n"
                      "action=DUNNO\n", out)
        self.assertIn("reason=client whitelist", self.daemon.log_text())

    def test_auto_whitelisted_client(self):
        t = T + 20000
        out = self.explain(t, client="198.51.100.7", name="unknown", sender="other@example.com",
                           recipient="new@example.org")
        self.assertEqual(out,
                         "request: client_address=198.51.100.7 client_name=unknown "
                         "sender=other@example.com recipient=new@example.org\n"
                         f"time: {when(t)}\n"
                         "client whitelist: no match\n"
                         "recipient whitelist: no match\n"
                         "greytraps: none (no --greytrap-recipients)\n"
                         "client auto-whitelist: key 198.51.100.7 (threshold 5)\n"
                         f"  stored: count 5, last seen {when(T + 16300)}\n"
                         "  state: auto-whitelisted\n"
                         "decision: pass (client AWL); the reply record and the triplet are "
                         "not consulted\n"
                         "  greylightd would refresh the record to count 6, last seen now\n"
                         "action=DUNNO\n")
        self.assertEqual(self.ask(t, client_address="198.51.100.7", client_name="unknown",
                                  sender="other@example.com", recipient="new@example.org"),
                         "DUNNO")
        self.assertIn("action=pass, reason=client AWL, client_name=unknown, "
                      "client_address=198.51.100.7", self.daemon.log_text())
        self.assertIn("whitelisted: unknown[198.51.100.7]", self.daemon.log_text())

    def test_explain_writes_nothing(self):
        before = self.tool("list", "--format=json").stdout
        self.explain(T + 400, recipient="pending@example.org")
        self.explain(T + 20000, client="192.0.2.99")
        self.assertEqual(self.tool("list", "--format=json").stdout, before)


class StatsTest(ToolTestCase):
    def test_counts_and_ages(self):
        t = T + 17000
        self.assertEqual(self.tool("stats", f"--at={t}").stdout,
                         f"at: {when(t)}\n"
                         "triplets: 8\n"
                         "  pending: 2\n"
                         "  passed: 6\n"
                         "  expired, awaiting removal: 0\n"
                         "  malformed: 0\n"
                         "  by last seen: <1h 1, <1d 7, <7d 0, <35d 0, older 0\n"
                         "clients: 2\n"
                         "  auto-whitelisted (count >= 5): 1\n"
                         "  below threshold: 1\n"
                         "  expired, awaiting removal: 0\n"
                         "  malformed: 0\n"
                         "traps: 0\n"
                         "  trapping now: 0\n"
                         "  expired, awaiting removal: 0\n"
                         "  malformed: 0\n"
                         "replies: 0\n"
                         "  live: 0\n"
                         "  expired, awaiting removal: 0\n"
                         "  malformed: 0\n")
        t = T + 10 * 86400  # the pending triplets are past the retry window
        stats = json.loads(self.tool("stats", f"--at={t}", "--format=json").stdout)
        self.assertEqual(stats, {
            "at": t,
            "triplets": {"total": 8, "pending": 2, "passed": 6, "expired": 2, "malformed": 0,
                         "age_by_last_seen": {"lt_1h": 0, "lt_1d": 0, "lt_7d": 0, "lt_35d": 8,
                                              "older": 0}},
            "clients": {"total": 2, "auto_whitelisted": 1, "below_threshold": 1, "expired": 0,
                        "malformed": 0, "threshold": 5},
            "traps": {"total": 0, "trapping": 0, "expired": 0, "malformed": 0},
            "replies": {"total": 0, "live": 0, "expired": 0, "malformed": 0}})
        # The same rules as the daemon: a lower threshold makes both clients whitelisted.
        stats = json.loads(self.tool("stats", f"--at={t}", "--format=json",
                                     "--auto-whitelist-clients=1").stdout)
        self.assertEqual(stats["clients"]["auto_whitelisted"], 2)


class ListTest(ToolTestCase):
    def row(self, state, first, last, client, sender, recipient):
        return f"{state:<7} {iso(first)} {iso(last)} {client} {sender} {recipient}\n"

    def test_text_all(self):
        expected = "STATE   FIRST SEEN           LAST SEEN            CLIENT SENDER RECIPIENT\n"
        expected += self.row("passed", T, T + 300, "192.0.2.0", "alice@example.net",
                             "bob@example.org")
        expected += self.row("pending", T + 10, T + 10, "192.0.2.0", "alice@example.net",
                             "pending@example.org")
        for i in range(5):
            expected += self.row("passed", T + 4000 * i, T + 4000 * i + 300, "198.51.100.0",
                                 "awl@example.com", f"r{i}@example.org")
        expected += self.row("pending", T + 20, T + 20, "2001:db8:0:0:0:0:0:0", "v6@example.net",
                             "carol@example.org")
        self.assertEqual(self.tool("list").stdout, expected)

    def test_filters(self):
        header = "STATE   FIRST SEEN           LAST SEEN            CLIENT SENDER RECIPIENT\n"
        # Client by containment: an address inside the stored /24, or a wider network.
        self.assertEqual(self.tool("list", "--client=192.0.2.77", "--state=pending").stdout,
                         header + self.row("pending", T + 10, T + 10, "192.0.2.0",
                                           "alice@example.net", "pending@example.org"))
        self.assertEqual(len(self.tool("list", "--client=198.51.0.0/16").stdout.splitlines()), 6)
        self.assertEqual(self.tool("list", "--client=10.0.0.0/8").stdout, header)
        # Sender and recipient after the key's normalisation and lowercasing.
        self.assertEqual(self.tool("list", "--sender=Alice+x@Example.net", "--state=passed",
                                   "--format=csv").stdout,
                         "key,client,sender,recipient,state,first,last\n"
                         f"{PASSED},192.0.2.0,alice@example.net,bob@example.org,passed,{T},"
                         f"{T + 300}\n")
        self.assertEqual(json.loads(self.tool("list", "--recipient=R3@EXAMPLE.ORG",
                                              "--format=json").stdout),
                         [{"key": awl_key(3), "client": "198.51.100.0", "sender": "awl@example.com",
                           "recipient": "r3@example.org", "state": "passed", "first": T + 12000,
                           "last": T + 12300}])
        self.assertEqual(json.loads(self.tool("list", "--client=2001:db8::/32",
                                              "--sender=v6+other@EXAMPLE.net",
                                              "--format=json").stdout),
                         [{"key": PENDING_V6, "client": "2001:db8:0:0:0:0:0:0",
                           "sender": "v6@example.net", "recipient": "carol@example.org",
                           "state": "pending", "first": T + 20, "last": T + 20}])
        pending = json.loads(self.tool("list", "--state=pending", "--format=json").stdout)
        self.assertEqual([row["key"] for row in pending], [PENDING, PENDING_V6])
        self.assertEqual(self.tool("list", "--sender=nobody@example.net", "--format=json").stdout,
                         "[]\n")

    def test_clients(self):
        self.assertEqual(self.tool("list", "--clients").stdout,
                         "STATE       COUNT LAST SEEN            CLIENT\n"
                         f"counting        1 {iso(T + 300)} 192.0.2.10\n"
                         f"whitelisted     5 {iso(T + 16300)} 198.51.100.7\n")
        self.assertEqual(json.loads(self.tool("list", "--clients", "--client=198.51.100.0/24",
                                              "--format=json").stdout),
                         [{"client": "198.51.100.7", "count": 5, "last": T + 16300,
                           "state": "whitelisted"}])

    def test_privacy_keys_are_listed_raw_and_filters_refused(self):
        d = Daemon(GREYLIGHTD, ["--commit-interval=0", "--privacy", *self.policy],
                   dbdir=os.path.join(self.tmp, "private"))
        self.addCleanup(d.cleanup)
        d.start()
        self.assertEqual(self.ask(T, address=d.address()), GREY)
        self.dbdir = d.dbdir
        digest = hashlib.sha1(PASSED.encode()).hexdigest()
        self.assertEqual(self.tool("list", "--privacy").stdout.splitlines()[1:],
                         [f"pending {iso(T)} {iso(T)} key={digest}"])
        self.assertEqual(json.loads(self.tool("list", "--privacy", "--state=pending",
                                              "--format=json").stdout),
                         [{"key": digest, "client": None, "sender": None, "recipient": None,
                           "state": "pending", "first": T, "last": T}])
        r = self.tool("list", "--privacy", "--sender=alice@example.net", code=2)
        self.assertIn("with --privacy keys are SHA-1 digests", r.stderr)


class DeleteAndPassTest(ToolTestCase):
    def test_delete_triplet_then_daemon_greylists_it_again(self):
        r = self.tool("delete", "--client-address=192.0.2.10", "--sender=alice@example.net",
                      "--recipient=pending@example.org")
        self.assertEqual(r.stdout, f"deleted triplet {PENDING} (was {T + 10},{T + 10})\n")
        self.assertNotIn("pending@example.org", self.tool("list").stdout)
        # Without the record the retry after the delay is a new triplet.
        self.assertEqual(self.ask(T + 400, recipient="pending@example.org"), GREY)
        self.assertIn("action=greylist, reason=new, client_name=mail.example.net, "
                      "client_address=192.0.2.10, sender=alice@example.net, "
                      "recipient=pending@example.org", self.daemon.log_text())
        r = self.tool("delete", f"--key={awl_key(9)}", code=4)
        self.assertEqual(r.stderr, f"greylight delete: no triplet {awl_key(9)}\n")

    def test_delete_client_ends_its_auto_whitelisting(self):
        changes = dict(client_address="198.51.100.7", client_name="unknown",
                       sender="other@example.com", recipient="new@example.org")
        r = self.tool("delete", "--client=198.51.100.7")
        self.assertEqual(r.stdout, f"deleted client record 198.51.100.7 (was 5,{T + 16300})\n")
        self.assertEqual(self.ask(T + 20000, **changes), GREY)
        self.tool("delete", "--client=198.51.100.7", code=4)

    def test_pass_lets_a_pending_triplet_through(self):
        t = T + 5000
        r = self.tool("pass", "--client-address=192.0.2.10", "--sender=alice@example.net",
                      "--recipient=pending@example.org", f"--at={t}")
        self.assertEqual(r.stdout,
                         f"passed triplet {PENDING}: first and last seen set to {when(t - 300)} "
                         "(now - delay 300 s (5m)); its next request within 172500 s "
                         "(1d 23h 55m) is its first accepted delivery\n")
        reply = self.ask(t + 1, recipient="pending@example.org")
        self.assertTrue(reply.startswith("PREPEND X-Greylist: delayed 301 seconds by greylight-"),
                        reply)
        self.assertIn("action=pass, reason=triplet found, delay=301", self.daemon.log_text())
        # It counted toward the auto-whitelist like any first delivery.
        self.assertIn(f"counting        2 {iso(t + 1)} 192.0.2.10\n",
                      self.tool("list", "--clients").stdout)
        self.assertEqual(self.ask(t + 2, recipient="pending@example.org"), "DUNNO")
        r = self.tool("pass", f"--key={PENDING}", f"--at={t + 3}", code=4)
        # The pass at t + 2 came within 60 s of the one at t + 1, so it was not written.
        self.assertEqual(r.stderr, f"greylight pass: triplet {PENDING} has already passed "
                                   f"(first seen {when(t - 300)}, last seen {when(t + 1)})\n")
        r = self.tool("pass", "--key=192.0.2.0/nobody@example.net/x@example.org", code=4)
        self.assertEqual(r.stderr,
                         "greylight pass: no triplet 192.0.2.0/nobody@example.net/x@example.org\n")

    def test_pass_by_key_ipv6(self):
        t = T + 100
        self.tool("pass", f"--key={PENDING_V6}", f"--at={t}")
        reply = self.ask(t, client_address="2001:db8::77", client_name="v6.example.net",
                         sender="v6@example.net", recipient="carol@example.org")
        self.assertTrue(reply.startswith("PREPEND X-Greylist: delayed 300 seconds"), reply)


class ReportTest(ToolTestCase):
    SYNTHETIC = (
        "Nov 29 09:00:00 mx postfix/smtpd[101]: NOQUEUE: reject: RCPT from "
        "mail.example.net[192.0.2.10]: 450 4.2.0 <bob@example.org>: Recipient address rejected: "
        "Greylisted, see http://postgrey.schweikert.ch/help/example.org.html; "
        "from=<alice@example.net> to=<bob@example.org> proto=ESMTP helo=<mail.example.net>\n"
        "Nov 29 09:00:01 mx postfix/smtpd[101]: NOQUEUE: reject: RCPT from "
        "mail.example.net[192.0.2.10]: 450 4.2.0 <pending@example.org>: Recipient address "
        "rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.org.html; "
        "from=<alice@example.net> to=<pending@example.org> proto=ESMTP helo=<mail.example.net>\n"
        "Nov 29 09:00:02 mx postfix/smtpd[102]: NOQUEUE: reject: RCPT from unknown[192.0.2.55]: "
        "450 4.2.0 <bob@example.org>: Recipient address rejected: Greylisted, see "
        "http://postgrey.schweikert.ch/help/example.org.html; from=<spam@spam.example> "
        "to=<bob@example.org> proto=SMTP helo=<x>\n"
        "Nov 29 09:00:03 mx postfix/smtpd[103]: NOQUEUE: reject: RCPT from "
        "v6.example.net[2001:db8::5]: 450 4.2.0 <carol@example.org>: Recipient address rejected: "
        "Greylisted, see http://postgrey.schweikert.ch/help/example.org.html; "
        "from=<V6+x@Example.net> to=<carol@example.org> proto=ESMTP helo=<v6.example.net>\n"
        "Nov 29 09:00:04 mx postfix/smtpd[104]: NOQUEUE: reject: RCPT from a.example[192.0.2.66]: "
        "554 5.7.1 <x@elsewhere.example>: Relay access denied; from=<a@a.example> "
        "to=<x@elsewhere.example> proto=ESMTP helo=<a>\n"
        "Nov 29 09:05:00 mx postgrey[7]: 4F1A2B: action=pass, reason=triplet found, delay=600, "
        "client_name=c.example, client_address=192.0.2.77, sender=s@c.example, "
        "recipient=bob@example.org\n"
        "Nov 29 09:06:00 mx greylightd[8]: {\"action\":\"pass\",\"reason\":\"triplet found\","
        "\"client_name\":\"d.example\",\"delay\":1200,\"key\":\"k\"}\n"
        "Nov 29 09:07:00 mx greylightd[8]: action=pass, reason=triplet found, client_name=e\n")

    EXPECTED = (
        "192.0.2.10 mail.example.net alice@example.net pending@example.org\n"
        "192.0.2.55 unknown spam@spam.example bob@example.org\n"
        "2001:db8::5 v6.example.net V6+x@Example.net carol@example.org\n"
        "\n"
        "summary:\n"
        "  messages delayed: 8 (median 300 s, p90 1200 s)\n"
        "  greylisted triplets: 4, never came back: 3\n"
        "  greylisted clients: 3, never retried: 2 (66.7%)\n")

    def test_report_on_daemon_log_and_postfix_lines(self):
        # greylightd's own log lines (six first deliveries, delay=300) plus Postfix's.
        log = self.daemon.log_text() + self.SYNTHETIC
        path = os.path.join(self.tmp, "mail.log")
        with open(path, "w") as f:
            f.write(log)
        self.assertEqual(self.tool("report", f"--log={path}").stdout, self.EXPECTED)
        self.assertEqual(self.tool("report", "--log=-", stdin=log).stdout, self.EXPECTED)
        self.assertEqual(self.tool("report", stdin=log).stdout, self.EXPECTED)
        report = json.loads(self.tool("report", f"--log={path}", "--format=json").stdout)
        self.assertEqual(report["summary"], {
            "messages_delayed": 8, "delay_median": 300, "delay_p90": 1200,
            "greylisted_triplets": 4, "never_came_back": 3, "greylisted_clients": 3,
            "clients_never_retried": 2, "clients_never_retried_share": 0.6667})
        self.assertEqual([(e["client_address"], e["key"], e["stored"])
                          for e in report["never_came_back"]],
                         [("192.0.2.10", PENDING, "pending"),
                          ("192.0.2.55", "192.0.2.0/spam@spam.example/bob@example.org", "absent"),
                          ("2001:db8::5", PENDING_V6, "pending")])
        # Another greylist text: nothing matches it.
        r = self.tool("report", f"--log={path}", "--greylist-text=Come back in %s seconds")
        self.assertIn("greylisted triplets: 0, never came back: 0", r.stdout)
        r = self.tool("report", f"--log={os.path.join(self.tmp, 'missing.log')}", code=2)
        self.assertIn("--log: can't open", r.stderr)


class MigrateTest(ToolTestCase):
    def test_lmdb_to_lmdb_round_trip(self):
        copy = os.path.join(self.tmp, "copy")
        r = self.tool("migrate", "--from=lmdb:", f"--to=lmdb:{copy}")
        self.assertEqual(r.stdout, f"migrated 8 triplets, 2 client records, 0 trap records and 0 reply records "
                                   f"from lmdb: to lmdb:{copy}\n")
        for listing in (["list", "--format=json"], ["list", "--clients", "--format=json"]):
            original = self.tool(*listing).stdout
            copied = self.tool(*listing, f"--store=lmdb:{copy}").stdout
            self.assertEqual(copied, original)
            self.assertGreater(len(json.loads(copied)), 1)
        back = os.path.join(self.tmp, "back")
        self.tool("migrate", f"--from=lmdb:{copy}", f"--to=lmdb:{back}")
        self.assertEqual(self.tool("list", "--format=json", f"--store=lmdb:{back}").stdout,
                         self.tool("list", "--format=json").stdout)
        # A daemon on the copy has the same state.
        d = self.start_daemon(dbdir=copy)
        self.assertEqual(self.ask(T + 20000, address=d.address()), "DUNNO")
        self.assertEqual(self.ask(T + 20000, address=d.address(), client_address="198.51.100.7",
                                  sender="x@y.example"), "DUNNO")
        r = self.tool("migrate", "--from=lmdb:", f"--to=lmdb:{self.dbdir}/", code=2)
        self.assertIn("name the same store", r.stderr)
        # LMDB -> Redis -> LMDB through a real redis-server: identical records.
        redis = Redis().start()
        self.addCleanup(redis.cleanup)
        uri = f"redis://127.0.0.1:{redis.port}/0"
        r = self.tool("migrate", "--from=lmdb:", f"--to={uri}")
        self.assertIn(f"to {uri}", r.stdout)
        def records(*args):  # Redis lists in SCAN order: compare as sorted records
            return sorted(json.loads(self.tool("list", "--format=json", *args).stdout),
                          key=lambda r: json.dumps(r, sort_keys=True))
        self.assertEqual(records(f"--store={uri}"), records())
        self.assertEqual(records("--clients", f"--store={uri}"), records("--clients"))
        self.assertGreater(len(records()), 0)
        round_trip = os.path.join(self.tmp, "round-trip")
        self.tool("migrate", f"--from={uri}", f"--to=lmdb:{round_trip}")
        for clients in ([], ["--clients"]):
            self.assertEqual(self.tool("list", *clients, "--format=json", f"--store=lmdb:{round_trip}").stdout,
                             self.tool("list", *clients, "--format=json").stdout)
        # An unreachable Redis is a store error (exit 3), not an empty store.
        r = self.tool("list", f"--store=redis://127.0.0.1:{free_port()}/0", code=3)
        self.assertIn("store redis://127.0.0.1:", r.stderr)


TRAP = "spamtrap@example.org"


class GreytrapTest(ToolTestCase):
    """greylightd and the tool with --greytrap-recipients and --greytrap-ttl=3600."""

    def extra_policy(self):
        self.traps_list = os.path.join(self.tmp, "greytraps")
        with open(self.traps_list, "w") as f:
            f.write(f"# trap addresses\n{TRAP}\n")
        return [f"--greytrap-recipients={self.traps_list}", "--greytrap-ttl=3600"]

    def explain(self, t, recipient="bob@example.org"):
        return self.tool("explain", "--client-address=192.0.2.10", "--client-name=mail.example.net",
                         "--sender=alice@example.net", f"--recipient={recipient}",
                         f"--at={t}").stdout

    def head(self, t, recipient):
        return ("request: client_address=192.0.2.10 client_name=mail.example.net "
                f"sender=alice@example.net recipient={recipient}\n"
                f"time: {when(t)}\n"
                "client whitelist: no match\n"
                "recipient whitelist: no match\n")

    def hit(self, t):
        """192.0.2.10 writes to the trap address at t: greylightd traps it until t + 3600."""
        self.assertEqual(self.ask(t, recipient=TRAP), GREY)
        self.assertIn(f"greytrap hit: mail.example.net[192.0.2.10] sent to {TRAP} "
                      f"({self.traps_list}:2: {TRAP})", self.daemon.log_text())

    def test_explain_trap_hit_then_trapped_client(self):
        t = T + 20000
        self.assertEqual(self.explain(t, recipient=TRAP),
                         self.head(t, TRAP) +
                         f"greytrap recipients: {self.traps_list}:2: {TRAP}\n"
                         "greytrap list: key 192.0.2.10\n"
                         "  stored: none\n"
                         "decision: greylist (greytrap, 3600 s (1h) missing): this request puts "
                         f"the client on the trap list until {when(t + 3600)}; the auto-whitelist, "
                         "the reply record and the triplet are not consulted\n"
                         f"action={GREY}\n")
        self.hit(t)
        # The triplet that passed long ago is greylisted while the client is trapped.
        self.assertEqual(self.explain(t + 100),
                         self.head(t + 100, "bob@example.org") +
                         "greytrap recipients: no match\n"
                         "greytrap list: key 192.0.2.10\n"
                         f"  stored: trapped until {when(t + 3600)}, last hit {when(t)}\n"
                         "  state: trapped, 3500 s (58m 20s) left\n"
                         "decision: greylist (greytrap, 3500 s (58m 20s) missing): the client is "
                         f"on the trap list until {when(t + 3600)}; the auto-whitelist, the reply "
                         "record and the triplet are not consulted\n"
                         f"action={GREY}\n")
        self.assertEqual(self.ask(t + 100), GREY)
        self.assertIn("action=greylist, reason=greytrap, client_name=mail.example.net, "
                      "client_address=192.0.2.10", self.daemon.log_text())
        # When the trap ends, the triplet decides again.
        out = self.explain(t + 3600)
        self.assertIn(f"  the trap ended {when(t + 3600)}: greylightd treats it as absent "
                      "(expired, awaiting removal)\n", out)
        self.assertTrue(out.endswith("decision: pass (triplet found)\naction=DUNNO\n"), out)
        self.assertEqual(self.ask(t + 3600), "DUNNO")

    def test_list_stats_and_delete_traps(self):
        t = T + 20000
        self.hit(t)
        self.assertEqual(self.tool("list", "--traps", f"--at={t + 100}").stdout,
                         "STATE   UNTIL                LAST HIT             CLIENT\n"
                         f"trapped {iso(t + 3600)} {iso(t)} 192.0.2.10\n")
        self.assertEqual(self.tool("list", "--traps", "--format=csv", f"--at={t + 100}").stdout,
                         f"client,until,last_hit,state\n192.0.2.10,{t + 3600},{t},trapped\n")
        self.assertEqual(json.loads(self.tool("list", "--traps", "--format=json",
                                              f"--at={t + 4000}").stdout),
                         [{"client": "192.0.2.10", "until": t + 3600, "last_hit": t,
                           "state": "expired"}])
        self.assertEqual(self.tool("list", "--traps", "--client=198.51.100.0/24",
                                   "--format=json").stdout, "[]\n")
        stats = json.loads(self.tool("stats", "--format=json", f"--at={t + 100}").stdout)
        self.assertEqual(stats["traps"], {"total": 1, "trapping": 1, "expired": 0, "malformed": 0})
        self.assertEqual(stats["triplets"]["total"], 8, "a trap hit writes no triplet")
        stats = json.loads(self.tool("stats", "--format=json", f"--at={t + 4000}").stdout)
        self.assertEqual(stats["traps"], {"total": 1, "trapping": 0, "expired": 1, "malformed": 0})
        self.assertTrue(self.tool("stats", f"--at={t + 100}").stdout.endswith(
            "traps: 1\n  trapping now: 1\n  expired, awaiting removal: 0\n  malformed: 0\n"
            "replies: 0\n  live: 0\n  expired, awaiting removal: 0\n  malformed: 0\n"))

        self.assertEqual(self.ask(t + 100), GREY)
        r = self.tool("delete", "--trap=192.0.2.10")
        self.assertEqual(r.stdout, f"deleted trap record 192.0.2.10 (was {t + 3600},{t})\n")
        # Off the list: the daemon passes the client's passed triplet again.
        self.assertEqual(self.ask(t + 200), "DUNNO")
        r = self.tool("delete", "--trap=192.0.2.10", code=4)
        self.assertEqual(r.stderr, "greylight delete: no trap record 192.0.2.10\n")

    def test_migrate_copies_the_trap_list(self):
        t = T + 20000
        self.hit(t)
        traps = ["list", "--traps", "--format=json", f"--at={t + 100}"]
        copy = os.path.join(self.tmp, "copy")
        r = self.tool("migrate", "--from=lmdb:", f"--to=lmdb:{copy}")
        self.assertEqual(r.stdout, f"migrated 8 triplets, 2 client records, 1 trap records and 0 reply records "
                                   f"from lmdb: to lmdb:{copy}\n")
        self.assertEqual(self.tool(*traps, f"--store=lmdb:{copy}").stdout, self.tool(*traps).stdout)
        # A daemon on the copy still traps the client.
        d = self.start_daemon(dbdir=copy)
        self.assertEqual(self.ask(t + 100, address=d.address()), GREY)
        self.assertIn("reason=greytrap", d.log_text())
        # LMDB -> Redis -> LMDB keeps the trap list too.
        redis = Redis().start()
        self.addCleanup(redis.cleanup)
        uri = f"redis://127.0.0.1:{redis.port}/0"
        r = self.tool("migrate", "--from=lmdb:", f"--to={uri}")
        self.assertIn(", 1 trap records", r.stdout)
        self.assertEqual(self.tool(*traps, f"--store={uri}").stdout, self.tool(*traps).stdout)
        back = os.path.join(self.tmp, "back")
        self.tool("migrate", f"--from={uri}", f"--to=lmdb:{back}")
        self.assertEqual(self.tool(*traps, f"--store=lmdb:{back}").stdout, self.tool(*traps).stdout)
        self.assertEqual(len(json.loads(self.tool(*traps).stdout)), 1)


REPLY_KEY = "carol@remote.example/bob@example.org"


class ReplyTest(ToolTestCase):
    """greylightd with an outbound listener (--outbound-inet): bob@example.org writes to
    carol@remote.example through it, and the tool shows, lists, counts and deletes the reply
    record the daemon then lets carol's replies through with."""

    def start_daemon(self, dbdir=None):
        self.outbound_port = free_port()
        d = Daemon(GREYLIGHTD, ["--commit-interval=0", *self.policy,
                                f"--outbound-inet=127.0.0.1:{self.outbound_port}"], dbdir=dbdir)
        self.addCleanup(d.cleanup)
        return d.start()

    def outbound(self, t, sender="bob@example.org", recipient="carol+work@remote.example"):
        c = PolicyClient(("127.0.0.1", self.outbound_port))
        try:
            return c.ask(request(policy_test_time=t, instance=f"out{t}",
                                 client_address="203.0.113.77", client_name="laptop.example.org",
                                 sender=sender, recipient=recipient))
        finally:
            c.close()

    def explain(self, t, sender="carol@remote.example"):
        return self.tool("explain", "--client-address=198.51.100.20",
                         "--client-name=mx.remote.example", f"--sender={sender}",
                         "--recipient=bob@example.org", f"--at={t}").stdout

    def reply(self, t, sender="carol@remote.example"):
        return self.ask(t, client_address="198.51.100.20", client_name="mx.remote.example",
                        sender=sender, recipient="bob@example.org")

    def test_outbound_message_lets_the_reply_pass_until_max_age(self):
        t = T + 20000
        self.assertEqual(self.outbound(t), "DUNNO")
        self.assertIn("action=record, reason=outbound, client_name=laptop.example.org, "
                      "client_address=203.0.113.77, sender=bob@example.org, "
                      "recipient=carol+work@remote.example", self.daemon.log_text())
        self.assertEqual(self.outbound(t + 60), "DUNNO")
        self.assertEqual(self.explain(t + 3600),
                         "request: client_address=198.51.100.20 client_name=mx.remote.example "
                         "sender=carol@remote.example recipient=bob@example.org\n"
                         f"time: {when(t + 3600)}\n"
                         "client whitelist: no match\n"
                         "recipient whitelist: no match\n"
                         "greytraps: none (no --greytrap-recipients)\n"
                         "client auto-whitelist: key 198.51.100.20 (threshold 5)\n"
                         "  stored: none\n"
                         f"reply tracking: key {REPLY_KEY}\n"
                         f"  stored: 2 outbound messages, the last {when(t + 60)}\n"
                         "  state: bob@example.org wrote to carol@remote.example: replies pass "
                         f"until {when(t + 60 + 35 * 86400)} (max-age 3024000 s (35d) after the "
                         "last message)\n"
                         "decision: pass (reply); the triplet is not consulted and the "
                         "auto-whitelist not counted\n"
                         "action=DUNNO\n")
        self.assertEqual(self.reply(t + 3600), "DUNNO")
        self.assertIn("action=pass, reason=reply, client_name=mx.remote.example, "
                      "client_address=198.51.100.20, sender=carol@remote.example, "
                      "recipient=bob@example.org", self.daemon.log_text())
        # Anyone else writing to bob is greylisted; so is carol once max-age has passed.
        self.assertEqual(self.reply(t + 3600, sender="mallory@remote.example"), GREY)
        self.assertIn("is more than max-age", self.explain(t + 60 + 35 * 86400 + 1))
        self.assertEqual(self.reply(t + 60 + 35 * 86400 + 1), GREY)

    def test_list_stats_delete_and_migrate_replies(self):
        t = T + 20000
        self.outbound(t)
        self.outbound(t, sender="alice@example.org", recipient="dave@old.example")
        self.assertEqual(self.tool("list", "--replies", f"--at={t}").stdout,
                         "STATE   COUNT LAST SENT            REMOTE LOCAL\n"
                         f"live        1 {iso(t)} carol@remote.example bob@example.org\n"
                         f"live        1 {iso(t)} dave@old.example alice@example.org\n")
        stats = json.loads(self.tool("stats", "--format=json", f"--at={t + 35 * 86400 + 1}").stdout)
        self.assertEqual(stats["replies"], {"total": 2, "live": 0, "expired": 2, "malformed": 0})
        self.assertEqual(stats["triplets"]["total"], 8, "an outbound request writes no triplet")

        copy = os.path.join(self.tmp, "copy")
        r = self.tool("migrate", "--from=lmdb:", f"--to=lmdb:{copy}")
        self.assertIn(", 0 trap records and 2 reply records", r.stdout)
        redis = Redis().start()
        self.addCleanup(redis.cleanup)
        uri = f"redis://127.0.0.1:{redis.port}/0"
        self.tool("migrate", "--from=lmdb:", f"--to={uri}")
        self.assertEqual(redis.command("GET", f"greylight:r:{REPLY_KEY}"), f"1,{t}")
        listing = ["list", "--replies", "--format=json", f"--at={t}"]
        self.assertEqual(sorted(json.loads(self.tool(*listing, f"--store={uri}").stdout),
                                key=lambda r: r["key"]),
                         json.loads(self.tool(*listing).stdout))

        self.assertEqual(self.reply(t + 60), "DUNNO")
        r = self.tool("delete", "--replies", "--sender=carol@remote.example",
                      "--recipient=bob@example.org")
        self.assertEqual(r.stdout, f"deleted reply record {REPLY_KEY} (was 1,{t})\n")
        self.assertEqual(self.reply(t + 120), GREY)
        self.tool("delete", "--replies", f"--key={REPLY_KEY}", code=4)


DOMAIN_PASSED = "domain:example.net/alice@example.net/bob@example.org"
DOMAIN_PENDING = "domain:example.net/alice@example.net/pending@example.org"
DOMAIN_PENDING_V6 = "domain:example.net/v6@example.net/carol@example.org"


class DomainLookupTest(ToolTestCase):
    """greylightd and the tool with --lookup-by=domain: mail.example.net and v6.example.net
    share the keys of domain:example.net; the unverified 198.51.100.7 keeps its subnet's."""

    def extra_policy(self):
        return ["--lookup-by=domain"]

    def test_explain_finds_the_domains_records_from_another_address(self):
        t = T + 20000
        other = dict(client_address="198.51.100.200", client_name="mx2.example.net")
        out = self.tool("explain", "--client-address=198.51.100.200",
                        "--client-name=mx2.example.net", "--sender=alice@example.net",
                        "--recipient=bob@example.org", f"--at={t}").stdout
        self.assertEqual(out,
                         "request: client_address=198.51.100.200 client_name=mx2.example.net "
                         "sender=alice@example.net recipient=bob@example.org\n"
                         f"time: {when(t)}\n"
                         "client whitelist: no match\n"
                         "recipient whitelist: no match\n"
                         "client group: domain:example.net (--lookup-by=domain)\n"
                         "greytraps: none (no --greytrap-recipients)\n"
                         "client auto-whitelist: key domain:example.net (threshold 5)\n"
                         f"  stored: count 1, last seen {when(T + 300)}\n"
                         "  state: below the threshold (4 more first deliveries, counted at most "
                         "once per hour)\n"
                         "reply tracking: key alice@example.net/bob@example.org\n"
                         "  stored: none\n"
                         f"triplet: key {DOMAIN_PASSED}\n"
                         f"  stored: first seen {when(T)}, last seen {when(T + 300)}\n"
                         "  state: passed (it was delivered before: later deliveries are not "
                         "delayed)\n"
                         f"  expires: removed after {when(T + 300 + 35 * 86400)} unless seen again "
                         "(max-age 3024000 s (35d) since last seen)\n"
                         "decision: pass (triplet found)\n"
                         "action=DUNNO\n")
        self.assertEqual(self.ask(t, **other), "DUNNO")
        self.assertIn("group=domain:example.net", self.daemon.log_text())
        # Unverified: the subnet, where nothing was stored for this triplet.
        out = self.tool("explain", "--client-address=192.0.2.10", "--sender=alice@example.net",
                        "--recipient=bob@example.org", f"--at={t}").stdout
        self.assertIn("client group: 192.0.2.0 (unverified name) (--lookup-by=domain)\n", out)
        self.assertIn("triplet: key 192.0.2.0/alice@example.net/bob@example.org\n"
                      "  stored: none\n  state: new\n", out)
        self.assertEqual(self.ask(t, client_name="unknown"), GREY)

    def test_pass_and_delete_by_address_and_client_name(self):
        t = T + 5000
        r = self.tool("pass", "--client-address=198.51.100.200", "--client-name=mx2.example.net",
                      "--sender=alice@example.net", "--recipient=pending@example.org", f"--at={t}")
        self.assertTrue(r.stdout.startswith(f"passed triplet {DOMAIN_PENDING}: first and last seen "
                                            f"set to {when(t - 300)}"), r.stdout)
        reply = self.ask(t + 1, recipient="pending@example.org")
        self.assertTrue(reply.startswith("PREPEND X-Greylist: delayed 301 seconds by greylight-"),
                        reply)
        r = self.tool("delete", "--client=192.0.2.99", "--client-name=mail.example.net")
        self.assertEqual(r.stdout, f"deleted client record domain:example.net (was 2,{t + 1})\n")
        r = self.tool("delete", "--client-address=2001:db8::99", "--client-name=v6.example.net",
                      "--sender=V6+x@Example.net", "--recipient=carol@example.org")
        self.assertEqual(r.stdout, f"deleted triplet {DOMAIN_PENDING_V6} (was {T + 20},{T + 20})\n")
        # Without the name the subnet key, which greylightd never wrote for this client.
        r = self.tool("delete", "--client-address=192.0.2.10", "--sender=alice@example.net",
                      "--recipient=bob@example.org", code=4)
        self.assertEqual(r.stderr, "greylight delete: no triplet "
                                   "192.0.2.0/alice@example.net/bob@example.org\n")

    def test_list_splits_domain_keys(self):
        self.assertEqual(json.loads(self.tool("list", "--sender=Alice@example.net",
                                              "--format=json").stdout),
                         [{"key": DOMAIN_PASSED, "client": "domain:example.net",
                           "sender": "alice@example.net", "recipient": "bob@example.org",
                           "state": "passed", "first": T, "last": T + 300},
                          {"key": DOMAIN_PENDING, "client": "domain:example.net",
                           "sender": "alice@example.net", "recipient": "pending@example.org",
                           "state": "pending", "first": T + 10, "last": T + 10}])
        # A domain group is no network: a network filter leaves it out.
        self.assertEqual(self.tool("list", "--client=192.0.2.0/24", "--format=json").stdout,
                         "[]\n")

    def test_report_keys_by_the_logged_client_name(self):
        path = os.path.join(self.tmp, "mail.log")
        with open(path, "w") as f:
            f.write(ReportTest.SYNTHETIC)
        report = json.loads(self.tool("report", f"--log={path}", "--format=json").stdout)
        # bob@example.org came back under the domain's key; the unverified client did not.
        self.assertEqual([(e["client_address"], e["key"], e["stored"])
                          for e in report["never_came_back"]],
                         [("192.0.2.10", DOMAIN_PENDING, "pending"),
                          ("192.0.2.55", "192.0.2.0/spam@spam.example/bob@example.org", "absent"),
                          ("2001:db8::5", DOMAIN_PENDING_V6, "pending")])
        self.assertEqual(report["summary"]["greylisted_triplets"], 4)


class QueryTest(ToolTestCase):
    """`greylight query` is a real request: the daemon decides, records and logs it."""

    def query(self, *args, code=0, server=None):
        server = server or f"inet:127.0.0.1:{self.daemon.port}"
        return self.tool("query", f"--server={server}", *args, dbdir=False, code=code)

    def test_new_triplet_is_greylisted_and_logged(self):
        args = ["--client-address=192.0.2.77", "--sender=newcomer@example.com",
                "--recipient=bob@example.org"]
        r = self.query(*args)
        self.assertTrue(r.stdout.startswith("action=DEFER_IF_PERMIT 4.2.0 Greylisted, see "),
                        r.stdout)
        self.assertIn("action=greylist, reason=new, client_name=unknown, "
                      "client_address=192.0.2.77, sender=newcomer@example.com, "
                      "recipient=bob@example.org", self.daemon.log_text())
        # Recorded: explain finds the triplet pending.
        self.assertIn("pending", self.tool("explain", *args).stdout)

    def test_attributes_reach_the_daemon(self):
        # A whitelisted client name and a policy_test_time given with --attribute.
        r = self.query("--client-address=192.0.2.78", "--client-name=mx.whitelisted.example",
                       "--sender=a@example.com", "--recipient=b@example.org")
        self.assertEqual(r.stdout, "action=DUNNO\n")
        r = self.query("--client-address=192.0.2.79", "--sender=a@example.com",
                       "--recipient=b@example.org", f"--attribute=policy_test_time={T}",
                       "--attribute=client_name=other.example")
        self.assertTrue(r.stdout.startswith("action=DEFER_IF_PERMIT"), r.stdout)
        self.assertIn("client_name=other.example, client_address=192.0.2.79",
                      self.daemon.log_text())

    def test_over_a_unix_socket(self):
        d = Daemon(GREYLIGHTD, ["--commit-interval=0"], inet=False, unix=True)
        self.addCleanup(d.cleanup)
        d.start()
        r = self.query("--client-address=192.0.2.80", "--sender=", "--recipient=b@example.org",
                       server=f"unix:{d.socket_path}")
        self.assertTrue(r.stdout.startswith("action=DEFER_IF_PERMIT"), r.stdout)

    def test_errors(self):
        port = free_port()
        r = self.query("--client-address=192.0.2.1", "--sender=a@b", "--recipient=c@d",
                       server=f"inet:127.0.0.1:{port}", code=3)
        self.assertEqual(r.stderr, f"greylight query: can't connect to inet:127.0.0.1:{port}: "
                                   "Connection refused\n")
        self.query("--client-address=192.0.2.1", "--sender=a@b", code=1)
        self.query("--client-address=192.0.2.1", "--sender=a@b", "--recipient=c@d",
                   server="nowhere", code=2)
        self.query("--client-address=192.0.2.1", "--sender=a@b", "--recipient=c@d",
                   "--attribute=noequals", code=2)
        self.query("--client-address=192.0.2.1", "--sender=a@b", "--recipient=c@d",
                   "--timeout=0", code=2)


class ErrorExitTest(unittest.TestCase):
    def run_tool(self, *args, code):
        r = subprocess.run([GREYLIGHT, *args], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, code, f"{args}: {r.stdout} {r.stderr}")
        return r

    def test_usage_errors_exit_1_and_bad_values_exit_2(self):
        self.assertIn("Usage: greylight COMMAND", self.run_tool(code=1).stderr)
        self.assertEqual(self.run_tool("frobnicate", code=1).stderr,
                         "greylight: unknown command 'frobnicate' (see greylight --help)\n")
        self.assertEqual(self.run_tool("list", "--bogus", code=1).stderr,
                         "greylight list: Unknown option: bogus (see greylight list --help)\n")
        self.assertEqual(self.run_tool("explain", "--client-address=192.0.2.1", code=1).stderr,
                         "greylight explain: --client-address, --sender and --recipient are "
                         "required\n")
        self.run_tool("stats", "--format=xml", code=2)
        self.run_tool("stats", "--delay=0", code=2)
        self.run_tool("list", "--client=300.1.1.1", code=2)
        self.run_tool("pass", "--key=k", "--client-address=192.0.2.1", code=2)
        self.run_tool("delete", "--client=not-an-address", code=2)
        self.run_tool("delete", "--trap=not-an-address", code=2)
        self.run_tool("list", "--traps", "--clients", code=1)
        r = self.run_tool("explain", "--client-address=192.0.2.1", "--sender=a@b",
                          "--recipient=c@d", "--greytrap-recipients=/nonexistent/greytraps",
                          code=2)
        self.assertTrue(r.stderr.startswith("greylight explain: "), r.stderr)
        self.assertIn("/nonexistent/greytraps", r.stderr)
        self.run_tool("migrate", "--to=lmdb:/tmp/x", code=1)
        self.run_tool("import-postgrey", code=1)

    def test_help_exits_0(self):
        self.assertIn("import-postgrey", self.run_tool("--help", code=0).stdout)
        for command in ("query", "explain", "stats", "list", "delete", "pass", "report",
                        "migrate", "import-postgrey"):
            out = self.run_tool(command, "--help", code=0).stdout
            self.assertTrue(out.startswith(f"Usage: greylight {command} "), out)
        self.assertIn("--dbdir=DIR\n      postgrey's database directory",
                      self.run_tool("import-postgrey", "--help", code=0).stdout)

    def test_missing_or_unsupported_store(self):
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, "nowhere")
            for command in (["stats"], ["list"], ["list", "--clients"],
                            ["explain", "--client-address=192.0.2.1", "--sender=a@b",
                             "--recipient=c@d", "--whitelist-clients=/dev/null",
                             "--whitelist-recipients=/dev/null"],
                            ["delete", "--key=k"], ["pass", "--key=k"],
                            ["report", "--log=/dev/null"],
                            ["migrate", f"--from=lmdb:{missing}", f"--to=lmdb:{tmp}/to"]):
                r = self.run_tool(*command, f"--dbdir={missing}", code=3)
                self.assertEqual(r.stderr, f"greylight {command[0]}: no greylight store at "
                                           f"{missing}: {missing}/greylight.lmdb does not exist\n")
            self.assertFalse(os.path.exists(missing), "reading commands create nothing")
            r = self.run_tool("import-postgrey", f"--dbdir={missing}",
                              f"--store=lmdb:{tmp}/target", code=3)
            self.assertEqual(r.stderr, f"greylight import-postgrey: postgrey dbdir {missing} is "
                                       "not a directory\n")
        r = self.run_tool("stats", "--store=redis://", code=2)
        self.assertIn("greylight stats: ", r.stderr)


class Postgrey:
    """The real postgrey on a loopback port, stopped by PID."""

    def __init__(self, dbdir, log_path, policy):
        self.port = free_port()
        self.log = open(log_path, "ab")
        self.log_path = log_path
        self.process = subprocess.Popen(
            [POSTGREY, "--user=root", "--group=root", f"--inet=127.0.0.1:{self.port}",
             f"--dbdir={dbdir}", *policy], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"postgrey exited {self.process.returncode}: "
                                     f"{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("postgrey did not start listening in time")
                time.sleep(0.1)

    def address(self):
        return ("127.0.0.1", self.port)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=15):
        """SIGTERM; postgrey acts on it when its select loop wakes, so connect to wake it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                except OSError:
                    pass
                time.sleep(0.2)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError("postgrey did not stop on SIGTERM in time")
        self.log.close()
        return self.process.returncode

    def cleanup(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if not self.log.closed:
            self.log.close()


@unittest.skipUnless(os.access(POSTGREY, os.X_OK), f"{POSTGREY} not installed (Debian postgrey)")
class ImportPostgreyTest(ToolTestCase):
    def postgrey_state(self, postgrey_policy):
        pgdir = os.path.join(self.tmp, "postgrey")
        os.mkdir(pgdir, 0o700)
        pg = Postgrey(pgdir, os.path.join(self.tmp, "postgrey.log"), postgrey_policy)
        self.addCleanup(pg.cleanup)
        send_traffic(pg.address(), "pg")
        return pgdir, pg

    def test_import_then_greylightd_continues_where_postgrey_stopped(self):
        pgdir, pg = self.postgrey_state([f"--whitelist-clients={self.clients_list}",
                                         f"--whitelist-recipients={self.recipients_list}"])
        self.assertIn("whitelisted: unknown[198.51.100.7]", pg.log_text())
        target = os.path.join(self.tmp, "imported")
        # Not while postgrey runs: its files may be mid-update.
        r = self.tool("import-postgrey", f"--dbdir={pgdir}", f"--store=lmdb:{target}",
                      dbdir=False, code=3)
        self.assertIn(f"postgrey is running on {pgdir}", r.stderr)
        self.assertFalse(os.path.exists(target))
        self.assertEqual(pg.stop(), 0)

        r = self.tool("import-postgrey", f"--dbdir={pgdir}", f"--store=lmdb:{target}", dbdir=False)
        self.assertEqual(r.stdout, f"imported 8 triplets and 2 client records from postgrey at "
                                   f"{pgdir} into lmdb:{target}\n")
        self.assertEqual(r.stderr, "")
        # The same records greylightd kept for the same traffic.
        for listing in (["list", "--format=json"], ["list", "--clients", "--format=json"]):
            self.assertEqual(self.tool(*listing, f"--store=lmdb:{target}").stdout,
                             self.tool(*listing).stdout)

        d = self.start_daemon(dbdir=target)
        # Passed in postgrey: not greylisted again.
        self.assertEqual(self.ask(T + 20000, address=d.address()), "DUNNO")
        self.assertEqual(self.ask(T + 20000, address=d.address(), client_address="198.51.100.7",
                                  client_name="unknown", sender="awl@example.com",
                                  recipient="r2@example.org"), "DUNNO")
        # Pending in postgrey: remembered (an early retry, then the first acceptance with
        # the delay counted from postgrey's first sighting).
        self.assertEqual(self.ask(T + 60, address=d.address(), recipient="pending@example.org"),
                         GREY)
        reply = self.ask(T + 310, address=d.address(), recipient="pending@example.org")
        self.assertTrue(reply.startswith("PREPEND X-Greylist: delayed 300 seconds by greylight-"),
                        reply)
        # Auto-whitelisted by postgrey: still whitelisted.
        self.assertEqual(self.ask(T + 20000, address=d.address(), client_address="198.51.100.7",
                                  client_name="unknown", sender="new@example.com",
                                  recipient="new@example.org"), "DUNNO")
        log = d.log_text()
        self.assertIn("action=greylist, reason=early-retry (250s missing), client_name="
                      "mail.example.net, client_address=192.0.2.10, sender=alice@example.net, "
                      "recipient=pending@example.org", log)
        self.assertIn("action=pass, reason=client AWL, client_name=unknown, "
                      "client_address=198.51.100.7, sender=new@example.com", log)

    def test_import_after_postgrey_was_killed(self):
        pgdir, pg = self.postgrey_state(["--whitelist-clients=/dev/null",
                                         "--whitelist-recipients=/dev/null"])
        pg.process.kill()  # no clean close: the records are only in BDB's log
        pg.process.wait(10)
        target = os.path.join(self.tmp, "imported")
        r = self.tool("import-postgrey", f"--dbdir={pgdir}", f"--store=lmdb:{target}", dbdir=False)
        self.assertEqual(r.stdout, f"imported 8 triplets and 2 client records from postgrey at "
                                   f"{pgdir} into lmdb:{target}\n")
        self.assertEqual(self.tool("list", "--format=json", f"--store=lmdb:{target}").stdout,
                         self.tool("list", "--format=json").stdout)


def main():
    global GREYLIGHT, GREYLIGHTD
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--greylight", required=True, help="path of the greylight binary")
    parser.add_argument("--greylightd", required=True, help="path of the greylightd binary")
    args, rest = parser.parse_known_args()
    GREYLIGHT = os.path.abspath(args.greylight)
    GREYLIGHTD = os.path.abspath(args.greylightd)
    warnings.simplefilter("ignore", ResourceWarning)  # the harness's probe sockets
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2, warnings="ignore")


if __name__ == "__main__":
    main()
