#!/usr/bin/env bash
# Compares warrend with Debian's rabbitmq-server on this machine using warren-perf: builds
# the Release tree (build-rel), starts both brokers on free ports with their data in a
# temporary directory, runs every scenario of the table below alternating the brokers
# (A B A B ...), records the brokers' CPU time and peak RSS per run, writes bench/RESULTS.md,
# and stops both brokers on exit.
#
# Usage: bench/compare.sh [--rounds N] [--duration S] [--workers N] [--only S1,S3]
#                         [--out FILE] [--no-build] [--jobs N]
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

# --- Scenarios: ID | description | warren-perf arguments (-z and -u are added per run).
# Add a line to add a scenario.
SCENARIOS=(
  "S1|1 producer -> 1 consumer, 16 B, transient, auto-ack|-x 1 -y 1 -s 16"
  "S2|1 producer -> 1 consumer, 4 KB, transient, auto-ack|-x 1 -y 1 -s 4096"
  "S3|1 -> 1, 16 B, persistent to a durable queue, confirms (window 100), manual ack, prefetch 100|-x 1 -y 1 -s 16 -f persistent -c 100 --manual-ack -q 100"
)

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --jobs) JOBS=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done
[ "$ROUNDS" -ge 3 ] || { echo "compare.sh: at least 3 rounds" >&2; exit 1; }

log() { echo "compare.sh: $*" >&2; }

# --- Build (Release, no tests).
if [ "$DO_BUILD" = 1 ]; then
  if [ ! -f "$BUILD/build.ninja" ]; then
    nice cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >&2
  fi
  nice ninja -C "$BUILD" -j"$JOBS" warrend warren-perf >&2
fi
PERF=$BUILD/bin/warren-perf
WARREND=$BUILD/bin/warrend
[ -x "$PERF" ] && [ -x "$WARREND" ] || { log "missing $PERF or $WARREND"; exit 1; }

# --- RabbitMQ: install if missing, but never leave Debian's own service running.
RMQ_BIN=/usr/lib/rabbitmq/bin
if [ ! -x "$RMQ_BIN/rabbitmq-server" ]; then
  log "installing rabbitmq-server"
  apt-get install -y rabbitmq-server >&2
  (systemctl disable --now rabbitmq-server || service rabbitmq-server stop) >/dev/null 2>&1 || true
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
listener_pid() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Resets the peak RSS to the current RSS (Linux: clear_refs 5) so VmHWM is per run.
reset_hwm() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/warren-compare.XXXXXX)
WARREN_PID=""
RMQ_PID=""
RMQ_NODE=perf@localhost
EPMD_WAS_RUNNING=0
pgrep -x epmd >/dev/null && EPMD_WAS_RUNNING=1

rmq_env() {
  env HOME="$TMP/rabbit" RABBITMQ_NODENAME=$RMQ_NODE RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$RMQ_PORT" RABBITMQ_DIST_PORT="$RMQ_DIST_PORT" \
    RABBITMQ_MNESIA_BASE="$TMP/rabbit/mnesia" RABBITMQ_LOG_BASE="$TMP/rabbit/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$TMP/rabbit/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$TMP/rabbit/rabbitmq.conf" "$@"
}

cleanup() {
  set +e
  if [ -n "$WARREN_PID" ] && kill -0 "$WARREN_PID" 2>/dev/null; then
    kill -TERM "$WARREN_PID"
    for _ in $(seq 50); do kill -0 "$WARREN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$WARREN_PID" 2>/dev/null
  fi
  if [ -n "$RMQ_PID" ]; then
    rmq_env timeout 60 "$RMQ_BIN/rabbitmqctl" -n $RMQ_NODE stop >/dev/null 2>&1
    for _ in $(seq 100); do kill -0 "$RMQ_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RMQ_PID" 2>/dev/null
  fi
  [ "$EPMD_WAS_RUNNING" = 1 ] || epmd -kill >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Start warrend.
mkdir -p "$TMP/warren"
"$WARREND" --amqp-port 0 --stomp-port 0 --http-port 0 --data-dir "$TMP/warren" \
  --workers "$WORKERS" --log-level info > "$TMP/warren.log" 2>&1 &
WARREN_PID=$!
WARREN_PORT=""
for _ in $(seq 200); do
  WARREN_PORT=$(sed -n 's/.*listening amqp [0-9.]*:\([0-9]*\).*/\1/p' "$TMP/warren.log" | head -1)
  [ -n "$WARREN_PORT" ] && break
  kill -0 "$WARREN_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$WARREN_PORT" ] || { log "warrend did not start:"; cat "$TMP/warren.log" >&2; exit 1; }
log "warrend pid $WARREN_PID on port $WARREN_PORT (--workers $WORKERS)"

# --- Start rabbitmq-server with everything under $TMP.
RMQ_PORT=$(free_port)
RMQ_DIST_PORT=$(free_port)
mkdir -p "$TMP/rabbit/mnesia" "$TMP/rabbit/log"
: > "$TMP/rabbit/enabled_plugins"
echo "loopback_users = none" > "$TMP/rabbit/rabbitmq.conf"
rmq_env setsid "$RMQ_BIN/rabbitmq-server" > "$TMP/rabbit/server.out" 2>&1 < /dev/null &
for _ in $(seq 120); do port_open "$RMQ_PORT" && break; sleep 0.5; done
RMQ_PID=$(listener_pid "$RMQ_PORT")
[ -n "$RMQ_PID" ] || { log "rabbitmq-server did not start:"; tail -20 "$TMP/rabbit/server.out" >&2; exit 1; }
log "rabbitmq-server (beam pid $RMQ_PID) on port $RMQ_PORT"

# --- Runs. One line per run in $TMP/runs.tsv.
RUNS=$TMP/runs.tsv
: > "$RUNS"
run_one() {  # scenario-id broker round args...
  local id=$1 broker=$2 round=$3; shift 3
  local port pid
  if [ "$broker" = warrend ]; then port=$WARREN_PORT pid=$WARREN_PID; else port=$RMQ_PORT pid=$RMQ_PID; fi
  kill -0 "$pid" 2>/dev/null || { log "$broker is gone"; exit 1; }
  reset_hwm "$pid"
  local t0 t1 out rc=0
  t0=$(cpu_ticks "$pid")
  out=$(timeout -k 5 $((DURATION + 60)) "$PERF" -h "127.0.0.1:$port" -u "perf-$id" -z "$DURATION" "$@" \
        2> "$TMP/perf.err") || rc=$?
  t1=$(cpu_ticks "$pid")
  local summary
  summary=$(grep '^summary:' <<< "$out" | tail -1 || true)
  [ "$rc" = 0 ] || { log "$id $broker round $round: exit $rc"; tail -3 "$TMP/perf.err" >&2; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$broker" "$round" "$rc" \
    "$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN {printf "%.2f", (b - a) / t}')" \
    "$(hwm_kb "$pid")" "${summary#summary: }" >> "$RUNS"
  log "$id $broker round $round: ${summary#summary: }"
  sleep "$PAUSE_S"
}

# Short unrecorded warm-up on each broker.
for b in warrend rabbitmq; do
  port=$([ $b = warrend ] && echo "$WARREN_PORT" || echo "$RMQ_PORT")
  timeout 30 "$PERF" -h "127.0.0.1:$port" -u perf-warmup -z 3 -c 100 >/dev/null 2>&1 || true
done

declare -a DONE_IDS=()
for entry in "${SCENARIOS[@]}"; do
  IFS='|' read -r id desc args <<< "$entry"
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$id,"* ]]; then continue; fi
  DONE_IDS+=("$id")
  for round in $(seq "$ROUNDS"); do
    # shellcheck disable=SC2086  # args are split on purpose
    run_one "$id" warrend "$round" $args
    # shellcheck disable=SC2086
    run_one "$id" rabbitmq "$round" $args
  done
done

# --- RESULTS.md
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
RMQ_VERSION=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo unknown)
ERL_VERSION=$(dpkg-query -W -f '${Version}' erlang-base 2>/dev/null || echo unknown)
if [ -n "${WARREN_COMMIT:-}" ]; then
  COMMIT=$WARREN_COMMIT  # when the tree is an export without .git
else
  COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (with uncommitted changes)"
fi
SCEN_TABLE=""
for entry in "${SCENARIOS[@]}"; do
  IFS='|' read -r id desc args <<< "$entry"
  SCEN_TABLE+="| $id | $desc | \`$args -z $DURATION\` |"$'\n'
done

python3 - "$RUNS" "$OUT" <<PY
import statistics, sys
runs_path, out_path = sys.argv[1], sys.argv[2]
rows = []
for line in open(runs_path):
    sid, broker, rnd, rc, bcpu, hwm, summary = (line.rstrip("\n").split("\t") + [""] * 7)[:7]
    kv = dict(p.split("=", 1) for p in summary.split() if "=" in p)
    rows.append(dict(id=sid, broker=broker, round=int(rnd), rc=int(rc), broker_cpu=float(bcpu),
                     hwm_mib=int(hwm or 0) / 1024, **{k: float(v) for k, v in kv.items()}))
order = [s for s in "${DONE_IDS[*]}".split()]
metrics = [("received", "received msg/s", "{:.0f}", True), ("sent", "sent msg/s", "{:.0f}", True),
           ("confirmed", "confirmed msg/s", "{:.0f}", True), ("p50_us", "p50 latency µs", "{:.0f}", False),
           ("p99_us", "p99 latency µs", "{:.0f}", False),
           ("broker_cpu", "broker CPU s per run", "{:.1f}", False),
           ("hwm_mib", "broker peak RSS MiB", "{:.0f}", False),
           ("client_cpu_s", "warren-perf CPU s per run", "{:.2f}", False)]
def stat(vals, fmt):
    if not vals: return "n/a"
    return (fmt + " ({}–{})").format(statistics.median(vals), fmt.format(min(vals)), fmt.format(max(vals)))
out = []
out.append("# warrend vs RabbitMQ: warren-perf results\n")
out.append("Generated by \`bench/compare.sh\`; numbers as measured, on a shared machine.\n")
out.append("- Date: $(date -u '+%Y-%m-%d %H:%M UTC')")
out.append("- Machine: $(nproc) CPUs (nproc), ${CPU_MODEL}, ${MEM} RAM; brokers and load generator share it")
out.append("- warrend: commit ${COMMIT}, Release build, \`--workers ${WORKERS}\`")
out.append("- RabbitMQ: Debian rabbitmq-server ${RMQ_VERSION}, Erlang ${ERL_VERSION}, default settings, no plugins")
out.append("- Method: ${ROUNDS} rounds per scenario, brokers alternating (warrend, RabbitMQ, warrend, ...), "
           "${DURATION} s per run, a 3 s warm-up per broker first; median (min–max) over the rounds. "
           "Peak RSS is the broker's VmHWM, reset to the current RSS before each run (so it includes "
           "memory a broker kept from earlier runs).\n")
out.append("## Scenarios\n")
out.append("| ID | Description | warren-perf arguments |")
out.append("|---|---|---|")
out.append("""${SCEN_TABLE}""".rstrip("\n"))
out.append("\n## Results\n")
out.append("| Scenario | Metric | warrend | RabbitMQ | warrend / RabbitMQ |")
out.append("|---|---|---|---|---|")
for sid in order:
    w = [r for r in rows if r["id"] == sid and r["broker"] == "warrend"]
    b = [r for r in rows if r["id"] == sid and r["broker"] == "rabbitmq"]
    for key, label, fmt, _ in metrics:
        wv = [r[key] for r in w if key in r and r["rc"] == 0]
        bv = [r[key] for r in b if key in r and r["rc"] == 0]
        if key == "confirmed" and not any(wv + bv): continue
        ratio = "n/a"
        if wv and bv and statistics.median(bv) > 0:
            ratio = "{:.2f}".format(statistics.median(wv) / statistics.median(bv))
        out.append(f"| {sid} | {label} | {stat(wv, fmt)} | {stat(bv, fmt)} | {ratio} |")
    failed = [f"{r['broker']} round {r['round']} (exit {r['rc']})" for r in w + b if r["rc"] != 0]
    if failed: out.append(f"| {sid} | failed runs | {', '.join(failed)} | | |")
out.append("\n## Raw runs\n")
out.append("| Scenario | Broker | Round | Exit | sent/s | received/s | confirmed/s | p50 µs | p99 µs | max µs | broker CPU s | peak RSS MiB | client CPU s | client max thread util |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    g = lambda k, f="{:.0f}": f.format(r[k]) if k in r else "n/a"
    out.append(f"| {r['id']} | {r['broker']} | {r['round']} | {r['rc']} | {g('sent')} | {g('received')} | "
               f"{g('confirmed')} | {g('p50_us')} | {g('p99_us')} | {g('max_us')} | {r['broker_cpu']:.1f} | "
               f"{r['hwm_mib']:.0f} | {g('client_cpu_s', '{:.2f}')} | {g('client_max_thread_util', '{:.2f}')} |")
open(out_path, "w").write("\n".join(out) + "\n")
PY
log "wrote $OUT"
