"""Two greylightd instances sharing one real redis-server; a Redis outage (issue 4).

redis-server is started on a free loopback port and stopped by PID. Every wait is bounded."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from greylightd_harness import T, Daemon, free_port, request

BINARY = os.environ.get("GREYLIGHTD", "build/src/greylightd")
GREY = "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"


def figure(text):
    print(f"figure: {text}", flush=True)


class Redis:
    def __init__(self, port=None):
        if not shutil.which("redis-server"):
            raise AssertionError("redis-server is not installed (scripts/install-deps.sh test)")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="greylight-redis-")
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def command(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip()

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisTest(unittest.TestCase):
    def setUp(self):
        self.redis = Redis().start()
        self.addCleanup(self.redis.cleanup)

    def daemon(self, *args):
        d = Daemon(BINARY, [f"--store=redis://127.0.0.1:{self.redis.port}", *args])
        self.addCleanup(d.cleanup)
        return d.start()

    def test_two_instances_share_state(self):
        mx1, mx2 = self.daemon(), self.daemon()
        c1, c2 = mx1.client(), mx2.client()
        self.assertEqual(c1.ask(request(policy_test_time=T)), GREY)
        self.assertEqual(c2.ask(request(policy_test_time=T + 60)), GREY)
        self.assertIn("early-retry (240s missing)", mx2.log_text())
        # The first retry after the delay reaches both MX hosts at once: exactly one of them
        # sees the first acceptance (header, auto-whitelist count), the other a passed triplet.
        replies = {}

        def ask(name, client):
            replies[name] = client.ask(request(policy_test_time=T + 300, instance=f"{name}-msg"))

        threads = [threading.Thread(target=ask, args=("mx1", c1)), threading.Thread(target=ask, args=("mx2", c2))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        self.assertEqual(sorted(r.split()[0] for r in replies.values()), ["DUNNO", "PREPEND"], replies)
        self.assertEqual(self.redis.command("GET", "greylight:c:192.0.2.10"), "1,1800000300")
        self.assertEqual(self.redis.command("GET", "greylight:t:192.0.2.0/alice@example.net/bob@example.org"),
                         "1800000000,1800000300")
        ttl = int(self.redis.command("TTL", "greylight:t:192.0.2.0/alice@example.net/bob@example.org"))
        self.assertGreater(ttl, 34 * 86400)

    def test_greytrap_hit_on_one_mx_traps_the_client_on_the_other(self):
        traps = os.path.join(self.redis.dir, "traps")
        with open(traps, "w") as f:
            f.write("spamtrap@example.org\n")
        mx1 = self.daemon(f"--greytrap-recipients={traps}", "--greytrap-ttl=3600")
        mx2 = self.daemon(f"--greytrap-recipients={traps}", "--greytrap-ttl=3600")
        c1, c2 = mx1.client(), mx2.client()
        self.assertEqual(c2.ask(request(policy_test_time=T)), GREY)
        self.assertEqual(c1.ask(request(policy_test_time=T + 10, recipient="spamtrap@example.org")), GREY)
        self.assertEqual(self.redis.command("GET", "greylight:g:192.0.2.10"), "1800003610,1800000010")
        ttl = int(self.redis.command("TTL", "greylight:g:192.0.2.10"))
        self.assertTrue(3500 < ttl <= 3601, ttl)
        # On the other MX the retry after the delay is still greylisted: the client is trapped.
        self.assertEqual(c2.ask(request(policy_test_time=T + 300)), GREY)
        self.assertIn("action=greylist, reason=greytrap", mx2.log_text())
        self.assertTrue(c2.ask(request(policy_test_time=T + 3610)).startswith("PREPEND"))

    def test_store_prefix_keeps_sites_apart(self):
        a = self.daemon("--store-prefix=siteA:")
        b = self.daemon("--store-prefix=siteB:")
        a.client().ask(request(policy_test_time=T))
        self.assertTrue(a.client().ask(request(policy_test_time=T + 300)).startswith("PREPEND"))
        self.assertEqual(b.client().ask(request(policy_test_time=T + 301)), GREY)

    def test_redis_outage_fails_open_and_recovers(self):
        d = self.daemon("--store-timeout=200")
        c = d.client()
        self.assertEqual(c.ask(request(policy_test_time=T)), GREY)
        self.redis.kill()
        latencies = []
        for i in range(50):
            t0 = time.monotonic()
            self.assertEqual(c.ask(request(recipient=f"o{i}@example.org", policy_test_time=T)), "DUNNO")
            latencies.append(time.monotonic() - t0)
        self.assertIsNone(d.process.poll(), "greylightd must survive a Redis outage")
        self.assertLess(max(latencies), 1.0)
        log = d.log_text()
        self.assertIn("store error, answering DUNNO", log)
        self.assertLessEqual(log.count("store error, answering DUNNO"), 3, "warnings are rate-limited")
        # Redis returns on the same port (empty): greylisting resumes without a restart.
        restarted = Redis(self.redis.port)
        self.addCleanup(restarted.cleanup)
        restarted.start()
        deadline = time.monotonic() + 15
        reply = None
        while time.monotonic() < deadline:
            reply = c.ask(request(recipient="back@example.org", policy_test_time=T))
            if reply == GREY:
                break
            time.sleep(0.1)
        self.assertEqual(reply, GREY)
        figure(f"Redis killed: 50 requests answered DUNNO, max {max(latencies)*1000:.1f} ms; "
               f"greylisting resumed after restart; daemon alive")


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2, warnings="ignore")
