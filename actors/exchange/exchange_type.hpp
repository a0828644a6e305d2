// Exchange types as small routing plug-ins (AMQP 0-9-1 §3.1.3): each keeps an index of its
// bindings and maps a routing key (and, for headers, the message headers) to destination ids.
// Pure data structures: the exchange actor owns one and translates ids to actor handles.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/amqp091/field_table.hpp"

namespace warren::exchange {

using dest_id = uint32_t;

struct binding_key {
  dest_id dest = 0;
  std::string key;
  amqp::field_table arguments;
};

class exchange_type {
public:
  virtual ~exchange_type() = default;
  // Bindings are unique per (dest, key, arguments); the exchange actor filters duplicates.
  virtual void bind(const binding_key& b) = 0;
  virtual void unbind(const binding_key& b) = 0;
  // Appends matching destinations; duplicates are possible, the caller removes them.
  virtual void route(std::string_view routing_key, const amqp::field_table* headers,
                     std::vector<dest_id>& out) const = 0;
  virtual bool needs_headers() const { return false; }
};

// The exchange of a partitioned stream (super_stream.cpp): one partition per message, by a
// hash of its routing key.
inline constexpr std::string_view super_stream_type = "x-super-stream";

// MurmurHash3 (x86, 32 bits) of `data`.
uint32_t murmur3_32(std::string_view data, uint32_t seed);

// "direct", "fanout", "topic", "headers", "x-super-stream"; nullptr for an unknown type.
std::unique_ptr<exchange_type> make_exchange_type(std::string_view type);
bool is_known_type(std::string_view type);

// Why an exchange of `type` refuses a binding with these arguments (RabbitMQ's
// PRECONDITION_FAILED text: a headers exchange checks x-match), or "" when it takes it.
std::string refused_binding(std::string_view type, const amqp::field_table& arguments);

}  // namespace warren::exchange
