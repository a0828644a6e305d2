// basic.publish and what hangs off it in the connection actor: resolving the target (exchange
// actor, or for the default exchange the queue actor itself), batching publishes per target,
// publisher confirms (AMQP 0-9-1 extension confirm.select, RabbitMQ semantics), mandatory
// returns (basic.return 312 NO_ROUTE), transactions (tx.*) and direct reply-to
// (amq.rabbitmq.reply-to).
//
// Every publish that needs an answer (confirm mode, mandatory, tx) is tracked with a weight
// (see actors/messages.hpp); its fate is known once the whole weight came back.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/connection_state.hpp"
#include "actors/queue_arguments.hpp"
#include "actors/trace.hpp"
#include "protocol/amqp091/header_routes.hpp"
#include "protocol/amqp091/properties.hpp"
#include "protocol/amqp091/wire.hpp"

namespace warren::conn {

namespace {

constexpr std::string_view reply_to_queue = "amq.rabbitmq.reply-to";
constexpr std::string_view reply_to_prefix = "amq.rabbitmq.reply-to.";

void add_outgoing(actor* self, channel_rec& ch, const caf::actor& target, bool to_exchange,
                  publish_item item) {
  auto& st = self->state;
  bool full = st.batched.add(item.msg->body().size());
  auto o = std::find_if(st.outgoing.begin(), st.outgoing.end(), [&](const outgoing_batch& b) {
    return b.target == target && b.batch.channel == ch.id;
  });
  if (o == st.outgoing.end()) {
    o = st.outgoing.emplace(st.outgoing.end());
    o->target = target;
    o->to_exchange = to_exchange;
    o->batch.publisher = caf::actor_cast<caf::actor>(self);
    o->batch.channel = ch.id;
    if (to_exchange) {
      ++ch.routes_in_flight;
      if (st.tracing)  // the exchange traces what it routes
        o->batch.trace.push_back(trace_origin_of(self, ch.number));
    }
  }
  o->batch.items.push_back(std::move(item));
  if (full)
    flush_outgoing(self);
}

// The firehose's trace of a publish to the default exchange, which the connection routes itself
// (called while tracing; out of line, so that the publish path stays as it was without it).
[[gnu::noinline, gnu::cold]] void trace_direct(actor* self, channel_rec& ch, const message& msg) {
  if (trace::traced(msg))
    self->state.traces.push_back(publish_item{
      trace::publish(msg, trace_origin_of(self, ch.number), trace::default_exchange_queues(msg))});
}

// Publish order. A channel's messages reach a queue in the order it published them, as on
// RabbitMQ, though a message routed by an exchange takes one hop more than one the connection
// sends to a queue itself (the default exchange). So before one of the latter, the exchanges
// must have passed on what the channel gave them: true when `then` waits for that, with the
// connection awaiting.
bool wait_for_routes(actor* self, channel_rec& ch, std::function<void()> then) {
  if (ch.routes_in_flight == 0)
    return false;
  auto& st = self->state;
  flush_outgoing(self);
  if (st.inflight_routes == 0) {  // (an exchange that went down reports nothing)
    ch.routes_in_flight = 0;
    return false;
  }
  st.awaiting = true;
  st.after_routes = std::move(then);
  return true;
}

tracked_publish* find_tracked(channel_rec& ch, uint64_t seq) {
  auto it = std::lower_bound(ch.tracked.begin(), ch.tracked.end(), seq,
                             [](const tracked_publish& t, uint64_t s) { return t.seq < s; });
  if (it == ch.tracked.end() || it->seq != seq)
    return nullptr;
  return &*it;
}

void send_return(actor* self, channel_rec& ch, const message& msg) {
  amqp::basic_return r;
  r.reply_code = amqp::no_route;
  r.reply_text = "NO_ROUTE";
  r.exchange = msg.exchange();
  r.routing_key = msg.routing_key();
  auto& out = self->state.out;
  amqp::encode_method(out, ch.number, r);
  amqp::encode_header_frame(out, ch.number, msg.body().size(), msg.properties());
  amqp::encode_body_frames(out, ch.number, msg.body(), self->state.frame_max);
}

void settle(actor* self, channel_rec& ch);

void complete(actor* self, channel_rec& ch, tracked_publish& t) {
  t.done = true;
  if (t.mandatory && ch.mandatory_pending > 0 && --ch.mandatory_pending == 0 &&
      self->state.waiting_returns) {
    self->state.waiting_returns = false;
    self->state.awaiting = false;
  }
  if (!t.routed && !t.rejected) {
    if (t.mandatory && t.msg) {
      send_return(self, ch, *t.msg);  // before the confirm, as RabbitMQ does
      ++ch.counters.returned;
    } else if (!t.mandatory) {
      ++ch.counters.dropped;
    }
  }
  t.msg = nullptr;
  if (t.tx && ch.tx_waiting > 0 && --ch.tx_waiting == 0 && ch.commit_pending) {
    ch.commit_pending = false;
    send_method(self, ch.number, amqp::tx_commit_ok{});
    self->state.awaiting = false;
  }
}

// Confirms go out in publish order: acks for a run of settled messages are coalesced into one
// basic.ack with multiple=true.
void settle(actor* self, channel_rec& ch) {
  uint64_t ack_upto = 0;
  size_t acks = 0;
  auto flush_acks_now = [&] {
    if (acks) {
      amqp::basic_ack a;
      a.delivery_tag = ack_upto;
      a.multiple = acks > 1;
      send_method(self, ch.number, a);
      acks = 0;
    }
  };
  while (!ch.tracked.empty() && ch.tracked.front().done) {
    auto& t = ch.tracked.front();
    if (t.confirm) {
      if (t.rejected) {
        flush_acks_now();
        amqp::basic_nack n;
        n.delivery_tag = t.seq;
        send_method(self, ch.number, n);
      } else {
        ack_upto = t.seq;
        ++acks;
        ++ch.counters.confirmed;
      }
    }
    ch.tracked.pop_front();
  }
  flush_acks_now();
}

message_ptr make_message(amqp::command& cmd, const amqp::basic_publish& m,
                         amqp::property_scan& scan) {
  return message::make({m.exchange, m.routing_key, cmd.properties, scan.delivery_mode,
                        scan.has_headers, scan.expiration.has_value()},
                       std::move(cmd.body));
}

// The message of a publish with CC or BCC headers, which have given `routes` (its properties
// lose BCC here).
message_ptr make_routed_message(amqp::command& cmd, const amqp::basic_publish& m,
                                amqp::property_scan& scan, const amqp::header_routes& routes) {
  if (routes.has_bcc) {
    amqp::basic_properties props;
    if (amqp::decode_properties(cmd.properties, props) && props.headers) {
      amqp::erase_field(*props.headers, "BCC");
      cmd.properties.clear();
      amqp::encode_properties(props, cmd.properties);
    }
  }
  auto extra = amqp::encode_routes(routes.keys);
  message::fields f{m.exchange,       m.routing_key,
                    cmd.properties,   scan.delivery_mode,
                    scan.has_headers, scan.expiration.has_value(),
                    false,            extra};
  return message::make(f, std::move(cmd.body));
}

// Reads the CC and BCC headers of a publish into `out` (left empty when there are none, as
// for nearly every message); false when they closed the channel (one that is not an array), at
// the point where RabbitMQ builds the message.
bool header_routes_pass(actor* self, channel_rec& ch, const amqp::property_scan& scan,
                        std::optional<amqp::header_routes>& out) {
  if (!scan.has_headers || !amqp::may_have_header_routes(scan.headers_raw))
    return true;
  amqp::reader r{scan.headers_raw};
  auto headers = r.table();
  if (r.failed())
    return true;
  out = amqp::read_header_routes(headers);
  if (!out->error)
    return true;
  channel_error(self, ch, amqp::precondition_failed,
                "PRECONDITION_FAILED - invalid message: " + *out->error, 60, 40);
  return false;
}

// Publishes to `target` (null = unroutable) on behalf of channel ch.
void publish_to(actor* self, channel_rec& ch, const caf::actor& target, bool to_exchange,
                bool mandatory, message_ptr msg, bool in_commit) {
  bool tracked = ch.confirm || mandatory || in_commit;
  ++ch.counters.published;
  if (!to_exchange && self->state.tracing) [[unlikely]]
    trace_direct(self, ch, *msg);
  publish_item item{std::move(msg), 0, 0};
  if (tracked) {
    tracked_publish t;
    t.seq = ++ch.publish_seq;
    t.mandatory = mandatory;
    t.confirm = ch.confirm;
    t.tx = in_commit;
    if (mandatory) {
      t.msg = item.msg;
      ++ch.mandatory_pending;
    }
    if (target)
      t.target = target.address();
    t.via_exchange = to_exchange;
    if (in_commit)
      ++ch.tx_waiting;
    ch.tracked.push_back(std::move(t));
    item.seq = ch.publish_seq;
    item.weight = full_weight;
    if (!target) {
      complete(self, ch, ch.tracked.back());
      settle(self, ch);
      return;
    }
  } else if (ch.confirm) {
    ++ch.publish_seq;
  }
  if (target)
    add_outgoing(self, ch, target, to_exchange, std::move(item));
  else if (!tracked)
    ++ch.counters.dropped;  // (the default exchange, and no queue of that name)
}

// A publish to the default exchange that CC or BCC sends to several queues (`queues`, each
// once; none = unroutable): the message goes to each queue itself, its weight shared out,
// tracked as one routed by an exchange (a restarted queue fails it).
void publish_to_queues(actor* self, channel_rec& ch, const std::vector<caf::actor>& queues,
                       bool mandatory, message_ptr msg, bool in_commit) {
  if (queues.size() <= 1)
    return publish_to(self, ch, queues.empty() ? caf::actor{} : queues.front(), false,
                      mandatory, std::move(msg), in_commit);
  bool tracked = ch.confirm || mandatory || in_commit;
  ++ch.counters.published;
  if (self->state.tracing) [[unlikely]]
    trace_direct(self, ch, *msg);
  uint64_t seq = 0, share = 0;
  if (tracked) {
    tracked_publish t;
    t.seq = seq = ++ch.publish_seq;
    t.mandatory = mandatory;
    t.confirm = ch.confirm;
    t.tx = in_commit;
    if (mandatory) {
      t.msg = msg;
      ++ch.mandatory_pending;
    }
    t.via_exchange = true;
    if (in_commit)
      ++ch.tx_waiting;
    share = full_weight / queues.size();
    t.returned = full_weight - share * queues.size();  // what the shares leave over
    ch.tracked.push_back(std::move(t));
  } else if (ch.confirm) {
    ++ch.publish_seq;
  }
  for (auto& q : queues)
    add_outgoing(self, ch, q, false, publish_item{msg, seq, share});
}

// Asks the vhost for queue `name`, a target of the default exchange: the publish is tried again
// once it answers. A queue goes into the cache; a name it does not know into negative_lookup, or
// for a key of CC or BCC (`route`) into negative_routes.
void look_up_queue(actor* self, std::string name, bool route) {
  ask<lookup_result>(
    self, self->state.vhost,
    [=](lookup_result& r) {
      auto& st = self->state;
      if (r.code == 0) {
        st.queue_cache[name] = r.target;
        self->monitor(r.target);
      } else if (route) {
        st.negative_routes.push_back(name);
      } else {
        st.negative_lookup = name;
      }
    },
    lookup_atom::value, queue_atom::value, name, caf::actor{});
}

// Rewrites reply_to = "amq.rabbitmq.reply-to" to this channel's direct reply-to address.
bool rewrite_reply_to(actor* self, channel_rec& ch, amqp::command& cmd) {
  amqp::basic_properties props;
  if (!amqp::decode_properties(cmd.properties, props))
    return false;
  props.reply_to = std::string{reply_to_prefix} + ch.reply_token;
  cmd.properties.clear();
  amqp::encode_properties(props, cmd.properties);
  return true;
}

}  // namespace

trace_origin trace_origin_of(actor* self, uint16_t channel) {
  auto& st = self->state;
  return trace_origin{st.settings->node, st.vhost_name, st.peer + " -> " + st.local, st.user,
                      channel};
}

void flush_outgoing(actor* self) {
  auto& st = self->state;
  if (!st.traces.empty()) [[unlikely]]
    trace::send(self, st.vhost, st.traces);  // a publish's trace goes before the message
  for (auto& o : st.outgoing) {
    if (o.to_exchange)
      ++st.inflight_routes;
    st.flow.credit.spend(o.target, o.batch);
    self->send(o.target, publish_atom::value, std::move(o.batch));
  }
  st.outgoing.clear();
  st.batched.reset();
}

namespace {

// The checks of a publish's properties, once its exchange is known to exist (RabbitMQ's order:
// direct reply-to, user_id, expiration). False when they closed the channel or connection.
bool properties_pass(actor* self, channel_rec& ch, amqp::command& cmd,
                     const amqp::property_scan& scan) {
  auto& st = self->state;
  if (scan.reply_to && *scan.reply_to == reply_to_queue) {
    if (ch.reply_tag.empty()) {
      channel_error(self, ch, amqp::precondition_failed,
                    "PRECONDITION_FAILED - fast reply consumer does not exist", 60, 40);
      return false;
    }
    if (!rewrite_reply_to(self, ch, cmd)) {
      connection_error(self, amqp::syntax_error,
                       "SYNTAX_ERROR - malformed content header properties", 60, 40);
      return false;
    }
  }
  // RabbitMQ validates user_id against the authenticated user (flag bit 4 of the first word).
  if (cmd.properties.size() >= 2 && (static_cast<uint8_t>(cmd.properties[1]) & 0x10)) {
    amqp::basic_properties props;
    if (amqp::decode_properties(cmd.properties, props) && props.user_id &&
        *props.user_id != st.user) {
      channel_error(self, ch, amqp::precondition_failed,
                    "PRECONDITION_FAILED - user_id property set to '" + *props.user_id +
                      "' but authenticated user was '" + st.user + "'",
                    60, 40);
      return false;
    }
  }
  if (scan.expiration) {  // per-message TTL: milliseconds, as RabbitMQ checks them
    std::string why;
    if (!parse_expiration(*scan.expiration, why)) {
      channel_error(self, ch, amqp::precondition_failed,
                    "PRECONDITION_FAILED - invalid expiration '" +
                      std::string{*scan.expiration} + "': " + why,
                    60, 40);
      return false;
    }
  }
  return true;
}

}  // namespace

void on_publish(actor* self, channel_rec& ch, amqp::command& cmd, amqp::basic_publish& m) {
  auto& st = self->state;
  if (m.immediate)
    return connection_error(self, amqp::not_implemented, "NOT_IMPLEMENTED - immediate=true", 60,
                            40);
  if (!permitted(self, ch, access::perm::write, access::kind::exchange, m.exchange, 60, 40))
    return;
  if (st.alarms.raised()) {
    // A memory or disk alarm: the publish waits, and so does everything read after it, until
    // the alarms clear (RabbitMQ's "blocked" state; the client is told once).
    st.alarms.blocked = true;
    if (st.blocked_notify)
      send_method(self, 0,
                  amqp::connection_blocked{alarm_reason(st.alarms.memory, st.alarms.disk)});
    spdlog::info("AMQP connection {} (user '{}'): blocked, {}", st.peer, st.user,
                 alarm_reason(st.alarms.memory, st.alarms.disk));
    flush_out(self);
    retry_current(self, std::move(cmd));
    return;
  }
  amqp::property_scan scan;
  if (!amqp::scan_properties(cmd.properties, scan))
    return connection_error(self, amqp::syntax_error,
                            "SYNTAX_ERROR - malformed content header properties", 60, 40);
  caf::actor target;
  bool to_exchange = false;
  bool retry_lookup = false;
  std::optional<amqp::header_routes> routes;  // CC and BCC
  bool routes_read = false;
  std::vector<caf::actor> queues;  // the default exchange's, when CC or BCC name more
  bool several = false;
  if (m.exchange.empty()) {
    if (!properties_pass(self, ch, cmd, scan))
      return;
    const auto& key = m.routing_key;
    if (key.rfind(reply_to_prefix, 0) == 0) {
      // Direct reply-to: hand the message to the requesting connection.
      auto token = key.substr(reply_to_prefix.size());
      auto it = st.queue_cache.find(key);
      if (it != st.queue_cache.end()) {
        auto msg = make_message(cmd, m, scan);
        publish_batch b;
        b.publisher = caf::actor_cast<caf::actor>(self);
        b.channel = ch.id;
        bool tracked = ch.confirm || m.mandatory || ch.tx;
        publish_item item{msg, 0, 0};
        if (tracked) {
          tracked_publish t;
          t.seq = ++ch.publish_seq;
          t.mandatory = m.mandatory;
          t.confirm = ch.confirm;
          t.target = it->second.address();
          if (m.mandatory) {
            t.msg = msg;
            ++ch.mandatory_pending;
          }
          ch.tracked.push_back(std::move(t));
          item.seq = ch.publish_seq;
          item.weight = full_weight;
        } else if (ch.confirm) {
          ++ch.publish_seq;
        }
        b.items.push_back(std::move(item));
        ++ch.counters.published;
        if (st.tracing) [[unlikely]]
          trace_direct(self, ch, *msg);
        flush_outgoing(self);
        self->send(it->second, direct_atom::value, token, std::move(b));
        return;
      }
      if (st.negative_lookup != key) {
        retry_lookup = true;
        auto name = key;
        ask<lookup_result>(
          self, st.vhost,
          [=](lookup_result& r) {
            auto& st = self->state;
            if (r.code == 0 && r.target) {
              st.queue_cache[name] = r.target;
              self->monitor(r.target);
            } else {
              st.negative_lookup = name;
            }
          },
          lookup_atom::value, reply_to_atom::value, token);
      }
    } else if (!header_routes_pass(self, ch, scan, routes)) {
      return;
    } else if (routes && !routes->keys.empty()) {
      // CC and BCC: every queue the keys name, each once, looked up one at a time.
      routes_read = true;
      auto& neg = st.negative_routes;
      auto known = [&](const std::string& k) {
        return st.queue_cache.count(k) || std::find(neg.begin(), neg.end(), k) != neg.end();
      };
      const std::string* missing = known(key) ? nullptr : &key;
      for (auto& k : routes->keys)
        if (!missing && !known(k))
          missing = &k;
      if (missing) {
        retry_lookup = true;
        look_up_queue(self, *missing, true);
      } else {
        auto add = [&](const std::string& k) {
          auto it = st.queue_cache.find(k);
          if (it != st.queue_cache.end() &&
              std::find(queues.begin(), queues.end(), it->second) == queues.end())
            queues.push_back(it->second);
        };
        add(key);
        for (auto& k : routes->keys)
          add(k);
        several = true;
      }
    } else {
      routes_read = true;
      auto it = st.queue_cache.find(key);
      if (it != st.queue_cache.end()) {
        target = it->second;
      } else if (st.negative_lookup != key) {
        retry_lookup = true;
        look_up_queue(self, key, false);
      }
    }
  } else {
    auto it = st.exchange_cache.find(m.exchange);
    if (it != st.exchange_cache.end()) {
      if (it->second.second)
        return channel_error(self, ch, amqp::access_refused,
                             "ACCESS_REFUSED - cannot publish to internal exchange '" +
                               m.exchange + "' in vhost '" + st.vhost_name + "'",
                             60, 40);
      // Topic permissions (access.hpp): only a connection whose user has some pays for a look.
      if (!st.topics.empty() && st.topic_exchanges.count(m.exchange) &&
          !st.topics.allows(access::perm::write, m.exchange, m.routing_key))
        return channel_error(self, ch, amqp::access_refused,
                             access::topic_refused_text(m.routing_key, m.exchange,
                                                        st.vhost_name, st.user),
                             60, 40);
      if (!properties_pass(self, ch, cmd, scan))
        return;
      target = it->second.first;
      to_exchange = true;
    } else if (st.negative_lookup != m.exchange) {
      retry_lookup = true;
      auto name = m.exchange;
      ask<lookup_result>(
        self, st.vhost,
        [=](lookup_result& r) {
          auto& st = self->state;
          if (r.code == 0) {
            st.exchange_cache[name] = {r.target, r.internal};
            if (r.topic)
              st.topic_exchanges.insert(name);
            else
              st.topic_exchanges.erase(name);
            self->monitor(r.target);
          } else {
            st.negative_lookup = name;
          }
        },
        lookup_atom::value, exchange_atom::value, name);
    } else {
      st.negative_lookup.clear();
      return channel_error(self, ch, amqp::not_found,
                           "NOT_FOUND - no exchange '" + m.exchange + "' in vhost '" +
                             st.vhost_name + "'",
                           60, 40);
    }
  }
  if (retry_lookup) {
    retry_current(self, std::move(cmd));
    return;
  }
  st.negative_lookup.clear();
  if (!st.negative_routes.empty())
    st.negative_routes.clear();
  if (!routes_read && !header_routes_pass(self, ch, scan, routes))
    return;
  if (ch.routes_in_flight && !ch.tx && (several || (target && !to_exchange)) &&
      wait_for_routes(self, ch, [] {})) {
    retry_current(self, std::move(cmd));
    return;
  }
  auto msg = routes ? make_routed_message(cmd, m, scan, *routes) : make_message(cmd, m, scan);
  if (ch.tx) {
    ch.tx_publishes.push_back(
      tx_publish{target, std::move(queues), several, to_exchange, m.mandatory, std::move(msg)});
    return;
  }
  if (several)
    publish_to_queues(self, ch, queues, m.mandatory, std::move(msg), false);
  else
    publish_to(self, ch, target, to_exchange, m.mandatory, std::move(msg), false);
}

void on_weights(actor* self, uint64_t channel_id, std::vector<weight_return>& returns) {
  auto* ch = channel_by_id(self, channel_id);
  if (!ch || ch->closing)
    return;
  bool any_done = false;
  for (auto& r : returns) {
    auto* t = find_tracked(*ch, r.seq);
    if (!t || t->done)
      continue;
    t->returned += r.weight;
    t->routed |= r.enqueued;
    t->rejected |= r.rejected;
    if (t->returned >= full_weight) {
      complete(self, *ch, *t);
      any_done = true;
    }
  }
  if (any_done)
    settle(self, *ch);
}

namespace {

// Nacks (and, for mandatory ones, settles) every unfinished tracked publish that `pred` picks.
template <class Pred>
void fail_tracked_if(actor* self, Pred pred) {
  for (auto& [n, ch] : self->state.channels) {
    bool any = false;
    for (auto& t : ch.tracked) {
      if (!t.done && pred(t)) {
        t.rejected = true;
        complete(self, ch, t);
        any = true;
      }
    }
    if (any)
      settle(self, ch);
  }
}

}  // namespace

void fail_tracked_to(actor* self, const caf::actor_addr& target) {
  fail_tracked_if(self, [&](const tracked_publish& t) { return t.target == target; });
}

void fail_tracked_via_exchanges(actor* self) {
  fail_tracked_if(self, [](const tracked_publish& t) { return t.via_exchange; });
}

void on_confirm_select(actor* self, channel_rec& ch, amqp::confirm_select& m) {
  if (ch.tx)
    return channel_error(self, ch, amqp::precondition_failed,
                         "PRECONDITION_FAILED - cannot switch from tx to confirm mode", 85, 10);
  ch.confirm = true;
  if (!m.no_wait)
    send_method(self, ch.number, amqp::confirm_select_ok{});
}

void on_tx_select(actor* self, channel_rec& ch) {
  if (ch.confirm)
    return channel_error(self, ch, amqp::precondition_failed,
                         "PRECONDITION_FAILED - cannot switch from confirm to tx mode", 90, 10);
  ch.tx = true;
  send_method(self, ch.number, amqp::tx_select_ok{});
}

namespace {

// Publishes a committed transaction's messages from `from` on, in order (see wait_for_routes);
// commit-ok once every one reached its queues.
void publish_committed(actor* self, channel_rec& ch,
                       std::shared_ptr<std::vector<tx_publish>> publishes, size_t from) {
  for (size_t i = from; i < publishes->size(); ++i) {
    auto& p = (*publishes)[i];
    bool direct = p.several || (p.target && !p.to_exchange);
    if (direct && ch.routes_in_flight) {
      auto go_on = [self, id = ch.id, publishes, i] {
        if (auto* c = channel_by_id(self, id); c && !c->closing)
          publish_committed(self, *c, publishes, i);
      };
      if (wait_for_routes(self, ch, std::move(go_on)))
        return;
    }
    if (p.several)
      publish_to_queues(self, ch, p.queues, p.mandatory, std::move(p.msg), true);
    else
      publish_to(self, ch, p.target, p.to_exchange, p.mandatory, std::move(p.msg), true);
  }
  if (ch.tx_waiting == 0) {
    send_method(self, ch.number, amqp::tx_commit_ok{});
    return;
  }
  ch.commit_pending = true;
  flush_outgoing(self);
  self->state.awaiting = true;
}

}  // namespace

void on_tx_commit(actor* self, channel_rec& ch) {
  if (!ch.tx)
    return channel_error(self, ch, amqp::precondition_failed,
                         "PRECONDITION_FAILED - channel is not transactional", 90, 20);
  auto publishes = std::make_shared<std::vector<tx_publish>>(std::move(ch.tx_publishes));
  ch.tx_publishes.clear();
  commit_settles(self, ch);
  publish_committed(self, ch, std::move(publishes), 0);
}

void on_tx_rollback(actor* self, channel_rec& ch) {
  if (!ch.tx)
    return channel_error(self, ch, amqp::precondition_failed,
                         "PRECONDITION_FAILED - channel is not transactional", 90, 30);
  ch.tx_publishes.clear();
  rollback_settles(ch);
  send_method(self, ch.number, amqp::tx_rollback_ok{});
}

void on_direct_reply(actor* self, std::string& token, publish_batch& b) {
  auto& st = self->state;
  channel_rec* target = nullptr;
  for (auto& [n, ch] : st.channels)
    if (!ch.closing && ch.reply_token == token && !ch.reply_tag.empty())
      target = &ch;
  confirm_report report;
  report.channel = b.channel;
  for (auto& item : b.items) {
    if (target) {
      auto tag = target->next_tag++;
      encode_delivery(self, target->number, target->reply_tag, tag, false, *item.msg);
    }
    if (item.weight)
      report.returns.push_back(weight_return{item.seq, item.weight, target != nullptr, false});
  }
  if (!report.returns.empty() && b.publisher)
    self->send(b.publisher, confirm_atom::value, std::move(report));
}

}  // namespace warren::conn
