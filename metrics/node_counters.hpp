// Events this node counts for Prometheus (RabbitMQ's rabbitmq_channels_opened_total,
// rabbitmq_queues_declared_total and the like): channels opened and closed by connection
// actors, queues declared, created and deleted by vhost actors. Each is one relaxed atomic
// increment where the event happens, none of them on the message path; the exporter reads
// them when scraped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace warren::metrics {

enum class node_event : size_t {
  channel_opened,
  channel_closed,
  queue_declared,  // a queue.declare (not passive) that succeeded, new queue or not
  queue_created,
  queue_deleted,   // a queue of this node deleted (by a client, auto-delete, expiry, owner)
  count_
};

namespace detail {
inline std::atomic<uint64_t> node_events[static_cast<size_t>(node_event::count_)];
}

inline void count(node_event e) {
  detail::node_events[static_cast<size_t>(e)].fetch_add(1, std::memory_order_relaxed);
}

inline uint64_t counted(node_event e) {
  return detail::node_events[static_cast<size_t>(e)].load(std::memory_order_relaxed);
}

// One channel, open for as long as this lives (it moves with the channel's record): counts
// its opening and, however it ends, its closing.
class channel_token {
public:
  channel_token() { count(node_event::channel_opened); }
  channel_token(channel_token&& o) noexcept : live_(o.live_) { o.live_ = false; }
  channel_token& operator=(channel_token&& o) noexcept {
    if (this != &o) {
      close();
      live_ = o.live_;
      o.live_ = false;
    }
    return *this;
  }
  channel_token(const channel_token&) = delete;
  channel_token& operator=(const channel_token&) = delete;
  ~channel_token() { close(); }

private:
  void close() {
    if (live_)
      count(node_event::channel_closed);
    live_ = false;
  }
  bool live_ = true;
};

}  // namespace warren::metrics
