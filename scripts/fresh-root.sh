#!/usr/bin/env bash
# Runs a command in a brand-new, minimal Debian 12 root on a clean clone of this tree's
# committed HEAD: what a newcomer's machine does with the project. A clean clone on a
# machine where packages were once installed hides a missing install step; this cannot,
# because the root holds only Debian's minimal base (--variant=minbase) plus git and
# ca-certificates, made by mmdebstrap from Debian's archive.
#
#   scripts/fresh-root.sh [--keep] -- COMMAND...
#
# COMMAND runs as root with bash -c inside the root, in the clone's top directory
# (/project/<name>), with ../shared beside it as CI has it, with /proc, /sys, /dev and a
# tmpfs /tmp mounted, and the host's resolver. Processes it leaves behind are killed by
# PID when it ends, and the root is deleted (--keep leaves it and prints its path).
#
# The base root is made once per week (about 45 s) and kept as a tarball in
# $GREYLIGHT_ROOT_CACHE (default /var/cache/greylight-ci); every run unpacks a new copy, so
# no installed package ever survives from one run to the next. Needs root.
set -euo pipefail
keep=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --keep) keep=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--keep] -- COMMAND..." >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "$0: needs root (mount, chroot)" >&2; exit 2; }

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
name=$(basename "$repo")
cache=${GREYLIGHT_ROOT_CACHE:-/var/cache/greylight-ci}
base=$cache/bookworm-minbase.tar

# mmdebstrap picks its output format from the file name: write to *.tar, then rename.
if [[ ! -s $base ]] || [[ -n $(find "$base" -mtime +7 2>/dev/null) ]]; then
  command -v mmdebstrap >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
  }
  mkdir -p "$cache"
  echo "fresh-root: making the base root" >&2
  rm -f "$cache/new.tar"
  mmdebstrap --quiet --variant=minbase --format=tar --include=ca-certificates,git \
    bookworm "$cache/new.tar" >&2
  mv "$cache/new.tar" "$base"
fi

root=$(mktemp -d /tmp/fresh-root.XXXXXX)
mounted=()
cleanup() {
  local p pids=() i
  # A daemon the command left running inside the root: end it by its PID.
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/root" 2>/dev/null) == "$root" ]] && pids+=("${p#/proc/}")
  done
  if [[ ${#pids[@]} -gt 0 ]]; then
    kill "${pids[@]}" 2>/dev/null || true
    sleep 1
    kill -9 "${pids[@]}" 2>/dev/null || true
  fi
  # Ours, and whatever the command mounted below the root (network namespaces of tests
  # that failed half-way), deepest first.
  local left
  mapfile -t left < <(awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' \
                        /proc/self/mounts | sort -r)
  for i in "${left[@]}" "${mounted[@]}"; do
    umount "$i" 2>/dev/null || umount -l "$i" 2>/dev/null || true
  done
  if [[ $keep == 1 ]]; then echo "fresh-root: kept at $root" >&2; return; fi
  if awk -v r="$root" '$2 == r || index($2, r "/") == 1 {found = 1} END {exit !found}' \
       /proc/self/mounts; then
    echo "fresh-root: something is still mounted under $root, left in place" >&2
    return
  fi
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$base"
# The root is a mount point, as / is on a real machine (some tools, e.g. `ip netns`, remount
# it).
mount --bind "$root" "$root" && mounted+=("$root")
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount -t sysfs sysfs "$root/sys" && mounted+=("$root/sys")
mount --bind /dev "$root/dev" && mounted+=("$root/dev")
if mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" 2>/dev/null; then
  mounted+=("$root/dev/pts")
fi
mount -t tmpfs tmpfs "$root/tmp" && mounted+=("$root/tmp")
cp /etc/resolv.conf "$root/etc/resolv.conf"

mkdir -p "$root/project"
git clone -q --no-local "$repo" "$root/project/$name"
[[ -d $repo/../shared ]] && cp -r "$repo/../shared" "$root/project/shared"

echo "fresh-root: $(git -C "$repo" log -1 --format='%h %s' | cut -c1-70)" >&2
start=$(date +%s)
set +e
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  bash -c "cd /project/$name || exit 2
$*"
rc=$?
set -e
echo "fresh-root: exit $rc after $(($(date +%s) - start)) s" >&2
exit $rc
