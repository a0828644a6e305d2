// The AMQP connection actor (one per client connection): lifecycle, handshake, the command
// loop, channels and errors. Method families live in connection_*.cpp.
//
// Jobs: run the connection handshake (AMQP 0-9-1 §2.2.4: start/start-ok, tune/tune-ok, open);
// process the commands its session assembled, in order, pausing while a synchronous method
// waits for an answer from the vhost or a queue; encode everything it sends into one buffer
// that goes to the socket once per turn; turn protocol faults into channel.close (soft errors)
// or connection.close (hard errors); close with 320 CONNECTION_FORCED on shutdown.
// Talks to: its session (bytes), the vhost (declarations), exchanges and queues (publishes,
// consumes, acks), other connections (direct reply-to).
// Invariants: commands of one connection are handled in arrival order; a queue that this
// connection consumes from monitors it, so everything unacked is requeued when it dies.
#include "actors/connection_state.hpp"

#include <limits>
#include <random>

#include <spdlog/spdlog.h>

#include "actors/hardening.hpp"
#include "actors/registry_actor.hpp"
#include "protocol/amqp091/wire.hpp"

namespace warren::conn {

namespace {

constexpr uint16_t close_linger_max = 30;  // seconds (RabbitMQ's CLOSING_TIMEOUT)

amqp::field_table server_properties() {
  amqp::field_table caps{
    {"publisher_confirms", true},        {"exchange_exchange_bindings", true},
    {"basic.nack", true},                {"consumer_cancel_notify", true},
    {"connection.blocked", true},        {"consumer_priorities", true},
    {"authentication_failure_close", true}, {"per_consumer_qos", true},
    {"direct_reply_to", true},
  };
  return amqp::field_table{
    {"product", std::string{"Warren"}},
    {"version", std::string{"0.1.0"}},
    {"platform", std::string{"C++20 / CAF 0.17"}},
    {"copyright", std::string{"The Warren authors"}},
    {"information", std::string{"Warren message broker"}},
    {"cluster_name", std::string{"warren"}},
    {"capabilities", caps},
  };
}

// Reads user and password from a start-ok response; false when it is malformed.
bool parse_credentials(const std::string& mechanism, const std::string& response,
                       std::string& user, std::string& password) {
  if (mechanism == "PLAIN") {
    // RFC 4616: [authzid] NUL authcid NUL passwd
    auto first = response.find('\0');
    if (first == std::string::npos)
      return false;
    auto second = response.find('\0', first + 1);
    if (second == std::string::npos)
      return false;
    user = response.substr(first + 1, second - first - 1);
    password = response.substr(second + 1);
    return true;
  }
  if (mechanism == "AMQPLAIN") {
    // A field table without its length prefix: LOGIN and PASSWORD.
    std::string framed;
    amqp::writer w{framed};
    w.u32(static_cast<uint32_t>(response.size()));
    w.raw(response);
    amqp::reader r{framed};
    auto t = r.table();
    if (r.failed())
      return false;
    auto login = amqp::find_field(t, "LOGIN");
    auto pass = amqp::find_field(t, "PASSWORD");
    if (!login || !pass || !login->as_string() || !pass->as_string())
      return false;
    user = *login->as_string();
    password = *pass->as_string();
    return true;
  }
  return false;
}

// `linger` > 0: the client is to close, the socket waits for it that long (close_after_peer).
void close_socket(actor* self, std::chrono::seconds linger = {}) {
  auto& st = self->state;
  flush_out(self);
  if (st.session && linger.count() > 0)
    st.session->close_after_peer(linger);
  else if (st.session)
    st.session->close();
  st.ph = phase::closed;
  st.pending.clear();
  st.held.clear();
  st.held_at = 0;
}

// A connection that fails at connection.start-ok: RabbitMQ (rabbit_reader) says why with a
// connection.close only for a refused login, and only to a client that announced the
// authentication_failure_close capability; otherwise it closes the socket without a word.
void fail_start(actor* self, uint16_t code, std::string text) {
  auto& st = self->state;
  if (code == amqp::access_refused && st.auth_failure_close)
    return connection_error(self, code, std::move(text));
  spdlog::warn("AMQP connection {}: error {} in the handshake, closing the socket: {}", st.peer,
               code, text);
  close_socket(self);
}

void refuse_login(actor* self, const std::string& user, const std::string& mechanism) {
  spdlog::warn("AMQP connection {}: login refused for user '{}' (mechanism {})",
               self->state.peer, user, mechanism);
  fail_start(self, amqp::access_refused,
             "ACCESS_REFUSED - Login was refused using authentication mechanism " + mechanism +
               ". For details see the broker logfile.");
}

void on_connection_method(actor* self, amqp::command& cmd) {
  auto& st = self->state;
  if (auto* m = std::get_if<amqp::connection_close>(&cmd.m)) {
    spdlog::info("closing AMQP connection {} (user '{}', vhost '{}'): client closed ({} {})",
                 st.peer, st.user, st.vhost_name, m->reply_code, m->reply_text);
    send_method(self, 0, amqp::connection_close_ok{});
    for (auto& [n, ch] : st.channels)
      release_channel(self, ch);
    // The client closes the socket once it has read close-ok (RabbitMQ waits for that up to
    // the heartbeat timeout, 30 s at most); the actor goes now, as if the socket had closed:
    // process() ends it.
    close_socket(self, std::chrono::seconds(st.heartbeat > 0 && st.heartbeat < close_linger_max
                                              ? st.heartbeat
                                              : close_linger_max));
    st.session = nullptr;
    report_final(self);
    st.peer_gone = true;
    return;
  }
  if (std::holds_alternative<amqp::connection_close_ok>(cmd.m) && st.ph == phase::closing) {
    close_socket(self);
    return;
  }
  connection_error(self, amqp::command_invalid, "COMMAND_INVALID - unexpected method in state",
                   amqp::method_class_id(cmd.m), amqp::method_method_id(cmd.m));
}

void on_handshake(actor* self, amqp::command& cmd) {
  auto& st = self->state;
  switch (st.ph) {
    case phase::start_ok: {
      auto* m = std::get_if<amqp::connection_start_ok>(&cmd.m);
      if (!m)
        return connection_error(self, amqp::command_invalid,
                                "COMMAND_INVALID - expected connection.start-ok",
                                amqp::method_class_id(cmd.m), amqp::method_method_id(cmd.m));
      if (auto caps = amqp::find_field(m->client_properties, "capabilities"))
        if (auto t = caps->as_table())
          for (auto [cap, flag] :
               {std::pair{"consumer_cancel_notify", &st.cancel_notify},
                std::pair{"connection.blocked", &st.blocked_notify},
                std::pair{"authentication_failure_close", &st.auth_failure_close}})
            if (auto c = amqp::find_field(*t, cap))
              *flag = std::get_if<bool>(&c->v) && std::get<bool>(c->v);
      std::string user, password;
      auto mechanism = m->mechanism;
      st.client_properties = encode_arguments(m->client_properties);
      // RabbitMQ's two refusals (rabbit_reader): a name it has no mechanism for, and one it
      // has but does not offer.
      auto& offered = st.settings->auth_mechanisms;
      if (mechanism != "PLAIN" && mechanism != "AMQPLAIN" && mechanism != "EXTERNAL")
        return fail_start(self, amqp::command_invalid,
                          "COMMAND_INVALID - unknown authentication mechanism '" + mechanism +
                            "'");
      if (std::find(offered.begin(), offered.end(), mechanism) == offered.end())
        return fail_start(self, amqp::command_invalid,
                          "COMMAND_INVALID - invalid authentication mechanism '" + mechanism +
                            "'");
      // EXTERNAL (rabbitmq_auth_mechanism_ssl) is offered to everyone, and refuses a client
      // without a certificate.
      bool external = mechanism == "EXTERNAL";
      if (external) {
        user = certificate_user(st.tls, st.settings->cert_login_common_name);
        if (user.empty()) {
          spdlog::warn("AMQP connection {}: EXTERNAL login refused: the client presented no "
                       "TLS certificate",
                       st.peer);
          return refuse_login(self, user, mechanism);
        }
      } else if (!parse_credentials(mechanism, m->response, user, password)) {
        return refuse_login(self, user, mechanism);
      }
      auto on_login = [=](login_result& r) {
        auto& st = self->state;
        if (r.loopback_only) {
          spdlog::warn("AMQP connection {}: login refused for user '{}': it may only connect "
                       "through a loopback address (loopback_users)",
                       st.peer, user);
          return fail_start(self, amqp::access_refused,
                            "ACCESS_REFUSED - " + mechanism + " login refused: user '" + user +
                              "' can only connect via localhost");
        }
        if (!r.ok)
          return refuse_login(self, user, mechanism);
        st.user = user;
        st.auth_mechanism = mechanism;
        st.ph = phase::tune_ok;
        amqp::connection_tune tune;
        tune.channel_max = st.settings->channel_max;
        tune.frame_max = st.settings->frame_max;
        tune.heartbeat = st.settings->heartbeat;
        send_method(self, 0, tune);
      };
      // EXTERNAL: the certificate stands for the password; the user must exist.
      if (external)
        ask<login_result>(self, current_registry(self->home_system()), on_login,
                          login_atom::value, user, st.local_loopback);
      else
        ask<login_result>(self, current_registry(self->home_system()), on_login,
                          login_atom::value, user, password, st.local_loopback);
      return;
    }
    case phase::tune_ok: {
      auto* m = std::get_if<amqp::connection_tune_ok>(&cmd.m);
      if (!m)
        return connection_error(self, amqp::command_invalid,
                                "COMMAND_INVALID - expected connection.tune-ok",
                                amqp::method_class_id(cmd.m), amqp::method_method_id(cmd.m));
      st.channel_max = m->channel_max == 0 ? st.settings->channel_max
                                           : std::min(m->channel_max, st.settings->channel_max);
      auto fmax = m->frame_max == 0 ? st.settings->frame_max
                                    : std::min(m->frame_max, st.settings->frame_max);
      if (fmax < amqp::frame_min_size)
        return connection_error(self, amqp::not_allowed,
                                "NOT_ALLOWED - frame_max=" + std::to_string(fmax) +
                                  " < " + std::to_string(amqp::frame_min_size) + " min size");
      st.frame_max = fmax;
      st.heartbeat = m->heartbeat;
      if (st.session)  // gone when the client hung up right after its tune-ok
        st.session->set_limits(st.frame_max, st.heartbeat);
      st.ph = phase::open;
      return;
    }
    case phase::open: {
      auto* m = std::get_if<amqp::connection_open>(&cmd.m);
      if (!m)
        return connection_error(self, amqp::command_invalid,
                                "COMMAND_INVALID - expected connection.open",
                                amqp::method_class_id(cmd.m), amqp::method_method_id(cmd.m));
      auto name = m->virtual_host;
      // In the group before the registry answers: a permission change made after its answer
      // must reach this connection.
      self->join(vhost_group(self->home_system(), name));
      ask<vhost_access>(
        self, current_registry(self->home_system()),
        [=](vhost_access& r) {
          auto& st = self->state;
          if (!r.limit.empty())
            spdlog::warn("AMQP connection {}: {} limit of user '{}' or vhost '{}' reached",
                         st.peer, r.limit, st.user, name);
          if (r.code != 0)
            return connection_error(self, r.code, std::move(r.text));
          if (!r.granted) {
            spdlog::warn("AMQP connection {}: user '{}' has no permissions in vhost '{}'",
                         st.peer, st.user, name);
            return connection_error(self, amqp::not_allowed,
                                    access::vhost_refused_text(name, st.user));
          }
          auto& p = r.permissions;
          st.perms = access::vhost_permissions{p.configure, p.write, p.read};
          st.topics = access::topic_permissions{r.topics, st.user, name};
          st.vhost_name = name;
          st.vhost = r.target;
          st.tracing = r.tracing;
          self->monitor(st.vhost);  // a deleted (or restarting) vhost closes its connections
          st.ph = phase::running;
          send_method(self, 0, amqp::connection_open_ok{});
          st.stats.collector = metrics::find_collector(self->home_system());
          st.stats.reporting = true;
          report(self, st.stats.collector, false);
          spdlog::info("accepted AMQP connection {} (user '{}', vhost '{}')", st.peer, st.user,
                       st.vhost_name);
        },
        admit_atom::value, vhost_atom::value, name, st.user, int32_t{0});
      return;
    }
    default:
      break;
  }
}

void on_channel_open(actor* self, amqp::command& cmd) {
  auto& st = self->state;
  auto n = cmd.channel;
  if (n > st.channel_max)
    return connection_error(self, amqp::channel_error,
                            "CHANNEL_ERROR - channel number " + std::to_string(n) +
                              " exceeds channel_max " + std::to_string(st.channel_max),
                            20, 10);
  if (st.channels.count(n))
    return connection_error(self, amqp::channel_error,
                            "CHANNEL_ERROR - second 'channel.open' seen", 20, 10);
  auto open = [self, n] {
    auto& st = self->state;
    channel_rec ch;
    ch.number = n;
    ch.id = st.next_channel_id++;
    st.channel_by_id.emplace(ch.id, n);
    st.channels.emplace(n, std::move(ch));
    send_method(self, n, amqp::channel_open_ok{});
  };
  // The registry counts the user's channels (the user limit max-channels). While it is being
  // restarted (supervision) there is nobody to count with, and the channel opens uncounted.
  auto registry = current_registry(self->home_system());
  if (!registry)
    return open();
  flush_outgoing(self);
  request_paused<op_result>(
    self, registry,
    [self, open](op_result& r) {
      if (r.code != 0)
        return connection_error(self, r.code, std::move(r.text), 20, 10);
      open();
    },
    [open](caf::error&) { open(); }, [](actor* s) { process(s); }, admit_atom::value,
    channel_atom::value);
}

void forget_channel(actor* self, uint16_t n) {
  auto& st = self->state;
  auto it = st.channels.find(n);
  if (it == st.channels.end())
    return;
  if (auto registry = current_registry(self->home_system()))
    self->send(registry, remove_atom::value, channel_atom::value);
  st.stats.closed_channels += it->second.counters;
  st.channel_by_id.erase(it->second.id);
  st.channels.erase(it);
}

template <class M>
void on(actor* self, channel_rec& ch, amqp::command& cmd, M& m) {
  // Methods a client must not send (server-to-client methods and the like).
  connection_error(self, amqp::command_invalid, "COMMAND_INVALID - unimplemented method",
                   M::class_index, M::method_index);
}
void on(actor*, channel_rec&, amqp::command&, std::monostate&) {}
void on(actor* self, channel_rec& ch, amqp::command& cmd, amqp::basic_publish& m) {
  on_publish(self, ch, cmd, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::basic_ack& m) {
  on_ack(self, ch, m.delivery_tag, m.multiple, false, false, 60, 80);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::basic_nack& m) {
  on_ack(self, ch, m.delivery_tag, m.multiple, m.requeue, !m.requeue, 60, 120);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::basic_reject& m) {
  on_ack(self, ch, m.delivery_tag, false, m.requeue, !m.requeue, 60, 90);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::basic_consume& m) {
  on_consume(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::basic_cancel& m) {
  on_cancel(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::basic_get& m) { on_get(self, ch, m); }
void on(actor* self, channel_rec& ch, amqp::command&, amqp::basic_qos& m) { on_qos(self, ch, m); }
void on(actor* self, channel_rec& ch, amqp::command&, amqp::basic_recover& m) {
  on_recover(self, ch, m.requeue, true);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::basic_recover_async& m) {
  on_recover(self, ch, m.requeue, false);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::exchange_declare& m) {
  on_exchange_declare(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::exchange_delete& m) {
  on_exchange_delete(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::exchange_bind& m) {
  on_exchange_bind(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::exchange_unbind& m) {
  on_exchange_unbind(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::queue_declare& m) {
  on_queue_declare(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::queue_bind& m) {
  on_queue_bind(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::queue_unbind& m) {
  on_queue_unbind(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::queue_purge& m) {
  on_queue_purge(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::queue_delete& m) {
  on_queue_delete(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::confirm_select& m) {
  on_confirm_select(self, ch, m);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::tx_select&) { on_tx_select(self, ch); }
void on(actor* self, channel_rec& ch, amqp::command&, amqp::tx_commit&) { on_tx_commit(self, ch); }
void on(actor* self, channel_rec& ch, amqp::command&, amqp::tx_rollback&) {
  on_tx_rollback(self, ch);
}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::channel_flow& m) {
  on_flow(self, ch, m.active);
}
void on(actor*, channel_rec&, amqp::command&, amqp::channel_flow_ok&) {}
void on(actor* self, channel_rec& ch, amqp::command&, amqp::channel_close&) {
  auto n = ch.number;
  release_channel(self, ch);
  forget_channel(self, n);
  send_method(self, n, amqp::channel_close_ok{});
}
void on(actor* self, channel_rec& ch, amqp::command& cmd, amqp::channel_open&) {
  connection_error(self, amqp::channel_error, "CHANNEL_ERROR - second 'channel.open' seen", 20,
                   10);
}

void wait_for_returns(actor* self, amqp::command&& cmd) {
  auto& st = self->state;
  flush_outgoing(self);
  retry_current(self, std::move(cmd));
  st.waiting_returns = true;
  st.awaiting = true;
  // Bounded: a destination that vanished never hands its weight back.
  self->delayed_send(self, std::chrono::seconds(2), tick_atom::value);
}

void handle(actor* self, amqp::command& cmd) {
  auto& st = self->state;
  if (st.ph == phase::closed)
    return;
  if (st.ph == phase::closing) {
    // After connection.close only close / close-ok matter (AMQP 0-9-1 §2.2.4).
    if (cmd.channel == 0)
      on_connection_method(self, cmd);
    return;
  }
  if (st.ph != phase::running) {
    on_handshake(self, cmd);
    return;
  }
  if (cmd.channel == 0) {
    bool returns_pending = std::any_of(st.channels.begin(), st.channels.end(),
                                       [](auto& c) { return c.second.mandatory_pending > 0; });
    if (returns_pending && !st.waiting_returns &&
        std::holds_alternative<amqp::connection_close>(cmd.m)) {
      wait_for_returns(self, std::move(cmd));
      return;
    }
    on_connection_method(self, cmd);
    return;
  }
  if (std::holds_alternative<amqp::channel_open>(cmd.m)) {
    if (!st.channels.count(cmd.channel))
      return on_channel_open(self, cmd);
  }
  auto it = st.channels.find(cmd.channel);
  if (it == st.channels.end()) {
    return connection_error(self, amqp::channel_error,
                            "CHANNEL_ERROR - expected 'channel.open'",
                            amqp::method_class_id(cmd.m), amqp::method_method_id(cmd.m));
  }
  auto& ch = it->second;
  if (ch.closing) {
    // We sent channel.close: drop everything until close-ok (AMQP 0-9-1 §2.2.4).
    if (std::holds_alternative<amqp::channel_close_ok>(cmd.m)) {
      forget_channel(self, cmd.channel);
    } else if (std::holds_alternative<amqp::channel_close>(cmd.m)) {
      send_method(self, cmd.channel, amqp::channel_close_ok{});
    }
    return;
  }
  if (std::holds_alternative<amqp::channel_close_ok>(cmd.m))
    return;  // nothing to do: we never sent channel.close on this incarnation
  bool synchronous = std::visit(
    [](auto& m) {
      if constexpr (std::is_same_v<std::decay_t<decltype(m)>, std::monostate>)
        return false;
      else
        return std::decay_t<decltype(m)>::synchronous;
    },
    cmd.m);
  if (synchronous && ch.mandatory_pending > 0 && !st.waiting_returns) {
    // RabbitMQ routes inside the channel, so basic.return precedes the answer to any later
    // synchronous method (and channel.close): wait for the fate of mandatory publishes.
    wait_for_returns(self, std::move(cmd));
    return;
  }
  std::visit([&](auto& m) { on(self, ch, cmd, m); }, cmd.m);
}

}  // namespace

bool refuse(actor* self, channel_rec& ch, access::kind k, const std::string& name, uint16_t cls,
            uint16_t mth) {
  auto& st = self->state;
  channel_error(self, ch, amqp::access_refused,
                access::refused_text(k, name, st.vhost_name, st.user), cls, mth);
  return false;
}

void on_alarm(actor* self, bool memory, bool disk) {
  auto& st = self->state;
  if (!st.alarms.update(memory, disk))
    return;
  if (st.blocked_notify && st.ph != phase::closed)
    send_method(self, 0, amqp::connection_unblocked{});
  spdlog::info("AMQP connection {} (user '{}'): unblocked, the resource alarms cleared", st.peer,
               st.user);
  flush_out(self);
  process(self);
}

std::string random_token(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string s;
  s.reserve(n);
  for (size_t i = 0; i < n; ++i)
    s += alphabet[rng() % 64];
  return s;
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

channel_rec* channel_by_id(actor* self, uint64_t id) {
  auto& st = self->state;
  auto it = st.channel_by_id.find(id);
  if (it == st.channel_by_id.end())
    return nullptr;
  auto ch = st.channels.find(it->second);
  return ch == st.channels.end() ? nullptr : &ch->second;
}

void retry_current(actor* self, amqp::command&& cmd) {
  auto& st = self->state;
  st.pending.push_front(pending_cmd{std::move(cmd), st.current_bytes, 0, {}, 0, 0});
  st.current_bytes = 0;
}

void when_routed(actor* self, std::function<void()> fn) {
  auto& st = self->state;
  flush_outgoing(self);
  if (st.inflight_routes == 0) {
    fn();
    return;
  }
  st.awaiting = true;
  st.after_routes = std::move(fn);
}

namespace {

// A reply-text is a shortstr: RabbitMQ keeps 252 bytes of a longer one and ends it with "...".
std::string reply_text(std::string text) {
  if (text.size() > 255) {
    text.resize(252);
    text += "...";
  }
  return text;
}

}  // namespace

void channel_error(actor* self, channel_rec& ch, uint16_t code, std::string text, uint16_t cls,
                   uint16_t mth) {
  auto& st = self->state;
  spdlog::warn("AMQP connection {} (user '{}', vhost '{}'), channel {}: error {}: {}", st.peer,
               st.user, st.vhost_name, ch.number, code, text);
  amqp::channel_close m;
  m.reply_code = code;
  m.reply_text = reply_text(std::move(text));
  m.class_id = cls;
  m.method_id = mth;
  send_method(self, ch.number, m);
  release_channel(self, ch);
  ch.closing = true;
}

void connection_error(actor* self, uint16_t code, std::string text, uint16_t cls, uint16_t mth) {
  auto& st = self->state;
  if (st.ph == phase::closing || st.ph == phase::closed)
    return;
  spdlog::warn("AMQP connection {} (user '{}', vhost '{}'): error {}: {}", st.peer, st.user,
               st.vhost_name, code, text);
  amqp::connection_close m;
  m.reply_code = code;
  m.reply_text = reply_text(std::move(text));
  m.class_id = cls;
  m.method_id = mth;
  send_method(self, 0, m);
  for (auto& [n, ch] : st.channels)
    release_channel(self, ch);
  st.pending.clear();
  st.awaiting = false;
  if (st.ph == phase::header || st.ph == phase::start_ok || st.ph == phase::tune_ok) {
    // Before the connection is open the client may not answer close: close right away.
    close_socket(self);
    return;
  }
  st.ph = phase::closing;
  // Wait a little for close-ok, then close the socket regardless.
  self->delayed_send(self, std::chrono::seconds(3), stop_atom::value);
}

namespace {

bool can_run(const state& st) {
  return !st.awaiting && !st.flow.blocked() && !st.alarms.blocked && st.ph != phase::closed;
}

// Turns the frames held from the session into commands and runs them, as long as they can
// run: a command that cannot (an answer awaited, a flow stop, no credit, one queued again by
// retry_current) leaves the rest of the frames held as bytes until process() is called again.
// Frames held this way cost nothing per command, where commands queued in `pending` would each
// be moved there and back. A framing fault from the session ends the list and drops what
// follows; a fault the assembler finds is queued as a connection error, and the frames after it
// are still read for the client's close-ok. Returns the number of commands.
size_t assemble_held(actor* self) {
  auto& st = self->state;
  amqp::command cmd;
  size_t commands = 0;
  while (!st.held.empty() && st.pending.empty() && can_run(st)) {
    auto& b = st.held.front();
    std::string_view in = b.frames;
    while (!st.assembly_failed && st.held_at < in.size() && st.pending.empty() && can_run(st)) {
      amqp::frame_view f;
      size_t consumed = 0;
      // The session checked each frame against frame_max already.
      if (amqp::parse_frame(in.substr(st.held_at), std::numeric_limits<uint32_t>::max(), f,
                            consumed) != amqp::frame_status::ok) {
        st.held_at = in.size();
        break;
      }
      st.held_at += consumed;
      // After connection.close only methods on channel 0 matter (close / close-ok), decoded
      // on their own as RabbitMQ does: the assembler may still wait for content after the
      // fault that closed the connection. A client that answers close-ok is let go at once.
      if (st.ph == phase::closing) {
        uint16_t cls = 0, mth = 0;
        if (f.channel == 0 && f.type == amqp::frame_type::method &&
            amqp::decode_method(f.payload, cmd.m, cls, mth) == amqp::decode_status::ok) {
          cmd.channel = 0;
          handle(self, cmd);
        }
        continue;
      }
      switch (st.assembler.feed(f, cmd)) {
        case amqp::assemble_status::command:
          ++commands;
          st.current_bytes = 0;
          handle(self, cmd);  // may queue it again (retry_current)
          st.processed_bytes += st.current_bytes;
          st.current_bytes = 0;
          break;
        case amqp::assemble_status::error:
          // The frames are still delimited: reading goes on after the error, for close-ok.
          st.pending.push_back(pending_cmd{{}, 0, st.assembler.error_code(),
                                           st.assembler.error_text(),
                                           st.assembler.error_class_id(),
                                           st.assembler.error_method_id()});
          break;
        case amqp::assemble_status::none:
          break;
      }
    }
    if (st.held_at < in.size() && !st.assembly_failed)
      break;  // commands cannot run now
    // The batch is done (or dropped after a fault): its bytes count as processed.
    if (b.error_code && !st.assembly_failed) {
      st.assembly_failed = true;
      st.pending.push_back(pending_cmd{{}, 0, b.error_code, std::move(b.error_text), 0, 0});
    }
    st.processed_bytes += b.bytes;
    st.held.pop_front();
    st.held_at = 0;
  }
  return commands;
}

}  // namespace

void process(actor* self) {
  auto& st = self->state;
  do {
    while (can_run(st) && !st.pending.empty()) {
      auto item = std::move(st.pending.front());
      st.pending.pop_front();
      st.current_bytes = item.bytes;
      if (item.error_code) {
        connection_error(self, item.error_code, std::move(item.error_text), item.error_class,
                         item.error_method);
      } else {
        handle(self, item.cmd);
      }
      st.processed_bytes += st.current_bytes;
      st.current_bytes = 0;
    }
    st.stats.recv_cnt += assemble_held(self);
  } while (can_run(st) && !st.pending.empty());
  flush_outgoing(self);
  flush_acks(self);
  refill_credit(self);
  if (st.processed_bytes && st.session) {
    st.session->processed(st.processed_bytes);
    st.processed_bytes = 0;
  }
  flush_out(self);
  if (st.peer_gone &&
      (st.ph == phase::closed || (st.pending.empty() && st.held.empty() && !st.awaiting)))
    self->quit();  // queues we consumed from requeue what was unacked when they see us go
}

}  // namespace warren::conn

namespace warren {

caf::actor spawn_connection(caf::actor_system& sys, std::shared_ptr<net::amqp_session> session,
                            std::shared_ptr<const broker_settings> settings) {
  using namespace conn;
  // Arguments go through spawn (not a capture): CAF 0.17 dereferences a null tuple for
  // argument-less function actors, which UBSan reports.
  auto init = [](conn::actor* self, std::shared_ptr<net::amqp_session> session,
                 std::shared_ptr<const broker_settings> settings) -> caf::behavior {
    init_connection(self, session, settings, "connection");
    on_crash(self, [self](const std::string& what) {
      // Only this connection goes: 541 to the client, the socket closed. Queues and the vhost
      // see the actor go (requeue its unacked messages, drop its exclusive queues).
      auto& st = self->state;
      spdlog::error("AMQP connection {} (user '{}', vhost '{}') crashed: {}", st.peer, st.user,
                    st.vhost_name, what);
      if (st.ph != phase::closed && st.ph != phase::header) {
        amqp::connection_close m;
        m.reply_code = amqp::internal_error;
        m.reply_text = "INTERNAL_ERROR - the connection failed: " + what;
        send_method(self, 0, m);
      }
      close_socket(self);
      report_final(self);
    });
    self->set_down_handler([=](caf::down_msg& dm) {
      auto& st = self->state;
      if (st.vhost && dm.source == st.vhost.address()) {
        bool deleted = !dm.reason || dm.reason == caf::exit_reason::normal;
        connection_error(self, amqp::connection_forced,
                         "CONNECTION_FORCED - vhost '" + st.vhost_name +
                           (deleted ? "' is deleted" : "' is restarting"));
        flush_out(self);
        return;
      }
      // A queue or exchange we cached or consume from went away (deleted, or crashed and
      // restarted under a new handle): forget it, nack what we sent it, cancel its consumers.
      bool exchange = std::any_of(st.exchange_cache.begin(), st.exchange_cache.end(),
                                  [&](auto& kv) { return kv.second.first.address() == dm.source; });
      st.flow.forget(dm.source);
      forget_target(self, dm.source);
      fail_tracked_to(self, dm.source);
      std::vector<uint64_t> cancelled;
      for (auto& [id, c] : st.consumers)
        if (c.queue.address() == dm.source)
          cancelled.push_back(id);
      for (auto id : cancelled)
        on_server_cancel(self, id);
      if (exchange && st.inflight_routes) {
        // Its route reports will not come: stop waiting for them.
        st.inflight_routes = 0;
        for (auto& [n, ch] : st.channels)
          ch.routes_in_flight = 0;
        if (auto fn = std::exchange(st.after_routes, nullptr)) {
          st.awaiting = false;
          fn();
        }
      }
      flush_out(self);
      process(self);
    });
    return {
      [](op_result&) {
        // Answer to a cancel sent without waiting (channel close): nothing to do.
      },
      [=](start_atom) {
        auto& st = self->state;
        st.ph = phase::start_ok;
        if (st.session)  // the handshake is over once the protocol header is read
          st.tls = st.session->tls_info();
        amqp::connection_start m;
        m.version_major = 0;
        m.version_minor = 9;
        m.server_properties = server_properties();
        for (auto& name : st.settings->auth_mechanisms)
          m.mechanisms += (m.mechanisms.empty() ? "" : " ") + name;
        m.locales = "en_US";
        send_method(self, 0, m);
        flush_out(self);
      },
      [=](inbound_atom, net::inbound_batch& b) {
        auto& st = self->state;
        if (st.ph == phase::closed)
          return;
        st.stats.recv_oct += b.bytes;
        st.held.push_back(std::move(b));
        process(self);
      },
      [=](routed_atom, route_report& r) {
        auto& st = self->state;
        st.inflight_routes += r.forwarded_batches;
        if (st.inflight_routes)  // 0 after a crashed exchange made us stop waiting
          --st.inflight_routes;
        if (auto* ch = channel_by_id(self, r.channel)) {
          ch->routes_in_flight += r.forwarded_batches;
          if (ch->routes_in_flight)
            --ch->routes_in_flight;
        }
        on_weights(self, r.channel, r.returns);
        if (st.inflight_routes == 0 && st.after_routes) {
          auto fn = std::move(st.after_routes);
          st.after_routes = nullptr;
          st.awaiting = false;
          fn();
        }
        process(self);
      },
      [=](confirm_atom, confirm_report& r) {
        on_weights(self, r.channel, r.returns);
        process(self);  // a tx.commit may have been waiting for these
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
      [=](direct_atom, std::string& token, publish_batch& b) {
        on_direct_reply(self, token, b);
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
        connection_error(self, amqp::connection_forced,
                         "CONNECTION_FORCED - broker forced connection closure with reason "
                         "'shutdown'");
        flush_out(self);
      },
      [=](stop_atom) {
        close_socket(self);
      },
      [=](crash_atom) { inject_fault("AMQP connection " + self->state.peer); },
      [=](restarted_atom, caf::actor_addr& queue) {
        // A queue of our vhost crashed and was restarted: what we routed through exchanges
        // may have been lost with it, so those confirms become nacks.
        fail_tracked_to(self, queue);
        fail_tracked_via_exchanges(self);
        flush_out(self);
        process(self);
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
        connection_error(self, amqp::connection_forced, "CONNECTION_FORCED - " + reason);
        flush_out(self);
      },
      [=](force_close_atom, user_atom, std::string& user, std::string& reason) {
        if (user != self->state.user)
          return;
        connection_error(self, amqp::connection_forced, "CONNECTION_FORCED - " + reason);
        flush_out(self);
      },
      [=](tick_atom) {
        auto& st = self->state;
        if (st.waiting_returns) {
          st.waiting_returns = false;
          st.awaiting = false;
          for (auto& [n, ch] : st.channels)
            ch.mandatory_pending = 0;
          process(self);
        }
      },
      [=](ack_timeout_atom) { check_ack_timeouts(self); },
      [=](closed_atom, std::string& reason) {
        auto& st = self->state;
        on_socket_closed(self, st.ph != phase::closed && st.ph != phase::header, "AMQP", reason);
      },
    };
  };
  return sys.spawn(init, std::move(session), std::move(settings));
}

}  // namespace warren
