// The firehose, as RabbitMQ's rabbit_trace has it. With tracing on for a vhost on a node
// (warrenctl trace_on, or "tracing": true on PUT /api/vhosts/{vhost}), every message published
// and every message delivered there is copied to the vhost's internal topic exchange
// amq.rabbitmq.trace: routing key publish.<exchange> or deliver.<queue>, the message's body,
// and a headers table that says where it went (exchange_name, routing_keys, properties, node,
// vhost, connection, channel, user; routed_queues for a publish, redelivered for a delivery).
// Messages of that exchange are never traced themselves. Off, tracing costs a flag test.
//
// Traces go to the vhost actor as (route_atom, exchange_name, publish_batch), which hands them
// to the exchange: publishes and deliveries of one node reach it in the order they happened.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "actors/messages.hpp"

namespace warren::trace {

inline constexpr std::string_view exchange_name = "amq.rabbitmq.trace";

inline bool traced(const message& m) {
  return m.exchange() != exchange_name;
}

// The trace of a publish; routed_queues are the names of the queues it was routed to.
message_ptr publish(const message& m, const trace_origin& o,
                    const std::vector<std::string_view>& routed_queues);

// The trace of a delivery (basic.deliver or basic.get-ok) from `queue`.
message_ptr deliver(const message& m, std::string_view queue, bool redelivered,
                    const trace_origin& o);

// Appends to `out` the traces of the deliveries of `b`, from `queue` (its traces excepted).
void add_deliveries(std::vector<publish_item>& out, const delivery_batch& b,
                    std::string_view queue, const trace_origin& o);

// The queues the default exchange routes m to, as RabbitMQ names them in routed_queues: the
// routing key and the keys of CC and BCC, sorted, each once, whether or not such a queue exists.
std::vector<std::string_view> default_exchange_queues(const message& m);

// Sends traces to the vhost, which hands them to its trace exchange; clears them.
template <class Self>
void send(Self* self, const caf::actor& vhost, std::vector<publish_item>& traces) {
  if (traces.empty() || !vhost)
    return;
  publish_batch b;
  b.items = std::move(traces);
  traces.clear();
  self->send(vhost, route_atom::value, std::string{exchange_name}, std::move(b));
}

}  // namespace warren::trace
