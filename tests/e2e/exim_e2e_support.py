"""What tests/e2e/exim_e2e_test.py runs: greylightd, a private Exim daemon, swaks, and
Debian's own Exim configuration made by Debian's update-exim4.conf. Every process is
started here and stopped by PID; every wait is bounded."""
import glob
import hashlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time

DOMAIN = "example.org"
RECIPIENTS = [f"bob@{DOMAIN}", f"carol@{DOMAIN}"]
CLIENT_IP = "127.0.0.1"
EXIM_USER = "Debian-exim"


def log(message):
    print(f"[exim-e2e] {message}", flush=True)


def run(cmd, timeout=60, check=True, input_text=None, cwd=None):
    """Runs a command with a bound; returns the CompletedProcess (text, merged output)."""
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=timeout, input=input_text, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}")
    return result


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def snapshot_tree(root):
    """A digest of names, sizes, modes and mtimes under `root` (to prove we left it alone)."""
    if not os.path.exists(root):
        return "absent"
    digest = hashlib.sha256()
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


def user_exists(name):
    try:
        return pwd.getpwnam(name) is not None
    except KeyError:
        return False


# -- greylightd --------------------------------------------------------------------------

class Greylightd:
    """greylightd with the doc's options, its own dbdir and log, on TCP or a UNIX socket."""

    def __init__(self, binary, root, doc, delay, unix, greylist_text=None):
        self.binary = binary
        self.root = root
        self.dbdir = os.path.join(root, "db")
        self.log_path = os.path.join(root, "greylightd.log")
        self.socket_path = os.path.join(root, "greylight.sock") if unix else None
        self.port = None if unix else free_port()
        listen = f"--unix={self.socket_path}" if unix else f"--inet=127.0.0.1:{self.port}"
        self.options = doc.greylightd_options(listen)
        self.delay = delay
        self.greylist_text = greylist_text
        self.process = None
        self.log_file = None
        os.makedirs(self.dbdir, exist_ok=True)

    def socket_spec(self):
        """The first argument of Exim's ${readsocket}."""
        return self.socket_path if self.socket_path else f"inet:127.0.0.1:{self.port}"

    def command(self):
        cmd = [self.binary, *self.options, f"--dbdir={self.dbdir}", "--user=root",
               f"--delay={self.delay}"]
        if self.greylist_text:
            cmd.append(f"--greylist-text={self.greylist_text}")
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
                log(f"greylightd pid {self.process.pid} on {self.socket_spec()}: "
                    f"{shlex.join(self.command()[1:])}")
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"greylightd did not listen within {timeout}s:\n{self.log_text()}")

    def freeze(self):
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self):
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self, timeout=30):
        """SIGCONT then SIGTERM by PID, bounded; SIGKILL if it does not exit."""
        if self.process is None:
            return None
        try:
            if self.process.poll() is None:
                self.thaw()
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

    def wait_for_log(self, pattern, timeout=5):
        """The first log line matching `pattern`; decision lines are flushed every 100 ms."""
        found = []

        def seen():
            found[:] = re.findall(pattern, self.log_text(), re.M)
            return bool(found)

        if not wait_until(seen, timeout):
            raise AssertionError(f"greylightd did not log /{pattern}/:\n{self.log_text()[-3000:]}")
        return found[0]


# -- Exim ------------------------------------------------------------------------------------

EXIM_CONF = """\
# Private Exim for greylight's end-to-end test; never the system's. The greylight parts
# are docs/exim.md's blocks, in {macros} and the file CHECK_RCPT_LOCAL_ACL_FILE names.
.include {macros}
exim_path = {exim}
keep_environment =
spool_directory = {spool}
log_file_path = {logdir}/%slog
primary_hostname = mx.greylight-e2e.test
qualify_domain = greylight-e2e.test
local_interfaces = 127.0.0.1
tls_advertise_hosts =
rfc1413_hosts =
# The client's name is looked up (the ACL refers to $sender_host_name): /etc/hosts first.
host_lookup_order = byaddr : bydns
dns_retrans = 1s
dns_retry = 1
domainlist local_domains = {domain}
acl_smtp_rcpt = acl_check_rcpt

begin acl

# As Debian's acl_check_rcpt: relay and recipient checks, then the local ACL file.
acl_check_rcpt:
  require message = relay not permitted
          domains = +local_domains
  require verify = recipient
.ifdef CHECK_RCPT_LOCAL_ACL_FILE
.include CHECK_RCPT_LOCAL_ACL_FILE
.endif
  accept

begin routers

mailboxes:
  driver = accept
  domains = +local_domains
  local_parts = {local_parts}
  transport = maildir

begin transports

# One Maildir for every recipient: a delivery path free of tainted data.
maildir:
  driver = appendfile
  directory = {mail}
  maildir_format
  user = {user}
  envelope_to_add
  return_path_add

begin retry

*  *  F,1h,1m
"""


class Exim:
    """A private Exim daemon (-bdf) with the doc's macros and ACL file; stopped by PID."""

    def __init__(self, exim_root, root, doc, greylightd):
        self.binary = os.path.join(exim_root, "usr", "sbin", "exim4")
        self.root = root
        self.conf = os.path.join(root, "exim.conf")
        self.macros = os.path.join(root, "greylight_macros")
        self.acl_file = os.path.join(root, "greylight_rcpt_acl")
        self.spool = os.path.join(root, "spool")
        self.logdir = os.path.join(root, "log")
        self.mail = os.path.join(root, "mail")
        self.port = free_port()
        self.doc = doc
        self.greylightd = greylightd
        self.process = None
        self.output = None

    def configure(self):
        exim_user = pwd.getpwnam(EXIM_USER)
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o755)
        for path in (self.spool, self.logdir, self.mail):
            os.makedirs(path, exist_ok=True)
            os.chown(path, exim_user.pw_uid, exim_user.pw_gid)
        with open(self.acl_file, "w") as f:
            f.write(self.doc.acl)
        with open(self.macros, "w") as f:
            f.write(self.doc.macros_for(self.greylightd.socket_spec(), self.acl_file))
        with open(self.conf, "w") as f:
            f.write(EXIM_CONF.format(macros=self.macros, exim=self.binary, spool=self.spool,
                                     logdir=self.logdir, domain=DOMAIN, mail=self.mail,
                                     user=EXIM_USER,
                                     local_parts=" : ".join(r.split("@")[0] for r in RECIPIENTS)))
        run([self.binary, "-C", self.conf, "-bV"], timeout=30)

    def start(self, timeout=30):
        self.output = open(os.path.join(self.root, "exim.out"), "ab")
        self.process = subprocess.Popen(
            [self.binary, "-C", self.conf, "-bdf", "-oX", str(self.port)],
            stdout=self.output, stderr=self.output, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exim exited {self.process.returncode} at start:\n"
                                     f"{self.log_text('main')}\n{self.log_text('panic')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    s.settimeout(10)
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        log(f"exim daemon pid {self.process.pid} on 127.0.0.1:{self.port}, "
                            f"policy {self.greylightd.socket_spec()}")
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"exim not answering on port {self.port}:\n{self.log_text('main')}")

    def stop(self):
        """The daemon by PID; then any reception or delivery process it left, by PID."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for pid in self.leftover_pids():
            log(f"stopping exim process {pid} left by the daemon")
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.output and not self.output.closed:
            self.output.close()

    def leftover_pids(self):
        """Processes running this instance's configuration (their command line names it)."""
        pids = []
        for entry in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                with open(entry, "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if self.conf.encode() in args:
                pids.append(int(entry.split("/")[2]))
        return pids

    def log_text(self, name):
        try:
            with open(os.path.join(self.logdir, f"{name}log"), errors="replace") as f:
                return f.read()
        except OSError:
            return f"(no {name}log)"

    def messages_with(self, token):
        texts = []
        for path in sorted(glob.glob(os.path.join(self.mail, "new", "*"))):
            with open(path, errors="replace") as f:
                text = f.read()
            if f"X-E2E-Token: {token}\n" in text:
                texts.append(text)
        return texts

    def wait_for_messages(self, token, count, timeout=60):
        """The `count` delivered copies of the message with `token`, waiting (bounded)."""
        if not wait_until(lambda: len(self.messages_with(token)) >= count, timeout, 0.2):
            raise AssertionError(f"{count} cop(ies) of message {token} not delivered within "
                                 f"{timeout}s; mainlog:\n{self.log_text('main')[-4000:]}")
        return self.messages_with(token)

    def expand(self, string):
        """Exim's expansion of `string` (-be), with this configuration."""
        return run([self.binary, "-C", self.conf, "-be", string], timeout=30).stdout.rstrip("\n")


def swaks(port, sender, recipients, full=False, token=None):
    """Runs swaks; returns (exit status, transcript). Quits after RCPT unless `full`."""
    cmd = [shutil.which("swaks") or "/usr/bin/swaks", "--server", "127.0.0.1", "--port", str(port),
           "--local-interface", CLIENT_IP, "--from", sender, "--to", ",".join(recipients),
           "--helo", "client.greylight-e2e.test", "--timeout", "60"]
    if full:
        cmd += ["--header", f"Subject: greylight exim e2e {token}", "--header",
                f"X-E2E-Token: {token}", "--body", f"greylight exim end-to-end message {token}\n"]
    else:
        cmd += ["--quit-after", "RCPT"]
    result = run(cmd, timeout=120, check=False)
    return result.returncode, result.stdout


def smtp_replies(lines):
    """SMTP replies in `lines` (swaks's "<-"/"<**" prefixes removed), a multi-line reply
    joined into one: Exim splits a long text over several lines at spaces."""
    replies, pending = [], []
    for line in lines:
        m = re.match(r"^(?:<[-~*]*\s+)?(\d{3})([ -])(.*)$", line)
        if not m:
            continue
        pending.append(m.group(3))
        if m.group(2) == " ":
            replies.append(f"{m.group(1)} " + " ".join(pending))
            pending = []
    return replies


def rcpt_replies(transcript):
    """The server's reply to each RCPT TO in a swaks transcript, in order."""
    lines = transcript.splitlines()
    replies = []
    for i, line in enumerate(lines):
        if re.match(r"^\s*[-~*]*>\s+RCPT TO:", line):
            final = (j for j in range(i + 1, len(lines))
                     if re.match(r"^<[-~*]*\s+\d{3} ", lines[j]))
            end = next(final, len(lines) - 1)
            replies += smtp_replies(lines[i + 1:end + 1])[:1]
    return replies


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


def x_greylist_headers(message):
    head = message.split("\n\n", 1)[0]
    return re.findall(r"^X-Greylist: delayed \d+ seconds by greylight-\S+ at .*$", head, re.M)


# -- Debian's own configuration ----------------------------------------------------------------

UPDATE_EXIM4_CONF_CONF = """\
dc_eximconfig_configtype='internet'
dc_other_hostnames='{domain}'
dc_local_interfaces='127.0.0.1'
dc_readhost=''
dc_relay_domains=''
dc_minimaldns='false'
dc_relay_nets=''
dc_smarthost=''
CFILEMODE='644'
dc_use_split_config='{split}'
dc_hide_mailname=''
dc_mailname_in_oh='true'
dc_localdelivery='mail_spool'
"""

# Settings of this test only, through macros Debian's configuration reads: a private
# spool, and no host name lookup so that -oMs gives the client's name without DNS.
DEBIAN_TEST_MACROS = """\
SPOOLDIR = {spool}
MAIN_HOST_LOOKUP =
"""


class DebianConfig:
    """Debian's Exim configuration, split or single file, made by Debian's update-exim4.conf
    (from exim4-config, unpacked) in a private directory, with docs/exim.md's macros in
    the file Debian reads them from and its ACL file."""

    def __init__(self, exim_root, root, doc, greylightd, split):
        self.exim_root = exim_root
        self.root = root
        self.doc = doc
        self.greylightd = greylightd
        self.split = split
        self.confdir = os.path.join(root, "exim4")
        self.output = os.path.join(root, "exim4.conf")

    def updater(self):
        """update-exim4.conf with its fixed system paths pointed into the private tree.

        It reads /etc/mailname, and reads exim4.conf.localmacros from the given --confdir
        only when /etc/exim4/exim4.conf.localmacros exists; the test may create neither."""
        with open(os.path.join(self.exim_root, "usr", "sbin", "update-exim4.conf")) as f:
            script = f.read()
        mailname = os.path.join(self.root, "mailname")
        with open(mailname, "w") as f:
            f.write("mx.greylight-e2e.test\n")
        replacements = [
            ("/etc/mailname", mailname),
            ('"/etc/exim4/exim4.conf.localmacros"', '"${UPEX4C_confdir}/exim4.conf.localmacros"'),
        ]
        for old, new in replacements:
            if old not in script:
                raise AssertionError(f"update-exim4.conf no longer mentions {old}")
            script = script.replace(old, new)
        exim = os.path.join(self.exim_root, "usr", "sbin", "exim4")
        script, count = re.subn(r"^EXIM=.*$", f"EXIM={exim}", script, flags=re.M)
        if count != 1:
            raise AssertionError("update-exim4.conf no longer sets EXIM=")
        path = os.path.join(self.root, "update-exim4.conf")
        with open(path, "w") as f:
            f.write(script)
        return path

    def generate(self):
        os.makedirs(self.root, exist_ok=True)
        shutil.copytree(os.path.join(self.exim_root, "etc", "exim4"), self.confdir)
        spool = os.path.join(self.root, "spool")
        os.makedirs(spool)
        exim_user = pwd.getpwnam(EXIM_USER)
        os.chown(spool, exim_user.pw_uid, exim_user.pw_gid)
        acl_file = os.path.join(self.confdir, "greylight_rcpt_acl")
        with open(acl_file, "w") as f:
            f.write(self.doc.acl)
        macros = self.doc.macros_for(self.greylightd.socket_spec(), acl_file)
        test_macros = DEBIAN_TEST_MACROS.format(spool=spool)
        if self.split:
            with open(os.path.join(self.confdir, "conf.d", "main", "000_localmacros"), "w") as f:
                f.write(macros)
            with open(os.path.join(self.confdir, "conf.d", "main", "000_testmacros"), "w") as f:
                f.write(test_macros)
        else:
            with open(os.path.join(self.confdir, "exim4.conf.localmacros"), "w") as f:
                f.write(macros + test_macros)
        with open(os.path.join(self.confdir, "update-exim4.conf.conf"), "w") as f:
            f.write(UPDATE_EXIM4_CONF_CONF.format(domain=DOMAIN,
                                                  split="true" if self.split else "false"))
        run(["sh", self.updater(), "--confdir", self.confdir, "--output", self.output],
            timeout=60)
        with open(self.output) as f:
            generated = f.read()
        for needed in (".include CHECK_RCPT_LOCAL_ACL_FILE",
                       f"CHECK_RCPT_LOCAL_ACL_FILE = {acl_file}"):
            if needed not in generated:
                raise AssertionError(f"Debian's {'split' if self.split else 'single-file'} "
                                     f"configuration lacks {needed!r}")
        return self.output

    def host_check(self, sender, recipient, client_ip, client_name):
        """Exim's -bh session (ACLs run, nothing received); returns (RCPT reply, output)."""
        binary = os.path.join(self.exim_root, "usr", "sbin", "exim4")
        session = (f"EHLO client.greylight-e2e.test\r\nMAIL FROM:<{sender}>\r\n"
                   f"RCPT TO:<{recipient}>\r\nQUIT\r\n")
        out = run([binary, "-C", self.output, "-bh", client_ip, "-oMs", client_name],
                  timeout=60, input_text=session).stdout
        replies = smtp_replies(out.splitlines())
        # 220 banner, 250 EHLO, 250 MAIL, then the RCPT reply.
        return (replies[3] if len(replies) > 3 else ""), out
