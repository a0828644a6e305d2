#include "net/socket_session.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include <boost/asio/ssl.hpp>
#include <spdlog/spdlog.h>

#include "actors/access.hpp"
#include "actors/messages.hpp"
#include "net/inline_unit.hpp"

namespace warren::net {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

struct socket_session::tls_state {
  tls_state(asio::ip::tcp::socket& s, std::shared_ptr<asio::ssl::context> c,
            std::chrono::milliseconds timeout)
    : ctx(std::move(c)), stream(s, *ctx), handshake_timeout(timeout) {}

  std::shared_ptr<asio::ssl::context> ctx;
  asio::ssl::stream<asio::ip::tcp::socket&> stream;
  std::chrono::milliseconds handshake_timeout;
  bool established = false;  // the handshake is done (strand only)
  bool closing = false;  // close_notify under way (strand only)
  mutable std::mutex mutex;
  tls_details details;  // guarded by mutex
};

socket_session::socket_session(asio::ip::tcp::socket socket,
                               std::shared_ptr<asio::ssl::context> tls,
                               std::chrono::milliseconds handshake_timeout)
  : socket_session(std::move(socket)) {
  tls_ = std::make_unique<tls_state>(socket_, std::move(tls), handshake_timeout);
}

tls_details socket_session::tls_info() const {
  if (!tls_)
    return {};
  std::lock_guard lock{tls_->mutex};
  return tls_->details;
}

template <class Handler>
void socket_session::async_read_into(asio::mutable_buffer buf, Handler&& h) {
  auto bound = asio::bind_executor(strand_, std::forward<Handler>(h));
  if (tls_)
    tls_->stream.async_read_some(buf, std::move(bound));
  else
    socket_.async_read_some(buf, std::move(bound));
}

socket_session::socket_session(asio::ip::tcp::socket socket)
  : socket_(std::move(socket)),
    strand_(asio::make_strand(socket_.get_executor())),
    heartbeat_timer_(strand_) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  peer_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  auto local = socket_.local_endpoint(ec);
  local_ = ec ? "unknown" : local.address().to_string() + ":" + std::to_string(local.port());
  local_loopback_ = !ec && access::is_loopback_address(local.address().to_string());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  // Small at first: an idle connection costs one page, a busy one grows its buffer (see
  // on_read), so that 500 idle clients do not hold 32 MiB of read buffers.
  rbuf_.resize(initial_read_buffer);
}

socket_session::~socket_session() = default;

void socket_session::start(caf::actor conn) {
  asio::post(strand_, [self = shared_from_this(), conn = std::move(conn)]() mutable {
    {
      std::lock_guard lock{self->wmutex_};
      self->conn_actor_ = conn;
    }
    self->conn_ = std::move(conn);
    self->last_read_ = clock::now();
    self->last_write_ns_.store(self->last_read_.time_since_epoch().count());
    if (!self->tls_) {
      self->do_read();
      return;
    }
    // The handshake first, bounded in time (RabbitMQ's ssl_handshake_timeout); the timer is
    // the heartbeat's, which the protocol sets only after the first read.
    self->heartbeat_timer_.expires_after(self->tls_->handshake_timeout);
    self->heartbeat_timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec && !self->closed_) {
        spdlog::warn("TLS handshake with {} timed out", self->peer_);
        self->shutdown("TLS handshake timed out");
      }
    });
    self->tls_->stream.async_handshake(
      asio::ssl::stream_base::server,
      asio::bind_executor(self->strand_, [self](const boost::system::error_code& ec) {
        self->on_handshake(ec);
      }));
  });
}

void socket_session::on_handshake(const boost::system::error_code& ec) {
  if (closed_)
    return;
  heartbeat_timer_.cancel();
  if (ec) {
    spdlog::warn("TLS handshake with {} failed: {}", peer_, ec.message());
    shutdown("TLS handshake failed: " + ec.message());
    return;
  }
  auto details = read_tls_details(tls_->stream.native_handle());
  spdlog::info("TLS connection {}: {} {}{}", peer_, details.protocol, details.cipher,
               details.has_peer_cert() ? ", client certificate " + details.peer_subject : "");
  {
    std::lock_guard lock{tls_->mutex};
    tls_->details = std::move(details);
  }
  tls_->established = true;
  last_read_ = clock::now();
  do_read();
}

void socket_session::do_read() {
  if (reading_ || read_stopped_ || closed_)
    return;
  if (inflight_.load() > read_high_water) {
    // Paused until processed() brings it below the low-water mark. Checked again after the
    // flag is up, so that a processed() in between cannot be missed.
    read_paused_.store(true);
    if (inflight_.load() > read_high_water)
      return;
    read_paused_.store(false);
  }
  if (rbuf_.size() - rlen_ < min_free_read)  // a large frame in progress
    rbuf_.resize(std::max(rbuf_.size() * 2, rlen_ + busy_read_buffer));
  reading_ = true;
  async_read_into(asio::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_),
                  [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                    self->on_read(ec, n);
                  });
}

void socket_session::on_read(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (tls_ && tls_->closing) {  // the read was cancelled for the close_notify
    close_tls();
    return;
  }
  if (ec) {
    shutdown(ec == asio::error::eof ? "client closed the socket" : ec.message());
    return;
  }
  if (closed_)
    return;
  if (lingering_) {  // after close-ok: what the peer still sends is dropped
    rlen_ = 0;
    linger();
    return;
  }
  if (read_stopped_)
    return;
  bool filled = rlen_ + n == rbuf_.size();
  rlen_ += n;
  last_read_ = clock::now();
  size_t used = parse(std::string_view{rbuf_.data(), rlen_});
  if (auto* unit = inline_unit::current())
    unit->run();
  if (used > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + used, rlen_ - used);
    rlen_ -= used;
  }
  if (filled && rbuf_.size() < busy_read_buffer)  // more was waiting: read more at a time
    rbuf_.resize(std::min(rbuf_.size() * 4, busy_read_buffer));
  else if (rlen_ == 0 && rbuf_.size() > 2 * busy_read_buffer)  // after a large frame
    std::vector<char>(busy_read_buffer).swap(rbuf_);
  do_read();
}

void socket_session::deliver(caf::message msg, bool hot) {
  if (auto* unit = inline_unit::current())
    unit->send(conn_, std::move(msg), hot);
  else
    caf::actor_cast<caf::abstract_actor*>(conn_)->enqueue(nullptr, caf::make_message_id(),
                                                          std::move(msg), nullptr);
}

// Called by the connection actor for every batch it handled: only when reading is paused does
// it cost a hop to the I/O thread.
void socket_session::processed(size_t bytes) {
  auto left = inflight_.load();
  size_t now;
  do
    now = left - std::min(left, bytes);
  while (!inflight_.compare_exchange_weak(left, now));
  if (now < read_low_water && read_paused_.exchange(false))
    asio::post(strand_, [self = shared_from_this()] {
      self->last_read_ = clock::now();  // the heartbeat clock starts again (arm_heartbeat)
      self->do_read();
    });
}

// The connection actor writes straight into the socket when nothing is queued (a
// non-blocking send on its worker thread: no hop to the I/O thread, which saves a thread
// wake-up per delivery); whatever the kernel does not take at once goes to the strand, which
// writes it, and everything queued behind it, with async_write. The write state is guarded by
// wmutex_, which the strand also holds while it closes the socket, so a direct send never
// reaches a closed (or reused) descriptor.
void socket_session::write(std::string bytes) {
  if (bytes.empty())
    return;
  std::unique_lock lock{wmutex_};
  if (wclosed_ || closing_)
    return;
  unwritten_.fetch_add(bytes.size(), std::memory_order_relaxed);
  if (write_in_progress_) {  // on_written() takes it from there
    append_pending(std::move(bytes));
    return;
  }
  if (tls_) {  // a TLS stream is written on the strand only
    write_in_progress_ = true;
    append_pending(std::move(bytes));
    lock.unlock();
    asio::post(strand_, [self = shared_from_this()] { self->flush(); });
    return;
  }
  size_t sent = 0;
  int err = 0;
  auto fd = socket_.native_handle();
  while (sent < bytes.size()) {
    auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      err = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK ? errno : 0;
      break;
    }
  }
  unwritten_.fetch_sub(sent, std::memory_order_relaxed);
  if (sent > 0)
    last_write_ns_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  if (err != 0) {
    lock.unlock();
    asio::post(strand_, [self = shared_from_this(), err] {
      self->shutdown(std::system_category().message(err));
    });
    return;
  }
  if (sent < bytes.size()) {  // the kernel's buffer is full: the strand waits for room
    write_in_progress_ = true;
    append_pending(bytes.substr(sent));
    lock.unlock();
    asio::post(strand_, [self = shared_from_this()] { self->flush(); });
    return;
  }
  if (drain_wanted_ && unwritten() < write_low_water) {
    drain_wanted_ = false;
    caf::anon_send(conn_actor_, drained_atom::value);
  }
}

void socket_session::append_pending(std::string bytes) {
  if (pending_.empty())
    pending_ = std::move(bytes);
  else
    pending_ += bytes;
}

void socket_session::write_on_strand(std::string bytes) {
  if (bytes.empty())
    return;
  {
    std::lock_guard lock{wmutex_};
    if (wclosed_)
      return;
    unwritten_.fetch_add(bytes.size(), std::memory_order_relaxed);
    append_pending(std::move(bytes));
    if (write_in_progress_)
      return;  // the flush() under way takes it too
    write_in_progress_ = true;
  }
  flush();
}

// On the strand, with write_in_progress_ claimed: writes what is pending, or ends the claim.
void socket_session::flush() {
  std::unique_lock lock{wmutex_};
  if (wclosed_)
    return;
  if (!writing_.empty())
    return;  // an async_write is under way; on_written() comes back here
  if (pending_.empty()) {
    write_in_progress_ = false;
    bool close_now = closing_;
    lock.unlock();
    if (close_now && linger_.count() > 0 && !lingering_) {
      lingering_ = true;
      heartbeat_timer_.expires_after(linger_);  // the heartbeat's wait ends here
      heartbeat_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec && !self->closed_)
          self->shutdown("closed by broker", true);
      });
      linger();
    } else if (close_now && !lingering_) {
      shutdown("closed by broker", true);
    }
    return;
  }
  write_in_progress_ = true;
  writing_.swap(pending_);
  pending_.clear();
  last_write_ns_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  auto done = asio::bind_executor(
    strand_, [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
      self->on_written(ec, n);
    });
  if (tls_)
    asio::async_write(tls_->stream, asio::buffer(writing_), std::move(done));
  else
    asio::async_write(socket_, asio::buffer(writing_), std::move(done));
}

void socket_session::on_written(const boost::system::error_code& ec, size_t) {
  {
    std::lock_guard lock{wmutex_};
    unwritten_.fetch_sub(std::min(unwritten(), writing_.size()), std::memory_order_relaxed);
    writing_.clear();
  }
  if (ec) {
    shutdown(ec.message());
    return;
  }
  bool notify = false;
  {
    std::lock_guard lock{wmutex_};
    if (drain_wanted_ && unwritten() < write_low_water) {
      drain_wanted_ = false;
      notify = true;
    }
  }
  if (notify)
    caf::anon_send(conn_, drained_atom::value);
  flush();
}

void socket_session::want_drained() {
  std::lock_guard lock{wmutex_};
  if (unwritten() < write_low_water)
    caf::anon_send(conn_actor_, drained_atom::value);
  else
    drain_wanted_ = true;
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
    if (ec || self->closed_ || self->lingering_)
      return;
    auto now = clock::now();
    // While reading is paused for the actor (it has too much unprocessed, or a queue or an
    // exchange stopped it), silence is ours, not the client's: RabbitMQ pauses its heartbeat
    // monitor of a blocked connection too. The clock starts again when reading does.
    if (self->read_paused_.load())
      self->last_read_ = now;
    if (self->hb_recv_.count() > 0 && now - self->last_read_ > self->hb_recv_) {
      spdlog::warn("missed heartbeats from client {}, timeout: {}ms", self->peer_,
                   self->hb_recv_.count());
      self->shutdown("missed heartbeats");
      return;
    }
    bool idle = false;
    {
      std::lock_guard lock{self->wmutex_};
      auto last = clock::time_point{clock::duration{self->last_write_ns_.load()}};
      idle = now - last >= self->hb_send_ && !self->write_in_progress_ && !self->closing_;
    }
    if (self->hb_send_.count() > 0 && idle)
      self->write_on_strand(self->hb_bytes_);
    if (self->hb_send_.count() > 0 || self->hb_recv_.count() > 0)
      self->arm_heartbeat();
  });
}

void socket_session::close() {
  asio::post(strand_, [self = shared_from_this()] { self->close_on_strand(); });
}

void socket_session::close_after_peer(std::chrono::milliseconds linger) {
  asio::post(strand_, [self = shared_from_this(), linger] {
    self->linger_ = linger;
    self->close_on_strand();
  });
}

// On the strand, lingering: keeps a read pending, so that the peer's close (or the socket's
// error) ends the session.
void socket_session::linger() {
  if (reading_ || closed_)
    return;
  reading_ = true;
  async_read_into(asio::buffer(rbuf_.data(), rbuf_.size()),
                  [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                    self->on_read(ec, n);
                  });
}

void socket_session::close_on_strand() {
  read_stopped_ = true;
  {
    std::lock_guard lock{wmutex_};
    closing_ = true;
    if (write_in_progress_)
      return;  // flush() closes once everything is written
    write_in_progress_ = true;
  }
  flush();
}

// `graceful`: everything written, the broker closes. A TLS session then ends with a
// close_notify (close_tls) before the socket closes, as RabbitMQ's does.
void socket_session::shutdown(const std::string& reason, bool graceful) {
  if (closed_)
    return;
  closed_ = true;
  read_stopped_ = true;
  heartbeat_timer_.cancel();
  bool notify_tls = graceful && tls_ && tls_->established;
  {
    std::lock_guard lock{wmutex_};  // no direct write is under way, nor can one start
    wclosed_ = true;
    if (!notify_tls)
      close_socket();
    unwritten_.store(0, std::memory_order_relaxed);
    pending_.clear();
    conn_actor_ = nullptr;
  }
  if (conn_)
    caf::anon_send(conn_, closed_atom::value, reason);
  conn_ = nullptr;  // breaks the session <-> actor cycle from this side
  if (notify_tls) {
    tls_->closing = true;
    // The socket closes when the peer answers, or after a second at most.
    heartbeat_timer_.expires_after(std::chrono::seconds(1));
    heartbeat_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec)
        self->close_socket();
    });
    close_tls();
  }
}

// On the strand: sends the close_notify once no read is pending (a pending one is cancelled,
// and its handler comes back here).
void socket_session::close_tls() {
  if (reading_) {
    boost::system::error_code ec;
    socket_.cancel(ec);
    return;
  }
  tls_->stream.async_shutdown(asio::bind_executor(
    strand_, [self = shared_from_this()](const boost::system::error_code&) {
      self->heartbeat_timer_.cancel();
      self->close_socket();
    }));
}

void socket_session::close_socket() {
  boost::system::error_code ec;
  if (!socket_.is_open())
    return;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace warren::net
