"""Integration tests: the real greylightd binary over TCP (IPv4, IPv6) and UNIX sockets."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import warnings

from greylightd_harness import T, Daemon, PolicyClient, request, run

BINARY = os.environ.get("GREYLIGHTD", "build/src/greylightd")
GREY = "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html"


class DaemonTest(unittest.TestCase):
    def daemon(self, *args, **kwargs):
        d = Daemon(BINARY, args, **kwargs)
        self.addCleanup(d.cleanup)
        return d

    def test_greylists_then_passes_over_tcp_ipv6_and_unix(self):
        d = self.daemon(inet6=True, unix=True).start()
        for address, client_ip in [(("127.0.0.1", d.port), "192.0.2.10"),
                                   (("::1", d.port6), "2001:db8::1"),
                                   (d.socket_path, "198.51.100.1")]:
            c = d.client(address)
            self.assertEqual(c.ask(request(client_address=client_ip, policy_test_time=T)), GREY)
            self.assertEqual(c.ask(request(client_address=client_ip, policy_test_time=T + 60)), GREY)
            reply = c.ask(request(client_address=client_ip, policy_test_time=T + 300))
            self.assertTrue(reply.startswith("PREPEND X-Greylist: delayed 300 seconds by greylight-"), reply)
            self.assertEqual(c.ask(request(client_address=client_ip, policy_test_time=T + 301)), "DUNNO")
            c.close()
        log = d.log_text()
        self.assertIn("action=greylist, reason=new, client_name=mail.example.net, "
                      "client_address=2001:db8::1, sender=alice@example.net, recipient=bob@example.org", log)
        self.assertIn("action=greylist, reason=early-retry (240s missing)", log)
        self.assertIn("action=pass, reason=triplet found, delay=300", log)
        self.assertEqual(oct(os.stat(d.socket_path).st_mode & 0o777), "0o666")

    def test_pipelined_requests_answered_in_order(self):
        d = self.daemon().start()
        c = d.client()
        batch = "".join(request(recipient=f"r{i}@example.org", policy_test_time=T) for i in range(50))
        batch += request(recipient="r0@example.org", policy_test_time=T + 300)
        c.send(batch)
        replies = [c.read_reply() for _ in range(51)]
        for i in range(50):
            self.assertEqual(replies[i], GREY, i)
        self.assertTrue(replies[50].startswith("PREPEND "))
        # Later batches are parsed into the buffers of the answered requests: each answer
        # is still its own request's (a new instance gets the header, a known one does not).
        for round in range(3):
            batch = "".join(request(recipient=f"r{i}@example.org", instance=f"b{round}-{i}",
                                    policy_test_time=T + 300 + round)
                            for i in range(1 + round * 4, 5 + round * 4))
            batch += request(recipient="new@example.org", policy_test_time=T + 300)
            first = 1 + round * 4
            batch += request(recipient=f"r{first}@example.org", instance=f"b{round}-{first}",
                             policy_test_time=T + 301)
            c.send(batch)
            replies = [c.read_reply() for _ in range(6)]
            for i in range(4):
                self.assertTrue(replies[i].startswith("PREPEND "), (round, i, replies[i]))
            self.assertEqual(replies[4], GREY, round)
            self.assertEqual(replies[5], "DUNNO", round)

    def test_many_concurrent_connections(self):
        d = self.daemon().start()
        clients = [d.client() for _ in range(300)]
        errors = []

        def work(index, c):
            try:
                for j in range(5):
                    r = c.ask(request(recipient=f"c{index}@example.org", policy_test_time=T + j * 400))
                    expected = GREY
                    if j == 0 and r != expected:
                        errors.append((index, j, r))
                    if j == 1 and not r.startswith("PREPEND"):
                        errors.append((index, j, r))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((index, repr(e)))

        threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])

    def test_state_survives_restart(self):
        d = self.daemon().start()
        c = d.client()
        self.assertEqual(c.ask(request(policy_test_time=T)), GREY)
        c.close()
        self.assertEqual(d.stop(), 0)
        d.start()
        c = d.client()
        self.assertTrue(c.ask(request(policy_test_time=T + 300)).startswith("PREPEND"))

    def test_state_survives_restart_with_commit_per_request(self):
        d = self.daemon("--commit-interval=0").start()
        c = d.client()
        self.assertEqual(c.ask(request(policy_test_time=T)), GREY)
        d.stop(signal.SIGKILL)
        d.start()
        self.assertTrue(d.client().ask(request(policy_test_time=T + 300)).startswith("PREPEND"))

    def test_bad_input_closes_only_that_connection(self):
        d = self.daemon("--max-line-length=1024").start()
        good = d.client()
        self.assertEqual(good.ask(request(policy_test_time=T)), GREY)
        cases = {
            "garbage": b"request=smtpd_access_policy\ngarbage line\n\n",
            "oversized": b"sender=" + b"x" * 5000 + b"\n",
            "unknown type": b"request=junk\n\n",
            "nul byte": b"request=smtpd_access_policy\nsender=a\x00b\n\n",
            "binary": bytes(range(256)) * 4,
        }
        for name, payload in cases.items():
            bad = d.client()
            bad.send(payload)
            self.assertTrue(bad.closed_without_reply(), name)
            bad.close()
            self.assertEqual(good.ask(request(policy_test_time=T + 1)), GREY, name)
        log = d.log_text()
        self.assertRegex(log, r"malformed line from \[127\.0\.0\.1\]:\d+: 'garbage line', closing")
        self.assertRegex(log, r"line too long from \[127\.0\.0\.1\]:\d+, closing")
        self.assertIn("unrecognized request type: 'junk'", log)

    def test_unparsable_client_address_answers_dunno_and_keeps_serving(self):
        d = self.daemon().start()
        c = d.client()
        self.assertEqual(c.ask(request(client_address="", policy_test_time=T)), "DUNNO")
        self.assertEqual(c.ask(request(client_address="unknown", policy_test_time=T)), "DUNNO")
        self.assertEqual(c.ask(request(policy_test_time=T)), GREY)
        self.assertIn("can't parse client_address from postfix: unknown", d.log_text())

    def test_pidfile_in_foreground_and_clean_exit(self):
        d = self.daemon()
        pidfile = os.path.join(d.tmp.name, "greylightd.pid")
        d.args.append(f"--pidfile={pidfile}")
        d.start()
        # The listeners are bound before the pid file is written: wait for it, bounded.
        deadline = time.monotonic() + 10
        while not os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.02)
        with open(pidfile) as f:
            self.assertEqual(int(f.read()), d.process.pid)
        c = d.client()
        c.send(request(policy_test_time=T))
        time.sleep(0.2)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(c.read_reply(), GREY)
        self.assertFalse(os.path.exists(pidfile))
        self.assertIn("Server closing!", d.log_text())

    def test_sigterm_with_idle_connections_exits_promptly(self):
        d = self.daemon().start()
        idle = [d.client() for _ in range(20)]
        self.assertEqual(idle[0].ask(request(policy_test_time=T)), GREY)
        started = time.monotonic()
        self.assertEqual(d.stop(), 0)
        self.assertLess(time.monotonic() - started, 3.0)
        for c in idle:
            self.assertTrue(c.closed_without_reply())

    def test_sighup_reloads_whitelists_without_dropping_connections(self):
        d = self.daemon()
        clients_file = os.path.join(d.tmp.name, "whitelist_clients")
        recipients_file = os.path.join(d.tmp.name, "whitelist_recipients")
        with open(clients_file, "w") as f:
            f.write("# initial list\ntrusted.example\n")
        with open(recipients_file, "w") as f:
            f.write("postmaster@\n")
        d.args += [f"--whitelist-clients={clients_file}", f"--whitelist-recipients={recipients_file}"]
        d.start()
        c = d.client()
        self.assertEqual(c.ask(request(client_name="mx.trusted.example", policy_test_time=T)), "DUNNO")
        self.assertEqual(c.ask(request(recipient="postmaster@example.org", policy_test_time=T)), "DUNNO")
        self.assertEqual(c.ask(request(client_address="203.0.113.5", policy_test_time=T)),
                         GREY)
        with open(clients_file, "w") as f:
            f.write("203.0.113.0/24\n")
        d.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        reply = None
        while time.monotonic() < deadline:  # the reload is asynchronous to this client
            reply = c.ask(request(client_address="203.0.113.5", recipient="r2@example.org",
                                  policy_test_time=T))
            if reply == "DUNNO":
                break
            time.sleep(0.05)
        self.assertEqual(reply, "DUNNO")
        self.assertEqual(c.ask(request(client_name="mx.trusted.example", client_address="198.51.100.1",
                                       policy_test_time=T)), GREY)
        # A broken file keeps the previous lists in force, with file, line and reason logged.
        with open(clients_file, "w") as f:
            f.write("good.example\n10.0.0.0/33\n")
        d.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "keeping the previous lists" not in d.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(f"{clients_file} line 2", d.log_text())
        self.assertEqual(c.ask(request(client_address="203.0.113.5", recipient="r3@example.org",
                                       policy_test_time=T)), "DUNNO")
        self.assertEqual(c.ask(request(client_name="mx.good.example", client_address="198.51.100.2",
                                       policy_test_time=T)), GREY)
        self.assertIn("HUP received: reloading whitelists...", d.log_text())
        self.assertIn("reason=client whitelist", d.log_text())
        self.assertIn("reason=recipient whitelist", d.log_text())

    def test_broken_whitelist_at_start_is_fatal(self):
        d = self.daemon()
        path = os.path.join(d.tmp.name, "bad")
        with open(path, "w") as f:
            f.write("/[unclosed/\n")
        d.args.append(f"--whitelist-clients={path}")
        d.start(wait=False)
        self.assertEqual(d.process.wait(10), 2)
        self.assertIn(f"{path} line 1", d.log_text())

    def test_postgreys_policy_test_replays_a_mail_log(self):
        if not os.path.exists("/usr/sbin/policy-test"):
            self.fail("postgrey's policy-test is missing (scripts/install-deps.sh test installs postgrey)")
        d = self.daemon().start()
        log = os.path.join(d.tmp.name, "mail.log")
        line = ("{} mx postfix/smtpd[42]: NOQUEUE: reject: RCPT from mail.example.net[192.0.2.10]: 450 4.2.0 "
                "<bob@example.org>: Recipient address rejected: Greylisted; from=<alice@example.net> "
                "to=<bob@example.org> proto=ESMTP helo=<mail.example.net>\n")
        with open(log, "w") as f:
            f.write(line.format("Nov 29 07:00:00") + line.format("Nov 29 07:06:00"))
        with open(log) as stdin:  # policy-test reads the log on standard input
            r = subprocess.run(["/usr/sbin/policy-test", f"inet:127.0.0.1:{d.port}"], stdin=stdin,
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 requests", r.stdout + r.stderr)
        text = d.log_text()
        self.assertIn("action=greylist, reason=new, client_name=mail.example.net", text)
        self.assertIn("action=pass, reason=triplet found, delay=360", text)

    def test_daemonize_with_pidfile(self):
        d = self.daemon()
        pidfile = os.path.join(d.tmp.name, "greylightd.pid")
        cmd = d.command() + ["-d", f"--pidfile={pidfile}"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.monotonic() + 10
        while not os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(pidfile) as f:
            pid = int(f.read())
        try:
            self.assertNotEqual(os.getsid(pid), os.getsid(0), "a new session, away from ours")
            c = d.client()
            self.assertEqual(c.ask(request(policy_test_time=T)), GREY)
            c.close()
        finally:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(os.path.exists(f"/proc/{pid}"))
        self.assertFalse(os.path.exists(pidfile))

    def test_drops_privileges_after_binding(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to switch users")
        import pwd
        import grp
        nobody = pwd.getpwnam("nobody")
        group = grp.getgrgid(nobody.pw_gid).gr_name
        d = self.daemon(unix=True)
        os.makedirs(d.dbdir)
        os.chown(d.dbdir, nobody.pw_uid, nobody.pw_gid)
        os.chmod(d.tmp.name, 0o755)
        d.args += ["--user=nobody", f"--group={group}", "--socketmode=0660"]
        cmd = d.command()
        cmd.remove("--user=root")
        d.command = lambda: cmd
        d.start()
        # Answered once the store is open, which happens after the switch.
        self.assertEqual(d.client(d.socket_path).ask(request(policy_test_time=T)), GREY)
        with open(f"/proc/{d.process.pid}/status") as f:
            status = f.read()
        self.assertRegex(status, rf"Uid:\s+{nobody.pw_uid}\s+{nobody.pw_uid}\s+{nobody.pw_uid}")
        self.assertRegex(status, rf"Gid:\s+{nobody.pw_gid}\s+{nobody.pw_gid}")
        st = os.stat(d.socket_path)
        self.assertEqual((st.st_uid, oct(st.st_mode & 0o777)), (nobody.pw_uid, "0o660"))
        self.assertEqual(d.client(d.socket_path).ask(request(policy_test_time=T)), GREY)
        self.assertEqual(os.stat(os.path.join(d.dbdir, "greylight.lmdb")).st_uid, nobody.pw_uid)

    def test_refuses_to_run_as_root_by_default(self):
        d = self.daemon()
        cmd = [c for c in d.command() if c != "--user=root"] + ["--user=greylight-no-such-user"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unknown user: greylight-no-such-user", r.stderr)

    def test_second_daemon_on_same_dbdir_is_refused(self):
        first = self.daemon().start()
        second = self.daemon(dbdir=first.dbdir).start(wait=False)
        self.assertEqual(second.process.wait(10), 11)
        self.assertIn(f"ERROR: locked: {first.dbdir}/greylight.lock", second.log_text())

    def test_quiet_suppresses_action_lines(self):
        d = self.daemon("-q").start()
        d.client().ask(request(policy_test_time=T))
        d.stop()
        self.assertNotIn("action=greylist", d.log_text())

    def test_options(self):
        self.assertEqual(run(BINARY, "--version").stdout.strip().split()[0], "greylightd")
        help_text = run(BINARY, "--help").stdout
        for option in ["--inet", "--unix", "--delay", "--max-age", "--retry-window",
                       "--auto-whitelist-clients", "--whitelist-clients", "--lookup-by-host",
                       "--greylist-text", "--x-greylist-header", "--privacy", "--syslog-facility"]:
            self.assertIn(option, help_text)
        bad = {
            ("--inet=10023", "--delay=0"): "--delay: '0' is not a number from 1 to 86400",
            ("--inet=10023", "--ipv4cidr=33"): "--ipv4cidr: '33' is not a number from 1 to 32",
            ("--inet=10023", "--max-age=0"): "--max-age",
            ("--inet=10023", "--retry-window=5x"): "--retry-window must be either",
            ("--delay=60",): "--unix or --inet must be specified",
            ("--inet=99999",): "invalid port",
            ("--inet=10023", "--syslog-facility=nope"): "unknown facility",
            ("--inet=10023", "-n"): "don't know how to",
        }
        for args, message in bad.items():
            result = run(BINARY, *args)
            self.assertEqual(result.returncode, 2, args)
            self.assertIn(message, result.stderr, args)
        result = run(BINARY, "--inet=10023", "--del=5")
        self.assertEqual(result.returncode, 1)
        self.assertIn("Unknown option: del", result.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        BINARY = sys.argv.pop(1)
    warnings.simplefilter("ignore", ResourceWarning)
    unittest.main(verbosity=2, warnings="ignore")
