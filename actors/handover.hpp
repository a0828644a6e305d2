// A queue or stream that yields to the one of the same name on another node (two nodes of a
// cluster had one each, cluster/definitions.hpp) hands its messages over: in order, in
// publish batches the other one takes as any publish, then it forwards for a while what still
// arrives (publishes from exchanges here, or from nodes that have not learned of the yield
// yet), and ends. Used by queue_actor.cpp and stream_actor.cpp.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/messages.hpp"

namespace warren::handover {

// How long a queue that yielded forwards what still arrives.
inline constexpr auto forward_time = std::chrono::seconds(10);

// Sends messages to the queue that stays, a batch per `batch_size` of them or per change of
// the redelivered flag.
template <class Self>
class mover {
public:
  static constexpr size_t batch_size = 1024;

  mover(Self* self, caf::actor to) : self_(self), to_(std::move(to)) {}

  void add(message_ptr msg, bool redelivered) {
    if (b_.items.size() == batch_size || (!b_.items.empty() && b_.redelivered != redelivered))
      flush();
    b_.redelivered = redelivered;
    b_.items.push_back(publish_item{std::move(msg), 0, 0});
    ++moved_;
  }

  void flush() {
    if (!b_.items.empty())
      self_->send(to_, publish_atom::value, std::exchange(b_, publish_batch{}));
  }

  size_t moved() const { return moved_; }

private:
  Self* self_;
  caf::actor to_;
  publish_batch b_;
  size_t moved_ = 0;
};

// The actor, `desc` in the log, has moved `moved` messages to `winner` on node `node`: from
// now on it forwards every publish there (handing the senders their credit back, as it
// would), for forward_time; then it logs how many messages it forwarded and ends.
template <class Self>
void forward_for_a_while(Self* self, const caf::actor& winner, std::string desc,
                         const std::string& node, size_t moved) {
  spdlog::warn("{} yields to the queue of the same name on node {}, declared earlier: {} "
               "message(s) moved there",
               desc, node, moved);
  self->delayed_send(self, forward_time, stop_atom::value);
  auto forwarded = std::make_shared<uint64_t>(0);
  self->become(
    [=](publish_atom, publish_batch& b) {
      self->state.grants.took(self, b);
      b.credited = false;
      b.credited_bytes = 0;
      *forwarded += b.items.size();
      self->send(winner, publish_atom::value, std::move(b));
    },
    [=](stop_atom) {
      spdlog::info("{} forwarded {} message(s) published to it after it yielded, and ends",
                   desc, *forwarded);
      self->quit();
    });
}

}  // namespace warren::handover
