// exchange.* and queue.* methods of the connection actor (AMQP 0-9-1 §1.6, §1.7): each is a
// request to the vhost actor, with the command loop paused until it answers; the answer
// becomes the -ok method, a channel error (soft codes) or a connection error (hard codes).
#include <spdlog/spdlog.h>

#include "actors/connection_state.hpp"
#include "actors/vhost_actor.hpp"

namespace warren::conn {

namespace {

// Sends the -ok method, or turns a failed result into the right kind of error.
template <class Ok>
void reply(actor* self, uint16_t n, uint16_t code, std::string text, uint16_t cls, uint16_t mth,
           bool no_wait, const Ok& ok) {
  auto& st = self->state;
  auto it = st.channels.find(n);
  if (it == st.channels.end() || it->second.closing)
    return;
  if (code == 0) {
    if (!no_wait)
      send_method(self, n, ok);
    return;
  }
  if (amqp::is_hard_error(code))
    connection_error(self, code, std::move(text), cls, mth);
  else
    channel_error(self, it->second, code, std::move(text), cls, mth);
}

// AMQP 0-9-1 §1.7.2.1: an empty queue name means the channel's last declared queue.
bool resolve_queue_name(actor* self, channel_rec& ch, std::string& name, uint16_t cls,
                        uint16_t mth) {
  if (!name.empty())
    return true;
  if (ch.last_queue.empty()) {
    channel_error(self, ch, amqp::not_found,
                  "NOT_FOUND - no previously declared queue", cls, mth);
    return false;
  }
  name = ch.last_queue;
  return true;
}

void drop_cached_queue(actor* self, const std::string& name) {
  self->state.queue_cache.erase(name);
}

using access::kind;
using access::perm;

// What the vhost answers a declare that would create the entity with, when the user may not
// use the dead-letter or alternate exchange its arguments name (actors/access.hpp).
std::string refused_if_new(actor* self, kind k, const std::string& name,
                           const amqp::field_table& args) {
  auto& st = self->state;
  auto refused = access::creation_refused(st.perms, k, name, args);
  return refused ? access::refused_text(refused->k, refused->name, st.vhost_name, st.user)
                 : std::string{};
}

}  // namespace

void forget_target(actor* self, const caf::actor_addr& addr) {
  auto& st = self->state;
  for (auto it = st.queue_cache.begin(); it != st.queue_cache.end();) {
    if (it->second.address() == addr)
      it = st.queue_cache.erase(it);
    else
      ++it;
  }
  for (auto it = st.exchange_cache.begin(); it != st.exchange_cache.end();) {
    if (it->second.first.address() == addr)
      it = st.exchange_cache.erase(it);
    else
      ++it;
  }
}

void on_exchange_declare(actor* self, channel_rec& ch, amqp::exchange_declare& m) {
  // The default exchange is refused by the vhost, before any permission (as RabbitMQ does).
  if (!m.passive && !m.exchange.empty() &&
      !permitted(self, ch, perm::configure, kind::exchange, m.exchange, 40, 10))
    return;
  auto refused = m.passive ? std::string{}
                           : refused_if_new(self, kind::exchange, m.exchange, m.arguments);
  exchange_spec spec{m.exchange, m.type, m.passive, m.durable, m.auto_delete, m.internal,
                     std::move(m.arguments), std::move(refused)};
  auto n = ch.number;
  bool no_wait = m.no_wait;
  ask<op_result>(
    self, self->state.vhost,
    [=](op_result& r) {
      reply(self, n, r.code, std::move(r.text), 40, 10, no_wait, amqp::exchange_declare_ok{});
    },
    declare_atom::value, exchange_atom::value, std::move(spec));
}

void on_exchange_delete(actor* self, channel_rec& ch, amqp::exchange_delete& m) {
  if (!m.exchange.empty() &&
      !permitted(self, ch, perm::configure, kind::exchange, m.exchange, 40, 20))
    return;
  auto n = ch.number;
  bool no_wait = m.no_wait;
  auto name = m.exchange;
  self->state.exchange_cache.erase(name);
  ask<op_result>(
    self, self->state.vhost,
    [=](op_result& r) {
      self->state.exchange_cache.erase(name);
      reply(self, n, r.code, std::move(r.text), 40, 20, no_wait, amqp::exchange_delete_ok{});
    },
    delete_atom::value, exchange_atom::value, m.exchange, m.if_unused);
}

namespace {

template <class Ok>
void binding_op(actor* self, channel_rec& ch, bool add, binding_spec spec, uint16_t cls,
                uint16_t mth, bool no_wait) {
  // rabbit_channel's binding_action: write on the destination, then read on the source.
  if (!permitted(self, ch, perm::write, spec.to_exchange ? kind::exchange : kind::queue,
                 spec.destination, cls, mth) ||
      !permitted(self, ch, perm::read, kind::exchange, spec.source, cls, mth))
    return;
  auto n = ch.number;
  spec.conn = caf::actor_cast<caf::actor>(self);
  auto& st = self->state;
  if (st.topics.names(spec.source) &&
      !st.topics.allows(perm::read, spec.source, spec.key))  // applied to a topic exchange
    spec.topic_refused = access::topic_refused_text(spec.key, spec.source, st.vhost_name,
                                                    st.user);
  auto op = [=](op_result& r) { reply(self, n, r.code, std::move(r.text), cls, mth, no_wait, Ok{}); };
  if (add)
    ask<op_result>(self, self->state.vhost, op, bind_atom::value, std::move(spec));
  else
    ask<op_result>(self, self->state.vhost, op, unbind_atom::value, std::move(spec));
}

}  // namespace

void on_exchange_bind(actor* self, channel_rec& ch, amqp::exchange_bind& m) {
  binding_op<amqp::exchange_bind_ok>(
    self, ch, true,
    binding_spec{m.source, m.destination, true, m.routing_key, std::move(m.arguments), {}}, 40, 30,
    m.no_wait);
}

void on_exchange_unbind(actor* self, channel_rec& ch, amqp::exchange_unbind& m) {
  binding_op<amqp::exchange_unbind_ok>(
    self, ch, false,
    binding_spec{m.source, m.destination, true, m.routing_key, std::move(m.arguments), {}}, 40, 40,
    m.no_wait);
}

void on_queue_bind(actor* self, channel_rec& ch, amqp::queue_bind& m) {
  if (!resolve_queue_name(self, ch, m.queue, 50, 20))
    return;
  binding_op<amqp::queue_bind_ok>(
    self, ch, true,
    binding_spec{m.exchange, m.queue, false, m.routing_key, std::move(m.arguments), {}}, 50, 20,
    m.no_wait);
}

void on_queue_unbind(actor* self, channel_rec& ch, amqp::queue_unbind& m) {
  if (!resolve_queue_name(self, ch, m.queue, 50, 50))
    return;
  binding_op<amqp::queue_unbind_ok>(
    self, ch, false,
    binding_spec{m.exchange, m.queue, false, m.routing_key, std::move(m.arguments), {}}, 50, 50,
    false);
}

void on_queue_declare(actor* self, channel_rec& ch, amqp::queue_declare& m) {
  auto n = ch.number;
  bool no_wait = m.no_wait;
  bool server_named = false;
  if (!m.passive) {
    // A server-named queue is named here, so that its name is what the permission sees.
    if (m.queue.empty()) {
      m.queue = "amq.gen-" + random_token(22);
      server_named = true;
    }
    if (!permitted(self, ch, perm::configure, kind::queue, m.queue, 50, 10))
      return;
  }
  auto refused =
    m.passive ? std::string{} : refused_if_new(self, kind::queue, m.queue, m.arguments);
  queue_spec spec{m.queue,
                  m.passive,
                  m.durable,
                  m.exclusive,
                  m.auto_delete,
                  std::move(m.arguments),
                  caf::actor_cast<caf::actor>(self),
                  server_named,
                  std::move(refused)};
  when_routed(self, [=]() mutable {
    ask<queue_declared>(
      self, self->state.vhost,
      [=](queue_declared& r) {
        auto& st = self->state;
        if (r.code == 0) {
          auto it = st.channels.find(n);
          if (it != st.channels.end())
            it->second.last_queue = r.name;
          st.queue_cache[r.name] = r.queue;
          self->monitor(r.queue);
        }
        amqp::queue_declare_ok ok;
        ok.queue = r.name;
        ok.message_count = r.messages;
        ok.consumer_count = r.consumers;
        reply(self, n, r.code, std::move(r.text), 50, 10, no_wait, ok);
      },
      declare_atom::value, queue_atom::value, std::move(spec));
  });
}

void on_queue_purge(actor* self, channel_rec& ch, amqp::queue_purge& m) {
  if (!resolve_queue_name(self, ch, m.queue, 50, 30) ||
      !permitted(self, ch, perm::read, kind::queue, m.queue, 50, 30))
    return;
  auto n = ch.number;
  bool no_wait = m.no_wait;
  auto name = m.queue;
  when_routed(self, [=] {
    ask<op_result>(
      self, self->state.vhost,
      [=](op_result& r) {
        amqp::queue_purge_ok ok;
        ok.message_count = r.count;
        reply(self, n, r.code, std::move(r.text), 50, 30, no_wait, ok);
      },
      purge_atom::value, name, caf::actor_cast<caf::actor>(self));
  });
}

void on_queue_delete(actor* self, channel_rec& ch, amqp::queue_delete& m) {
  if (!resolve_queue_name(self, ch, m.queue, 50, 40) ||
      !permitted(self, ch, perm::configure, kind::queue, m.queue, 50, 40))
    return;
  auto n = ch.number;
  bool no_wait = m.no_wait;
  auto name = m.queue;
  bool if_unused = m.if_unused, if_empty = m.if_empty;
  when_routed(self, [=] {
    ask<op_result>(
      self, self->state.vhost,
      [=](op_result& r) {
        if (r.code == 0)
          drop_cached_queue(self, name);
        amqp::queue_delete_ok ok;
        ok.message_count = r.count;
        reply(self, n, r.code, std::move(r.text), 50, 40, no_wait, ok);
      },
      delete_atom::value, queue_atom::value, name, caf::actor_cast<caf::actor>(self), if_unused,
      if_empty);
  });
}

}  // namespace warren::conn
