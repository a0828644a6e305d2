// A queue or stream that yields to the one of the same name on another node (two nodes of a
// cluster had one each, cluster/definitions.hpp) hands its messages over: in order, in
// publish batches the other one takes as any publish, then it forwards for a while what still
// arrives (publishes from exchanges here, or from nodes that have not learned of the yield
// yet), and ends. Used by queue_actor.cpp and stream_actor.cpp.
//
// The move is paced. What goes counts against publish credit with the queue that stays
// (publish_credit.hpp), and the move waits for its grants once a window is out; what only
// the store has is read back a page at a time, when the move gets to it. So neither node
// holds more than a window and a page of the move at once, however long the queue. Publishes
// that arrive meanwhile wait, their credit not handed back, so their publishers stop after a
// window; they follow the moved messages once those have gone. Only then does the vhost
// route this node's exchanges and connections to the queue that stays, so a publisher's later
// messages never overtake its earlier ones.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "actors/messages.hpp"
#include "actors/publish_credit.hpp"

namespace warren::handover {

// How long a queue that yielded forwards what still arrives.
inline constexpr auto forward_time = std::chrono::seconds(10);

// What the source of a move did when asked for messages (see `move`).
enum class fill {
  paused,   // the queue that stays has a window out: wait for its grant
  loading,  // a page is on its way from the store; its handler calls move::go again
  done,     // nothing left
};

// One move, shared by the actor's behaviour while it lasts and the handlers of its pages.
template <class Self>
class move : public std::enable_shared_from_this<move<Self>> {
public:
  static constexpr size_t batch_size = 1024;
  static constexpr size_t batch_bytes = publish_credit::window_bytes / 8;  // (as batch_meter)

  move(Self* self, caf::actor winner, caf::actor vhost, std::string desc, std::string node)
    : self_(self),
      winner_(std::move(winner)),
      vhost_(std::move(vhost)),
      desc_(std::move(desc)),
      node_(std::move(node)) {}

  // Adds one message; false when the source should stop and return fill::paused.
  bool add(message_ptr msg, bool redelivered) {
    if (!b_.items.empty() && b_.redelivered != redelivered)
      flush();
    b_.redelivered = redelivered;
    b_bytes_ += msg->body().size();
    b_.items.push_back(publish_item{std::move(msg), 0, 0});
    ++moved_;
    if (b_.items.size() == batch_size || b_bytes_ >= batch_bytes)
      flush();
    return !credit_.exhausted();
  }

  // Starts the move: `source(self, move&)` adds messages in order until add() says stop, or
  // it sends for a page (and calls go() when it has it), or it has nothing left; `end(self)`
  // runs once all has gone. Until then the actor takes only grants, publishes (which wait),
  // a stop, and the down message of the queue that stays.
  template <class Source, class End>
  void start(Source source, End end) {
    source_ = std::move(source);
    end_ = std::move(end);
    auto self = self_;
    auto mv = this->shared_from_this();
    self->monitor(winner_);
    self->set_default_handler(caf::drop);
    self->set_down_handler([mv](caf::down_msg& dm) {
      if (dm.source == mv->winner_.address())
        mv->lost(dm.reason);
    });
    self->become(
      [mv](grant_atom, uint64_t messages, uint64_t bytes) {
        if (mv->credit_.grant_from_sender(mv->self_, messages, bytes) && !mv->loading_)
          mv->go();
      },
      [mv](publish_atom, publish_batch& b) {
        mv->held_.emplace_back(caf::actor_cast<caf::actor>(mv->self_->current_sender()),
                               std::move(b));
      },
      [mv](flow_atom, bool) {},  // the credit paces the move
      [mv](stop_atom) {
        spdlog::warn("{} stops before it has moved all its messages to node {} ({} moved)",
                     mv->desc_, mv->node_, mv->moved_);
        mv->self_->quit();
      });
    go();
  }

  // Asks the source for more, unless the move waits for a grant.
  void go() {
    loading_ = false;
    if (credit_.exhausted())
      return;
    switch (source_(self_, *this)) {
      case fill::paused:
        flush();
        return;
      case fill::loading:
        flush();
        loading_ = true;
        return;
      case fill::done:
        flush();
        end_(self_);
        forward();
        return;
    }
  }

  size_t moved() const { return moved_; }

private:
  void flush() {
    if (b_.items.empty())
      return;
    credit_.spend(winner_, b_);
    b_bytes_ = 0;
    self_->send(winner_, publish_atom::value, std::exchange(b_, publish_batch{}));
  }

  void lost(const caf::error& reason) {
    spdlog::error("{}: the queue it was moving its messages to on node {} went away ({}) after "
                  "{} message(s); it ends with the rest",
                  desc_, node_, self_->home_system().render(reason), moved_);
    self_->quit(reason);
  }

  // From now on every publish goes on to the queue that stays (handing the senders their
  // credit back, as the queue would), for forward_time; the actor then logs how many it
  // forwarded and ends.
  void forward() {
    spdlog::warn("{} yields to the queue of the same name on node {}, declared earlier: {} "
                 "message(s) moved there",
                 desc_, node_, moved_);
    auto self = self_;
    auto winner = winner_;
    auto desc = desc_;
    auto forwarded = std::make_shared<uint64_t>(0);
    auto pass_on = [self, winner, forwarded](const caf::actor& sender, publish_batch& b) {
      if (b.credited)
        self->state.grants.took(self, sender, publish_credit::of(b));
      b.credited = false;
      b.credited_bytes = 0;
      *forwarded += b.items.size();
      self->send(winner, publish_atom::value, std::move(b));
    };
    for (auto& [sender, b] : held_)
      pass_on(sender, b);
    held_.clear();
    // Its vhost routes to the queue that stays from now on (what still comes here follows).
    self->send(vhost_, yield_atom::value, self->address());
    self->demonitor(winner);
    self->delayed_send(self, forward_time, stop_atom::value);
    self->become(
      [self, pass_on](publish_atom, publish_batch& b) {
        pass_on(caf::actor_cast<caf::actor>(self->current_sender()), b);
      },
      [self, desc, forwarded](stop_atom) {
        spdlog::info("{} forwarded {} message(s) published to it after it yielded, and ends",
                     desc, *forwarded);
        self->quit();
      });
  }

  Self* self_;
  caf::actor winner_;
  caf::actor vhost_;  // told when the move is done: (yield_atom, this actor's address)
  std::string desc_;
  std::string node_;
  std::function<fill(Self*, move&)> source_;
  std::function<void(Self*)> end_;
  credit_account credit_;
  publish_batch b_;
  size_t b_bytes_ = 0;  // of the bodies in b_
  size_t moved_ = 0;
  bool loading_ = false;
  std::vector<std::pair<caf::actor, publish_batch>> held_;  // publishes that came meanwhile
};

// Starts the move of `self`'s messages to `winner` on `node`; see move::start. `vhost` is
// told once the moved messages and the publishes held meanwhile have gone.
template <class Self, class Source, class End>
void start(Self* self, caf::actor winner, caf::actor vhost, std::string desc, std::string node,
           Source source, End end) {
  auto mv = std::make_shared<move<Self>>(self, std::move(winner), std::move(vhost),
                                         std::move(desc), std::move(node));
  mv->start(std::move(source), std::move(end));
}

}  // namespace warren::handover
