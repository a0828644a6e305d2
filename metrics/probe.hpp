// How an actor finds the stats collector and sends it its numbers (metrics/stats.hpp).
// The collector registers itself in the actor system's registry under collector_key at start;
// an actor spawned without one (unit tests) reports nothing.
#pragma once

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "metrics/stats.hpp"

namespace warren::metrics {

inline constexpr caf::atom_value collector_key = caf::atom("stats");

inline caf::actor find_collector(caf::actor_system& sys) {
  return caf::actor_cast<caf::actor>(sys.registry().get(collector_key));
}

// What a connection actor (AMQP or STOMP) counts about itself beyond its channels.
struct connection_counters {
  caf::actor collector;
  int64_t connected_at = 0;  // ms since the Unix epoch
  uint64_t recv_oct = 0, send_oct = 0, recv_cnt = 0, send_cnt = 0;
  channel_counters closed_channels;  // counters of channels that are gone
  bool reporting = false;            // opened, first report sent
  bool done = false;                 // final report sent: answer no more polls
};

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// A queue's or stream's consumer as it reports it; `activity` is RabbitMQ's activity_status.
inline consumer_stats consumer_of(const consumer_spec& spec, const char* activity) {
  consumer_stats c;
  c.tag = spec.tag;
  c.connection_name = spec.connection_name;
  c.user = spec.user;
  c.node = spec.node;
  c.channel = spec.channel;
  c.ack_required = !spec.no_ack;
  c.exclusive = spec.exclusive;
  c.priority = spec.priority;
  c.prefetch = spec.no_ack ? 0 : spec.prefetch;
  c.arguments = spec.arguments;
  c.activity = activity;
  return c;
}

template <class Self, class Stats>
void send_stats(Self* self, const caf::actor& collector, Stats&& s) {
  if (collector)
    self->send(collector, stats_atom::value, std::forward<Stats>(s));
}

}  // namespace warren::metrics
