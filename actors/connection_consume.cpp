// Consuming side of the connection actor: basic.consume / cancel / get / ack / nack / reject /
// recover / qos, channel.flow, deliveries from queues and the credit that paces them.
//
// Credit: a queue sends a consumer at most as many messages as the connection granted. For a
// consumer with a prefetch limit (basic.qos, AMQP 0-9-1 §1.8.3.1) credit comes back as its
// messages are acked; with basic.qos global=true the channel's consumers share one limit
// (RabbitMQ semantics); consumers without a limit (no-ack, or prefetch 0) get a window that
// refills once their deliveries are handed to the socket and the socket keeps up.
#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "actors/connection_state.hpp"
#include "actors/queue_release.hpp"
#include "actors/stream_arguments.hpp"
#include "actors/trace.hpp"
#include "protocol/amqp091/properties.hpp"
#include "protocol/amqp091/wire.hpp"

namespace warren::conn {

namespace {

constexpr std::string_view reply_to_queue = "amq.rabbitmq.reply-to";

// The deliveries from `tag` on were made now (the consumer timeout).
void stamp_deliveries(actor* self, channel_rec& ch, uint64_t tag) {
  auto& st = self->state;
  warren::stamp_deliveries(self, ch.delivered, st.ack_timer, st.settings->consumer_timeout_ms,
                           tag);
}

void settled(channel_rec& ch) {
  ch.delivered.settled(ch.unacked, &unacked_delivery::tag);
}

std::deque<unacked_delivery>::iterator find_unacked(channel_rec& ch, uint64_t tag) {
  auto it = std::lower_bound(ch.unacked.begin(), ch.unacked.end(), tag,
                             [](const unacked_delivery& u, uint64_t t) { return u.tag < t; });
  if (it != ch.unacked.end() && it->tag != tag)
    return ch.unacked.end();
  return it;
}

void settle_one(actor* self, channel_rec& ch, unacked_delivery& u, bool requeue,
                bool discard = false) {
  auto& st = self->state;
  auto addr = u.queue.address();
  if (requeue) {
    auto& r = st.requeue_out[addr];
    r.first = u.queue;
    r.second.push_back(u.msg_id);
  } else {
    (discard ? st.rejects_out : st.acks_out)[addr].push_back(u.msg_id);
    st.ack_targets[addr] = u.queue;
  }
  if (u.consumer_id) {
    auto c = st.consumers.find(u.consumer_id);
    if (c != st.consumers.end() && c->second.unacked > 0)
      --c->second.unacked;
  }
  ch.credit_dirty = true;
}

// A refusal from a queue: a channel error, or a connection error for a hard code.
void fail_method(actor* self, channel_rec& ch, uint16_t code, std::string text, uint16_t cls,
                 uint16_t mth) {
  if (amqp::is_hard_error(code))
    connection_error(self, code, std::move(text), cls, mth);
  else
    channel_error(self, ch, code, std::move(text), cls, mth);
}

uint32_t window_of(const broker_settings& s, const consumer_rec& c) {
  return c.prefetch ? c.prefetch : s.default_credit;
}

void remove_consumer(actor* self, uint64_t id) {
  auto& st = self->state;
  auto it = st.consumers.find(id);
  if (it == st.consumers.end())
    return;
  auto chit = st.channels.find(it->second.channel);
  if (chit != st.channels.end()) {
    auto& v = chit->second.consumers;
    v.erase(std::remove(v.begin(), v.end(), id), v.end());
  }
  st.consumers.erase(it);
}

// The firehose: the traces of deliveries from `queue` on `channel` (while tracing; out of line,
// so that the delivery path stays as it was without it).
[[gnu::noinline, gnu::cold]] void trace_deliveries(actor* self, uint16_t channel,
                                                    std::string_view queue,
                                                    const delivery_batch& b) {
  auto& st = self->state;
  trace::add_deliveries(st.traces, b, queue, trace_origin_of(self, channel));
  trace::send(self, st.vhost, st.traces);
}

}  // namespace

void encode_delivery(actor* self, uint16_t channel, std::string_view consumer_tag,
                     uint64_t delivery_tag, bool redelivered, const message& msg) {
  // basic.deliver (AMQP 0-9-1 §1.8.3.9) encoded by hand: this is the hottest frame we write.
  // Its size is known first, so the bytes are stored at once, with no per-byte appends.
  auto tag = consumer_tag.substr(0, 255);
  auto exchange = msg.exchange().substr(0, 255);
  auto key = msg.routing_key().substr(0, 255);
  auto size = static_cast<uint32_t>(4 + 1 + tag.size() + 8 + 1 + 1 + exchange.size() + 1 +
                                    key.size());
  auto& out = self->state.out;
  size_t start = out.size();
  out.resize(start + 7 + size + 1);
  auto* p = reinterpret_cast<unsigned char*>(out.data() + start);
  auto be = [&p](auto x) {  // big-endian, as wide as x
    if constexpr (sizeof x == 2)
      x = __builtin_bswap16(x);
    else if constexpr (sizeof x == 4)
      x = __builtin_bswap32(x);
    else
      x = __builtin_bswap64(x);
    std::memcpy(p, &x, sizeof x);
    p += sizeof x;
  };
  auto shortstr = [&p](std::string_view s) {
    *p++ = static_cast<unsigned char>(s.size());
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  *p++ = 1;  // a method frame
  be(channel);
  be(size);
  be(uint16_t{60});  // basic
  be(uint16_t{60});  // deliver
  shortstr(tag);
  be(delivery_tag);
  *p++ = redelivered ? 1 : 0;
  shortstr(exchange);
  shortstr(key);
  *p = amqp::frame_end;
  amqp::encode_header_frame(out, channel, msg.body().size(), msg.properties());
  amqp::encode_body_frames(out, channel, msg.body(), self->state.frame_max);
}

void on_qos(actor* self, channel_rec& ch, amqp::basic_qos& m) {
  if (m.prefetch_size != 0)
    return connection_error(self, amqp::not_implemented,
                            "NOT_IMPLEMENTED - prefetch_size!=0 (" +
                              std::to_string(m.prefetch_size) + ")",
                            60, 10);
  if (m.global)
    ch.global_prefetch = m.prefetch_count;
  else
    ch.prefetch = m.prefetch_count;
  ch.credit_dirty = true;
  send_method(self, ch.number, amqp::basic_qos_ok{});
}

void on_consume(actor* self, channel_rec& ch, amqp::basic_consume& m) {
  auto& st = self->state;
  if (m.consumer_tag.empty())
    m.consumer_tag = "amq.ctag-" + random_token(22);
  for (auto id : ch.consumers)
    if (st.consumers[id].tag == m.consumer_tag)
      return connection_error(self, amqp::not_allowed,
                              "NOT_ALLOWED - attempt to reuse consumer tag '" + m.consumer_tag +
                                "'",
                              60, 20);
  if (m.queue == reply_to_queue) {
    // Direct reply-to: a pseudo-queue served by this channel (RabbitMQ semantics).
    if (!m.no_ack)
      return channel_error(self, ch, amqp::precondition_failed,
                           "PRECONDITION_FAILED - reply consumer cannot acknowledge", 60, 20);
    if (!ch.reply_tag.empty())
      return channel_error(self, ch, amqp::precondition_failed,
                           "PRECONDITION_FAILED - reply consumer already set", 60, 20);
    ch.reply_tag = m.consumer_tag;
    ch.reply_token = random_token(24);
    self->send(st.vhost, reply_to_atom::value, ch.reply_token, caf::actor_cast<caf::actor>(self));
    if (!m.no_wait) {
      amqp::basic_consume_ok ok;
      ok.consumer_tag = m.consumer_tag;
      send_method(self, ch.number, ok);
    }
    return;
  }
  if (m.queue.empty()) {
    if (ch.last_queue.empty())
      return channel_error(self, ch, amqp::not_found, "NOT_FOUND - no previously declared queue",
                           60, 20);
    m.queue = ch.last_queue;
  }
  if (!permitted(self, ch, access::perm::read, access::kind::queue, m.queue, 60, 20))
    return;
  int32_t priority = 0;
  if (auto p = amqp::find_field(m.arguments, "x-priority")) {
    if (auto v = p->as_int())
      priority = static_cast<int32_t>(*v);
  }
  auto n = ch.number;
  auto spec = consumer_spec{caf::actor_cast<caf::actor>(self), n, st.next_consumer_id++,
                            m.consumer_tag, m.no_ack, m.exclusive, priority, 0, nullptr};
  spec.prefetch = ch.prefetch;  // per consumer (stream queues need one)
  spec.global_qos = ch.global_prefetch != 0;
  spec.arguments = std::move(m.arguments);
  name_consumer(spec, st);
  auto queue_name = m.queue;
  bool no_wait = m.no_wait;
  when_routed(self, [=]() mutable {
    ask<lookup_result>(
      self, self->state.vhost,
      [=](lookup_result& r) mutable {
        auto& st = self->state;
        auto it = st.channels.find(n);
        if (it == st.channels.end() || it->second.closing)
          return;
        auto& ch = it->second;
        if (r.code != 0)
          return channel_error(self, ch, r.code, std::move(r.text), 60, 20);
        consumer_rec c;
        c.id = spec.consumer_id;
        c.channel = n;
        c.tag = spec.tag;
        c.queue = r.target;
        c.queue_name = queue_name;
        c.no_ack = spec.no_ack;
        c.prefetch = spec.no_ack ? 0 : ch.prefetch;
        uint32_t initial = window_of(*st.settings, c);
        if (!c.no_ack && ch.global_prefetch) {
          uint64_t used = ch.unacked.size() + ch.tx_settles.size();
          for (auto id : ch.consumers) {
            auto& o = st.consumers[id];
            if (!o.no_ack)
              used += o.granted - o.delivered;
          }
          initial = used >= ch.global_prefetch
                      ? 0
                      : std::min<uint32_t>(initial, static_cast<uint32_t>(ch.global_prefetch - used));
        }
        c.granted = initial;
        spec.credit = initial;
        auto queue = r.target;
        ask<op_result>(
          self, queue,
          [=](op_result& res) mutable {
            auto& st = self->state;
            auto it = st.channels.find(n);
            if (it == st.channels.end() || it->second.closing) {
              // The channel went away meanwhile: undo the registration.
              self->send(queue, cancel_atom::value, self->id(), c.id);
              return;
            }
            auto& ch = it->second;
            if (res.code != 0)
              return fail_method(self, ch, res.code, std::move(res.text), 60, 20);
            ch.consumers.push_back(c.id);
            st.consumers.emplace(c.id, c);
            if (res.stream)
              st.stream_queues.emplace(queue.address(), queue_name);
            self->monitor(queue);  // a crashed queue cancels its consumers (basic.cancel)
            if (!no_wait) {
              amqp::basic_consume_ok ok;
              ok.consumer_tag = c.tag;
              send_method(self, n, ok);
            }
          },
          consume_atom::value, std::move(spec));
      },
      lookup_atom::value, queue_atom::value, queue_name, caf::actor_cast<caf::actor>(self));
  });
}

void on_cancel(actor* self, channel_rec& ch, amqp::basic_cancel& m) {
  auto& st = self->state;
  auto n = ch.number;
  auto tag = m.consumer_tag;
  bool no_wait = m.no_wait;
  auto reply = [=] {
    if (!no_wait) {
      amqp::basic_cancel_ok ok;
      ok.consumer_tag = tag;
      send_method(self, n, ok);
    }
  };
  if (!ch.reply_tag.empty() && ch.reply_tag == tag) {
    ch.reply_tag.clear();
    return reply();
  }
  for (auto id : ch.consumers) {
    auto& c = st.consumers[id];
    if (c.tag != tag)
      continue;
    auto queue = c.queue;
    remove_consumer(self, id);
    // cancel-ok after the queue stopped: deliveries sent before it still arrive first.
    ask<op_result>(self, queue, [=](op_result&) { reply(); }, cancel_atom::value, self->id(), id);
    return;
  }
  reply();  // unknown tag: RabbitMQ answers cancel-ok as well
}

void on_get(actor* self, channel_rec& ch, amqp::basic_get& m) {
  if (m.queue.empty()) {
    if (ch.last_queue.empty())
      return channel_error(self, ch, amqp::not_found, "NOT_FOUND - no previously declared queue",
                           60, 70);
    m.queue = ch.last_queue;
  }
  if (!permitted(self, ch, access::perm::read, access::kind::queue, m.queue, 60, 70))
    return;
  auto n = ch.number;
  auto name = m.queue;
  bool no_ack = m.no_ack;
  when_routed(self, [=] {
    ask<lookup_result>(
      self, self->state.vhost,
      [=](lookup_result& r) {
        auto& st = self->state;
        auto it = st.channels.find(n);
        if (it == st.channels.end() || it->second.closing)
          return;
        if (r.code != 0)
          return channel_error(self, it->second, r.code, std::move(r.text), 60, 70);
        auto queue = r.target;
        ask<get_result>(
          self, queue,
          [=](get_result& g) {
            auto& st = self->state;
            auto it = st.channels.find(n);
            if (it == st.channels.end() || it->second.closing) {
              if (!g.empty && !no_ack)
                self->send(queue, requeue_atom::value, std::vector<uint64_t>{g.d.msg_id}, false);
              return;
            }
            auto& ch = it->second;
            if (g.code != 0)  // a stream
              return fail_method(self, ch, g.code, std::move(g.text), 60, 70);
            if (g.empty) {
              ++ch.counters.got_empty;
              send_method(self, n, amqp::basic_get_empty{});
              return;
            }
            auto tag = ch.next_tag++;
            ++(no_ack ? ch.counters.got_no_ack : ch.counters.got_ack);
            ch.counters.redelivered += g.d.redelivered ? 1 : 0;
            if (!no_ack) {
              ch.unacked.push_back(unacked_delivery{tag, queue, g.d.msg_id, 0});
              stamp_deliveries(self, ch, tag);
            }
            amqp::basic_get_ok ok;
            ok.delivery_tag = tag;
            ok.redelivered = g.d.redelivered;
            ok.exchange = g.d.msg->exchange();
            ok.routing_key = g.d.msg->routing_key();
            ok.message_count = g.message_count;
            auto& out = st.out;
            amqp::encode_method(out, n, ok);
            amqp::encode_header_frame(out, n, g.d.msg->body().size(),
                                       g.d.msg->properties());
            amqp::encode_body_frames(out, n, g.d.msg->body(), st.frame_max);
            if (st.tracing) {
              delivery_batch one;
              one.items.push_back(std::move(g.d));
              trace_deliveries(self, n, name, one);
            }
          },
          get_atom::value, caf::actor_cast<caf::actor>(self), no_ack);
      },
      lookup_atom::value, queue_atom::value, name, caf::actor_cast<caf::actor>(self));
  });
}

// Streams take acks only (RabbitMQ: a connection error for nack and reject). False when the
// nack or reject of `tag` (and those before it, with `multiple`) settles a stream's delivery.
bool stream_settle_allowed(actor* self, channel_rec& ch, uint64_t tag, bool multiple,
                           uint16_t cls, uint16_t mth) {
  auto& st = self->state;
  for (auto& u : ch.unacked) {
    if (multiple ? (tag != 0 && u.tag > tag) : u.tag != tag)
      continue;
    if (auto s = st.stream_queues.find(u.queue.address()); s != st.stream_queues.end()) {
      connection_error(self, amqp::not_implemented,
                       "NOT_IMPLEMENTED - " + nack_refusal(s->second, st.vhost_name), cls, mth);
      return false;
    }
  }
  return true;
}

void on_ack(actor* self, channel_rec& ch, uint64_t tag, bool multiple, bool requeue, bool discard,
            uint16_t cls, uint16_t mth) {
  if (mth != 80 && !self->state.stream_queues.empty() && !stream_settle_allowed(self, ch, tag,
                                                                                  multiple, cls, mth))
    return;
  // What it settles, as RabbitMQ collects it: with multiple and tag 0 everything outstanding
  // (AMQP 0-9-1 §1.8.3.13); otherwise the tag must be outstanding, and multiple takes every
  // delivery before it too.
  auto first = ch.unacked.begin(), last = ch.unacked.end();
  if (!multiple || tag != 0) {
    auto it = find_unacked(ch, tag);
    if (it == ch.unacked.end())
      return channel_error(self, ch, amqp::precondition_failed,
                           "PRECONDITION_FAILED - unknown delivery tag " + std::to_string(tag),
                           cls, mth);
    first = multiple ? ch.unacked.begin() : it;
    last = std::next(it);
  }
  for (auto it = first; it != last; ++it) {
    if (ch.tx)
      ch.tx_settles.push_back(tx_settle{*it, requeue, discard, mth == 80});
    else
      settle_one(self, ch, *it, requeue, discard);
  }
  if (mth == 80 && !ch.tx)
    ch.counters.acked += static_cast<uint64_t>(last - first);
  ch.unacked.erase(first, last);
  settled(ch);
}

void commit_settles(actor* self, channel_rec& ch) {
  for (auto& s : ch.tx_settles) {
    settle_one(self, ch, s.delivery, s.requeue, s.discard);
    ch.counters.acked += s.ack ? 1 : 0;
  }
  ch.tx_settles.clear();
}

void rollback_settles(channel_rec& ch) {
  if (ch.tx_settles.empty())
    return;
  // Back among the unacked, in tag order; the consumer timeout counts them from now.
  for (auto& s : ch.tx_settles)
    ch.unacked.push_back(std::move(s.delivery));
  ch.tx_settles.clear();
  std::sort(ch.unacked.begin(), ch.unacked.end(),
            [](const unacked_delivery& a, const unacked_delivery& b) { return a.tag < b.tag; });
  ch.delivered.restamp_front(ch.unacked.front().tag, coarse_now_ms());
}

void on_recover(actor* self, channel_rec& ch, bool requeue, bool reply) {
  if (!requeue)
    return connection_error(self, amqp::not_implemented, "NOT_IMPLEMENTED - requeue=false", 60,
                            reply ? 110 : 100);
  for (auto& u : ch.unacked)
    settle_one(self, ch, u, true);
  ch.unacked.clear();
  ch.delivered.clear();
  if (reply)
    send_method(self, ch.number, amqp::basic_recover_ok{});
}

void on_flow(actor* self, channel_rec& ch, bool active) {
  ch.flow = active;
  amqp::channel_flow_ok ok;
  ok.active = active;
  send_method(self, ch.number, ok);
  if (active) {
    auto held = std::move(ch.held);
    ch.held.clear();
    for (auto& b : held)
      on_deliver(self, b);
  }
  ch.credit_dirty = true;
}

void on_deliver(actor* self, delivery_batch& b) {
  auto& st = self->state;
  auto c = st.consumers.find(b.consumer_id);
  if (c == st.consumers.end()) {
    // The consumer was cancelled or its channel closed while these were on their way.
    std::vector<uint64_t> ids;
    for (auto& d : b.items)
      ids.push_back(d.msg_id);
    self->send(b.queue, requeue_atom::value, std::move(ids), false);
    return;
  }
  auto& cons = c->second;
  auto chit = st.channels.find(cons.channel);
  if (chit == st.channels.end())
    return;
  auto& ch = chit->second;
  if (!ch.flow) {
    ch.held.push_back(std::move(b));
    return;
  }
  if (!cons.no_ack && !b.items.empty())
    stamp_deliveries(self, ch, ch.next_tag);
  for (auto& d : b.items) {
    auto tag = ch.next_tag++;
    if (!cons.no_ack) {
      ch.unacked.push_back(unacked_delivery{tag, b.queue, d.msg_id, cons.id});
      ++cons.unacked;
    }
    ++cons.delivered;
    ++(cons.no_ack ? ch.counters.delivered_no_ack : ch.counters.delivered_ack);
    ch.counters.redelivered += d.redelivered ? 1 : 0;
    encode_delivery(self, ch.number, cons.tag, tag, d.redelivered, *d.msg);
  }
  if (st.tracing) [[unlikely]]
    trace_deliveries(self, ch.number, cons.queue_name, b);
  ch.credit_dirty = true;
}

void on_server_cancel(actor* self, uint64_t consumer_id) {
  auto& st = self->state;
  auto it = st.consumers.find(consumer_id);
  if (it == st.consumers.end())
    return;
  auto n = it->second.channel;
  auto tag = it->second.tag;
  remove_consumer(self, consumer_id);
  if (st.cancel_notify) {
    amqp::basic_cancel m;
    m.consumer_tag = tag;
    m.no_wait = true;
    send_method(self, n, m);
  }
}

void check_ack_timeouts(actor* self) {
  auto& st = self->state;
  st.ack_timer = false;
  int64_t timeout = st.settings->consumer_timeout_ms;
  if (timeout == 0 || st.ph != phase::running)
    return;
  auto now = coarse_now_ms();
  int64_t next = -1;  // when the next oldest delivery times out
  std::vector<uint16_t> expired;
  for (auto& [n, ch] : st.channels) {
    if (ch.closing || ch.unacked.empty())
      continue;
    auto at = ch.delivered.delivered_at(ch.unacked.front().tag);
    if (at < 0)
      continue;
    if (now - at >= timeout)
      expired.push_back(n);
    else if (next < 0 || at + timeout < next)
      next = at + timeout;
  }
  for (auto n : expired) {
    auto& ch = st.channels.at(n);
    auto id = ch.unacked.front().consumer_id;
    auto c = st.consumers.find(id);
    std::string who = id == 0                    ? "basic.get"
                      : c != st.consumers.end() ? "consumer '" + c->second.tag + "'"
                                                : "a cancelled consumer";
    spdlog::warn("AMQP connection {} (user '{}', vhost '{}'): {} on channel {} has timed out "
                 "waiting for delivery acknowledgement (consumer_timeout {} ms)",
                 st.peer, st.user, st.vhost_name, who, n, timeout);
    channel_error(self, ch, amqp::precondition_failed,
                  ack_timeout_text(n, static_cast<uint32_t>(timeout)));
  }
  if (!expired.empty())
    flush_out(self);
  if (next >= 0)
    arm_ack_check(self, st.ack_timer, next - now);
}

void release_channel(actor* self, channel_rec& ch) {
  auto& st = self->state;
  // An uncommitted transaction's acks never happened: those deliveries are requeued too.
  for (auto& s : ch.tx_settles)
    settle_one(self, ch, s.delivery, true);
  ch.tx_settles.clear();
  for (auto& u : ch.unacked)
    settle_one(self, ch, u, true);
  ch.unacked.clear();
  ch.delivered.clear();
  // Each queue drops the channel's consumers and takes back its unacknowledged messages in one
  // step: requeued apart, they could reach one of the channel's auto-ack consumers on its way
  // out and be lost. The acks and rejects still waiting go first.
  queue_release release;
  for (auto& [addr, r] : st.requeue_out)
    release.messages(r.first, r.second);
  st.requeue_out.clear();
  flush_acks(self);
  for (auto id : ch.consumers) {
    auto it = st.consumers.find(id);
    if (it == st.consumers.end())
      continue;
    release.consumer(it->second.queue, id);
    st.consumers.erase(it);
  }
  ch.consumers.clear();
  release.send_from(self);
  // Held back by channel.flow, never sent: ready again, not redelivered, once the consumers
  // they were for are gone.
  for (auto& b : ch.held) {
    std::vector<uint64_t> ids;
    for (auto& d : b.items)
      ids.push_back(d.msg_id);
    self->send(b.queue, requeue_atom::value, std::move(ids), false);
  }
  ch.held.clear();
  ch.tx_publishes.clear();
  ch.tracked.clear();
  ch.mandatory_pending = 0;
  if (ch.commit_pending) {  // nothing left to wait for on this channel
    ch.commit_pending = false;
    ch.tx_waiting = 0;
    st.awaiting = false;
  }
  ch.reply_tag.clear();
  flush_acks(self);
}

void flush_acks(actor* self) {
  auto& st = self->state;
  for (auto& [addr, ids] : st.acks_out) {
    if (ids.empty())
      continue;
    self->send(st.ack_targets[addr], ack_atom::value, std::move(ids));
  }
  for (auto& [addr, ids] : st.rejects_out)
    if (!ids.empty())  // dead-lettered where the queue has a dead-letter exchange
      self->send(st.ack_targets[addr], reject_atom::value, std::move(ids));
  st.acks_out.clear();
  st.rejects_out.clear();
  st.ack_targets.clear();
  for (auto& [addr, r] : st.requeue_out)
    if (!r.second.empty())
      self->send(r.first, requeue_atom::value, std::move(r.second), true);
  st.requeue_out.clear();
}

void refill_credit(actor* self) {
  auto& st = self->state;
  bool socket_ok = !st.session || st.session->unwritten() < net::amqp_session::write_high_water;
  bool blocked_by_socket = false;
  for (auto& [n, ch] : st.channels) {
    if (!ch.credit_dirty || ch.closing || !ch.flow)
      continue;
    ch.credit_dirty = false;
    int64_t channel_room = INT64_MAX;
    if (ch.global_prefetch) {
      int64_t used = static_cast<int64_t>(ch.unacked.size() + ch.tx_settles.size());
      for (auto id : ch.consumers) {
        auto& c = st.consumers[id];
        if (!c.no_ack)
          used += static_cast<int64_t>(c.granted - c.delivered);
      }
      channel_room = static_cast<int64_t>(ch.global_prefetch) - used;
    }
    for (auto id : ch.consumers) {
      auto& c = st.consumers[id];
      int64_t outstanding = static_cast<int64_t>(c.granted - c.delivered);
      int64_t window = window_of(*st.settings, c);
      int64_t room;
      if (c.prefetch) {
        room = window - outstanding - c.unacked;
      } else {
        if (!socket_ok) {
          blocked_by_socket = true;
          ch.credit_dirty = true;
          continue;
        }
        room = window - outstanding;
      }
      if (!c.no_ack)
        room = std::min(room, channel_room);
      // Grant in chunks to keep credit messages rare, but never leave a consumer stalled.
      int64_t chunk = std::max<int64_t>(1, window / 4);
      if (room <= 0 || (room < chunk && outstanding > 0))
        continue;
      c.granted += static_cast<uint64_t>(room);
      if (!c.no_ack && channel_room != INT64_MAX)
        channel_room -= room;
      self->send(c.queue, credit_atom::value, self->id(), c.id, static_cast<uint32_t>(room));
    }
  }
  if (blocked_by_socket && !st.drain_requested && st.session) {
    st.drain_requested = true;
    st.session->want_drained();
  }
}

}  // namespace warren::conn
