// One AMQP client socket: reads, frames and assembles commands on the I/O thread and hands them
// to its connection actor in one message per socket read; coalesces the actor's outbound bytes
// into as few socket writes as possible; sends and checks heartbeats; pauses reading while the
// actor has too many unprocessed bytes (CAF mailboxes are unbounded).
// All socket state lives on the session's strand; the public methods marked thread-safe may be
// called from the connection actor on any CAF worker.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio.hpp>
#include <caf/all.hpp>

#include "protocol/amqp091/assembler.hpp"

namespace warren::net {

struct inbound_batch {
  std::vector<amqp::command> commands;
  size_t bytes = 0;  // socket bytes these commands came from, for processed()
  uint16_t error_code = 0;  // a connection-level protocol fault after the commands, if nonzero
  std::string error_text;
  uint16_t error_class = 0;
  uint16_t error_method = 0;
};

class amqp_session : public std::enable_shared_from_this<amqp_session> {
public:
  amqp_session(boost::asio::ip::tcp::socket socket);
  ~amqp_session();

  // Starts reading; `conn` receives (start_atom), (inbound_atom, inbound_batch),
  // (closed_atom, std::string reason) and (drained_atom).
  void start(caf::actor conn);

  // Thread-safe.
  void write(std::string bytes);
  void processed(size_t bytes);
  void set_limits(uint32_t frame_max, uint16_t heartbeat_seconds);
  void close();  // flushes pending writes, then closes
  size_t unwritten() const { return unwritten_.load(std::memory_order_relaxed); }
  void want_drained();  // (drained_atom) once unwritten() falls below the low-water mark

  const std::string& peer() const { return peer_; }

  static constexpr size_t write_high_water = 1 << 20;
  static constexpr size_t write_low_water = 256 << 10;
  static constexpr size_t read_high_water = 4 << 20;
  static constexpr size_t read_low_water = 1 << 20;

private:
  void do_read();
  void on_read(const boost::system::error_code& ec, size_t n);
  void parse();
  void flush();
  void on_written(const boost::system::error_code& ec, size_t n);
  void arm_heartbeat();
  void shutdown(const std::string& reason);

  boost::asio::ip::tcp::socket socket_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  boost::asio::steady_timer heartbeat_timer_;
  caf::actor conn_;
  std::string peer_;

  std::vector<char> rbuf_;
  size_t rlen_ = 0;
  bool header_seen_ = false;
  bool reading_ = false;
  bool read_stopped_ = false;  // after a protocol fault or close
  size_t inflight_ = 0;
  amqp::assembler assembler_;
  std::atomic<uint32_t> frame_max_{131072};
  uint16_t heartbeat_ = 0;
  std::chrono::steady_clock::time_point last_read_, last_write_;

  std::string writing_;  // buffer of the write in progress
  std::string pending_;  // bytes queued behind it
  bool write_in_progress_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool drain_wanted_ = false;
  std::atomic<size_t> unwritten_{0};
};

}  // namespace warren::net

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::net::inbound_batch)
