"""Limits, access control and hostile peers against the real greylightd (issue 7).

Every loop is bounded in count and time; loopback only. Figures printed with "figure:" are
collected into docs/reliability.md.
"""
import os
import random
import resource
import socket
import sys
import threading
import time
import unittest
import warnings

import netns
from greylightd_harness import T, Daemon, free_port, request

BINARY = os.environ.get("GREYLIGHTD", "build/src/greylightd")
GREY = "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"


def figure(text):
    print(f"figure: {text}", flush=True)


class LimitsTest(unittest.TestCase):
    def daemon(self, *args, **kwargs):
        d = Daemon(BINARY, args, **kwargs)
        self.addCleanup(d.cleanup)
        return d

    def test_allow_from_refuses_other_networks_at_accept(self):
        # Ready once it accepts (and closes) a connection; no fixed sleep, which a loaded
        # machine (ASan) outlasted.
        d = self.daemon("--allow-from=10.0.0.0/8").start()
        c = d.client()
        self.assertTrue(c.closed_without_reply())
        self.assertIn("refused connection from [127.0.0.1]", d.log_text())
        ok = self.daemon("--allow-from=10.0.0.0/8", "--allow-from=127.0.0.0/8").start()
        self.assertEqual(ok.client().ask(request(policy_test_time=T)), GREY)

    def remote_host(self):
        """A second host in a network namespace: the per-peer limit applies to remote
        peers only, and every loopback address is local."""
        if not netns.available():
            self.fail("needs root and `ip netns` (iproute2) for a non-loopback peer")
        host = netns.RemoteHost().__enter__()
        self.addCleanup(host.__exit__, None, None, None)
        return host

    def test_connections_per_peer_limit(self):
        remote = self.remote_host()
        port = free_port(host=remote.gateway)
        d = self.daemon("--max-connections-per-peer=5", f"--inet={remote.gateway}:{port}").start()
        payload = request(policy_test_time=T)
        first, held = remote.open_connections(remote.gateway, port, 5, payload)
        self.addCleanup(held.release)
        self.assertEqual(first, {"answered": 5, "refused": 0})
        extra, extra_held = remote.open_connections(remote.gateway, port, 1, payload)
        extra_held.release()
        self.assertEqual(extra, {"answered": 0, "refused": 1})
        self.assertIn(f"refused connection from [{remote.address}]", d.log_text())
        self.assertIn("connections from this address (--max-connections-per-peer)", d.log_text())
        # Loopback peers are not counted per address: more than 5 are served meanwhile.
        local = [d.client() for _ in range(8)]
        for c in local:
            self.assertEqual(c.ask(payload), GREY)
        held.release()
        time.sleep(0.3)
        again, again_held = remote.open_connections(remote.gateway, port, 1, payload)
        again_held.release()
        self.assertEqual(again, {"answered": 1, "refused": 0})

    def test_a_local_postfix_is_never_refused_but_a_remote_peer_is_bounded(self):
        # A busy Postfix on the same host: 2,000 smtpd processes, each with its own
        # connection from 127.0.0.1, all open at once, with default options.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 2300:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        remote = self.remote_host()
        port = free_port(host=remote.gateway)
        d = self.daemon(f"--inet={remote.gateway}:{port}").start()
        smtpd = []
        for i in range(2000):
            c = d.client()
            self.assertEqual(c.ask(request(recipient=f"u{i % 50}@example.org",
                                           policy_test_time=T)), GREY, f"connection {i + 1}")
            smtpd.append(c)
        for c in smtpd[::100]:  # all still served
            self.assertEqual(c.ask(request(policy_test_time=T)), GREY)
        self.assertNotIn("refused connection", d.log_text())
        # An attacker's connections from one remote address stop at the default 1,000.
        tally, held = remote.open_connections(remote.gateway, port, 1010,
                                              request(policy_test_time=T))
        self.addCleanup(held.release)
        self.assertEqual(tally, {"answered": 1000, "refused": 10})
        self.assertIn(f"refused connection from [{remote.address}]", d.log_text())
        self.assertEqual(smtpd[0].ask(request(policy_test_time=T)), GREY)
        figure("2000 loopback connections served with default options; a remote peer "
               "stopped at 1000 (--max-connections-per-peer)")
        held.release()
        for c in smtpd:
            c.close()

    def test_trickling_peer_is_dropped_at_request_deadline(self):
        d = self.daemon("--request-timeout=1").start()
        slow = d.client()
        normal = d.client()
        started = time.monotonic()
        payload = request(policy_test_time=T).encode()
        closed = False
        for byte in payload[:-1]:  # one byte every 0.1 s: never completes within 1 s
            try:
                slow.send(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - started > 5:
                break
        if not closed:
            self.assertTrue(slow.closed_without_reply())
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 5)
        self.assertEqual(normal.ask(request(policy_test_time=T)), GREY)
        self.assertRegex(d.log_text(), r"request from \[127\.0\.0\.1\]:\d+ not completed within 1s")
        figure(f"slow-drip peer dropped after {elapsed:.1f}s (request timeout 1s)")

    def test_thousand_idle_connections_and_a_normal_client(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 2200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        d = self.daemon("--max-connections-per-peer=2000").start()
        idle = []
        for _ in range(1000):
            idle.append(d.client())
        normal = d.client()
        latencies = []
        for i in range(200):
            t0 = time.monotonic()
            self.assertEqual(normal.ask(request(recipient=f"n{i}@example.org", policy_test_time=T)), GREY)
            latencies.append(time.monotonic() - t0)
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        self.assertLess(latencies[-1], 2.0)
        figure(f"1000 idle connections held; normal client p99 {p99:.2f} ms, max {latencies[-1]*1000:.2f} ms over 200 requests")
        for c in idle[:10]:  # the idle ones still work
            self.assertEqual(c.ask(request(policy_test_time=T)), GREY)
        for c in idle:
            c.close()

    def test_random_and_malformed_streams_on_many_connections(self):
        d = self.daemon().start()
        seed = int(os.environ.get("GREYLIGHT_SEED", "1234"))
        rng = random.Random(seed)
        figure(f"hostile stream seed {seed} (set GREYLIGHT_SEED to vary)")
        payloads = []
        base = request(policy_test_time=T).encode()
        for i in range(300):
            kind = i % 6
            if kind == 0:
                payloads.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4000))))
            elif kind == 1:  # a valid request with random bytes flipped
                b = bytearray(base)
                for _ in range(rng.randint(1, 10)):
                    b[rng.randrange(len(b))] = rng.getrandbits(8)
                payloads.append(bytes(b))
            elif kind == 2:  # invalid UTF-8 in values
                payloads.append(request(sender="\udcff", policy_test_time=T).encode("utf-8", "surrogateescape").replace(b"\\udcff", b"\xff\xfe"))
            elif kind == 3:  # oversized value
                payloads.append(b"request=smtpd_access_policy\nsender=" + b"A" * rng.randint(9000, 70000) + b"\n\n")
            elif kind == 4:  # NUL bytes
                payloads.append(base.replace(b"alice", b"al\x00ice"))
            else:  # many attributes
                payloads.append(b"".join(b"a%d=1\n" % j for j in range(500)) + b"\n")
        errors = []

        def hostile(chunk):
            for p in chunk:
                try:
                    c = d.client()
                    c.sock.settimeout(5)
                    c.send(p)
                    c.sock.shutdown(socket.SHUT_WR)
                    while c.sock.recv(65536):
                        pass
                    c.close()
                except OSError:
                    pass
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))

        threads = [threading.Thread(target=hostile, args=(payloads[i::20],)) for i in range(20)]
        for t in threads:
            t.start()
        normal = d.client()
        answered = 0
        while any(t.is_alive() for t in threads) and answered < 2000:
            self.assertEqual(normal.ask(request(policy_test_time=T)), GREY)
            answered += 1
        for t in threads:
            t.join(60)
        self.assertIsNone(d.process.poll(), "daemon must survive hostile input")
        self.assertEqual(normal.ask(request(policy_test_time=T)), GREY)
        self.assertEqual(errors, [])
        figure(f"{len(payloads)} hostile streams on 20 parallel connections; daemon alive, {answered} normal requests answered meanwhile")


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        BINARY = sys.argv.pop(1)
    warnings.simplefilter("ignore", ResourceWarning)
    unittest.main(verbosity=2, warnings="ignore")
