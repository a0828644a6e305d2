// Client side of one AMQP 0-9-1 connection for warren-perf, on a tcp_stream (non-blocking
// socket, input parsed in place, output written in as few syscalls as possible): the handshake (PLAIN login, tune, open) and blocking request/response calls for
// setup; handling of what the broker may send on its own (connection.close, channel.close,
// connection.blocked/unblocked, heartbeats). Owned and used by one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bench/perf_options.hpp"
#include "bench/perf_socket.hpp"
#include "protocol/amqp091/frame.hpp"
#include "protocol/amqp091/methods.hpp"

namespace warren::perf {

enum class call_result { ok, channel_closed, failed };

// What handle_control made of a method frame.
enum class control { not_mine, handled, fatal };

class connection : public tcp_stream {
public:
  // `product`: the client_properties product and the prefix of what it prints.
  explicit connection(std::string name, std::string product = "warren-perf");

  // Connects and performs the handshake; opens channel 1 when asked. Blocks (bounded).
  bool open(const options& o, bool open_channel = true);

  // Sends `m` on `channel` and waits for the reply of type R (bounded). channel_closed: the
  // broker closed that channel (close-ok sent, see error()); failed: connection-level error.
  template <class R, class M>
  call_result call(uint16_t channel, const M& m, R* reply = nullptr) {
    amqp::encode_method(out(), channel, m);
    amqp::method got;
    const auto r = wait_for(channel, R::class_index, R::method_index, got);
    if (r == call_result::ok && reply) *reply = std::move(std::get<R>(got));
    return r;
  }
  call_result open_channel(uint16_t channel);

  // --- Event-loop pieces (the socket is non-blocking; see tcp_stream for the rest).
  // The next complete frame in the input, viewing into the buffer (valid until the next
  // read). False when more bytes are needed or the input is malformed (then failed()).
  bool next_frame(amqp::frame_view& f);
  // Decodes and handles a method frame every role must handle. Records the reason on fatal.
  // `decoded` receives the method when it is not_mine (for the caller to look at).
  control handle_control(const amqp::frame_view& f, amqp::method& decoded);

  // Orderly close: connection.close, then waits (bounded) for close-ok, discarding input.
  void close(int timeout_ms = 2000) override;

  uint32_t frame_max() const { return frame_max_; }
  bool blocked() const { return blocked_; }
  bool closed_by_broker() const { return closed_by_broker_; }
  uint16_t closed_channel_code() const { return channel_close_code_; }

private:
  call_result wait_for(uint16_t channel, uint16_t cls, uint16_t mth, amqp::method& got);
  std::string product_;
  uint32_t frame_max_ = 131072;
  bool blocked_ = false;
  bool closed_by_broker_ = false;
  uint16_t channel_close_code_ = 0;
};

// Ids of a method frame's payload without decoding it; 0/0 when too short.
inline void method_ids(std::string_view payload, uint16_t& cls, uint16_t& mth) {
  if (payload.size() < 4) {
    cls = mth = 0;
    return;
  }
  auto b = [&](size_t i) { return static_cast<uint16_t>(static_cast<uint8_t>(payload[i])); };
  cls = static_cast<uint16_t>(b(0) << 8 | b(1));
  mth = static_cast<uint16_t>(b(2) << 8 | b(3));
}

}  // namespace warren::perf
