#!/usr/bin/env python3
"""greylight's Debian package, built from debian/ as a Debian developer builds it, through
its whole life on this machine.

    python3 tests/e2e/package_test.py --throwaway-machine [--work DIR]

THIS CHANGES THE MACHINE: it installs, upgrades, removes and purges the package (which
creates the system user greylight and /var/lib/greylight), and deletes the user again at
the end if it did not exist before. CI runs it in a brand-new Debian 12 root
(.ci/newcomer.sh), hence the mandatory --throwaway-machine. It needs root and a machine
where systemd does not run (a chroot or a container): the service is started the way its
unit says (tests/e2e/unit_runner.py), on a free loopback port.

It builds two packages with scripts/build-deb.sh (each a full dpkg-buildpackage run) and
relabels one:
  A  the package of this tree, in build-deb/ (the build is skipped when build-deb/ holds
     the package of exactly this tree already, e.g. from the README's install step);
  B  the same tree again in another directory, later: A and B must be byte-identical
     (dpkg-buildpackage takes SOURCE_DATE_EPOCH from debian/changelog);
  P  A relabelled VERSION~previous1 (dpkg-deb -R, Version changed, dpkg-deb -b): the
     package an administrator upgrades from. Same files and maintainer scripts, so dpkg
     runs the upgrade path in full (prerm upgrade, conffile handling, postinst configure
     with the old version) without a third build of several minutes.

Checks:
  * A's control fields, file list, permissions, conffiles, maintainer scripts and unit
    (packaging/greylight.service.in rendered for /usr/sbin);
  * lintian on A reports no error and no warning;
  * A == B, byte for byte (and their -dbgsym packages);
  * install P: user and group greylight (system, no login), /var/lib/greylight
    greylight:greylight 0750, unit enabled, conffiles registered; with an edited
    /etc/default/greylight, greylightd started as the unit starts it runs as greylight,
    with the edited options, and greylists new triplets;
  * upgrade P -> A: the edited /etc/default/greylight is kept as it was, the database
    keeps the records (`greylight list`; the new daemon sees a retry, not a new triplet);
  * remove: programs gone, configuration and database kept;
  * purge: configuration, /etc/greylight, the database and the unit's enablement gone;
  * reinstall A: installs from scratch, pristine configuration, empty database, answers.
"""
import argparse
import grp
import hashlib
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import unit_runner  # noqa: E402

PACKAGE = "greylight"
UNIT = "/lib/systemd/system/greylight.service"
ENABLED_LINK = "/etc/systemd/system/multi-user.target.wants/greylight.service"
DEFAULTS = "/etc/default/greylight"
STATE = "/var/lib/greylight"
CONFFILES = [DEFAULTS, "/etc/greylight/whitelist_clients", "/etc/greylight/whitelist_recipients"]
PROGRAMS = ["/usr/sbin/greylightd", "/usr/bin/greylight"]
PROGRAM_FILES = PROGRAMS + ["/usr/share/man/man8/greylightd.8.gz",
                            "/usr/share/man/man1/greylight.1.gz", UNIT]

failures = []


def log(message):
    print(f"[package] {message}", flush=True)


def check(condition, message):
    log(f"{'ok  ' if condition else 'FAIL'} {message}")
    if not condition:
        failures.append(message)
    return condition


def run(cmd, timeout=300, check_rc=True, quiet=False, **kwargs):
    """Runs cmd; unless quiet, logs it and its output (a failure raises either way)."""
    if not quiet:
        log("$ " + " ".join(cmd))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kwargs)
    if not quiet and r.stdout.strip():
        print(r.stdout.rstrip(), flush=True)
    if check_rc and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}")
    return r


def apt(*args):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return run(["apt-get", "-y", "-q", *args], timeout=600, check_rc=False, env=env)


def dpkg_status():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip() if r.returncode == 0 else "not-installed"


def user_exists(name):
    try:
        return pwd.getpwnam(name) is not None
    except KeyError:
        return False


def group_exists(name):
    try:
        return grp.getgrnam(name) is not None
    except KeyError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


# --- building ----------------------------------------------------------------------------

def build(out, version=None):
    """scripts/build-deb.sh --out OUT [--version V]; returns the .deb's path."""
    cmd = [os.path.join(SOURCE, "scripts", "build-deb.sh"), "--out", out]
    if version:
        cmd += ["--version", version]
    log("$ " + " ".join(cmd))
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("w+", prefix="build-deb-", suffix=".log") as output:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=output, text=True, timeout=1800)
        output.seek(0)
        text = output.read()
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        print(text[-6000:], flush=True)
        raise AssertionError(f"build-deb.sh exited {r.returncode}")
    print("\n".join(text.splitlines()[-3:]), flush=True)
    log(f"built {lines[-1]} in {time.monotonic() - started:.0f} s")
    return lines[-1]


def deb_field(deb, name):
    return run(["dpkg-deb", "-f", deb, name], quiet=True).stdout.strip()


def check_contents(deb, version):
    arch = run(["dpkg", "--print-architecture"], quiet=True).stdout.strip()
    fields = {name: deb_field(deb, name) for name in
              ("Package", "Version", "Architecture", "Maintainer", "Section", "Depends",
               "Suggests", "Enhances")}
    log(f"control: {fields}")
    check(fields["Package"] == PACKAGE, f"Package is {PACKAGE}")
    check(fields["Version"] == version, f"Version is debian/changelog's {version}")
    check(fields["Architecture"] == arch, f"Architecture is {arch}")
    check(os.path.basename(deb) == f"{PACKAGE}_{version}_{arch}.deb",
          f"file name {os.path.basename(deb)} is {PACKAGE}_<version>_<arch>.deb")
    check(fields["Section"] == "mail", "Section is mail")
    depends = fields["Depends"]
    for name in ("liblmdb0", "libpcre2-8-0", "libc6", "libsystemd0", "adduser", "publicsuffix"):
        check(re.search(rf"(^|, ){re.escape(name)}\b", depends) is not None,
              f"Depends has {name} (shlibs or debian/control)")
    for field in ("Suggests", "Enhances"):
        check("postfix" in fields[field] and "exim4" in fields[field],
              f"{field} names postfix and exim4 ({fields[field]})")

    entries = {}
    for line in run(["dpkg-deb", "-c", deb], quiet=True).stdout.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6:
            path = parts[5].split(" -> ")[0]
            entries[path[1:] if path.startswith(".") else path] = (parts[0], parts[1])
    for path in PROGRAM_FILES + CONFFILES + ["/usr/share/doc/greylight/copyright",
                                             "/usr/share/doc/greylight/changelog.gz"]:
        check(path in entries, f"package contains {path}")
    allowed = ("/usr/sbin/", "/usr/bin/", "/usr/share/man/man1/", "/usr/share/man/man8/",
               "/usr/share/doc/greylight/", "/etc/greylight/", "/etc/default/",
               "/lib/systemd/system/")
    for path, (mode, owner) in sorted(entries.items()):
        if not mode.startswith("d"):
            check(path.startswith(allowed), f"package file {path} is in an expected place")
        check(owner == "root/root", f"{path} is owned by root/root ({owner})")
    for path in PROGRAMS:
        if path in entries:
            check(entries[path][0] == "-rwxr-xr-x", f"{path} is 0755")
    for path in CONFFILES + [UNIT]:
        if path in entries:
            check(entries[path][0] == "-rw-r--r--", f"{path} is 0644")

    control = tempfile.mkdtemp(prefix="greylight-control-")
    data = tempfile.mkdtemp(prefix="greylight-data-")
    try:
        run(["dpkg-deb", "-e", deb, control], quiet=True)
        listed = sorted(read(os.path.join(control, "conffiles")).split())
        check(listed == sorted(CONFFILES), f"conffiles are {sorted(CONFFILES)} (got {listed})")
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(control, script)
            check(os.path.exists(path) and os.stat(path).st_mode & 0o111,
                  f"maintainer script {script} present and executable")
            if os.path.exists(path):
                check(run(["sh", "-n", path], check_rc=False, quiet=True).returncode == 0,
                      f"{script} passes sh -n")
        postinst = read(os.path.join(control, "postinst"))
        check("adduser --system" in postinst, "postinst creates the user with adduser --system")
        check("deb-systemd-helper" in postinst and "deb-systemd-invoke" in postinst,
              "postinst enables and starts the unit through dh_installsystemd's snippets")

        run(["dpkg-deb", "-x", deb, data], quiet=True)
        unit = read(os.path.join(data, UNIT.lstrip("/")))
        template = read(os.path.join(SOURCE, "packaging", "greylight.service.in"))
        check(unit == template.replace("@SBINDIR@", "/usr/sbin"),
              "packaged unit is packaging/greylight.service.in with ExecStart in /usr/sbin")
        shipped = read(os.path.join(data, DEFAULTS.lstrip("/")))
        check(shipped == read(os.path.join(SOURCE, "packaging", "default-greylight")),
              f"packaged {DEFAULTS} is packaging/default-greylight")
    finally:
        shutil.rmtree(control, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


def check_lintian(deb):
    """No error and no warning. Informational tags are printed, not failures. lintian
    warns that it runs as root: that is a remark on stderr, not a tag."""
    r = run(["lintian", "--fail-on", "error,warning", "--display-info", deb], timeout=600,
            check_rc=False, quiet=True)
    log("lintian output:\n" + (r.stdout.rstrip() or "(nothing)"))
    tags = [l for l in r.stdout.splitlines() if re.match(r"^[EW]: ", l)]
    check(r.returncode == 0 and not tags,
          f"lintian reports no error and no warning (exit {r.returncode}, {len(tags)} tags)")


def check_reproducible(deb_a, deb_b):
    for a, b in ((deb_a, deb_b), (dbgsym(deb_a), dbgsym(deb_b))):
        same = sha256(a) == sha256(b)
        check(same, f"{os.path.basename(a)} is byte-identical in two builds "
                    f"({os.path.dirname(a)} and {os.path.dirname(b)}): sha256 {sha256(a)}")
        if not same:
            explain_difference(a, b)


def dbgsym(deb):
    return deb.replace(f"{PACKAGE}_", f"{PACKAGE}-dbgsym_", 1)


def explain_difference(a, b):
    """Which members differ: a start for diffoscope."""
    dirs = []
    try:
        for deb in (a, b):
            d = tempfile.mkdtemp(prefix="greylight-diff-")
            dirs.append(d)
            run(["dpkg-deb", "-R", deb, d], quiet=True)
        r = run(["diff", "-rq", dirs[0], dirs[1]], check_rc=False, quiet=True)
        log(f"differing files:\n{r.stdout}")
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


# --- the installed package ------------------------------------------------------------------

def check_installed(version):
    check(dpkg_status() == f"install ok installed {version}",
          f"dpkg: greylight {version} installed ({dpkg_status()})")
    if check(user_exists("greylight") and group_exists("greylight"),
             "user and group greylight exist"):
        user = pwd.getpwnam("greylight")
        check(user.pw_uid < 1000, f"greylight is a system user (uid {user.pw_uid})")
        check(user.pw_gid == grp.getgrnam("greylight").gr_gid, "its primary group is greylight")
        check(user.pw_dir == STATE, f"its home is {STATE} ({user.pw_dir})")
        check(user.pw_shell in ("/usr/sbin/nologin", "/bin/false"),
              f"it has no login shell ({user.pw_shell})")
    if check(os.path.isdir(STATE), f"{STATE} exists"):
        st = os.stat(STATE)
        got = (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
               stat.S_IMODE(st.st_mode))
        check(got == ("greylight", "greylight", 0o750),
              f"{STATE} is greylight:greylight 0750 ({got[0]}:{got[1]} {oct(got[2])})")
    registered = run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE], quiet=True).stdout
    for path in CONFFILES:
        check(path in registered, f"dpkg registered conffile {path}")
    check(os.path.islink(ENABLED_LINK) and os.readlink(ENABLED_LINK) == UNIT,
          f"greylight.service is enabled without a running systemd ({ENABLED_LINK})")
    upstream = version.split("~")[0]
    r = run(["/usr/sbin/greylightd", "--version"], check_rc=False, quiet=True)
    check(r.stdout.strip() == f"greylightd {upstream}",
          f"greylightd --version says {upstream} ({r.stdout.strip()!r})")
    if shutil.which("systemd-analyze"):
        r = run(["systemd-analyze", "verify", UNIT], check_rc=False, quiet=True)
        check(r.returncode == 0 and "greylight" not in r.stdout,
              f"systemd-analyze verify {UNIT} is clean: {r.stdout.strip()!r}")
    if shutil.which("man"):
        r = run(["man", "-w", "greylightd"], check_rc=False, quiet=True)
        check(r.stdout.strip() == "/usr/share/man/man8/greylightd.8.gz",
              f"man -w greylightd finds the compressed page ({r.stdout.strip()!r})")


def edit_defaults(port):
    """What an administrator does: options of their own in /etc/default/greylight."""
    with open(DEFAULTS, "a") as f:
        f.write(f'\n# local: package_test.py\nGREYLIGHT_OPTS="--inet=127.0.0.1:{port} --delay=120"\n')
    return read(DEFAULTS)


def start_service():
    """greylightd as greylight.service starts it: ExecStart, as user greylight."""
    unit = unit_runner.start_unit(UNIT)
    check(unit.uid() == pwd.getpwnam("greylight").pw_uid,
          f"greylightd (pid {unit.pid}) runs as user greylight")
    return unit


def ask(port, sender):
    """One policy request for (192.0.2.7, sender, bob@example.net); returns the answer."""
    r = run(["/usr/bin/greylight", "query", f"--server=inet:127.0.0.1:{port}",
             "--client-address=192.0.2.7", f"--sender={sender}", "--recipient=bob@example.net"],
            check_rc=False, quiet=True)
    log(f"greylight query --sender={sender}: {r.stdout.strip()}")
    return r.stdout.strip()


def logged_reason(unit, sender):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = re.search(rf"action=greylist, reason=([a-z-]+).*sender={re.escape(sender)},",
                      unit.log_text())
        if m:
            return m.group(1)
        time.sleep(0.1)
    return None


def stored_senders():
    """The senders of the stored triplets, read with the admin tool as user greylight."""
    user = pwd.getpwnam("greylight")
    r = subprocess.run(["/usr/bin/greylight", "list", "--format=csv", f"--dbdir={STATE}"],
                       capture_output=True, text=True, timeout=60, user=user.pw_uid,
                       group=user.pw_gid, extra_groups=[], cwd="/")
    log(f"greylight list (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    return set(re.findall(r"[\w.+-]+@example\.org", r.stdout))


def relabel(deb, version, out):
    """A copy of `deb` whose control file says `version`; returns its path."""
    tree = os.path.join(out, "tree")
    os.makedirs(out, exist_ok=True)
    run(["dpkg-deb", "-R", deb, tree], quiet=True)
    control = os.path.join(tree, "DEBIAN", "control")
    with open(control) as f:
        text = f.read()
    text, count = re.subn(r"^Version: .*$", f"Version: {version}", text, flags=re.M)
    check(count == 1, f"relabelled {os.path.basename(deb)} as {version}")
    with open(control, "w") as f:
        f.write(text)
    relabelled = os.path.join(out, f"{PACKAGE}_{version}_relabelled.deb")
    run(["dpkg-deb", "--root-owner-group", "-b", tree, relabelled], quiet=True)
    return relabelled


def lifecycle(previous, deb, previous_version, version):
    if "not-installed" not in dpkg_status():
        log(f"greylight is installed ({dpkg_status()}): purging it first")
        run(["dpkg", "--purge", PACKAGE])

    log("--- install the previous version")
    r = apt("install", previous)
    check(r.returncode == 0, f"apt-get install {os.path.basename(previous)} succeeds")
    check_installed(previous_version)
    port = free_port()
    edited = edit_defaults(port)
    unit = start_service()
    try:
        check(f"--inet=127.0.0.1:{port}" in unit.argv and "--delay=120" in unit.argv,
              f"it has the options of the edited {DEFAULTS}: {unit.argv}")
        for sender in ("kept1@example.org", "kept2@example.org"):
            check(ask(port, sender).startswith("action=DEFER_IF_PERMIT 4.2.0 Greylisted"),
                  f"the installed service greylists a new triplet ({sender})")
    finally:
        # What systemd's restart does on upgrade: stop the old daemon, start the new one.
        check(unit.stop() == 0, "greylightd exits 0 on SIGTERM")
    check({"kept1@example.org", "kept2@example.org"} <= stored_senders(),
          "the database holds both triplets")

    log("--- upgrade to this version")
    r = apt("install", deb)
    check(r.returncode == 0, f"apt-get install {os.path.basename(deb)} (upgrade) succeeds")
    check_installed(version)
    check(read(DEFAULTS) == edited, f"the edited {DEFAULTS} is kept as it was")
    leftovers = [p for p in os.listdir("/etc/default") if p.startswith("greylight.dpkg")]
    check(not leftovers, f"no conffile prompt leftovers ({leftovers})")
    check({"kept1@example.org", "kept2@example.org"} <= stored_senders(),
          "the database still holds both triplets")
    unit = start_service()
    try:
        check(ask(port, "kept1@example.org").startswith("action=DEFER_IF_PERMIT"),
              "the upgraded service answers")
        reason = logged_reason(unit, "kept1@example.org")
        check(reason == "early-retry",
              f"it knows the triplet seen before the upgrade (reason={reason}, not new)")
    finally:
        unit.stop()

    log("--- remove")
    r = run(["dpkg", "--remove", PACKAGE], check_rc=False)
    check(r.returncode == 0, "dpkg --remove succeeds")
    check(dpkg_status().startswith("deinstall ok config-files"),
          f"only the configuration is left ({dpkg_status()})")
    for path in PROGRAM_FILES:
        check(not os.path.exists(path), f"after remove: {path} is gone")
    check(os.path.exists(DEFAULTS) and read(DEFAULTS) == edited,
          f"after remove: the edited {DEFAULTS} is kept")
    for path in CONFFILES[1:]:
        check(os.path.exists(path), f"after remove: {path} is kept")
    check({"kept1@example.org", "kept2@example.org"} <= stored_senders_raw(),
          f"after remove: the database in {STATE} is kept")
    check(user_exists("greylight"), "after remove: the user greylight is kept")

    log("--- purge")
    r = run(["dpkg", "--purge", PACKAGE], check_rc=False)
    check(r.returncode == 0, "dpkg --purge succeeds")
    check("not-installed" in dpkg_status(), f"dpkg knows nothing of greylight ({dpkg_status()})")
    for path in CONFFILES + ["/etc/greylight", STATE, ENABLED_LINK]:
        check(not os.path.lexists(path), f"after purge: {path} is gone")
    check(user_exists("greylight"),
          "after purge: the user greylight is kept (Debian keeps system users)")

    log("--- reinstall")
    r = apt("install", deb)
    check(r.returncode == 0, f"apt-get install {os.path.basename(deb)} after purge succeeds")
    check_installed(version)
    check(not stored_senders_raw(), f"{STATE} starts empty")
    port = free_port()
    edit_defaults(port)
    unit = start_service()
    try:
        check(ask(port, "kept1@example.org").startswith("action=DEFER_IF_PERMIT"),
              "the reinstalled service answers")
        reason = logged_reason(unit, "kept1@example.org")
        check(reason == "new", f"with a new database (reason={reason})")
    finally:
        unit.stop()


def stored_senders_raw():
    """stored_senders() without the admin tool (gone after remove): the database files'
    bytes, where the keys are in clear (--privacy is off)."""
    found = set()
    if os.path.isdir(STATE):
        for name in os.listdir(STATE):
            path = os.path.join(STATE, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    found |= {m.decode() for m in re.findall(rb"kept\d@example\.org", f.read())}
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throwaway-machine", action="store_true", required=True,
                        help="confirm that this machine may be changed")
    parser.add_argument("--work", help="where builds B and P go (default: a new temporary "
                                       "directory, deleted at the end)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("package_test.py must run as root", file=sys.stderr)
        return 2
    if os.path.isdir("/run/systemd/system"):
        print("package_test.py runs where systemd does not (a chroot or container): the "
              "package would start the system's greylight.service", file=sys.stderr)
        return 2
    work = args.work or tempfile.mkdtemp(prefix="greylight-package-test-")
    user_before, group_before = user_exists("greylight"), group_exists("greylight")
    try:
        version = run(["dpkg-parsechangelog", "-l", os.path.join(SOURCE, "debian/changelog"),
                       "-S", "Version"], quiet=True).stdout.strip()
        previous_version = f"{version}~previous1"
        check(run(["dpkg", "--compare-versions", previous_version, "lt", version],
                  check_rc=False, quiet=True).returncode == 0,
              f"{previous_version} sorts before {version}")

        log("--- A: the package of this tree")
        deb = build(os.path.join(SOURCE, "build-deb"))
        check_contents(deb, version)
        check_lintian(deb)

        log("--- B: the same tree, elsewhere, later")
        deb_b = build(os.path.join(work, "elsewhere", "in", "a", "deeper", "directory"))
        check_reproducible(deb, deb_b)

        log("--- P: A relabelled as the previous version")
        previous = relabel(deb, previous_version, os.path.join(work, "previous"))
        lifecycle(previous, deb, previous_version, version)
    except (AssertionError, subprocess.TimeoutExpired) as e:
        check(False, str(e))
    finally:
        if "not-installed" not in dpkg_status():
            subprocess.run(["dpkg", "--purge", PACKAGE], timeout=300)
        if not user_before and user_exists("greylight"):
            subprocess.run(["userdel", "greylight"], timeout=60)
        if not group_before and group_exists("greylight"):
            subprocess.run(["groupdel", "greylight"], timeout=60)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    if failures:
        log(f"{len(failures)} check(s) failed:")
        for failure in failures:
            log(f"  {failure}")
        return 1
    log("the package builds reproducibly, is lintian-clean, installs, upgrades, is removed, "
        "purged and reinstalled as it should")
    return 0


if __name__ == "__main__":
    sys.exit(main())
