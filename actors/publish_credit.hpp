// Credit from the queues and exchanges a connection publishes into (RabbitMQ's credit_flow).
//
// mailbox_flow lets a busy actor stop its publishers, but only once it runs: an actor that
// waits for a worker while its publisher keeps the other one busy cannot say anything, and its
// mailbox grows by whatever the publisher reads meanwhile. CAF's workers run the actors that a
// message just woke before those that yielded, so a queue with a long mailbox (which yields
// after scheduler.max-throughput messages) could wait a second while a publisher filled it
// with several hundred thousand messages.
//
// Credit bounds that without the receiver's help. A connection counts what it sends to each
// queue or exchange (`credited` batches) and stops reading commands once `window_messages`
// messages or `window_bytes` of bodies are outstanding with any one of them. The receiver
// hands the count back (grant_atom) once it has taken half a window from that connection, so
// a connection that stopped always gets its credit back: the receiver takes every message it
// was sent, and more than half a window of them are then owed.
//
// An exchange is a receiver for its connections and a sender for its queues: out of credit
// with one queue, it takes nothing but grants until it has credit again, so its connections
// run out in turn. Batches to other exchanges are not counted (bindings can form a cycle,
// which would then wait for itself).
#pragma once

#include <caf/all.hpp>

#include <algorithm>
#include <cstdint>
#include <unordered_map>

#include "actors/messages.hpp"

namespace warren {

struct publish_credit {
  static constexpr uint64_t window_messages = 20000;
  static constexpr uint64_t window_bytes = uint64_t{16} << 20;

  struct amount {
    uint64_t messages = 0;
    uint64_t bytes = 0;
    bool exhausted() const { return messages >= window_messages || bytes >= window_bytes; }
  };

  // What a credited batch counts (its bytes added up once, by the sender: credit_account).
  static amount of(const publish_batch& b) { return amount{b.items.size(), b.credited_bytes}; }
};

// What a connection has batched since it last sent its batches: it sends them (and spends the
// credit) once this much is waiting, so that commands read while it was stopped do not become
// one batch larger than a window when it goes on.
struct batch_meter {
  static constexpr uint64_t max_messages = 2048;
  static constexpr uint64_t max_bytes = publish_credit::window_bytes / 8;
  uint64_t messages = 0;
  uint64_t bytes = 0;

  // Counts one message; true when the batches should go now.
  bool add(size_t body_bytes) {
    ++messages;
    bytes += body_bytes;
    return messages >= max_messages || bytes >= max_bytes;
  }
  void reset() { messages = bytes = 0; }
};

// The connection's side: what each receiver has not handed back yet.
class credit_account {
public:
  // Before sending `b` to `target`: counts it and marks it for a grant.
  void spend(const caf::actor& target, publish_batch& b) {
    b.credited = true;
    b.credited_bytes = 0;
    for (auto& item : b.items)
      b.credited_bytes += item.msg->body().size();
    auto& out = outstanding_[target.address()];
    bool was = out.exhausted();
    auto a = publish_credit::of(b);
    out.messages += a.messages;
    out.bytes += a.bytes;
    if (!was && out.exhausted())
      ++exhausted_;
  }

  // A grant from `from`; true when this made its receiver usable again.
  bool grant(const caf::actor_addr& from, uint64_t messages, uint64_t bytes) {
    if (!from)  // an anonymous message: no receiver of ours
      return false;
    auto it = outstanding_.find(from);
    if (it == outstanding_.end())
      return false;
    auto& out = it->second;
    bool was = out.exhausted();
    out.messages -= std::min(out.messages, messages);
    out.bytes -= std::min(out.bytes, bytes);
    bool now = out.exhausted();
    if (out.messages == 0 && out.bytes == 0)
      outstanding_.erase(it);
    if (was && !now) {
      --exhausted_;
      return true;
    }
    return false;
  }

  // A grant from the current message's sender (grant_atom).
  template <class Self>
  bool grant_from_sender(Self* self, uint64_t messages, uint64_t bytes) {
    return grant(caf::actor_cast<caf::actor_addr>(self->current_sender()), messages, bytes);
  }

  // The receiver went away: what it owed will not come.
  void forget(const caf::actor_addr& gone) {
    if (!gone)
      return;
    auto it = outstanding_.find(gone);
    if (it == outstanding_.end())
      return;
    if (it->second.exhausted())
      --exhausted_;
    outstanding_.erase(it);
  }

  bool exhausted() const { return exhausted_ != 0; }
  size_t receivers() const { return outstanding_.size(); }

private:
  std::unordered_map<caf::actor_addr, publish_credit::amount> outstanding_;
  size_t exhausted_ = 0;
};

// The receiver's side: what it took from each sender and has not handed back.
class credit_grants {
public:
  // After taking batch `b` (publish_atom): counts it for its sender (a connection, or an
  // exchange) when the sender counted it.
  template <class Self>
  void took(Self* self, const publish_batch& b) {
    if (b.credited)
      took(self, caf::actor_cast<caf::actor>(self->current_sender()), publish_credit::of(b));
  }

  // After taking a credited batch of `a` from `publisher` (the batch's sender).
  template <class Self>
  void took(Self* self, const caf::actor& publisher, publish_credit::amount a) {
    if (!publisher)  // an anonymous message: nobody to grant
      return;
    auto it = owed_.try_emplace(publisher.address()).first;
    auto& owed = it->second;
    owed.messages += a.messages;
    owed.bytes += a.bytes;
    if (owed.messages >= publish_credit::window_messages / 2 ||
        owed.bytes >= publish_credit::window_bytes / 2) {
      self->send(publisher, grant_atom::value, owed.messages, owed.bytes);
      owed_.erase(it);
    }
    // Connections that published a little and left would otherwise stay here for good.
    if (owed_.size() > max_publishers)
      grant_all(self);
  }

  template <class Self>
  void grant_all(Self* self) {
    for (auto& [publisher, owed] : owed_)
      if (auto p = caf::actor_cast<caf::actor>(publisher))  // still there
        self->send(p, grant_atom::value, owed.messages, owed.bytes);
    owed_.clear();
  }

  size_t publishers() const { return owed_.size(); }

  static constexpr size_t max_publishers = 256;

private:
  // By address: an entry does not keep a connection that has gone alive.
  std::unordered_map<caf::actor_addr, publish_credit::amount> owed_;
};

}  // namespace warren
