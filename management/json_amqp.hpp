// Conversions between AMQP values and the JSON of RabbitMQ's management API: field tables
// (arguments, headers), basic properties, and message payloads (string or base64). Pure.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "protocol/amqp091/field_table.hpp"
#include "protocol/amqp091/properties.hpp"

namespace warren::mgmt {

using json = nlohmann::json;

json to_json(const amqp::field_value& v);
json to_json(const amqp::field_table& t);
json to_json(const amqp::basic_properties& p);

// Objects become tables, arrays arrays, integers signed 64-bit ('l'), other numbers doubles,
// null void. `error` names the first value that cannot be converted.
std::optional<amqp::field_table> table_from_json(const json& j, std::string& error);
std::optional<amqp::basic_properties> properties_from_json(const json& j, std::string& error);

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s);
// `s` with U+FFFD for each octet that starts no well-formed sequence (for output that must be
// UTF-8: the Prometheus text format, whose label values come from AMQP names of any octets).
std::string utf8_or_replaced(std::string_view s);

// The JSON text, with invalid UTF-8 in strings replaced instead of throwing.
std::string dump(const json& j);

}  // namespace warren::mgmt
