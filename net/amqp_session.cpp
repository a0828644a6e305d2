#include "net/amqp_session.hpp"

#include <spdlog/spdlog.h>

#include "actors/messages.hpp"
#include "protocol/amqp091/constants.hpp"

namespace warren::net {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

amqp_session::amqp_session(asio::ip::tcp::socket socket)
  : socket_(std::move(socket)),
    strand_(asio::make_strand(socket_.get_executor())),
    heartbeat_timer_(strand_) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  peer_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  rbuf_.resize(64 * 1024);
}

amqp_session::~amqp_session() = default;

void amqp_session::start(caf::actor conn) {
  asio::post(strand_, [self = shared_from_this(), conn = std::move(conn)]() mutable {
    self->conn_ = std::move(conn);
    self->last_read_ = self->last_write_ = clock::now();
    self->do_read();
  });
}

void amqp_session::do_read() {
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

void amqp_session::on_read(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (ec) {
    shutdown(ec == asio::error::eof ? "client closed the socket" : ec.message());
    return;
  }
  if (closed_ || read_stopped_)
    return;
  rlen_ += n;
  last_read_ = clock::now();
  parse();
  do_read();
}

void amqp_session::parse() {
  std::string_view in{rbuf_.data(), rlen_};
  size_t used = 0;
  if (!header_seen_) {
    switch (amqp::check_protocol_header(in)) {
      case amqp::header_status::need_more:
        return;
      case amqp::header_status::mismatch:
        // AMQP 0-9-1 §4.2.2: answer with the header we speak, then close.
        read_stopped_ = true;
        write(std::string{amqp::protocol_header});
        close();
        return;
      case amqp::header_status::ok:
        header_seen_ = true;
        used = amqp::protocol_header.size();
        caf::anon_send(conn_, start_atom::value);
        break;
    }
  }
  inbound_batch batch;
  auto frame_max = frame_max_.load(std::memory_order_relaxed);
  while (used < rlen_) {
    amqp::frame_view f;
    size_t consumed = 0;
    auto st = amqp::parse_frame(in.substr(used), frame_max, f, consumed);
    if (st == amqp::frame_status::need_more) {
      break;
    }
    if (st != amqp::frame_status::ok) {
      batch.error_code = amqp::frame_error;
      batch.error_text = st == amqp::frame_status::bad_frame_end ? "FRAME_ERROR - bad frame end"
                         : st == amqp::frame_status::too_large
                           ? "FRAME_ERROR - frame size exceeds frame_max " + std::to_string(frame_max)
                           : "FRAME_ERROR - unknown frame type";
      read_stopped_ = true;
      break;
    }
    used += consumed;
    amqp::command cmd;
    auto r = assembler_.feed(f, cmd);
    if (r == amqp::assemble_status::command) {
      batch.commands.push_back(std::move(cmd));
    } else if (r == amqp::assemble_status::error) {
      batch.error_code = assembler_.error_code();
      batch.error_text = assembler_.error_text();
      batch.error_class = assembler_.error_class_id();
      batch.error_method = assembler_.error_method_id();
      read_stopped_ = true;
      break;
    }
  }
  if (used > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + used, rlen_ - used);
    rlen_ -= used;
  }
  batch.bytes = used;
  if (!batch.commands.empty() || batch.error_code) {
    inflight_ += used;
    caf::anon_send(conn_, inbound_atom::value, std::move(batch));
  }
}

void amqp_session::processed(size_t bytes) {
  asio::post(strand_, [self = shared_from_this(), bytes] {
    self->inflight_ -= std::min(self->inflight_, bytes);
    if (self->inflight_ < read_low_water)
      self->do_read();
  });
}

void amqp_session::write(std::string bytes) {
  if (bytes.empty())
    return;
  unwritten_.fetch_add(bytes.size(), std::memory_order_relaxed);
  asio::post(strand_, [self = shared_from_this(), bytes = std::move(bytes)]() mutable {
    if (self->closed_) {
      self->unwritten_.fetch_sub(bytes.size(), std::memory_order_relaxed);
      return;
    }
    if (self->pending_.empty())
      self->pending_ = std::move(bytes);
    else
      self->pending_ += bytes;
    self->flush();
  });
}

void amqp_session::flush() {
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

void amqp_session::on_written(const boost::system::error_code& ec, size_t n) {
  write_in_progress_ = false;
  unwritten_.fetch_sub(writing_.size(), std::memory_order_relaxed);
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

void amqp_session::want_drained() {
  asio::post(strand_, [self = shared_from_this()] {
    if (self->unwritten() < write_low_water)
      caf::anon_send(self->conn_, drained_atom::value);
    else
      self->drain_wanted_ = true;
  });
}

void amqp_session::set_limits(uint32_t frame_max, uint16_t heartbeat_seconds) {
  frame_max_.store(frame_max, std::memory_order_relaxed);
  asio::post(strand_, [self = shared_from_this(), heartbeat_seconds] {
    self->heartbeat_ = heartbeat_seconds;
    if (heartbeat_seconds > 0)
      self->arm_heartbeat();
  });
}

void amqp_session::arm_heartbeat() {
  // AMQP 0-9-1 §4.2.7: send a heartbeat when nothing else was sent for an interval; give up on
  // a peer silent for two intervals, as RabbitMQ does.
  auto interval = std::chrono::seconds(heartbeat_);
  heartbeat_timer_.expires_after(std::max<clock::duration>(interval / 2, std::chrono::milliseconds(500)));
  heartbeat_timer_.async_wait([self = shared_from_this(), interval](const boost::system::error_code& ec) {
    if (ec || self->closed_ || self->heartbeat_ == 0)
      return;
    auto now = clock::now();
    if (now - self->last_read_ > 2 * interval) {
      spdlog::warn("missed heartbeats from client {}, timeout: {}s", self->peer_, self->heartbeat_);
      self->shutdown("missed heartbeats");
      return;
    }
    if (now - self->last_write_ >= interval && !self->write_in_progress_ && !self->closing_) {
      std::string hb;
      amqp::encode_heartbeat(hb);
      self->unwritten_.fetch_add(hb.size(), std::memory_order_relaxed);
      self->pending_ += hb;
      self->flush();
    }
    self->arm_heartbeat();
  });
}

void amqp_session::close() {
  asio::post(strand_, [self = shared_from_this()] {
    self->closing_ = true;
    self->read_stopped_ = true;
    self->flush();
  });
}

void amqp_session::shutdown(const std::string& reason) {
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
