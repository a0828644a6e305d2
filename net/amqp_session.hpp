// The AMQP 0-9-1 side of a client socket: checks the protocol header (AMQP 0-9-1 §4.2.2),
// frames and assembles commands, and hands each socket read's commands to the connection
// actor in one message: (start_atom) once the header is right, then
// (inbound_atom, inbound_batch).
#pragma once

#include "net/socket_session.hpp"
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

class amqp_session final : public socket_session {
public:
  using socket_session::socket_session;

  // Thread-safe: negotiated frame_max and heartbeat (AMQP 0-9-1 §4.2.7: a heartbeat after an
  // idle interval; the peer is dropped after two silent intervals, as RabbitMQ does).
  void set_limits(uint32_t frame_max, uint16_t heartbeat_seconds);

private:
  size_t parse(std::string_view in) override;

  bool header_seen_ = false;
  amqp::assembler assembler_;
  std::atomic<uint32_t> frame_max_{131072};
};

}  // namespace warren::net

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::net::inbound_batch)
