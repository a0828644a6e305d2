#!/usr/bin/env bash
# Compares warrend with Debian's rabbitmq-server on this machine using warren-perf: builds
# the Release tree, starts both brokers on free ports (RabbitMQ with its STOMP plugin) with
# their data in a temporary directory, runs every scenario of the table below alternating
# the brokers (A B A B ...), records the brokers' CPU time and peak RSS per run, writes
# bench/RESULTS.md (through compare_report.py), and stops both brokers on exit.
#
# Usage: bench/compare.sh [--rounds N] [--duration S] [--workers N] [--only S1,S3]
#                         [--count N] [--out FILE] [--no-build] [--jobs N]
#                         [--build-dir DIR] [--warrend PATH]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-rel}
ROUNDS=3
DURATION=10
WORKERS=$(nproc)
ONLY=""
OUT=$ROOT/bench/RESULTS.md
DO_BUILD=1
JOBS=1
PAUSE_S=2
COUNT=1000000
WARREND=""
LAUNCH=()  # before both brokers (start_warrend in lib.sh, start_rabbit) and warren-perf: onecpu

# --- Scenarios: ID | description | warren-perf arguments | headline metrics | options
# Arguments: phases separated by ";;" run one after the other against the same broker (each
# gets -z <duration> unless it has its own -z); {COUNT} is --count.
# Headline metrics: comma-separated METRIC[@PHASE][OP TARGET][~LABEL], METRIC a summary key
# (received, sent, p99_us, ...) or hwm_mib (broker peak RSS); without @PHASE the last phase
# (hwm_mib: the peak over all phases). OP TARGET (>=3, <=0.5) applies to warrend / RabbitMQ.
# Options: fresh (both brokers restarted with empty data before each run, so RSS starts from
# scratch), scaling (warrend only: --workers 2 against --workers 1, ratio w2 / w1), onecpu
# (both brokers restarted confined to the last CPU with taskset, warrend with --workers 1,
# and warren-perf confined there too; both restarted unconfined afterwards).
SCENARIOS=(
  "S1|1 producer -> 1 consumer, 16 B, transient, auto-ack|-x 1 -y 1 -s 16|received>=3|"
  "S2|1 producer -> 1 consumer, 4 KB, transient, auto-ack|-x 1 -y 1 -s 4096|received>=2|"
  "S3|1 -> 1, 16 B, persistent to a durable queue, confirms (window 100), manual ack, prefetch 100|-x 1 -y 1 -s 16 -f persistent -c 100 --manual-ack -q 100|received>=2|"
  "S4|fanout exchange to 4 queues, 4 consumers, 16 B (received: all 4 consumers)|-e perf-fanout -t fanout -x 1 -y 4 -s 16|received>=3|"
  "S5|topic exchange, 4 queues bound with patterns that match the key plus 996 that never match (1,000 bindings), 16 B (received: delivered, all 4 consumers)|-e perf-topic -t topic -x 1 -y 4 -s 16 -k a1.b2.c3 --binding-keys a1.b2.c3,a1.*.c3,a1.#,#.c3 --extra-bindings 996|received>=5|"
  "S6|10 producers -> 10 queues -> 10 consumers (producer i to queue i), 16 B|-x 10 -y 10 --queues 10 -s 16|received>=3|"
  "S7|latency at a fixed 1,000 msg/s, 1 -> 1, 16 B|-x 1 -y 1 -s 16 -r 1000|p50_us~p50 latency µs,p99_us<=0.5~p99 latency µs|"
  "S7c|S7 with each broker and warren-perf confined to one CPU (no target: the same latency without the kernel placing the three processes' threads on different CPUs)|-x 1 -y 1 -s 16 -r 1000|p50_us~p50 latency µs,p99_us~p99 latency µs|onecpu"
  "S8|500 idle connections: held alone for 3 s (phase 1), then 1 -> 1, 16 B with them open (phase 2); fresh brokers|--idle-connections 500 -x 0 -y 0 -z 3 ;; --idle-connections 500 -x 1 -y 1 -s 16|hwm_mib@1<=0.25~peak RSS MiB with 500 idle connections,received@2>=3~received msg/s with them open|fresh"
  "S9|STOMP 1 -> 1, 16 B, auto ack (each broker's STOMP port)|--stomp -x 1 -y 1 -s 16|received>=5|"
  "S10|{COUNT} x 16 B published to a queue with no consumer (phase 1), then drained (phase 2); fresh brokers|-x 1 -y 0 -s 16 -C {COUNT} --keep-queues -z 600 ;; -x 0 -y 1 --no-declare -C {COUNT} -z 600|sent@1>=2~publish msg/s,received@2>=2~drain msg/s,hwm_mib<=0.5~peak RSS MiB|fresh"
  "S11|S6 on warrend --workers 2 against --workers 1 (warrend only)|-x 10 -y 10 --queues 10 -s 16|received>=1.7~received msg/s (w2 / w1)|scaling"
  "S12|S1 over TLS: AMQPS (TLS 1.3, no client certificate), 1 -> 1, 16 B (no target: not in the issue)|--tls -x 1 -y 1 -s 16|received~received msg/s|"
  "S13|AMQPS 1 -> 1 with 4 KB bodies, where the encryption is most of the work (no target)|--tls -x 1 -y 1 -s 4096|received~received msg/s|"
  "S14|stream queue (x-queue-type stream), 1 -> 1, 16 B, the consumer from next, prefetch 1000, acks every 100 (no target: streams are not in the issue)|--queue-type stream --stream-offset next -x 1 -y 1 -s 16 --manual-ack -q 1000 --multi-ack-every 100|received~received msg/s|"
  "S15|{COUNT} x 16 B appended to a stream with no consumer (phase 1), then read from its first offset (phase 2); fresh brokers (no target)|--queue-type stream -x 1 -y 0 -s 16 -C {COUNT} --keep-queues -z 600 ;; -x 0 -y 1 --no-declare --stream-offset first --manual-ack -q 1000 --multi-ack-every 100 -C {COUNT} -z 600|sent@1~append msg/s,received@2~replay msg/s,hwm_mib~peak RSS MiB|fresh"
  "S16|S3 on a quorum queue (x-queue-type quorum): 1 -> 1, 16 B, persistent, confirms (window 100), manual ack, prefetch 100 (no target: quorum queues are not in the issue; Warren's are not replicated)|--queue-type quorum -x 1 -y 1 -s 16 -f persistent -c 100 --manual-ack -q 100|received~received msg/s|"
)

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --count) COUNT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --jobs) JOBS=$2; shift 2 ;;
    --build-dir) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --warrend) WARREND=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done
[ "$ROUNDS" -ge 1 ] || { echo "compare.sh: at least 1 round" >&2; exit 1; }

BENCH_NAME=compare.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
log() { bench_log "$@"; }
[ "$ROUNDS" -ge 3 ] || log "fewer than 3 rounds: a check of the script, not a result"

# --- Build (Release, no tests).
if [ "$DO_BUILD" = 1 ]; then
  if [ ! -f "$BUILD/build.ninja" ]; then
    nice cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >&2
  fi
  nice ninja -C "$BUILD" -j"$JOBS" warrend warren-perf >&2
fi
PERF=$BUILD/bin/warren-perf
WARREND=${WARREND:-$BUILD/bin/warrend}
[ -x "$PERF" ] && [ -x "$WARREND" ] || { log "missing $PERF or $WARREND"; exit 1; }

ensure_rabbitmq
listener_pid() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }

TMP=$(mktemp -d /tmp/warren-compare.XXXXXX)
# Certificates for both brokers' TLS listeners (S12, S13): a CA and a server certificate for
# 127.0.0.1, made with Debian's openssl.
mkdir -p "$TMP/certs"
(cd "$TMP/certs" &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
    -out ca.pem -days 2 -subj "/CN=warren-compare CA" &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
    -out server.csr -subj "/CN=localhost" &&
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext &&
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile san.ext -out server.pem && chmod 644 server.key) > /dev/null 2>&1 ||
  { echo "compare.sh: openssl could not make the TLS certificates" >&2; exit 1; }
printf 'ssl_options.certfile = %s\nssl_options.keyfile = %s\n' "$TMP/certs/server.pem" \
  "$TMP/certs/server.key" > "$TMP/warren-tls.conf"
WARREN_PID="" RMQ_PID=""
WARREN_WORKERS=$WORKERS
RMQ_NODE=perf@localhost
RMQ_PORT=$(free_port)
RMQ_STOMP_PORT=$(free_port)
RMQ_DIST_PORT=$(free_port)
RMQ_TLS_PORT=$(free_port)
EPMD_WAS_RUNNING=0
pgrep -x epmd >/dev/null && EPMD_WAS_RUNNING=1

rmq_env() {
  env HOME="$TMP/rabbit" RABBITMQ_NODENAME=$RMQ_NODE RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$RMQ_PORT" RABBITMQ_DIST_PORT="$RMQ_DIST_PORT" \
    RABBITMQ_MNESIA_BASE="$TMP/rabbit/mnesia" RABBITMQ_LOG_BASE="$TMP/rabbit/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$TMP/rabbit/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$TMP/rabbit/rabbitmq.conf" "$@"
}

# Starts rabbitmq-server with empty data under $TMP, its STOMP plugin on RMQ_STOMP_PORT.
start_rabbit() {
  rm -rf "$TMP/rabbit/mnesia"
  mkdir -p "$TMP/rabbit/mnesia" "$TMP/rabbit/log"
  echo "[rabbitmq_stomp]." > "$TMP/rabbit/enabled_plugins"
  printf 'loopback_users = none\nstomp.listeners.tcp.1 = 127.0.0.1:%s\n' "$RMQ_STOMP_PORT" \
    > "$TMP/rabbit/rabbitmq.conf"
  printf 'listeners.ssl.default = 127.0.0.1:%s\nssl_options.certfile = %s\nssl_options.keyfile = %s\n' \
    "$RMQ_TLS_PORT" "$TMP/certs/server.pem" "$TMP/certs/server.key" >> "$TMP/rabbit/rabbitmq.conf"
  rmq_env setsid ${LAUNCH[@]+"${LAUNCH[@]}"} "$RMQ_BIN/rabbitmq-server" > "$TMP/rabbit/server.out" \
    2>&1 < /dev/null &
  local _
  for _ in $(seq 180); do
    port_open "$RMQ_PORT" && port_open "$RMQ_STOMP_PORT" && port_open "$RMQ_TLS_PORT" && break
    sleep 0.5
  done
  RMQ_PID=$(listener_pid "$RMQ_PORT")
  port_open "$RMQ_STOMP_PORT" && [ -n "$RMQ_PID" ] ||
    { log "rabbitmq-server did not start:"; tail -20 "$TMP/rabbit/server.out" >&2; exit 1; }
  log "rabbitmq-server (beam pid $RMQ_PID) on port $RMQ_PORT, STOMP $RMQ_STOMP_PORT, AMQPS $RMQ_TLS_PORT"
}

stop_rabbit() {
  [ -n "$RMQ_PID" ] || return 0
  rmq_env timeout 60 "$RMQ_BIN/rabbitmqctl" -n $RMQ_NODE stop >/dev/null 2>&1
  local _
  for _ in $(seq 100); do kill -0 "$RMQ_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$RMQ_PID" 2>/dev/null || true
  RMQ_PID=""
}

# Starts warrend with empty data and `--workers N`.
start_warren() {
  rm -rf "$TMP/warren"
  start_warrend "$WARREND" "$TMP/warren" "$TMP/warren.log" --workers "$1" --amqps-port 0 \
    --config "$TMP/warren-tls.conf" || exit 1
  WARREN_WORKERS=$1
  WARREN_TLS_PORT=$(sed -n 's/.*listening amqps [0-9.]*:\([0-9]*\).*/\1/p' "$TMP/warren.log" | head -1)
  log "warrend pid $WARREN_PID on port $WARREN_PORT, STOMP $WARREN_STOMP_PORT," \
    "AMQPS $WARREN_TLS_PORT (--workers $1)"
}

cleanup() {
  set +e
  stop_warrend
  stop_rabbit
  [ "$EPMD_WAS_RUNNING" = 1 ] || pkill -x epmd 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

start_warren "$WORKERS"
start_rabbit

# --- Runs. One line per phase in $TMP/runs.tsv:
# id, broker, round, phase, exit, broker CPU s, peak RSS KiB, RSS before KiB, summary.
RUNS=$TMP/runs.tsv
: > "$RUNS"
run_one() {  # scenario-id broker round phases
  local id=$1 broker=$2 round=$3 phases=$4
  local port stomp_port tls_port pid
  if [ "$broker" = rabbitmq ]; then
    port=$RMQ_PORT stomp_port=$RMQ_STOMP_PORT tls_port=$RMQ_TLS_PORT pid=$RMQ_PID
  else
    port=$WARREN_PORT stomp_port=$WARREN_STOMP_PORT tls_port=$WARREN_TLS_PORT pid=$WARREN_PID
  fi
  kill -0 "$pid" 2>/dev/null || { log "$broker is gone"; exit 1; }
  local phase=0 args
  while IFS= read -r args; do
    phase=$((phase + 1))
    local -a a
    read -r -a a <<< "${args//\{COUNT\}/$COUNT}"
    local z=$DURATION has_z=0 i
    for ((i = 0; i < ${#a[@]}; i++)); do
      [ "${a[i]}" = -z ] && { has_z=1; z=${a[i + 1]}; }
    done
    [ "$has_z" = 1 ] || a+=(-z "$DURATION")
    local target=(-h "127.0.0.1:$port")
    [[ " ${a[*]} " == *" --stomp "* ]] &&
      target=(-h "127.0.0.1:$stomp_port" --amqp-uri "127.0.0.1:$port")
    [[ " ${a[*]} " == *" --tls "* ]] &&
      target=(-h "127.0.0.1:$tls_port" --tls-ca "$TMP/certs/ca.pem")
    local before t0 t1 out rc=0 summary
    before=$(rss_kb "$pid")
    reset_hwm "$pid"
    t0=$(cpu_ticks "$pid")
    out=$(timeout -k 5 "$(awk -v z="$z" 'BEGIN {printf "%d", z + 120}')" \
          ${LAUNCH[@]+"${LAUNCH[@]}"} "$PERF" "${target[@]}" -u "perf-$id" "${a[@]}" \
          2> "$TMP/perf.err" < /dev/null) || rc=$?
    t1=$(cpu_ticks "$pid")
    summary=$(grep '^summary:' <<< "$out" | tail -1 || true)
    [ "$rc" = 0 ] || { log "$id $broker round $round phase $phase: exit $rc"; tail -3 "$TMP/perf.err" >&2; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$broker" "$round" "$phase" "$rc" \
      "$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN {printf "%.2f", (b - a) / t}')" \
      "$(hwm_kb "$pid")" "$before" "${summary#summary: }" >> "$RUNS"
    log "$id $broker round $round phase $phase: ${summary#summary: }"
    sleep "$PAUSE_S"
  done < <(sed 's/ *;; */\n/g' <<< "$phases")
}

# Short unrecorded warm-up on each broker.
for port in "$WARREN_PORT" "$RMQ_PORT"; do
  timeout 30 "$PERF" -h "127.0.0.1:$port" -u perf-warmup -z 3 -c 100 >/dev/null 2>&1 || true
done

SCEN_FILE=$TMP/scenarios.txt
: > "$SCEN_FILE"
for entry in "${SCENARIOS[@]}"; do
  IFS='|' read -r id _ args _ opts <<< "$entry"
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$id,"* ]]; then continue; fi
  printf '%s\n' "${entry//\{COUNT\}/$COUNT}" >> "$SCEN_FILE"
  for round in $(seq "$ROUNDS"); do
    case ",$opts," in
      *,scaling,*)
        for w in 1 2; do
          stop_warrend; start_warren "$w"
          run_one "$id" "warrend-w$w" "$round" "$args"
        done ;;
      *,onecpu,*)
        if [ "$round" = 1 ]; then
          LAUNCH=(taskset -c "$(($(nproc) - 1))")
          stop_warrend; start_warren 1
          stop_rabbit; start_rabbit
        fi
        run_one "$id" warrend "$round" "$args"
        run_one "$id" rabbitmq "$round" "$args"
        if [ "$round" = "$ROUNDS" ]; then
          LAUNCH=()
          stop_warrend; start_warren "$WORKERS"
          stop_rabbit; start_rabbit
        fi ;;
      *,fresh,*)
        stop_warrend; start_warren "$WORKERS"
        run_one "$id" warrend "$round" "$args"
        stop_rabbit; start_rabbit
        run_one "$id" rabbitmq "$round" "$args" ;;
      *)
        [ "$WARREN_WORKERS" = "$WORKERS" ] || { stop_warrend; start_warren "$WORKERS"; }
        run_one "$id" warrend "$round" "$args"
        run_one "$id" rabbitmq "$round" "$args" ;;
    esac
  done
done

# --- RESULTS.md
if [ -n "${WARREN_COMMIT:-}" ]; then
  COMMIT=$WARREN_COMMIT  # when the tree is an export without .git
else
  COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (with uncommitted changes)"
fi
META=$TMP/meta.txt
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "commit=$COMMIT"
  echo "warrend=$WARREND"
  echo "workers=$WORKERS"
  echo "rabbitmq=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo unknown)"
  echo "erlang=$(dpkg-query -W -f '${Version}' erlang-base 2>/dev/null || echo unknown)"
  echo "rounds=$ROUNDS"
  echo "duration=$DURATION"
} > "$META"
python3 "$ROOT/bench/compare_report.py" "$RUNS" "$SCEN_FILE" "$META" "$OUT"
log "wrote $OUT"
