#!/usr/bin/env bash
# A backlog on a durable queue in warrend (warrend only): publishes COUNT persistent messages
# of SIZE bytes with publisher confirms to a durable queue nobody consumes, lets the backlog
# sit, then drains it. Reports the publish and drain rates, warrend's peak RSS (VmHWM), its RSS
# while the backlog sits, and the size of the queue's file before and after the drain: with
# persistence.queue_memory_mb below the backlog's size, bodies beyond it stay on disk.
#
# Usage: bench/backlog.sh [--count N] [--size BYTES] [--config FILE] [--queue-memory-mb N]
#                         [--workers N] [--warrend PATH] [--perf PATH] [--keep-data DIR]
#   --config FILE         passed to warrend (e.g. a persistence.queue_memory_mb line)
#   --queue-memory-mb N   adds persistence.queue_memory_mb = N to that configuration
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=backlog.sh
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

COUNT=1000000
SIZE=1024
CONFIG=""
QUEUE_MB=""
WORKERS=$(nproc)
WARREND=""
PERF=""
KEEP=""
QUEUE=perf-backlog
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --queue-memory-mb) QUEUE_MB=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --warrend) WARREND=$2; shift 2 ;;
    --perf) PERF=$2; shift 2 ;;
    --keep-data) KEEP=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) bench_log "unknown argument $1"; exit 1 ;;
  esac
done
WARREND=${WARREND:-$(find_bin warrend)} || { bench_log "no warrend found (--warrend)"; exit 1; }
PERF=${PERF:-$(find_bin warren-perf)} || { bench_log "no warren-perf found (--perf)"; exit 1; }
bench_log "warrend: $WARREND; warren-perf: $PERF"

TMP=$(mktemp -d /tmp/warren-backlog.XXXXXX)
DATA=$TMP/data
cleanup() {
  set +e
  stop_warrend
  [ -z "$KEEP" ] || { mkdir -p "$KEEP" && cp -r "$TMP/." "$KEEP/"; }
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

WCONF=()
if [ -n "$CONFIG" ] || [ -n "$QUEUE_MB" ]; then
  [ -z "$CONFIG" ] || cp "$CONFIG" "$TMP/warren.conf"
  [ -z "$QUEUE_MB" ] || echo "persistence.queue_memory_mb = $QUEUE_MB" >> "$TMP/warren.conf"
  WCONF=(--config "$TMP/warren.conf")
fi
start_warrend "$WARREND" "$DATA" "$TMP/warren.log" --workers "$WORKERS" "${WCONF[@]}" || exit 1
bench_log "warrend pid $WARREN_PID on port $WARREN_PORT (--workers $WORKERS${WCONF[*]:+ ${WCONF[*]}})"

# Bytes of the queue's message file (with its SQLite journal files), or n/a when none.
queue_file_bytes() {
  local total=0 f found=0
  for f in "$DATA"/queues/*"$QUEUE"*; do
    [ -f "$f" ] || continue
    found=1
    total=$((total + $(stat -c %s "$f")))
  done
  [ "$found" = 1 ] && echo "$total" || echo n/a
}
mib() { [ "$1" = n/a ] && echo n/a || awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

run_perf() {  # label args...: prints the summary line; stops the script if warren-perf fails
  local label=$1 out rc=0
  shift
  out=$("$PERF" -h "127.0.0.1:$WARREN_PORT" -u "$QUEUE" "$@" 2> "$TMP/perf.err" < /dev/null) || rc=$?
  if [ "$rc" != 0 ]; then
    bench_log "$label: warren-perf exit $rc"
    tail -5 "$TMP/perf.err" >&2
    exit 1
  fi
  grep '^summary:' <<< "$out" | tail -1
}

base_rss=$(rss_kb "$WARREN_PID")
reset_hwm "$WARREN_PID"
bench_log "publishing $COUNT persistent messages of $SIZE B with confirms"
pub=$(run_perf publish -f persistent -c 1000 -s "$SIZE" -x 1 -y 0 -C "$COUNT" --keep-queues -z 3600)
sleep 2
backlog_rss=$(rss_kb "$WARREN_PID")
hwm_publish=$(hwm_kb "$WARREN_PID")
file_before=$(queue_file_bytes)

bench_log "draining"
drain=$(run_perf drain -x 0 -y 1 --no-declare -C "$COUNT" -z 3600)
sleep 2
file_after=$(queue_file_bytes)
hwm_all=$(hwm_kb "$WARREN_PID")
end_rss=$(rss_kb "$WARREN_PID")

confirmed=$(summary_field "$pub" confirmed_total)
sent_total=$(summary_field "$pub" sent_total)
received_total=$(summary_field "$drain" received_total)
[ "$received_total" = "$COUNT" ] || bench_log "warning: drained $received_total of $COUNT messages"
qmb=$(grep -h 'queue_memory_mb' "$TMP/warren.conf" 2>/dev/null | tail -1 | sed 's/.*= *//')

printf '%-40s %s\n' \
  "messages" "$COUNT x $SIZE B, persistent, confirms (window 1000), durable queue" \
  "persistence.queue_memory_mb" "${qmb:-default}" \
  "publish msg/s (sent; confirmed)" "$(summary_field "$pub" sent); $(summary_field "$pub" confirmed)" \
  "published / confirmed" "$sent_total / $confirmed" \
  "drain msg/s" "$(summary_field "$drain" received)" \
  "warrend RSS MiB before" "$(kb_to_mib "$base_rss")" \
  "warrend RSS MiB with the backlog" "$(kb_to_mib "$backlog_rss")" \
  "warrend RSS MiB after the drain" "$(kb_to_mib "$end_rss")" \
  "warrend peak RSS MiB (publish)" "$(kb_to_mib "$hwm_publish")" \
  "warrend peak RSS MiB (publish + drain)" "$(kb_to_mib "$hwm_all")" \
  "queue file MiB before the drain" "$(mib "$file_before")" \
  "queue file MiB after the drain" "$(mib "$file_after")"
echo "backlog: count=$COUNT size=$SIZE publish=$(summary_field "$pub" sent)" \
  "drain=$(summary_field "$drain" received) rss_backlog_mib=$(kb_to_mib "$backlog_rss")" \
  "hwm_mib=$(kb_to_mib "$hwm_all") file_before_mib=$(mib "$file_before")" \
  "file_after_mib=$(mib "$file_after")"
