// Producer and consumer loops of warren-perf (AMQP 0-9-1 here, STOMP in
// perf_stomp_workers.cpp), one thread per connection, the counters they share with the
// reporting thread, and the pacing both protocols' producers use. Producers pipeline: many
// publishes per write, pre-encoded frames patched with a send timestamp and sequence.
// Consumers read big chunks, parse every frame in them and record end-to-end latency.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/perf_connection.hpp"
#include "bench/perf_histogram.hpp"
#include "bench/perf_options.hpp"
#include "bench/perf_stomp.hpp"

namespace warren::perf {

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

// Where a producer publishes: AMQP exchange and routing key, or a STOMP destination.
struct producer_config {
  std::string exchange;
  std::string routing_key;
  std::string destination;
};

// Outstanding publisher confirms (AMQP) or receipts (STOMP). Tags are 1, 2, ... in publish
// order; the broker may settle them out of order, singly or `multiple` up to a tag.
class confirm_tracker {
public:
  explicit confirm_tracker(uint32_t window);
  uint64_t unsettled() const { return unsettled_; }
  // How many more may be published without reusing a slot of an unsettled tag.
  uint64_t room() const { return settled_.size() - (next_ - lowest_); }
  void published(uint64_t n) {
    next_ += n;
    unsettled_ += n;
  }
  // Returns how many tags this settled.
  uint64_t settle(uint64_t tag, bool multiple);

private:
  uint64_t mark(uint64_t t);
  std::vector<uint8_t> settled_;
  size_t mask_ = 0;
  uint64_t lowest_ = 1, next_ = 1, unsettled_ = 0;
};

// How many messages a producer may add to its output now: up to `batch`, within -C, the
// confirm window and the rate (-r, counted from `start`). `now` is set when it was read.
uint64_t publish_budget(const options& o, uint64_t batch, uint64_t published,
                        const confirm_tracker& confirms, uint64_t start, uint64_t& now);
// How long a producer that made no progress may sleep in poll(), in ms.
int producer_idle_ms(const options& o, uint64_t published, uint64_t start, bool blocked);

// Run on a connection whose channel 1 is open (and in confirm mode when -c is given).
// Both close the connection before returning.
void run_producer(connection& c, const producer_config& cfg, run_state& rs, producer_stats& st);
void run_consumer(connection& c, run_state& rs, consumer_stats& st);
// The same over STOMP, on a connection past CONNECTED (the consumer's SUBSCRIBE sent).
void run_stomp_producer(stomp_connection& c, const producer_config& cfg, run_state& rs,
                        producer_stats& st);
void run_stomp_consumer(stomp_connection& c, run_state& rs, consumer_stats& st);

// CPU seconds (user + system) of the calling thread, or of the whole process.
double thread_cpu_seconds();
double process_cpu_seconds();

}  // namespace warren::perf
