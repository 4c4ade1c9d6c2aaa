#!/usr/bin/env python3
"""debian/ agrees with the rest of the tree, checked in a second without building.

    python3 tests/e2e/debian_source_test.py [--source-dir DIR]

The package itself is built and checked by tests/e2e/package_test.py (minutes, CI's fresh
root), where dh_missing also fails on a file the CMake install makes and
debian/greylight.install leaves out. This catches the drift that would only show there,
or on a user's machine:
  * debian/changelog's version is the CMake project's version (greylightd --version);
  * debian/control's Build-Depends and scripts/install-deps.sh's build list name the
    same libraries, so a dependency added to one is not forgotten in the other;
  * every Build-Depends is installed by `scripts/install-deps.sh build` (the developer's
    build), except debhelper-compat;
  * the maintainer scripts keep the #DEBHELPER# token on a line of its own (a comment
    that names it gets the snippets inserted into the comment).
"""
import argparse
import os
import re
import sys

failures = []


def check(condition, message):
    print(f"[debian] {'ok  ' if condition else 'FAIL'} {message}", flush=True)
    if not condition:
        failures.append(message)


def read(path):
    with open(path) as f:
        return f.read()


def changelog_version(source):
    first = read(os.path.join(source, "debian", "changelog")).splitlines()[0]
    m = re.match(r"^greylight \(([^)]+)\) ", first)
    return m.group(1) if m else None


def cmake_version(source):
    m = re.search(r"^project\(greylight VERSION (\S+)", read(os.path.join(source, "CMakeLists.txt")),
                  re.M)
    return m.group(1) if m else None


def build_depends(source):
    control = read(os.path.join(source, "debian", "control"))
    m = re.search(r"^Build-Depends:(.*?)^\S", control, re.M | re.S)
    names = set()
    for item in m.group(1).split(","):
        item = item.strip()
        if item:
            names.add(re.split(r"[\s(\[<:]", item, maxsplit=1)[0])
    return names


def install_deps_list(source, name):
    text = read(os.path.join(source, "scripts", "install-deps.sh"))
    m = re.search(rf"^{name}=\((.*?)^\)", text, re.M | re.S)
    words = []
    for line in m.group(1).splitlines():
        words += line.split("#")[0].split()
    return set(words)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", default=os.path.abspath(
        os.path.join(os.path.dirname(__file__), "..", "..")))
    args = parser.parse_args()
    source = args.source_dir

    version, project = changelog_version(source), cmake_version(source)
    check(version is not None and project is not None and
          re.split(r"[~-]", version)[0] == project,
          f"debian/changelog's version {version} is the CMake project's {project}")

    depends = build_depends(source) - {"debhelper-compat"}
    build = install_deps_list(source, "build_packages")
    missing = sorted(depends - build)
    check(not missing, f"install-deps.sh build installs every Build-Depends (missing: {missing})")
    libraries = {p for p in build if p.startswith("lib") and p.endswith("-dev")}
    forgotten = sorted(libraries - depends)
    check(not forgotten,
          f"debian/control Build-Depends has every library of install-deps.sh build "
          f"(missing: {forgotten})")

    for script in ("greylight.postinst", "greylight.postrm"):
        lines = read(os.path.join(source, "debian", script)).splitlines()
        tokens = [l for l in lines if "#DEBHELPER#" in l]
        check(tokens == ["#DEBHELPER#"],
              f"debian/{script} has #DEBHELPER# once, on a line of its own ({tokens})")

    if failures:
        print(f"[debian] {len(failures)} check(s) failed", flush=True)
        return 1
    print("[debian] debian/ agrees with the tree", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
