// Reply codes (AMQP 0-9-1 §1.2, the spec XML's constants).
#pragma once
#include <cstdint>

namespace warren::amqp {

enum reply_code : uint16_t {
  reply_success = 200,
  content_too_large = 311,
  no_route = 312,
  no_consumers = 313,
  connection_forced = 320,
  invalid_path = 402,
  access_refused = 403,
  not_found = 404,
  resource_locked = 405,
  precondition_failed = 406,
  frame_error = 501,
  syntax_error = 502,
  command_invalid = 503,
  channel_error = 504,
  unexpected_frame = 505,
  resource_error = 506,
  not_allowed = 530,
  not_implemented = 540,
  internal_error = 541,
};

// Hard (connection-level) errors close the connection; soft ones only the channel.
constexpr bool is_hard_error(uint16_t code) {
  return code == connection_forced || code == invalid_path || code >= 500;
}

}  // namespace warren::amqp
