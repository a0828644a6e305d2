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

// What the producer loops of both protocols share. Each loop turn: fill() (1), write what the
// socket takes (2, write_some), read the broker's answers (3, per protocol), and sleep in
// poll() for idle_ms() when nothing moved (4).
class producer_core {
public:
  // `tmpl` is one message, pre-encoded; each copy gets the send time (8 bytes) and a sequence
  // number (4 bytes) at `stamp_at`.
  producer_core(run_state& rs, producer_stats& st, std::string tmpl, size_t stamp_at);

  // Waits for the run to start, then starts the clocks.
  void wait_for_go();
  // Appends up to a batch of stamped copies to `out` while `pending` (unwritten output) is
  // below the high-water mark, within -C, the confirm window and the rate (-r). Returns how
  // many; `first`, if given, is where the first copy starts in `out`.
  uint64_t fill(std::string& out, size_t pending, size_t* first = nullptr);
  // How long to sleep in poll() after a turn without progress, in ms.
  int idle_ms(bool blocked) const;
  // Every message published (-C) and settled.
  bool all_settled() const;
  // Records the thread's CPU and wall time in the stats.
  void finish();

  const options& o;
  producer_stats& st;
  confirm_tracker confirms;
  const std::string tmpl;
  const size_t msg_len;
  uint64_t published = 0;

private:
  const size_t stamp_at_;
  const size_t batch_;
  const size_t high_water_;
  run_state& rs_;
  uint64_t start_ = 0;
  uint64_t wall0_ = 0;
  double cpu0_ = 0;
  uint32_t seq_ = 0;
};

// Step 2 of a producer loop: writes what the socket takes of `c`'s output. False when the
// connection failed.
template <class Conn>
bool write_some(Conn& c, bool& progress) {
  if (!c.has_pending_output())
    return true;
  const size_t before = c.pending_output();
  if (!c.flush())
    return false;
  progress |= c.pending_output() < before;
  return true;
}

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
