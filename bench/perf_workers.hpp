// Producer and consumer loops of warren-perf, one thread per connection, and the counters
// they share with the reporting thread. Producers pipeline: many publishes per write,
// pre-encoded frames patched with a send timestamp and sequence. Consumers read big chunks,
// parse every frame in them and record end-to-end latency.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "bench/perf_connection.hpp"
#include "bench/perf_histogram.hpp"
#include "bench/perf_options.hpp"

namespace warren::perf {

using clock = std::chrono::steady_clock;

inline uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch())
          .count());
}

// State shared by all threads of one run.
struct run_state {
  explicit run_state(const options& o) : opt(o) {}
  const options& opt;
  std::atomic<bool> go{false};      // set once every connection is ready
  std::atomic<bool> stop{false};    // end of the measured run
  std::atomic<bool> failed{false};  // a connection failed or the broker closed one
  std::atomic<bool> broker_closed{false};  // ... and it was the broker that closed it
  std::atomic<uint64_t> start_ns{0};
};

// CPU time and wall time a worker thread spent in its loop (filled when it ends).
struct thread_usage {
  double cpu_s = 0;
  double wall_s = 0;
};

struct alignas(64) producer_stats {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> confirmed{0};
  std::atomic<uint64_t> nacked{0};
  std::atomic<uint64_t> returned{0};
  std::atomic<bool> done{false};  // reached -C (and every confirm arrived)
  thread_usage usage;
};

struct alignas(64) consumer_stats {
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> last_receive_ns{0};
  latency_recorder latency;  // nanoseconds
  thread_usage usage;
};

struct producer_config {
  std::string exchange;
  std::string routing_key;
};

// Run on a connection whose channel 1 is open (and in confirm mode when -c is given).
// Both close the connection before returning.
void run_producer(connection& c, const producer_config& cfg, run_state& rs, producer_stats& st);
void run_consumer(connection& c, run_state& rs, consumer_stats& st);

// CPU seconds (user + system) of the calling thread, or of the whole process.
double thread_cpu_seconds();
double process_cpu_seconds();

}  // namespace warren::perf
