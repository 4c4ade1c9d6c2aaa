"""A second host for tests that must see a non-loopback peer: a network namespace made by
the test (`ip netns add`) joined to this one by a veth pair on a private /30 of
10.231.0.0/16. Nothing leaves the machine; everything is removed on close. Needs root.
"""
import itertools
import json
import os
import subprocess
import sys
import textwrap

_counter = itertools.count()

# Run inside the namespace: opens COUNT connections to HOST:PORT, sends one request on
# each, sorts them by what came back, prints the tally as JSON, then holds the open ones
# until its standard input closes (so the server sees them all at once).
_CLIENT = textwrap.dedent("""
    import json, resource, socket, sys
    host, port, count, payload = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 256), hard))
    held, tally = [], {"answered": 0, "refused": 0}
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=10)
        try:
            s.sendall(payload.encode())
            reply = b""
            while b"\\n\\n" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except (ConnectionResetError, BrokenPipeError):
            reply = b""
        if reply.startswith(b"action="):
            tally["answered"] += 1
            held.append(s)
        else:
            tally["refused"] += 1
            s.close()
    print(json.dumps(tally), flush=True)
    sys.stdin.read()
""")


def available():
    """Whether this process may make network namespaces (root with iproute2)."""
    if os.geteuid() != 0:
        return False
    return subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0


class RemoteHost:
    """`address` is the namespace's own address, `gateway` this host's end of the link."""

    def __init__(self):
        n = (os.getpid() * 7 + next(_counter)) % 16000
        self.name = f"glt{os.getpid()}x{n}"
        self.host_link, self.ns_link = f"glh{n}", f"gln{n}"
        base = 4 * n  # one /30 per host: .1 here, .2 in the namespace
        self.gateway = f"10.231.{base // 256}.{base % 256 + 1}"
        self.address = f"10.231.{base // 256}.{base % 256 + 2}"
        self._made = False

    def __enter__(self):
        # nsenter only switches the network namespace: unlike `ip netns exec` and `ip -n`,
        # it needs no mount namespace of its own, so it works in a chroot too (CI's fresh
        # root).
        def ip(*args):
            r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                raise AssertionError(f"ip {' '.join(args)}: {r.stderr.strip()}")
        try:
            ip("netns", "add", self.name)
            self._made = True
            ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.ns_link)
            ip("link", "set", self.ns_link, "netns", self.name)
            ip("addr", "add", f"{self.gateway}/30", "dev", self.host_link)
            ip("link", "set", self.host_link, "up")
            inside = ["nsenter", f"--net=/run/netns/{self.name}", "ip"]
            for args in (["addr", "add", f"{self.address}/30", "dev", self.ns_link],
                         ["link", "set", self.ns_link, "up"], ["link", "set", "lo", "up"]):
                r = subprocess.run(inside + args, capture_output=True, text=True, timeout=10)
                if r.returncode != 0:
                    raise AssertionError(f"{' '.join(inside + args)}: {r.stderr.strip()}")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True, timeout=10)
        if self._made:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
            self._made = False
        return False

    def open_connections(self, host, port, count, payload, timeout=60):
        """Opens `count` connections from this host, asks `payload` on each; returns
        (tally, holder): tally {"answered": N, "refused": M}; the answered connections stay
        open until holder.release()."""
        process = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.name}", sys.executable, "-c", _CLIENT, host,
             str(port), str(count), payload],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = process.stdout.readline()
        if not line:
            process.kill()
            process.wait(5)
            raise AssertionError("the client in the namespace failed")
        return json.loads(line), _Holder(process, timeout)


class _Holder:
    def __init__(self, process, timeout):
        self.process, self.timeout = process, timeout

    def release(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
