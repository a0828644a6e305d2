// Back-pressure from a busy actor to the connections that publish into it.
//
// CAF mailboxes are unbounded, so an exchange or queue that falls behind would otherwise grow
// without limit. When its mailbox holds more than `high` messages while it handles a publish
// batch, the actor tells that batch's publisher (flow_atom, true); the connection then stops
// reading from its socket. Once the mailbox is down to `low`, every blocked publisher gets
// (flow_atom, false). Both go out at high priority: CAF runs a mailbox's urgent messages first,
// so a connection stops before the socket reads already queued for it, not after them. This
// is RabbitMQ's credit-flow idea, counted in mailbox messages.
// An actor may add a pressure of its own (`backlogged`): a queue whose consumers fall behind
// its publishers (see queue_actor.cpp) blocks them the same way, through the same set, so
// that one signal never undoes the other.
#pragma once

#include <caf/all.hpp>

#include <unordered_set>

#include "actors/messages.hpp"

namespace warren {

struct mailbox_flow {
  std::unordered_set<caf::actor> blocked;
  static constexpr size_t high = 400;
  static constexpr size_t low = 50;

  // Call while handling a publish batch from `publisher`.
  template <class Self>
  void on_publish(Self* self, const caf::actor& publisher, bool backlogged = false) {
    if (!publisher || (self->mailbox().size() <= high && !backlogged))
      return;
    if (blocked.insert(publisher).second)
      self->template send<caf::message_priority::high>(publisher, flow_atom::value, true);
  }

  // Call after handling any message; `backlogged`: the actor's own pressure is still above
  // its low mark.
  template <class Self>
  void relax(Self* self, bool backlogged = false) {
    if (blocked.empty() || self->mailbox().size() > low || backlogged)
      return;
    release(self);
  }

  // Every blocked publisher goes on, whatever the mailbox holds: for an actor that paces its
  // publishers otherwise from now on (a queue that yields: handover.hpp).
  template <class Self>
  void release(Self* self) {
    for (auto& p : blocked)
      self->template send<caf::message_priority::high>(p, flow_atom::value, false);
    blocked.clear();
  }
};

}  // namespace warren
