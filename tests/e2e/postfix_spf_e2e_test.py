#!/usr/bin/env python3
"""End-to-end test of SPF keys: a real, private Postfix greylisted by the real greylightd
with --spf-keys, whose SPF checks go to a real unbound on loopback (issue 16).

    python3 tests/e2e/postfix_spf_e2e_test.py --greylightd build/src/greylightd [--keep]

The Postfix instance and greylightd are those of postfix_e2e_test.py (private config,
queue and Maildir, loopback only, stopped by PID); unbound is the one of
tests/integration/reputation_test.py, answering only its test zones. The SMTP clients
connect from several loopback networks (127.1.0.0/24, 127.2.0.0/24: Linux routes all of
127.0.0.0/8 to lo), so the retry of a message comes from another /24 than its first
attempt, as a provider's pool retries:
  * example.net authorises both networks (SPF pass): the retry after --delay is delivered,
    with X-Greylist, although it comes from another network;
  * open.example authorises everyone (+all, too broad): the retry is greylisted again;
  * an SRS sender of fwd.example (which authorises both networks) retried with another
    hash and timestamp from the other network is delivered: keyed by the original sender;
  * a domain the resolver refuses (temperror) falls back to the subnet key: a retry from
    another network is greylisted, one from the same /24 delivered.
"""
import argparse
import atexit
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import postfix_e2e_test as e2e  # noqa: E402
from reputation_test import Unbound  # noqa: E402

NETWORK_A = "127.1.0.5"
NETWORK_A_OTHER = "127.1.0.6"  # the same /24 as NETWORK_A
NETWORK_B = "127.2.0.7"
ZONES = [
    'local-zone: "ready.test." static', 'local-data: "ready.test. 60 IN A 127.0.0.1"',
    'local-zone: "example.net." static',
    "local-data: 'example.net. 300 IN TXT \"v=spf1 ip4:127.1.0.0/24 ip4:127.2.0.0/24 -all\"'",
    'local-zone: "open.example." static',
    "local-data: 'open.example. 300 IN TXT \"v=spf1 +all\"'",
    'local-zone: "fwd.example." static',
    "local-data: 'fwd.example. 300 IN TXT \"v=spf1 ip4:127.1.0.0/24 ip4:127.2.0.0/24 -all\"'",
]


def log(message):
    print(f"[e2e-spf] {message}", flush=True)


class SpfGreylightd(e2e.Greylightd):
    """postfix_e2e_test's greylightd, with extra options."""

    def __init__(self, *args, extra_args=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.extra_args = list(extra_args)

    def command(self):
        return super().command() + self.extra_args


class SpfVariant(e2e.Variant):
    def __init__(self, binary, root, delay, dns_port):
        super().__init__("spf", binary, root, delay, unix=False)
        plain = self.greylightd
        self.greylightd = SpfGreylightd(
            binary, os.path.dirname(plain.dbdir), delay, plain.whitelist_clients,
            plain.whitelist_recipients, False,
            extra_args=["--spf-keys", f"--dns-servers=127.0.0.1:{dns_port}", "--dns-timeout=2000"])
        self.greylightd.port = plain.port  # the endpoint Postfix is configured with

    def greylisted(self, sender, local_ip, what):
        status, transcript = e2e.swaks(self.postfix.port, sender, local_ip=local_ip)
        reply = e2e.rcpt_reply(transcript)
        if not reply.startswith("450 4.2.0") or e2e.GREYLIST_TEXT not in reply:
            raise AssertionError(f"{what}: expected '450 4.2.0 ... {e2e.GREYLIST_TEXT}' to RCPT, "
                                 f"got {reply!r} (swaks exit {status})\n{transcript}")
        log(f"  {what} from {local_ip}: {reply}")

    def logged(self, text):
        deadline = time.monotonic() + 5  # decision lines are flushed every 100 ms
        while text not in self.greylightd.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        if text not in self.greylightd.log_text():
            raise AssertionError(f"greylightd did not log {text!r}:\n"
                                 + self.greylightd.log_text()[-3000:])

    def case_spf_pass_groups_the_domains_networks(self):
        first = time.monotonic()
        self.greylisted("alice@example.net", NETWORK_A, "first attempt")
        self.sleep_past_delay(first)
        self.expect_delivered("alice@example.net", "spf-pass", "retry from another network",
                              local_ip=NETWORK_B)
        self.logged("action=pass, reason=triplet found, delay=")
        self.logged("group=spf:example.net, spf=pass example.net")

    def case_plus_all_does_not_group(self):
        first = time.monotonic()
        self.greylisted("offer@open.example", NETWORK_A, "first attempt")
        self.sleep_past_delay(first)
        self.greylisted("offer@open.example", NETWORK_B, "retry from another network")
        self.logged("spf=pass open.example (broad)")

    def case_srs_sender_keyed_by_the_original(self):
        first = time.monotonic()
        self.greylisted("SRS0=dV4c=3F=example.org=carol@fwd.example", NETWORK_A, "first attempt")
        self.sleep_past_delay(first)
        self.expect_delivered("SRS0=Qw7T=3G=example.org=carol@fwd.example", "spf-srs",
                              "retry with a new SRS hash from another network",
                              local_ip=NETWORK_B)
        self.logged("spf=pass fwd.example")

    def case_dns_trouble_falls_back_to_the_subnet(self):
        first = time.monotonic()
        self.greylisted("dave@nowhere.example", NETWORK_A, "first attempt")
        self.sleep_past_delay(first)
        self.greylisted("dave@nowhere.example", NETWORK_B, "retry from another network")
        self.expect_delivered("dave@nowhere.example", "spf-fallback",
                              "retry from the first attempt's /24", local_ip=NETWORK_A_OTHER)
        self.logged("spf=temperror nowhere.example")

    def run_cases(self):
        cases = [self.case_spf_pass_groups_the_domains_networks, self.case_plus_all_does_not_group,
                 self.case_srs_sender_keyed_by_the_original,
                 self.case_dns_trouble_falls_back_to_the_subnet]
        for case in cases:
            label = f"spf: {case.__name__[5:]}"
            log(f"case {label}")
            try:
                case()
                log(f"PASS {label}")
            except Exception as e:  # noqa: BLE001 - every case runs; failures are summed up
                self.failures.append(label)
                log(f"FAIL {label}: {e}")
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
        return self.failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--greylightd", required=True, help="path of the greylightd binary")
    parser.add_argument("--delay", type=int, default=3, help="greylightd --delay (seconds)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    binary = os.path.abspath(args.greylightd)
    if not os.access(binary, os.X_OK):
        print(f"greylightd not executable: {binary}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("this test must run as root (a private Postfix master needs root)", file=sys.stderr)
        return 2
    cleanups = []

    def run_cleanups():
        while cleanups:
            try:
                cleanups.pop()()
            except Exception as e:  # noqa: BLE001
                log(f"cleanup error: {e!r}")

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    atexit.register(run_cleanups)

    e2e.ensure_packages()
    etc_before = e2e.snapshot_tree("/etc/postfix")
    tmp = tempfile.mkdtemp(prefix="greylight-e2e-spf-")
    os.chmod(tmp, 0o755)
    if args.keep:
        log(f"keeping {tmp}")
    else:
        cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))

    dns = Unbound(ZONES)
    cleanups.append(dns.cleanup)
    log(f"unbound on 127.0.0.1:{dns.port}")
    variant = SpfVariant(binary, os.path.join(tmp, "spf"), args.delay, dns.port)
    failures = []
    try:
        variant.setup()
        failures += variant.run_cases()
    except Exception as e:  # noqa: BLE001
        failures.append("spf: setup")
        log(f"FAIL spf: setup: {e}")
        if not isinstance(e, AssertionError):
            traceback.print_exc()
    finally:
        for error in variant.teardown():
            failures.append("spf: teardown")
            log(f"FAIL spf: {error}")
        if failures:
            log(f"greylightd log:\n{variant.greylightd.log_text()[-4000:]}")
            log(f"postfix maillog, tail:\n{variant.postfix.maillog_text()[-4000:]}")
    if e2e.snapshot_tree("/etc/postfix") != etc_before:
        failures.append("/etc/postfix was modified")
    if failures:
        log(f"{len(failures)} failure(s): " + "; ".join(failures))
        return 1
    log("all SPF end-to-end cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
