#!/usr/bin/env python3
"""Runs the commands the README shows a newcomer, exactly as written, and checks what they do.

    python3 tests/e2e/readme_test.py --throwaway-machine SECTION...

SECTION names a fenced block of README.md, the one after `<!-- readme-test: SECTION -->`:

  install   the Debian package is built and installed; the installed service answers a
            policy request as user greylight
  postfix   Postfix's main.cf gets the check_policy_service line and `postfix check` passes
  postgrey  a running postgrey's state is imported and greylight serves it after the switch

THIS CHANGES THE MACHINE (installs packages, edits /etc/postfix/main.cf and
/etc/default/greylight, starts and stops services): CI runs it in a brand-new Debian root
(`.ci/newcomer.sh`), hence the mandatory --throwaway-machine.

Each line of a block runs with bash from the top of the source tree and must exit 0, except
`systemctl` commands that need a running systemd when none runs (CI's root is a chroot).
Those are replaced by what systemd would do, named in the output: the unit's ExecStart is
started as the unit says (tests/e2e/unit_runner.py: user, environment files, state
directory, READY=1) or stopped by PID. `systemctl disable`/`enable` work without a running
systemd and run as written.
"""
import argparse
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import unit_runner  # noqa: E402

GREYLIGHT_UNIT = "/lib/systemd/system/greylight.service"
POSTGREY_UNIT = "/lib/systemd/system/postgrey.service"
QUERY = ["/usr/bin/greylight", "query", "--server=inet:127.0.0.1:10023"]

failures = []


def log(message):
    print(f"[readme] {message}", flush=True)


def check(condition, message):
    log(f"{'ok  ' if condition else 'FAIL'} {message}")
    if not condition:
        failures.append(message)
    return condition


def readme_block(name, readme):
    with open(readme) as f:
        text = f.read()
    m = re.search(r"<!-- readme-test: " + re.escape(name) + r" -->\n```[a-z]*\n(.*?)```", text, re.S)
    if not m:
        raise AssertionError(f"README has no block marked readme-test: {name}")
    return m.group(1)


def commands(block):
    return [l for l in block.splitlines() if l.strip() and not l.lstrip().startswith("#")]


def systemd_running():
    return os.path.isdir("/run/systemd/system")


def run_line(line, timeout=1800):
    log(f"$ {line}")
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=SOURCE, timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = "\n".join(r.stdout.splitlines()[-15:])
    if not check(r.returncode == 0, f"`{line}` exits 0 (exit {r.returncode})"):
        log(f"output:\n{r.stdout}")
    elif tail:
        log(f"output (last lines):\n{tail}")
    return r


def wait_for_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def query(*args):
    r = subprocess.run(QUERY + list(args), capture_output=True, text=True, timeout=60)
    log(f"$ {' '.join(QUERY + list(args))}\n{r.stdout}{r.stderr}")
    return r


class Services:
    """What `systemctl start/stop/restart/status` does here without a running systemd."""

    def __init__(self):
        self.running = {}

    def start(self, unit_path):
        name = os.path.basename(unit_path)
        self.stop(name)
        log(f"(no systemd) starting {name} as its unit says")
        self.running[name] = unit_runner.start_unit(unit_path)
        return self.running[name]

    def stop(self, name):
        unit = self.running.pop(name, None)
        if unit is not None:
            log(f"(no systemd) stopping {name} (pid {unit.pid})")
            return unit.stop()
        return None

    def stop_all(self):
        for name in list(self.running):
            self.stop(name)


def greylight_answers(services, name):
    """The check behind `systemctl status greylight`: started as the unit starts it,
    greylightd runs as greylight and greylists a new triplet."""
    unit = services.running["greylight.service"]
    check(unit.uid() == pwd.getpwnam("greylight").pw_uid, "greylightd runs as user greylight")
    r = query("--client-address=192.0.2.1", f"--sender={name}@example.org",
              "--recipient=bob@example.net")
    check(r.returncode == 0 and r.stdout.startswith("action=DEFER_IF_PERMIT 4.2.0 Greylisted"),
          f"the installed service greylists a new sender: {r.stdout.strip()!r}")
    time.sleep(0.3)
    check(f"action=greylist, reason=new, client_name=unknown, client_address=192.0.2.1, "
          f"sender={name}@example.org" in unit.log_text(), "and logs it as postgrey would")


def section_install(block, services):
    for line in commands(block):
        if line.startswith("systemctl ") and not systemd_running():
            check(line.strip() == "systemctl status greylight", f"known systemctl line: {line}")
            services.start(GREYLIGHT_UNIT)
            greylight_answers(services, "newcomer")
        else:
            run_line(line)
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "greylight"],
                            capture_output=True, text=True).stdout
    check(status == "install ok installed", f"dpkg: greylight {status}")
    check(os.path.exists("/etc/systemd/system/multi-user.target.wants/greylight.service"),
          "greylight.service is enabled (starts at boot)")
    services.stop("greylight.service")


def section_postfix(block, services):
    # The README speaks to a Postfix that is set up; the test's was installed with "No
    # configuration". Debian's own default main.cf stands for the site's.
    if not os.path.exists("/etc/postfix/main.cf"):
        log("(setup) /etc/postfix/main.cf from Debian's /usr/share/postfix/main.cf.debian")
        shutil.copy("/usr/share/postfix/main.cf.debian", "/etc/postfix/main.cf")
    for line in commands(block):
        if line.startswith("systemctl ") and not systemd_running():
            check(line.strip() == "systemctl reload postfix", f"known systemctl line: {line}")
            log("(no systemd) instead of reloading: postfix check on the edited configuration")
            r = subprocess.run(["postfix", "check"], capture_output=True, text=True, timeout=60)
            check(r.returncode == 0, f"postfix check passes: {r.stdout}{r.stderr}")
        else:
            run_line(line)
    value = subprocess.run(["postconf", "-h", "smtpd_recipient_restrictions"],
                           capture_output=True, text=True).stdout
    check("check_policy_service inet:127.0.0.1:10023" in value,
          f"main.cf asks greylight: smtpd_recipient_restrictions = {value.strip()}")


def section_postgrey(block, services):
    # A postgrey that has seen a sender: started as its Debian unit starts it.
    postgrey = services.start(POSTGREY_UNIT)
    if not check(wait_for_port(10023), "postgrey listens on 10023"):
        log(postgrey.log_text())
        return
    args = ["--client-address=198.51.100.20", "--sender=old@example.com",
            "--recipient=carol@example.net"]
    r = query(*args)
    check(r.stdout.startswith("action=DEFER_IF_PERMIT"), "postgrey greylists a sender first")
    for line in commands(block):
        if line.startswith("systemctl ") and not systemd_running():
            words = line.split()
            if words[1] == "stop" and words[2] == "postgrey":
                services.stop("postgrey.service")
                check(not wait_for_port(10023, timeout=1), "postgrey stopped")
            elif words[1] == "restart" and words[2] == "greylight":
                services.start(GREYLIGHT_UNIT)
            elif words[1] in ("disable", "enable"):
                run_line(line)
            else:
                check(False, f"known systemctl line: {line}")
        else:
            run_line(line)
    with open("/etc/default/greylight") as f:
        defaults = f.read()
    check(re.findall(r'^GREYLIGHT_OPTS=.*$', defaults, re.M)[-1] == 'GREYLIGHT_OPTS="--inet=10023"',
          "postgrey's options are greylight's")
    check(not os.path.exists("/etc/systemd/system/multi-user.target.wants/postgrey.service"),
          "postgrey no longer starts at boot")
    unit = services.running.get("greylight.service")
    if check(unit is not None, "greylight runs after the switch"):
        r = query(*args)  # within --delay (300 s) of postgrey's first sight: an early retry
        check(r.stdout.startswith("action=DEFER_IF_PERMIT"), "the sender is still pending")
        time.sleep(0.3)
        check(re.search(r"action=greylist, reason=early-retry \(\d+s missing\), "
                        r"client_name=unknown, client_address=198\.51\.100\.20, "
                        r"sender=old@example\.com", unit.log_text()) is not None,
              "greylight knows the triplet postgrey saw (early retry, not new)")


SECTIONS = {"install": section_install, "postfix": section_postfix, "postgrey": section_postgrey}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="+", choices=sorted(SECTIONS))
    parser.add_argument("--readme", default=os.path.join(SOURCE, "README.md"))
    parser.add_argument("--throwaway-machine", action="store_true", required=True,
                        help="confirm that this machine may be changed")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("readme_test.py must run as root", file=sys.stderr)
        return 2
    services = Services()
    try:
        for name in args.sections:
            log(f"--- {name}")
            SECTIONS[name](readme_block(name, args.readme), services)
    except (AssertionError, subprocess.TimeoutExpired) as e:
        check(False, str(e))
    finally:
        services.stop_all()
    if failures:
        log(f"{len(failures)} check(s) failed: {failures}")
        return 1
    log("every README command ran and did what the README says")
    return 0


if __name__ == "__main__":
    sys.exit(main())
