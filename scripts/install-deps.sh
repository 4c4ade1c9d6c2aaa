#!/usr/bin/env bash
# Installs greylight's dependencies from Debian's packages, without prompts.
#   scripts/install-deps.sh build   what building greylightd needs
#   scripts/install-deps.sh test    that, plus what the test suite runs against
set -euo pipefail

build_packages=(cmake g++ make pkg-config liblmdb-dev lmdb-utils libasio-dev libpcre2-dev
                libfmt-dev libssl-dev libsystemd-dev libhiredis-dev
                libdb5.3-dev libpsl-dev libc-ares-dev publicsuffix)
test_packages=(libgtest-dev libgmock-dev libbenchmark-dev python3 postgrey redis-server redis-sentinel db5.3-util prometheus clang libclang-rt-14-dev
               postfix swaks systemd groff-base man-db file dpkg-dev unbound)

case "${1:-}" in
  build) packages=("${build_packages[@]}") ;;
  test) packages=("${build_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# postfix asks how to configure the system's mail: the tests run private instances only.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
$sudo apt-get update -qq
$sudo -E apt-get install -y -qq --no-install-recommends "${missing[@]}"
