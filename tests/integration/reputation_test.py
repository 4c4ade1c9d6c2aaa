"""Sender-pool grouping (--lookup-by) and DNS lists (--dnswl, --dnsbl) against the real
greylightd and a real unbound serving test zones on a loopback port (issue 9)."""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

from greylightd_harness import T, Daemon, free_port, request, run

BINARY = os.environ.get("GREYLIGHTD", "build/src/greylightd")
GREY = "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"


def udp_free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dns_free_port():
    """A loopback port free for UDP and TCP: unbound listens on both."""
    for _ in range(50):
        port = udp_free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no loopback port free for both UDP and TCP")


class Unbound:
    """unbound on 127.0.0.1 answering only the given local data; everything else refused."""

    def __init__(self, local_lines):
        unbound = shutil.which("unbound") or "/usr/sbin/unbound"
        if not os.path.exists(unbound):
            raise AssertionError("unbound is not installed (scripts/install-deps.sh test)")
        self.dir = tempfile.mkdtemp(prefix="greylight-unbound-")
        # Another test may take the port between the check and unbound's bind, and a busy
        # machine may start it slowly: a few attempts, each on a fresh port.
        for _attempt in range(3):
            self.port = dns_free_port()
            config = os.path.join(self.dir, "unbound.conf")
            with open(config, "w") as f:
                f.write("server:\n  interface: 127.0.0.1\n  port: %d\n  do-ip6: no\n"
                        "  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"%s\"\n"
                        "  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  num-threads: 1\n"
                        "  so-reuseport: no\n  access-control: 127.0.0.0/8 allow\n"
                        "  module-config: \"iterator\"\n  outgoing-interface: 127.0.0.1\n"
                        "  do-not-query-localhost: yes\n  local-zone: \".\" refuse\n"
                        % (self.port, self.dir) + "".join(f"  {l}\n" for l in local_lines) +
                        "remote-control:\n  control-enable: no\n")
            self.process = subprocess.Popen([unbound, "-d", "-c", config], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                if self.answers():
                    return
                time.sleep(0.05)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
        raise AssertionError("unbound did not start")

    def answers(self):
        query = struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\x05ready\x04test\x00\x00\x01\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(query, ("127.0.0.1", self.port))
                return len(s.recv(512)) > 12
            except OSError:
                return False

    def cleanup(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class ReputationTest(unittest.TestCase):
    def daemon(self, *args):
        # Empty whitelists: the shipped ones list the big providers these tests group.
        d = Daemon(BINARY, ("--whitelist-clients=/dev/null", "--whitelist-recipients=/dev/null") + args)
        self.addCleanup(d.cleanup)
        return d.start()

    def test_smart_grouping_passes_a_retry_from_another_address_of_the_provider(self):
        d = self.daemon("--lookup-by=smart")
        c = d.client()
        first = dict(client_address="209.85.221.41", client_name="mail-wr1-f41.google.com")
        other = dict(client_address="209.85.208.54", client_name="mail-ed1-f54.google.com")
        self.assertEqual(c.ask(request(policy_test_time=T, **first)), GREY)
        # The retry comes from another address (another /24) of the same provider's pool.
        self.assertTrue(c.ask(request(policy_test_time=T + 300, **other)).startswith("PREPEND"))
        # A generic residential name and an unverified client are keyed by their subnet.
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="203.0.113.5",
                                       client_name="203-0-113-5.dsl.example.net")), GREY)
        self.assertEqual(c.ask(request(policy_test_time=T + 300, client_address="203.0.114.5",
                                       client_name="203-0-114-5.dsl.example.net")), GREY)
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="198.51.100.7",
                                       client_name="unknown")), GREY)
        log = d.log_text()
        self.assertIn("group=domain:google.com", log)
        self.assertIn("group=203.0.113.0 (", log)

    def test_subnet_default_does_not_group(self):
        d = self.daemon()
        c = d.client()
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="209.85.221.41",
                                       client_name="mail-wr1-f41.google.com")), GREY)
        self.assertEqual(c.ask(request(policy_test_time=T + 300, client_address="209.85.208.54",
                                       client_name="mail-ed1-f54.google.com")), GREY)
        self.assertNotIn("group=", d.log_text())

    def test_dns_lists(self):
        dns = Unbound([
            'local-zone: "ready.test." static', 'local-data: "ready.test. 60 IN A 127.0.0.1"',
            'local-zone: "wl.test." static', 'local-data: "10.2.0.192.wl.test. 300 IN A 127.0.0.2"',
            'local-zone: "bl.test." static', 'local-data: "20.2.0.192.bl.test. 300 IN A 127.0.0.2"',
            'local-data: "21.2.0.192.bl.test. 300 IN A 127.0.0.9"',
        ])
        self.addCleanup(dns.cleanup)
        d = self.daemon(f"--dns-servers=127.0.0.1:{dns.port}", "--dnswl=wl.test",
                        "--dnsbl=bl.test=127.0.0.2", "--greylist-only-listed", "--dns-timeout=500")
        c = d.client()
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="192.0.2.10")), "DUNNO")
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="192.0.2.20")), GREY)
        # Listed with a code the list option does not accept: not listed, passed.
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="192.0.2.21")), "DUNNO")
        self.assertEqual(c.ask(request(policy_test_time=T, client_address="192.0.2.30")), "DUNNO")
        log = d.log_text()
        self.assertIn("action=pass, reason=dnswl, client_name=mail.example.net, client_address=192.0.2.10", log)
        self.assertIn("action=greylist, reason=new, client_name=mail.example.net, client_address=192.0.2.20", log)
        self.assertIn("action=pass, reason=not listed, client_name=mail.example.net, client_address=192.0.2.30", log)

    def test_explain_runs_the_daemons_steps_dns_lists_included(self):
        # explain and greylightd with the same options, the same store and the same lists:
        # for each request explain's predicted action is what the daemon then answers.
        dns = Unbound([
            'local-zone: "ready.test." static', 'local-data: "ready.test. 60 IN A 127.0.0.1"',
            'local-zone: "wl.test." static', 'local-data: "10.2.0.192.wl.test. 300 IN A 127.0.0.2"',
            'local-zone: "bl.test." static', 'local-data: "20.2.0.192.bl.test. 300 IN A 127.0.0.2"',
            'local-data: "21.2.0.192.bl.test. 300 IN A 127.0.0.9"',
        ])
        self.addCleanup(dns.cleanup)
        options = ["--whitelist-clients=/dev/null", "--whitelist-recipients=/dev/null",
                   f"--dns-servers=127.0.0.1:{dns.port}", "--dnswl=wl.test",
                   "--dnsbl=bl.test=127.0.0.2", "--greylist-only-listed", "--dns-timeout=500"]
        d = Daemon(BINARY, options + ["--commit-interval=0"])
        self.addCleanup(d.cleanup)
        d.start()
        tool = os.path.join(os.path.dirname(os.path.abspath(BINARY)), "greylight")
        c = d.client()
        steps = [("192.0.2.10", 0, "dnswl"), ("192.0.2.20", 0, "greylist (new"),
                 ("192.0.2.20", 60, "greylist (early-retry"), ("192.0.2.20", 300, "triplet found"),
                 ("192.0.2.21", 0, "not listed"), ("192.0.2.30", 0, "not listed")]
        for address, offset, reason in steps:
            explained = subprocess.run(
                [tool, "explain", f"--client-address={address}", "--client-name=mail.example.net",
                 "--sender=alice@example.net", "--recipient=bob@example.org",
                 f"--at={T + offset}", f"--dbdir={d.dbdir}", *options],
                capture_output=True, text=True, timeout=30)
            self.assertEqual(explained.returncode, 0, explained.stderr)
            predicted = explained.stdout.strip().splitlines()[-1][len("action="):]
            answered = c.ask(request(policy_test_time=T + offset, client_address=address))
            # The header's date is the real time of each: compare up to it.
            self.assertEqual(predicted.split(";")[0], answered.split(";")[0],
                             f"{address} at T+{offset}:\n{explained.stdout}")
            self.assertIn(reason, explained.stdout)
            self.assertIn("DNS lists:", explained.stdout)
        self.assertIn("allow list wl.test lists the client (127.0.0.2)",
                      subprocess.run([tool, "explain", "--client-address=192.0.2.10",
                                      "--sender=a@example.net", "--recipient=b@example.org",
                                      f"--dbdir={d.dbdir}", *options],
                                     capture_output=True, text=True, timeout=30).stdout)

    def test_dns_failure_never_blocks_mail(self):
        # Nothing answers on this port: every list times out, counts as not listed.
        d = self.daemon(f"--dns-servers=127.0.0.1:{udp_free_port()}", "--dnswl=wl.test",
                        "--dns-timeout=300")
        c = d.client()
        started = time.monotonic()
        self.assertEqual(c.ask(request(policy_test_time=T)), GREY)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertIn("treated as not listed", d.log_text())
        self.assertIsNone(d.process.poll())


class GreytrapTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="greylight-traps-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.traps = os.path.join(self.dir, "traps")
        with open(self.traps, "w") as f:
            f.write("# trap addresses\nspamtrap@example.org\nold-staff@\n")

    def daemon(self, *args, dbdir=None):
        d = Daemon(BINARY, ("--whitelist-clients=/dev/null", "--whitelist-recipients=/dev/null",
                            f"--greytrap-recipients={self.traps}") + args, dbdir=dbdir)
        self.addCleanup(d.cleanup)
        return d.start()

    def test_trap_hit_greylists_every_triplet_until_the_ttl_and_survives_a_restart(self):
        d = self.daemon("--greytrap-ttl=3600", "--auto-whitelist-clients=1")
        c = d.client()
        self.assertEqual(c.ask(request(policy_test_time=T)), GREY)
        self.assertTrue(c.ask(request(policy_test_time=T + 300)).startswith("PREPEND"))
        # Auto-whitelisted after one delivery: a new triplet passes at once.
        self.assertEqual(c.ask(request(policy_test_time=T + 400, recipient="new@example.org")), "DUNNO")
        self.assertEqual(c.ask(request(policy_test_time=T + 500, recipient="old-staff@example.org")), GREY)
        # Trapped: the passed triplet and the auto-whitelist no longer help.
        self.assertEqual(c.ask(request(policy_test_time=T + 600, instance="i2")), GREY)
        self.assertEqual(c.ask(request(policy_test_time=T + 600, recipient="new2@example.org")), GREY)
        # Another address of the same network is not trapped.
        self.assertEqual(c.ask(request(policy_test_time=T + 600, client_address="192.0.2.11",
                                       instance="i3")), "DUNNO")
        log = d.log_text()
        self.assertIn("greytrap hit: mail.example.net[192.0.2.10] sent to old-staff@example.org "
                      f"({self.traps}:3: old-staff@)", log)
        self.assertIn("action=greylist, reason=greytrap, client_name=mail.example.net, "
                      "client_address=192.0.2.10, sender=alice@example.net, recipient=bob@example.org", log)
        self.assertEqual(d.stop(), 0)

        # The trap list is in the database: a restarted daemon still traps, until the ttl ends.
        again = self.daemon("--greytrap-ttl=3600", "--auto-whitelist-clients=1", dbdir=d.dbdir)
        c = again.client()
        self.assertEqual(c.ask(request(policy_test_time=T + 4099, instance="i4")), GREY)
        self.assertEqual(c.ask(request(policy_test_time=T + 4100, instance="i5")), "DUNNO")

    def append_and_reload(self, daemon, line, expected_log):
        """Appends `line` to the trap file, sends SIGHUP and waits (bounded) for `expected_log`."""
        with open(self.traps, "a") as f:
            f.write(line + "\n")
        daemon.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while expected_log not in daemon.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn(expected_log, daemon.log_text())

    def test_sighup_reloads_the_trap_list_and_keeps_it_on_error(self):
        d = self.daemon()
        c = d.client()
        self.assertEqual(c.ask(request(policy_test_time=T)), GREY)
        self.assertTrue(c.ask(request(policy_test_time=T + 300)).startswith("PREPEND"))
        self.append_and_reload(d, "honeypot@example.org", "greytraps reloaded: 3 addresses")
        self.assertEqual(c.ask(request(policy_test_time=T + 400, recipient="honeypot@example.org")), GREY)
        self.assertEqual(c.ask(request(policy_test_time=T + 500, instance="i2")), GREY)
        # A broken file keeps the previous list.
        self.append_and_reload(d, "/unclosed(regex/", "greytraps not reloaded, keeping the previous list")
        self.assertEqual(c.ask(request(policy_test_time=T + 600, client_address="198.51.100.9",
                                       recipient="honeypot@example.org")), GREY)
        self.assertIn("greytrap hit: mail.example.net[198.51.100.9]", d.log_text())
        self.assertIsNone(d.process.poll())

    def test_missing_trap_file_is_a_configuration_error(self):
        result = run(BINARY, "--dbdir=" + os.path.join(self.dir, "db"), "--user=root",
                     "--inet=127.0.0.1:%d" % free_port(),
                     "--greytrap-recipients=" + os.path.join(self.dir, "absent"))
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("can't open greytrap file", result.stderr)
        result = run(BINARY, "--greytrap-ttl=10", "--user=root", "--inet=127.0.0.1:%d" % free_port())
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("--greytrap-ttl", result.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2, warnings="ignore")
