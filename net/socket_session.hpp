// One client socket, protocol-neutral: reads into a buffer and lets the protocol's parse()
// turn what arrived into one actor message per socket read; coalesces the actor's outbound
// bytes into as few socket writes as possible; sends heartbeats when idle and drops a peer
// silent for too long; pauses reading while the actor has too many unprocessed bytes (CAF
// mailboxes are unbounded). Everything socket-related runs on the session's strand; the
// methods marked thread-safe may be called from the connection actor on any CAF worker.
// On a TLS listener the session first completes the TLS handshake (within the handshake
// timeout), then reads and writes through the TLS stream, on the strand only.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio.hpp>
#include <caf/all.hpp>

#include "net/tls.hpp"

namespace warren::net {

class socket_session : public std::enable_shared_from_this<socket_session> {
  using clock_rep = std::chrono::steady_clock::rep;

public:
  explicit socket_session(boost::asio::ip::tcp::socket socket);
  // A session on a TLS listener: `tls` is the listener's context.
  socket_session(boost::asio::ip::tcp::socket socket,
                 std::shared_ptr<boost::asio::ssl::context> tls,
                 std::chrono::milliseconds handshake_timeout);
  virtual ~socket_session();

  // Starts reading; `conn` receives what parse() sends, (closed_atom, std::string reason) and
  // (drained_atom).
  void start(caf::actor conn);

  // Thread-safe.
  void write(std::string bytes);
  void processed(size_t bytes);
  // Heartbeats: `beat` is written after `send_every` without other output (0 = never); the
  // peer is dropped after `recv_timeout` of silence (0 = never).
  void set_heartbeat(std::chrono::milliseconds send_every, std::chrono::milliseconds recv_timeout,
                     std::string beat);
  void close();  // flushes pending writes, then closes
  // Flushes pending writes, then leaves the closing to the peer: reads and drops whatever it
  // still sends until it closes, or closes after `linger`. AMQP's side that sends close-ok
  // waits so (RabbitMQ, up to the heartbeat timeout or 30 s): a client that reads EOF before
  // it has finished with close-ok takes the clean close for a broken connection.
  void close_after_peer(std::chrono::milliseconds linger);
  size_t unwritten() const { return unwritten_.load(std::memory_order_relaxed); }
  void want_drained();  // (drained_atom) once unwritten() falls below the low-water mark

  const std::string& peer() const { return peer_; }
  const std::string& local() const { return local_; }  // the listener's address:port
  // Whether the client reached a loopback address of this host (RabbitMQ's loopback_users
  // rule looks at the local address of the socket, not the client's).
  bool local_loopback() const { return local_loopback_; }
  bool tls() const { return tls_ != nullptr; }
  // Thread-safe: the TLS session's details once the handshake is done (`on` false before, and
  // on a plain socket).
  tls_details tls_info() const;

  static constexpr size_t write_high_water = 1 << 20;
  static constexpr size_t write_low_water = 256 << 10;
  static constexpr size_t read_high_water = 4 << 20;
  static constexpr size_t read_low_water = 1 << 20;

protected:
  // Consumes complete protocol units from rbuf_[0, rlen_); returns the number of bytes used.
  // Runs on the strand. Sends the actor whatever it parsed and calls note_inflight() for it.
  virtual size_t parse(std::string_view in) = 0;

  void note_inflight(size_t bytes) { inflight_.fetch_add(bytes); }
  // Hands what parse() found to the actor: through the I/O thread's inline_unit when there is
  // one, which runs the actor right after parse() when `hot` and the thread is not busy;
  // otherwise a CAF worker runs it. A read is hot when it holds at most inline_read_max
  // protocol units, all of the per-message kind (publishes, acks): a client waiting for an
  // answer, or a trickle. A full buffer is throughput, which the workers share out; and
  // declarations, deletions and purges may take long, which must not hold up the sockets.
  void deliver(caf::message msg, bool hot);
  static constexpr size_t inline_read_max = 16;
  void stop_reading() { read_stopped_ = true; }
  void write_on_strand(std::string bytes);  // from parse(): already on the strand
  void close_on_strand();

  caf::actor conn_;

private:
  void do_read();
  void on_read(const boost::system::error_code& ec, size_t n);
  void flush();
  void append_pending(std::string bytes);  // with wmutex_ held
  void on_written(const boost::system::error_code& ec, size_t n);
  void arm_heartbeat();
  void shutdown(const std::string& reason, bool graceful = false);
  void on_handshake(const boost::system::error_code& ec);
  void close_tls();
  void close_socket();
  void linger();
  template <class Handler>
  void async_read_into(boost::asio::mutable_buffer buf, Handler&& h);

  struct tls_state;
  std::unique_ptr<tls_state> tls_;  // null on a plain socket

  boost::asio::ip::tcp::socket socket_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  boost::asio::steady_timer heartbeat_timer_;
  std::string peer_;
  std::string local_;
  bool local_loopback_ = false;

  static constexpr size_t initial_read_buffer = 4096;
  static constexpr size_t busy_read_buffer = 64 * 1024;
  static constexpr size_t min_free_read = 1024;
  std::vector<char> rbuf_;
  size_t rlen_ = 0;
  bool reading_ = false;
  bool read_stopped_ = false;  // after a protocol fault or close
  std::atomic<size_t> inflight_{0};  // bytes handed to the actor and not processed yet
  std::atomic<bool> read_paused_{false};  // do_read() stopped for inflight_

  std::chrono::milliseconds hb_send_{0};
  std::chrono::milliseconds hb_recv_{0};
  std::string hb_bytes_;
  bool hb_armed_ = false;
  std::chrono::steady_clock::time_point last_read_;

  // Write state, shared by the strand and direct writes (write()): guarded by wmutex_.
  std::mutex wmutex_;
  std::string writing_;  // buffer of the async_write in progress
  std::string pending_;  // bytes queued behind it
  bool write_in_progress_ = false;  // the strand owns writing (async_write or about to)
  bool closing_ = false;
  bool wclosed_ = false;  // the socket is closed: nothing more is written
  bool drain_wanted_ = false;
  caf::actor conn_actor_;  // for drained_atom from write()
  std::atomic<clock_rep> last_write_ns_{0};
  std::atomic<size_t> unwritten_{0};
  bool closed_ = false;  // strand only
  std::chrono::milliseconds linger_{0};  // strand only: close_after_peer()'s bound
  bool lingering_ = false;  // strand only: written out, waiting for the peer to close
};

}  // namespace warren::net
