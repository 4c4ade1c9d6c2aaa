#!/usr/bin/env python3
"""Static checks of packaging/greylight.service.in (as the package renders it) with
systemd's own tools.

    python3 tests/e2e/systemd_unit_test.py --greylightd build/src/greylightd

* `systemd-analyze verify` on a copy of the unit whose ExecStart points at the built
  greylightd (verify insists that the binary exists) and with MANPATH pointing at the
  source tree's man pages (verify runs `man` for Documentation=man:greylightd(8)).
  Any warning about the unit, or a non-zero exit, fails the test.
* The directives the issue requires are present (Type=notify, Restart=on-failure,
  hardening, state directory, ExecReload sending SIGHUP, /etc/default/greylight,
  ordering before postfix).
* `systemd-analyze security --offline=yes` rates the unit's exposure at most
  MAX_EXPOSURE (skipped, with a note, where systemd-analyze lacks --offline).
Installs the Debian package `systemd` if systemd-analyze is missing (as root).
Works without a running systemd; starts nothing.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

MAX_EXPOSURE = 2.5
UNIT_NAME = "greylight.service"

REQUIRED = [
    ("Unit", "Before", r"\bpostfix\.service\b"),
    ("Unit", "Documentation", r"man:greylightd\(8\)"),
    ("Service", "Type", r"^notify$"),
    ("Service", "NotifyAccess", r"^main$"),
    ("Service", "ExecStart", r"^/usr/sbin/greylightd \$GREYLIGHT_OPTS "),
    ("Service", "ExecReload", r"^/bin/kill -HUP \$MAINPID$"),
    ("Service", "EnvironmentFile", r"^-/etc/default/greylight$"),
    ("Service", "Restart", r"^on-failure$"),
    ("Service", "StateDirectory", r"^greylight$"),
    ("Service", "ReadWritePaths", r"/var/lib/greylight\b"),
    ("Service", "NoNewPrivileges", r"^yes$"),
    ("Service", "ProtectSystem", r"^strict$"),
    ("Service", "ProtectHome", r"^yes$"),
    ("Service", "PrivateTmp", r"^yes$"),
    ("Service", "CapabilityBoundingSet", r".*"),
    ("Install", "WantedBy", r"multi-user\.target"),
]


def parse_unit(text):
    """{(section, key): [values]} of a unit file (no line continuations used)."""
    entries, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            section = m.group(1)
            continue
        key, _, value = line.partition("=")
        entries.setdefault((section, key.strip()), []).append(value.strip())
    return entries


def ensure_systemd_analyze():
    tool = shutil.which("systemd-analyze")
    if tool:
        return tool
    if os.geteuid() != 0:
        raise SystemExit("systemd-analyze missing (Debian package systemd) and not root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "systemd"], check=True, timeout=400, env=env)
    return shutil.which("systemd-analyze")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--greylightd", required=True)
    parser.add_argument("--unit", default=os.path.join(here, "..", "..", "packaging", UNIT_NAME + ".in"),
                        help="the unit template; @SBINDIR@ becomes /usr/sbin, as in the package")
    parser.add_argument("--man-dir", default=os.path.join(here, "..", "..", "man"))
    args = parser.parse_args()
    binary = os.path.abspath(args.greylightd)
    failures = []

    with open(args.unit) as f:
        unit_text = f.read().replace("@SBINDIR@", "/usr/sbin")
    entries = parse_unit(unit_text)
    for section, key, pattern in REQUIRED:
        values = entries.get((section, key), [])
        if not any(re.search(pattern, v) for v in values):
            failures.append(f"[{section}] {key}= missing or not matching /{pattern}/ (have {values})")

    analyze = ensure_systemd_analyze()
    tmp = tempfile.mkdtemp(prefix="greylight-unit-")
    try:
        unit_copy = os.path.join(tmp, UNIT_NAME)
        with open(unit_copy, "w") as f:
            f.write(unit_text.replace("/usr/sbin/greylightd", binary))
        man8 = os.path.join(tmp, "man", "man8")
        os.makedirs(man8)
        shutil.copy(os.path.join(args.man_dir, "greylightd.8"), man8)
        env = dict(os.environ, MANPATH=os.path.join(tmp, "man"), SYSTEMD_LOG_COLOR="0")

        r = subprocess.run([analyze, "verify", unit_copy], capture_output=True, text=True,
                           timeout=120, cwd=tmp, env=env)
        output = (r.stdout + r.stderr).strip()
        print(f"$ systemd-analyze verify {UNIT_NAME} -> exit {r.returncode}")
        if output:
            print(output)
        about_unit = [l for l in output.splitlines() if UNIT_NAME in l or unit_copy in l or "greylight" in l]
        if r.returncode != 0:
            failures.append(f"systemd-analyze verify exited {r.returncode}")
        for line in about_unit:
            failures.append(f"systemd-analyze verify: {line}")
        for line in output.splitlines():
            if line not in about_unit:
                print(f"note (not about {UNIT_NAME}): {line}")

        r = subprocess.run([analyze, "security", "--offline=yes", unit_copy], capture_output=True,
                           text=True, timeout=120, cwd=tmp, env=env)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
        if m:
            exposure = float(m.group(1))
            print(f"$ systemd-analyze security --offline=yes -> exposure {exposure}")
            if exposure > MAX_EXPOSURE:
                failures.append(f"exposure level {exposure} > {MAX_EXPOSURE}:\n{r.stdout}")
        else:
            print(f"note: systemd-analyze security --offline not available here "
                  f"(exit {r.returncode}): {(r.stdout + r.stderr).strip()[:300]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        for failure in failures:
            print(f"FAIL {failure}")
        return 1
    print(f"{UNIT_NAME}: verify clean, required directives present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
