#!/usr/bin/env python3
"""End-to-end test: a real, private Postfix instance greylisted by the real greylightd.

    python3 tests/e2e/postfix_e2e_test.py --greylightd build/src/greylightd [--keep]

Needs root (Postfix's master runs as root and drops to the mail_owner). Installs
`postfix` and `swaks` from Debian non-interactively if they are missing. Everything runs
in a temporary directory on loopback: the Postfix instance has its own config_directory
(`postfix -c DIR`), queue_directory, data_directory and Maildir, listens on a free
127.0.0.1 port, does not chroot, and has a `mynetworks` that excludes loopback. The
system's /etc/postfix is never written (the test checks it is unchanged).

The cases run twice: with greylightd on TCP (`check_policy_service inet:...`) and on a
UNIX socket (`check_policy_service unix:/abs/path`):
  * a first attempt gets 450 with the greylist text;
  * an immediate retry gets 450;
  * a retry after --delay gets 250 and the message lands in the Maildir with X-Greylist;
  * a new sender to the same recipient gets 450;
  * a whitelisted client (127.0.0.2, listed by IP in --whitelist-clients) gets 250 at once;
  * greylightd restarted between a first attempt and its retry still accepts the retry;
  * reply tracking: bob@example.org writes to a remote address through a submission service
    on a second loopback port, whose smtpd_recipient_restrictions ask greylightd's outbound
    listener (--outbound-inet, or --outbound-unix in the UNIX variant); the remote address'
    reply to bob on the main port is delivered at the first attempt, while an unrelated
    sender is greylisted.

Postfix and greylightd are stopped by PID on exit, also on failure; every wait is bounded.
"""
import argparse
import atexit
import glob
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

DOMAIN = "example.org"
RECIPIENT = f"bob@{DOMAIN}"
REMOTE_DOMAIN = "remote.greylight-e2e.test"  # bob's correspondents (reply tracking)
GREYLIST_TEXT = f"Greylisted, see http://postgrey.schweikert.ch/help/{DOMAIN}.html"
CLIENT_IP = "127.0.0.1"
WHITELISTED_IP = "127.0.0.2"
MAIL_UID = 65534  # nobody: owns the virtual mailboxes (virtual(8) refuses uids < 100)


def log(message):
    print(f"[e2e] {message}", flush=True)


def run(cmd, timeout=60, check=True, env=None, input_text=None):
    """Runs a command with a bound; returns the CompletedProcess (text, merged output)."""
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=timeout, env=env, input=input_text)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}")
    return result


def find_tool(name):
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)),
        None)


def ensure_packages():
    """Installs postfix and swaks from Debian, without questions, if one is missing."""
    if find_tool("postfix") and find_tool("swaks") and find_tool("postconf"):
        return
    if os.geteuid() != 0:
        raise AssertionError("postfix/swaks missing and not root: cannot install them")
    log("installing postfix and swaks (Debian packages)")
    run(["debconf-set-selections"], timeout=60,
        input_text="postfix postfix/main_mailer_type select No configuration\n")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], timeout=300, env=env)
    run(["apt-get", "install", "-y", "-qq", "postfix", "swaks"], timeout=400, env=env)
    if not (find_tool("postfix") and find_tool("swaks")):
        raise AssertionError("postfix or swaks still missing after apt-get install")


def snapshot_tree(root):
    """A digest of names, sizes, modes and mtimes under `root` (to prove we left it alone)."""
    digest = hashlib.sha256()
    if not os.path.exists(root):
        return "absent"
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files) + dirs:
            path = os.path.join(directory, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            digest.update(f"{path}\0{st.st_size}\0{st.st_mode}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def wait_pid_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise just poll.
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


class Greylightd:
    """greylightd with its own dbdir and log, on TCP or a UNIX socket; stopped by PID."""

    def __init__(self, binary, root, delay, whitelist_clients, whitelist_recipients, unix):
        self.binary = binary
        self.dbdir = os.path.join(root, "db")
        self.log_path = os.path.join(root, "greylightd.log")
        self.socket_path = os.path.join(root, "greylight.sock") if unix else None
        self.port = None if unix else free_port()
        # The outbound listener (reply tracking) the submission service asks.
        self.outbound_socket_path = os.path.join(root, "outbound.sock") if unix else None
        self.outbound_port = None if unix else free_port()
        self.delay = delay
        self.whitelist_clients = whitelist_clients
        self.whitelist_recipients = whitelist_recipients
        self.process = None
        self.log_file = None
        os.makedirs(self.dbdir, exist_ok=True)

    def policy_endpoint(self):
        """The check_policy_service endpoint for Postfix."""
        if self.socket_path:
            return f"unix:{self.socket_path}"
        return f"inet:127.0.0.1:{self.port}"

    def outbound_endpoint(self):
        """The check_policy_service endpoint of the submission service."""
        if self.outbound_socket_path:
            return f"unix:{self.outbound_socket_path}"
        return f"inet:127.0.0.1:{self.outbound_port}"

    def command(self):
        cmd = [self.binary, f"--dbdir={self.dbdir}", "--user=root", f"--delay={self.delay}",
               f"--whitelist-clients={self.whitelist_clients}",
               f"--whitelist-recipients={self.whitelist_recipients}"]
        if self.socket_path:
            cmd += [f"--unix={self.socket_path}", f"--outbound-unix={self.outbound_socket_path}"]
        else:
            cmd += [f"--inet=127.0.0.1:{self.port}",
                    f"--outbound-inet=127.0.0.1:{self.outbound_port}"]
        return cmd

    def start(self, timeout=15):
        self.log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command(), stdout=self.log_file, stderr=self.log_file,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"greylightd exited {self.process.returncode} at start:\n{self.log_text()}")
            try:
                if self.socket_path:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.settimeout(2)
                        s.connect(self.socket_path)
                else:
                    socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                log(f"greylightd pid {self.process.pid} listening on {self.policy_endpoint()}")
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"greylightd did not listen within {timeout}s:\n{self.log_text()}")

    def stop(self, timeout=30):
        """SIGTERM by PID, bounded; SIGKILL if it does not exit. Returns the exit status.

        Bounded generously: an earlier build waited its 10 s shutdown grace period while
        Postfix held an idle persistent connection."""
        if self.process is None:
            return None
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
                    raise AssertionError(f"greylightd pid {self.process.pid} ignored SIGTERM")
            return self.process.returncode
        finally:
            if self.log_file and not self.log_file.closed:
                self.log_file.close()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


MAIN_CF = """\
# Private Postfix instance for greylight's end-to-end test; never the system's.
compatibility_level = 3.6
config_directory = {config}
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.greylight-e2e.test
mydomain = greylight-e2e.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# Loopback is NOT in mynetworks: the test clients are strangers to this server.
mynetworks = 192.0.2.0/24
relay_domains =
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:local delivery is disabled in this test instance
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {mail}
virtual_mailbox_maps = inline:{{ {recipient}={domain}/bob/ }}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{uid}
virtual_minimum_uid = 100
# Mail to the remote domain (the submission case's outbound message) is accepted, then
# discarded: nothing leaves the machine.
transport_maps = inline:{{ {remote_domain}=discard: }}
smtpd_banner = $myhostname ESMTP greylight-e2e
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service {policy}
smtpd_policy_service_timeout = 10s
smtpd_tls_security_level = none
smtp_tls_security_level = none
biff = no
append_dot_mydomain = no
default_process_limit = 10
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
maillog_file_prefixes = {root}
maillog_file = {maillog}
"""

# No chroot (column 5 = n) anywhere: the policy socket path is absolute. The second smtpd
# is the submission service of docs/tuning.md ("Reply tracking"), with loopback standing in
# for SASL-authenticated users: the relay restrictions admit only them, then the recipient
# restrictions ask greylightd's outbound listener.
MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n    -       n       -       -       smtpd
127.0.0.1:{submission_port} inet n - n     -       -       smtpd
  -o syslog_name=postfix/submission
  -o mynetworks=127.0.0.0/8
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_recipient_restrictions=check_policy_service,{outbound_policy}
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixInstance:
    """A private Postfix: `postfix -c DIR start|stop`, own queue, data and Maildir."""

    def __init__(self, root, policy_endpoint, outbound_endpoint):
        self.root = root
        self.config = os.path.join(root, "etc")
        self.queue = os.path.join(root, "spool")
        self.data = os.path.join(root, "data")
        self.mail = os.path.join(root, "mail")
        self.maillog = os.path.join(root, "postfix.log")
        self.port = free_port()
        self.submission_port = free_port()
        self.policy = policy_endpoint
        self.outbound_policy = outbound_endpoint
        self.started = False
        self.postfix = find_tool("postfix")
        self.postconf = find_tool("postconf")

    def configure(self):
        for path in (self.config, self.queue, self.data, self.mail):
            os.makedirs(path, exist_ok=True)
        for path in (self.root, self.config, self.queue):
            os.chmod(path, 0o755)  # root-owned, like /etc/postfix and /var/spool/postfix
        owner = pwd.getpwnam("postfix")  # mail_owner, created by Debian's postfix package
        os.chown(self.data, owner.pw_uid, owner.pw_gid)  # like /var/lib/postfix
        os.chmod(self.data, 0o700)
        os.chown(self.mail, MAIL_UID, MAIL_UID)
        os.chmod(self.mail, 0o755)
        with open(os.path.join(self.config, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(config=self.config, queue=self.queue, data=self.data,
                                   domain=DOMAIN, mail=self.mail, recipient=RECIPIENT,
                                   uid=MAIL_UID, policy=self.policy, root=self.root,
                                   maillog=self.maillog, remote_domain=REMOTE_DOMAIN))
        with open(os.path.join(self.config, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port=self.port, submission_port=self.submission_port,
                                     outbound_policy=self.outbound_policy))
        # Sanity: postconf reads our directory, not /etc/postfix.
        out = run([self.postconf, "-c", self.config, "-h", "queue_directory"], timeout=30).stdout
        if out.strip() != self.queue:
            raise AssertionError(f"postconf -c did not read our main.cf: {out!r}")

    def start(self, timeout=60):
        result = run([self.postfix, "-c", self.config, "start"], timeout=timeout, check=False)
        self.started = True  # even on failure: a master may be running; stop() cleans up
        if result.returncode != 0:
            raise AssertionError(f"postfix -c {self.config} start exited {result.returncode}:\n"
                                 f"{result.stdout}\n{self.maillog_text()}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    s.settimeout(10)
                    banner = s.recv(512).decode(errors="replace")
                    if banner.startswith("220"):
                        s.sendall(b"QUIT\r\n")
                        log(f"postfix (master pid {self.master_pid()}) answering on "
                            f"127.0.0.1:{self.port}, policy {self.policy}")
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"postfix smtpd not answering on port {self.port}:\n{self.maillog_text()}")

    def master_pid(self):
        for path in (os.path.join(self.data, "master.lock"), os.path.join(self.queue, "pid", "master.pid")):
            try:
                with open(path) as f:
                    text = f.read().strip()
                if text.isdigit():
                    return int(text)
            except OSError:
                pass
        return None

    def stop(self):
        if not self.started:
            return
        pid = self.master_pid()
        try:
            run([self.postfix, "-c", self.config, "stop"], timeout=60, check=False)
        except subprocess.TimeoutExpired:
            log("postfix stop timed out")
        if pid and not wait_pid_gone(pid, 15):
            log(f"postfix master pid {pid} still running: SIGTERM, then SIGKILL")
            try:
                os.kill(pid, signal.SIGTERM)
                if not wait_pid_gone(pid, 10):
                    os.kill(pid, signal.SIGKILL)
                    wait_pid_gone(pid, 5)
            except ProcessLookupError:
                pass
        self.started = False

    def maillog_text(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no maillog)"

    def maildir_messages(self):
        return sorted(glob.glob(os.path.join(self.mail, DOMAIN, "bob", "new", "*")))

    def wait_for_message(self, token, timeout=60):
        """The text of the delivered message containing `token`, waiting (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in self.maildir_messages():
                with open(path, errors="replace") as f:
                    text = f.read()
                if token in text:
                    return text
            time.sleep(0.2)
        raise AssertionError(f"message {token} not delivered to the Maildir within {timeout}s; "
                             f"maillog:\n{self.maillog_text()[-4000:]}")


def swaks(port, sender, local_ip=CLIENT_IP, full=False, token=None, recipient=RECIPIENT):
    """Runs swaks; returns (exit status, transcript). Quits after RCPT unless `full`."""
    cmd = [find_tool("swaks"), "--server", "127.0.0.1", "--port", str(port),
           "--local-interface", local_ip, "--from", sender, "--to", recipient,
           "--helo", "client.greylight-e2e.test", "--timeout", "60"]
    if full:
        cmd += ["--header", f"Subject: greylight e2e {token}", "--header", f"X-E2E-Token: {token}",
                "--body", f"greylight end-to-end test message {token}\n"]
    else:
        cmd += ["--quit-after", "RCPT"]
    result = run(cmd, timeout=120, check=False)
    return result.returncode, result.stdout


def rcpt_reply(transcript):
    """The server's reply line(s) to RCPT TO in a swaks transcript."""
    lines = transcript.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*[-~*]*>\s+RCPT TO:", line):
            replies = []
            for reply in lines[i + 1:]:
                m = re.match(r"^<[-~*]*\s+(\d{3}[ -].*)$", reply)
                if not m:
                    break
                replies.append(m.group(1))
                if m.group(1)[3] == " ":
                    break
            return "\n".join(replies)
    return ""


def data_reply(transcript):
    """The server's final reply to the message body (after the lone '.')."""
    lines = transcript.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*[-~*]*>\s+\.$", line):
            for reply in lines[i + 1:]:
                m = re.match(r"^<[-~*]*\s+(\d{3} .*)$", reply)
                if m:
                    return m.group(1)
    return ""


class Variant:
    """One Postfix + greylightd pair; runs every case against it."""

    def __init__(self, name, binary, root, delay, unix):
        self.name = name
        self.delay = delay
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)
        gl_root = os.path.join(root, "greylight")
        os.makedirs(gl_root, exist_ok=True)
        os.chmod(gl_root, 0o755)  # smtpd (user postfix) must reach the UNIX socket
        wl_clients = os.path.join(gl_root, "whitelist_clients")
        with open(wl_clients, "w") as f:
            f.write("# greylight e2e: the whitelisted test client, by IP\n"
                    f"{WHITELISTED_IP}\n")
        wl_recipients = os.path.join(gl_root, "whitelist_recipients")
        with open(wl_recipients, "w") as f:
            f.write("# greylight e2e: no recipient is whitelisted\n")
        self.greylightd = Greylightd(binary, gl_root, delay, wl_clients, wl_recipients, unix)
        self.postfix = PostfixInstance(os.path.join(root, "postfix"),
                                       self.greylightd.policy_endpoint(),
                                       self.greylightd.outbound_endpoint())
        self.failures = []

    def setup(self):
        self.greylightd.start()
        self.postfix.configure()
        self.postfix.start()

    def teardown(self):
        errors = []
        try:
            self.postfix.stop()
        except Exception as e:  # noqa: BLE001 - reported, the daemon is still stopped
            errors.append(f"stopping postfix: {e!r}")
        try:
            self.greylightd.stop()
        except Exception as e:  # noqa: BLE001
            errors.append(f"stopping greylightd: {e!r}")
        return errors

    # -- helpers -------------------------------------------------------------------------
    def expect_greylisted(self, sender, what):
        status, transcript = swaks(self.postfix.port, sender)
        reply = rcpt_reply(transcript)
        if not reply.startswith("450 4.2.0") or GREYLIST_TEXT not in reply:
            raise AssertionError(f"{what}: expected '450 4.2.0 ... {GREYLIST_TEXT}' to RCPT, "
                                 f"got {reply!r} (swaks exit {status})\n{transcript}")
        log(f"  {what}: {reply}")

    def expect_delivered(self, sender, token, what, local_ip=CLIENT_IP, header=True):
        status, transcript = swaks(self.postfix.port, sender, local_ip=local_ip, full=True, token=token)
        reply = rcpt_reply(transcript)
        if not reply.startswith("250"):
            raise AssertionError(f"{what}: expected 250 to RCPT, got {reply!r} (swaks exit {status})\n"
                                 f"{transcript}")
        final = data_reply(transcript)
        if status != 0 or not final.startswith("250"):
            raise AssertionError(f"{what}: message not accepted: {final!r} (swaks exit {status})\n"
                                 f"{transcript}")
        log(f"  {what}: RCPT {reply}; DATA {final}")
        message = self.postfix.wait_for_message(token)
        head = message.split("\n\n", 1)[0]
        has_header = re.search(r"^X-Greylist: delayed \d+ seconds by greylight-\S+ at ", head, re.M)
        if header and not has_header:
            raise AssertionError(f"{what}: delivered message lacks the X-Greylist header:\n{head}")
        if not header and has_header:
            raise AssertionError(f"{what}: unexpected X-Greylist header:\n{head}")
        if header:
            log(f"  {what}: in the Maildir with '{has_header.group(0).strip()}...'")
        else:
            log(f"  {what}: in the Maildir, no X-Greylist header")

    def sleep_past_delay(self, since):
        remaining = since + self.delay + 1.0 - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    # -- cases ---------------------------------------------------------------------------
    def case_greylist_retry_deliver(self):
        sender = f"alice-{self.name}@example.net"
        first = time.monotonic()
        self.expect_greylisted(sender, "first attempt")
        self.expect_greylisted(sender, "immediate retry")
        self.sleep_past_delay(first)
        self.expect_delivered(sender, f"{self.name}-retry", "retry after the delay")

    def case_new_sender_same_recipient(self):
        self.expect_greylisted(f"carol-{self.name}@example.net", "new sender, same recipient")

    def case_whitelisted_client(self):
        self.expect_delivered(f"wl-{self.name}@example.net", f"{self.name}-whitelisted",
                              f"whitelisted client {WHITELISTED_IP}", local_ip=WHITELISTED_IP,
                              header=False)
        # Decision lines reach the log within greylightd's 100 ms flush interval.
        deadline = time.monotonic() + 5
        while ("reason=client whitelist" not in self.greylightd.log_text()
               and time.monotonic() < deadline):
            time.sleep(0.05)
        if "reason=client whitelist" not in self.greylightd.log_text():
            raise AssertionError("greylightd did not log 'reason=client whitelist':\n"
                                 + self.greylightd.log_text()[-3000:])

    def case_restart_between_attempts(self):
        sender = f"dave-{self.name}@example.net"
        first = time.monotonic()
        self.expect_greylisted(sender, "first attempt before restart")
        old_pid = self.greylightd.process.pid
        stopping = time.monotonic()
        status = self.greylightd.stop()
        if status != 0:
            raise AssertionError(f"greylightd exited {status} on SIGTERM")
        stopped = time.monotonic()
        self.greylightd.start()
        log(f"  greylightd restarted: pid {old_pid} -> {self.greylightd.process.pid} "
            f"(stop took {stopped - stopping:.1f}s, start {time.monotonic() - stopped:.1f}s)")
        self.sleep_past_delay(first)
        self.expect_delivered(sender, f"{self.name}-restart", "retry after restart and delay")

    def wait_for_log(self, *parts, timeout=5):
        """Waits for a greylightd log line containing every one of `parts` (decision lines
        reach the log within greylightd's 100 ms flush interval)."""
        def found():
            return any(all(p in line for p in parts)
                       for line in self.greylightd.log_text().splitlines())
        deadline = time.monotonic() + timeout
        while not found() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not found():
            raise AssertionError(f"greylightd logged no line with {parts!r}:\n"
                                 + self.greylightd.log_text()[-3000:])

    def case_reply_passes_at_first_attempt(self):
        correspondent = f"carol-{self.name}@{REMOTE_DOMAIN}"
        # bob writes to carol through the submission service (loopback is its "users").
        token = f"{self.name}-outbound"
        status, transcript = swaks(self.postfix.submission_port, RECIPIENT, full=True,
                                   token=token, recipient=correspondent)
        reply, final = rcpt_reply(transcript), data_reply(transcript)
        if not reply.startswith("250") or status != 0 or not final.startswith("250"):
            raise AssertionError(f"submission of bob's message refused: RCPT {reply!r}, DATA "
                                 f"{final!r} (swaks exit {status})\n{transcript}")
        log(f"  bob -> {correspondent} through submission: RCPT {reply}; DATA {final}")
        self.wait_for_log("action=record, reason=outbound, ", f"client_address={CLIENT_IP}, "
                          f"sender={RECIPIENT}, recipient={correspondent}")
        # carol's reply on the main port: delivered at the first attempt, no greylisting.
        self.expect_delivered(correspondent, f"{self.name}-reply",
                              "reply from the correspondent, first attempt", header=False)
        self.wait_for_log("action=pass, reason=reply, ", f"client_address={CLIENT_IP}, "
                          f"sender={correspondent}, recipient={RECIPIENT}")
        # Someone else at carol's domain is a stranger to bob: greylisted.
        self.expect_greylisted(f"mallory-{self.name}@{REMOTE_DOMAIN}",
                               "unrelated sender of the same domain")

    def run_cases(self):
        cases = [self.case_greylist_retry_deliver, self.case_new_sender_same_recipient,
                 self.case_whitelisted_client, self.case_restart_between_attempts,
                 self.case_reply_passes_at_first_attempt]
        for case in cases:
            label = f"{self.name}: {case.__name__[5:]}"
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


_cleanups = []


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            log(f"cleanup error: {e!r}")


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--greylightd", required=True, help="path of the greylightd binary")
    parser.add_argument("--delay", type=int, default=3, help="greylightd --delay (seconds)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--only", choices=["tcp", "unix"], help="run one variant only")
    args = parser.parse_args()

    binary = os.path.abspath(args.greylightd)
    if not os.access(binary, os.X_OK):
        print(f"greylightd not executable: {binary}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("this test must run as root (a private Postfix master needs root)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    atexit.register(_run_cleanups)

    ensure_packages()
    etc_before = snapshot_tree("/etc/postfix")

    tmp = tempfile.mkdtemp(prefix="greylight-e2e-")
    os.chmod(tmp, 0o755)  # postfix (mail_owner) and nobody (mailboxes) traverse it
    if args.keep:
        log(f"keeping {tmp}")
    else:
        _cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))

    failures = []
    variants = [("tcp", False), ("unix", True)]
    for name, unix in variants:
        if args.only and args.only != name:
            continue
        log(f"=== variant {name} ===")
        variant = Variant(name, binary, os.path.join(tmp, name), args.delay, unix)
        _cleanups.append(variant.teardown)
        failures_before = len(failures)
        try:
            variant.setup()
            failures += variant.run_cases()
        except Exception as e:  # noqa: BLE001
            failures.append(f"{name}: setup")
            log(f"FAIL {name}: setup: {e}")
            if not isinstance(e, AssertionError):
                traceback.print_exc()
        finally:
            _cleanups.remove(variant.teardown)
            for error in variant.teardown():
                failures.append(f"{name}: teardown")
                log(f"FAIL {name}: {error}")
            if len(failures) > failures_before:
                log(f"greylightd log ({name}):\n{variant.greylightd.log_text()[-4000:]}")
                log(f"postfix maillog ({name}), tail:\n{variant.postfix.maillog_text()[-4000:]}")

    if snapshot_tree("/etc/postfix") != etc_before:
        failures.append("/etc/postfix was modified")
        log("FAIL /etc/postfix changed during the test")

    if failures:
        log(f"{len(failures)} failure(s): " + "; ".join(failures))
        return 1
    log("all end-to-end cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
