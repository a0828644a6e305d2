#include "net/io_pool.hpp"

#include <pthread.h>

#include <string>

#include "net/inline_unit.hpp"

namespace warren::net {

namespace asio = boost::asio;

io_pool::io_pool(caf::actor_system& sys, size_t threads, bool inline_io)
  : sys_(sys), inline_io_(inline_io) {
  if (threads == 0)
    threads = 1;
  for (size_t i = 0; i < threads; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    if (i > 0)
      guards_.push_back(asio::make_work_guard(*contexts_.back()));
  }
}

io_pool::~io_pool() {
  stop();
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
}

asio::any_io_executor io_pool::next() {
  auto i = next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size();
  return contexts_[i]->get_executor();
}

void io_pool::run_context(size_t i) {
  inline_unit unit{sys_};
  if (inline_io_)
    unit.bind_to_this_thread();
  contexts_[i]->run();
}

void io_pool::run() {
  for (size_t i = 1; i < contexts_.size(); ++i)
    threads_.emplace_back([this, i] {
      auto name = "warren.io." + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      run_context(i);
    });
  run_context(0);
  stop();
  for (auto& t : threads_)
    t.join();
  threads_.clear();
}

void io_pool::stop() {
  for (auto& c : contexts_)
    c->stop();
}

}  // namespace warren::net
