#!/usr/bin/env bash
# Compares a two-node warrend cluster with a two-node cluster of Debian's rabbitmq-server on
# this machine, using warren-perf: the queue lives on node A, and the producer or the consumer
# is a client of node B, so that every message crosses between the nodes once. Both clusters
# run at once, each with its data in a temporary directory; the scenarios alternate the
# brokers (A B A B ...). Writes bench/RESULTS-cluster.md and stops everything on exit.
#
#   C0  1 producer -> 1 consumer, 16 B, both clients of node A (the single-node baseline)
#   C1  the producer a client of node B: publishes cross to the queue on A
#   C2  the consumer a client of node B: deliveries cross from the queue on A
#   C3  C1 persistent, confirms (window 100), manual acks, prefetch 100: the confirms cross back
#
# The consumer connects first and declares the queue (on its node); the producer runs
# --duration seconds; the number is what the consumer received in all over that time.
# --tls: the warrend nodes talk TLS to each other (cluster.ssl_options, certificates made here
# with openssl); the RabbitMQ nodes stay plain, so the ratio is the cost of TLS against warrend.
#
# Usage: bench/cluster.sh [--rounds N] [--duration S] [--out FILE] [--build-dir DIR] [--tls]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=3
DURATION=8
OUT=$ROOT/bench/RESULTS-cluster.md
BIN_DIR=""
TLS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --build-dir) BIN_DIR=$(cd "$2" && pwd)/bin; shift 2 ;;
    --tls) TLS=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done

BENCH_NAME=cluster.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
log() { bench_log "$@"; }
[ -n "$BIN_DIR" ] && export WARREN_BIN_DIR=$BIN_DIR
PERF=$(find_bin warren-perf) && WARREND=$(find_bin warrend) ||
  { log "no warrend and warren-perf: build them (Release) first"; exit 1; }
ensure_rabbitmq
TMP=$(mktemp -d /tmp/warren-cluster-bench.XXXXXX)
EPMD_WAS_RUNNING=0
pgrep -x epmd >/dev/null && EPMD_WAS_RUNNING=1
W_PIDS=() R_NODES=()

# --- warrend: node a, then node b joining it (with --tls, over TLS: one CA, one certificate).
WARREN_TLS_ARGS=()
if [ "$TLS" = 1 ]; then
  mkdir -p "$TMP/certs"
  (cd "$TMP/certs" &&
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
      -subj /CN=bench-ca &&
    openssl req -newkey rsa:2048 -nodes -keyout node.key -out node.csr -subj /CN=bench-node &&
    openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -out node.pem) > "$TMP/certs/openssl.out" 2>&1 ||
    { log "openssl could not make the certificates"; cat "$TMP/certs/openssl.out" >&2; exit 1; }
  printf 'cluster.ssl_options.%s = %s\n' certfile "$TMP/certs/node.pem" \
    keyfile "$TMP/certs/node.key" cacertfile "$TMP/certs/ca.pem" > "$TMP/cluster-tls.conf"
  WARREN_TLS_ARGS=(--config "$TMP/cluster-tls.conf")
fi
declare -A WPORT
start_warren_node() {  # name [warrend options...]
  local name=$1
  shift
  start_warrend "$WARREND" "$TMP/w-$name" "$TMP/w-$name.log" --cluster-name "$name@localhost" \
    --cluster-port "${CPORT[$name]}" --cluster-cookie bench ${WARREN_TLS_ARGS[@]+"${WARREN_TLS_ARGS[@]}"} "$@"
  W_PIDS+=("$WARREN_PID")
  WPORT[$name]=$WARREN_PORT
}
declare -A CPORT=([a]=$(free_port) [b]=$(free_port))
start_warren_node a
start_warren_node b --cluster-join "127.0.0.1:${CPORT[a]}"
for _ in $(seq 100); do
  grep -q "node a@localhost .* is up" "$TMP/w-b.log" && break
  sleep 0.1
done
grep -q "node a@localhost .* is up" "$TMP/w-b.log" || { log "warrend b did not join a"; exit 1; }

# --- RabbitMQ: two nodes, one HOME (so one Erlang cookie), rmqb joined to rmqa.
declare -A RPORT=([a]=$(free_port) [b]=$(free_port))
declare -A RDIST=([a]=$(free_port) [b]=$(free_port))
rmq_env() {  # node command...
  local n=$1
  shift
  env HOME="$TMP/rabbit" RABBITMQ_NODENAME="rmq$n@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="${RPORT[$n]}" RABBITMQ_DIST_PORT="${RDIST[$n]}" \
    RABBITMQ_MNESIA_BASE="$TMP/rabbit/$n/mnesia" RABBITMQ_LOG_BASE="$TMP/rabbit/$n/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$TMP/rabbit/$n/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$TMP/rabbit/$n/rabbitmq.conf" "$@"
}
start_rabbit_node() {
  local n=$1
  mkdir -p "$TMP/rabbit/$n/mnesia" "$TMP/rabbit/$n/log"
  echo "[]." > "$TMP/rabbit/$n/enabled_plugins"
  echo "loopback_users = none" > "$TMP/rabbit/$n/rabbitmq.conf"
  rmq_env "$n" setsid "$RMQ_BIN/rabbitmq-server" > "$TMP/rabbit/$n/server.out" 2>&1 < /dev/null &
  R_NODES+=("$n")
  for _ in $(seq 180); do port_open "${RPORT[$n]}" && return 0; sleep 0.5; done
  log "rabbitmq-server rmq$n did not start:"
  tail -20 "$TMP/rabbit/$n/server.out" >&2
  exit 1
}
rmqctl() { local n=$1; shift; rmq_env "$n" timeout 120 "$RMQ_BIN/rabbitmqctl" -n "rmq$n@localhost" "$@"; }

cleanup() {
  set +e
  local p n
  for p in ${W_PIDS[@]+"${W_PIDS[@]}"}; do WARREN_PID=$p stop_warrend; done
  for n in ${R_NODES[@]+"${R_NODES[@]}"}; do rmqctl "$n" stop >/dev/null 2>&1; done
  [ "$EPMD_WAS_RUNNING" = 1 ] || pkill -x epmd 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

mkdir -p "$TMP/rabbit"
start_rabbit_node a
start_rabbit_node b
for step in stop_app reset "join_cluster rmqa@localhost" start_app; do
  # shellcheck disable=SC2086
  rmqctl b $step >> "$TMP/rabbit/join.out" 2>&1 ||
    { log "rabbitmqctl $step failed:"; tail -20 "$TMP/rabbit/join.out" >&2; exit 1; }
done
rmqctl a cluster_status 2>/dev/null | grep -q "rmqb@localhost" ||
  { log "rmqb did not join rmqa"; exit 1; }
log "warrend nodes on ${WPORT[a]}, ${WPORT[b]}; rabbitmq nodes on ${RPORT[a]}, ${RPORT[b]}"

# --- Scenarios: ID|description|producer node|consumer node|extra warren-perf arguments
SCENARIOS=(
  "C0|1 -> 1, 16 B, both clients of node A (single node)|a|a|"
  "C1|1 -> 1, 16 B, producer on node B, queue and consumer on node A|b|a|"
  "C2|1 -> 1, 16 B, producer and queue on node A, consumer on node B|a|b|"
  "C3|C1 persistent to a durable queue, confirms (window 100), manual ack, prefetch 100|b|a|-f persistent -c 100 --manual-ack -q 100"
)

# run BROKER PRODUCER_PORT CONSUMER_PORT QUEUE ARGS: the consumer's received total / duration.
run() {
  local prod=$2 cons=$3 q=$4 args=$5 cpid line total
  # shellcheck disable=SC2086
  "$PERF" -h "127.0.0.1:$cons" -x 0 -y 1 -u "$q" -s 16 $args -z $((DURATION + 3)) \
    > "$TMP/consumer.out" 2>&1 &
  cpid=$!
  sleep 1
  # shellcheck disable=SC2086
  "$PERF" -h "127.0.0.1:$prod" -x 1 -y 0 -u "$q" -s 16 $args --no-declare -z "$DURATION" \
    > "$TMP/producer.out" 2>&1 || true
  wait "$cpid" || true
  line=$(grep '^summary:' "$TMP/consumer.out" | tail -1)
  total=$(summary_field "$line" received_total)
  awk -v t="${total:-0}" -v d="$DURATION" 'BEGIN {printf "%.0f", t / d}'
}

declare -A RESULT
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r id desc pnode cnode args <<< "$s"
  for r in $(seq "$ROUNDS"); do
    for broker in warren rabbit; do
      if [ "$broker" = warren ]; then
        v=$(run warren "${WPORT[$pnode]}" "${WPORT[$cnode]}" "$id-$r" "$args")
      else
        v=$(run rabbit "${RPORT[$pnode]}" "${RPORT[$cnode]}" "$id-$r" "$args")
      fi
      RESULT[$id,$broker]="${RESULT[$id,$broker]:-} $v"
      log "$id round $r $broker: $v msg/s"
      sleep 1
    done
  done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
spread() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "–" hi}'; }
{
  echo "# Two-node clusters: warrend and RabbitMQ"
  echo
  echo "Made by \`bench/cluster.sh --rounds $ROUNDS --duration $DURATION$([ "$TLS" = 1 ] && echo ' --tls')\` on $(date -u +%Y-%m-%d)."
  [ "$TLS" = 1 ] && echo "The warrend nodes talk TLS to each other (cluster.ssl_options); the RabbitMQ nodes do not."
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')."
  echo "warrend $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), rabbitmq-server $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?')."
  echo "Both clusters run on this one machine (two warrend nodes, default workers; two RabbitMQ"
  echo "nodes); each number is what the consumer received in all divided by the producer's"
  echo "$DURATION s, the median of $ROUNDS rounds (spread in brackets)."
  echo
  echo "| scenario | warrend msg/s | RabbitMQ msg/s | ratio |"
  echo "|---|---|---|---|"
  for s in "${SCENARIOS[@]}"; do
    IFS='|' read -r id desc _ _ _ <<< "$s"
    w=$(median <<< "${RESULT[$id,warren]}")
    rb=$(median <<< "${RESULT[$id,rabbit]}")
    ratio=$(awk -v a="$w" -v b="$rb" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')
    echo "| $id $desc | $w ($(spread <<< "${RESULT[$id,warren]}")) | $rb ($(spread <<< "${RESULT[$id,rabbit]}")) | $ratio |"
  done
} > "$OUT"
log "wrote $OUT"
cat "$OUT"
