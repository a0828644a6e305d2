#!/usr/bin/env bash
# How warrend scales with its worker threads (warrend only): an S6-like load (10 producers ->
# 10 queues -> 10 consumers, producer i to queue i, 16 B, transient, auto-ack) against warrend
# started afresh with --workers 1, 2, 4 and 8 in turn (meant for a 16-core machine), ROUNDS
# rounds in alternation; prints the median received msg/s per worker count, the speed-up over
# the first count, warrend's CPU time and peak RSS, and the generator's busiest thread. Needs
# only bash, coreutils and awk (taskset for --pin), so it also runs from a bundle (bundle.sh)
# on a machine without a package manager.
#
# Usage: bench/scaling.sh [--workers-list 1,2,4,8] [--rounds N] [--duration S] [--queues N]
#                         [--size BYTES] [--pin] [--broker-cpus LIST --perf-cpus LIST]
#                         [--warrend PATH] [--perf PATH]
#   --workers-list  entries W (--workers W, warrend's default I/O threads) or W/I (--workers W
#                   --io-threads I), e.g. 1,2,8,8/1,8/4
#   --pin           warrend on the first half of the CPUs, warren-perf on the other half
#   --broker-cpus, --perf-cpus  the CPUs (taskset lists) for each instead
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=scaling.sh
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

WORKERS_LIST=1,2,4,8
ROUNDS=3
DURATION=10
QUEUES=10
SIZE=16
PIN=0
BROKER_CPUS="" PERF_CPUS=""
WARREND=""
PERF=""
PAUSE_S=2
while [ $# -gt 0 ]; do
  case "$1" in
    --workers-list) WORKERS_LIST=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --queues) QUEUES=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --pin) PIN=1; shift ;;
    --broker-cpus) BROKER_CPUS=$2; shift 2 ;;
    --perf-cpus) PERF_CPUS=$2; shift 2 ;;
    --warrend) WARREND=$2; shift 2 ;;
    --perf) PERF=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) bench_log "unknown argument $1"; exit 1 ;;
  esac
done
WARREND=${WARREND:-$(find_bin warrend)} || { bench_log "no warrend found (--warrend)"; exit 1; }
PERF=${PERF:-$(find_bin warren-perf)} || { bench_log "no warren-perf found (--perf)"; exit 1; }
bench_log "warrend: $WARREND; warren-perf: $PERF"
IFS=, read -r -a COUNTS <<< "$WORKERS_LIST"

NCPU=$(nproc)
if [ "$PIN" = 1 ]; then
  [ "$NCPU" -ge 2 ] || { bench_log "--pin needs 2 CPUs or more"; exit 1; }
  BROKER_CPUS="0-$((NCPU / 2 - 1))" PERF_CPUS="$((NCPU / 2))-$((NCPU - 1))"
fi
if [ -n "$BROKER_CPUS$PERF_CPUS" ]; then
  command -v taskset >/dev/null || { bench_log "--pin and the CPU lists need taskset"; exit 1; }
fi
PERF_CMD=("$PERF")
[ -z "$PERF_CPUS" ] || PERF_CMD=(taskset -c "$PERF_CPUS" "$PERF")

TMP=$(mktemp -d /tmp/warren-scaling.XXXXXX)
cleanup() { set +e; stop_warrend; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
LAUNCH=()  # taskset execs warrend, so the pid and /proc numbers are warrend's
[ -z "$BROKER_CPUS" ] || LAUNCH=(taskset -c "$BROKER_CPUS")

# "tid name cpu-ticks" for each of warrend's threads
thread_ticks() {
  local t
  for t in /proc/"$1"/task/*; do
    printf '%s %s %s\n' "${t##*/}" "$(tr -c 'A-Za-z0-9.\n' _ < "$t/comm")" \
      "$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)"
  done 2>/dev/null | sort
}
# The busiest thread between two thread_ticks files over S seconds: "name:share-of-a-CPU"
busiest_thread() {
  join "$1" "$2" | awk -v s="$3" -v t="$TCK" '
    { u = ($5 - $3) / t / s; if (u > best) { best = u; name = $2 } }
    END { printf "%s:%.2f", (name == "" ? "?" : name), best }'
}

# label received broker-cpu-s peak-rss-kb client-max-thread-util exit busiest-broker-thread
RUNS=$TMP/runs.txt
: > "$RUNS"
for round in $(seq "$ROUNDS"); do
  for w in "${COUNTS[@]}"; do
    rm -rf "$TMP/data"
    args=(--workers "${w%/*}")
    [ "${w#*/}" = "$w" ] || args+=(--io-threads "${w#*/}")
    start_warrend "$WARREND" "$TMP/data" "$TMP/warren.log" "${args[@]}" || exit 1
    io=$(sed -n 's/.* worker(s), \([0-9]*\) I\/O thread.*/\1/p' "$TMP/warren.log" | head -1)
    label="${w%/*}/${io:-?}"  # workers/I/O threads, as warrend reports them
    reset_hwm "$WARREN_PID"
    t0=$(cpu_ticks "$WARREN_PID")
    thread_ticks "$WARREN_PID" > "$TMP/threads0"
    rc=0
    out=$(timeout -k 5 $((DURATION + 60)) "${PERF_CMD[@]}" -h "127.0.0.1:$WARREN_PORT" \
          -u perf-scaling -x "$QUEUES" -y "$QUEUES" --queues "$QUEUES" -s "$SIZE" -z "$DURATION" \
          2> "$TMP/perf.err" < /dev/null) || rc=$?
    t1=$(cpu_ticks "$WARREN_PID")
    thread_ticks "$WARREN_PID" > "$TMP/threads1"
    summary=$(grep '^summary:' <<< "$out" | tail -1 || true)
    [ "$rc" = 0 ] || { bench_log "${args[*]} round $round: exit $rc"; tail -3 "$TMP/perf.err" >&2; }
    echo "$label $(summary_field "$summary" received) $(awk -v a="$t0" -v b="$t1" -v t="$TCK" \
      'BEGIN {printf "%.2f", (b - a) / t}') $(hwm_kb "$WARREN_PID")" \
      "$(summary_field "$summary" client_max_thread_util) $rc" \
      "$(busiest_thread "$TMP/threads0" "$TMP/threads1" "$DURATION")" >> "$RUNS"
    bench_log "${args[*]} round $round: ${summary#summary: }"
    stop_warrend
    sleep "$PAUSE_S"
  done
done

echo
echo "warrend scaling: $QUEUES producers -> $QUEUES queues -> $QUEUES consumers, $SIZE B," \
  "${DURATION} s per run, $ROUNDS round(s); $NCPU CPUs ($(grep -m1 'model name' /proc/cpuinfo |
  cut -d: -f2- | sed 's/^ *//'))${BROKER_CPUS:+; warrend on CPUs $BROKER_CPUS}${PERF_CPUS:+; warren-perf on CPUs $PERF_CPUS}"
awk '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function lo(list,   n, a, i, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
  function hi(list,   n, a, i, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
  !($1 in order) { order[$1] = ++k }
  $6 == 0 && $2 != "" { seen[$1] = 1
         rate[$1] = rate[$1] " " $2; cpu[$1] = cpu[$1] " " $3; rss[$1] = rss[$1] " " $4; util[$1] = util[$1] " " $5
         busy[$1] = busy[$1] " " $7 }
  $6 != 0 { failed[$1]++ }
  END {
    printf "%-8s %-34s %-9s %-18s %-14s %-22s %s\n", "w/io", "received msg/s median (min-max)", "speed-up",
           "warrend CPU s (*)", "peak RSS MiB", "busiest client thread", "busiest warrend threads (**)"
    first = ""; for (w in order) if (order[w] == 1) first = w
    base = (first in seen) ? median(rate[first]) : 0
    for (w in order) idx[order[w]] = w
    for (i = 1; i <= k; i++) {
      w = idx[i]
      if (!(w in seen)) { printf "%-8s all runs failed\n", w; continue }
      m = median(rate[w])
      printf "%-8s %-34s %-9s %-18.1f %-14.0f %-22.2f %s%s\n", w,
             sprintf("%.0f (%.0f-%.0f)", m, lo(rate[w]), hi(rate[w])),
             (base > 0 ? sprintf("%.2f", m / base) : "n/a"), median(cpu[w]), median(rss[w]) / 1024,
             median(util[w]), substr(busy[w], 2), (failed[w] ? sprintf("  (%d failed run(s))", failed[w]) : "")
    }
    print "w/io: scheduler workers / I/O threads"
    print "(*) during the whole warren-perf invocation: set-up, the run, and the clean-up of what is left queued"
    print "(**) per run, thread name:share of one CPU over the run time; warrend and warren.io.N read the sockets"
  }' "$RUNS"
