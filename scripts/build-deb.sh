#!/usr/bin/env bash
# Builds greylight's Debian package from debian/ with dpkg-buildpackage, as a Debian
# developer would, and prints the path of OUT/greylight_<version>_<arch>.deb last.
#
#   scripts/build-deb.sh [--out DIR] [--version VERSION]
#
#   --out DIR          where the build happens and the packages land (default: build-deb/);
#                      the source is copied to DIR/greylight-<version>/ first, so the tree
#                      itself is never written to
#   --version VERSION  build the package as VERSION: a changelog entry is added in the
#                      copy (the upgrade test builds an older package this way)
#
# Installs what it needs first: scripts/install-deps.sh package (debhelper, dpkg-dev and
# the Build-Depends of debian/control through `apt-get build-dep`).
#
# The copy holds the files git knows (tracked, or new and not ignored) as they are in the
# working tree. The build is skipped when OUT already holds the package of exactly these
# files (OUT/.source.sha256): building is deterministic (SOURCE_DATE_EPOCH comes from
# debian/changelog, and two builds give the same bytes; tests/packaging checks it), so
# the package there is the one a new build would make.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build-deb
version=
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --version) version=$2; shift 2 ;;
    --version=*) version=${1#--version=}; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--out DIR] [--version VERSION]" >&2; exit 2 ;;
  esac
done

"$top/scripts/install-deps.sh" package >&2

mkdir -p "$out"
out=$(cd "$out" && pwd)
[[ $out != "$top" ]] || { echo "$0: --out must not be the source tree itself" >&2; exit 2; }
changelog_version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
version=${version:-$changelog_version}
arch=$(dpkg --print-architecture)
deb=$out/greylight_${version}_${arch}.deb

# The copy: what git knows of the working tree (build directories and other ignored files
# stay out), with the changelog entry for --version on top.
src=$out/greylight-$version
rm -rf "$src"
mkdir -p "$src"
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
   while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
   tar --null -T - -cf -) | tar -C "$src" -xf -
if [[ $version != "$changelog_version" ]]; then
  {
    printf 'greylight (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Built by scripts/build-deb.sh --version from %s.\n\n' "$changelog_version"
    printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -l "$top/debian/changelog" -S Maintainer)" \
      "$(date -R)"
    cat "$top/debian/changelog"
  } > "$src/debian/changelog"
fi

sum=$(cd "$src" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum)
sum=${sum%% *}
if [[ -f $deb && -f $out/.source.sha256 && $(cat "$out/.source.sha256") == "$sum" ]]; then
  echo "build-deb: $deb is already the package of this source (sha256 $sum)" >&2
  rm -rf "$src"
  echo "$deb"
  exit 0
fi
rm -f "$out"/greylight_* "$out"/greylight-dbgsym_* "$out/.source.sha256"

(cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >&2
rm -rf "$src"
[[ -f $deb ]] || { echo "$0: dpkg-buildpackage made no $deb" >&2; exit 1; }
echo "$sum" > "$out/.source.sha256"
echo "$deb"
