#!/usr/bin/env bash
# Installs what building the Debian package needs, builds greylight in build-deb/ and makes
# the package build-deb/greylight_<version>_<arch>.deb (prints its path last).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh package
cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
      -DGREYLIGHT_BUILD_TESTS=OFF -DGREYLIGHT_BUILD_BENCH=OFF
cmake --build build-deb -j"$(nproc)"
(cd build-deb && cpack -G DEB >/dev/null)
ls "$PWD"/build-deb/greylight_*.deb
