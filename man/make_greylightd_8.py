#!/usr/bin/env python3
"""Writes the facts of every option entry in man/greylightd.8 from `greylightd --help`: the
option table (src/cli) is their one source, the page adds the prose.

    python3 man/make_greylightd_8.py build/src/greylightd [man/greylightd.8]

For each `.TP` entry of the OPTIONS section whose tag names an option of --help, the tag
line becomes the option's spellings and value name, and the entry's "Default: ..." line
becomes the table's default and range ("Default: 300; 1 to 86400."), added at the end of
the entry if it had none; entries of options without a default or range must not have
one. The prose between is left as written. The file is rewritten in place;
tests/e2e/man_page_test.py fails when running this would change it.
"""
import re
import subprocess
import sys


def roff(text):
    return text.replace("\\", "\\e").replace("-", "\\-")


def parse_help(text):
    """{first spelling: (spellings, value, default or None)} from --help."""
    options = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not re.match(r"^  -", lines[i]):
            i += 1
            continue
        tag = lines[i].strip()
        i += 1
        description = []
        while i < len(lines) and re.match(r"^      \S", lines[i]):
            description.append(lines[i].strip())
            i += 1
        description = " ".join(description)
        default = None
        m = re.search(r"\((?:default: )?([^()]*(?:\([^()]*\)[^()]*)*)\)$", description)
        if m and (description[m.start():].startswith("(default: ") or
                  re.fullmatch(r"-?\d+ to \d+", m.group(1))):
            default = m.group(1)
        value = ""
        spellings = tag
        m = re.match(r"^(.*?)(\[?=.*)$", tag)
        if m:
            spellings, value = m.group(1), m.group(2)
        names = [s.strip() for s in spellings.split(",")]
        options[names[0]] = (names, value, default)
    return options


def tag_line(names, value):
    bold = ", ".join(f"\\fB{roff(n)}\\fR" for n in names)
    if not value:
        return bold
    if value.startswith("[="):  # an optional value: "[=N]"
        return bold + f"[=\\fI{roff(value[2:-1])}\\fR]"
    return bold + f"=\\fI{roff(value[1:])}\\fR"


def main():
    binary = sys.argv[1]
    page = sys.argv[2] if len(sys.argv) > 2 else "man/greylightd.8"
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True,
                               check=True).stdout
    options = parse_help(help_text)
    by_spelling = {n: key for key, (names, _, _) in options.items() for n in names}
    with open(page) as f:
        lines = f.read().split("\n")
    out, i, in_options = [], 0, False
    while i < len(lines):
        line = lines[i]
        if line.startswith(".SH"):
            in_options = line.strip() == ".SH OPTIONS"
        if not (in_options and line == ".TP" and i + 1 < len(lines)):
            out.append(line)
            i += 1
            continue
        first = re.findall(r"\\fB([^\\]*(?:\\-[^\\]*)*)\\fR", lines[i + 1])
        spelling = first[0].replace("\\-", "-") if first else None
        key = by_spelling.get(spelling)
        if key is None:
            out.append(line)
            i += 1
            continue
        names, value, default = options[key]
        out += [".TP", tag_line(names, value)]
        i += 2
        body = []
        while i < len(lines) and not re.match(r"^\.(TP|SS|SH)\b", lines[i]):
            body.append(lines[i])
            i += 1
        body = [l for l in body if not l.startswith("Default:")]
        while body and body[-1] == "":
            body.pop()
        if default is not None:
            body.append(f"Default: {roff(default)}.")
        out += body
    with open(page, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
