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
//
// The move is confirmed, as a publisher with confirms is: each message is tracked until the
// queue that stays confirms it (for a persistent message on a durable queue: once it is on
// that queue's disk), and only then is it gone from here (`settled`). The actor keeps what
// is unconfirmed (at most a window, or the move waits), so if the queue that stays goes away
// mid-move (its node died, or it crashed), nothing is lost: what was not confirmed comes back
// to the yielding queue, which goes on as a queue (`abandon`) with the publishes that waited,
// and its vhost settles the name again when that node is back.
#pragma once

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
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

// A message on its way, until the queue that stays has answered for it.
struct in_flight {
  uint64_t seq = 0;  // the move's publish sequence number
  uint64_t id = 0;   // the source's id for it (its store id)
  message_ptr msg;
  bool redelivered = false;
  bool settled = false;  // confirmed, or refused for good: gone from here
  bool refused = false;  // refused in the last answer (move::refused_): not settled yet
};

// Publishes that reached the yielding actor during the move, with their senders.
using held_publishes = std::vector<std::pair<caf::actor, publish_batch>>;

template <class Self>
class move;

// What the actor does at each step of its move.
template <class Self>
struct steps {
  // Adds messages in order (move::add) until add() says stop, or sends for a page (and calls
  // move::go when it has it), or has nothing left.
  std::function<fill(Self*, move<Self>&)> source;
  // The queue that stays confirmed these, or refused them for good (its limits): they are
  // gone from here. In order, and each time the oldest of those sent.
  std::function<void(Self*, std::vector<in_flight>&)> settled;
  // Everything moved and confirmed.
  std::function<void(Self*)> end;
  // The queue that stays went away: the actor has its behaviour from before the move back,
  // and gets what was not confirmed (in order) and the publishes that waited.
  std::function<void(Self*, std::vector<in_flight>&, held_publishes&)> abandon;
};

// One move, shared by the actor's behaviour while it lasts and the handlers of its pages.
template <class Self>
class move : public std::enable_shared_from_this<move<Self>> {
public:
  static constexpr size_t batch_size = 1024;
  static constexpr size_t batch_bytes = publish_credit::window_bytes / 8;  // (as batch_meter)
  // At most this much unconfirmed: beyond it, the move waits for confirms.
  static constexpr size_t flight_messages = publish_credit::window_messages;
  static constexpr size_t flight_bytes = publish_credit::window_bytes;

  move(Self* self, caf::actor winner, caf::actor vhost, std::string desc, std::string node)
    : self_(self),
      winner_(std::move(winner)),
      vhost_(std::move(vhost)),
      desc_(std::move(desc)),
      node_(std::move(node)) {}

  // Adds one message (`id`: the source's id for it); false when the source should stop and
  // return fill::paused.
  bool add(message_ptr msg, bool redelivered, uint64_t id) {
    if (!b_.items.empty() && b_.redelivered != redelivered)
      flush();
    b_.redelivered = redelivered;
    auto size = msg->body().size();
    b_bytes_ += size;
    flight_bytes_ += size;
    auto seq = ++next_seq_;
    flight_.push_back(in_flight{seq, id, msg, redelivered});
    ++unanswered_;
    b_.items.push_back(publish_item{std::move(msg), seq, full_weight});
    ++moved_;
    if (b_.items.size() == batch_size || b_bytes_ >= batch_bytes)
      flush();
    return !blocked();
  }

  // Starts the move; until it is done, the actor takes only grants, confirms, publishes
  // (which wait), a stop, and the down message of the queue that stays.
  void start(steps<Self> s) {
    steps_ = std::move(s);
    auto self = self_;
    auto mv = this->shared_from_this();
    self->monitor(winner_);
    self->set_default_handler(caf::drop);
    self->set_down_handler([mv](caf::down_msg& dm) {
      if (dm.source == mv->winner_.address())
        mv->lost(dm.reason);
    });
    self->become(
      caf::keep_behavior,
      [mv](grant_atom, uint64_t messages, uint64_t bytes) {
        mv->alive();
        bool was = mv->blocked();
        mv->credit_.grant_from_sender(mv->self_, messages, bytes);
        mv->unblocked(was);
      },
      [mv](confirm_atom, confirm_report& r) { mv->confirmed(r); },
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

  // Asks the source for more, unless the move waits for a grant or confirms.
  void go() {
    loading_ = false;
    if (over_ || source_done_ || blocked())
      return;
    switch (steps_.source(self_, *this)) {
      case fill::paused:
        flush();
        return;
      case fill::loading:
        flush();
        loading_ = true;
        return;
      case fill::done:
        flush();
        source_done_ = true;
        if (unanswered_ == 0)
          finish();
        return;
    }
  }

  size_t moved() const { return moved_; }
  // Moved, or abandoned: a page that arrives now is not the move's.
  bool over() const { return over_; }

private:
  bool blocked() const {
    return credit_.exhausted() || unanswered_ >= flight_messages ||
           flight_bytes_ >= flight_bytes;
  }

  void unblocked(bool was) {
    if (was && !blocked() && !loading_)
      go();
  }

  void flush() {
    if (b_.items.empty())
      return;
    credit_.spend(winner_, b_);
    b_bytes_ = 0;
    b_.publisher = caf::actor_cast<caf::actor>(self_);  // its confirms come here
    self_->send(winner_, publish_atom::value, std::exchange(b_, publish_batch{}));
  }

  in_flight* find(uint64_t seq) {
    if (flight_.empty() || seq < flight_.front().seq || seq - flight_.front().seq >= flight_.size())
      return nullptr;
    return &flight_[seq - flight_.front().seq];
  }

  // A message from the queue that stays after the one with its refusals: those were its own
  // (its length limits), not the nacks of a queue on its way down (whose down message would
  // have come next). They are gone.
  void alive() {
    for (auto seq : refused_)
      if (auto* e = find(seq)) {
        e->refused = false;
        e->settled = true;
        ++refused_total_;
      }
    refused_.clear();
  }

  void confirmed(confirm_report& r) {
    alive();
    bool was = blocked();
    for (auto& ret : r.returns) {
      auto* e = find(ret.seq);
      if (!e || e->settled || e->refused)
        continue;
      flight_bytes_ -= std::min(flight_bytes_, e->msg->body().size());
      --unanswered_;
      if (ret.rejected) {
        e->refused = true;
        refused_.push_back(ret.seq);
      } else {
        e->settled = true;
        ++confirmed_;
      }
    }
    settle_front();
    if (source_done_ && unanswered_ == 0)
      finish();
    else
      unblocked(was);
  }

  // The oldest messages sent, while they are settled, go (steps::settled).
  void settle_front() {
    std::vector<in_flight> gone;
    while (!flight_.empty() && flight_.front().settled) {
      gone.push_back(std::move(flight_.front()));
      flight_.pop_front();
    }
    if (!gone.empty())
      steps_.settled(self_, gone);
  }

  void finish() {
    over_ = true;
    alive();
    settle_front();
    steps_.end(self_);
    forward();
  }

  // The queue that stays went away: what it had not confirmed (or had refused just before it
  // went) comes back, in order, and the actor goes on as before the move.
  void lost(const caf::error& reason) {
    over_ = true;
    std::vector<in_flight> back;
    for (auto& e : flight_)
      if (!e.settled)
        back.push_back(std::move(e));
    bool deleted = !reason || reason == caf::exit_reason::normal;
    spdlog::error("{}: the queue it was moving its messages to on node {} went away ({}) "
                  "after {} of {} sent were confirmed; {} message(s) come back and it stays",
                  desc_, node_, deleted ? "deleted" : self_->home_system().render(reason),
                  confirmed_, moved_ - refused_total_, back.size());
    refused_.clear();
    flight_.clear();
    self_->unbecome();  // the actor's behaviour from before the move
    steps_.abandon(self_, back, held_);
    held_.clear();
  }

  // From now on every publish goes on to the queue that stays (handing the senders their
  // credit back, as the queue would), for forward_time; the actor then logs how many it
  // forwarded and ends.
  void forward() {
    spdlog::warn("{} yields to the queue of the same name on node {}, declared earlier: {} "
                 "message(s) moved there",
                 desc_, node_, moved_ - refused_total_);
    if (refused_total_)
      spdlog::warn("{}: the queue on node {} refused {} of the moved message(s) (its limits)",
                   desc_, node_, refused_total_);
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
      [](confirm_atom, confirm_report&) {},  // (late ones, for refusals)
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
  steps<Self> steps_;
  credit_account credit_;
  publish_batch b_;
  size_t b_bytes_ = 0;  // of the bodies in b_
  size_t moved_ = 0;
  uint64_t next_seq_ = 0;
  std::deque<in_flight> flight_;  // sent, by seq; settled ones leave from the front
  size_t flight_bytes_ = 0;       // of the bodies in flight_ not answered for
  size_t unanswered_ = 0;         // messages in flight_ not answered for
  std::vector<uint64_t> refused_;  // seqs refused in the last answer of the queue that stays
  size_t confirmed_ = 0, refused_total_ = 0;
  bool loading_ = false;
  bool source_done_ = false;
  bool over_ = false;  // moved, or abandoned: pages that still arrive change nothing
  held_publishes held_;  // publishes that came meanwhile
};

// Starts the move of `self`'s messages to `winner` on `node`; see move::start and steps.
// `vhost` is told once the moved messages and the publishes held meanwhile have gone.
template <class Self>
void start(Self* self, caf::actor winner, caf::actor vhost, std::string desc, std::string node,
           steps<Self> s) {
  auto mv = std::make_shared<move<Self>>(self, std::move(winner), std::move(vhost),
                                         std::move(desc), std::move(node));
  mv->start(std::move(s));
}

}  // namespace warren::handover
