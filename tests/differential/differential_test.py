#!/usr/bin/env python3
"""Differential test: greylightd against the real postgrey 1.37.

Starts /usr/sbin/postgrey and greylightd on free 127.0.0.1 ports with the same
options and separate temporary database directories, replays one seeded,
reproducible sequence of Postfix 3.7-like policy requests (with
`policy_test_time`) to both over one persistent connection each, compares
every reply, then stops both with SIGTERM and compares every stored triplet
and client auto-whitelist (AWL) record.

Allowed (counted, not failures) are only the documented differences of
../shared/spec/postgrey-compat.md ("Fix"):
  * the X-Greylist header: %v (postgrey's 1.37 vs greylight's version) and the
    %d date (real time);
  * max-age enforced at lookup: the generator produces a few requests that
    arrive more than max-age after the last sighting of their (isolated)
    triplet or client; there postgrey still passes and greylightd starts over.
    Those requests and their records are the only other allowed differences;
  * the last sighting of a triplet: greylight does not write a triplet seen
    again less than 60 s after its last sighting when it stays passed, or stays
    pending, with the same first sighting (issue 15; allowed by the compat spec
    for N <= 60 s, docs/migrating-from-postgrey.md), so its stored `last` may be
    up to 59 s older than postgrey's, first and passed-or-pending equal.
Everything else must be equal.

Usage:
  python3 differential_test.py --greylightd PATH [--seed N] [--requests N]

Standard library only.  Needs postgrey (Debian package `postgrey`), db5.3_dump
and db5.3_recover (`db5.3-util`) and mdb_dump (`lmdb-utils`).
"""

import argparse
import atexit
import collections
import ctypes
import ipaddress
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# --------------------------------------------------------------------------
# Options given to both servers

POSTGREY = "/usr/sbin/postgrey"
DELAY = 300
LAST_SEEN_REFRESH = 60  # policy::GreylistTiming::kLastSeenRefresh


def last_seen_refresh_skip(postgrey_value, greylight_value):
    """True if the two triplet values differ only by greylight's skipped rewrite of a
    triplet's last sighting: same first, both passed or both pending, greylight's last
    1-59 s older."""
    try:
        pf, pl = (int(x) for x in postgrey_value.split(",")[:2])
        gf, gl = (int(x) for x in greylight_value.split(",")[:2])
    except (AttributeError, ValueError):
        return False
    return (pf == gf and (gl - gf >= DELAY) == (pl - pf >= DELAY)
            and 0 < pl - gl < LAST_SEEN_REFRESH)
RETRY_WINDOW = 3600  # --retry-window=1h
RETRY_WINDOW_OPT = "1h"
MAX_AGE_DAYS = 5
MAX_AGE = MAX_AGE_DAYS * 86400
AWL_THRESHOLD = 3
HOSTNAME = "mx.diff.test"
# %r before %s, and second occurrences: only the first of each is substituted.
GREYLIST_TEXT = "%r is greylisting you for %s s; see http://greylist.test/help/%r.html (%s)"
# Second %h stays literal (first occurrence only; order t, v, d, h).
HEADER_TEMPLATE = "X-Greylist: delayed %t seconds by diff-%v at %h; %d (%h)"
POSTGREY_VERSION = "1.37"

# The simulated clock.  Far in the future of the real clock, so that
# greylightd's background expiry (which uses the real time) never removes
# anything during the test: every record's last-seen is in the future.
T0 = 2000000000  # 2033-05-18
MAIN_SPAN = 2 * 86400  # ordinary traffic stays well inside max-age

STARTUP_TIMEOUT = 30.0
REPLY_TIMEOUT = 15.0
STOP_TIMEOUT = 20.0
TOOL_TIMEOUT = 60.0

WHITELIST_CLIENTS = """\
# differential test client whitelist (same file for both servers)
trusted.example
/^mx\\d+\\.regex\\.example$/
203.0.113.0/25
198.18.7
2001:db8:ffff:1::/64
"""
WHITELIST_RECIPIENTS = """\
# differential test recipient whitelist
postmaster@
abuse@
wl-domain.example
"""

# Postfix 3.7 attribute order (smtpd_check.c check_policy_service).
ATTR_ORDER = [
    "request", "protocol_state", "protocol_name", "client_address", "client_name",
    "client_port", "reverse_client_name", "server_address", "server_port", "helo_name",
    "sender", "recipient", "recipient_count", "queue_id", "instance", "size",
    "etrn_domain", "stress", "sasl_method", "sasl_username", "sasl_sender",
    "ccert_subject", "ccert_issuer", "ccert_fingerprint", "ccert_pubkey_fingerprint",
    "encryption_protocol", "encryption_cipher", "encryption_keysize", "policy_context",
]

# --------------------------------------------------------------------------
# Process bookkeeping: every child is stopped by PID on any exit path.

_children = []  # list of (name, Popen)
_client_sockets = []  # our policy connections: closed before the servers are stopped


def _pdeathsig():
    """In the child: die with the test process (loopback servers never outlive it)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort only
        pass


def stop_process(name, proc, timeout=STOP_TIMEOUT):
    """SIGTERM by PID, bounded wait, then SIGKILL.  Returns (exit status, seconds, killed)."""
    if proc.poll() is not None:
        return proc.returncode, 0.0, False
    start = time.monotonic()
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
        return proc.returncode, time.monotonic() - start, False
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        return proc.returncode, time.monotonic() - start, True


def _cleanup_children():
    for sock in _client_sockets:
        try:
            sock.close()
        except OSError:
            pass
    for name, proc in _children:
        if proc.poll() is None:
            stop_process(name, proc, timeout=5)


atexit.register(_cleanup_children)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join("    " + l for l in data[-lines:])
    except OSError as e:
        return "    (cannot read %s: %s)" % (path, e)


class Fatal(Exception):
    pass


def start_server(name, argv, log_path, port):
    log = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=_pdeathsig, close_fds=True)
    log.close()
    _children.append((name, proc))
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise Fatal("%s exited during start-up with status %s\n  command: %s\n  log:\n%s"
                        % (name, proc.returncode, " ".join(argv), tail(log_path)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise Fatal("%s does not accept connections on 127.0.0.1:%d after %.0f s\n  log:\n%s"
                        % (name, port, STARTUP_TIMEOUT, tail(log_path)))
        time.sleep(0.1)


class PolicyClient:
    """One persistent policy connection."""

    def __init__(self, name, port):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT)
        self.sock.settimeout(REPLY_TIMEOUT)
        _client_sockets.append(self.sock)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_reply(self):
        deadline = time.monotonic() + REPLY_TIMEOUT
        while b"\n\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Fatal("%s: no reply within %.0f s" % (self.name, REPLY_TIMEOUT))
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Fatal("%s: no reply within %.0f s" % (self.name, REPLY_TIMEOUT))
            if not chunk:
                raise Fatal("%s: connection closed by the server (no reply)" % self.name)
            self.buf += chunk
        reply, self.buf = self.buf.split(b"\n\n", 1)
        return reply.decode("utf-8", "surrogateescape")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# Reference key construction (spec sections 4.3-4.4, 8.2).  Used only for
# diagnostics (history of a key) and to name the records of the max-age
# scenarios; the servers' own records are what is compared.

_TAG = re.compile(r"^[0-9a-z]{10}")


def normalise_sender(sender):
    if "@" not in sender:
        return sender
    user, domain = sender.split("@", 1)
    if user.startswith("prvs="):
        fields = user.split("=")
        while fields and fields[-1] == "":
            fields.pop()
        if len(fields) == 3:
            a, b = fields[1], fields[2]
            if _TAG.match(a) and not _TAG.match(b):
                user = b
            elif _TAG.match(b) and not _TAG.match(a):
                user = a
            else:
                user = b
    user = user.split("+", 1)[0]
    user = re.sub(r"\b\d+\b", "#", user, flags=re.ASCII)
    return user + "@" + domain


def ascii_lower(s):
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in s)


def netaddr_v6(addr):
    return ":".join("%X" % ((int(addr) >> (112 - 16 * i)) & 0xFFFF) for i in range(8))


def client_net(address):
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return str(ipaddress.ip_network("%s/24" % ip, strict=False).network_address)
    return netaddr_v6(ipaddress.ip_network("%s/64" % ip, strict=False).network_address)


def awl_key(address):
    ip = ipaddress.ip_address(address)
    return str(ip) if ip.version == 4 else netaddr_v6(ip)


def triplet_key(req):
    try:
        net = client_net(req.attrs["client_address"])
    except (KeyError, ValueError):
        return None
    if "sender" not in req.attrs or "recipient" not in req.attrs:
        return None
    return ascii_lower("%s/%s/%s" % (net, normalise_sender(req.attrs["sender"]),
                                     req.attrs["recipient"]))


# --------------------------------------------------------------------------
# Request generation


class Req:
    __slots__ = ("sort_time", "seq", "time", "attrs", "label", "expect_maxage")

    def __init__(self, sort_time, seq, time_, attrs, label, expect_maxage=False):
        self.sort_time = sort_time
        self.seq = seq
        self.time = time_
        self.attrs = attrs  # ordered dict of the attributes actually sent
        self.label = label
        self.expect_maxage = expect_maxage

    def encode(self):
        lines = ["%s=%s" % (k, v) for k, v in self.attrs.items()]
        return ("\n".join(lines) + "\n\n").encode("utf-8", "surrogateescape")

    def short(self):
        a = self.attrs
        parts = ["t=T0%+d" % (self.time - T0)]
        for k in ("client_address", "client_name", "sender", "recipient", "instance",
                  "queue_id"):
            parts.append("%s=%s" % (k, a[k]) if k in a else "%s=<absent>" % k)
        parts.append("etrn_domain=" + ("''" if "etrn_domain" in a else "<absent>"))
        return " ".join(parts) + "  [" + self.label + "]"


class Client:
    def __init__(self, address, name):
        self.address = address
        self.name = name


class Generator:
    def __init__(self, rng):
        self.rng = rng
        self.reqs = []
        self.seq = 0
        self.instance_counter = 0
        self.recent_instances = collections.deque(maxlen=24)
        self.maxage_triplet_keys = set()
        self.maxage_awl_keys = set()
        self.features = collections.Counter()
        self.uniq = 0

    # ---- helpers -----------------------------------------------------
    def fresh(self):
        self.uniq += 1
        return self.uniq

    def new_instance(self):
        self.instance_counter += 1
        # Postfix style "pid.hex.counter.0"; never the literal "0".
        inst = "%x.%08x.%x.0" % (self.rng.randrange(0x100, 0xffff),
                                 self.rng.randrange(1 << 32), self.instance_counter)
        self.recent_instances.append(inst)
        return inst

    def queue_id(self):
        alphabet = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"
        return "".join(self.rng.choice(alphabet) for _ in range(11))

    def attrs(self, t, client, sender, recipient, instance, queue_id, etrn=True,
              omit=()):
        rng = self.rng
        tls = rng.random() < 0.6
        values = {
            "request": "smtpd_access_policy",
            "protocol_state": "RCPT",
            "protocol_name": rng.choice(["ESMTP", "ESMTP", "SMTP"]),
            "client_address": client.address,
            "client_name": client.name,
            "client_port": str(rng.randrange(1024, 65536)),
            "reverse_client_name": client.name if client.name else "unknown",
            "server_address": "192.0.2.25",
            "server_port": "25",
            "helo_name": client.name if client.name not in ("", "unknown")
                         else "[%s]" % client.address,
            "sender": sender,
            "recipient": recipient,
            "recipient_count": "0",
            "queue_id": queue_id,
            "instance": instance,
            "size": str(rng.randrange(0, 200000)),
            "etrn_domain": "",
            "stress": "",
            "sasl_method": "",
            "sasl_username": "",
            "sasl_sender": "",
            "ccert_subject": "",
            "ccert_issuer": "",
            "ccert_fingerprint": "",
            "ccert_pubkey_fingerprint": "",
            "encryption_protocol": "TLSv1.3" if tls else "",
            "encryption_cipher": "TLS_AES_256_GCM_SHA384" if tls else "",
            "encryption_keysize": "256" if tls else "0",
            "policy_context": "",
        }
        out = {}
        for k in ATTR_ORDER:
            if k in omit:
                continue
            if k == "etrn_domain" and not etrn:
                continue
            if k == "instance" and instance is None:
                continue
            out[k] = values[k]
        out["policy_test_time"] = str(t)
        return out

    def emit(self, t, client, sender, recipient, label, instance="new", queue_id=None,
             etrn=None, omit=(), sort_time=None, expect_maxage=False):
        if instance == "new":
            instance = self.new_instance()
        if queue_id is None:
            queue_id = self.queue_id() if self.rng.random() < 0.5 else ""
        if etrn is None:
            etrn = self.rng.random() >= 0.1
        a = self.attrs(t, client, sender, recipient, instance, queue_id, etrn, omit)
        self.seq += 1
        r = Req(t if sort_time is None else sort_time, self.seq, t, a, label, expect_maxage)
        self.reqs.append(r)
        self._features(r)
        return r

    def message(self, t, client, sender, recipients, label, instance="new", queue=True,
                etrn=None, spread=False):
        """One delivery attempt of one message: one RCPT request per recipient."""
        if instance == "new":
            instance = self.new_instance()
        qid = ""
        out = []
        for i, rcpt in enumerate(recipients):
            # With smtpd_delay_open_until_valid_rcpt the first RCPT has no queue id.
            if queue and i > 0 and not qid and self.rng.random() < 0.7:
                qid = self.queue_id()
            elif queue and i == 0 and self.rng.random() < 0.3:
                qid = self.queue_id()
            tt = t + (self.rng.randrange(0, 2) * i if spread else 0)
            out.append(self.emit(tt, client, sender, rcpt, label, instance=instance,
                                 queue_id=qid, etrn=etrn))
        return out

    def _features(self, r):
        a = r.attrs
        f = self.features
        f["requests"] += 1
        addr = a.get("client_address", "")
        if ":" in addr:
            f["ipv6 client"] += 1
            if "::" in addr:
                f["ipv6 compressed form"] += 1
            if addr != addr.lower():
                f["ipv6 uppercase form"] += 1
        s = a.get("sender")
        if s is not None:
            if s.startswith("prvs=") or s.startswith("PRVS="):
                f["BATV sender"] += 1
            if "+" in s.split("@")[0]:
                f["+tagged sender"] += 1
            if re.search(r"\b\d+\b", s.split("@")[0], re.ASCII):
                f["numbered sender"] += 1
            if s == "":
                f["empty sender"] += 1
        for k in ("sender", "recipient"):
            if a.get(k) and a[k] != a[k].lower():
                f["uppercase " + k] += 1
        f["queue_id present" if a.get("queue_id") else "queue_id empty"] += 1
        if "etrn_domain" not in a:
            f["etrn_domain missing"] += 1
        if "instance" not in a:
            f["instance missing"] += 1
        for k in ("client_address", "client_name", "sender", "recipient"):
            if k not in a:
                f["required attribute missing"] += 1

    # ---- pools for random traffic -----------------------------------------
    def v6_forms(self, net_groups, host_groups):
        """Several textual forms of one IPv6 address (all valid, Postfix-like or not)."""
        groups = net_groups + host_groups
        ip = ipaddress.IPv6Address(":".join("%x" % g for g in groups))
        forms = [str(ip),  # compressed lowercase, what Postfix sends
                 ":".join("%x" % g for g in groups),  # expanded, no leading zeros
                 str(ip).upper(),  # compressed uppercase
                 ip.exploded]  # leading zeros
        return forms

    def build_pools(self):
        rng = self.rng
        clients = []
        names = ["mail.example.net", "unknown", "smtp.Example.COM", "mx2.sender.example",
                 "unknown", "out.mailer.example", ""]
        for net in ("192.0.2", "198.51.100", "100.64.7", "172.16.33"):
            for _ in range(4):
                clients.append([Client("%s.%d" % (net, rng.randrange(1, 255)),
                                       rng.choice(names))])
        for net in ((0x2001, 0xdb8, 1, 2), (0x2001, 0xdb8, 0xcafe, 0), (0x2001, 0xdb8, 0, 0)):
            for _ in range(3):
                host = [0, 0, rng.choice([0, 0, 0xa]), rng.randrange(1, 0x200)]
                forms = self.v6_forms(list(net), host)
                name = rng.choice(names)
                clients.append([Client(f, name) for f in forms])
        self.pool_clients = clients
        self.pool_recipients = ["bob@example.org", "Bob@Example.ORG", "carol+ext@example.org",
                                "dave@sub.example.org", "eve@other.example",
                                "Frank.Miller@Corp.Example", "grace@example.org",
                                "postmaster@example.org", "info@wl-domain.example",
                                "odd%s@ex%sample.org", "x@y@z.example"]

    def pool_host(self):
        rng = self.rng
        name = rng.choice(["unknown", "dyn.pool.example", "mail.example.net"])
        if rng.random() < 0.6:
            net = rng.choice(("192.0.2", "198.51.100", "100.64.7", "172.16.33"))
            return [Client("%s.%d" % (net, rng.randrange(1, 255)), name)]
        net = list(rng.choice(((0x2001, 0xdb8, 1, 2), (0x2001, 0xdb8, 0xcafe, 0),
                               (0x2001, 0xdb8, 0, 0))))
        host = [rng.randrange(0, 0x10000) if rng.random() < 0.5 else 0 for _ in range(3)]
        host.append(rng.randrange(1, 0x10000))
        return [Client(f, name) for f in self.v6_forms(net, host)]

    def pool_sender(self):
        rng = self.rng
        n = rng.randrange(1, 10 ** rng.randrange(1, 7))
        tag = "".join(rng.choice("0123456789abcdef") for _ in range(10))
        choices = [
            "alice@example.net",
            "Alice@Example.NET",
            "prvs=%s=alice@example.net" % tag,
            "prvs=alice=%s@example.net" % tag,
            "PRVS=%s=alice@example.net" % tag,
            "newsletter+%d@list.example" % n,
            "newsletter+x-%s@list.example" % tag,
            "bounce-%d-%d@lists.example" % (n, rng.randrange(1, 999)),
            "bounces+%d-abcd=example.org@mailer.example" % n,
            "user_%d@x.example" % (n % 20),
            "user%d@x.example" % (n % 5),
            "SRS0=HHH=%d=orig.example=user@fwd.example" % (n % 100),
            "",
            "nodomain",
            "MAILER-DAEMON",
            "a.%d.b-34_c@x.example" % (n % 7),
            "Jörg.%d@Exämple.de" % (n % 3),
        ]
        return rng.choice(choices)

    # ---- scripted scenarios (always included) -------------------------------
    def scripted(self):
        rng = self.rng
        start = lambda dur: T0 + rng.randrange(0, MAIN_SPAN - dur)  # noqa: E731

        def sclient(prefix, name="unknown"):
            return Client("%s.%d" % (prefix, rng.randrange(1, 255)), name)

        # 1. spec section 13 rows 1-6, IPv4 and IPv6
        for cl in (sclient("10.1.1", "mail.example.net"),
                   Client("2001:db8:10:1::5", "mail6.example.net")):
            t = start(400)
            s, r1, r2 = "alice@example.net", "bob@example.org", "carol@example.org"
            self.emit(t, cl, s, r1, "basic: new")
            self.emit(t + 60, cl, s, r1, "basic: early retry 240s missing")
            self.emit(t + 299, cl, s, r1, "basic: early retry 1s missing")
            inst = self.new_instance()
            self.emit(t + 300, cl, s, r1, "basic: exactly first+delay", instance=inst,
                      queue_id="ABC123", etrn=True)
            self.emit(t + 301, cl, s, r2, "basic: other rcpt same instance", instance=inst,
                      queue_id="ABC123", etrn=True)
            self.emit(t + 302, cl, s, r1, "basic: successful triplet again")

        # 2. late retries (inside the retry window), each with its own client
        for late in (301, 1000, 3599):
            cl = sclient("10.2.%d" % (late % 250))
            t = start(4000)
            s = "late%d@example.net" % self.fresh()
            self.emit(t, cl, s, "bob@example.org", "late: new")
            self.emit(t + late, cl, s, "bob@example.org", "late: retry +%d" % late)

        # 3. retry window boundaries (--retry-window=1h)
        cl = sclient("10.3.1")
        t = start(8000)
        s = "rw@example.net"
        self.emit(t, cl, s, "a@example.org", "rw: new")
        self.emit(t + RETRY_WINDOW, cl, s, "a@example.org", "rw: retry exactly at window")
        self.emit(t + 5, cl, s, "b@example.org", "rw: new")
        self.emit(t + 5 + RETRY_WINDOW + 1, cl, s, "b@example.org", "rw: window+1 restarts")
        self.emit(t + 5 + RETRY_WINDOW + 101, cl, s, "b@example.org", "rw: early after restart")
        self.emit(t + 5 + RETRY_WINDOW + 1 + DELAY, cl, s, "b@example.org",
                  "rw: pass after restart")
        self.emit(t + 10, cl, s, "c@example.org", "rw: new")
        self.emit(t + 130, cl, s, "c@example.org", "rw: early")
        self.emit(t + 10 + RETRY_WINDOW + 1, cl, s, "c@example.org",
                  "rw: window counted from first, not last")
        self.emit(t + 15, cl, s, "d@example.org", "rw: new")
        self.emit(t + 15 + 2 * RETRY_WINDOW + 77, cl, s, "d@example.org", "rw: long after")
        self.emit(t + 15 + 2 * RETRY_WINDOW + 77 + 299, cl, s, "d@example.org", "rw: early")

        # 4. multi-recipient messages: one header per message (instance)
        cl = sclient("10.4.1", "multi.example.net")
        t = start(2000)
        rcpts = ["r1@example.org", "R2@Example.Org", "r3+x@example.org", "r4@other.example"]
        self.message(t, cl, "multi@example.net", rcpts, "multi: first attempt")
        self.message(t + 400, cl, "multi@example.net", rcpts, "multi: retry, one header")
        self.message(t + 500, cl, "multi@example.net", rcpts + ["r5@example.org"],
                     "multi: repeat plus a new rcpt")
        self.message(t + 800, cl, "multi@example.net", ["r5@example.org", "r6@example.org"],
                     "multi: r5 passes, r6 new")
        # without instance attribute every first acceptance gets a header
        cl = sclient("10.4.2")
        t = start(1000)
        for r in ("n1@example.org", "n2@example.org"):
            self.emit(t, cl, "noinst@example.net", r, "no instance: new", instance=None)
        for r in ("n1@example.org", "n2@example.org"):
            self.emit(t + 333, cl, "noinst@example.net", r, "no instance: pass", instance=None)

        # 5. instance list of 10: reuse an instance after >10 and after <10 headers
        cl = sclient("10.5.1")
        t = start(2000)
        insts = []
        for i in range(12):
            self.emit(t, cl, "il%d@example.net" % i, "bob@example.org", "instances: new")
        for i in range(12):
            inst = self.new_instance()
            insts.append(inst)
            self.emit(t + 300 + i, cl, "il%d@example.net" % i, "bob@example.org",
                      "instances: header %d" % i, instance=inst)
        self.emit(t + 5, cl, "il-a@example.net", "bob@example.org", "instances: new")
        self.emit(t + 5, cl, "il-b@example.net", "bob@example.org", "instances: new")
        self.emit(t + 320, cl, "il-a@example.net", "bob@example.org",
                  "instances: reuse evicted instance", instance=insts[0])
        self.emit(t + 321, cl, "il-b@example.net", "bob@example.org",
                  "instances: reuse recent instance", instance=insts[-1])

        # 6. auto-whitelisting, IPv4: threshold 3, one count per hour
        self.awl_script(Client("10.6.1.7", "unknown"), [Client("10.6.1.8", "unknown")],
                        start(6 * 3600), "awl4")
        # 7. auto-whitelisting, IPv6: one address in several textual forms
        forms = self.v6_forms([0x2001, 0xdb8, 0xaa, 1], [0, 0, 0, 0x10])
        self.awl_script([Client(f, "v6.example.net") for f in forms],
                        [Client("2001:db8:aa:1::11", "v6.example.net")],
                        start(6 * 3600), "awl6")
        # empty client_name on the threshold (log format only, reply must match)
        self.awl_script(Client("10.6.2.9", ""), [], start(6 * 3600), "awl-noname")

        # 8. sender normalisation: the retry uses another raw sender of the same key
        pairs = [
            ("prvs=1234567890=user@x.example", "prvs=0987654321=user@x.example"),
            ("prvs=user=1234567890@x.example", "user@x.example"),
            ("prvs=0123456789=9876543210@x.example", "#@x.example"),
            ("PRVS=1234567890=u@x.example", "prvs=55=u@x.example"),
            ("prvs=abcdefghij12=bob@batv.example", "prvs=zzzzzzzzzz=bob@batv.example"),
            ("prvs=ABCDEFGHIJ=bob@batv.example", "prvs=ABCDEFGHIJ=bob@batv.example"),
            ("prvs=1234567890=@x.example", "prvs=7=@x.example"),
            ("prvs=a==b@x.example", "prvs=a==b@x.example"),
            ("user+tag@x.example", "user+other+more@x.example"),
            ("bounce-123-456+foo@lists.example", "bounce-9-8@lists.example"),
            ("user_12@x.example", "user_12@x.example"),
            ("a.12.b-34_c@x.example", "a.99.b-34_c@x.example"),
            ("user123@x.example", "user123@x.example"),
            ("SRS0=HHH=12=orig.example=user@fwd.example",
             "srs0=hhh=34=orig.example=user@fwd.example"),
            ("bounces+123456-abcd=example.org@mailer.example",
             "bounces+999-zz=example.net@mailer.example"),
            ("", ""),
            ("nodomain", "NoDomain"),
            ("a@b@c.example", "A@b@C.example"),
            ("Alice.Smith@Example.NET", "alice.smith@example.net"),
            ("Jörg.12@Exämple.de", "jörg.13@exämple.de"),
            ("a%b@pct.example", "a%b@pct.example"),
        ]
        for i, (first, retry) in enumerate(pairs):
            cl = sclient("10.8.%d" % i)
            t = start(1000)
            self.emit(t, cl, first, "norm@example.org", "normalisation: new")
            self.emit(t + DELAY, cl, retry, "norm@example.org", "normalisation: retry")
        # different keys for senders that only look alike
        cl = sclient("10.8.100")
        t = start(1000)
        self.emit(t, cl, "user123@x.example", "norm@example.org", "normalisation: new")
        self.emit(t + DELAY, cl, "user124@x.example", "norm@example.org",
                  "normalisation: distinct key")

        # 9. recipients: case kept in %r, last '@', no '@', '%s' in the domain
        cl = sclient("10.9.1")
        t = start(1000)
        for r in ("Bob+Ext@Example.ORG", "x@y@Z.example", "root", "", "odd%s@ex%sample.org",
                  "t%r@p%t.example"):
            self.emit(t, cl, "rc@example.net", r, "recipient forms", etrn=True)
            self.emit(t + 1, cl, "rc@example.net", r, "recipient forms, no etrn", etrn=False)

        # 10. IPv6 address forms, /64 masking, IPv4-mapped
        t = start(1000)
        for f in self.v6_forms([0x2001, 0xdb8, 0x99, 0xa], [0x1, 0, 0, 0x5]):
            self.emit(t, Client(f, "unknown"), "v6@example.net", "bob@example.org",
                      "ipv6 forms")
        self.emit(t + 1, Client("2001:db8:99:a:ffff::1", "unknown"), "v6@example.net",
                  "bob@example.org", "ipv6 same /64")
        self.emit(t + DELAY + 1, Client("2001:DB8:99:A:1234:5678:9ABC:DEF0", "unknown"),
                  "v6@example.net", "bob@example.org", "ipv6 same /64 passes")
        self.emit(t + 2, Client("::ffff:192.0.2.77", "unknown"), "mapped@example.net",
                  "bob@example.org", "ipv4-mapped ipv6")
        self.emit(t + 2, Client("::1", "localhost"), "lo@example.net", "bob@example.org",
                  "ipv6 loopback")

        # 11. clock going backwards (policy_test_time earlier than stored values)
        cl = sclient("10.11.1")
        t = start(2000)
        self.emit(t, cl, "back@example.net", "a@example.org", "backwards: new")
        self.emit(t - 500, cl, "back@example.net", "a@example.org",
                  "backwards: first in the future", sort_time=t)
        self.emit(t + 10, cl, "back@example.net", "b@example.org", "backwards: new")
        self.emit(t + 10 + DELAY, cl, "back@example.net", "b@example.org", "backwards: pass")
        self.emit(t + 10 + DELAY - 100, cl, "back@example.net", "b@example.org",
                  "backwards: after success", sort_time=t + 10 + DELAY)

        # 12. whitelists and missing attributes
        t = start(1000)
        self.emit(t, Client("192.0.2.200", "mx1.trusted.example"), "w@example.net",
                  "bob@example.org", "whitelist: client name")
        self.emit(t, Client("192.0.2.201", "MX7.REGEX.example"), "w@example.net",
                  "bob@example.org", "whitelist: client regex")
        self.emit(t, Client("203.0.113.100", "unknown"), "w@example.net", "bob@example.org",
                  "whitelist: client ip")
        self.emit(t, Client("203.0.113.200", "unknown"), "w@example.net", "bob@example.org",
                  "whitelist: outside /25")
        self.emit(t, Client("198.18.7.3", "unknown"), "w@example.net", "bob@example.org",
                  "whitelist: a.b.c entry")
        self.emit(t, Client("2001:db8:ffff:1::99", "unknown"), "w@example.net",
                  "bob@example.org", "whitelist: ipv6 net")
        self.emit(t, Client("192.0.2.202", "unknown"), "w@example.net", "Abuse+x@example.org",
                  "whitelist: recipient user@")
        self.emit(t, Client("192.0.2.202", "unknown"), "w@example.net",
                  "someone@mx.wl-domain.example", "whitelist: recipient domain")
        for missing in ("client_name", "sender", "recipient", "client_address"):
            self.emit(t + 1, sclient("10.12.1"), "m@example.net", "bob@example.org",
                      "missing " + missing, omit=(missing,))

        # 13. max-age (documented fix): isolated clients in 10.250.0.0/16
        self.maxage_scripts()

    def awl_script(self, clients, neighbours, t, tag):
        """Distinct triplets from one client passing >= 1 h apart until the threshold."""
        if isinstance(clients, Client):
            clients = [clients]
        pick = lambda: self.rng.choice(clients)  # noqa: E731
        rcpt = lambda i: "awl%d@example.org" % i  # noqa: E731
        s = "%s-%d@example.net" % (tag, self.fresh())
        # success 1 (count 1)
        self.emit(t, pick(), s, rcpt(1), tag + ": new 1")
        self.emit(t + DELAY, pick(), s, rcpt(1), tag + ": pass 1 (count 1)")
        # success inside the hour: not counted
        self.emit(t + 100, pick(), s, rcpt(2), tag + ": new 2")
        self.emit(t + 100 + DELAY, pick(), s, rcpt(2), tag + ": pass 2 (same hour)")
        # success exactly one hour after the counted one (count 2)
        self.emit(t + 3600, pick(), s, rcpt(3), tag + ": new 3")
        self.emit(t + DELAY + 3600, pick(), s, rcpt(3), tag + ": pass 3 (+1h exactly)")
        # the successful triplet again: never counts
        self.emit(t + DELAY + 2 * 3600 + 10, pick(), s, rcpt(1), tag + ": repeat 1")
        # success 3599 s after the counted one: not counted
        self.emit(t + 2 * 3600 - 100, pick(), s, rcpt(4), tag + ": new 4")
        self.emit(t + DELAY + 3600 + 3599, pick(), s, rcpt(4), tag + ": pass 4 (+3599)")
        # success (count 3 = threshold -> whitelisted)
        self.emit(t + 3 * 3600, pick(), s, rcpt(5), tag + ": new 5")
        self.emit(t + 3 * 3600 + DELAY + 1, pick(), s, rcpt(5), tag + ": pass 5 (threshold)")
        base = t + 3 * 3600 + DELAY + 1
        # now anything from the client passes (client AWL); refreshed hourly
        self.emit(base + 5, pick(), "other%d@example.net" % self.fresh(), rcpt(6),
                  tag + ": client AWL")
        self.emit(base + 1800, pick(), "", rcpt(7), tag + ": client AWL (no refresh)")
        self.emit(base + 3600, pick(), "x@y.example", rcpt(8), tag + ": client AWL (refresh)")
        self.emit(base + 3600 - 700, pick(), "x@y.example", rcpt(8),
                  tag + ": client AWL, last in the future", sort_time=base + 3600)
        for n in neighbours:
            # another address of the same network: shares triplets, not the AWL
            self.emit(base + 10, n, s, rcpt(1), tag + ": neighbour, known triplet")
            self.emit(base + 11, n, s, rcpt(9), tag + ": neighbour, new triplet")

    def maxage_scripts(self):
        rng = self.rng
        t = T0 + rng.randrange(0, MAIN_SPAN - 2000)
        # Every late request below comes after all ordinary traffic (t + max-age - 1 is
        # later than T0 + MAIN_SPAN): nothing else is stale when they arrive.
        # a) successful triplet, then a request more than max-age later: documented fix
        cl = Client("10.250.1.5", "stale.example.net")
        s, r = "stale@example.net", "bob@example.org"
        self.emit(t, cl, s, r, "max-age a: new")
        self.emit(t + DELAY, cl, s, r, "max-age a: pass")
        gap = MAX_AGE + rng.randrange(1, 86400)
        req = self.emit(t + DELAY + gap, cl, s, r, "max-age a: stale triplet (fix)",
                        expect_maxage=True)
        self.maxage_triplet_keys.add(triplet_key(req))
        # b) exactly max-age and just below: no difference
        for i, gap in enumerate((MAX_AGE, MAX_AGE - 1)):
            cl = Client("10.250.2.%d" % (5 + i), "edge.example.net")
            s = "edge%d@example.net" % i
            self.emit(t + 50, cl, s, r, "max-age b: new")
            self.emit(t + 50 + DELAY, cl, s, r, "max-age b: pass")
            self.emit(t + 50 + DELAY + gap, cl, s, r, "max-age b: gap %d (not stale)" % gap)
        # c) never successful, stale: both start over
        cl = Client("10.250.3.5", "unknown")
        self.emit(t + 60, cl, "never@example.net", r, "max-age c: new")
        self.emit(t + 120, cl, "never@example.net", r, "max-age c: early")
        self.emit(t + 120 + MAX_AGE + 5, cl, "never@example.net", r, "max-age c: stale, new")
        # d) auto-whitelisted client, then nothing for more than max-age: documented fix
        cl = Client("10.250.4.5", "awl-stale.example.net")
        for i in range(AWL_THRESHOLD):
            ti = t + i * 3700
            self.emit(ti, cl, "as%d@example.net" % i, r, "max-age d: new")
            self.emit(ti + DELAY, cl, "as%d@example.net" % i, r, "max-age d: pass")
        last = t + (AWL_THRESHOLD - 1) * 3700 + DELAY
        req = self.emit(last + MAX_AGE + 3600, cl, "fresh@example.net", r,
                        "max-age d: stale client AWL (fix)", expect_maxage=True)
        self.maxage_awl_keys.add(awl_key(cl.address))
        self.maxage_triplet_keys.add(triplet_key(req))

    # ---- random traffic ------------------------------------------------------
    def random_traffic(self, target):
        rng = self.rng
        self.build_pools()
        while len(self.reqs) < target:
            if rng.random() < 0.5:
                forms = rng.choice(self.pool_clients)
            else:
                # a host of a provider pool: shares triplets (same network) with the
                # pool clients but rarely reaches the auto-whitelist threshold
                forms = self.pool_host()
            sender = self.pool_sender()
            nrcpt = rng.choice([1, 1, 1, 2, 2, 3])
            rcpts = rng.sample(self.pool_recipients, nrcpt)
            t = T0 + rng.randrange(0, MAIN_SPAN - 30000)
            offsets = [0]
            for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
                offsets.append(offsets[-1] + rng.choice([
                    rng.randrange(1, DELAY), DELAY, rng.randrange(DELAY + 1, RETRY_WINDOW),
                    RETRY_WINDOW, RETRY_WINDOW + 1, rng.randrange(RETRY_WINDOW, 3 * 3600),
                    rng.randrange(3 * 3600, 8 * 3600)]))
            for off in offsets:
                inst = "new"
                if self.recent_instances and rng.random() < 0.05:
                    inst = rng.choice(list(self.recent_instances))  # interleaved connections
                elif rng.random() < 0.02:
                    inst = None
                cl = rng.choice(forms)
                # a retry may come with another textual form of the same address
                self.message(t + off, cl, self.pool_sender() if rng.random() < 0.1 else sender,
                             rcpts, "random", instance=inst, spread=True)

    def build(self, target):
        self.scripted()
        self.random_traffic(target)
        self.reqs.sort(key=lambda r: (r.sort_time, r.seq))
        return self.reqs


# --------------------------------------------------------------------------
# Reply normalisation

DATE_RE = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|" \
          r"Nov|Dec) \d{4} \d\d:\d\d:\d\d [A-Za-z0-9+-]+"


def header_regex(version):
    """Regex for `action=PREPEND <header>` built from the template: groups %t and %d."""
    out, i, seen = "", 0, set()
    tpl = HEADER_TEMPLATE
    while i < len(tpl):
        if tpl[i] == "%" and i + 1 < len(tpl) and tpl[i + 1] in "tvhd" and tpl[i + 1] not in seen:
            c = tpl[i + 1]
            seen.add(c)
            out += {"t": r"(?P<t>\d+)", "v": re.escape(version), "h": re.escape(HOSTNAME),
                    "d": "(?P<d>%s)" % DATE_RE}[c]
            i += 2
        else:
            out += re.escape(tpl[i])
            i += 1
    return re.compile(r"^action=PREPEND " + out + r"$")


def normalise_header(reply, regex):
    """Returns (normalised reply, date) or (reply, None) if it is not our header."""
    m = regex.match(reply)
    if not m:
        return reply, None
    return "action=PREPEND <header delayed %s seconds, version and date normalised>" \
        % m.group("t"), m.group("d")


def date_seconds(d):
    # "Sun, 29 Nov 2026 07:58:41 UTC": compare without the zone (both local time)
    return time.mktime(time.strptime(d.rsplit(" ", 1)[0], "%a, %d %b %Y %H:%M:%S"))


def expected_new_greylist(req):
    text = GREYLIST_TEXT
    if "etrn_domain" in req.attrs and not re.match(r"\d", text):
        text = "4.2.0 " + text
    text = text.replace("%s", str(DELAY), 1)
    domain = re.sub(r".*@", "", req.attrs["recipient"], flags=re.S)
    text = text.replace("%r", domain, 1)
    return "action=DEFER_IF_PERMIT " + text


# --------------------------------------------------------------------------
# Database dumps


def decode_printable(line):
    out = bytearray()
    i = 1  # leading space
    while i < len(line):
        c = line[i]
        if c == "\\":
            if line[i + 1] == "\\":
                out.append(0x5C)
                i += 2
            else:
                out.append(int(line[i + 1:i + 3], 16))
                i += 3
        else:
            out.extend(c.encode("latin-1"))
            i += 1
    return bytes(out)


def parse_dump(text):
    records = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines) and lines[i] != "HEADER=END":
        i += 1
    if i == len(lines):
        raise Fatal("unexpected dump output (no HEADER=END):\n" + text[:2000])
    i += 1
    while i < len(lines) and lines[i] != "DATA=END":
        key = decode_printable(lines[i])
        val = decode_printable(lines[i + 1])
        records[key.decode("utf-8", "surrogateescape")] = val.decode("utf-8", "surrogateescape")
        i += 2
    return records


def run_tool(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TOOL_TIMEOUT, encoding="latin-1")
    except FileNotFoundError:
        raise Fatal("%s not found (install db5.3-util / lmdb-utils)" % argv[0])
    return p.returncode, p.stdout, p.stderr


def action_lines(path):
    """The per-decision log lines (`[queue_id: ]action=...`) of a server log, in order."""
    out = []
    try:
        with open(path, "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if re.match(r"^(?:[0-9A-Za-z]+: )?action=", line):
                    out.append(line)
    except OSError:
        pass
    return out


def dump_postgrey(dbdir):
    rc, out, err = run_tool(["db5.3_recover", "-h", dbdir])
    if rc != 0:
        raise Fatal("db5.3_recover -h %s failed (%d): %s" % (dbdir, rc, err))
    result = {}
    for name, fname in (("triplets", "postgrey.db"), ("clients", "postgrey_clients.db")):
        rc, out, err = run_tool(["db5.3_dump", "-h", dbdir, "-p", fname])
        if rc != 0:
            raise Fatal("db5.3_dump -h %s -p %s failed (%d): %s" % (dbdir, fname, rc, err))
        result[name] = parse_dump(out)
    return result


def dump_greylight(dbdir):
    path = os.path.join(dbdir, "greylight.lmdb")
    if not os.path.exists(path):
        raise Fatal("greylightd left no %s (files: %s)" % (path, os.listdir(dbdir)))
    result = {}
    # greylightd keeps the triplets that have not passed yet in a database of their own;
    # together with "triplets" they are postgrey's one triplet table (a key is in one).
    for name, databases in (("triplets", ("triplets", "pending_triplets")),
                            ("clients", ("clients",))):
        result[name] = {}
        for database in databases:
            rc, out, err = run_tool(["mdb_dump", "-s", database, "-p", "-n", path])
            if rc != 0:
                raise Fatal("mdb_dump -s %s -p -n %s failed (%d): %s" % (database, path, rc, err))
            records = parse_dump(out)
            both = set(records) & set(result[name])
            if both:
                raise Fatal("keys in two greylight databases of %s: %s" % (name, sorted(both)[:5]))
            result[name].update(records)
    return result


# --------------------------------------------------------------------------
# Main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--greylightd", required=True, help="path of the greylightd binary")
    ap.add_argument("--seed", type=int, default=None, help="generator seed (default: random)")
    ap.add_argument("--requests", type=int, default=3000,
                    help="approximate number of requests (scripted scenarios always included)")
    ap.add_argument("--postgrey", default=POSTGREY, help="path of postgrey (default %(default)s)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory")
    ap.add_argument("--max-shown", type=int, default=25, help="differences shown in full")
    ap.add_argument("--transcript", metavar="FILE",
                    help="write every request with both replies to FILE")
    ap.add_argument("--empty-whitelists", action="store_true",
                    help="diagnosis only: give both servers empty whitelist files")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    print("differential: seed %d (rerun with --seed %d --requests %d)"
          % (seed, seed, args.requests), flush=True)

    for tool in (args.postgrey, args.greylightd):
        if not os.access(tool, os.X_OK):
            print("differential: FAIL: %s is not executable" % tool)
            return 2
    for tool in ("db5.3_dump", "db5.3_recover", "mdb_dump"):
        if shutil.which(tool) is None:
            print("differential: FAIL: %s not found (apt-get install db5.3-util lmdb-utils)"
                  % tool)
            return 2

    gen = Generator(random.Random(seed))
    reqs = gen.build(args.requests)

    tmp = tempfile.mkdtemp(prefix="greylight-differential-")
    ok = False
    try:
        ok = run(args, seed, gen, reqs, tmp)
    except Fatal as e:
        print("differential: FAIL: %s" % e)
        print("differential: seed %d" % seed)
        ok = False
    finally:
        _cleanup_children()
        if args.keep_tmp:
            print("differential: temporary files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            if not ok:
                print("differential: rerun with --keep-tmp to keep the databases and logs")
    return 0 if ok else 1


def run(args, seed, gen, reqs, tmp):
    pg_db = os.path.join(tmp, "postgrey-db")
    gl_db = os.path.join(tmp, "greylight-db")
    os.mkdir(pg_db, 0o700)
    os.mkdir(gl_db, 0o700)
    wl_clients = os.path.join(tmp, "whitelist_clients")
    wl_rcpts = os.path.join(tmp, "whitelist_recipients")
    with open(wl_clients, "w") as f:
        f.write("" if args.empty_whitelists else WHITELIST_CLIENTS)
    with open(wl_rcpts, "w") as f:
        f.write("" if args.empty_whitelists else WHITELIST_RECIPIENTS)
    pg_log = os.path.join(tmp, "postgrey.log")
    gl_log = os.path.join(tmp, "greylightd.log")

    # `greylightd --version` prints "greylightd VERSION": the %v of its header.
    version_words = subprocess.run([args.greylightd, "--version"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=TOOL_TIMEOUT,
                                   encoding="utf-8", errors="replace").stdout.split()
    if len(version_words) < 2:
        raise Fatal("cannot read the version from `%s --version`" % args.greylightd)
    gl_version = version_words[1]

    common = [
        "--delay=%d" % DELAY,
        "--retry-window=%s" % RETRY_WINDOW_OPT,
        "--max-age=%d" % MAX_AGE_DAYS,
        "--auto-whitelist-clients=%d" % AWL_THRESHOLD,
        "--greylist-text=%s" % GREYLIST_TEXT,
        "--hostname=%s" % HOSTNAME,
        "--x-greylist-header=%s" % HEADER_TEMPLATE,
        "--whitelist-clients=%s" % wl_clients,
        "--whitelist-recipients=%s" % wl_rcpts,
    ]
    root = os.geteuid() == 0
    if root:
        pg_user = ["--user=root", "--group=root"]
        gl_user = ["--user=root"]
    else:
        import grp
        import pwd
        pg_user = ["--user=%s" % pwd.getpwuid(os.geteuid()).pw_name,
                   "--group=%s" % grp.getgrgid(os.getegid()).gr_name]
        gl_user = []

    pg_port = free_port()
    gl_port = free_port()
    while gl_port == pg_port:
        gl_port = free_port()
    pg_argv = [args.postgrey, "--inet=127.0.0.1:%d" % pg_port, "--dbdir=%s" % pg_db] \
        + pg_user + common
    gl_argv = [args.greylightd, "--inet=127.0.0.1:%d" % gl_port, "--dbdir=%s" % gl_db] \
        + gl_user + common + ["--allow-policy-test-time", "--commit-interval=0"]
    print("differential: postgrey:   %s" % " ".join(pg_argv), flush=True)
    print("differential: greylightd: %s" % " ".join(gl_argv), flush=True)

    pg = start_server("postgrey", pg_argv, pg_log, pg_port)
    gl = start_server("greylightd", gl_argv, gl_log, gl_port)
    pgc = PolicyClient("postgrey", pg_port)
    glc = PolicyClient("greylightd", gl_port)

    pg_re = header_regex(POSTGREY_VERSION)
    gl_re = header_regex(gl_version)

    differences = []  # (index, kind, text)
    fixes = collections.Counter()
    history = collections.defaultdict(list)  # key -> [index]
    replies = []
    started = time.monotonic()

    for i, req in enumerate(reqs):
        data = req.encode()
        pgc.send(data)
        glc.send(data)
        try:
            pr = pgc.read_reply()
        except Fatal as e:
            raise Fatal("request #%d %s: %s\n  postgrey log:\n%s"
                        % (i, req.short(), e, tail(pg_log)))
        try:
            gr = glc.read_reply()
        except Fatal as e:
            raise Fatal("request #%d %s: %s\n  greylightd log:\n%s"
                        % (i, req.short(), e, tail(gl_log)))
        replies.append((pr, gr))
        key = triplet_key(req)
        hkeys = [k for k in (key, "client " + req.attrs.get("client_address", "?")) if k]
        for k in hkeys:
            history[k].append(i)

        npr, pdate = normalise_header(pr, pg_re)
        ngr, gdate = normalise_header(gr, gl_re)
        if pdate and gdate:
            if abs(date_seconds(pdate) - date_seconds(gdate)) > 60 or \
                    pdate.rsplit(" ", 1)[1] != gdate.rsplit(" ", 1)[1]:
                differences.append((i, "header date", "postgrey %r vs greylightd %r"
                                    % (pdate, gdate)))
            if pr != gr:
                fixes["X-Greylist header version/date"] += 1
        if req.expect_maxage:
            if npr == ngr:
                differences.append((i, "documented fix not observed",
                                    "max-age at lookup: both answered %r" % pr))
            elif npr == "action=DUNNO" and gr == expected_new_greylist(req):
                fixes["max-age enforced at lookup (reply)"] += 1
            else:
                differences.append((i, "reply", "expected postgrey DUNNO and greylightd %r"
                                    % expected_new_greylist(req)))
            continue
        if npr != ngr:
            differences.append((i, "reply", ""))

    elapsed = time.monotonic() - started
    pgc.close()
    glc.close()

    # Stop both by PID and compare the stored records.
    status = {}
    for name, proc in (("postgrey", pg), ("greylightd", gl)):
        rc, secs, killed = stop_process(name, proc)
        status[name] = (rc, secs, killed)
        print("differential: %s stopped by SIGTERM: exit status %s after %.1f s%s"
              % (name, rc, secs, " (did not exit, KILLED)" if killed else ""), flush=True)
    if status["greylightd"][2]:
        differences.append((None, "shutdown", "greylightd did not exit within %.0f s of SIGTERM"
                            % STOP_TIMEOUT))
    elif status["greylightd"][0] != 0:
        differences.append((None, "shutdown", "greylightd exited with status %s after SIGTERM"
                            % status["greylightd"][0]))

    pg_recs = dump_postgrey(pg_db)
    gl_recs = dump_greylight(gl_db)
    db_diffs = []
    n_records = 0
    for table, allowed in (("triplets", gen.maxage_triplet_keys),
                           ("clients", gen.maxage_awl_keys)):
        p, g = pg_recs[table], gl_recs[table]
        for k in sorted(set(p) | set(g)):
            n_records += 1
            if p.get(k) == g.get(k):
                continue
            if k in allowed:
                fixes["max-age enforced at lookup (record)"] += 1
                continue
            if table == "triplets" and last_seen_refresh_skip(p.get(k), g.get(k)):
                fixes["triplet's last sighting not rewritten within 60 s"] += 1
                continue
            db_diffs.append((table, k, p.get(k), g.get(k)))

    # ---- report --------------------------------------------------------------
    # Each server logs one `action=` line per request that has the four required
    # attributes, in request order: map them back to requests for the diagnostics.
    logged = [i for i, r in enumerate(reqs)
              if all(k in r.attrs for k in ("client_address", "client_name", "sender",
                                            "recipient"))]
    log_of = {}
    for name, path in (("postgrey", pg_log), ("greylightd", gl_log)):
        lines = action_lines(path)
        if len(lines) == len(logged):
            log_of[name] = dict(zip(logged, lines))
        else:
            print("differential: note: %s logged %d action lines for %d requests; log lines "
                  "are not shown with the differences" % (name, len(lines), len(logged)))

    def show_request(i):
        r = reqs[i]
        pr, gr = replies[i]
        out = "  #%d %s\n      postgrey:   %s\n      greylightd: %s" % (i, r.short(), pr, gr)
        for name in ("postgrey", "greylightd"):
            if name in log_of and i in log_of[name]:
                out += "\n      %s log: %s" % (name, log_of[name][i])
        return out

    # Informational only (the brief compares replies and records): the decision part
    # of the log lines, `[queue_id: ]action=..., reason=...[, delay=N]`.
    log_mismatch = []
    if len(log_of) == 2:
        def decision(line):
            return re.split(r", (?:client_name|client_address|sender|recipient)=", line)[0]
        for i in logged:
            if reqs[i].expect_maxage:
                continue
            if decision(log_of["postgrey"][i]) != decision(log_of["greylightd"][i]):
                log_mismatch.append(i)
        print("differential: log lines: %d compared, %d differ in queue_id/action/reason/delay "
              "(informational)%s" % (len(logged), len(log_mismatch),
                                     ", first at request #%d" % log_mismatch[0]
                                     if log_mismatch else ""))

    def kind(reply):
        word = reply[len("action="):].split(" ", 1)[0]
        return word

    if differences:
        summary = collections.Counter()
        for i, k, _ in differences:
            if i is None:
                summary[k] += 1
            else:
                reason = ""
                if "postgrey" in log_of and i in log_of["postgrey"]:
                    m = re.search(r"reason=([^,(]*)", log_of["postgrey"][i])
                    reason = " (postgrey reason=%s)" % m.group(1).strip() if m else ""
                summary["%s: postgrey %s, greylightd %s%s"
                        % (k, kind(replies[i][0]), kind(replies[i][1]), reason)] += 1
        print("\ndifferential: reply differences by kind:")
        for k, n in summary.most_common():
            print("  %5d  %s" % (n, k))

    def show_history(keys, upto, limit=8):
        idx = sorted(set(j for k in keys for j in history.get(k, []) if upto is None or j < upto))
        lines = []
        for j in idx[-limit:]:
            lines.append("    earlier " + show_request(j).strip().replace("\n", "\n    "))
        return "\n".join(lines)

    shown = 0
    if differences:
        print("\ndifferential: %d REPLY DIFFERENCES" % len(differences))
        for i, kind, text in differences:
            if shown >= args.max_shown:
                break
            shown += 1
            if i is None:
                print("- %s: %s" % (kind, text))
                continue
            req = reqs[i]
            print("- %s difference at request #%d %s" % (kind, i, text))
            print(show_request(i))
            keys = [k for k in (triplet_key(req), "client " + req.attrs.get("client_address",
                                                                            "?")) if k]
            print("    triplet key (reference): %s" % triplet_key(req))
            h = show_history(keys, i)
            if h:
                print("    history of this key/client:\n" + h)
    if db_diffs:
        print("\ndifferential: %d STORED RECORD DIFFERENCES" % len(db_diffs))
        for table, k, pv, gv in db_diffs[:args.max_shown]:
            print("- %s %r: postgrey %s, greylightd %s" % (table, k, pv, gv))
            if table == "triplets":
                h = show_history([k], None, 6)
                if h:
                    print("    requests with this key:\n" + h)
    if differences or db_diffs:
        print("\n  postgrey log (tail):\n%s\n  greylightd log (tail):\n%s"
              % (tail(pg_log, 15), tail(gl_log, 15)))

    if args.transcript:
        with open(args.transcript, "w", encoding="utf-8", errors="surrogateescape") as f:
            for i in range(len(replies)):
                f.write(show_request(i) + "\n")

    # Coverage: postgrey's own log says which paths were taken.
    reasons = collections.Counter()
    try:
        with open(pg_log, "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace")
                m = re.search(r"action=(\w+), reason=([a-zA-Z -]+)", line)
                if m:
                    reason = m.group(2).strip()
                    if "delay=" in line:
                        reason += " +header"
                    reasons["%s/%s" % (m.group(1), reason)] += 1
                elif "whitelisted: " in line:
                    reasons["AWL threshold reached"] += 1
                elif "correcting date" in line:
                    reasons["first seen in the future corrected"] += 1
                elif "attribute missing" in line:
                    reasons["attribute missing"] += 1
    except OSError:
        pass
    print("\ndifferential: coverage (postgrey log): " + ", ".join(
        "%s %d" % kv for kv in sorted(reasons.items())))
    print("differential: coverage (requests): " + ", ".join(
        "%s %d" % kv for kv in sorted(gen.features.items())))
    required = ["greylist/new", "greylist/early-retry", "pass/triplet found +header",
                "pass/triplet found", "pass/client AWL", "AWL threshold reached",
                "first seen in the future corrected", "attribute missing"]
    if not args.empty_whitelists:
        required += ["pass/client whitelist", "pass/recipient whitelist"]
    missing_cov = [r for r in required if reasons[r] == 0]
    if missing_cov:
        print("differential: FAIL: paths never taken (generator or log parsing broken): %s"
              % ", ".join(missing_cov))

    nfix = sum(fixes.values())
    if fixes:
        print("differential: documented fixes skipped: " + ", ".join(
            "%s %d" % kv for kv in sorted(fixes.items())))
    print("differential: %d stored records compared (triplets %d/%d, clients %d/%d "
          "postgrey/greylightd)" % (n_records, len(pg_recs["triplets"]),
                                    len(gl_recs["triplets"]), len(pg_recs["clients"]),
                                    len(gl_recs["clients"])))
    print("differential: %d requests compared, %d differences, %d documented fixes skipped "
          "(seed %d, %.1f s)" % (len(reqs), len(differences) + len(db_diffs), nfix, seed, elapsed))
    return not differences and not db_diffs and not missing_cov


if __name__ == "__main__":
    sys.exit(main())
