// warren-perf: a PerfTest-like AMQP 0-9-1 and STOMP 1.2 load generator. This file owns one
// run: it has the topology declared and every connection opened (perf_setup), starts one
// thread per producer and consumer, prints progress each second, decides when the measured
// interval ends, and prints the summary (or JSON), including the generator's own CPU use.
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/perf_histogram.hpp"
#include "bench/perf_options.hpp"
#include "bench/perf_setup.hpp"
#include "bench/perf_workers.hpp"

using namespace warren;
using namespace warren::perf;

namespace {

volatile std::sig_atomic_t interrupted = 0;
void on_signal(int) { interrupted = 1; }

void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

uint64_t us(uint64_t ns) { return (ns + 500) / 1000; }

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (int rc = parse_options(argc, argv, o); rc != 0) return rc == 2 ? 0 : rc;
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  raise_fd_limit();

  run_state rs(o);
  run_plan plan;
  if (int rc = prepare_run(o, rs, plan); rc != 0) return rc;
  auto& pstats = plan.pstats;
  auto& cstats = plan.cstats;
  std::vector<std::thread> threads;
  for (auto& body : plan.workers) threads.emplace_back(body);

  // Without producers (a drain) the interval starts when the consumers subscribed.
  const uint64_t start = o.producers == 0 && o.consumers > 0 ? plan.subscribe_ns : now_ns();
  const double cpu_start = process_cpu_seconds();
  rs.start_ns = start;
  rs.go = true;

  auto total_sent = [&] { uint64_t n = 0; for (auto& p : pstats) n += p->sent.load(); return n; };
  auto total_confirmed = [&] { uint64_t n = 0; for (auto& p : pstats) n += p->confirmed.load(); return n; };
  auto total_received = [&] { uint64_t n = 0; for (auto& c : cstats) n += c->received.load(); return n; };
  auto merged_latency = [&] {
    histogram h, one;
    for (auto& c : cstats) {
      c->latency.snapshot(one);
      h.merge(one);
    }
    return h;
  };

  const uint64_t deadline = o.duration_s > 0 ? start + static_cast<uint64_t>(o.duration_s * 1e9) : 0;
  uint64_t next_report = start + 1'000'000'000ull, last_report = start;
  uint64_t prev_sent = 0, prev_conf = 0, prev_recv = 0, all_done_at = 0;
  histogram prev_hist;
  uint64_t end = 0;
  while (end == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const uint64_t now = now_ns();
    if (interrupted || rs.failed.load()) end = now;
    if (deadline && now >= deadline) end = now;
    if (o.count && !pstats.empty() && !end) {
      const bool all_done = std::all_of(pstats.begin(), pstats.end(), [](auto& p) { return p->done.load(); });
      if (all_done && !all_done_at) all_done_at = now;
      if (all_done_at) {
        uint64_t last_recv = 0;
        for (auto& c : cstats) last_recv = std::max(last_recv, c->last_receive_ns.load());
        // Drained: nothing received for a second after the producers finished.
        if (cstats.empty()) end = all_done_at;
        else if (const uint64_t quiet_since = std::max(all_done_at, last_recv);
                 now > quiet_since && now - quiet_since > 1'000'000'000ull)
          end = quiet_since;
      }
    }
    // -x 0 -C N: until the consumers received N, or nothing for 2 s after the first message.
    if (o.count && pstats.empty() && !cstats.empty() && !end) {
      uint64_t last_recv = 0;
      for (auto& c : cstats) last_recv = std::max(last_recv, c->last_receive_ns.load());
      // (A consumer may have received after `now` was read: no unsigned wrap-around then.)
      if (total_received() >= o.count ||
          (last_recv && now > last_recv && now - last_recv > 2'000'000'000ull))
        end = std::max(last_recv, start + 1);
    }
    if (o.progress && now >= next_report && !end) {
      const double dt = static_cast<double>(now - last_report) / 1e9;
      const uint64_t s = total_sent(), cf = total_confirmed(), r = total_received();
      const histogram h = merged_latency();
      const histogram d = h.since(prev_hist);
      std::string conf = o.confirm_window
                             ? ", confirmed: " + std::to_string(static_cast<uint64_t>((cf - prev_conf) / dt)) + " msg/s"
                             : "";
      std::fprintf(stderr,
                   "time: %.1fs, sent: %.0f msg/s%s, received: %.0f msg/s, "
                   "min/median/75th/95th/99th consumer latency: %lu/%lu/%lu/%lu/%lu µs\n",
                   static_cast<double>(now - start) / 1e9, (s - prev_sent) / dt, conf.c_str(),
                   (r - prev_recv) / dt, us(d.min()), us(d.percentile(0.5)),
                   us(d.percentile(0.75)), us(d.percentile(0.95)), us(d.percentile(0.99)));
      prev_sent = s, prev_conf = cf, prev_recv = r, prev_hist = h, last_report = now;
      next_report += 1'000'000'000ull;
    }
  }
  // The measured interval ends here: take every number before stopping the threads.
  const uint64_t sent = total_sent(), confirmed = total_confirmed(), received = total_received();
  const histogram lat = merged_latency();
  const double cpu_s = process_cpu_seconds() - cpu_start;
  const double dur = static_cast<double>(std::max(end, start + 1) - start) / 1e9;
  rs.stop = true;
  for (auto& t : threads) t.join();

  uint64_t nacked = 0, returned = 0;
  double max_util = 0;
  for (auto& p : pstats) {
    nacked += p->nacked.load();
    returned += p->returned.load();
    if (p->usage.wall_s > 0) max_util = std::max(max_util, p->usage.cpu_s / p->usage.wall_s);
  }
  for (auto& c : cstats)
    if (c->usage.wall_s > 0) max_util = std::max(max_util, c->usage.cpu_s / c->usage.wall_s);

  finish_run(o, plan);

  char line[512];
  std::snprintf(line, sizeof line,
                "summary: sent=%.0f received=%.0f confirmed=%.0f p50_us=%lu p95_us=%lu p99_us=%lu "
                "max_us=%lu duration_s=%.2f client_cpu_s=%.2f client_max_thread_util=%.2f "
                "sent_total=%lu received_total=%lu confirmed_total=%lu nacked=%lu returned=%lu",
                sent / dur, received / dur, confirmed / dur, us(lat.percentile(0.5)),
                us(lat.percentile(0.95)), us(lat.percentile(0.99)), us(lat.max()), dur, cpu_s,
                max_util, sent, received, confirmed, nacked, returned);
  if (o.json) {
    std::fprintf(stderr, "%s\n", line);
    std::printf(
        "{\"sent_rate\":%.1f,\"received_rate\":%.1f,\"confirmed_rate\":%.1f,\"sent\":%lu,"
        "\"received\":%lu,\"confirmed\":%lu,\"nacked\":%lu,\"returned\":%lu,"
        "\"latency_us\":{\"min\":%lu,\"p50\":%lu,\"p75\":%lu,\"p95\":%lu,\"p99\":%lu,\"max\":%lu},"
        "\"duration_s\":%.3f,\"client_cpu_s\":%.3f,\"client_max_thread_util\":%.3f,"
        "\"producers\":%d,\"consumers\":%d,\"body_size\":%u,\"protocol\":\"%s\",\"failed\":%s}\n",
        sent / dur, received / dur, confirmed / dur, sent, received, confirmed, nacked, returned,
        us(lat.min()), us(lat.percentile(0.5)), us(lat.percentile(0.75)),
        us(lat.percentile(0.95)), us(lat.percentile(0.99)), us(lat.max()), dur, cpu_s, max_util,
        o.producers, o.consumers, o.body_size, o.stomp ? "stomp" : "amqp",
        rs.failed.load() ? "true" : "false");
  } else {
    std::printf("%s\n", line);
  }
  std::fflush(stdout);
  if (rs.failed.load()) return rs.broker_closed.load() ? 3 : 1;
  return 0;
}
