#!/usr/bin/env python3
"""`cmake --install` puts every file where the others expect it, for any prefix.

    python3 tests/e2e/install_layout_test.py --build-dir build

For the default prefix (/usr/local), /usr (the package's) and /opt/greylight, installs the
built tree into a fresh DESTDIR and checks: greylightd in PREFIX/sbin and greylight in
PREFIX/bin, both executable; the systemd unit's ExecStart names the installed greylightd
(and that file exists under DESTDIR); the man pages, /etc/default/greylight and the
whitelists in place. Touches nothing outside its temporary directories.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

failures = []


def check(condition, message):
    print(f"[install] {'ok  ' if condition else 'FAIL'} {message}", flush=True)
    if not condition:
        failures.append(message)


def install(build_dir, prefix):
    destdir = tempfile.mkdtemp(prefix="greylight-install-")
    cmd = ["cmake", "--install", build_dir]
    if prefix is not None:
        cmd += ["--prefix", prefix]
    r = subprocess.run(cmd, env={**os.environ, "DESTDIR": destdir}, capture_output=True,
                       text=True, timeout=120)
    check(r.returncode == 0, f"{' '.join(cmd)} (DESTDIR={destdir}) exits 0: {r.stderr.strip()}")
    return destdir


def check_layout(destdir, prefix, has_tool):
    inside = lambda path: os.path.join(destdir, path.lstrip("/"))
    daemon = f"{prefix}/sbin/greylightd"
    check(os.access(inside(daemon), os.X_OK), f"{prefix}: greylightd at {daemon}")
    check(not os.path.exists(inside(f"{prefix}/bin/greylightd")), f"{prefix}: no greylightd in bin")
    if has_tool:
        check(os.access(inside(f"{prefix}/bin/greylight"), os.X_OK),
              f"{prefix}: greylight at {prefix}/bin/greylight")
    unit = inside("/lib/systemd/system/greylight.service")
    check(os.path.isfile(unit), f"{prefix}: unit in /lib/systemd/system")
    if os.path.isfile(unit):
        with open(unit) as f:
            text = f.read()
        execs = re.findall(r"^ExecStart=(\S+)", text, re.M)
        check(execs == [daemon], f"{prefix}: ExecStart runs {daemon} (unit says {execs})")
        for path in execs:
            check(os.access(inside(path), os.X_OK), f"{prefix}: ExecStart's {path} is installed")
        check(not re.search(r"@[A-Z_]+@", text), f"{prefix}: no unsubstituted @VARIABLE@ in the unit")
    for path in [f"{prefix}/share/man/man8/greylightd.8", "/etc/default/greylight",
                 "/etc/greylight/whitelist_clients", "/etc/greylight/whitelist_recipients"]:
        check(os.path.isfile(inside(path)), f"{prefix}: {path}")
    if has_tool:
        check(os.path.isfile(inside(f"{prefix}/share/man/man1/greylight.1")),
              f"{prefix}: greylight.1")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", required=True)
    args = parser.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    has_tool = os.path.exists(os.path.join(build_dir, "src", "greylight"))
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        default_prefix = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", f.read(), re.M).group(1)
    for prefix in [None, "/usr", "/opt/greylight"]:
        destdir = install(build_dir, prefix)
        check_layout(destdir, prefix or default_prefix, has_tool)
        subprocess.run(["rm", "-rf", destdir], check=True)
    if failures:
        print(f"[install] {len(failures)} check(s) failed", flush=True)
        return 1
    print("[install] all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
