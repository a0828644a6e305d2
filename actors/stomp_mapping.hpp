// How STOMP meets the AMQP model, as RabbitMQ's STOMP adapter maps it: destinations to
// exchanges, routing keys and queues; SEND headers to AMQP basic properties and the headers
// table; stored messages back to MESSAGE headers. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "actors/messages.hpp"
#include "protocol/stomp/frame.hpp"

namespace warren::stomp_map {

enum class dest_kind {
  queue,        // /queue/x and a bare name: queue x, declared on use
  amq_queue,    // /amq/queue/x: an existing queue x
  topic,        // /topic/key: amq.topic with a routing key (a pattern when subscribing)
  exchange,     // /exchange/name/key
  temp_queue,   // /temp-queue/x: a private queue of this connection (in reply-to)
  reply_queue,  // /reply-queue/name: the queue behind someone's /temp-queue
};

struct destination {
  dest_kind kind = dest_kind::queue;
  std::string name;  // queue or exchange name
  std::string key;   // routing key (topic, exchange)
};

// Why a destination cannot be used: an ERROR frame's message header and body, as RabbitMQ's
// adapter words them (the body left empty where the caller says more).
struct destination_error {
  std::string message;
  std::string detail;
};

// Returns nullopt and sets `error` for a destination Warren cannot use.
std::optional<destination> parse_destination(std::string_view text, destination_error& error);

// The exchange and routing key a SEND to `d` publishes with.
std::pair<std::string, std::string> publish_target(const destination& d);

// Raw AMQP property bytes for a SEND frame's headers; the delivery mode goes to `delivery_mode`.
// Headers that are not properties and not STOMP's own go into the headers table.
std::string properties_from_send(const stomp::frame& send, uint8_t& delivery_mode);

// The queue arguments a frame that declares a /queue/ destination gives in its headers, as
// RabbitMQ's STOMP adapter takes them (x-message-ttl, x-expires, x-max-length(-bytes) and
// x-max-priority as integers; x-overflow, x-dead-letter-exchange, x-dead-letter-routing-key
// and x-queue-type as strings). A frame whose numbers do not parse is refused before this
// (bad_integer_header).
amqp::field_table queue_arguments(const stomp::frame& f);

// An integer header as RabbitMQ's adapter reads one: spaces around it allowed, a sign, digits.
std::optional<int64_t> parse_integer(std::string_view s);

// The ERROR body for the first integer header of a SEND (priority, timestamp) or SUBSCRIBE
// (prefetch-count), or the queue-argument headers of either, that is not an integer; RabbitMQ's
// adapter refuses those frames ("Processing error").
std::optional<std::string> bad_integer_header(const stomp::frame& f);

// The ERROR frame's message header for a failed AMQP operation, as RabbitMQ's adapter writes
// it: the reply's name in lower case ("PRECONDITION_FAILED - ..." gives precondition_failed);
// "internal_error" for a text that does not start with one.
std::string error_name(std::string_view amqp_text);

// The destination a message reached, in STOMP form (/queue/x, /topic/k, /exchange/e/k).
std::string destination_of(const message& m);

// Adds the MESSAGE headers that describe `m` (properties and custom headers).
void add_message_headers(const message& m, stomp::frame& out);

}  // namespace warren::stomp_map
