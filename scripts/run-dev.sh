#!/usr/bin/env bash
# Installs the build dependencies, builds greylightd and the greylight tool, and runs
# greylightd in the foreground on 127.0.0.1:10023 with its LMDB database under ./var/.
# Extra arguments go to greylightd (e.g. --delay=60 --verbose).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
# The flags of scripts/test.sh's release build, which then reuses these objects.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREYLIGHT_WERROR=ON \
      -DGREYLIGHT_BUILD_TESTS=OFF -DGREYLIGHT_BUILD_BENCH=OFF
cmake --build build -j"$(nproc)" --target greylightd greylight
mkdir -p var
# Running as root for a quick try: --user=root keeps root explicitly (a package install
# runs as the greylight user instead).
exec build/src/greylightd --inet=127.0.0.1:10023 --dbdir=./var --user=root "$@"
