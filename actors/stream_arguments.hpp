// Stream queues (x-queue-type = stream): the arguments of their declaration and of their
// consumers, checked the way RabbitMQ 3.10 checks them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "actors/queue_arguments.hpp"
#include "protocol/amqp091/field_table.hpp"

namespace warren {

// RabbitMQ's default segment size (x-stream-max-segment-size-bytes): 500 MB.
inline constexpr int64_t default_segment_bytes = 500'000'000;

struct stream_options {
  std::optional<int64_t> max_length_bytes;  // retention by size (whole segments go)
  std::optional<int64_t> max_age_ms;        // retention by age (whole segments go)
  int64_t max_segment_bytes = default_segment_bytes;
};

// True when the declaration asks for a stream.
bool is_stream(const amqp::field_table& args);

// The queue type a declaration asks for, as RabbitMQ names it: "classic", "quorum" or
// "stream".
std::string queue_type(const amqp::field_table& args);

// RabbitMQ's reason (with 540) for a nack or reject of a stream's message, which the AMQP
// connection closes with and the STOMP ERROR quotes.
std::string nack_refusal(const std::string& queue, const std::string& vhost);

// A stream's arguments: nullopt with `error` set when one is not acceptable (an argument
// streams do not take, or a bad value).
std::optional<stream_options> parse_stream_options(const amqp::field_table& args,
                                                   argument_error& error);

// x-max-age: a positive count followed by Y, M, D, h, m or s ("7D"), in milliseconds.
std::optional<int64_t> parse_max_age(const std::string& text);

// Where a stream consumer starts (consumer argument x-stream-offset).
struct stream_offset {
  enum class kind : uint8_t { first, last, next, offset, timestamp };
  kind k = kind::next;
  int64_t value = 0;  // the offset, or the timestamp in ms since the Unix epoch
};

// nullopt with `error` set (the end of RabbitMQ's text) for a value it does not take; an
// absent argument is `next`.
std::optional<stream_offset> parse_stream_offset(const amqp::field_value* v, std::string& error);

}  // namespace warren
