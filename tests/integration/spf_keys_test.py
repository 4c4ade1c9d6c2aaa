"""SPF keys (--spf-keys) and SRS senders against the real greylightd, its real SPF checker
(c-ares) and a real unbound serving SPF records on a loopback port (issue 16).

usage: spf_keys_test.py GREYLIGHTD GREYLIGHT"""
import os
import socket
import subprocess
import sys
import unittest
import urllib.request

from greylightd_harness import T, Daemon, free_port, request
from reputation_test import Unbound, udp_free_port

GREYLIGHTD = os.environ.get("GREYLIGHTD", "build/src/greylightd")
GREYLIGHT = os.environ.get("GREYLIGHT", "build/src/greylight")
GREY = "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"

# grouped.test authorises two /24 networks through an include and an "a" mechanism;
# open.test authorises everyone ("+all", a pass too broad to stand for one sender);
# mx.grouped.test is a HELO name with its own record (for the null sender).
ZONES = [
    'local-zone: "ready.test." static', 'local-data: "ready.test. 60 IN A 127.0.0.1"',
    'local-zone: "grouped.test." static',
    "local-data: 'grouped.test. 300 IN TXT \"v=spf1 include:_spf.grouped.test a:out.grouped.test -all\"'",
    "local-data: '_spf.grouped.test. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"'",
    'local-data: "out.grouped.test. 300 IN A 198.51.100.20"',
    'local-data: "out.grouped.test. 300 IN A 198.51.100.21"',
    "local-data: 'mx.grouped.test. 300 IN TXT \"v=spf1 a -all\"'",
    'local-data: "mx.grouped.test. 300 IN A 192.0.2.30"',
    'local-data: "mx.grouped.test. 300 IN A 198.51.100.30"',
    'local-zone: "open.test." static',
    "local-data: 'open.test. 300 IN TXT \"v=spf1 +all\"'",
]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


class SpfKeysTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = Unbound(ZONES)

    @classmethod
    def tearDownClass(cls):
        cls.dns.cleanup()

    def daemon(self, *args, servers=None):
        servers = servers or f"127.0.0.1:{self.dns.port}"
        d = Daemon(GREYLIGHTD, ("--whitelist-clients=/dev/null", "--whitelist-recipients=/dev/null",
                                "--spf-keys", f"--dns-servers={servers}", "--dns-timeout=2000")
                   + args)
        self.addCleanup(d.cleanup)
        return d.start()

    def test_a_retry_from_another_authorised_network_passes_as_one_client(self):
        metrics = free_port()
        d = self.daemon(f"--metrics-listen=127.0.0.1:{metrics}")
        c = d.client()
        first = dict(sender="alice@grouped.test", client_name="unknown")
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="192.0.2.10", **first)),
                         GREY)
        # Too early from a third address the domain authorises: the same pending triplet.
        self.assertEqual(c.ask(request(policy_test_time=T + 100, client_address="198.51.100.21",
                                       **first)), GREY)
        # The retry after the delay, from another network of the domain, passes.
        self.assertTrue(c.ask(request(policy_test_time=T + 300, client_address="198.51.100.20",
                                      instance="i2", **first)).startswith("PREPEND X-Greylist"))
        # An address the domain does not authorise is keyed by its subnet, as without SPF.
        self.assertEqual(c.ask(request(policy_test_time=T + 400, client_address="203.0.113.5",
                                       instance="i3", **first)), GREY)
        log = d.log_text()
        self.assertIn("action=greylist, reason=new, group=spf:grouped.test, spf=pass grouped.test, "
                      "client_name=unknown, client_address=192.0.2.10", log)
        self.assertIn("action=greylist, reason=early-retry (200s missing), group=spf:grouped.test", log)
        self.assertIn("action=pass, reason=triplet found, delay=300, group=spf:grouped.test", log)
        self.assertIn("action=greylist, reason=new, spf=fail grouped.test, client_name=unknown, "
                      "client_address=203.0.113.5", log)
        text = scrape(metrics)
        self.assertIn('greylight_spf_checks_total{result="pass"} 3', text)
        self.assertIn('greylight_spf_checks_total{result="fail"} 1', text)
        self.assertEqual(d.stop(), 0)

        # The tool finds the record by its SPF key, and explain asks SPF as the daemon does.
        tool = [GREYLIGHT, f"--dbdir={d.dbdir}", "--whitelist-clients=/dev/null",
                "--whitelist-recipients=/dev/null", "--spf-keys",
                f"--dns-servers=127.0.0.1:{self.dns.port}"]
        listed = subprocess.run(tool[:1] + ["list"] + tool[1:], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("spf:grouped.test", listed.stdout)
        explained = subprocess.run(
            tool[:1] + ["explain"] + tool[1:] + [
                "--client-address=198.51.100.21", "--client-name=unknown",
                "--sender=alice@grouped.test", "--recipient=bob@example.org", f"--at={T + 500}"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(explained.returncode, 0, explained.stderr)
        self.assertIn("SPF: pass grouped.test, by a:out.grouped.test in grouped.test's record: "
                      "the client is keyed by the domain (spf:grouped.test)", explained.stdout)
        self.assertIn("decision: pass (triplet found)", explained.stdout)

    def test_a_plus_all_domain_does_not_group(self):
        d = self.daemon()
        c = d.client()
        spammer = dict(sender="offer@open.test", client_name="unknown")
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="192.0.2.10", **spammer)),
                         GREY)
        self.assertEqual(c.ask(request(policy_test_time=T + 300, client_address="198.51.100.20",
                                       **spammer)), GREY)
        log = d.log_text()
        self.assertIn("action=greylist, reason=new, spf=pass open.test (broad), client_name=unknown, "
                      "client_address=198.51.100.20", log)
        self.assertNotIn("group=", log)

    def test_the_null_sender_is_checked_for_the_helo_name(self):
        d = self.daemon()
        c = d.client()
        bounce = dict(sender="", helo_name="mx.grouped.test", client_name="unknown")
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="192.0.2.30", **bounce)),
                         GREY)
        self.assertTrue(c.ask(request(policy_test_time=T + 300, client_address="198.51.100.30",
                                      **bounce)).startswith("PREPEND"))
        self.assertIn("group=spf:mx.grouped.test, spf=pass mx.grouped.test", d.log_text())

    def test_srs_senders_are_keyed_by_the_original_sender(self):
        d = self.daemon()
        c = d.client()
        # The forwarder (grouped.test) passes SPF; its hash and timestamp change between
        # the two attempts (a new day), the original sender does not.
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="192.0.2.10",
                                       sender="SRS0=dV4c=3F=example.net=carol@grouped.test")), GREY)
        self.assertTrue(c.ask(request(policy_test_time=T + 300, client_address="198.51.100.20",
                                      sender="SRS0=Qw7T=3G=example.net=carol@grouped.test"))
                        .startswith("PREPEND"))
        self.assertIn("spf=pass grouped.test", d.log_text())

    def test_dns_trouble_falls_back_to_the_lookup_by_key(self):
        # A resolver that takes queries and never answers: every check times out.
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        self.addCleanup(silent.close)
        cases = [
            # A domain the resolver refuses (REFUSED): temperror.
            (None, "alice@nowhere.example", "spf=temperror nowhere.example (DNS error"),
            # Nothing listens on the port (ICMP unreachable): temperror at once.
            (f"127.0.0.1:{udp_free_port()}", "alice@grouped.test",
             "spf=temperror grouped.test (DNS error"),
            (f"127.0.0.1:{silent.getsockname()[1]}", "alice@grouped.test",
             "spf=temperror grouped.test (timeout)"),
        ]
        for servers, sender, logged in cases:
            d = self.daemon("--dns-timeout=300", servers=servers)
            c = d.client()
            attempt = dict(sender=sender, client_name="unknown")
            self.assertEqual(c.ask(request(policy_test_time=T, client_address="192.0.2.10",
                                           **attempt)), GREY)
            # Another network is another client; the same network retries as with postgrey.
            self.assertEqual(c.ask(request(policy_test_time=T + 300, client_address="198.51.100.20",
                                           **attempt)), GREY)
            self.assertTrue(c.ask(request(policy_test_time=T + 300, client_address="192.0.2.11",
                                          instance="i2", **attempt)).startswith("PREPEND"))
            log = d.log_text()
            self.assertIn(logged, log)
            self.assertNotIn("group=", log)
            self.assertIsNone(d.process.poll())

if __name__ == "__main__":
    if len(sys.argv) > 2 and not sys.argv[1].startswith("-"):
        GREYLIGHT = sys.argv.pop(2)
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        GREYLIGHTD = sys.argv.pop(1)
    unittest.main(verbosity=2, warnings="ignore")
