// RabbitMQ's sender-selected distribution: a message's CC and BCC headers, arrays of strings,
// name routing keys it is routed by besides its own (each destination still gets one copy),
// and BCC is taken off the message before any queue has it. (rabbit_basic:header_routes and
// strip_bcc in RabbitMQ 3.10.)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/amqp091/field_table.hpp"

namespace warren::amqp {

// False when the encoded headers table (property_scan::headers_raw) cannot have a CC or BCC
// key: nearly every message is let through by this look at its bytes, without decoding them.
bool may_have_header_routes(std::string_view headers_raw);

struct header_routes {
  std::vector<std::string> keys;  // CC's, then BCC's: the string elements of the arrays
  bool has_bcc = false;
  // Set when CC or BCC is there but not an array: RabbitMQ refuses the message with
  // `invalid message: {unacceptable_type_in_header,"CC",longstr}` (406).
  std::optional<std::string> error;
};
header_routes read_header_routes(const field_table& headers);

// RabbitMQ's name of a field value's type (longstr, signedint, table, ...).
const char* type_name(const field_value& v);

// The routing keys as message::fields::extra_routes holds them, and back.
std::string encode_routes(const std::vector<std::string>& keys);

}  // namespace warren::amqp
