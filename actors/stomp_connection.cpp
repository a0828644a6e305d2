// The STOMP connection actor (one per STOMP client): lifecycle, CONNECT, the frame loop, SEND,
// transactions and receipts. Subscriptions and acks are in stomp_subscriptions.cpp.
//
// Jobs: negotiate the version (STOMP 1.2 "Protocol Negotiation"), authenticate against the same
// users as AMQP, agree on heart-beats; handle frames in arrival order, pausing while a
// destination is resolved or declared through the vhost; publish into the same exchange and
// queue actors AMQP uses (messages are stored in AMQP form, see stomp_mapping); answer every
// frame carrying `receipt` with RECEIPT (for SEND once the message is enqueued); report a
// fault with ERROR (a `message` header and a body), then close.
// Talks to: its session (frames), the vhost (lookups, declarations, bindings), exchanges and
// queues (publishes, consumes, acks).
#include "actors/stomp_connection.hpp"

#include <charconv>
#include <random>

#include <spdlog/spdlog.h>

#include "actors/hardening.hpp"
#include "actors/queue_arguments.hpp"
#include "actors/registry_actor.hpp"
#include "actors/stomp_state.hpp"
#include "actors/trace.hpp"

namespace warren::stomp_conn {

namespace {

// Commands this actor gives the frames it queues for itself. A space is never in a command from
// the wire (visible ASCII only), so no client can send these.
const std::string receipt_only = "RECEIPT ONLY";
const std::string committed_send = "COMMITTED SEND";

std::string random_id(size_t n = 20) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  for (size_t i = 0; i < n; ++i)
    s += alphabet[rng() % 36];
  return s;
}

const char* version_text(stomp::version v) {
  switch (v) {
    case stomp::version::v1_0:
      return "1.0";
    case stomp::version::v1_1:
      return "1.1";
    default:
      return "1.2";
  }
}

std::pair<uint64_t, uint64_t> parse_heart_beat(const std::string* h) {
  if (!h)
    return {0, 0};
  auto comma = h->find(',');
  if (comma == std::string::npos)
    return {0, 0};
  uint64_t cx = 0, cy = 0;
  std::from_chars(h->data(), h->data() + comma, cx);
  std::from_chars(h->data() + comma + 1, h->data() + h->size(), cy);
  return {cx, cy};
}

void on_connect(actor* self, stomp::frame& f) {
  auto& st = self->state;
  auto v = net::negotiate_version(f);
  if (!v) {
    // RabbitMQ's adapter: the versions it speaks in the ERROR's version header, as in every
    // ERROR it sends, and in its body (STOMP 1.2 "Protocol Negotiation").
    return fatal(self, "Version mismatch", "Supported versions are 1.0,1.1,1.2\n");
  }
  st.version = *v;
  if (st.session)  // the TLS handshake, if any, is over: CONNECT came through it
    st.tls = st.session->tls_info();
  // Without `login` the default user connects (RabbitMQ's implicit connect), or, with
  // stomp.ssl_cert_login, the user the client's certificate names.
  auto login = f.header("login");
  auto passcode = f.header("passcode");
  std::string user = login ? *login : std::string{"guest"};
  bool cert_login = !login && st.settings->stomp_cert_login && st.tls.has_peer_cert();
  if (cert_login)
    user = certificate_user(st.tls, st.settings->cert_login_common_name);
  std::string vhost = f.header("host") ? *f.header("host") : std::string{"/"};
  auto heart_beat = parse_heart_beat(f.header("heart-beat"));
  std::string client_id = f.header("client-id") ? *f.header("client-id") : std::string{};
  auto with_vhost = [self, user, heart_beat, client_id](vhost_access& r, std::string vhost) {
    auto& st = self->state;
    if (!r.granted) {
      spdlog::warn("STOMP connection {}: user '{}' has no permissions in vhost '{}'", st.peer,
                   user, vhost);
      return fatal(self, "Bad CONNECT", "Virtual host '" + vhost + "' access denied");
    }
    auto& p = r.permissions;
    st.perms = access::vhost_permissions{p.configure, p.write, p.read};
    st.topics = access::topic_permissions{r.topics, user, vhost};
    st.user = user;
    st.vhost_name = vhost;
    st.vhost = r.target;
    st.tracing = r.tracing;
    self->monitor(st.vhost);  // a deleted (or restarting) vhost closes its connections
    st.client_id = client_id;
    st.session_id = "session-" + random_id();
    st.connected = true;
    st.channel.emplace();
    stomp::frame ok;
    ok.command = "CONNECTED";
    ok.headers.emplace_back("version", version_text(st.version));
    ok.headers.emplace_back("session", st.session_id);
    ok.headers.emplace_back("server", "Warren/0.1.0");
    {
      // STOMP 1.1 "Heart-beating": the client can send every cx ms and wants to hear every
      // cy. RabbitMQ answers with a heart-beat header for 1.0 clients too.
      auto [cx, cy] = heart_beat;
      ok.headers.emplace_back("heart-beat", std::to_string(cy) + "," + std::to_string(cx));
      auto send_every = std::chrono::milliseconds(cy);
      auto timeout = std::chrono::milliseconds(cx == 0 ? 0 : cx * 2 + 500);
      if (st.session)
        st.session->set_heartbeat(send_every, timeout, "\n");
    }
    send_frame(self, ok);
    st.stats.collector = metrics::find_collector(self->home_system());
    st.stats.reporting = true;
    report(self, st.stats.collector, false);
    spdlog::info("accepted STOMP connection {} (user '{}', vhost '{}', version {})", st.peer,
                 st.user, st.vhost_name, version_text(st.version));
  };
  // host names the vhost when such a vhost exists; otherwise the default vhost.
  // The connection joins a vhost's group before the registry answers, so that a permission
  // change made after the answer reaches it.
  // A connection or channel limit (registry_actor.hpp) answers as RabbitMQ's adapter does.
  auto over_limit = [self](const vhost_access& r, const std::string& vhost) {
    if (r.limit.empty())
      return false;
    spdlog::warn("STOMP connection {}: {}", self->state.peer, r.text);
    if (r.limit == "max-channels")
      fatal(self, "Processing error", "Processing error");
    else
      fatal(self, "Bad CONNECT", "Virtual host '" + vhost + "' access denied");
    return true;
  };
  auto open_vhost = [self, vhost, user, with_vhost, over_limit] {
    self->join(vhost_group(self->home_system(), vhost));
    ask<vhost_access>(
      self, current_registry(self->home_system()),
      [self, vhost, user, with_vhost, over_limit](vhost_access& r) {
        if (over_limit(r, vhost))
          return;
        if (r.code == 0)
          return with_vhost(r, vhost);
        self->leave(vhost_group(self->home_system(), vhost));
        self->join(vhost_group(self->home_system(), "/"));
        ask<vhost_access>(
          self, current_registry(self->home_system()),
          [self, with_vhost, over_limit](vhost_access& r) {
            if (over_limit(r, "/"))
              return;
            if (r.code != 0)
              return fatal(self, "Bad CONNECT", "Virtual host '/' access denied");
            with_vhost(r, "/");
          },
          admit_atom::value, vhost_atom::value, std::string{"/"}, user, int32_t{1});
      },
      admit_atom::value, vhost_atom::value, vhost, user, int32_t{1});
  };
  auto on_login = [self, user, open_vhost](login_result& r) {
    if (r.loopback_only) {
      spdlog::warn("STOMP connection {}: login refused for user '{}': it may only connect "
                   "through a loopback address (loopback_users)",
                   self->state.peer, user);
      return fatal(self, "Bad CONNECT", "non-loopback access denied");
    }
    if (!r.ok) {
      spdlog::warn("STOMP connection {}: login refused for user '{}'", self->state.peer, user);
      return fatal(self, "Bad CONNECT", "Access refused for user '" + user + "'\n");
    }
    open_vhost();
  };
  if (login && !cert_login)
    ask<login_result>(self, current_registry(self->home_system()), on_login, login_atom::value,
                      user, passcode ? *passcode : std::string{}, st.local_loopback);
  else
    ask<login_result>(self, current_registry(self->home_system()), on_login, login_atom::value,
                      user, st.local_loopback);
}

// The firehose's trace of a SEND to the default exchange (while tracing; out of line, so that
// the SEND path stays as it was without it).
[[gnu::noinline, gnu::cold]] void trace_direct(actor* self, const message& msg) {
  self->state.traces.push_back(
    publish_item{trace::publish(msg, trace_origin_of(self), trace::default_exchange_queues(msg))});
}

void publish_message(actor* self, const stomp::frame& f, const caf::actor& target,
                     bool to_exchange, std::string exchange, std::string key) {
  auto& st = self->state;
  // A STOMP header is a string, and RabbitMQ refuses a CC or BCC header that is not an array
  // (sender-selected distribution, protocol/amqp091/header_routes.hpp).
  for (const char* name : {"CC", "BCC"})
    if (f.header(name))
      return fatal(self, "precondition_failed",
                   std::string{"PRECONDITION_FAILED - invalid message: "
                               "{unacceptable_type_in_header,\""} +
                     name + "\",longstr}");
  uint8_t delivery_mode = 0;
  auto properties = stomp_map::properties_from_send(f, delivery_mode);
  auto msg =
    message::make({exchange, key, properties, delivery_mode, true, f.header("expiration") != nullptr},
                  std::string_view{f.body});
  ++st.counters.published;
  if (st.tracing && !to_exchange) [[unlikely]]  // the default exchange: routed here
    trace_direct(self, *msg);
  publish_item item{std::move(msg), 0, 0};
  if (auto r = f.header("receipt")) {
    item.seq = ++st.publish_seq;
    item.weight = full_weight;
    st.receipts.emplace(item.seq, std::make_pair(uint64_t{0}, *r));
  }
  if (!target) {  // unroutable: the message is dropped, a receipt still goes out
    if (f.header("receipt")) {
      send_receipt(self, f);
      st.receipts.erase(st.publish_seq);
    }
    return;
  }
  bool full = st.batched.add(item.msg->body().size());
  auto o = std::find_if(st.outgoing.begin(), st.outgoing.end(),
                        [&](const auto& out) { return out.first == target; });
  if (o == st.outgoing.end()) {
    o = st.outgoing.emplace(st.outgoing.end(), target, publish_batch{});
    o->second.publisher = caf::actor_cast<caf::actor>(self);
    if (to_exchange) {
      ++st.routes_in_flight;
      if (st.tracing)  // the exchange traces what it routes
        o->second.trace.push_back(trace_origin_of(self));
    }
  }
  o->second.items.push_back(std::move(item));
  if (full)
    flush_publishes(self);
}

void on_send(actor* self, stomp::frame& f);

// reply-to: /temp-queue/x is this connection's private queue; others see /reply-queue/<name>.
bool rewrite_reply_to(actor* self, stomp::frame& f) {
  auto& st = self->state;
  auto rt = f.header("reply-to");
  if (!rt || rt->rfind("/temp-queue/", 0) != 0)
    return true;
  auto temp = rt->substr(std::string_view{"/temp-queue/"}.size());
  auto it = st.temp_queues.find(temp);
  if (it != st.temp_queues.end()) {
    f.set("reply-to", "/reply-queue/" + it->second);
    return true;
  }
  auto spec = server_named_spec(self, true, true);
  if (!spec)
    return false;
  ask<queue_declared>(
    self, st.vhost,
    [self, temp](queue_declared& r) {
      if (r.code != 0)
        return fatal(self, stomp_map::error_name(r.text), r.text);
      self->state.temp_queues[temp] = r.name;
      subscribe_temp_queue(self, temp, r.name, r.queue);
    },
    declare_atom::value, queue_atom::value, std::move(*spec));
  retry_current(self, std::move(f));
  return false;
}

void on_send(actor* self, stomp::frame& f) {
  auto& st = self->state;
  if (st.alarms.raised() && !st.alarms.blocked) {
    // A memory or disk alarm: as RabbitMQ's adapter, this SEND still goes, and every frame
    // after it waits until the alarms clear.
    st.alarms.blocked = true;
    spdlog::info("STOMP connection {} (user '{}'): blocked, {}", st.peer, st.user,
                 alarm_reason(st.alarms.memory, st.alarms.disk));
  }
  auto dtext = f.header("destination");
  if (!dtext)
    return fatal(self, "Missing destination", "\"SEND\" must include a 'destination' header\n");
  stomp_map::destination_error error;
  auto d = stomp_map::parse_destination(*dtext, error);
  if (!d)
    return fatal(self, error.message, error.detail);
  if (d->kind == stomp_map::dest_kind::temp_queue)
    return refuse_temp_queue(self, f);
  // RabbitMQ's adapter declares /queue/x before each SEND (configure), then publishes to the
  // exchange (write): "" for queues. Checked before a reply-to queue is made for it.
  using access::kind;
  using access::perm;
  static const std::string default_exchange;
  bool to_queue = d->kind != stomp_map::dest_kind::topic &&
                  d->kind != stomp_map::dest_kind::exchange;
  if ((d->kind == stomp_map::dest_kind::queue &&
       !permitted(self, perm::configure, kind::queue, d->name)) ||
      !permitted(self, perm::write, kind::exchange, to_queue ? default_exchange : d->name))
    return;
  if (!rewrite_reply_to(self, f))
    return;
  if (to_queue && st.routes_in_flight) {
    // Publish order: what went to exchanges before must have reached its queues first.
    flush_publishes(self);
    st.awaiting = st.waiting_routes = true;
    retry_current(self, std::move(f));
    return;
  }
  switch (d->kind) {
    case stomp_map::dest_kind::topic:
    case stomp_map::dest_kind::exchange: {
      auto it = st.exchange_cache.find(d->name);
      if (it != st.exchange_cache.end()) {
        if (!st.topics.empty() && st.topic_exchanges.count(d->name) &&
            !st.topics.allows(perm::write, d->name, d->key))
          return fatal(self, "access_refused",
                       access::topic_refused_text(d->key, d->name, st.vhost_name, st.user));
        return publish_message(self, f, it->second, true, d->name, d->key);
      }
      if (st.negative_lookup == d->name) {
        st.negative_lookup.clear();
        return fatal(self, "not_found",
                     "NOT_FOUND - no exchange '" + d->name + "' in vhost '" + st.vhost_name + "'");
      }
      auto name = d->name;
      ask<lookup_result>(
        self, st.vhost,
        [self, name](lookup_result& r) {
          auto& st = self->state;
          if (r.code != 0) {
            st.negative_lookup = name;
            return;
          }
          st.exchange_cache[name] = r.target;
          self->monitor(r.target);
          if (r.topic)
            st.topic_exchanges.insert(name);
          else
            st.topic_exchanges.erase(name);
        },
        lookup_atom::value, exchange_atom::value, name);
      retry_current(self, std::move(f));
      return;
    }
    // Sent to the default exchange with the queue's name as key, as RabbitMQ's adapter sends
    // it: no queue by that name, and the message is dropped (the RECEIPT still comes).
    case stomp_map::dest_kind::amq_queue:
    case stomp_map::dest_kind::reply_queue: {
      auto it = st.queue_cache.find(d->name);
      if (it != st.queue_cache.end())
        return publish_message(self, f, it->second, false, "", d->name);
      if (st.negative_lookup == d->name) {
        st.negative_lookup.clear();
        return publish_message(self, f, {}, false, "", d->name);
      }
      auto name = d->name;
      ask<lookup_result>(
        self, st.vhost,
        [self, name](lookup_result& r) {
          if (r.code == 0) {
            self->state.queue_cache[name] = r.target;
            self->monitor(r.target);
          } else {
            self->state.negative_lookup = name;
          }
        },
        lookup_atom::value, queue_atom::value, name, caf::actor{});
      retry_current(self, std::move(f));
      return;
    }
    default: {
      // A queue already known: no lookup, and no copy of the frame for later.
      if (auto it = st.queue_cache.find(d->name); it != st.queue_cache.end())
        return publish_message(self, f, it->second, false, "", d->name);
      auto frame = f;
      with_queue(self, *d, f, [self, frame](caf::actor q, std::string name) {
        publish_message(self, frame, q, false, "", name);
      });
      return;
    }
  }
}

void unknown_transaction(actor* self, const std::string& tx) {
  fatal(self, "Bad transaction", "Invalid transaction identifier: \"" + tx + "\"\n");
}

void on_transaction(actor* self, stomp::frame& f) {
  auto& st = self->state;
  auto tx = f.header("transaction");
  if (!tx)
    return fatal(self, "Missing transaction",
                 "\"" + f.command + "\" must include a 'transaction' header\n");
  auto it = st.transactions.find(*tx);
  if (f.command == "BEGIN") {
    // RabbitMQ's adapter: a BEGIN of a transaction already begun starts it again, empty.
    st.transactions[*tx].clear();
    return send_receipt(self, f);
  }
  if (it == st.transactions.end())
    return unknown_transaction(self, *tx);
  if (f.command == "ABORT") {
    st.transactions.erase(it);
    return send_receipt(self, f);
  }
  // COMMIT: replay the buffered frames in order, ahead of whatever follows.
  auto frames = std::move(it->second);
  st.transactions.erase(it);
  stomp::frame done = f;
  done.command = receipt_only;
  st.pending.push_front(pending_frame{std::move(done), st.current_bytes});
  st.current_bytes = 0;
  for (auto i = frames.rbegin(); i != frames.rend(); ++i) {
    auto& fr = *i;
    if (fr.command == "SEND") {
      // Marked as committed rather than stripped of its transaction header: a SEND keeps
      // every header in the message, as on RabbitMQ.
      fr.command = committed_send;
    } else {
      for (auto h = fr.headers.begin(); h != fr.headers.end();)
        h = h->first == "transaction" ? fr.headers.erase(h) : std::next(h);
    }
    st.pending.push_front(pending_frame{std::move(fr), 0});
  }
}

void handle(actor* self, stomp::frame& f) {
  auto& st = self->state;
  if (st.closing)
    return;
  if (!st.connected) {
    if (f.command == "CONNECT" || f.command == "STOMP")
      return on_connect(self, f);
    return fatal(self, "Illegal command", "You must log in using CONNECT first");
  }
  if (f.command == receipt_only)
    return send_receipt(self, f);
  if (f.command == committed_send) {
    f.command = "SEND";
    return on_send(self, f);
  }
  // A message's id is the broker's to give (RabbitMQ's adapter refuses it the same way); a
  // client's own id goes in amqp-message-id.
  if (f.command == "SEND" && f.header("message-id"))
    return fatal(self, "Invalid header", "'message-id' is not allowed on 'SEND'.\n");
  if (f.command == "SEND")
    if (auto why = stomp_map::bad_integer_header(f))
      return fatal(self, "Processing error", *why);
  if (auto u = f.header("user-id"); u && f.command == "SEND" && *u != st.user)
    return fatal(self, "precondition_failed",
                 "PRECONDITION_FAILED - user_id property set to '" + *u +
                   "' but authenticated user was '" + st.user + "'");
  if (auto e = f.header("expiration"); e && f.command == "SEND") {
    std::string why;  // a per-message TTL, checked as AMQP publishes are (in or out of a transaction)
    if (!parse_expiration(*e, why))
      return fatal(self, "precondition_failed",
                   "PRECONDITION_FAILED - invalid expiration '" + *e + "': " + why);
  }
  if ((f.command == "SEND" || f.command == "ACK" || f.command == "NACK") &&
      f.header("transaction")) {
    auto it = st.transactions.find(*f.header("transaction"));
    if (it == st.transactions.end())
      return unknown_transaction(self, *f.header("transaction"));
    // Done at COMMIT (and never at ABORT), as RabbitMQ's adapter does it; a SEND's receipt
    // waits for the COMMIT with it, an ACK's or NACK's goes at once.
    if (f.command != "SEND") {
      send_receipt(self, f);
      for (auto h = f.headers.begin(); h != f.headers.end();)
        h = h->first == "receipt" ? f.headers.erase(h) : std::next(h);
    }
    it->second.push_back(std::move(f));
    return;
  }
  if (f.command == "SEND")
    return on_send(self, f);
  flush_publishes(self);  // whatever this frame does comes after the SENDs before it
  if (f.command == "SUBSCRIBE")
    return on_subscribe(self, f);
  if (f.command == "UNSUBSCRIBE")
    return on_unsubscribe(self, f);
  if (f.command == "ACK" || f.command == "NACK") {
    on_ack(self, f, f.command == "NACK");
    if (!self->state.closing)
      send_receipt(self, f);
    return;
  }
  if (f.command == "BEGIN" || f.command == "COMMIT" || f.command == "ABORT")
    return on_transaction(self, f);
  if (f.command == "DISCONNECT") {
    // Cancel before the RECEIPT: whatever the client sends after seeing it must not reach
    // this connection's subscriptions any more.
    release_subscriptions(self);
    send_receipt(self, f);
    st.closing = true;
    flush_out(self);
    if (st.session)
      st.session->close();
    return;
  }
  if (f.command == "CONNECT" || f.command == "STOMP")
    return fatal(self, "Already connected", "CONNECT may be sent once");
  fatal(self, "Bad command", "Could not interpret command \"" + f.command + "\"\n");
}

void on_weights(actor* self, std::vector<weight_return>& returns) {
  auto& st = self->state;
  for (auto& r : returns) {
    auto it = st.receipts.find(r.seq);
    if (it == st.receipts.end())
      continue;
    it->second.first += r.weight;
    if (it->second.first >= full_weight) {
      stomp::frame receipt;
      receipt.command = "RECEIPT";
      receipt.headers.emplace_back("receipt-id", it->second.second);
      send_frame(self, receipt);
      st.receipts.erase(it);
    }
  }
}

}  // namespace

void send_frame(actor* self, const stomp::frame& f) {
  stomp::encode_to(self->state.out, f, self->state.version);
}

void send_receipt(actor* self, const stomp::frame& request) {
  auto r = request.header("receipt");
  if (!r)
    return;
  stomp::frame receipt;
  receipt.command = "RECEIPT";
  receipt.headers.emplace_back("receipt-id", *r);
  send_frame(self, receipt);
}

trace_origin trace_origin_of(actor* self) {
  auto& st = self->state;
  return trace_origin{st.settings->node, st.vhost_name, st.peer + " -> " + st.local, st.user, 1};
}

void flush_publishes(actor* self) {
  auto& st = self->state;
  if (!st.traces.empty()) [[unlikely]]
    trace::send(self, st.vhost, st.traces);  // a publish's trace goes before the message
  for (auto& [target, b] : st.outgoing) {
    st.flow.credit.spend(target, b);
    self->send(target, publish_atom::value, std::move(b));
  }
  st.outgoing.clear();
  st.batched.reset();
}

void flush_out(actor* self) {
  auto& st = self->state;
  if (!st.out.empty() && st.session) {
    st.stats.send_oct += st.out.size();
    ++st.stats.send_cnt;
    st.session->write(std::move(st.out));
    st.out = std::string{};
  }
}

void fatal(actor* self, std::string message, std::string detail) {
  auto& st = self->state;
  if (st.closing)
    return;
  spdlog::warn("STOMP connection {} (user '{}', vhost '{}'): error: {} {}", st.peer, st.user,
               st.vhost_name, message, detail);
  stomp::frame err;
  err.command = "ERROR";
  err.headers.emplace_back("message", message);
  err.headers.emplace_back("content-type", "text/plain");
  err.headers.emplace_back("version", "1.0,1.1,1.2");  // as every ERROR of RabbitMQ's adapter
  err.body = detail.empty() ? message : detail;
  send_frame(self, err);
  flush_publishes(self);  // the SENDs before the error stand
  release_subscriptions(self);
  st.closing = true;
  st.pending.clear();
  flush_out(self);
  if (st.session)
    st.session->close();
}

void on_alarm(actor* self, bool memory, bool disk) {
  auto& st = self->state;
  if (!st.alarms.update(memory, disk))
    return;
  spdlog::info("STOMP connection {} (user '{}'): unblocked, the resource alarms cleared", st.peer,
               st.user);
  process(self);
}

bool permitted(actor* self, access::perm p, access::kind k, const std::string& name) {
  auto& st = self->state;
  if (st.perms.allows(p, k, name))
    return true;
  fatal(self, "access_refused", access::refused_text(k, name, st.vhost_name, st.user));
  return false;
}

std::optional<queue_spec> server_named_spec(actor* self, bool exclusive, bool auto_delete,
                                            const char* prefix) {
  queue_spec spec;
  spec.name = prefix + random_id(22);
  spec.server_named = true;
  spec.exclusive = exclusive;
  spec.auto_delete = auto_delete;
  spec.owner = caf::actor_cast<caf::actor>(self);
  if (!permitted(self, access::perm::configure, access::kind::queue, spec.name))
    return std::nullopt;
  return spec;
}

void routes_done(actor* self) {
  auto& st = self->state;
  if (st.waiting_routes)
    st.awaiting = st.waiting_routes = false;
}

void retry_current(actor* self, stomp::frame&& f) {
  auto& st = self->state;
  if (f.command == "SEND" && f.header("transaction"))
    f.command = committed_send;  // only a committed SEND gets this far with one
  st.pending.push_front(pending_frame{std::move(f), st.current_bytes});
  st.current_bytes = 0;
}

void refuse_temp_queue(actor* self, const stomp::frame& f) {
  fatal(self, "Invalid destination",
        "'" + *f.header("destination") + "' is not a valid destination for '" + f.command +
          "'\n");
}

void with_queue(actor* self, const stomp_map::destination& d, const stomp::frame& request,
                std::function<void(caf::actor, std::string)> then) {
  auto& st = self->state;
  const std::string& name = d.name;
  auto cached = st.queue_cache.find(name);
  if (cached != st.queue_cache.end())
    return then(cached->second, name);
  if (d.kind == stomp_map::dest_kind::queue) {
    // /queue/x is declared on its first use in the connection, as RabbitMQ's adapter does:
    // durable, not exclusive, not auto-delete, unless the frame's headers say otherwise, with
    // the x- arguments the frame carries. The last `durable` or `persistent` header decides
    // durability (so a SEND of a transient message declares a transient queue), and a
    // transient queue is exclusive and auto-delete unless `exclusive` / `auto-delete` say
    // otherwise. An existing queue must match (406 precondition_failed otherwise), and an
    // exclusive queue of another connection is locked (405), as a queue.declare finds them.
    bool durable = true;
    for (auto& [key, value] : request.headers)
      if (key == "durable" || key == "persistent")
        durable = value == "true";
    auto flag = [&](const char* h, bool dflt) {
      auto v = request.header(h);
      return v ? *v == "true" : dflt;
    };
    queue_spec spec{name, false, durable, flag("exclusive", !durable),
                    flag("auto-delete", !durable), stomp_map::queue_arguments(request),
                    caf::actor_cast<caf::actor>(self)};
    ask<queue_declared>(
      self, st.vhost,
      [self, then](queue_declared& q) {
        if (q.code != 0)
          return fatal(self, stomp_map::error_name(q.text), q.text);
        self->state.queue_cache[q.name] = q.queue;
        self->monitor(q.queue);
        then(q.queue, q.name);
      },
      declare_atom::value, queue_atom::value, std::move(spec));
    return;
  }
  ask<lookup_result>(
    self, st.vhost,
    [self, name, then](lookup_result& r) {
      auto& st = self->state;
      if (r.code != 0)
        return fatal(self, "not_found",
                     "NOT_FOUND - no queue '" + name + "' in vhost '" + st.vhost_name + "'");
      st.queue_cache[name] = r.target;
      self->monitor(r.target);
      then(r.target, name);
    },
    lookup_atom::value, queue_atom::value, name, caf::actor{});
}

void process(actor* self) {
  auto& st = self->state;
  while (!st.awaiting && !st.flow.blocked() && !st.alarms.blocked && !st.pending.empty() &&
         !st.closing) {
    auto item = std::move(st.pending.front());
    st.pending.pop_front();
    st.current_bytes = item.bytes;
    handle(self, item.f);
    st.processed_bytes += st.current_bytes;
    st.current_bytes = 0;
  }
  flush_publishes(self);
  refill_credit(self);
  if (st.processed_bytes && st.session) {
    st.session->processed(st.processed_bytes);
    st.processed_bytes = 0;
  }
  flush_out(self);
  if (st.peer_gone && (st.closing || (st.pending.empty() && !st.awaiting))) {
    release_subscriptions(self);
    self->quit();
  }
}

}  // namespace warren::stomp_conn

namespace warren {

caf::actor spawn_stomp_connection(caf::actor_system& sys,
                                  std::shared_ptr<net::stomp_session> session,
                                  std::shared_ptr<const broker_settings> settings) {
  using namespace stomp_conn;
  auto init = [](stomp_conn::actor* self, std::shared_ptr<net::stomp_session> session,
                 std::shared_ptr<const broker_settings> settings) -> caf::behavior {
    init_connection(self, session, settings, "stomp connection");
    on_crash(self, [self](const std::string& what) {
      auto& st = self->state;
      spdlog::error("STOMP connection {} (user '{}', vhost '{}') crashed: {}", st.peer, st.user,
                    st.vhost_name, what);
      stomp::frame err;
      err.command = "ERROR";
      err.headers.emplace_back("message", "Internal error");
      err.body = "the connection failed: " + what;
      send_frame(self, err);
      st.closing = true;
      flush_out(self);
      if (st.session)
        st.session->close();
      report_final(self);
    });
    self->set_down_handler([=](caf::down_msg& dm) {
      auto& st = self->state;
      if (st.vhost && dm.source == st.vhost.address()) {
        bool deleted = !dm.reason || dm.reason == caf::exit_reason::normal;
        fatal(self, deleted ? "Virtual host deleted" : "Virtual host restarting",
              "vhost '" + st.vhost_name + (deleted ? "' is deleted" : "' is restarting"));
        return;
      }
      for (auto& [id, sub] : st.subs)
        if (sub.queue.address() == dm.source) {
          on_server_cancel(self, sub.consumer_id);
          break;  // the connection is closing now
        }
      st.flow.forget(dm.source);
      for (auto it = st.queue_cache.begin(); it != st.queue_cache.end();)
        it = it->second.address() == dm.source ? st.queue_cache.erase(it) : std::next(it);
      for (auto it = st.exchange_cache.begin(); it != st.exchange_cache.end();) {
        if (it->second.address() != dm.source) {
          ++it;
          continue;
        }
        it = st.exchange_cache.erase(it);
        st.routes_in_flight = 0;  // its route reports will not come
        routes_done(self);
      }
      process(self);
    });
    return {
      [](op_result&) {},
      [=](stomp_atom, net::stomp_batch& b) {
        auto& st = self->state;
        size_t n = b.frames.size();
        st.stats.recv_oct += b.bytes;
        st.stats.recv_cnt += n;
        for (size_t i = 0; i < n; ++i)
          st.pending.push_back(pending_frame{std::move(b.frames[i]), i + 1 == n ? b.bytes : 0});
        if (!b.error.empty()) {
          stomp::frame bad;
          bad.command = "FRAMING-ERROR";
          bad.body = std::move(b.error);
          st.pending.push_back(pending_frame{std::move(bad), n == 0 ? b.bytes : 0});
        }
        if (!st.pending.empty() && st.pending.back().f.command == "FRAMING-ERROR") {
          // Handle what came before the fault, then report it.
          auto bad = std::move(st.pending.back());
          st.pending.pop_back();
          process(self);
          if (!st.closing)
            fatal(self, "Invalid frame", bad.f.body);
          return;
        }
        process(self);
      },
      [=](routed_atom, route_report& r) {
        auto& st = self->state;
        st.routes_in_flight += r.forwarded_batches;
        if (st.routes_in_flight)
          --st.routes_in_flight;
        on_weights(self, r.returns);
        if (st.routes_in_flight == 0 && st.waiting_routes) {
          routes_done(self);
          process(self);
        }
        flush_out(self);
      },
      [=](confirm_atom, confirm_report& r) {
        on_weights(self, r.returns);
        flush_out(self);
      },
      [=](deliver_atom, delivery_batch& b) {
        on_deliver(self, b);
        refill_credit(self);
        flush_out(self);
      },
      [=](cancelled_atom, uint64_t consumer_id) {
        on_server_cancel(self, consumer_id);
        flush_out(self);
      },
      [=](flow_atom, bool block) {
        if (self->state.flow.on_flow(self, block))
          process(self);
      },
      [=](grant_atom, uint64_t messages, uint64_t bytes) {
        if (self->state.flow.on_grant(self, messages, bytes))
          process(self);
      },
      [=](drained_atom) {
        self->state.drain_requested = false;
        refill_credit(self);
      },
      [=](shutdown_atom) {
        fatal(self, "Server shutdown", "the broker is stopping");
      },
      [=](crash_atom) { inject_fault("STOMP connection " + self->state.peer); },
      [=](restarted_atom, caf::actor_addr&) {
        // A queue of our vhost crashed: a message still waiting for its receipt may be lost.
        if (!self->state.receipts.empty())
          fatal(self, "Message not confirmed",
                "a queue was restarted before the message with receipt '" +
                  self->state.receipts.begin()->second.second + "' was confirmed");
      },
      [=](alarm_atom, bool memory, bool disk) { on_alarm(self, memory, disk); },
      [=](trace_atom, bool on) { self->state.tracing = on; },
      [=](permission_atom, permission_info& p, bool granted) {
        on_permissions(self, p, granted);
      },
      [=](topic_atom, std::string& user, std::vector<access::topic_entry>& entries) {
        on_topic_permissions(self, user, entries);
      },
      [=](report_atom) {
        auto& st = self->state;
        if (st.stats.reporting && !st.stats.done)
          report(self, caf::actor_cast<caf::actor>(self->current_sender()), false);
      },
      [=](force_close_atom, std::string& reason) {
        fatal(self, "Connection closed", reason);
      },
      [=](force_close_atom, user_atom, std::string& user, std::string& reason) {
        if (user == self->state.user)
          fatal(self, "Connection closed", reason);
      },
      [=](ack_timeout_atom) { check_ack_timeout(self); },
      [=](closed_atom, std::string& reason) {
        on_socket_closed(self, self->state.connected, "STOMP", reason);
      },
    };
  };
  return sys.spawn(init, std::move(session), std::move(settings));
}

}  // namespace warren
