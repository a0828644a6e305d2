// The delivery acknowledgement timeout (RabbitMQ's consumer_timeout): a channel whose oldest
// unacknowledged delivery, to a consumer or by basic.get, is older than the timeout is closed
// with 406 PRECONDITION_FAILED, and what it had unacknowledged goes back to its queues. A STOMP
// connection (RabbitMQ's adapter runs one channel for it) gets an ERROR frame and is closed.
//
// RabbitMQ looks at the oldest delivery once a minute (its channel tick); Warren closes the
// channel when the timeout is up, so a channel lives at most the timeout past its oldest
// delivery rather than up to a minute more.
//
// The delivery times are kept per run of deliveries rather than per delivery: a channel holds
// (first delivery tag, time) each time its deliveries reach a new millisecond, one read of the
// coarse clock per delivery batch, and drops the runs that are wholly acknowledged as acks come.
#pragma once

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

#include "actors/messages.hpp"

namespace warren {

// Milliseconds on the monotonic clock, read cheaply (a few ms of resolution).
inline int64_t coarse_now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

class delivery_clock {
 public:
  // The deliveries from `tag` on (tags only grow) were made at `now`.
  void stamp(uint64_t tag, int64_t now) {
    if (runs_.empty() || runs_.back().at != now)
      runs_.push_back(run{tag, now});
  }

  // `oldest` is the smallest tag still unacknowledged: the runs wholly before it go.
  void trim(uint64_t oldest) {
    while (runs_.size() > 1 && runs_[1].tag <= oldest)
      runs_.pop_front();
  }

  void clear() { runs_.clear(); }

  // Deliveries from `tag` on, older than every run, are back (a transaction's acks rolled
  // back): counted from `now`.
  void restamp_front(uint64_t tag, int64_t now) {
    if (runs_.empty() || runs_.front().tag > tag)
      runs_.push_front(run{tag, now});
  }

  // After acks, with what is still unacked (ordered by `tag`).
  template <class Entry>
  void settled(const std::deque<Entry>& unacked, uint64_t Entry::*tag) {
    if (unacked.empty())
      clear();
    else
      trim(unacked.front().*tag);
  }

  // When the delivery `oldest` (the smallest tag still unacknowledged) was made; -1 if it was
  // never stamped.
  int64_t delivered_at(uint64_t oldest) {
    trim(oldest);
    return runs_.empty() || runs_.front().tag > oldest ? -1 : runs_.front().at;
  }

  size_t runs() const { return runs_.size(); }

 private:
  struct run {
    uint64_t tag;
    int64_t at;
  };
  std::deque<run> runs_;
};

// Sends `self` an ack_timeout_atom `delay_ms` from now.
template <class Self>
void arm_ack_check(Self* self, bool& armed, int64_t delay_ms) {
  armed = true;
  self->delayed_send(self, std::chrono::milliseconds(std::max<int64_t>(1, delay_ms)),
                     ack_timeout_atom::value);
}

// Stamps the deliveries from `tag` on with the time and, unless one is on its way already,
// sends `self` an ack_timeout_atom for when they would time out.
template <class Self>
void stamp_deliveries(Self* self, delivery_clock& clock, bool& armed, uint32_t timeout_ms,
                      uint64_t tag) {
  if (timeout_ms == 0)
    return;
  clock.stamp(tag, coarse_now_ms());
  if (!armed)
    arm_ack_check(self, armed, timeout_ms);
}

// RabbitMQ 3.10's reply text, word for word.
inline std::string ack_timeout_text(uint16_t channel, uint32_t timeout_ms) {
  return "PRECONDITION_FAILED - delivery acknowledgement on channel " + std::to_string(channel) +
         " timed out. Timeout value used: " + std::to_string(timeout_ms) +
         " ms. This timeout value can be configured, see consumers doc guide to learn more";
}

}  // namespace warren
