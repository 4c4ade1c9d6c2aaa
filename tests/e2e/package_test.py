#!/usr/bin/env python3
"""Builds greylight's Debian package with CPack, checks it, installs it, removes it.

    python3 tests/e2e/package_test.py --build-dir build [--admin-tool yes|no]

Needs root and a configured, built build tree whose top-level CMakeLists.txt includes
packaging/ (`add_subdirectory(packaging)`). THIS CHANGES THE MACHINE: it installs the
package with `dpkg -i`, which creates the system user `greylight` and /var/lib/greylight,
then removes (`dpkg -r`) and purges (`dpkg -P`) it. Meant for throwaway CI machines.
At the end the user and group are deleted again if they did not exist before, and no
greylightd is left running: the one started here is stopped by PID, and where systemd
runs, the package's prerm stops the service and the test checks it is inactive.

Checks:
  * `cpack -G DEB` makes greylight_<version>_<arch>.deb;
  * `dpkg-deb -c`: greylightd in /usr/sbin, greylight in /usr/bin (if built), the man
    pages, the systemd unit, /etc/default/greylight, the default whitelists, and no
    file elsewhere (e.g. /usr/etc);
  * `dpkg-deb -f` / `-e`: name, version, architecture, Depends (liblmdb0, libpcre2,
    adduser: computed by dpkg-shlibdeps), conffiles, executable maintainer scripts;
  * `dpkg -i`: user and group greylight (system), /var/lib/greylight greylight:greylight
    0750, `greylightd --version`, the installed unit passes `systemd-analyze verify`,
    the installed greylightd started as root drops to greylight and greylists a request;
  * `dpkg -r`: programs, man pages and unit gone, conffiles and data kept;
  * `dpkg -P`: conffiles, /etc/greylight and /var/lib/greylight gone.
"""
import argparse
import glob
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

PACKAGE = "greylight"
CONFFILES = ["/etc/default/greylight", "/etc/greylight/whitelist_clients",
             "/etc/greylight/whitelist_recipients"]
PROGRAM_FILES = ["/usr/sbin/greylightd", "/usr/share/man/man8/greylightd.8",
                 "/usr/share/man/man1/greylight.1", "/lib/systemd/system/greylight.service"]

failures = []


def log(message):
    print(f"[package] {message}", flush=True)


def check(condition, message):
    if condition:
        log(f"ok   {message}")
    else:
        log(f"FAIL {message}")
        failures.append(message)
    return condition


def run(cmd, timeout=120, check_rc=True, **kwargs):
    log("$ " + " ".join(cmd))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kwargs)
    if check_rc and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}")
    return r


def dpkg_status(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True,
                       text=True, timeout=30)
    return r.stdout.strip() if r.returncode == 0 else "not-installed"


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def systemd_running():
    return os.path.isdir("/run/systemd/system")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_tools():
    """CPack's DEB generator with SHLIBDEPS needs `file` and dpkg-shlibdeps (dpkg-dev);
    the installed unit is checked with systemd-analyze (systemd). Installs what is missing."""
    wanted = {"file": "file", "dpkg-shlibdeps": "dpkg-dev", "systemd-analyze": "systemd"}
    missing = sorted({package for tool, package in wanted.items() if not shutil.which(tool)})
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], timeout=300, env=env)
    run(["apt-get", "install", "-y", "-qq", *missing], timeout=400, env=env)


def build_package(build_dir):
    if not os.path.exists(os.path.join(build_dir, "CPackConfig.cmake")):
        raise AssertionError(
            f"{build_dir}/CPackConfig.cmake missing: the top-level CMakeLists.txt must have "
            "add_subdirectory(packaging) (after add_subdirectory(src)), then re-run cmake")
    for old in glob.glob(os.path.join(build_dir, f"{PACKAGE}_*.deb")):
        os.unlink(old)
    r = run(["cpack", "-G", "DEB"], timeout=600, cwd=build_dir, check_rc=False)
    print(r.stdout)
    if r.returncode != 0:
        raise AssertionError(f"cpack -G DEB exited {r.returncode}")
    debs = glob.glob(os.path.join(build_dir, f"{PACKAGE}_*.deb"))
    if len(debs) != 1:
        raise AssertionError(f"expected one {PACKAGE}_*.deb in {build_dir}, found {debs}")
    return debs[0]


def check_contents(deb, source_dir, admin_tool):
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    fields = {}
    for name in ("Package", "Version", "Architecture", "Depends", "Maintainer", "Section"):
        fields[name] = run(["dpkg-deb", "-f", deb, name]).stdout.strip()
    log(f"control: {fields}")
    check(fields["Package"] == PACKAGE, f"Package is {PACKAGE}")
    check(fields["Architecture"] == arch, f"Architecture is {arch}")
    check(os.path.basename(deb) == f"{PACKAGE}_{fields['Version']}_{arch}.deb",
          f"file name {os.path.basename(deb)} is {PACKAGE}_<version>_<arch>.deb")
    depends = fields["Depends"]
    check(re.search(r"\bliblmdb0\b", depends) is not None, "Depends mentions liblmdb0")
    check(re.search(r"\blibpcre2-", depends) is not None, "Depends mentions libpcre2")
    check(re.search(r"\badduser\b", depends) is not None, "Depends mentions adduser")
    check(re.search(r"\blibc6\b", depends) is not None, "Depends has shlibdeps output (libc6)")

    listing = run(["dpkg-deb", "-c", deb]).stdout
    entries = {}
    for line in listing.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6:
            path = parts[5].split(" -> ")[0]
            entries[path[1:] if path.startswith(".") else path] = (parts[0], parts[1])
    expected = PROGRAM_FILES + CONFFILES
    if admin_tool:
        expected = expected + ["/usr/bin/greylight"]
    for path in expected:
        check(path in entries, f"package contains {path}")
    # Nothing outside the usual places: e.g. a second install() of the whitelists with a
    # prefix-relative destination would land in /usr/etc or /usr/local/etc.
    allowed = ("/usr/sbin/", "/usr/bin/", "/usr/share/man/", "/usr/share/doc/greylight/",
               "/etc/greylight/", "/etc/default/", "/lib/systemd/system/")
    for path, (mode, _) in sorted(entries.items()):
        if mode.startswith("d"):
            continue
        check(path.startswith(allowed), f"package file {path} is in an expected place")
    for path in ("/usr/sbin/greylightd", "/usr/bin/greylight"):
        if path in entries:
            check(entries[path] == ("-rwxr-xr-x", "root/root"), f"{path} is 0755 root/root")
    for path in CONFFILES + ["/lib/systemd/system/greylight.service"]:
        if path in entries:
            check(entries[path] == ("-rw-r--r--", "root/root"), f"{path} is 0644 root/root")

    control = tempfile.mkdtemp(prefix="greylight-control-")
    try:
        run(["dpkg-deb", "-e", deb, control])
        with open(os.path.join(control, "conffiles")) as f:
            listed = sorted(f.read().split())
        check(listed == sorted(CONFFILES), f"conffiles lists {sorted(CONFFILES)} (got {listed})")
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(control, script)
            check(os.path.exists(path) and os.stat(path).st_mode & 0o111,
                  f"maintainer script {script} present and executable")
    finally:
        shutil.rmtree(control, ignore_errors=True)

    # The packaged unit is the source tree's template, ExecStart in the package's /usr/sbin.
    extract = tempfile.mkdtemp(prefix="greylight-data-")
    try:
        run(["dpkg-deb", "-x", deb, extract])
        with open(os.path.join(extract, "lib/systemd/system/greylight.service")) as a, \
                open(os.path.join(source_dir, "packaging/greylight.service.in")) as b:
            check(a.read() == b.read().replace("@SBINDIR@", "/usr/sbin"),
                  "packaged unit equals packaging/greylight.service.in for /usr/sbin")
    except FileNotFoundError as e:
        check(False, f"unit comparison: {e}")
    finally:
        shutil.rmtree(extract, ignore_errors=True)


def smoke_test_installed_daemon():
    """Starts /usr/sbin/greylightd as root: it must drop to greylight and use the dbdir."""
    port = free_port()
    logfile = tempfile.NamedTemporaryFile(prefix="greylightd-pkg-", suffix=".log", delete=False)
    # Default whitelists: the packaged /etc/greylight files must load.
    proc = subprocess.Popen(["/usr/sbin/greylightd", f"--inet=127.0.0.1:{port}",
                             "--dbdir=/var/lib/greylight"],
                            stdout=logfile, stderr=logfile, stdin=subprocess.DEVNULL)
    reply = None
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.settimeout(10)
                    s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
                              b"client_address=192.0.2.10\nclient_name=mail.example.net\n"
                              b"sender=alice@example.net\nrecipient=bob@example.org\n"
                              b"etrn_domain=\n\n")
                    data = b""
                    while b"\n\n" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    reply = data.decode(errors="replace").strip()
                break
            except OSError:
                time.sleep(0.1)
        status = open(f"/proc/{proc.pid}/status").read() if proc.poll() is None else ""
        uid_line = next((l for l in status.splitlines() if l.startswith("Uid:")), "")
        greylight_uid = str(pwd.getpwnam("greylight").pw_uid)
        check(uid_line.split()[1:2] == [greylight_uid],
              f"installed greylightd started as root runs as greylight (uid {greylight_uid}): {uid_line!r}")
        check(reply is not None and reply.startswith("action=DEFER_IF_PERMIT 4.2.0 Greylisted"),
              f"installed greylightd greylists a new triplet: {reply!r}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        logfile.close()
        with open(logfile.name, errors="replace") as f:
            log("greylightd log:\n" + f.read())
        os.unlink(logfile.name)
    check(proc.returncode == 0, f"installed greylightd exits 0 on SIGTERM (got {proc.returncode})")
    check(any(os.path.exists(f"/var/lib/greylight/{n}") for n in ("greylight.lmdb", "greylight.lock")),
          "installed greylightd created its database in /var/lib/greylight")


def check_installed(version):
    check(dpkg_status(PACKAGE) == "install ok installed", "dpkg reports greylight installed")
    check(user_exists("greylight"), "user greylight exists")
    check(group_exists("greylight"), "group greylight exists")
    if user_exists("greylight"):
        user = pwd.getpwnam("greylight")
        check(user.pw_uid < 1000, f"greylight is a system user (uid {user.pw_uid})")
        check(user.pw_dir == "/var/lib/greylight", f"home is /var/lib/greylight ({user.pw_dir})")
        check(user.pw_shell.endswith("nologin") or user.pw_shell == "/bin/false",
              f"no login shell ({user.pw_shell})")
        if group_exists("greylight"):
            check(user.pw_gid == grp.getgrnam("greylight").gr_gid, "primary group is greylight")
    if check(os.path.isdir("/var/lib/greylight"), "/var/lib/greylight exists"):
        st = os.stat("/var/lib/greylight")
        owner = pwd.getpwuid(st.st_uid).pw_name
        group = grp.getgrgid(st.st_gid).gr_name
        check((owner, group, stat.S_IMODE(st.st_mode)) == ("greylight", "greylight", 0o750),
              f"/var/lib/greylight is greylight:greylight 0750 ({owner}:{group} {oct(st.st_mode & 0o7777)})")
    r = run(["/usr/sbin/greylightd", "--version"], check_rc=False)
    check(r.returncode == 0 and r.stdout.strip() == f"greylightd {version}",
          f"/usr/sbin/greylightd --version prints 'greylightd {version}' ({r.stdout.strip()!r})")
    registered = run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE]).stdout
    for path in CONFFILES:
        check(path in registered, f"dpkg registered conffile {path}")
    analyze = shutil.which("systemd-analyze")
    if analyze:
        r = run([analyze, "verify", "/lib/systemd/system/greylight.service"], check_rc=False)
        noisy = [l for l in r.stdout.splitlines() if "greylight" in l]
        check(r.returncode == 0 and not noisy,
              f"systemd-analyze verify on the installed unit is clean: {r.stdout.strip()!r}")
    else:
        check(False, "systemd-analyze available (Debian package systemd)")
    r = run(["man", "-w", "greylightd"], check_rc=False) if shutil.which("man") else None
    if r is not None:
        check(r.returncode == 0 and "greylightd.8" in r.stdout, "man -w greylightd finds the page")
    smoke_test_installed_daemon()
    if systemd_running():
        r = run(["systemctl", "is-active", "greylight.service"], check_rc=False)
        log(f"systemd is running; greylight.service is {r.stdout.strip()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--source-dir",
                        default=os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
    parser.add_argument("--admin-tool", choices=["yes", "no", "auto"], default="auto",
                        help="whether the build has the greylight admin tool (CMake passes it)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("package_test.py must run as root (dpkg -i)", file=sys.stderr)
        return 2
    build_dir = os.path.abspath(args.build_dir)
    admin_tool = (args.admin_tool == "yes" or
                  (args.admin_tool == "auto" and os.path.exists(os.path.join(build_dir, "src", "greylight"))))

    if "not-installed" not in dpkg_status(PACKAGE):
        log(f"a {PACKAGE} package is already present ({dpkg_status(PACKAGE)}); purging it first")
        run(["dpkg", "-P", PACKAGE], timeout=300)
    user_before = user_exists("greylight")
    group_before = group_exists("greylight")
    installed = False
    try:
        ensure_tools()
        deb = build_package(build_dir)
        log(f"built {deb}")
        check_contents(deb, args.source_dir, admin_tool)
        version = run(["dpkg-deb", "-f", deb, "Version"]).stdout.strip()

        r = run(["dpkg", "-i", deb], timeout=300, check_rc=False)
        print(r.stdout)
        installed = True
        if not check(r.returncode == 0, "dpkg -i succeeds"):
            raise AssertionError("dpkg -i failed")
        check_installed(version)

        r = run(["dpkg", "-r", PACKAGE], timeout=300, check_rc=False)
        print(r.stdout)
        check(r.returncode == 0, "dpkg -r succeeds")
        check(dpkg_status(PACKAGE).endswith("config-files"), f"after -r: {dpkg_status(PACKAGE)}")
        for path in PROGRAM_FILES:
            check(not os.path.exists(path), f"after -r: {path} removed")
        for path in CONFFILES:
            check(os.path.exists(path), f"after -r: conffile {path} kept")
        check(os.path.isdir("/var/lib/greylight"), "after -r: /var/lib/greylight (data) kept")

        r = run(["dpkg", "-P", PACKAGE], timeout=300, check_rc=False)
        print(r.stdout)
        check(r.returncode == 0, "dpkg -P succeeds")
        installed = False
        check(dpkg_status(PACKAGE) == "not-installed" or "not-installed" in dpkg_status(PACKAGE),
              f"after -P: {dpkg_status(PACKAGE)}")
        for path in PROGRAM_FILES + CONFFILES + ["/etc/greylight", "/var/lib/greylight",
                                                 "/etc/systemd/system/multi-user.target.wants/greylight.service"]:
            check(not os.path.exists(path), f"after -P: {path} gone")
        if systemd_running():
            r = run(["systemctl", "is-active", "greylight.service"], check_rc=False)
            check(r.stdout.strip() != "active", "after -P: greylight.service not running")
    except (AssertionError, subprocess.TimeoutExpired) as e:
        failures.append(str(e))
        log(f"FAIL {e}")
    finally:
        if installed or "not-installed" not in dpkg_status(PACKAGE):
            subprocess.run(["dpkg", "-P", PACKAGE], timeout=300)
        # The package keeps its system user on purge (Debian practice); the test leaves
        # the machine as it found it.
        if not user_before and user_exists("greylight"):
            subprocess.run(["userdel", "greylight"], timeout=60)
        if not group_before and group_exists("greylight"):
            subprocess.run(["groupdel", "greylight"], timeout=60)

    if failures:
        log(f"{len(failures)} failure(s):")
        for failure in failures:
            log(f"  {failure}")
        return 1
    log("package builds, installs and removes cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
