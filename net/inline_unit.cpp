#include "net/inline_unit.hpp"

namespace warren::net {

using clock = std::chrono::steady_clock;

namespace {

thread_local inline_unit* this_thread_unit = nullptr;

}  // namespace

inline_unit::inline_unit(caf::actor_system& sys) : caf::execution_unit(&sys) {
  jobs_.reserve(max_resumes);
}

inline_unit::~inline_unit() {
  for (auto* job : jobs_)  // only if run() never came (an exception on the I/O thread)
    to_scheduler(job);
  if (this_thread_unit == this)
    this_thread_unit = nullptr;
}

void inline_unit::bind_to_this_thread() {
  this_thread_unit = this;
}

inline_unit* inline_unit::current() {
  return this_thread_unit;
}

bool inline_unit::busy(clock::time_point now) {
  if (now - window_start_ >= window) {
    window_start_ = now;
    busy_in_window_ = {};
  }
  return busy_in_window_ >= busy_limit;
}

void inline_unit::send(const caf::actor& dest, caf::message msg, bool hot) {
  if (!dest)
    return;
  accepting_ = hot && this_thread_unit == this && !busy(clock::now());
  caf::actor_cast<caf::abstract_actor*>(dest)->enqueue(nullptr, caf::make_message_id(),
                                                       std::move(msg), this);
  accepting_ = false;
}

void inline_unit::exec_later(caf::resumable* job) {
  // CAF holds a reference for us; it goes to the scheduler with the job, or is released
  // after run() has resumed it.
  if (accepting_ && this_thread_unit == this && jobs_.size() < max_resumes)
    jobs_.push_back(job);
  else
    to_scheduler(job);
}

void inline_unit::to_scheduler(caf::resumable* job) {
  system().scheduler().enqueue(job);
}

void inline_unit::run() {
  if (jobs_.empty())
    return;
  auto start = clock::now();
  accepting_ = !busy(start);
  // Jobs woken while one runs are appended (exec_later); index access keeps that valid.
  for (size_t i = 0; i < jobs_.size(); ++i) {
    auto* job = jobs_[i];
    switch (job->resume(this, max_messages)) {
      case caf::resumable::resume_later:  // more in its mailbox: a worker goes on
        to_scheduler(job);
        break;
      case caf::resumable::done:
      case caf::resumable::awaiting_message:
      case caf::resumable::shutdown_execution_unit:
        caf::intrusive_ptr_release(job);
        break;
    }
  }
  jobs_.clear();
  accepting_ = false;
  busy_in_window_ += clock::now() - start;
}

}  // namespace warren::net
