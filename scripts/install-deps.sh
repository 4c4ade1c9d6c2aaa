#!/usr/bin/env bash
# Installs greylight's dependencies from Debian's packages, without prompts.
#   scripts/install-deps.sh build     what building and running greylightd needs
#   scripts/install-deps.sh package   that, plus what building the Debian package needs
#   scripts/install-deps.sh test      all of that, plus what the test suite runs against
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
package_packages=(dpkg-dev file fakeroot)
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
  systemd groff-base man-db                 # unit and man page tests
  mmdebstrap                                # CI's brand-new Debian root
)

case "${1:-}" in
  build) packages=("${build_packages[@]}") ;;
  package) packages=("${build_packages[@]}" "${package_packages[@]}") ;;
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
