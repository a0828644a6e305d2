// The I/O threads. Each has an io_context of its own (created with concurrency hint 1, so Asio
// takes no locks inside it) and its own inline_unit; an accepted socket is placed on the next
// context in turn and stays there. Nothing is shared between the contexts: a socket_session
// runs on its strand, which lives on its socket's context. The thread that calls run() runs
// the first context, which also holds the listeners and the signal handler.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <caf/all.hpp>

namespace warren::net {

class io_pool {
public:
  // `threads` >= 1; `inline_io`: whether each thread runs the actors its reads wake.
  io_pool(caf::actor_system& sys, size_t threads, bool inline_io);
  ~io_pool();

  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;

  boost::asio::io_context& main() { return *contexts_.front(); }
  size_t size() const { return contexts_.size(); }
  // The executor of the context that takes the next accepted socket (round robin).
  boost::asio::any_io_executor next();

  // Starts the other threads, runs the first context on the calling thread until stop(),
  // then joins them.
  void run();
  void stop();  // thread-safe

private:
  void run_context(size_t i);

  caf::actor_system& sys_;
  bool inline_io_;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  // Keeps the other contexts' run() going while they have no socket yet.
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> next_{0};
};

}  // namespace warren::net
