#include "net/socket_session.hpp"

#include <spdlog/spdlog.h>

#include "actors/messages.hpp"

namespace warren::net {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

socket_session::socket_session(asio::ip::tcp::socket socket)
  : socket_(std::move(socket)),
    strand_(asio::make_strand(socket_.get_executor())),
    heartbeat_timer_(strand_) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  peer_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  auto local = socket_.local_endpoint(ec);
  local_ = ec ? "unknown" : local.address().to_string() + ":" + std::to_string(local.port());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  rbuf_.resize(64 * 1024);
}

socket_session::~socket_session() = default;

void socket_session::start(caf::actor conn) {
  asio::post(strand_, [self = shared_from_this(), conn = std::move(conn)]() mutable {
    self->conn_ = std::move(conn);
    self->last_read_ = self->last_write_ = clock::now();
    self->do_read();
  });
}

void socket_session::do_read() {
  if (reading_ || read_stopped_ || closed_ || inflight_ > read_high_water)
    return;
  if (rbuf_.size() - rlen_ < 4096)
    rbuf_.resize(std::max(rbuf_.size() * 2, rlen_ + 65536));
  reading_ = true;
  socket_.async_read_some(
    asio::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_),
    asio::bind_executor(strand_, [self = shared_from_this()](const boost::system::error_code& ec,
                                                             size_t n) { self->on_read(ec, n); }));
}

void socket_session::on_read(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (ec) {
    shutdown(ec == asio::error::eof ? "client closed the socket" : ec.message());
    return;
  }
  if (closed_ || read_stopped_)
    return;
  rlen_ += n;
  last_read_ = clock::now();
  size_t used = parse(std::string_view{rbuf_.data(), rlen_});
  if (used > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + used, rlen_ - used);
    rlen_ -= used;
  }
  do_read();
}

void socket_session::processed(size_t bytes) {
  asio::post(strand_, [self = shared_from_this(), bytes] {
    self->inflight_ -= std::min(self->inflight_, bytes);
    if (self->inflight_ < read_low_water)
      self->do_read();
  });
}

void socket_session::write(std::string bytes) {
  if (bytes.empty())
    return;
  asio::post(strand_, [self = shared_from_this(), bytes = std::move(bytes)]() mutable {
    self->write_on_strand(std::move(bytes));
  });
}

void socket_session::write_on_strand(std::string bytes) {
  if (closed_ || bytes.empty())
    return;
  unwritten_.fetch_add(bytes.size(), std::memory_order_relaxed);
  if (pending_.empty())
    pending_ = std::move(bytes);
  else
    pending_ += bytes;
  flush();
}

void socket_session::flush() {
  if (write_in_progress_ || closed_)
    return;
  if (pending_.empty()) {
    if (closing_)
      shutdown("closed by broker");
    return;
  }
  writing_.swap(pending_);
  pending_.clear();
  write_in_progress_ = true;
  last_write_ = clock::now();
  asio::async_write(socket_, asio::buffer(writing_),
                    asio::bind_executor(strand_, [self = shared_from_this()](
                                                   const boost::system::error_code& ec, size_t n) {
                      self->on_written(ec, n);
                    }));
}

void socket_session::on_written(const boost::system::error_code& ec, size_t) {
  write_in_progress_ = false;
  unwritten_.fetch_sub(std::min(unwritten(), writing_.size()), std::memory_order_relaxed);
  writing_.clear();
  if (ec) {
    shutdown(ec.message());
    return;
  }
  if (drain_wanted_ && unwritten() < write_low_water) {
    drain_wanted_ = false;
    caf::anon_send(conn_, drained_atom::value);
  }
  flush();
}

void socket_session::want_drained() {
  asio::post(strand_, [self = shared_from_this()] {
    if (self->unwritten() < write_low_water)
      caf::anon_send(self->conn_, drained_atom::value);
    else
      self->drain_wanted_ = true;
  });
}

void socket_session::set_heartbeat(std::chrono::milliseconds send_every,
                                   std::chrono::milliseconds recv_timeout, std::string beat) {
  asio::post(strand_, [self = shared_from_this(), send_every, recv_timeout,
                       beat = std::move(beat)]() mutable {
    self->hb_send_ = send_every;
    self->hb_recv_ = recv_timeout;
    self->hb_bytes_ = std::move(beat);
    self->last_read_ = clock::now();
    if (!self->hb_armed_ && (send_every.count() > 0 || recv_timeout.count() > 0))
      self->arm_heartbeat();
  });
}

void socket_session::arm_heartbeat() {
  using std::chrono::milliseconds;
  auto tick = milliseconds::max();
  if (hb_send_.count() > 0)
    tick = std::min(tick, hb_send_ / 2);
  if (hb_recv_.count() > 0)
    tick = std::min(tick, hb_recv_ / 4);
  tick = std::max(tick, milliseconds(50));
  hb_armed_ = true;
  heartbeat_timer_.expires_after(tick);
  heartbeat_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    self->hb_armed_ = false;
    if (ec || self->closed_)
      return;
    auto now = clock::now();
    if (self->hb_recv_.count() > 0 && now - self->last_read_ > self->hb_recv_) {
      spdlog::warn("missed heartbeats from client {}, timeout: {}ms", self->peer_,
                   self->hb_recv_.count());
      self->shutdown("missed heartbeats");
      return;
    }
    if (self->hb_send_.count() > 0 && now - self->last_write_ >= self->hb_send_ &&
        !self->write_in_progress_ && !self->closing_)
      self->write_on_strand(self->hb_bytes_);
    if (self->hb_send_.count() > 0 || self->hb_recv_.count() > 0)
      self->arm_heartbeat();
  });
}

void socket_session::close() {
  asio::post(strand_, [self = shared_from_this()] { self->close_on_strand(); });
}

void socket_session::close_on_strand() {
  closing_ = true;
  read_stopped_ = true;
  flush();
}

void socket_session::shutdown(const std::string& reason) {
  if (closed_)
    return;
  closed_ = true;
  read_stopped_ = true;
  boost::system::error_code ec;
  heartbeat_timer_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  unwritten_.store(0, std::memory_order_relaxed);
  pending_.clear();
  if (conn_)
    caf::anon_send(conn_, closed_atom::value, reason);
  conn_ = nullptr;  // breaks the session <-> actor cycle from this side
}

}  // namespace warren::net
