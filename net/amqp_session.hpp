// The AMQP 0-9-1 side of a client socket: checks the protocol header (AMQP 0-9-1 §4.2.2) and
// the framing (type, size against frame_max, frame end), and hands each socket read's whole
// frames to the connection actor in one message: (start_atom) once the header is right, then
// (inbound_atom, inbound_batch). The actor assembles the commands (protocol/amqp091/
// assembler.hpp) on its worker, so that the I/O thread does one copy per read and no
// allocation per message: decoding is the larger part of a message's cost on the way in, and
// on the workers it spreads over them.
#pragma once

#include "net/socket_session.hpp"
#include "protocol/amqp091/frame.hpp"

namespace warren::net {

struct inbound_batch {
  std::string frames;  // whole frames, in order; each one's size and frame end checked
  size_t bytes = 0;  // socket bytes these frames came from, for processed()
  uint16_t error_code = 0;  // a framing fault after the frames, if nonzero
  std::string error_text;
};

class amqp_session final : public socket_session {
public:
  using socket_session::socket_session;

  // Thread-safe: negotiated frame_max and heartbeat (AMQP 0-9-1 §4.2.7: a heartbeat after an
  // idle interval; the peer is dropped after two silent intervals, as RabbitMQ does).
  void set_limits(uint32_t frame_max, uint16_t heartbeat_seconds);

private:
  size_t parse(std::string_view in) override;

  bool header_seen_ = false;
  std::atomic<uint32_t> frame_max_{131072};
};

}  // namespace warren::net

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::net::inbound_batch)
