// Dead-lettering as RabbitMQ 3.10 does it (rabbit_dead_letter): the copy of a message that a
// queue sends to its dead-letter exchange, and the cycle check a queue makes when such a copy
// arrives.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "actors/messages.hpp"
#include "protocol/amqp091/field_table.hpp"

namespace warren {

// In the order of metrics::queue_stats::dead_lettered.
enum class death_reason : uint8_t { expired, rejected, maxlen, delivery_limit };

const char* reason_name(death_reason r);

// The copy of `m` for the dead-letter exchange `dlx`, routed by `routing_key` when set and by
// m's own routing key otherwise. Its headers get the x-death entry for (queue, reason): a new
// first entry {count 1, reason, queue, time, exchange, routing-keys[, original-expiration]},
// or the existing entry's count raised by one and moved to the front; the first death also
// sets x-first-death-reason, -queue and -exchange. The expiration property is removed, so the
// copy does not expire again by its old TTL. nullptr if m's properties do not decode.
message_ptr dead_letter(const message& m, death_reason reason, std::string_view queue,
                        std::string_view dlx, const std::optional<std::string>& routing_key,
                        uint64_t now_seconds);

// The copy of `m` with header `key` set to `value` (added, or replaced where m has it): a quorum
// queue's x-delivery-count. nullptr if m's properties do not decode.
message_ptr with_header(const message& m, std::string_view key, amqp::field_value value);

// True when a dead-lettered message arriving at `queue` went round a cycle back to it without
// a client rejecting it anywhere on the way (its x-death entries up to and including the
// first one for `queue` have no reason "rejected"): RabbitMQ drops it for that queue rather
// than let it circle for ever.
bool dead_letter_cycle(const message& m, std::string_view queue);

}  // namespace warren
