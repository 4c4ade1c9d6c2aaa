"""Reply tracking through the real greylightd: outbound listeners (--outbound-inet,
--outbound-unix) record (recipient, sender) pairs; the replies pass at once on the
greylisting listener (reason reply); the records survive a restart (LMDB) and are shared by
two daemons on one real redis-server. Loopback only, every wait bounded, servers stopped
by PID."""
import os
import signal
import sys
import unittest
import warnings

from greylightd_harness import T, Daemon, PolicyClient, free_port, request
from metrics_test import sample, scrape
from redis_test import Redis

BINARY = os.environ.get("GREYLIGHTD", "build/src/greylightd")
GREY = "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"
MAX_AGE = 35 * 86400


def outbound(t, sender="bob@example.org", recipient="carol@remote.example"):
    """The request Postfix's submission service sends when bob writes to carol."""
    return request(policy_test_time=t, instance=f"out-{t}-{recipient}",
                   client_address="203.0.113.77", client_name="laptop.example.org",
                   sender=sender, recipient=recipient)


def inbound(t, sender="carol@remote.example", recipient="bob@example.org", **changes):
    """Mail from the remote side to bob, on port 25."""
    return request(policy_test_time=t, instance=f"in-{t}-{sender}",
                   client_address="198.51.100.20", client_name="mx.remote.example",
                   sender=sender, recipient=recipient, **changes)


class ReplyTest(unittest.TestCase):
    def daemon(self, *args, **kwargs):
        d = Daemon(BINARY, list(args), **kwargs)
        self.addCleanup(d.cleanup)
        return d

    def test_lmdb_outbound_over_tcp_and_unix_and_a_restart_keeps_replies(self):
        out_port, metrics_port = free_port(), free_port()
        d = self.daemon(f"--outbound-inet=127.0.0.1:{out_port}",
                        f"--metrics-listen=127.0.0.1:{metrics_port}")
        out_socket = os.path.join(d.tmp.name, "outbound.sock")
        d.args.append(f"--outbound-unix={out_socket}")
        d.start()
        self.assertIn(f"Binding to 127.0.0.1:{out_port} (outbound: reply tracking)", d.log_text())
        tcp = PolicyClient(("127.0.0.1", out_port))
        self.assertEqual(tcp.ask(outbound(T)), "DUNNO")
        unix = PolicyClient(out_socket)
        self.assertEqual(unix.ask(outbound(T + 1, recipient="dave@other.example")), "DUNNO")
        self.assertEqual(unix.ask(outbound(T + 2, sender="")), "DUNNO")  # nothing to record
        tcp.close()
        unix.close()
        log = d.log_text()
        self.assertIn("action=record, reason=outbound, client_name=laptop.example.org, "
                      "client_address=203.0.113.77, sender=bob@example.org, "
                      "recipient=carol@remote.example", log)
        self.assertIn("action=dunno, reason=not recorded, ", log)

        c = d.client()
        self.assertEqual(c.ask(inbound(T + 60)), "DUNNO")
        self.assertEqual(c.ask(inbound(T + 60, sender="dave@other.example")), "DUNNO")
        self.assertEqual(c.ask(inbound(T + 60, sender="mallory@remote.example")), GREY)
        c.close()
        self.assertIn("action=pass, reason=reply, client_name=mx.remote.example, "
                      "client_address=198.51.100.20, sender=carol@remote.example, "
                      "recipient=bob@example.org", d.log_text())
        text = scrape(metrics_port)
        self.assertEqual(sample(text, "greylight_replies_recorded_total"), 2)
        self.assertEqual(sample(text, "greylight_reply_passes_total"), 2)
        self.assertEqual(sample(text, "greylight_requests_total",
                                'action="dunno",reason="not recorded"'), 1)
        self.assertEqual(sample(text, "greylight_replies_stored"), 2)

        # A restart (SIGTERM) keeps the records: the reply still passes, until max-age
        # after the last outbound message.
        self.assertEqual(d.stop(), 0)
        d.start()
        c = d.client()
        self.assertEqual(c.ask(inbound(T + MAX_AGE)), "DUNNO")
        self.assertEqual(c.ask(inbound(T + MAX_AGE + 1)), GREY)
        c.close()

    def test_lmdb_commit_per_request_survives_sigkill(self):
        out_port = free_port()
        d = self.daemon("--commit-interval=0", f"--outbound-inet=127.0.0.1:{out_port}").start()
        self.assertEqual(PolicyClient(("127.0.0.1", out_port)).ask(outbound(T)), "DUNNO")
        d.stop(signal.SIGKILL)
        d.start()
        self.assertEqual(d.client().ask(inbound(T + 60)), "DUNNO")

    def test_two_daemons_on_one_redis_share_replies(self):
        redis = Redis().start()
        self.addCleanup(redis.cleanup)
        store = f"--store=redis://127.0.0.1:{redis.port}"
        out_port = free_port()
        # The submission host records; the MX host (no outbound listener) lets replies pass.
        submission = self.daemon(store, f"--outbound-inet=127.0.0.1:{out_port}").start()
        mx = self.daemon(store).start()
        self.assertEqual(PolicyClient(("127.0.0.1", out_port)).ask(outbound(T)), "DUNNO")
        self.assertEqual(PolicyClient(("127.0.0.1", out_port)).ask(outbound(T + 10)), "DUNNO")
        key = "greylight:r:carol@remote.example/bob@example.org"
        self.assertEqual(redis.command("GET", key), f"2,{T + 10}")
        ttl = int(redis.command("TTL", key))
        self.assertTrue(MAX_AGE - 3600 < ttl <= MAX_AGE + 1, ttl)
        c = mx.client()
        self.assertEqual(c.ask(inbound(T + 60)), "DUNNO")
        self.assertEqual(c.ask(inbound(T + 60, sender="mallory@remote.example")), GREY)
        c.close()
        self.assertIn("action=pass, reason=reply", mx.log_text())
        # The greylisting listener of the submission host answers replies too.
        self.assertEqual(submission.client().ask(inbound(T + 70)), "DUNNO")

    def test_redis_down_outbound_requests_fail_open(self):
        redis = Redis().start()
        self.addCleanup(redis.cleanup)
        out_port = free_port()
        d = self.daemon(f"--store=redis://127.0.0.1:{redis.port}", "--store-timeout=200",
                        "--store-error-action=DEFER store trouble",
                        f"--outbound-inet=127.0.0.1:{out_port}").start()
        redis.kill()
        c = PolicyClient(("127.0.0.1", out_port))
        for i in range(3):
            self.assertEqual(c.ask(outbound(T + i)), "DUNNO")  # never the store-error action
        c.close()
        self.assertIn("store error, answering DUNNO", d.log_text())


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        BINARY = sys.argv.pop(1)
    warnings.simplefilter("ignore", ResourceWarning)
    unittest.main(verbosity=2, warnings="ignore")
