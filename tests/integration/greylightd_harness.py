"""Starts the real greylightd for integration tests and talks the policy protocol to it.

Loopback only; every wait is bounded; daemons are stopped by PID.
"""
import os
import signal
import socket
import subprocess
import tempfile
import time

T = 1800000000  # the compat spec's base time


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def request(**attributes):
    """A Postfix-like request; attributes override the compat spec's base request."""
    base = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.10",
        "client_name": "mail.example.net",
        "sender": "alice@example.net",
        "recipient": "bob@example.org",
        "etrn_domain": "",
        "instance": "i1",
    }
    base.update({k: (None if v is None else str(v)) for k, v in attributes.items()})
    return "".join(f"{k}={v}\n" for k, v in base.items() if v is not None) + "\n"


# greylightd's options that make it listen, and whether their value is a socket path.
LISTENER_OPTIONS = {"--inet": False, "--outbound-inet": False, "--metrics-listen": False,
                    "--unix": True, "--outbound-unix": True}


def listening_addresses(command):
    """Every address the greylightd `command` listens on, in PolicyClient's form."""
    addresses = []
    for arg in command:
        name, _, value = arg.partition("=")
        if name not in LISTENER_OPTIONS or not value:
            continue
        if LISTENER_OPTIONS[name]:
            addresses.append(value)
            continue
        host, _, port = value.rpartition(":")
        if not port.isdigit():
            continue
        host = {"": "127.0.0.1", "*": "127.0.0.1", "[::]": "::1"}.get(host, host.strip("[]"))
        addresses.append((host, int(port)))
    return addresses


class PolicyClient:
    def __init__(self, address, timeout=10):
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def read_reply(self):
        """Returns the action of the next reply, or None if the server closed."""
        while b"\n\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        reply, self.buffer = self.buffer.split(b"\n\n", 1)
        line = reply.decode()
        assert line.startswith("action="), line
        return line[len("action="):]

    def ask(self, data):
        self.send(data)
        return self.read_reply()

    def closed_without_reply(self):
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


class Daemon:
    """A greylightd process with its own dbdir, log file and listeners."""

    def __init__(self, binary, args=(), dbdir=None, inet=True, inet6=False, unix=False):
        self.binary = binary
        self.tmp = tempfile.TemporaryDirectory(prefix="greylightd-it-")
        self.dbdir = dbdir or os.path.join(self.tmp.name, "db")
        self.log_path = os.path.join(self.tmp.name, "greylightd.log")
        self.port = free_port() if inet else None
        self.port6 = free_port(socket.AF_INET6, "::1") if inet6 else None
        self.socket_path = os.path.join(self.tmp.name, "policy.sock") if unix else None
        self.args = list(args)
        self.process = None

    def command(self):
        cmd = [self.binary, f"--dbdir={self.dbdir}", "--user=root", "--allow-policy-test-time"]
        if self.port:
            cmd.append(f"--inet=127.0.0.1:{self.port}")
        if self.port6:
            cmd.append(f"--inet=[::1]:{self.port6}")
        if self.socket_path:
            cmd.append(f"--unix={self.socket_path}")
        return cmd + self.args

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command(), stdout=self.log, stderr=self.log)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"greylightd exited {self.process.returncode}:\n{self.log_text()}")
            try:
                # Every listener, not just the first: greylightd binds them one after the
                # other, and a TCP socket accepts into its backlog as soon as it listens.
                for address in listening_addresses(self.command()):
                    self.client(address).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("greylightd did not start listening in time")

    def address(self):
        if self.port:
            return ("127.0.0.1", self.port)
        if self.port6:
            return ("::1", self.port6)
        return self.socket_path

    def client(self, address=None):
        return PolicyClient(address or self.address())

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError("greylightd did not stop on SIGTERM in time")
        finally:
            self.log.close()
        return self.process.returncode

    def log_text(self):
        if self.process is not None and self.process.poll() is None:
            time.sleep(0.25)  # decision lines are flushed every 100 ms (log::kFlushInterval)
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def cleanup(self):
        try:
            if hasattr(self, "log") and not self.log.closed:
                self.log.close()
            if self.process and self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        finally:
            self.tmp.cleanup()


def run(binary, *args, timeout=10):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
