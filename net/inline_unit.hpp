// Lets the I/O thread run the actors its socket reads wake, instead of handing every read to
// a CAF worker. At a low message rate each hand-off costs a thread wake-up (a futex wake of a
// sleeping worker), which is a large part of a message's latency: run on the thread that read
// the bytes, a publish reaches the consumer's socket with no wake-up besides the read's own.
//
// It is a CAF execution unit: an actor woken by send() below, or by an actor this unit runs,
// is queued here (CAF calls exec_later) and run by run(), with the same resume() a CAF worker
// calls. Everything else goes to CAF's scheduler as before:
//   - a message the caller does not mark hot (socket_session::deliver says which are),
//   - whatever arrives from another thread (an actor context left pointing here),
//   - what is woken once the I/O thread has spent `busy_limit` of the current `window` running
//     actors, so that under load the work spreads over the workers and the I/O thread keeps
//     reading,
//   - an actor that used up its share of a run (max_messages) or came after max_resumes
//     others in one run.
// CAF never runs one actor on two threads at once, whichever unit resumes it, so actors see
// no difference; they must not block, which they don't anyway.
#pragma once

#include <chrono>
#include <vector>

#include <caf/all.hpp>

namespace warren::net {

class inline_unit final : public caf::execution_unit {
public:
  explicit inline_unit(caf::actor_system& sys);
  ~inline_unit() override;

  // Makes this the calling thread's unit (the thread that runs the io_context).
  void bind_to_this_thread();
  // The calling thread's unit, or nullptr.
  static inline_unit* current();

  // Delivers `msg` to `dest` (no sender); if `hot` and the thread is not busy, `dest` runs
  // here at the next run() when the message wakes it.
  void send(const caf::actor& dest, caf::message msg, bool hot);
  // Runs the actors queued here, and those they wake in turn, within the limits above.
  void run();

  void exec_later(caf::resumable* job) override;

  static constexpr size_t max_messages = 64;  // per actor per run
  static constexpr size_t max_resumes = 64;   // actors per run
  static constexpr std::chrono::milliseconds window{20};
  static constexpr std::chrono::milliseconds busy_limit{5};  // of each window

private:
  void to_scheduler(caf::resumable* job);
  bool busy(std::chrono::steady_clock::time_point now);

  std::vector<caf::resumable*> jobs_;
  bool accepting_ = false;  // exec_later() queues here (only during send() and run())
  std::chrono::steady_clock::time_point window_start_{};
  std::chrono::steady_clock::duration busy_in_window_{};
};

}  // namespace warren::net
