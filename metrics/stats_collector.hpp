// The stats collector actor and the snapshot it publishes.
//
// Jobs: ask every reporting actor for its numbers once per interval (report_atom), keep the
// last two reports of each (so that rates can be derived), fold the counters of actors that
// stopped into `retired` (aggregated counters never go backwards), and publish an immutable
// snapshot for the HTTP side.
// Talks to: queue, exchange and connection actors (reports in, polls out); nobody else - the
// HTTP threads only read the snapshot_store.
// What stays true: the message path never waits for statistics: actors count in their own
// state and report asynchronously; readers never block the collector for longer than a
// shared_ptr copy; a snapshot is never modified once published.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "metrics/stats.hpp"

namespace warren::metrics {

// The last two reports of one actor; rates are (cur - prev) / seconds.
template <class T>
struct sample {
  T cur;
  T prev;
  double seconds = 0;  // between prev and cur; 0 until there are two reports
  double rate(uint64_t T::*field) const {
    if (seconds <= 0 || cur.*field < prev.*field)
      return 0;
    return static_cast<double>(cur.*field - prev.*field) / seconds;
  }
};

// Counters of actors that stopped (added to the live ones for aggregated totals).
struct retired_totals {
  channel_counters channels;
  uint64_t queue_published = 0, queue_delivered = 0, queue_acked = 0, queue_redelivered = 0;
  // [quorum queue][queue had a dead-letter exchange][reason]
  uint64_t dead_lettered[2][2][death_reasons] = {};
  uint64_t exchange_in = 0, exchange_out = 0, exchange_routed = 0, exchange_unroutable = 0;
  uint64_t recv_oct = 0, send_oct = 0;
  uint64_t connections_opened = 0, connections_closed = 0;
};

struct snapshot {
  template <class T>
  using by_id = std::map<caf::actor_id, std::shared_ptr<const sample<T>>>;
  by_id<queue_stats> queues;
  by_id<exchange_stats> exchanges;
  by_id<connection_stats> connections;
  retired_totals retired;
  int64_t taken_ms = 0;  // ms since the Unix epoch
};

// The published snapshot: swapped by the collector, read by HTTP threads.
class snapshot_store {
public:
  std::shared_ptr<const snapshot> get() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return current_;
  }
  void set(std::shared_ptr<const snapshot> s) {
    std::lock_guard<std::mutex> lock{mutex_};
    current_ = std::move(s);
  }

private:
  mutable std::mutex mutex_;
  std::shared_ptr<const snapshot> current_ = std::make_shared<snapshot>();
};

// Spawns the collector and registers it (metrics/probe.hpp) so that actors find it.
caf::actor spawn_stats_collector(caf::actor_system& sys, std::shared_ptr<snapshot_store> store,
                                 std::chrono::milliseconds interval);

}  // namespace warren::metrics
