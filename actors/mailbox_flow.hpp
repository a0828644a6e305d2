// Back-pressure from a busy actor to the connections that publish into it.
//
// CAF mailboxes are unbounded, so an exchange or queue that falls behind would otherwise grow
// without limit. When its mailbox holds more than `high` messages while it handles a publish
// batch, the actor tells that batch's publisher (flow_atom, true); the connection then stops
// reading from its socket. Once the mailbox is down to `low`, every blocked publisher gets
// (flow_atom, false). This is RabbitMQ's credit-flow idea, counted in mailbox messages.
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
  void on_publish(Self* self, const caf::actor& publisher) {
    if (!publisher || self->mailbox().size() <= high)
      return;
    if (blocked.insert(publisher).second)
      self->send(publisher, flow_atom::value, true);
  }

  // Call after handling any message.
  template <class Self>
  void relax(Self* self) {
    if (blocked.empty() || self->mailbox().size() > low)
      return;
    for (auto& p : blocked)
      self->send(p, flow_atom::value, false);
    blocked.clear();
  }
};

}  // namespace warren
