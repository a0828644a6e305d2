// The stats collector actor; see stats_collector.hpp.
#include "metrics/stats_collector.hpp"

#include "actors/hardening.hpp"
#include "metrics/probe.hpp"

namespace warren::metrics {

namespace {

// Publishing is batched: at most one snapshot per this long while reports keep coming.
constexpr auto publish_delay = std::chrono::milliseconds(20);

template <class T>
struct entry {
  caf::actor handle;
  std::shared_ptr<const sample<T>> last;
  std::chrono::steady_clock::time_point at;
};

struct collector_state {
  std::shared_ptr<snapshot_store> store;
  std::chrono::milliseconds interval{1000};
  std::map<caf::actor_id, entry<queue_stats>> queues;
  std::map<caf::actor_id, entry<exchange_stats>> exchanges;
  std::map<caf::actor_id, entry<connection_stats>> connections;
  retired_totals retired;
  bool publish_scheduled = false;
  static inline const char* name = "stats_collector";
};

using collector_t = caf::stateful_actor<collector_state>;

void retire(retired_totals& r, const queue_stats& s) {
  r.queue_published += s.published;
  r.queue_delivered += s.delivered;
  r.queue_acked += s.acked;
  r.queue_redelivered += s.redelivered;
  for (size_t i = 0; i < death_reasons; ++i)
    r.dead_lettered[s.quorum][s.dead_letter_exchange][i] += s.dead_lettered[i];
}

void retire(retired_totals& r, const exchange_stats& s) {
  r.exchange_in += s.publish_in;
  r.exchange_out += s.publish_out;
  r.exchange_routed += s.routed;
  r.exchange_unroutable += s.unroutable;
}

void retire(retired_totals& r, const connection_stats& s) {
  r.channels += s.totals;
  r.recv_oct += s.recv_oct;
  r.send_oct += s.send_oct;
  ++r.connections_closed;
}

void schedule_publish(collector_t* self) {
  if (!self->state.publish_scheduled) {
    self->state.publish_scheduled = true;
    self->delayed_send(self, publish_delay, publish_atom::value);
  }
}

template <class T>
void on_report(collector_t* self, std::map<caf::actor_id, entry<T>>& table, T& s) {
  auto& st = self->state;
  auto now = std::chrono::steady_clock::now();
  auto it = table.find(s.id);
  if (s.final) {
    if (it != table.end())
      table.erase(it);
    retire(st.retired, s);
    schedule_publish(self);
    return;
  }
  auto next = std::make_shared<sample<T>>();
  if (it == table.end()) {
    auto handle = caf::actor_cast<caf::actor>(self->current_sender());
    if (!handle)
      return;
    self->monitor(handle);
    if constexpr (std::is_same_v<T, connection_stats>)
      ++st.retired.connections_opened;
    auto id = s.id;
    next->prev = s;
    next->cur = std::move(s);
    table.emplace(id, entry<T>{handle, std::move(next), now});
  } else {
    next->prev = it->second.last->cur;
    next->seconds = std::chrono::duration<double>(now - it->second.at).count();
    next->cur = std::move(s);
    it->second.last = std::move(next);
    it->second.at = now;
  }
  schedule_publish(self);
}

template <class T>
bool drop(retired_totals& r, std::map<caf::actor_id, entry<T>>& table, caf::actor_id id) {
  auto it = table.find(id);
  if (it == table.end())
    return false;
  retire(r, it->second.last->cur);
  table.erase(it);
  return true;
}

template <class T>
void poll(collector_t* self, const std::map<caf::actor_id, entry<T>>& table) {
  for (auto& [id, e] : table)
    self->send(e.handle, report_atom::value);
}

void publish(collector_t* self) {
  auto& st = self->state;
  st.publish_scheduled = false;
  auto snap = std::make_shared<snapshot>();
  for (auto& [id, e] : st.queues)
    snap->queues.emplace(id, e.last);
  for (auto& [id, e] : st.exchanges)
    snap->exchanges.emplace(id, e.last);
  for (auto& [id, e] : st.connections)
    snap->connections.emplace(id, e.last);
  snap->retired = st.retired;
  snap->taken_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  st.store->set(std::move(snap));
}

caf::behavior collector_behavior(collector_t* self, std::shared_ptr<snapshot_store> store,
                                 std::chrono::milliseconds interval) {
  install_defaults(self, "stats collector");
  self->state.store = std::move(store);
  self->state.interval = interval;
  self->set_down_handler([=](caf::down_msg& dm) {
    // An actor that stopped without a final report (or after it): keep its last counters.
    auto& st = self->state;
    auto id = dm.source.id();
    if (drop(st.retired, st.queues, id) || drop(st.retired, st.exchanges, id) ||
        drop(st.retired, st.connections, id))
      schedule_publish(self);
  });
  self->send(self, tick_atom::value);
  return {
    [=](stats_atom, queue_stats& s) { on_report(self, self->state.queues, s); },
    [=](stats_atom, exchange_stats& s) { on_report(self, self->state.exchanges, s); },
    [=](stats_atom, connection_stats& s) { on_report(self, self->state.connections, s); },
    [=](tick_atom) {
      auto& st = self->state;
      poll(self, st.queues);
      poll(self, st.exchanges);
      poll(self, st.connections);
      self->delayed_send(self, st.interval, tick_atom::value);
    },
    [=](publish_atom) { publish(self); },
  };
}

}  // namespace

caf::actor spawn_stats_collector(caf::actor_system& sys, std::shared_ptr<snapshot_store> store,
                                 std::chrono::milliseconds interval) {
  auto collector = sys.spawn(collector_behavior, std::move(store), interval);
  sys.registry().erase(collector_key);
  sys.registry().put(collector_key, caf::actor_cast<caf::strong_actor_ptr>(collector));
  return collector;
}

}  // namespace warren::metrics
