#!/usr/bin/env python3
"""Delivery-delay simulation (issue 16, point 4): what each way of keying clients costs
legitimate mail in delay and lets through of spam.

    bench/delay_simulation.py [--greylightd build/src/greylightd] [--seed 1] [--scale 1.0]
                              [--output BENCHMARKS.md | --output -]

Modelled senders (bench/delay_world.py: addresses, names, SPF records, retry schedules)
send their messages to a real greylightd through the policy protocol, one request per
delivery attempt, in the order of the attempts' times, which the requests carry as
`policy_test_time` (greylightd runs with --allow-policy-test-time): days of mail replay
in a minute, without sleeping, and the figures depend only on the seed, not on the
machine's speed or load. A private unbound on a loopback port serves the modelled
domains' SPF records to greylightd's SPF checks (--spf-keys).

One row per configuration: the baseline, postgrey 1.37 itself (/usr/sbin/postgrey, subnet
keys; skipped with a note if it is not installed), then greylightd for every
--lookup-by mode, without and with --spf-keys, and with reply tracking if this
greylightd has it (an --outbound-inet listener; otherwise those rows are skipped with a
note). Each configuration starts on an empty database. For each it reports the delay
greylisting added to the legitimate messages that were delivered (mean, 95th percentile),
the legitimate messages never delivered (their sender gave up), and the share of spam
messages that got through.

The section is written into BENCHMARKS.md between the markers
<!-- delay-simulation:begin --> and <!-- delay-simulation:end --> (appended if absent);
bench/run.sh keeps it when it rewrites the rest of the file. --check makes the script a
test: it fails unless greylightd's subnet row equals postgrey's on every figure and no SPF
check failed (CTest runs it on a small scale).
"""
import argparse
import datetime
import heapq
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import delay_world  # noqa: E402
from reputation_test import Unbound  # noqa: E402

BEGIN = "<!-- delay-simulation:begin -->"
END = "<!-- delay-simulation:end -->"
POSTGREY = "/usr/sbin/postgrey"
START_TIMEOUT = 20  # seconds for a server to listen
STOP_TIMEOUT = 20
REQUEST_TIMEOUT = 30


def log(message):
    print(f"[delay-sim {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PolicyConnection:
    """One persistent policy connection, one request in flight, as Postfix's smtpd."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT)
        self.buffer = b""

    def ask(self, attributes):
        self.sock.sendall("".join(f"{k}={v}\n" for k, v in attributes.items()).encode() + b"\n")
        while b"\n\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the policy server closed the connection")
            self.buffer += chunk
        reply, self.buffer = self.buffer.split(b"\n\n", 1)
        text = reply.decode(errors="replace")
        if not text.startswith("action="):
            raise RuntimeError(f"malformed reply {text!r}")
        return text[len("action="):]

    def close(self):
        self.sock.close()


class Server:
    """A policy server process on a free loopback port, stopped by its PID."""

    def __init__(self, name, argv, port, workdir, outbound_port=None, metrics_port=None):
        self.name = name
        self.argv = argv
        self.port = port
        self.outbound_port = outbound_port
        self.metrics_port = metrics_port
        self.log_path = os.path.join(workdir, "server.log")
        self.process = None

    def start(self):
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=out,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        # Every listener this run uses: the outbound one may be bound after the inbound one.
        ports = [p for p in (self.port, self.outbound_port) if p]
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.process.returncode}:\n{self.log()}")
            try:
                for port in ports:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen within {START_TIMEOUT}s")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-3000:]

    def metric(self, name, labels):
        if self.metrics_port is None:
            return None
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as response:
            text = response.read().decode()
        m = re.search(r"(?m)^" + re.escape(f"{name}{{{labels}}}") + r" (\S+)$", text)
        return float(m.group(1)) if m else None


class Config:
    def __init__(self, label, lookup_by=None, spf=False, replies=False, postgrey=False):
        self.label = label
        self.lookup_by = lookup_by
        self.spf = spf
        self.replies = replies
        self.postgrey = postgrey

    def server(self, args, dns_port, workdir):
        port = free_port()
        dbdir = os.path.join(workdir, "db")
        os.makedirs(dbdir)
        common = ["--whitelist-clients=/dev/null", "--whitelist-recipients=/dev/null"]
        if self.postgrey:
            argv = [args.postgrey, f"--inet=127.0.0.1:{port}", f"--dbdir={dbdir}", "--user=root",
                    "--group=root"] + common
            return Server(self.label, argv, port, workdir)
        metrics = free_port()
        argv = [args.greylightd, f"--inet=127.0.0.1:{port}", f"--dbdir={dbdir}", "--user=root",
                "--allow-policy-test-time", f"--lookup-by={self.lookup_by}",
                f"--metrics-listen=127.0.0.1:{metrics}"] + common
        if self.spf:
            # A generous timeout: a check that times out counts as temperror, which --check
            # refuses, so a slow machine cannot change the figures silently.
            argv += ["--spf-keys", f"--dns-servers=127.0.0.1:{dns_port}", "--dns-timeout=10000"]
        outbound = None
        if self.replies:
            outbound = free_port()
            argv.append(f"--outbound-inet=127.0.0.1:{outbound}")
        return Server(self.label, argv, port, workdir, outbound, metrics)


def greylisted(action):
    """Whether an answer refuses the attempt for now (DEFER_IF_PERMIT, 4xx)."""
    word = action.split(" ", 1)[0].upper()
    return word.startswith("DEFER") or word[:1] == "4"


def run_config(config, args, world, messages, dns_port, workdir):
    """Replays `messages` against a fresh server for `config`; returns per-message results."""
    server = config.server(args, dns_port, workdir).start()
    inbound = PolicyConnection(server.port)
    outbound = PolicyConnection(server.outbound_port) if server.outbound_port else None
    delivered = {}  # message index -> delay in seconds
    queue = []  # (time, sequence, kind, message index, attempt index)
    sequence = 0
    for index, message in enumerate(messages):
        if message.outbound is not None and outbound is not None:
            heapq.heappush(queue, (message.outbound.time, sequence, "out", index, 0))
            sequence += 1
        for number, attempt in enumerate(message.attempts):
            heapq.heappush(queue, (attempt.time, sequence, "in", index, number))
            sequence += 1
    requests = 0
    started = time.monotonic()
    try:
        while queue:
            when, _, kind, index, number = heapq.heappop(queue)
            message = messages[index]
            if kind == "out":
                outbound.ask(delay_world.outbound_request(message.outbound, world))
                continue
            if index in delivered:
                continue  # delivered: the sender stopped retrying
            attempt = message.attempts[number]
            action = inbound.ask(delay_world.inbound_request(attempt, index, number))
            requests += 1
            if not greylisted(action):
                delivered[index] = attempt.time - message.attempts[0].time
        temperrors = server.metric("greylight_spf_checks_total", 'result="temperror"')
    finally:
        inbound.close()
        if outbound:
            outbound.close()
        server.stop()
    log(f"{config.label}: {requests} requests in {time.monotonic() - started:.1f} s")
    return delivered, temperrors


def nearest_rank(sorted_values, percent):
    if not sorted_values:
        return None
    rank = max(1, -(-percent * len(sorted_values) // 100))
    return sorted_values[rank - 1]


def summarise(messages, delivered):
    legit = [i for i, m in enumerate(messages) if m.legit]
    spam = [i for i, m in enumerate(messages) if not m.legit]
    delays = sorted(delivered[i] for i in legit if i in delivered)
    row = {
        "legit": len(legit),
        "delivered": len(delays),
        "never": len(legit) - len(delays),
        "mean_min": sum(delays) / len(delays) / 60 if delays else None,
        "p95_min": nearest_rank(delays, 95) / 60 if delays else None,
        "spam": len(spam),
        "spam_passed": sum(1 for i in spam if i in delivered),
        "by_model": {},
    }
    for model in delay_world.MODEL_ORDER:
        members = [i for i, m in enumerate(messages) if m.model == model]
        if not members:
            continue
        got = sorted(delivered[i] for i in members if i in delivered)
        row["by_model"][model] = {
            "count": len(members),
            "delivered": len(got),
            "mean_min": sum(got) / len(got) / 60 if got else None,
        }
    return row


def figure(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def render(rows, notes, args, world, messages, command):
    legit = sum(1 for m in messages if m.legit)
    spam = len(messages) - legit
    baseline = rows[0][1] if rows else None
    out = [BEGIN, "## Delivery delay: postgrey's keys, --lookup-by, --spf-keys, reply tracking", ""]
    out += [
        f"Produced by `{command}`; do not edit by hand, run it again.",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"commit {git_commit()}. The figures are a pure function of the seed and the scale "
        "(time is `policy_test_time`), not of the machine's speed or load.",
        f"- Seed {args.seed}, scale {args.scale}: {legit} legitimate and {spam} spam messages "
        f"arriving over {world.days} days, to {world.local_users} local users; every server "
        "with its default settings (delay 300 s, retry window 2 days, auto-whitelist after 5 "
        "deliveries) and empty whitelists, on an empty database.",
        "- Senders (the models and their parameters are in `bench/delay_world.py`):",
    ]
    for model in delay_world.MODEL_ORDER:
        count = sum(1 for m in messages if m.model == model)
        out.append(f"  - {delay_world.DESCRIPTIONS[model]} ({count} messages)")
    out += [
        "- Delay: from a message's first attempt to the attempt that was accepted; mean and",
        "  95th percentile (nearest rank) over the legitimate messages delivered. Never",
        "  delivered: legitimate messages whose sender gave up. Spam passed: spam messages",
        "  accepted at some attempt.",
        "",
        "| configuration | legit delay mean (min) | p95 (min) | never delivered | spam passed |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, row in rows:
        out.append(f"| {label} | {figure(row['mean_min'])} | {figure(row['p95_min'])} | "
                   f"{row['never']} of {row['legit']} | "
                   f"{row['spam_passed']} of {row['spam']} "
                   f"({100 * row['spam_passed'] / max(row['spam'], 1):.1f}%) |")
    out += ["", "Mean delay by sender (minutes; never delivered in brackets when any):", ""]
    legit_models = [m for m in delay_world.MODEL_ORDER if delay_world.LEGIT[m]]
    spam_models = [m for m in delay_world.MODEL_ORDER if not delay_world.LEGIT[m]]
    out.append("| configuration | " + " | ".join(delay_world.SHORT[m] for m in legit_models)
               + " | " + " | ".join(delay_world.SHORT[m] + " passed" for m in spam_models) + " |")
    out.append("|---|" + "---:|" * (len(legit_models) + len(spam_models)))
    for label, row in rows:
        cells = []
        for model in legit_models:
            stats = row["by_model"].get(model)
            if not stats:
                cells.append("")
                continue
            lost = stats["count"] - stats["delivered"]
            cells.append(figure(stats["mean_min"]) + (f" ({lost})" if lost else ""))
        for model in spam_models:
            stats = row["by_model"].get(model)
            cells.append(f"{stats['delivered']} of {stats['count']}" if stats else "")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    if baseline is not None and len(rows) > 1:
        same = [label for label, row in rows[1:] if row == baseline]
        if same:
            out += ["", "Identical to the baseline on every figure: " + ", ".join(same) + "."]
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    out.append(END)
    return "\n".join(out) + "\n"


def git_commit():
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return (commit or "none") + (" with uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_section(path, section):
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + (("\n" + tail) if tail else "")
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    with open(path, "w") as f:
        f.write(text)


def supports(binary, option):
    try:
        result = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return option in result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--greylightd", default=os.path.join(ROOT, "build", "src", "greylightd"))
    parser.add_argument("--postgrey", default=POSTGREY)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies the number of messages of every model")
    parser.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"),
                        help="file to write the section into; - prints it")
    parser.add_argument("--modes", default="subnet,host,domain,smart",
                        help="--lookup-by modes to run, comma-separated")
    parser.add_argument("--check", action="store_true",
                        help="fail unless greylightd's subnet row equals postgrey's and no SPF "
                             "check failed")
    args = parser.parse_args()
    if not 0 < args.scale <= 20:
        parser.error("--scale must be in (0, 20]")
    if not os.access(args.greylightd, os.X_OK):
        parser.error(f"greylightd not executable: {args.greylightd}")
    if os.geteuid() != 0:
        parser.error("run as root: the servers take --user=root")
    command = "bench/delay_simulation.py" + "".join(
        f" {a}" for a in sys.argv[1:] if not a.startswith("--output") and not a.startswith("--greylightd"))

    world = delay_world.World(args.seed)
    messages = world.messages(args.scale)
    log(f"{len(messages)} messages, {sum(len(m.attempts) for m in messages)} attempts at most")

    notes = []
    configs = []
    have_postgrey = os.access(args.postgrey, os.X_OK)
    if have_postgrey:
        configs.append(Config("postgrey 1.37 (baseline: subnet keys)", postgrey=True))
    else:
        notes.append(f"postgrey baseline skipped: {args.postgrey} is not installed "
                     "(Debian package postgrey)")
    replies = supports(args.greylightd, "--outbound-inet")
    if not replies:
        notes.append("reply tracking rows skipped: this greylightd has no --outbound-inet "
                     "listener yet; with it, each mode is run again with the local users' "
                     "outbound mail announced there before the replies arrive")
    for mode in args.modes.split(","):
        for spf in (False, True):
            for reply in ((False, True) if replies else (False,)):
                label = f"greylightd --lookup-by={mode}" + (" --spf-keys" if spf else "") + \
                        (" + reply tracking" if reply else "")
                configs.append(Config(label, lookup_by=mode, spf=spf, replies=reply))

    work = tempfile.mkdtemp(prefix="greylight-delay-sim-")
    dns = None
    rows = []
    failures = []
    try:
        if any(c.spf for c in configs):
            dns = Unbound(world.unbound_zones())
            log(f"unbound on 127.0.0.1:{dns.port} serving {len(world.unbound_zones())} lines")
        for i, config in enumerate(configs):
            workdir = os.path.join(work, str(i))
            os.makedirs(workdir)
            delivered, temperrors = run_config(config, args, world, messages,
                                               dns.port if dns else None, workdir)
            if config.spf and temperrors:
                failures.append(f"{config.label}: {int(temperrors)} SPF checks failed (temperror)")
            rows.append((config.label, summarise(messages, delivered)))
    finally:
        if dns:
            dns.cleanup()
        shutil.rmtree(work, ignore_errors=True)

    section = render(rows, notes + failures, args, world, messages, command)
    if args.output == "-":
        sys.stdout.write(section)
    else:
        write_section(args.output, section)
        log(f"section written to {args.output}")
    if args.check:
        by_label = dict(rows)
        postgrey = next((row for label, row in rows if label.startswith("postgrey")), None)
        subnet = by_label.get("greylightd --lookup-by=subnet")
        if postgrey is None:
            failures.append("--check needs postgrey")
        elif subnet != postgrey:
            failures.append(f"greylightd's subnet row differs from postgrey's:\n{subnet}\n{postgrey}")
    for failure in failures:
        log(f"FAIL {failure}")
    return 1 if failures and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
