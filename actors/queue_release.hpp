// What a channel or a STOMP connection lets go of when it closes, queue by queue: its consumers
// and the deliveries it had not acknowledged, sent as one release_atom per queue so that the
// queue drops the consumers and requeues the messages in one step.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace warren {

class queue_release {
 public:
  void consumer(const caf::actor& queue, uint64_t consumer_id) {
    entry_of(queue).consumers.push_back(consumer_id);
  }
  void message(const caf::actor& queue, uint64_t msg_id) {
    entry_of(queue).messages.push_back(msg_id);
  }
  void messages(const caf::actor& queue, const std::vector<uint64_t>& msg_ids) {
    auto& e = entry_of(queue);
    e.messages.insert(e.messages.end(), msg_ids.begin(), msg_ids.end());
  }

  // Sends the releases from `self` (the consumers' connection) and forgets them.
  template <class Self>
  void send_from(Self* self) {
    for (auto& [addr, e] : by_queue_)
      self->send(e.queue, release_atom::value, self->id(), std::move(e.consumers),
                 std::move(e.messages));
    by_queue_.clear();
  }

 private:
  struct entry {
    caf::actor queue;
    std::vector<uint64_t> consumers;
    std::vector<uint64_t> messages;
  };

  entry& entry_of(const caf::actor& queue) {
    auto& e = by_queue_[queue.address()];
    e.queue = queue;
    return e;
  }

  std::unordered_map<caf::actor_addr, entry> by_queue_;
};

}  // namespace warren
