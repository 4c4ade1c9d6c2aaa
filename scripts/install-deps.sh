#!/usr/bin/env bash
# Installs greylight's dependencies from Debian's packages, without prompts.
#   scripts/install-deps.sh build     what building and running greylightd needs
#   scripts/install-deps.sh package   what building the Debian package needs: debhelper and
#                                     the Build-Depends of debian/control (apt-get build-dep)
#   scripts/install-deps.sh test      all of that, plus what the test suite runs against
#                                     (and Debian's Exim, unpacked: see exim_root below)
#
# Works as root, or as a user who may run sudo. There is one path only: the whole list is
# always handed to apt-get, which is quick when everything is installed already, so a
# machine that has every package runs exactly the lines a brand-new machine runs.
set -euo pipefail

build_packages=(
  cmake g++ make pkg-config                 # the toolchain
  liblmdb-dev libasio-dev libpcre2-dev libfmt-dev libssl-dev libsystemd-dev libhiredis-dev
  libdb5.3-dev libpsl-dev libc-ares-dev     # greylight import-postgrey, --lookup-by, DNS lists
  publicsuffix lmdb-utils                   # the public suffix list; mdb_stat for admins
  git ca-certificates                       # the source tree itself
)
# The package's own build dependencies are debian/control's Build-Depends, installed with
# `apt-get build-dep`, so a missing one fails the package build on a brand-new root.
package_packages=(
  dpkg-dev debhelper build-essential git    # dpkg-buildpackage with dh; build-deb.sh's copy
  lintian                                   # the package check (tests/packaging)
)
test_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev                           # reads the RFC 7208 SPF test suite
  python3 procps iproute2 psmisc            # test harnesses: ps, ip netns, fuser
  postgrey libparse-syslog-perl db5.3-util  # the reference; its policy-test needs Parse::Syslog
  redis-server redis-sentinel redis-tools
  unbound                                   # DNS lists against a real resolver
  prometheus                                # promtool check metrics
  clang libclang-rt-14-dev clang-format     # libFuzzer; the format check
  postfix swaks                             # the end-to-end tests
  libidn12 libgnutls-dane0 libgnutls30 libidn2-0 libnsl2 libdb5.3 libpcre2-8-0 libcrypt1
                                            # what Debian's exim4 binary links (see below)
  systemd groff-base man-db                 # unit and man page tests
  mmdebstrap                                # CI's brand-new Debian root
)

case "${1:-}" in
  build) packages=("${build_packages[@]}") ;;
  package) packages=("${package_packages[@]}") ;;
  test) packages=("${build_packages[@]}" "${package_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: $0 build|package|test" >&2; exit 2 ;;
esac

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "$0: needs root or sudo" >&2; exit 2; }
  as_root=(sudo)
fi

# postfix asks how to configure the system's mail: the tests run private instances only.
echo "postfix postfix/main_mailer_type select No configuration" |
  "${as_root[@]}" debconf-set-selections
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq

# Services in the list (postgrey on port 10023, redis-server, unbound, prometheus) are
# tools for the tests, which start private instances of them: keep Debian from starting
# the system-wide ones during this install, as a build chroot does, unless the machine has
# its own policy already.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# greylight install-deps.sh: no service starts while it installs\nexit 101\n' |
    "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${packages[@]}"

# Exim, for tests/e2e/exim_e2e_test.py. Debian's exim4-daemon-light conflicts with postfix
# (both provide mail-transport-agent), so it is not installed: its package, and
# exim4-config's (Debian's configuration files and update-exim4.conf), are downloaded from
# the same archive and unpacked into $exim_root, whose libraries the list above installs.
# The test runs the unpacked binary as root with its own configuration (-C). The binary is
# setuid root, as installed: $exim_root is reachable by root and the group Debian-exim only
# (the user Exim is built to run as, created here as exim4-base's postinst would).
if [ "${1}" = test ]; then
  exim_root=${GREYLIGHT_EXIM_ROOT:-/var/cache/greylight-test/exim4}
  exim_download=$(mktemp -d)
  # As root, apt's sandbox user _apt could not write to the private download directory.
  no_sandbox=()
  [ "$(id -u)" -eq 0 ] && no_sandbox=(-o APT::Sandbox::User=root)
  (cd "$exim_download" && apt-get download -qq "${no_sandbox[@]}" exim4-daemon-light exim4-config)
  getent passwd Debian-exim >/dev/null ||
    "${as_root[@]}" useradd --system --user-group --home-dir /var/spool/exim4 --no-create-home \
                    --shell /usr/sbin/nologin Debian-exim
  "${as_root[@]}" rm -rf "$exim_root.new"
  "${as_root[@]}" mkdir -p "$exim_root.new"
  for deb in "$exim_download"/*.deb; do "${as_root[@]}" dpkg-deb -x "$deb" "$exim_root.new"; done
  # A configuration of its own, so that the check leaves no spool directory behind.
  printf 'spool_directory = %s/spool\nkeep_environment =\n' "$exim_download" > "$exim_download/check.conf"
  "${as_root[@]}" "$exim_root.new/usr/sbin/exim4" -C "$exim_download/check.conf" -bV >/dev/null ||
    { echo "$0: the unpacked exim4 does not run" >&2; exit 1; }
  "${as_root[@]}" rm -rf "$exim_download"
  "${as_root[@]}" chown root:Debian-exim "$exim_root.new"
  "${as_root[@]}" chmod 0750 "$exim_root.new"
  "${as_root[@]}" rm -rf "$exim_root"
  "${as_root[@]}" mv "$exim_root.new" "$exim_root"
fi

# Build-Depends from debian/control, for the package build (and the test suite's package
# tests); `build` alone does not need debian/ (it may run from a copy of scripts/ only).
if [ "$1" != build ]; then
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get build-dep -y -qq --no-install-recommends "$(cd "$(dirname "$0")/.." && pwd)"
fi
