# Shell functions shared by the bench scripts (compare.sh, scaling.sh, backlog.sh): process
# CPU time and memory from /proc, and starting and stopping a private warrend. Needs only
# bash, coreutils, awk and sed, so the scripts also run from a bundle (bundle.sh).
# Source it; it defines functions and variables and runs nothing.
# shellcheck shell=bash

bench_log() { echo "${BENCH_NAME:-bench}: $*" >&2; }

# find_bin NAME: NAME from $WARREN_BIN_DIR, else from the first of these folders that holds
# both warrend and warren-perf (else NAME alone): the bin/ of a bundle this script sits in
# (bundle.sh), then build-rel, build-release and build of the source tree.
find_bin() {
  local here root d
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  root=$(cd "$here/.." && pwd)
  local dirs=("$root/bin" "$root/build-rel/bin" "$root/build-release/bin" "$root/build/bin")
  if [ -n "${WARREN_BIN_DIR:-}" ]; then dirs=("$WARREN_BIN_DIR"); fi
  for d in "${dirs[@]}"; do
    [ -x "$d/warrend" ] && [ -x "$d/warren-perf" ] && { echo "$d/$1"; return 0; }
  done
  for d in "${dirs[@]}"; do
    [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
  done
  return 1
}

# shellcheck disable=SC2034  # used by the scripts that source this file
TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Resets the peak RSS to the current RSS (Linux: clear_refs 5) so VmHWM covers what follows.
reset_hwm() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
kb_to_mib() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_warrend BINARY DATA_DIR LOG [warrend options...]: starts warrend on free ports and
# waits for its AMQP and STOMP listeners. Sets WARREN_PID, WARREN_PORT, WARREN_STOMP_PORT.
# LAUNCH, an array, goes before the binary (e.g. taskset -c 0; it must exec the binary).
start_warrend() {
  local bin=$1 data=$2 logf=$3
  shift 3
  mkdir -p "$data"
  : > "$logf"  # now: the loop below must not read the ports of the warrend before
  ${LAUNCH[@]+"${LAUNCH[@]}"} "$bin" --amqp-port 0 --stomp-port 0 --http-port 0 \
    --data-dir "$data" --log-level info "$@" \
    > "$logf" 2>&1 &
  WARREN_PID=$!
  WARREN_PORT="" WARREN_STOMP_PORT=""
  local _
  for _ in $(seq 300); do
    WARREN_PORT=$(sed -n 's/.*listening amqp [0-9.]*:\([0-9]*\).*/\1/p' "$logf" | head -1)
    WARREN_STOMP_PORT=$(sed -n 's/.*listening stomp [0-9.]*:\([0-9]*\).*/\1/p' "$logf" | head -1)
    [ -n "$WARREN_PORT" ] && [ -n "$WARREN_STOMP_PORT" ] && return 0
    kill -0 "$WARREN_PID" 2>/dev/null || break
    sleep 0.1
  done
  bench_log "warrend did not start:"
  tail -20 "$logf" >&2
  return 1
}

# stop_warrend: SIGTERM, then SIGKILL after 5 s.
stop_warrend() {
  [ -n "${WARREN_PID:-}" ] || return 0
  if kill -0 "$WARREN_PID" 2>/dev/null; then
    kill -TERM "$WARREN_PID" 2>/dev/null || true
    local _
    for _ in $(seq 50); do kill -0 "$WARREN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$WARREN_PID" 2>/dev/null || true
  fi
  wait "$WARREN_PID" 2>/dev/null || true
  WARREN_PID=""
}

# summary_field LINE KEY: the value of KEY=... in a warren-perf summary line ("" if absent).
summary_field() { tr ' ' '\n' <<< "$1" | sed -n "s/^$2=//p" | head -1; }

# The comparison scripts' (compare.sh, cluster.sh; they need python3 and, the first time,
# apt-get too):
# ensure_rabbitmq: installs Debian's rabbitmq-server if RMQ_BIN lacks it, and never leaves
# Debian's own service running.
RMQ_BIN=/usr/lib/rabbitmq/bin
ensure_rabbitmq() {
  [ -x "$RMQ_BIN/rabbitmq-server" ] && return 0
  bench_log "installing rabbitmq-server"
  apt-get install -y rabbitmq-server >&2
  (systemctl disable --now rabbitmq-server || service rabbitmq-server stop) >/dev/null 2>&1 || true
}
# free_port: a TCP port free on 127.0.0.1 now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
