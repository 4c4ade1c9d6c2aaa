"""Starts a service from its systemd unit file the way systemd would, where no systemd
runs (a chroot, a container): for tests of what a packaged unit does.

What is honoured, which is everything greylight.service uses: Environment= (with the %H,
%n and %% specifiers), EnvironmentFile= (optional with '-'; KEY=VALUE lines with shell-like
quotes, later lines win), ExecStart= ($VAR as separate words, ${VAR} inside a word), User=
and Group= (the process starts as them, with no supplementary groups beyond the group),
UMask=, StateDirectory= and RuntimeDirectory= (created under /var/lib and /run, owned by
User=, with their *Mode=), and Type=notify: the service counts as started when it sends
READY=1 to $NOTIFY_SOCKET, as systemd waits for it. The sandboxing directives (Protect*,
SystemCallFilter...) are not applied: that is systemd's part, checked statically by
`systemd-analyze verify` and `security` in systemd_unit_test.py.
"""
import grp
import os
import pwd
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time


def parse_unit(path):
    """{(section, key): [values]} in file order; a line ending in a backslash continues on
    the next."""
    entries, section = {}, None
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            m = re.match(r"^\[(.+)\]$", line)
            if m:
                section = m.group(1)
                continue
            key, _, value = line.partition("=")
            entries.setdefault((section, key.strip()), []).append(value.strip())
    return entries


def _specifiers(text, unit_name):
    table = {"H": socket.gethostname(), "n": unit_name, "%": "%"}
    return re.sub(r"%(.)", lambda m: table.get(m.group(1), m.group(0)), text)


def _environment_assignments(value, unit_name):
    """Environment= values: space-separated, optionally quoted, KEY=VALUE words."""
    result = {}
    for word in shlex.split(_specifiers(value, unit_name)):
        key, _, val = word.partition("=")
        result[key] = val
    return result


def read_environment_file(path):
    result = {}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            key, _, value = line.partition("=")
            words = shlex.split(value, comments=False) if value.strip() else [""]
            result[key.strip()] = " ".join(words)
    return result


def _expand_command(line, env):
    args = []
    for word in shlex.split(line):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:  # $VAR alone: its value split into words
            args.extend(env.get(whole.group(1), "").split())
            continue
        args.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""),
                           word))
    return args


class UnitProcess:
    """A running service. stop() sends SIGTERM (systemd's KillSignal) and waits."""

    def __init__(self, process, argv, log_path, notify_dir):
        self.process, self.argv, self.log_path, self._notify_dir = process, argv, log_path, notify_dir

    @property
    def pid(self):
        return self.process.pid

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def uid(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            line = next(l for l in f if l.startswith("Uid:"))
        return int(line.split()[1])

    def stop(self, timeout=20):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._notify_dir.cleanup()
        return self.process.returncode


def start_unit(unit_path, ready_timeout=30, log_path=None):
    """Starts the unit's ExecStart as systemd would; returns a UnitProcess once it is
    ready (READY=1 for Type=notify, at once otherwise). Raises AssertionError if it exits
    or does not get ready in time."""
    unit_name = os.path.basename(unit_path)
    entries = parse_unit(unit_path)
    service = lambda key: entries.get(("Service", key), [])
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for value in service("Environment"):
        env.update(_environment_assignments(value, unit_name))
    for value in service("EnvironmentFile"):
        optional = value.startswith("-")
        path = value[1:] if optional else value
        if os.path.exists(path):
            env.update(read_environment_file(path))
        elif not optional:
            raise AssertionError(f"{unit_name}: EnvironmentFile {path} is missing")
    (exec_start,) = service("ExecStart")
    argv = _expand_command(exec_start, env)

    user = (service("User") or ["root"])[-1]
    group = (service("Group") or [None])[-1]
    pw = pwd.getpwnam(user)
    gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
    env.update({"USER": user, "LOGNAME": user, "HOME": pw.pw_dir})
    for key, base in (("StateDirectory", "/var/lib"), ("RuntimeDirectory", "/run")):
        mode = int((service(key + "Mode") or ["0755"])[-1], 8)
        for value in service(key):
            for name in value.split():
                path = os.path.join(base, name)
                os.makedirs(path, exist_ok=True)
                os.chown(path, pw.pw_uid, gid)
                os.chmod(path, mode)
                env[{"StateDirectory": "STATE_DIRECTORY",
                     "RuntimeDirectory": "RUNTIME_DIRECTORY"}[key]] = path
    umask = int((service("UMask") or ["0022"])[-1], 8)

    notify_dir = tempfile.TemporaryDirectory(prefix="unit-notify-")
    os.chmod(notify_dir.name, 0o755)
    notify_path = os.path.join(notify_dir.name, "notify")
    notify = None
    if (service("Type") or ["simple"])[-1] == "notify":
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        os.chmod(notify_path, 0o777)
        env["NOTIFY_SOCKET"] = notify_path
    if log_path is None:
        log_path = tempfile.NamedTemporaryFile(prefix=f"{unit_name}-", suffix=".log",
                                               delete=False).name
    log = open(log_path, "ab")
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                               user=pw.pw_uid, group=gid, extra_groups=[], umask=umask,
                               cwd="/", start_new_session=True)
    log.close()
    unit = UnitProcess(process, argv, log_path, notify_dir)
    if notify is None:
        return unit
    try:
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{unit_name}: {argv} exited {process.returncode} before "
                                     f"READY=1:\n{unit.log_text()}")
            notify.settimeout(0.2)
            try:
                message = notify.recv(4096).decode(errors="replace")
            except socket.timeout:
                continue
            if "READY=1" in message.split("\n"):
                return unit
        unit.stop()
        raise AssertionError(f"{unit_name}: no READY=1 within {ready_timeout}s:\n{unit.log_text()}")
    finally:
        notify.close()
