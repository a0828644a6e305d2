// The queue arguments that change what a queue does (x-message-ttl, x-expires, x-max-length,
// x-max-length-bytes, x-overflow, x-dead-letter-exchange, x-dead-letter-routing-key,
// x-max-priority, x-single-active-consumer; for quorum queues x-delivery-limit): checked on
// declare the way RabbitMQ 3.10 checks them, and compared on redeclare. Each queue type refuses
// the arguments RabbitMQ knows only for the others.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "protocol/amqp091/field_table.hpp"

namespace warren {

enum class overflow_mode : uint8_t { drop_head, reject_publish, reject_publish_dlx };

struct queue_options {
  std::optional<int64_t> message_ttl;  // ms a message may wait in the queue
  std::optional<int64_t> expires;      // ms unused before the queue deletes itself
  std::optional<int64_t> max_length;   // ready messages
  std::optional<int64_t> max_length_bytes;  // body bytes of ready messages
  overflow_mode overflow = overflow_mode::drop_head;
  std::optional<std::string> dead_letter_exchange;
  std::optional<std::string> dead_letter_routing_key;
  std::optional<uint8_t> max_priority;  // a priority queue: 0..max_priority
  bool single_active_consumer = false;
  bool quorum = false;  // x-queue-type quorum
  // Quorum queues: a message that came back (rejected or nacked with requeue, or its channel
  // gone) more often than this is dead-lettered (reason delivery_limit) or dropped. A value
  // that is not an integer means none, as in RabbitMQ.
  std::optional<int64_t> delivery_limit;

  bool limited() const { return max_length || max_length_bytes; }
};

// The largest TTL, expiry or expiration RabbitMQ takes: ten years in milliseconds.
inline constexpr int64_t max_expiry_ms = 315360000000;

struct argument_error {
  std::string argument;  // the offending key
  std::string reason;    // RabbitMQ's error term, e.g. "{value_negative,-1}"
  std::string text;      // or, for a string argument of another type, RabbitMQ's whole text
  // or: the argument belongs to another queue type ("... of queue type rabbit_classic_queue")
  bool other_type = false;
};

// RabbitMQ's whole 406 text for `bad`, about `desc` ("queue 'q' in vhost '/'") of `type`
// ("rabbit_classic_queue", ...), after "PRECONDITION_FAILED - ".
std::string argument_error_text(const argument_error& bad, const std::string& desc,
                                const char* type);

// basic.consume's arguments, as RabbitMQ 3.10 checks them (rabbit_amqqueue consume_args and
// each queue type's consumer_arguments): x-priority an integer, for classic and quorum queues;
// x-cancel-on-ha-failover a bool, for classic queues; x-stream-offset for streams (which check
// its value themselves). True, with `error`, when refused.
enum class queue_kind { classic, quorum, stream };
bool refused_consumer_argument(const amqp::field_table& args, queue_kind kind,
                               argument_error& error);

// True when the declaration asks for a quorum queue (x-queue-type quorum).
bool is_quorum(const amqp::field_table& args);

// The declaration of a classic or quorum queue has an argument RabbitMQ knows only for other
// queue types (x-max-priority for a quorum queue, x-delivery-limit for a classic one): true,
// with `error` (other_type) naming it. Checked when a queue is declared, not when it recovers.
bool foreign_queue_argument(const amqp::field_table& args, argument_error& error);

// Erlang's name for a field's type, as RabbitMQ prints it in errors ("signedint", "longstr").
const char* type_name(const amqp::field_value& v);
// RabbitMQ's error term for an argument of the wrong type: {unacceptable_type,signedint}.
std::string unacceptable_type(const amqp::field_value& v);

// Reads the arguments above from the declaration of a classic or quorum queue. Unknown keys
// are left alone (RabbitMQ keeps them without meaning). nullopt and `error` set when one of
// them is not acceptable.
std::optional<queue_options> parse_queue_options(const amqp::field_table& args,
                                                 argument_error& error);

// The first of the arguments above that two declarations of one queue disagree on, with the
// end of RabbitMQ's 406 text ("received '2000' but current is '1000'", or "received the value
// '2000' of type 'signedint' but current is none" when one side lacks it). Empty when they
// agree. Integer types are compatible with each other.
std::string inequivalent_queue_argument(const amqp::field_table& current,
                                        const amqp::field_table& received, std::string& detail);
// The same comparison for one argument (null: absent): "" when they agree, else the detail.
std::string argument_difference(const amqp::field_value* current,
                                const amqp::field_value* received);

// A per-message `expiration` property: a decimal count of milliseconds, 0..max_expiry_ms.
// nullopt and `reason` set (RabbitMQ's term) when it is not one.
std::optional<int64_t> parse_expiration(std::string_view text, std::string& reason);

}  // namespace warren
