// The STOMP side of a client socket: parses frames (protocol/stomp) and hands each socket
// read's frames to the STOMP connection actor in one message, (stomp_atom, stomp_batch). The
// session learns the protocol version from the CONNECT frame itself, so that frames a client
// pipelines behind CONNECT are unescaped by the right rules.
#pragma once

#include <optional>

#include "net/socket_session.hpp"
#include "protocol/stomp/frame.hpp"

namespace warren::net {

struct stomp_batch {
  std::vector<stomp::frame> frames;
  size_t bytes = 0;
  std::string error;  // a framing fault after the frames, if not empty
};

// STOMP 1.1 / 1.2 version negotiation: the highest version both sides speak; 1.0 when the
// client sends no accept-version; nullopt when nothing is common.
std::optional<stomp::version> negotiate_version(const stomp::frame& connect);

class stomp_session final : public socket_session {
public:
  using socket_session::socket_session;

private:
  size_t parse(std::string_view in) override;

  stomp::parser parser_;
  bool connected_ = false;
};

}  // namespace warren::net

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::net::stomp_batch)
