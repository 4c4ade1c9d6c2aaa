#!/usr/bin/env bash
# Side-by-side benchmark: the null server (the machine's limit), greylightd with LMDB,
# greylightd with a Redis store (a redis-server started for each row), greylightd with a
# Redis Cluster store (3 masters + 3 replicas started for each row), and postgrey, each at
# 1, 8 and 64 connections in modes "mixed" and "hot", on this machine and
# on 127.0.0.1 only. Writes the table and the ratios to BENCHMARKS.md at the repository root.
#
# The delivery-delay section of BENCHMARKS.md (between its delay-simulation markers) is
# bench/delay_simulation.py's; this script keeps it as it is.
#
# Rows that are compared run back to back: for each mode and connection count, every server
# in turn. With ROUNDS > 1 the whole sweep repeats and each row reports its median round
# (by req/s), with every round's req/s beside it: the machine's speed drifts by tens of
# percent within minutes, and the median of interleaved rounds is what a ratio can rest on.
#
# Every server gets a fresh database directory for each row, so rows do not feed each
# other's state. Mixed rows run the servers with their default (durable) settings; hot rows
# add --delay=2 so that the hot set can pass greylisting during a short warm-up.
#
# Environment (all optional):
#   DURATION=10           measured seconds per row (1 to 600)
#   ROUNDS=1              sweeps of all rows; each row reports its median round (1 to 9)
#   GREYLIGHTD=path       greylightd binary (default: $BUILD_DIR/src/greylightd)
#   GREYLIGHT_BENCH=path  load generator binary (default: built here)
#   BUILD_DIR=path        CMake build tree, Release (default: <repo>/build-bench)
#   SKIP_BUILD=1          build nothing; use the binaries as they are
#   SERVERS="null greylightd greylightd-redis greylightd-cluster postgrey"
#   MODES="mixed hot"  CONNECTIONS="1 8 64"
#   HOT_SET=1000 HOT_DELAY=2 HOT_WARMUP=3 (seconds idle after priming) SEED=1
#   LARGE_TRIPLETS=10000000 (0 skips the large-database section; it runs ROUNDS rounds too)
#   BACKGROUND_RECORDS=1000000 (0 skips the background-work section: greylightd with and
#                         without whitelists, and beside live or expiring stored records)
#   GREYLIGHTD_ARGS, POSTGREY_ARGS  extra arguments for every run of that server
#   OUTPUT=path           where to write the report (default: <repo>/BENCHMARKS.md)
#   KEEP_TMP=1            keep the temporary directory (server logs, databases, JSON)
#
# Bounded in time: every step has a timeout; with the defaults the 18 rows take about
# 5 minutes, plus building and installing postgrey the first time.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMMAND_LINE="bench/run.sh${*:+ $*}"
for var in DURATION ROUNDS GREYLIGHTD GREYLIGHT_BENCH BUILD_DIR SKIP_BUILD SERVERS MODES CONNECTIONS \
  HOT_SET HOT_DELAY HOT_WARMUP SEED GREYLIGHTD_ARGS POSTGREY_ARGS OUTPUT LARGE_TRIPLETS \
  BACKGROUND_RECORDS; do
  if [[ -n ${!var+x} ]]; then COMMAND_LINE="$var=${!var@Q} $COMMAND_LINE"; fi
done

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-1}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
GREYLIGHTD=${GREYLIGHTD:-$BUILD_DIR/src/greylightd}
SERVERS=${SERVERS:-null greylightd greylightd-redis greylightd-cluster postgrey}
MODES=${MODES:-mixed hot}
CONNECTIONS=${CONNECTIONS:-1 8 64}
HOT_SET=${HOT_SET:-1000}
HOT_DELAY=${HOT_DELAY:-2}
HOT_WARMUP=${HOT_WARMUP:-$((HOT_DELAY + 1))}
SEED=${SEED:-1}
# Triplets in the large-database runs (0 skips them): startup time, memory, size and
# throughput of greylightd with this many stored triplets, against an empty database.
LARGE_TRIPLETS=${LARGE_TRIPLETS:-10000000}
BACKGROUND_RECORDS=${BACKGROUND_RECORDS:-1000000}
GREYLIGHT_FILL=${GREYLIGHT_FILL:-$BUILD_DIR/bench/greylight-fill}
GREYLIGHTD_ARGS=${GREYLIGHTD_ARGS:-}
POSTGREY_ARGS=${POSTGREY_ARGS:-}
OUTPUT=${OUTPUT:-$ROOT/BENCHMARKS.md}
POSTGREY=/usr/sbin/postgrey

# Seconds to wait for a server to listen, and for it to exit after SIGTERM.
readonly START_TIMEOUT=15
readonly STOP_TIMEOUT=10

if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 1 || DURATION > 600)); then
  echo "run.sh: DURATION must be 1 to 600 seconds" >&2
  exit 2
fi
if ! [[ $ROUNDS =~ ^[0-9]+$ ]] || ((ROUNDS < 1 || ROUNDS > 9)); then
  echo "run.sh: ROUNDS must be 1 to 9" >&2
  exit 2
fi

log() { printf '[run.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/greylight-bench.XXXXXX")
chmod 755 "$WORK"
RESULTS=$WORK/results.jsonl          # one row per server, mode and connections: the median round
ROUND_RESULTS=$WORK/rounds.jsonl     # every round's rows
: >"$ROUND_RESULTS"
NOTES=$WORK/notes.txt
: >"$RESULTS"
: >"$NOTES"
note() {
  log "note: $*"
  echo "- $*" >>"$NOTES"
}

# The PID of the server running now, if any; the trap stops it. stop_server sets
# STOP_FORCED=1 when the server had to be killed.
SERVER_PID=""
REDIS_PIDS=()  # the redis-server processes behind greylightd-redis and -cluster rows
STOP_FORCED=0
# The load generator runs as a background job that the script waits for, because bash runs
# a trap only once the foreground command has returned; `wait` returns at once on a signal.
CLIENT_PID=""
stop_server() {
  local pid=$1
  STOP_FORCED=0
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      STOP_FORCED=1
    fi
  fi
  wait "$pid" 2>/dev/null || true
}
stop_redis() {
  local pid
  for pid in "${REDIS_PIDS[@]}"; do stop_server "$pid"; done
  REDIS_PIDS=()
}
cleanup() {
  local status=$?
  if [[ -n $CLIENT_PID ]]; then
    kill -TERM "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
  fi
  stop_server "$SERVER_PID"
  SERVER_PID=""
  stop_redis
  if [[ ${KEEP_TMP:-0} == 1 ]]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Build ----------------------------------------------------------------------------------

BENCH=${GREYLIGHT_BENCH:-}
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building in $BUILD_DIR"
  if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
    timeout 300 cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
      >"$WORK/configure.log" 2>&1 || log "configuring the project failed (see below)"
  fi
  if [[ -z $BENCH ]]; then
    if timeout 600 cmake --build "$BUILD_DIR" -j"$(nproc)" --target greylight-bench greylight-fill \
      >"$WORK/build-bench.log" 2>&1; then
      BENCH=$BUILD_DIR/bench/greylight-bench
    else
      # The rest of the project may be mid-change; the load generator builds on its own.
      log "project build of greylight-bench failed; building bench/ on its own"
      if ! timeout 300 cmake -S "$ROOT/bench" -B "$BUILD_DIR/bench-standalone" \
        -DCMAKE_BUILD_TYPE=Release >"$WORK/build-bench.log" 2>&1 ||
        ! timeout 600 cmake --build "$BUILD_DIR/bench-standalone" -j"$(nproc)" \
          --target greylight-bench >>"$WORK/build-bench.log" 2>&1; then
        tail -n 30 "$WORK/build-bench.log" >&2
        echo "run.sh: cannot build greylight-bench" >&2
        exit 1
      fi
      BENCH=$BUILD_DIR/bench-standalone/greylight-bench
    fi
  fi
  if [[ " $SERVERS " == *" greylightd "* && $GREYLIGHTD == "$BUILD_DIR/src/greylightd" ]]; then
    timeout 900 cmake --build "$BUILD_DIR" -j"$(nproc)" --target greylightd \
      >"$WORK/build-greylightd.log" 2>&1 ||
      note "building greylightd failed: $(grep -m1 -E 'error|Error' "$WORK/build-greylightd.log" || echo 'see the build log')"
  fi
fi
BENCH=${BENCH:-$BUILD_DIR/bench/greylight-bench}
if [[ ! -x $BENCH ]]; then
  echo "run.sh: no load generator at $BENCH" >&2
  exit 1
fi

# --- Tools ----------------------------------------------------------------------------------

apt_install() {
  log "installing $*"
  if ! timeout 300 env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" \
    >"$WORK/apt.log" 2>&1; then
    timeout 300 apt-get update >>"$WORK/apt.log" 2>&1 || true
    timeout 300 env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" \
      >>"$WORK/apt.log" 2>&1 || return 1
  fi
}
if ! command -v jq >/dev/null; then
  apt_install jq || {
    echo "run.sh: jq is needed to read the load generator's JSON" >&2
    exit 1
  }
fi
if [[ " $SERVERS " == *" postgrey "* && ! -x $POSTGREY ]]; then
  # The package's postinst may start a system postgrey on port 10023; ours use other ports.
  apt_install postgrey || note "could not install postgrey"
fi

# --- Helpers --------------------------------------------------------------------------------

is_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port no local socket uses, taken below the kernel's ephemeral range so that outgoing
# connections (ours and anyone else's) cannot hold it. Racy in principle: start_server's
# caller retries on another port.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
port_in_use() {
  if command -v ss >/dev/null; then
    [[ -n $(ss -Htan "( sport = :$1 )" 2>/dev/null) ]]
  else
    is_listening "$1"
  fi
}
free_port() {
  local attempt port
  local span=$((EPHEMERAL_LOW - 10000))
  ((span > 1000)) || span=1000
  for ((attempt = 0; attempt < 100; attempt++)); do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % span))
    if ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
  done
  echo "run.sh: no free port found" >&2
  return 1
}

# Starts a Redis Cluster of 3 masters and 3 replicas on loopback ports, its files in
# directory $1, bounded in time; sets CLUSTER_SEEDS and adds the PIDs to REDIS_PIDS.
CLUSTER_SEEDS=""
start_cluster() {
  local dir=$1 i j port
  local -a nodes=()
  for ((i = 0; i < 6; i++)); do
    port=$(free_port) || return 1
    mkdir -p "$dir/node$i"
    # The bus port is explicit: the default (port + 10000) may be taken or past 65535.
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$dir/node$i" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 2000 --cluster-port "$(free_port)" >"$dir/node$i/redis.log" 2>&1 &
    REDIS_PIDS+=($!)
    for ((j = 0; j < 50; j++)); do
      is_listening "$port" && break
      sleep 0.1
    done
    nodes+=("127.0.0.1:$port")
  done
  timeout 60 redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
    >"$dir/cluster-create.log" 2>&1 || return 1
  for ((j = 0; j < 300; j++)); do
    local ok=1
    for i in "${nodes[@]}"; do
      timeout 5 redis-cli -p "${i##*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' ||
        ok=0
    done
    ((ok)) && break
    sleep 0.1
  done
  CLUSTER_SEEDS=$(IFS=,; echo "${nodes[*]}")
}

# Starts server $1 for mode $2 on port $3 with its database in directory $4, in the
# foreground of a background job, stderr to $4/server.log. Sets SERVER_PID.
start_server() {
  local server=$1 mode=$2 port=$3 dir=$4
  local -a delay=()
  if [[ $mode == hot ]]; then delay=(--delay="$HOT_DELAY"); fi
  case $server in
    null)
      "$BENCH" --null-server "127.0.0.1:$port" 2>"$dir/server.log" &
      ;;
    greylightd-redis)
      local redis_port
      redis_port=$(free_port) || return 1
      redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$dir" >"$dir/redis.log" 2>&1 &
      REDIS_PIDS+=($!)
      local j
      for ((j = 0; j < 50; j++)); do
        is_listening "$redis_port" && break
        sleep 0.1
      done
      # shellcheck disable=SC2086
      "$GREYLIGHTD" --inet="127.0.0.1:$port" --store="redis://127.0.0.1:$redis_port" \
        --user=root "${delay[@]}" $GREYLIGHTD_ARGS 2>"$dir/server.log" >/dev/null &
      ;;
    greylightd-cluster)
      start_cluster "$dir" || return 1
      # shellcheck disable=SC2086
      "$GREYLIGHTD" --inet="127.0.0.1:$port" --store="redis+cluster://$CLUSTER_SEEDS" \
        --user=root "${delay[@]}" $GREYLIGHTD_ARGS 2>"$dir/server.log" >/dev/null &
      ;;
    greylightd)
      # shellcheck disable=SC2086  # GREYLIGHTD_ARGS is a list of words.
      "$GREYLIGHTD" --inet="127.0.0.1:$port" --dbdir="$dir/db" --user=root "${delay[@]}" \
        $GREYLIGHTD_ARGS 2>"$dir/server.log" >/dev/null &
      ;;
    postgrey)
      # shellcheck disable=SC2086
      "$POSTGREY" --inet="127.0.0.1:$port" --dbdir="$dir/db" --user=root --group=root \
        --pidfile="$dir/postgrey.pid" "${delay[@]}" $POSTGREY_ARGS 2>"$dir/server.log" \
        >/dev/null &
      ;;
  esac
  SERVER_PID=$!
  local i
  for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID=""
      return 1
    fi
    if is_listening "$port"; then return 0; fi
    sleep 0.1
  done
  return 1
}

server_available() {
  case $1 in
    null) return 0 ;;
    greylightd) [[ -x $GREYLIGHTD ]] ;;
    greylightd-redis) [[ -x $GREYLIGHTD ]] && command -v redis-server >/dev/null ;;
    greylightd-cluster)
      [[ -x $GREYLIGHTD ]] && command -v redis-server >/dev/null && command -v redis-cli >/dev/null
      ;;
    postgrey) [[ -x $POSTGREY ]] ;;
    *) return 1 ;;
  esac
}

# --- Runs -----------------------------------------------------------------------------------

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
rows=0
available_servers=""
for server in $SERVERS; do
  if server_available "$server"; then
    available_servers="$available_servers $server"
    continue
  fi
  case $server in
    greylightd) note "greylightd: skipped, no executable at $GREYLIGHTD (not built yet?)" ;;
    greylightd-redis) note "greylightd-redis: skipped, greylightd or redis-server missing" ;;
    greylightd-cluster) note "greylightd-cluster: skipped, greylightd, redis-server or redis-cli missing" ;;
    postgrey) note "postgrey: skipped, $POSTGREY is not installed" ;;
    *) note "$server: unknown server, skipped" ;;
  esac
done
for ((round = 1; round <= ROUNDS; round++)); do
  for mode in $MODES; do
    for connections in $CONNECTIONS; do
      for server in $available_servers; do
        row_dir=$WORK/$server-$mode-$connections-round$round
        mkdir -p "$row_dir/db"
        chmod 755 "$row_dir" "$row_dir/db"
        started=0
        for attempt in 1 2 3; do
          port=$(free_port)
          log "round $round of $ROUNDS: $server, mode $mode, $connections connections, port $port"
          if start_server "$server" "$mode" "$port" "$row_dir"; then
            started=1
            break
          fi
          log "$server did not start (attempt $attempt): $(tail -n 1 "$row_dir/server.log")"
          stop_server "$SERVER_PID"
          SERVER_PID=""
        done
        if ((!started)); then
          note "$server did not start for mode $mode at $connections connections (round $round): $(tail -n 3 "$row_dir/server.log" | tr '\n' ' ')"
          continue
        fi
        warmup=0
        if [[ $mode == hot ]]; then warmup=$HOT_WARMUP; fi
        # Connect (5 s) + warm-up + duration, plus the priming bound of 120 s, plus slack.
        limit=$((DURATION + warmup + 150))
        # The server's CPU time in the measured window, then its store's (redis-server).
        cpu_pids=(--cpu-pid "$SERVER_PID")
        for pid in "${REDIS_PIDS[@]}"; do cpu_pids+=(--cpu-pid "$pid"); done
        timeout "$limit" "$BENCH" --connect "127.0.0.1:$port" --connections "$connections" \
          --duration "$DURATION" --mode "$mode" --hot-set "$HOT_SET" --warmup "$warmup" \
          --seed "$SEED" "${cpu_pids[@]}" --json >"$row_dir/result.json" 2>"$row_dir/bench.log" &
        CLIENT_PID=$!
        client_status=0
        wait "$CLIENT_PID" || client_status=$?
        CLIENT_PID=""
        if ((client_status == 0)); then
          jq -c --arg server "$server" --argjson round "$round" '. + {server: $server, round: $round}' \
            "$row_dir/result.json" >>"$ROUND_RESULTS"
          rows=$((rows + 1))
          jq -r '"  \(.rps) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, errors \(.errors), server cpu \(.server_cpu[0].user_us_per_request) us user + \(.server_cpu[0].system_us_per_request) us system per request"' \
            "$row_dir/result.json" >&2
        else
          note "$server, mode $mode, $connections connections (round $round): the load generator failed: $(tr '\n' ' ' <"$row_dir/bench.log")"
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
          note "$server exited during mode $mode at $connections connections (round $round): $(tail -n 3 "$row_dir/server.log" | tr '\n' ' ')"
        fi
        stop_server "$SERVER_PID"
        SERVER_PID=""
        stop_redis
        if ((STOP_FORCED)); then
          note "$server did not exit within ${STOP_TIMEOUT} s of SIGTERM after mode $mode at $connections connections (round $round) and was killed (SIGKILL)"
        fi
        # Logs of busy servers grow by hundreds of bytes per request; keep only their end.
        tail -n 50 "$row_dir/server.log" >"$row_dir/server.log.tail" 2>/dev/null || true
        rm -rf "$row_dir/server.log" "$row_dir/db"
      done
    done
  done
done

# Each row's median round by req/s (for an even count the lower of the two middle ones),
# with every round's req/s in round order; rows in the order of SERVERS, MODES, CONNECTIONS.
jq -c -s --arg servers "$SERVERS" --arg modes "$MODES" --arg connections "$CONNECTIONS" '
  ($servers | split(" ") | map(select(. != ""))) as $s
  | ($modes | split(" ") | map(select(. != ""))) as $m
  | ($connections | split(" ") | map(select(. != "") | tonumber)) as $c
  | group_by([.server, .mode, .connections]) | .[]
  | (sort_by(.round) | map(.rps | floor)) as $rounds
  | sort_by(.rps) | .[(length - 1) / 2 | floor] + {rounds_rps: $rounds}
  | . as $row
  | . + {order: [($s | index($row.server)), ($m | index($row.mode)), ($c | index($row.connections))]}
' "$ROUND_RESULTS" | jq -c -s 'sort_by(.order) | .[] | del(.order)' >"$RESULTS"

# --- Background work and whitelists -------------------------------------------------------

# Issue 6: whitelist lookups and the background expiry must not move the figures by more
# than 10%. greylightd, mode mixed, 64 connections, one row per variant, run back to back:
#   baseline    default settings, fresh database (the shipped whitelists)
#   whitelists  no whitelist entries at all (--whitelist-*=/dev/null)
#   live        BACKGROUND_RECORDS live records stored: expiry walks them, deletes none
#   expiring    BACKGROUND_RECORDS expired records: expiry deletes throughout the run
BACKGROUND_SECTION=$WORK/background.md
: >"$BACKGROUND_SECTION"
if ((BACKGROUND_RECORDS > 0)) && [[ -x $GREYLIGHTD && -x $GREYLIGHT_FILL ]]; then
  declare -A background_rps background_p99 background_expired
  for variant in baseline whitelists live expiring; do
    row_dir=$WORK/background-$variant
    mkdir -p "$row_dir/db"
    chmod 755 "$row_dir" "$row_dir/db"
    extra=""
    case $variant in
      whitelists) extra="--whitelist-clients=/dev/null --whitelist-recipients=/dev/null" ;;
      live | expiring)
        age=0
        if [[ $variant == expiring ]]; then age=40; fi
        timeout 600 "$GREYLIGHT_FILL" --dbdir "$row_dir/db" --triplets "$BACKGROUND_RECORDS" \
          --age-days "$age" >"$row_dir/fill.log" 2>&1 ||
          note "greylight-fill for the $variant row failed: $(tail -n 2 "$row_dir/fill.log")"
        ;;
    esac
    port=$(free_port)
    metrics_port=$(free_port)
    extra="$extra --metrics-listen=127.0.0.1:$metrics_port"
    log "greylightd, background variant $variant, port $port"
    if ! GREYLIGHTD_ARGS="$GREYLIGHTD_ARGS $extra" start_server greylightd mixed "$port" "$row_dir"; then
      note "greylightd did not start for background variant $variant: $(tail -n 3 "$row_dir/server.log" | tr '\n' ' ')"
      continue
    fi
    if timeout $((DURATION + 60)) "$BENCH" --connect "127.0.0.1:$port" --connections 64 \
      --duration "$DURATION" --mode mixed --seed "$SEED" --json >"$row_dir/result.json" \
      2>"$row_dir/bench.log"; then
      background_rps[$variant]=$(jq '.rps | floor' "$row_dir/result.json")
      background_p99[$variant]=$(jq '.p99_ms' "$row_dir/result.json")
    else
      note "background variant $variant: the load generator failed: $(tr '\n' ' ' <"$row_dir/bench.log")"
    fi
    # Records the background expiry removed during the run (greylightd's own counter).
    background_expired[$variant]=$(python3 -c '
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
print(next(int(float(l.split()[1])) for l in text.splitlines() if l.startswith("greylight_expired_records_total ")))
' "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null || true)
    stop_server "$SERVER_PID"
    SERVER_PID=""
    tail -n 50 "$row_dir/server.log" >"$row_dir/server.log.tail" 2>/dev/null || true
    rm -rf "$row_dir/server.log" "$row_dir/db"
  done
  base=${background_rps[baseline]:-0}
  live_vs_expiring=""
  if [[ -n ${background_rps[live]:-} && -n ${background_rps[expiring]:-} ]]; then
    live_vs_expiring=$(awk -v a="${background_rps[expiring]}" -v b="${background_rps[live]}" 'BEGIN {printf "%.2f", a / b}')
  fi
  {
    echo
    echo "## Background work and whitelists"
    echo
    echo "greylightd, mode mixed, 64 connections, $DURATION s per row, run back to back. Target"
    echo "(issue 6): whitelist lookups and the background expiry change the figures by at most 10%."
    echo "The live row differs from the baseline by the size of its database (deeper B-trees, more"
    echo "cache misses); the expiry's own cost is the expiring row against the live one, whose"
    echo "database has the same size: ${live_vs_expiring:-n/a} (expiring / live req/s)."
    echo
    echo "| variant | req/s | p99 ms | vs baseline | records expired during the run |"
    echo "|---|---:|---:|---:|---:|"
    for variant in baseline whitelists live expiring; do
      rps=${background_rps[$variant]:-}
      [[ -n $rps ]] || continue
      ratio="n/a"
      if ((base > 0)); then ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN {printf "%.2f", a / b}'); fi
      case $variant in
        baseline) label="baseline: default settings, postgrey's shipped whitelists" ;;
        whitelists) label="no whitelists (--whitelist-clients=/dev/null --whitelist-recipients=/dev/null)" ;;
        live) label="$BACKGROUND_RECORDS live triplets stored (expiry walks them, deletes none)" ;;
        expiring) label="$BACKGROUND_RECORDS expired triplets stored (expiry deleting)" ;;
      esac
      echo "| $label | $rps | ${background_p99[$variant]} | $ratio | ${background_expired[$variant]:-n/a} |"
    done
  } >"$BACKGROUND_SECTION"
fi

# --- Large database -------------------------------------------------------------------------

# kB of a /proc/PID/status field.
proc_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

LARGE_SECTION=$WORK/large.md
LARGE_RESULTS=$WORK/large.jsonl
: >"$LARGE_SECTION"
: >"$LARGE_RESULTS"
# Starts greylightd on database directory $1 (page cache dropped first), times the first
# answer, runs mixed load at 8 and 64 connections and appends one JSON line for database
# label $2 in round $3 to LARGE_RESULTS: first answer ms, req/s, p99, resident and
# anonymous memory.
measure_database() {
  local dir=$1 label=$2 round=$3 port start_ns first_answer_ms="" i connections
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || note "could not drop the page cache: start-up measured warm"
  port=$(free_port)
  start_ns=$(date +%s%N)
  # shellcheck disable=SC2086
  "$GREYLIGHTD" --inet="127.0.0.1:$port" --dbdir="$dir" --user=root $GREYLIGHTD_ARGS \
    2>"$dir/../server-$label.log" >/dev/null &
  SERVER_PID=$!
  for ((i = 0; i < 500; i++)); do
    if "$BENCH" --connect "127.0.0.1:$port" --connections 1 --duration 5 --requests 1 \
      --json >/dev/null 2>&1; then
      first_answer_ms=$((($(date +%s%N) - start_ns) / 1000000))
      break
    fi
    sleep 0.01
  done
  local anon_start rss_start
  anon_start=$(proc_kb "$SERVER_PID" RssAnon)
  rss_start=$(proc_kb "$SERVER_PID" VmRSS)
  # Throughput is the steady state of a server that has run a while: its database is in
  # the page cache. Reading the file once puts it there (start-up was measured cold above).
  timeout 300 cat "$dir/greylight.lmdb" >/dev/null || note "$label database: could not read the file into the page cache"
  local -A rps p99
  for connections in 8 64; do
    timeout $((DURATION + 60)) "$BENCH" --connect "127.0.0.1:$port" --connections "$connections" \
      --duration "$DURATION" --mode mixed --seed "$SEED" --json >"$dir/../r$label$connections.json" \
      2>/dev/null || note "$label database: run at $connections connections failed"
    rps[$connections]=$(jq '.rps | floor' "$dir/../r$label$connections.json" 2>/dev/null || echo 0)
    p99[$connections]=$(jq '.p99_ms' "$dir/../r$label$connections.json" 2>/dev/null || echo 0)
  done
  jq -n -c --arg db "$label" --argjson round "$round" --argjson first "${first_answer_ms:-null}" \
    --argjson rps8 "${rps[8]}" --argjson rps64 "${rps[64]}" \
    --argjson p99_8 "${p99[8]}" --argjson p99_64 "${p99[64]}" \
    --argjson rss_start "${rss_start:-0}" --argjson anon_start "${anon_start:-0}" \
    --argjson rss_end "$(proc_kb "$SERVER_PID" VmRSS)" \
    --argjson anon_end "$(proc_kb "$SERVER_PID" RssAnon)" \
    --argjson file_end "$(proc_kb "$SERVER_PID" RssFile)" \
    '{"label": $db, "round": $round, "first_answer_ms": $first, "rps8": $rps8, "rps64": $rps64,
      "p99_8": $p99_8, "p99_64": $p99_64, "rss_start_kb": $rss_start,
      "anon_start_kb": $anon_start, "rss_end_kb": $rss_end, "anon_end_kb": $anon_end,
      "file_end_kb": $file_end}' >>"$LARGE_RESULTS"
  stop_server "$SERVER_PID"
  SERVER_PID=""
}

if ((LARGE_TRIPLETS > 0)) && [[ -x $GREYLIGHTD && -x $GREYLIGHT_FILL ]]; then
  large_dir=$WORK/large
  mkdir -p "$large_dir/db" "$large_dir/empty"
  log "filling a database with $LARGE_TRIPLETS triplets"
  fill_started=$(date +%s)
  "$GREYLIGHT_FILL" --dbdir "$large_dir/db" --triplets "$LARGE_TRIPLETS" \
    --clients $((LARGE_TRIPLETS / 10)) >"$large_dir/fill.log" 2>&1 || note "greylight-fill failed: $(tail -n 2 "$large_dir/fill.log")"
  fill_seconds=$(($(date +%s) - fill_started))
  db_bytes=$(stat -c %s "$large_dir/db/greylight.lmdb")
  # Round by round, side by side: the machine's drift within a run moves both halves of a
  # round alike. The order alternates; every round starts from a fresh empty database, and
  # the large one keeps what earlier rounds wrote (a few percent of its records).
  for ((round = 1; round <= ROUNDS; round++)); do
    order=(empty large)
    ((round % 2 == 0)) && order=(large empty)
    log "large-database round $round of $ROUNDS: greylightd on the ${order[0]} database, then on the ${order[1]} one"
    rm -rf "$large_dir/empty"
    mkdir -p "$large_dir/empty"
    for label in "${order[@]}"; do
      if [[ $label == empty ]]; then
        measure_database "$large_dir/empty" empty "$round"
      else
        measure_database "$large_dir/db" large "$round"
      fi
    done
  done
  triplets_count=$LARGE_TRIPLETS
  {
    echo
    echo "## Large database"
    echo
    echo "greylightd (default settings, as in the rows above) on an empty LMDB database and on one"
    echo "filled by \`greylight-fill\` with $triplets_count passed triplets and $((LARGE_TRIPLETS / 10))"
    echo "clients (filled in $fill_seconds s; $((db_bytes / 1048576)) MiB, $((db_bytes / (triplets_count + LARGE_TRIPLETS / 10))) bytes per record),"
    echo "in $ROUNDS round(s), each running both side by side, in alternating order. The page cache"
    echo "is dropped before each start (start-up is measured cold), then the database file is read"
    echo "once, so that throughput is the steady state of a server whose database is cached; mode"
    echo "mixed, $DURATION s per run. Each cell lists every round's figure in round order; a ratio is"
    echo "the median over rounds of the large database's figure divided by the empty one's in the"
    echo "same round (\`bench/targets.py\`), as are the targets below."
    echo
    echo "| measure | empty database | $triplets_count triplets | ratio |"
    echo "|---|---:|---:|---:|"
    python3 "$ROOT/bench/targets.py" --large-table "$LARGE_RESULTS"
    echo
    echo "Memory: the database is a read-only memory map; pages the OS caches for it count as"
    echo "file-backed resident memory, which the kernel reclaims under pressure. The process's"
    echo "own (anonymous) memory is what must not grow with the number of stored triplets."
  } >"$LARGE_SECTION"
  rm -rf "$large_dir"
elif ((LARGE_TRIPLETS > 0)); then
  note "large-database runs skipped: greylightd or greylight-fill ($GREYLIGHT_FILL) not built"
fi

# --- Report ---------------------------------------------------------------------------------

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "none (no commit yet)")
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1) ]]; then
  commit="$commit, with uncommitted changes in the work tree"
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
memory=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
postgrey_version=$( ("$POSTGREY" --version 2>/dev/null || true) | head -n 1)
greylightd_version=$( ("$GREYLIGHTD" --version 2>/dev/null || true) | head -n 1)

# Markdown rows from the JSON results.
table=$(jq -r -s --argjson rounds "$ROUNDS" '
  def by_round: if $rounds > 1 then " (\(.rounds_rps | map(tostring) | join(" / ")))" else "" end;
  def errs: if .errors == 0 then "0"
            else "\(.errors) (" + ([.error_kinds | to_entries[] | select(.value > 0)
                 | "\(.key) \(.value)"] | join(", ")) + ")" end;
  def us(x): if x == null then "n/a" else (x * 10 | round / 10 | tostring) end;
  def server_cpu: (.server_cpu // [])[0] // {};
  def store_cpu: (.server_cpu // [])[1:]
                 | if length == 0 then "" else
                   " (store " + us(map(.user_us_per_request // 0) | add) + " + "
                   + us(map(.system_us_per_request // 0) | add) + ")" end;
  .[] | "| \(.server) | \(.mode) | \(.connections) | \(.rps | floor)\(by_round) | \(.p50_ms) | \(.p99_ms) | \(.p999_ms) | \(.max_ms) | \(us(server_cpu.user_us_per_request)) + \(us(server_cpu.system_us_per_request))\(store_cpu) | \(errs) | \([.actions | to_entries[] | "\(.key) \(.value)"] | join(", ")) |"
' "$RESULTS")

ratios=$(jq -r -s '
  def find(s; m; c): map(select(.server == s and .mode == m and .connections == c)) | first;
  def ratio(a; b): if a == null or b == null or b == 0 then "n/a"
                   else (a / b * 100 | round / 100 | tostring) end;
  . as $all
  | [.[] | {mode, connections}] | unique | sort_by([(.mode != "mixed"), .connections]) | .[]
  | . as $k
  | ($all | find("greylightd"; $k.mode; $k.connections)) as $g
  | ($all | find("postgrey"; $k.mode; $k.connections)) as $p
  | ($all | find("null"; $k.mode; $k.connections)) as $n
  | ($all | find("greylightd-redis"; $k.mode; $k.connections)) as $r
  | ($all | find("greylightd-cluster"; $k.mode; $k.connections)) as $c
  | "| \($k.mode) | \($k.connections) | \(ratio($g.rps; $p.rps)) | \(ratio($g.rps; $n.rps)) | \(ratio($g.p99_ms; $n.p99_ms)) | \(ratio($r.rps; $p.rps)) | \(ratio($r.rps; $n.rps)) | \(ratio($r.p99_ms; $n.p99_ms)) | \(ratio($c.rps; $r.rps)) | \(ratio($c.p99_ms; $r.p99_ms)) |"
' "$RESULTS")

avg_bytes=$(jq -s 'map(.avg_request_bytes) | if length > 0 then (add / length | round) else 0 end' "$RESULTS")

# The delivery-delay section is bench/delay_simulation.py's: kept as it is.
DELAY_SECTION=""
if [[ -f $OUTPUT ]]; then
  DELAY_SECTION=$(sed -n '/^<!-- delay-simulation:begin -->$/,/^<!-- delay-simulation:end -->$/p' "$OUTPUT")
fi

{
  echo "# Benchmarks"
  echo
  echo "Produced by \`bench/run.sh\`; do not edit by hand, run the script again."
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Commit: $commit"
  echo "- Command: \`$COMMAND_LINE\`"
  echo "- Machine: $(nproc) cores ($cpu), $memory RAM, Linux $(uname -r); load average"
  echo "  (1/5/15 min) $LOAD_BEFORE before the runs, $LOAD_AFTER after: anything else running"
  echo "  on the machine shares the cores and skews the figures."
  echo "- Servers: null server (\`greylight-bench --null-server\`, 1 thread)${greylightd_version:+; greylightd: $greylightd_version}${postgrey_version:+; $postgrey_version}"
  echo "- Load: \`greylight-bench\`, 1 thread, sharing the cores with the server; persistent"
  echo "  connections with one request in flight each, as Postfix's smtpd; full Postfix 3.7"
  echo "  RCPT requests of $avg_bytes bytes on average; seed $SEED; $DURATION s measured per row;"
  echo "  a fresh database directory for every row."
  if ((ROUNDS > 1)); then
    echo "- Rounds: $ROUNDS. Each round runs, for each mode and connection count, every server"
    echo "  back to back; a row shows its median round by req/s (all its figures are that"
    echo "  round's), and every round's req/s in brackets, in round order. Ratios and targets"
    echo "  are those of the median rows."
  fi
  echo "- Mode \`mixed\`: 50% new triplets, 30% retries, 20% repeat senders; servers with their"
  echo "  default settings (300 s delay), so nearly every answer is the defer path. A retry"
  echo "  comes seconds after its triplet's last sighting, so greylightd writes nothing for it"
  echo "  (the 60 s rule of docs/migrating-from-postgrey.md); postgrey rewrites it."
  echo "- Mode \`hot\`: $HOT_SET hot triplets. **Servers run with \`--delay=$HOT_DELAY\` for these"
  echo "  rows only**: the hot set is sent once, measuring starts ${HOT_WARMUP} s after its last"
  echo "  reply, when every hot triplet is older than the delay, so answers are the pass path."
  echo "- Latencies in ms, from sending a request to receiving its whole reply. Errors: failed"
  echo "  connects, connections closed by the server, 5 s timeouts, malformed replies."
  echo
  echo "## Results"
  echo
  echo "CPU: the server process's CPU time (user + system, all threads, from /proc/PID/stat) in"
  echo "the measured window, in microseconds per measured request; for the Redis rows the"
  echo "redis-server processes' time follows as (store user + system)."
  echo
  echo "| server | mode | conns | req/s | p50 | p99 | p99.9 | max | CPU us/req | errors | actions |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|"
  if [[ -n $table ]]; then echo "$table"; fi
  echo
  echo "## Ratios"
  echo
  echo "| mode | conns | greylightd / postgrey req/s | greylightd / null req/s | greylightd p99 / null p99 | redis: / postgrey | redis: / null | redis: p99 / null p99 | cluster: / redis: | cluster: p99 / redis: p99 |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  if [[ -n $ratios ]]; then echo "$ratios"; fi
  echo
  echo "## Targets (issue 15)"
  echo
  echo "From the rows above and the large-database section; \`bench/targets.py\` computes them."
  echo
  python3 "$ROOT/bench/targets.py" "$RESULTS" "$LARGE_RESULTS"
  cat "$BACKGROUND_SECTION"
  cat "$LARGE_SECTION"
  if [[ -n $DELAY_SECTION ]]; then
    echo
    echo "$DELAY_SECTION"
  fi
  if [[ -s $NOTES ]]; then
    echo
    echo "## Notes"
    echo
    cat "$NOTES"
  fi
} >"$OUTPUT"

log "$rows rows written to $OUTPUT"
