// Subscriptions of the STOMP connection actor: SUBSCRIBE (queues, topic and exchange
// subscriptions with queues of their own, durable topic subscriptions, temp queues, selectors),
// UNSUBSCRIBE, ACK / NACK in the three ack modes, MESSAGE frames from queue deliveries, and
// the credit that paces each subscription (prefetch-count, or a window that refills as the
// socket drains).
#include <algorithm>
#include <charconv>
#include <optional>

#include <spdlog/spdlog.h>

#include "actors/queue_release.hpp"
#include "actors/stomp_state.hpp"
#include "actors/stream_arguments.hpp"
#include "actors/trace.hpp"

namespace warren::stomp_conn {

namespace {

constexpr size_t reused_body_max = 64 << 10;

// message-id "T_<subscription>@@<seq>", written into `out` (whose capacity is reused).
void write_message_id(std::string& out, const subscription& s, uint64_t seq) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof(digits), seq).ptr;
  out.assign("T_");
  out += s.id;
  out += "@@";
  out.append(digits, end);
}

void set_header(std::pair<std::string, std::string>& h, std::string_view name,
                std::string_view value) {
  h.first.assign(name);
  h.second.assign(value);
}

// The destination header of a delivered message; successive messages mostly share it.
const std::string& destination_for(state& st, const message& msg) {
  auto& c = st.last_destination;
  if (!c.valid || msg.exchange() != c.exchange || msg.routing_key() != c.routing_key) {
    c.exchange.assign(msg.exchange());
    c.routing_key.assign(msg.routing_key());
    c.destination = stomp_map::destination_of(msg);
    c.valid = true;
  }
  return c.destination;
}

std::optional<uint64_t> seq_of(const std::string& id) {
  auto at = id.rfind("@@");
  if (at == std::string::npos)
    return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(id.data() + at + 2, id.data() + id.size(), v);
  if (ec != std::errc{} || p != id.data() + id.size())
    return std::nullopt;
  return v;
}

// durable:true or persistent:true on a SUBSCRIBE or UNSUBSCRIBE.
bool durable_requested(const stomp::frame& f) {
  for (const char* name : {"durable", "persistent"})
    if (auto v = f.header(name); v && *v == "true")
      return true;
  return false;
}

// RabbitMQ's adapter names a durable subscription by its id, so it refuses one without.
void missing_durable_id(actor* self) {
  fatal(self, "Missing Header", "Header 'id' is required for durable subscriptions");
}

// A durable topic subscription's queue name: stable across connections for the same
// client-id and subscription id.
std::string durable_queue_name(const state& st, const std::string& id) {
  std::string raw = st.client_id.empty() ? id : st.client_id + ":" + id;
  std::string name = "stomp-subscription-";
  for (char c : raw)
    name += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ? c : '_';
  return name;
}

// A stream's starting point as RabbitMQ's adapter reads the header: first, last, next,
// offset=N or timestamp=SECONDS; anything else is left out, which is next.
std::optional<amqp::field_value> stream_offset_header(const std::string& h) {
  if (h == "first" || h == "last" || h == "next")
    return amqp::field_value{h};
  auto number_after = [&](std::string_view prefix) -> std::optional<int64_t> {
    if (h.rfind(prefix, 0) != 0)
      return std::nullopt;
    int64_t n = 0;
    auto first = h.data() + prefix.size(), last = h.data() + h.size();
    auto [end, ec] = std::from_chars(first, last, n);
    if (ec != std::errc{} || end != last || first == last)
      return std::nullopt;
    return n;
  };
  if (auto n = number_after("offset="))
    return amqp::field_value{*n};
  if (auto s = number_after("timestamp="); s && *s >= 0)
    return amqp::field_value{amqp::timestamp_value{static_cast<uint64_t>(*s)}};
  return std::nullopt;
}

void start_consumer(actor* self, subscription sub, caf::actor queue, std::string queue_name,
                    std::shared_ptr<const stomp::selector::expression> selector,
                    stomp::frame request) {
  auto& st = self->state;
  sub.queue = queue;
  sub.queue_name = std::move(queue_name);
  sub.consumer_id = st.next_consumer_id++;
  uint32_t window = sub.prefetch ? sub.prefetch : st.settings->default_credit;
  sub.granted = window;
  consumer_spec spec{caf::actor_cast<caf::actor>(self), 0,   sub.consumer_id,
                     sub.id, sub.mode == ack_mode::auto_ack, false, 0, window, selector};
  spec.prefetch = sub.prefetch;
  name_consumer(spec, st);
  if (selector)
    if (auto text = request.header("selector"))
      spec.selector_text = std::string{*text};
  if (auto o = request.header("x-stream-offset"))
    if (auto v = stream_offset_header(*o))
      spec.arguments.emplace_back("x-stream-offset", std::move(*v));
  ask<op_result>(
    self, queue,
    [self, sub, request](op_result& r) {
      auto& st = self->state;
      if (r.code != 0)  // as RabbitMQ's adapter: the AMQP reply's name (access_refused)
        return fatal(self, stomp_map::error_name(r.text), r.text);
      st.sub_by_consumer[sub.consumer_id] = sub.id;
      auto& added = st.subs[sub.id] = sub;
      added.stream = r.stream;
      self->monitor(sub.queue);  // a crashed queue ends the subscription
      send_receipt(self, request);
    },
    consume_atom::value, std::move(spec));
}

void settle(actor* self, const unacked_message& u, bool requeue, bool discard = false) {
  auto& st = self->state;
  if (requeue) {
    self->send(u.queue, requeue_atom::value, std::vector<uint64_t>{u.msg_id}, true);
  } else if (discard) {  // NACK with requeue:false: dead-lettered where the queue says so
    self->send(u.queue, reject_atom::value, std::vector<uint64_t>{u.msg_id});
  } else {
    self->send(u.queue, ack_atom::value, std::vector<uint64_t>{u.msg_id});
    ++st.counters.acked;
  }
  auto sid = st.sub_by_consumer.find(u.consumer_id);
  if (sid != st.sub_by_consumer.end()) {
    auto s = st.subs.find(sid->second);
    if (s != st.subs.end() && s->second.unacked > 0)
      --s->second.unacked;
  }
}

}  // namespace

void subscribe_temp_queue(actor* self, const std::string& temp, const std::string& queue_name,
                          caf::actor queue) {
  // Replies to /temp-queue/x arrive without an explicit SUBSCRIBE (RabbitMQ semantics), through
  // a consumer that needs read on the queue as any other.
  if (!permitted(self, access::perm::read, access::kind::queue, queue_name))
    return;
  subscription sub;
  sub.id = "/temp-queue/" + temp;
  sub.destination = sub.id;
  sub.mode = ack_mode::auto_ack;
  auto& st = self->state;
  sub.queue = queue;
  sub.queue_name = queue_name;
  sub.consumer_id = st.next_consumer_id++;
  sub.granted = st.settings->default_credit;
  consumer_spec spec{caf::actor_cast<caf::actor>(self), 0, sub.consumer_id, sub.id, true, false,
                     0, st.settings->default_credit, nullptr};
  name_consumer(spec, st);
  st.sub_by_consumer[sub.consumer_id] = sub.id;
  st.subs[sub.id] = sub;
  self->monitor(queue);
  self->send(queue, consume_atom::value, std::move(spec));
}

void on_subscribe(actor* self, stomp::frame& f) {
  auto& st = self->state;
  auto dtext = f.header("destination");
  if (!dtext)
    return fatal(self, "Missing destination",
                 "\"SUBSCRIBE\" must include a 'destination' header\n");
  stomp_map::destination_error error;
  auto d = stomp_map::parse_destination(*dtext, error);
  if (!d)
    return fatal(self, error.message, error.detail);
  if (!f.header("id") && durable_requested(f))
    return missing_durable_id(self);
  subscription sub;
  sub.destination = *dtext;
  if (auto id = f.header("id")) {
    sub.id = *id;
  } else {  // the destination identifies the subscription (RabbitMQ's adapter, any version)
    sub.id = *dtext;
    sub.id_given = false;
  }
  if (st.subs.count(sub.id))
    return fatal(self, "Duplicated subscription identifier",
                 "A subscription identified by 'T_" + sub.id + "' already exists.");
  if (auto a = f.header("ack")) {
    if (*a == "client")
      sub.mode = ack_mode::client;
    else if (*a == "client-individual")
      sub.mode = ack_mode::client_individual;
    else if (*a != "auto")  // RabbitMQ's adapter's words for any value it cannot take
      return fatal(self, "Processing error", "ack must be auto, client or client-individual");
  }
  if (auto why = stomp_map::bad_integer_header(f))
    return fatal(self, "Processing error", *why);
  if (auto p = f.header("prefetch-count")) {
    auto n = stomp_map::parse_integer(*p);  // a negative one is no limit, as 0
    sub.prefetch = *n > 0 ? static_cast<uint32_t>(std::min<int64_t>(*n, UINT32_MAX)) : 0;
  }
  std::shared_ptr<const stomp::selector::expression> selector;
  if (auto s = f.header("selector"); s && !s->empty()) {  // an empty selector selects all
    auto parsed = stomp::selector::parse(*s);
    if (!parsed.expr)
      return fatal(self, "Invalid selector",
                   parsed.error ? "selector error at position " +
                                    std::to_string(parsed.error->position) + ": " +
                                    parsed.error->message
                                : "invalid selector");
    selector = parsed.expr;
  }
  auto request = f;
  switch (d->kind) {
    case stomp_map::dest_kind::topic:
    case stomp_map::dest_kind::exchange: {
      auto header_true = [&](const char* h) {
        auto v = f.header(h);
        return v && *v == "true";
      };
      sub.durable = d->kind == stomp_map::dest_kind::topic &&
                    (header_true("durable") || header_true("persistent"));
      // The subscription's queue is declared (configure), bound (write on it, read on the
      // exchange) and consumed (read), each checked as RabbitMQ's adapter's channel does.
      std::optional<queue_spec> spec;
      if (sub.durable) {
        spec.emplace();
        spec->owner = caf::actor_cast<caf::actor>(self);
        spec->name = durable_queue_name(st, sub.id);
        spec->durable = true;
        if (!permitted(self, access::perm::configure, access::kind::queue, spec->name))
          return;
      } else if (spec = server_named_spec(self, true, true, "stomp-subscription-"); !spec) {
        return;
      }
      if (!permitted(self, access::perm::write, access::kind::queue, spec->name) ||
          !permitted(self, access::perm::read, access::kind::exchange, d->name) ||
          !permitted(self, access::perm::read, access::kind::queue, spec->name))
        return;
      auto exchange = d->name;
      auto key = d->key;
      ask<queue_declared>(
        self, st.vhost,
        [self, sub, selector, request, exchange, key](queue_declared& q) {
          if (q.code != 0)
            return fatal(self, stomp_map::error_name(q.text), q.text);
          binding_spec b{exchange, q.name, false, key, {}, caf::actor_cast<caf::actor>(self)};
          auto& st = self->state;
          // Topic permissions: RabbitMQ's ERROR says it without the "ACCESS_REFUSED - ".
          if (st.topics.names(exchange) && !st.topics.allows(access::perm::read, exchange, key))
            b.topic_refused = access::topic_refused_reason(key, exchange, st.vhost_name, st.user);
          auto queue = q.queue;
          auto name = q.name;
          ask<op_result>(
            self, self->state.vhost,
            [self, sub, selector, request, queue, name](op_result& r) {
              if (r.code == amqp::access_refused)  // its text lacks "ACCESS_REFUSED - "
                return fatal(self, "access_refused", r.text);
              if (r.code != 0)
                return fatal(self, stomp_map::error_name(r.text), r.text);
              start_consumer(self, sub, queue, name, selector, request);
            },
            bind_atom::value, std::move(b));
        },
        declare_atom::value, queue_atom::value, std::move(*spec));
      return;
    }
    case stomp_map::dest_kind::temp_queue:
      return refuse_temp_queue(self, f);
    default:  // /reply-queue/x too: RabbitMQ's adapter consumes from the queue x
      if (d->kind == stomp_map::dest_kind::queue &&
          !permitted(self, access::perm::configure, access::kind::queue, d->name))
        return;
      with_queue(self, *d, f, [self, sub, selector, request](caf::actor q, std::string name) {
        if (!permitted(self, access::perm::read, access::kind::queue, name))
          return;
        start_consumer(self, sub, q, std::move(name), selector, request);
      });
  }
}

void on_unsubscribe(actor* self, stomp::frame& f) {
  auto& st = self->state;
  if (!f.header("id") && durable_requested(f))
    return missing_durable_id(self);
  std::string id, description;
  if (auto h = f.header("id")) {
    id = *h;
    description = "id='" + id + "'";
  } else if (auto d = f.header("destination")) {
    id = *d;
    description = "destination='" + id + "'";
  } else {
    return fatal(self, "Missing destination or id",
                 "UNSUBSCRIBE must include a 'destination' or 'id' header");
  }
  auto it = st.subs.find(id);
  if (it == st.subs.end())  // RabbitMQ's adapter's texts
    return fatal(self, "No subscription found",
                 "UNSUBSCRIBE must refer to an existing subscription.\nSubscription to \"" +
                   description + "\" not found.\n");
  auto sub = it->second;
  st.subs.erase(it);
  st.sub_by_consumer.erase(sub.consumer_id);
  auto request = f;
  bool drop_durable = sub.durable && f.header("durable") && *f.header("durable") == "true";
  ask<op_result>(
    self, sub.queue,
    [self, request, sub, drop_durable](op_result&) {
      if (drop_durable) {
        // Deleting the durable subscription's queue is a queue.delete: configure.
        if (!permitted(self, access::perm::configure, access::kind::queue, sub.queue_name))
          return;
        ask<op_result>(
          self, self->state.vhost, [self, request](op_result&) { send_receipt(self, request); },
          delete_atom::value, queue_atom::value, sub.queue_name,
          caf::actor_cast<caf::actor>(self), false, false);
        return;
      }
      send_receipt(self, request);
    },
    cancel_atom::value, self->id(), sub.consumer_id);
}

void on_ack(actor* self, const stomp::frame& f, bool nack) {
  auto& st = self->state;
  // STOMP 1.2 acks by `id` (the MESSAGE's ack header); 1.0 and 1.1 by message-id.
  auto id = st.version == stomp::version::v1_2 ? f.header("id") : f.header("message-id");
  if (!id)
    id = f.header("id") ? f.header("id") : f.header("message-id");
  // RabbitMQ's adapter's answers: a missing or malformed id is a protocol error, an id that
  // is not (or no longer) unacked is its channel's unknown delivery tag.
  const char* id_name = st.version == stomp::version::v1_2 ? "id" : "message-id";
  if (!id)
    return fatal(self, "Missing header",
                 "\"" + f.command + "\" must include the \"" + id_name + "\" header\n");
  auto seq = seq_of(*id);
  if (!seq)
    return fatal(self, "Invalid header",
                 "\"" + f.command + "\" must include a valid \"" + id_name + "\" header\n");
  // The id names its subscription ("T_" + its id + "@@" + the sequence number), which must
  // still be there: RabbitMQ's adapter acks through the subscription's consumer.
  std::string_view named = std::string_view{*id}.substr(0, id->rfind("@@"));
  if (named.substr(0, 2) != "T_" || !st.subs.count(std::string{named.substr(2)}))
    return fatal(self, "Subscription not found",
                 "Message with id \"" + *id + "\" has no subscription");
  auto pos = std::lower_bound(st.unacked.begin(), st.unacked.end(), *seq,
                              [](const unacked_message& u, uint64_t s) { return u.seq < s; });
  if (pos == st.unacked.end() || pos->seq != *seq)
    return fatal(self, "precondition_failed",
                 "PRECONDITION_FAILED - unknown delivery tag " + std::to_string(*seq));
  bool requeue = nack;
  if (auto r = f.header("requeue"); nack && r && *r == "false")
    requeue = false;
  auto sid = st.sub_by_consumer.find(pos->consumer_id);
  bool cumulative = false;
  if (sid != st.sub_by_consumer.end()) {
    auto s = st.subs.find(sid->second);
    cumulative = s != st.subs.end() && s->second.mode == ack_mode::client;
    if (nack && s != st.subs.end() && s->second.stream) {
      // RabbitMQ's adapter: the NACK's RECEIPT, then the channel dies of the stream's 540.
      send_receipt(self, f);
      return fatal(self, "AMQP channel died",
                   "Reason: {shutdown,{connection_closing,{server_initiated_close,540,\"" +
                     nack_refusal(s->second.queue_name, st.vhost_name) + "\"}}}");
    }
  }
  if (!cumulative) {
    settle(self, *pos, requeue, nack);
    st.unacked.erase(pos);
    st.delivered.settled(st.unacked, &unacked_message::seq);
    return;
  }
  // client mode: this message and every earlier one of the same subscription.
  auto consumer = pos->consumer_id;
  auto end = std::next(pos);
  for (auto it = st.unacked.begin(); it != end;) {
    if (it->consumer_id == consumer) {
      settle(self, *it, requeue, nack);
      it = st.unacked.erase(it);
      end = std::find_if(it, st.unacked.end(),
                         [&](const unacked_message& u) { return u.seq > *seq; });
    } else {
      ++it;
    }
  }
  st.delivered.settled(st.unacked, &unacked_message::seq);
}

namespace {

// The firehose: the traces of deliveries from `queue` (while tracing; out of line, so that the
// delivery path stays as it was without it).
[[gnu::noinline, gnu::cold]] void trace_deliveries(actor* self, std::string_view queue,
                                                    const delivery_batch& b) {
  auto& st = self->state;
  trace::add_deliveries(st.traces, b, queue, trace_origin_of(self));
  trace::send(self, st.vhost, st.traces);
}

}  // namespace

void on_deliver(actor* self, delivery_batch& b) {
  auto& st = self->state;
  auto sid = st.sub_by_consumer.find(b.consumer_id);
  auto sit = sid == st.sub_by_consumer.end() ? st.subs.end() : st.subs.find(sid->second);
  if (sit == st.subs.end()) {
    std::vector<uint64_t> ids;
    for (auto& d : b.items)
      ids.push_back(d.msg_id);
    self->send(b.queue, requeue_atom::value, std::move(ids), false);
    return;
  }
  auto& sub = sit->second;
  bool temp = sub.destination.rfind("/temp-queue/", 0) == 0;
  // One frame for the batch: its header strings keep their capacity from message to message.
  auto& m = st.message_frame;
  m.command = "MESSAGE";
  if (sub.mode != ack_mode::auto_ack && !b.items.empty())
    stamp_deliveries(self, st.delivered, st.ack_timer, st.settings->consumer_timeout_ms,
                     st.next_seq);
  for (auto& d : b.items) {
    auto seq = st.next_seq++;
    bool with_ack = sub.mode != ack_mode::auto_ack && st.version == stomp::version::v1_2;
    // A subscription header only for a SUBSCRIBE that had an id, as the STOMP 1.0 spec and
    // RabbitMQ's adapter have it.
    size_t at = sub.id_given ? 1 : 0;
    m.headers.resize(at + (with_ack ? 4 : 3));
    if (sub.id_given)
      set_header(m.headers[0], "subscription", sub.id);
    set_header(m.headers[at], "destination", temp ? sub.destination : destination_for(st, *d.msg));
    m.headers[at + 1].first.assign("message-id");
    write_message_id(m.headers[at + 1].second, sub, seq);
    set_header(m.headers[at + 2], "redelivered", d.redelivered ? "true" : "false");
    if (with_ack)
      set_header(m.headers[at + 3], "ack", m.headers[at + 1].second);
    if (sub.mode != ack_mode::auto_ack) {
      st.unacked.push_back(unacked_message{seq, b.queue, d.msg_id, sub.consumer_id});
      ++sub.unacked;
    }
    stomp_map::add_message_headers(*d.msg, m);
    m.body.assign(d.msg->body());
    ++sub.delivered;
    ++(sub.mode == ack_mode::auto_ack ? st.counters.delivered_no_ack
                                      : st.counters.delivered_ack);
    st.counters.redelivered += d.redelivered ? 1 : 0;
    send_frame(self, m);
  }
  if (st.tracing) [[unlikely]]
    trace_deliveries(self, sub.queue_name, b);
  // Keep the capacity small messages reuse, not that of a large body: an idle connection
  // would hold it for as long as it lives.
  if (m.body.capacity() > reused_body_max)
    m.body = std::string{};
}

void on_server_cancel(actor* self, uint64_t consumer_id) {
  auto& st = self->state;
  auto sid = st.sub_by_consumer.find(consumer_id);
  if (sid == st.sub_by_consumer.end())
    return;
  auto id = sid->second;
  st.sub_by_consumer.erase(sid);
  st.subs.erase(id);
  fatal(self, "Subscription cancelled", "the queue of subscription '" + id + "' was deleted");
}

void check_ack_timeout(actor* self) {
  auto& st = self->state;
  st.ack_timer = false;
  int64_t timeout = st.settings->consumer_timeout_ms;
  if (timeout == 0 || st.closing || st.unacked.empty())
    return;
  auto at = st.delivered.delivered_at(st.unacked.front().seq);
  if (at < 0)
    return;
  auto now = coarse_now_ms();
  if (now - at < timeout) {
    arm_ack_check(self, st.ack_timer, at + timeout - now);
    return;
  }
  // RabbitMQ's adapter: its channel (number 1) is closed with the 406, which it reports as
  // an ERROR frame before it closes the connection.
  fatal(self, "precondition_failed", ack_timeout_text(1, static_cast<uint32_t>(timeout)));
}

void release_subscriptions(actor* self) {
  auto& st = self->state;
  // Each queue drops the subscriptions' consumers and takes back the unacknowledged messages
  // (those of subscriptions already gone too) in one step: requeued apart, they could reach
  // one of this connection's auto-ack subscriptions on its way out and be lost.
  queue_release release;
  for (auto& u : st.unacked)
    release.message(u.queue, u.msg_id);
  st.unacked.clear();
  st.delivered.clear();
  for (auto& [id, sub] : st.subs)
    release.consumer(sub.queue, sub.consumer_id);
  st.subs.clear();
  st.sub_by_consumer.clear();
  release.send_from(self);
}

void refill_credit(actor* self) {
  auto& st = self->state;
  bool socket_ok = !st.session || st.session->unwritten() < net::socket_session::write_high_water;
  bool blocked = false;
  for (auto& [id, sub] : st.subs) {
    int64_t window = sub.prefetch ? sub.prefetch : st.settings->default_credit;
    int64_t outstanding = static_cast<int64_t>(sub.granted - sub.delivered);
    int64_t room;
    if (sub.prefetch && sub.mode != ack_mode::auto_ack) {
      room = window - outstanding - sub.unacked;
    } else {
      if (!socket_ok) {
        blocked = true;
        continue;
      }
      room = window - outstanding;
    }
    int64_t chunk = std::max<int64_t>(1, window / 4);
    if (room <= 0 || (room < chunk && outstanding > 0))
      continue;
    sub.granted += static_cast<uint64_t>(room);
    self->send(sub.queue, credit_atom::value, self->id(), sub.consumer_id,
               static_cast<uint32_t>(room));
  }
  if (blocked && !st.drain_requested && st.session) {
    st.drain_requested = true;
    st.session->want_drained();
  }
}

}  // namespace warren::stomp_conn
