#!/usr/bin/env bash
# A newcomer's first session, run by .ci/run inside a brand-new Debian 12 root
# (scripts/fresh-root.sh), as root, from a clean clone. Every command comes from README.md,
# as written there:
#   0. the README's package build (`scripts/build-deb.sh`, first line of "Install as a
#      service") on the untouched root: dpkg-buildpackage after installing only debhelper
#      and debian/control's Build-Depends, so a missing build dependency fails here;
#   1. the first Quick-start command, until greylightd answers the README's first request
#      with the answer and log line the README shows; then it is stopped;
#   2. the second Quick-start command, with its release stage (every unit, integration,
#      differential and Postfix end-to-end test; the sanitizer and fuzz stages run on the
#      CI host);
#   3. the Debian package's checks (tests/e2e/package_test.py): lintian, two builds
#      byte-identical, install, upgrade from an older build, remove, purge, reinstall;
#   4. the README's next steps: install as a service (the package of step 0, which
#      build-deb.sh does not build again for the same source), Postfix, coming from
#      postgrey (tests/e2e/readme_test.py);
#   5. the dependency script as a user with sudo rather than root.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== newcomer: %s (%s) ===\n' "$*" "$(date -u +%H:%M:%S)"; }
fail() { echo "newcomer: FAIL: $*" >&2; exit 1; }
# The fenced block after `<!-- readme-test: NAME -->` in README.md.
readme_block() {
  awk -v marker="<!-- readme-test: $1 -->" '
    $0 == marker { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' README.md
}
# A login shell on Debian 12 starts with a soft limit of 1024 open files; so does this.
ulimit -Sn 1024

build_deb=$(readme_block install | head -n 1)
step "Install as a service, the package build, on the untouched root: $build_deb"
[[ $build_deb == scripts/build-deb.sh* ]] || fail "README's install block does not start with scripts/build-deb.sh"
bash -c "$build_deb"

step "Quick start 1: $(readme_block run-dev)"
run_dev=$(readme_block run-dev)
[ -n "$run_dev" ] || fail "README has no run-dev block"
log=/tmp/run-dev.log
setsid bash -c "$run_dev" > "$log" 2>&1 &
run_dev_pid=$!
stop_run_dev() { kill -TERM -- "-$run_dev_pid" 2>/dev/null || true; wait "$run_dev_pid" 2>/dev/null || true; }
trap stop_run_dev EXIT
# Installing and building takes minutes on a new machine; wait for the port, bounded.
for _ in $(seq 1 1200); do
  if (exec 3<>/dev/tcp/127.0.0.1/10023) 2>/dev/null; then break; fi
  kill -0 "$run_dev_pid" 2>/dev/null || { tail -40 "$log"; fail "run-dev.sh exited before listening"; }
  sleep 1
done
(exec 3<>/dev/tcp/127.0.0.1/10023) 2>/dev/null || { tail -40 "$log"; fail "no listener on 10023 after 20 min"; }
echo "greylightd listens on 127.0.0.1:10023"

first_request=$(readme_block first-request)
echo "\$ $first_request"
answer=$(bash -c "$first_request")
echo "$answer"
[ "$answer" = "$(readme_block first-request-answer)" ] || fail "the answer is not the README's"
expected_log=$(readme_block first-request-log)
for _ in $(seq 1 50); do grep -qxF "$expected_log" "$log" && break; sleep 0.1; done
grep -qxF "$expected_log" "$log" || { tail -20 "$log"; fail "greylightd did not log the README's line"; }
echo "greylightd logged: $expected_log"
stop_run_dev
trap - EXIT

step "Quick start 2, release stage: $(readme_block test)"
GREYLIGHT_STAGES=release bash -c "$(readme_block test)"

step "the Debian package: lintian, reproducible, install, upgrade, remove, purge, reinstall"
python3 tests/e2e/package_test.py --throwaway-machine

step "README next steps: install as a service, Postfix, coming from postgrey"
python3 tests/e2e/readme_test.py --throwaway-machine install postfix postgrey

step "the dependency script as a user with sudo"
apt-get install -y -qq --no-install-recommends sudo >/dev/null
id newcomer >/dev/null 2>&1 || useradd --create-home newcomer
echo "newcomer ALL=(ALL) NOPASSWD: ALL" > /etc/sudoers.d/newcomer
chmod 0440 /etc/sudoers.d/newcomer
mkdir -p /home/newcomer/greylight && cp -r scripts /home/newcomer/greylight/
chown -R newcomer: /home/newcomer/greylight
su - newcomer -c 'cd greylight && scripts/install-deps.sh build'
echo "newcomer: every step passed"
