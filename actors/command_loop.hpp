// Pieces the AMQP and STOMP connection actors share around their command loop: a state that
// pauses the loop (`awaiting`) while a request is out, and the publisher side of flow control
// (see mailbox_flow.hpp for the side that asks publishers to wait).
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_set>

#include "actors/access.hpp"
#include "actors/hardening.hpp"
#include "actors/publish_credit.hpp"
#include "actors/registry_actor.hpp"
#include "actors/resource_alarms.hpp"
#include "metrics/probe.hpp"
#include "net/tls.hpp"

namespace warren {

// What both connection actors do first: keep their session and settings, note the peer's and
// the listener's addresses and the time, and install the actor defaults.
template <class Self, class Session, class Settings>
void init_connection(Self* self, std::shared_ptr<Session> session,
                     std::shared_ptr<const Settings> settings, const char* kind) {
  auto& st = self->state;
  st.session = session;
  st.settings = std::move(settings);
  st.peer = session->peer();
  st.local = session->local();
  st.local_loopback = session->local_loopback();
  st.stats.connected_at = metrics::now_ms();
  install_defaults(self, kind);
  // Memory and disk alarms (resource_alarms.hpp): changes through the group, and the state now.
  auto& sys = self->home_system();
  self->join(alarm_group(sys));
  if (auto alarms = current_alarms(sys))
    self->request(alarms, std::chrono::seconds(60), get_atom::value)
      .then([self](alarm_status& s) { on_alarm(self, s.memory, s.disk); },
            [](caf::error&) {});
}

// The user a TLS client's certificate names (RabbitMQ's ssl_cert_login_from): its subject as
// an RFC 4514 string, or its common name; empty without a certificate.
inline std::string certificate_user(const net::tls_details& tls, bool common_name) {
  return common_name ? tls.peer_common_name : tls.peer_subject;
}

// Where the connection stands with the alarms: publishing connections stop at their next
// publish while one is raised (`blocked`), and go on when all are cleared.
struct alarm_block {
  bool memory = false;
  bool disk = false;
  bool blocked = false;  // a publish is waiting for the alarms to clear
  bool raised() const { return memory || disk; }
  // Takes (alarm_atom, memory, disk); true when a blocked connection may go on now.
  bool update(bool now_memory, bool now_disk) {
    memory = now_memory;
    disk = now_disk;
    if (raised() || !blocked)
      return false;
    blocked = false;
    return true;
  }
};

// (permission_atom, permission_info, granted) from the registry, through the vhost's group:
// the connections of that user take the new permissions for what they do next.
template <class Self>
void on_permissions(Self* self, const permission_info& p, bool granted) {
  auto& st = self->state;
  if (p.user != st.user || p.vhost != st.vhost_name)
    return;
  st.perms = granted ? access::vhost_permissions{p.configure, p.write, p.read}
                     : access::vhost_permissions{};
}

// (topic_atom, user, entries) from the registry, through the vhost's group: that user's topic
// permissions in this vhost now.
template <class Self>
void on_topic_permissions(Self* self, const std::string& user,
                          const std::vector<access::topic_entry>& entries) {
  auto& st = self->state;
  if (user == st.user)
    st.topics = access::topic_permissions{entries, st.user, st.vhost_name};
}

// The last statistics report, once, when the socket closes (`report` is the actor's own, found
// by argument-dependent lookup, as is `process` below).
template <class Self>
void report_final(Self* self) {
  auto& st = self->state;
  if (st.stats.reporting && !st.stats.done) {
    st.stats.done = true;
    report(self, st.stats.collector, true);
  }
}

// The session says the socket closed: what was read before still counts (a publish right
// before the close), then the actor stops once that is done.
template <class Self>
void on_socket_closed(Self* self, bool log, const char* protocol, const std::string& reason) {
  auto& st = self->state;
  if (log)
    spdlog::info("closing {} connection {} (user '{}', vhost '{}'): {}", protocol, st.peer,
                 st.user, st.vhost_name, reason);
  st.session = nullptr;
  report_final(self);
  st.peer_gone = true;
  process(self);
}

// Who consumes, in the spec of a consumer of this connection (AMQP or STOMP): what the
// management API of any node shows of it.
template <class State>
void name_consumer(consumer_spec& spec, const State& st) {
  spec.connection_name = st.peer + " -> " + st.local;
  spec.user = st.user;
  spec.node = st.settings->node;
}

// Sends a request with the command loop paused; when the answer comes, resumes the loop, calls
// `f` with it and runs the loop again (`process(self)`). A failed request goes to `on_error`
// (which runs with the loop resumed as well). A request to another cluster node has the
// shorter deadline `remote_timeout`.
template <class R, class Self, class F, class OnError, class Process, class... Ts>
void request_paused(Self* self, const caf::actor& dest, F f, OnError on_error, Process process,
                    Ts&&... xs) {
  self->state.awaiting = true;
  auto deadline =
    dest && dest.node() != self->node() ? remote_timeout : std::chrono::seconds(60);
  self->request(dest, deadline, std::forward<Ts>(xs)...)
    .then(
      [self, f, process](R& r) mutable {
        self->state.awaiting = false;
        f(r);
        process(self);
      },
      [self, on_error, process](caf::error& err) mutable {
        self->state.awaiting = false;
        on_error(err);
        process(self);
      });
}

// Exchanges and queues that asked this connection to stop publishing, and the credit this
// connection has with each receiver (publish_credit.hpp); reading resumes when the last of
// them lets go (or goes away).
struct publisher_flow {
  std::unordered_set<caf::actor_addr> blockers;
  std::unordered_set<caf::actor_addr> watched;  // monitored once, however often they block
  credit_account credit;

  bool blocked() const { return !blockers.empty() || credit.exhausted(); }

  // Handles (flow_atom, block) from the current sender; true when the connection may go on.
  template <class Self>
  bool on_flow(Self* self, bool block) {
    auto src = caf::actor_cast<caf::actor_addr>(self->current_sender());
    if (block) {
      blockers.insert(src);
      if (watched.insert(src).second)
        self->monitor(caf::actor_cast<caf::actor>(src));
      return false;
    }
    blockers.erase(src);
    return true;
  }

  // Handles (grant_atom, messages, bytes) from the current sender; true when the connection
  // may go on.
  template <class Self>
  bool on_grant(Self* self, uint64_t messages, uint64_t bytes) {
    return credit.grant_from_sender(self, messages, bytes) && !blocked();
  }

  void forget(const caf::actor_addr& gone) {
    blockers.erase(gone);
    watched.erase(gone);
    credit.forget(gone);
  }
};

}  // namespace warren
