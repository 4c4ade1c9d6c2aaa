"""The /metrics endpoint after a known sequence of requests: exact values, valid format."""
import json
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.request
import warnings

from greylightd_harness import T, Daemon, free_port, request

BINARY = os.environ.get("GREYLIGHTD", "build/src/greylightd")


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return response.read().decode()


def sample(text, name, labels=""):
    pattern = r"(?m)^" + re.escape(name + (("{" + labels + "}") if labels else "")) + r" (\S+)$"
    match = re.search(pattern, text)
    assert match, f"{name}{{{labels}}} not found in:\n{text}"
    return float(match.group(1))


class MetricsTest(unittest.TestCase):
    def test_counters_after_known_sequence(self):
        port = free_port()
        d = Daemon(BINARY, [f"--metrics-listen=127.0.0.1:{port}", "--auto-whitelist-clients=1"])
        self.addCleanup(d.cleanup)
        d.start()
        c = d.client()
        c.ask(request(policy_test_time=T))                                  # greylist new
        c.ask(request(policy_test_time=T + 100))                            # early retry
        c.ask(request(policy_test_time=T + 200))                            # early retry
        c.ask(request(policy_test_time=T + 420))                            # first pass, 420 s
        c.ask(request(policy_test_time=T + 500, client_address="198.51.100.9"))  # new (other network)
        c.ask(request(policy_test_time=T + 600, recipient="x@example.org"))  # client AWL (threshold 1)
        c.ask(request(policy_test_time=T + 700, client_name=None))          # attribute missing
        c.ask(request(policy_test_time=T + 800, client_address="bogus"))    # bad address
        bad = d.client()
        bad.send("garbage\n\n")
        self.assertTrue(bad.closed_without_reply())
        text = scrape(port)

        def requests(action, reason):
            return sample(text, "greylight_requests_total", f'action="{action}",reason="{reason}"')

        self.assertEqual(requests("greylist", "new"), 2)
        self.assertEqual(requests("greylist", "early-retry"), 2)
        self.assertEqual(requests("pass", "triplet found"), 1)  # the first pass
        self.assertEqual(requests("pass", "client AWL"), 1)
        self.assertEqual(requests("dunno", "attribute missing"), 1)
        self.assertEqual(requests("dunno", "bad client address"), 1)
        self.assertEqual(requests("dunno", "store error"), 0)
        self.assertEqual(sample(text, "greylight_retry_delay_seconds_count"), 1)
        self.assertEqual(sample(text, "greylight_retry_delay_seconds_sum"), 420)
        self.assertEqual(sample(text, "greylight_retry_delay_seconds_bucket", 'le="300"'), 0)
        self.assertEqual(sample(text, "greylight_retry_delay_seconds_bucket", 'le="600"'), 1)
        self.assertEqual(sample(text, "greylight_decision_seconds_count"), 8)
        self.assertEqual(sample(text, "greylight_clients_auto_whitelisted_total"), 1)
        self.assertEqual(sample(text, "greylight_protocol_errors_total"), 1)
        self.assertEqual(sample(text, "greylight_open_connections"), 1)
        # Record counts come from committed data: wait (bounded) for the group commit.
        deadline = time.monotonic() + 5
        while sample(text, "greylight_triplets_stored") != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            text = scrape(port)
        self.assertEqual(sample(text, "greylight_triplets_stored"), 2)
        self.assertEqual(sample(text, "greylight_clients_stored"), 1)

        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

        # Every metric the shipped Grafana dashboard queries is exposed.
        dashboard = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "grafana-dashboard.json")
        with open(dashboard) as f:
            exprs = [t["expr"] for p in json.load(f)["panels"] for t in p["targets"]]
        exposed = set(re.findall(r"(?m)^(greylight_\w+)", text))
        for name in sorted({n for e in exprs for n in re.findall(r"greylight_\w+", e)}):
            self.assertIn(name, exposed, f"dashboard queries {name}")

        with self.assertRaises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        self.assertEqual(missing.exception.code, 404)

    def test_greytrap_counters(self):
        port = free_port()
        d = Daemon(BINARY, [f"--metrics-listen=127.0.0.1:{port}"])
        traps = os.path.join(d.tmp.name, "traps")
        with open(traps, "w") as f:
            f.write("spamtrap@example.org\n")
        d.args.append(f"--greytrap-recipients={traps}")
        self.addCleanup(d.cleanup)
        d.start()
        c = d.client()
        c.ask(request(policy_test_time=T, recipient="spamtrap@example.org"))  # hit
        c.ask(request(policy_test_time=T + 10))                               # trapped
        c.ask(request(policy_test_time=T + 20, client_address="198.51.100.9"))  # new
        text = scrape(port)
        self.assertEqual(sample(text, "greylight_requests_total", 'action="greylist",reason="greytrap"'), 2)
        self.assertEqual(sample(text, "greylight_requests_total", 'action="greylist",reason="new"'), 1)
        self.assertEqual(sample(text, "greylight_greytrap_hits_total"), 1)
        deadline = time.monotonic() + 5
        while sample(text, "greylight_traps_stored") != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
            text = scrape(port)
        self.assertEqual(sample(text, "greylight_traps_stored"), 1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        BINARY = sys.argv.pop(1)
    warnings.simplefilter("ignore", ResourceWarning)
    unittest.main(verbosity=2, warnings="ignore")
