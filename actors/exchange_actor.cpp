// The exchange actor (one per exchange).
//
// Jobs: keep the binding set and its routing index (an exchange type plug-in); route each
// publish batch and send every destination one batch with its share; split tracked weights
// among destinations and hand back what is kept (unroutable or remainder) in one route_report
// per batch; pass unroutable messages to the alternate exchange through the vhost.
// Talks to: connections (batches in, reports out), queues and exchanges (batches out), the
// vhost (binding changes in, alternate-exchange forwarding out).
// Reports its counters (messages in, routed, unroutable) to the stats collector when asked.
// Invariant: every batch received from a connection is answered by exactly one route_report,
// sent after the batches it caused were handed to their destinations.
#include "actors/exchange_actor.hpp"

#include <algorithm>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "actors/hardening.hpp"
#include "actors/mailbox_flow.hpp"
#include "actors/publish_credit.hpp"
#include "actors/trace.hpp"
#include "metrics/probe.hpp"

#include "actors/exchange/exchange_type.hpp"
#include "protocol/amqp091/properties.hpp"
#include "protocol/amqp091/wire.hpp"

namespace warren {
namespace {

constexpr uint8_t max_hops = 16;

struct destination {
  caf::actor handle;
  std::string name;
  bool to_exchange = false;
  uint32_t bindings = 0;
};

struct exchange_state {
  exchange_config cfg;
  std::unique_ptr<exchange::exchange_type> router;
  std::vector<binding_entry> bindings;
  std::unordered_map<exchange::dest_id, destination> dests;
  std::unordered_map<caf::actor_addr, exchange::dest_id> dest_by_addr;
  exchange::dest_id next_dest = 1;
  // Scratch buffers reused across batches.
  std::vector<exchange::dest_id> matched;
  std::unordered_map<exchange::dest_id, publish_batch> out;
  mailbox_flow flow;
  credit_grants grants;  // publish credit owed to connections (publish_credit.hpp)
  credit_account credit;  // and ours with the queues we route to
  bool out_of_credit = false;  // waiting for a queue's grant, taking nothing else
  // Statistics (metrics/stats.hpp).
  caf::actor collector;
  uint64_t publish_in = 0, publish_out = 0, routed = 0, unroutable = 0;
  static inline const char* name = "exchange";
};

using exchange_actor_t = caf::stateful_actor<exchange_state>;

bool same_binding(const binding_entry& a, const binding_entry& b) {
  return a.destination == b.destination && a.key == b.key && a.arguments == b.arguments;
}

exchange::binding_key to_key(exchange_state& st, const binding_entry& b, exchange::dest_id id) {
  return exchange::binding_key{id, b.key, b.arguments};
}

void route_batch(exchange_actor_t* self, publish_batch& in) {
  auto& st = self->state;
  route_report report;
  report.channel = in.channel;
  publish_batch to_alternate;
  bool tracked_any = false;
  amqp::field_table headers;
  st.publish_in += in.items.size();
  // The firehose (trace.hpp): the first exchange traces each publish, with the queues bound
  // to it that took the message (not those reached through other exchanges).
  bool tracing = !in.trace.empty() && in.hops == 0;
  std::vector<publish_item> traces;
  std::vector<std::string_view> routed;
  for (auto& item : in.items) {
    st.matched.clear();
    if (in.hops < max_hops) {
      const amqp::field_table* hdrs = nullptr;
      if (st.router->needs_headers() && item.msg->has_headers()) {
        amqp::property_scan scan;
        headers.clear();
        if (amqp::scan_properties(item.msg->properties(), scan) && scan.has_headers) {
          amqp::reader r{scan.headers_raw};
          headers = r.table();
          if (!r.failed())
            hdrs = &headers;
        }
      }
      st.router->route(item.msg->routing_key(), hdrs, st.matched);
      item.msg->each_extra_route(  // CC and BCC
        [&](std::string_view key) { st.router->route(key, hdrs, st.matched); });
    }
    if (st.matched.size() > 1) {
      std::sort(st.matched.begin(), st.matched.end());
      st.matched.erase(std::unique(st.matched.begin(), st.matched.end()), st.matched.end());
    }
    if (tracing && trace::traced(*item.msg)) {
      routed.clear();
      for (auto id : st.matched)
        if (auto d = st.dests.find(id); d != st.dests.end() && !d->second.to_exchange)
          routed.push_back(d->second.name);
      traces.push_back(publish_item{trace::publish(*item.msg, in.trace.front(), routed)});
    }
    if (st.matched.empty()) {
      if (!st.cfg.alternate.empty() && in.hops < max_hops) {
        to_alternate.items.push_back(std::move(item));
      } else {
        ++st.unroutable;
        if (item.weight)
          report.returns.push_back(weight_return{item.seq, item.weight, false, false});
      }
      continue;
    }
    ++st.routed;
    st.publish_out += st.matched.size();
    uint64_t share = item.weight / st.matched.size();
    uint64_t kept = item.weight - share * st.matched.size();
    if (kept)
      report.returns.push_back(weight_return{item.seq, kept, false, false});
    tracked_any |= item.weight != 0;
    for (auto id : st.matched) {
      auto& b = st.out[id];
      b.items.push_back(publish_item{item.msg, item.seq, share});
    }
  }
  trace::send(self, st.cfg.vhost, traces);  // before the messages reach their queues
  for (auto& [id, b] : st.out) {
    if (b.items.empty())
      continue;
    auto d = st.dests.find(id);
    if (d == st.dests.end())
      continue;
    b.publisher = in.publisher;
    b.channel = in.channel;
    b.hops = in.hops + 1;
    if (d->second.to_exchange)
      ++report.forwarded_batches;
    else  // not to exchanges: a cycle of bindings would wait for itself
      st.credit.spend(d->second.handle, b);
    self->send(d->second.handle, publish_atom::value, std::move(b));
    b = publish_batch{};
  }
  if (!to_alternate.items.empty()) {
    to_alternate.publisher = in.publisher;
    to_alternate.channel = in.channel;
    to_alternate.hops = in.hops + 1;
    ++report.forwarded_batches;
    self->send(st.cfg.vhost, route_atom::value, st.cfg.alternate, std::move(to_alternate));
  }
  if (in.publisher)
    self->send(in.publisher, routed_atom::value, std::move(report));
}

void report(exchange_actor_t* self, const caf::actor& to, bool final);

// Out of credit with a queue: the exchange takes nothing but grants (and a stop) until it has
// credit again, so the connections publishing to it run out of theirs in turn and the queue's
// mailbox stays bounded however long it waits for a worker.
void on_credit_change(exchange_actor_t* self) {
  auto& st = self->state;
  if (st.credit.exhausted() == st.out_of_credit)
    return;
  st.out_of_credit = !st.out_of_credit;
  if (!st.out_of_credit) {
    release_mailbox(self, "exchange");
    return;
  }
  hold_mailbox(
    self,
    [=](grant_atom, uint64_t messages, uint64_t bytes) {
      self->state.credit.grant_from_sender(self, messages, bytes);
      on_credit_change(self);
    },
    [=](stop_atom) {
      report(self, self->state.collector, true);
      self->quit();
    });
}

void report(exchange_actor_t* self, const caf::actor& to, bool final) {
  auto& st = self->state;
  metrics::exchange_stats s;
  s.id = self->id();
  s.vhost = st.cfg.vhost_name;
  s.name = st.cfg.name;
  s.type = st.cfg.type;
  s.mailbox = self->mailbox().size();
  s.publish_in = st.publish_in;
  s.publish_out = st.publish_out;
  s.routed = st.routed;
  s.unroutable = st.unroutable;
  s.final = final;
  metrics::send_stats(self, to, std::move(s));
}

caf::behavior exchange_behavior(exchange_actor_t* self, exchange_config cfg) {
  install_defaults(self, "exchange");
  self->state.cfg = std::move(cfg);
  self->state.router = exchange::make_exchange_type(self->state.cfg.type);
  self->state.collector = metrics::find_collector(self->home_system());
  report(self, self->state.collector, false);
  on_crash(self, [self](const std::string& what) {
    spdlog::error("exchange '{}' in vhost '{}' crashed: {}", self->state.cfg.name,
                  self->state.cfg.vhost_name, what);
  });
  self->set_down_handler([=](caf::down_msg& dm) {
    self->state.credit.forget(dm.source);
    on_credit_change(self);
  });
  return {
    [=](publish_atom, publish_batch& b) {
      self->state.grants.took(self, b);
      self->state.flow.on_publish(self, b.publisher);
      route_batch(self, b);
      self->state.flow.relax(self);
      on_credit_change(self);
    },
    [=](grant_atom, uint64_t messages, uint64_t bytes) {
      self->state.credit.grant_from_sender(self, messages, bytes);
    },
    [=](policy_atom, std::string& alternate) {
      // A policy changed the alternate exchange (policy.hpp); "" is none.
      self->state.cfg.alternate = std::move(alternate);
    },
    [=](bind_atom, binding_entry& b) -> op_result {
      auto& st = self->state;
      for (auto& existing : st.bindings)
        if (same_binding(existing, b))
          return op_result{0, {}, static_cast<uint32_t>(st.bindings.size())};
      exchange::dest_id id;
      auto found = st.dest_by_addr.find(b.destination.address());
      if (found != st.dest_by_addr.end()) {
        id = found->second;
      } else {
        id = st.next_dest++;
        st.dest_by_addr.emplace(b.destination.address(), id);
        if (!b.to_exchange)  // a queue that goes takes what it owes us with it
          self->monitor(b.destination);
        st.dests.emplace(id, destination{b.destination, b.destination_name, b.to_exchange, 0});
      }
      ++st.dests[id].bindings;
      st.router->bind(to_key(st, b, id));
      st.bindings.push_back(std::move(b));
      return op_result{0, {}, static_cast<uint32_t>(st.bindings.size())};
    },
    [=](unbind_atom, binding_entry& b) -> op_result {
      auto& st = self->state;
      auto pos = std::find_if(st.bindings.begin(), st.bindings.end(),
                              [&](const binding_entry& e) { return same_binding(e, b); });
      if (pos != st.bindings.end()) {
        auto id = st.dest_by_addr[b.destination.address()];
        st.router->unbind(to_key(st, *pos, id));
        st.bindings.erase(pos);
        if (--st.dests[id].bindings == 0) {
          if (!st.dests[id].to_exchange) {  // no longer ours to wait for
            self->demonitor(b.destination.address());
            st.credit.forget(b.destination.address());
          }
          st.dests.erase(id);
          st.dest_by_addr.erase(b.destination.address());
        }
      }
      return op_result{0, {}, static_cast<uint32_t>(st.bindings.size())};
    },
    [=](rebind_atom, caf::actor_addr& old, caf::actor& now) {
      // A destination was restarted under a new handle: its bindings follow it.
      auto& st = self->state;
      auto found = st.dest_by_addr.find(old);
      if (found == st.dest_by_addr.end())
        return;
      auto id = found->second;
      st.dest_by_addr.erase(found);
      st.dest_by_addr[now.address()] = id;
      st.dests[id].handle = now;
      st.credit.forget(old);
      if (!st.dests[id].to_exchange)
        self->monitor(now);
      on_credit_change(self);
      for (auto& b : st.bindings)
        if (b.destination.address() == old)
          b.destination = now;
    },
    [=](report_atom) {
      report(self, caf::actor_cast<caf::actor>(self->current_sender()), false);
    },
    [=](crash_atom) {
      inject_fault("exchange '" + self->state.cfg.name + "' in vhost '" +
                   self->state.cfg.vhost_name + "'");
    },
    [=](stall_atom, uint32_t ms) {
      inject_stall(self, "exchange",
                   "exchange '" + self->state.cfg.name + "' in vhost '" +
                     self->state.cfg.vhost_name + "'",
                   ms);
    },
    [=](stop_atom) {
      report(self, self->state.collector, true);
      self->quit();
    },
  };
}

}  // namespace

caf::actor spawn_exchange(caf::actor_system& sys, exchange_config cfg) {
  return sys.spawn(exchange_behavior, std::move(cfg));
}

}  // namespace warren
