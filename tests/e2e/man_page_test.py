#!/usr/bin/env python3
"""greylightd(8) must describe exactly the options of `greylightd --help`.

    python3 tests/e2e/man_page_test.py --greylightd build/src/greylightd [--man-dir man]

--help is generated from the daemon's option table (src/cli), so checking the man page
against it checks it against the table. Fails if
  * an option line of --help ("-i, --inet=[HOST:]PORT") has no identical tag in the man
    page's OPTIONS section, or its default ("(default: X)") is not stated in that entry;
  * the man page has an option tag that --help does not list, or lists one twice;
  * any "--option" mentioned anywhere in the man page is not a --help spelling;
  * a signal named by --help's "Signals:" line is missing from the SIGNALS section;
  * greylightd.8 or greylight.1 render with groff warnings (groff -man -ww), or
    `man -l` fails on them (groff-base is installed from Debian if missing, as root).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

SIGNAL_NAMES = ("HUP", "INT", "QUIT", "TERM", "USR1", "USR2", "PIPE", "ALRM", "CHLD")


def roff_to_text(text):
    """Enough of roff's escapes to compare man page source with plain --help text."""
    text = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", text)  # font changes
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")
    text = text.replace("\\(dq", '"').replace("\\(aq", "'").replace("\\(lq", '"').replace("\\(rq", '"')
    text = text.replace("\\(em", "--").replace("\\(en", "-").replace("\\(bu", "*")
    text = text.replace("\\ ", " ").replace("\\~", " ").replace("\\%", "")
    return text


def macro_text(line):
    """The visible text of one roff line: '.B x' -> 'x', '.BR a ", " b' -> 'a, b'."""
    line = line.rstrip("\n")
    m = re.match(r"^\.(B|I|BR|RB|BI|IB|IR|RI|SM|SB)\s+(.*)$", line)
    if not m:
        return roff_to_text(line)
    args = re.findall(r'"((?:[^"]|"")*)"|(\S+)', m.group(2))
    words = [quoted if quoted or not bare else bare for quoted, bare in args]
    if m.group(1) in ("B", "I", "SM", "SB"):
        return roff_to_text(" ".join(words))
    return roff_to_text("".join(words))  # alternating fonts: no spaces between arguments


def parse_help(text):
    """[(tag line, [spellings], default or None)] and the signal names, from --help."""
    options = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^  -", line):
            tag = line.strip()
            description = []
            i += 1
            while i < len(lines) and re.match(r"^      \S", lines[i]):
                description.append(lines[i].strip())
                i += 1
            description = " ".join(description)
            default = None
            at = description.rfind("(default: ")
            if at >= 0 and description.endswith(")"):
                default = description[at + len("(default: "):-1]
            spellings = re.findall(r"(?:(?<=^)|(?<=, ))(--?[A-Za-z0-9][A-Za-z0-9-]*)", tag)
            options.append((tag, spellings, default))
            continue
        i += 1
    signals_line = next((l for l in lines if l.startswith("Signals:")), "")
    signals = [s for s in SIGNAL_NAMES if re.search(rf"\b{s}\b", signals_line)]
    return options, signals


def man_sections(source):
    """{section title: [lines]} of a man page source (.SH level)."""
    sections, current = {}, None
    for line in source.splitlines():
        m = re.match(r'^\.SH\s+"?([^"]*)"?\s*$', line)
        if m:
            current = m.group(1).strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def man_option_entries(option_lines):
    """[(tag text, body text)] of the .TP entries in the OPTIONS section."""
    entries = []
    i = 0
    while i < len(option_lines):
        if option_lines[i].startswith(".TP"):
            tag = macro_text(option_lines[i + 1])
            body = []
            i += 2
            while i < len(option_lines) and not re.match(r"^\.(TP|SS|SH)\b", option_lines[i]):
                if not option_lines[i].startswith(".\\\""):
                    body.append(macro_text(option_lines[i]))
                i += 1
            entries.append((" ".join(tag.split()), " ".join(" ".join(body).split())))
            continue
        i += 1
    return entries


def ensure_groff():
    """Installs groff-base (Debian) if groff is missing and we are root."""
    if shutil.which("groff") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], timeout=300, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "groff-base"], timeout=300, env=env)


def check_render(path, failures):
    groff = shutil.which("groff")
    if groff:
        r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", path], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0 or r.stderr.strip():
            failures.append(f"groff -man -ww {path}: exit {r.returncode}: {r.stderr.strip()}")
    else:
        failures.append("groff not installed (Debian package groff-base)")
    man = shutil.which("man")
    if man:
        env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
        r = subprocess.run([man, "-l", path], capture_output=True, text=True, timeout=60, env=env)
        if r.returncode != 0 or not r.stdout.strip():
            failures.append(f"man -l {path}: exit {r.returncode}: {r.stderr.strip()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--greylightd", required=True)
    parser.add_argument("--greylight", help="the admin tool: greylight.1 must be what "
                        "man/make_greylight_1.py generates from its --help texts")
    parser.add_argument("--man-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "..", "..", "man"))
    args = parser.parse_args()
    man_dir = os.path.abspath(args.man_dir)
    page = os.path.join(man_dir, "greylightd.8")

    result = subprocess.run([args.greylightd, "--help"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0 or "--inet" not in result.stdout:
        print(f"greylightd --help failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return 1
    options, signals = parse_help(result.stdout)
    help_spellings = {s for _, spellings, _ in options for s in spellings}

    with open(page) as f:
        source = f.read()
    sections = man_sections(source)
    failures = []
    if "OPTIONS" not in sections:
        failures.append("greylightd.8 has no OPTIONS section")
    entries = man_option_entries(sections.get("OPTIONS", []))
    by_tag = {}
    for tag, body in entries:
        if tag in by_tag:
            failures.append(f"option documented twice in greylightd.8: {tag}")
        by_tag[tag] = body

    # Every --help option: an identical tag, and its default stated in the entry.
    for tag, spellings, default in options:
        if tag not in by_tag:
            failures.append(f"--help option missing from greylightd.8 (no tag '{tag}')")
            continue
        if default is not None and f"Default: {default}" not in by_tag[tag]:
            failures.append(f"greylightd.8 entry '{tag}' does not say 'Default: {default}'")

    # Every man page tag: listed by --help, spelling for spelling.
    help_tags = {tag for tag, _, _ in options}
    for tag in by_tag:
        if tag not in help_tags:
            failures.append(f"greylightd.8 documents an option --help does not list: '{tag}'")

    # Every --long-option mentioned anywhere must exist.
    text = roff_to_text(source)
    for mention in sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))):
        if mention not in help_spellings:
            failures.append(f"greylightd.8 mentions {mention}, which --help does not list")

    # Signals.
    signal_text = roff_to_text("\n".join(sections.get("SIGNALS", [])))
    if not signals:
        failures.append("--help names no signals (expected a 'Signals:' line)")
    for name in signals:
        if not re.search(rf"\b(SIG)?{name}\b", signal_text):
            failures.append(f"signal {name} (from --help) missing from greylightd.8 SIGNALS")

    for required in ("FILES", "SIGNALS", "DIFFERENCES FROM POSTGREY", "LOGGING"):
        if required not in sections:
            failures.append(f"greylightd.8 has no {required} section")

    # The options' facts (spellings, values, defaults, ranges) come from the option table.
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "greylightd.8")
        shutil.copy(page, copy)
        generated = subprocess.run([sys.executable, os.path.join(man_dir, "make_greylightd_8.py"),
                                    args.greylightd, copy], capture_output=True, text=True)
        with open(page) as a, open(copy) as b:
            if generated.returncode != 0 or a.read() != b.read():
                failures.append("man/greylightd.8 is stale: run python3 man/make_greylightd_8.py "
                                "build/src/greylightd " + generated.stderr)

    if args.greylight:
        generator = os.path.join(man_dir, "make_greylight_1.py")
        generated = subprocess.run([sys.executable, generator, args.greylight],
                                   capture_output=True, text=True)
        with open(os.path.join(man_dir, "greylight.1")) as f:
            if generated.returncode != 0 or generated.stdout != f.read():
                failures.append("man/greylight.1 is stale: run python3 man/make_greylight_1.py "
                                "build/src/greylight > man/greylight.1 " + generated.stderr)

    ensure_groff()
    check_render(page, failures)
    check_render(os.path.join(man_dir, "greylight.1"), failures)

    print(f"--help lists {len(options)} options ({len(help_spellings)} spellings); "
          f"greylightd.8 documents {len(by_tag)}")
    if failures:
        for failure in failures:
            print(f"FAIL {failure}")
        return 1
    print("man pages match --help and render without warnings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
