// The numbers an actor reports about itself to the stats collector (metrics/stats_collector):
// queues, exchanges and connections (AMQP and STOMP) each count inside their own state, with
// plain integers, and send one of these when the collector asks (report_atom), once when they
// start and a final one when they stop. Nothing here is touched per message outside the
// owning actor. Counters are totals since the actor started; gauges are current values.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "protocol/amqp091/field_table.hpp"

namespace warren::metrics {

struct consumer_stats {
  std::string tag;
  std::string connection_name;  // "peer -> listener", as the connection told the queue
  std::string user;
  std::string node;             // the connection's
  uint16_t channel = 0;
  bool ack_required = true;
  bool exclusive = false;
  int32_t priority = 0;
  uint32_t prefetch = 0;         // the channel's prefetch when it consumed (0: none)
  amqp::field_table arguments;   // basic.consume's arguments
  // RabbitMQ's activity_status: "up", or with x-single-active-consumer "single_active" for the
  // consumer that gets the messages and "waiting" for the others.
  std::string activity = "up";
};

// Why messages left a queue without being consumed (RabbitMQ's global dead-letter counters):
// expired, rejected (nack / reject without requeue), maxlen (dropped or refused for length)
// and delivery_limit (quorum queues: given back too often).
inline constexpr size_t death_reasons = 4;

struct queue_stats {
  caf::actor_id id = 0;
  std::string vhost, name;
  // Gauges.
  uint64_t ready = 0, unacked = 0;
  uint64_t ready_bytes = 0, unacked_bytes = 0;  // their bodies (RabbitMQ's message_bytes_*)
  uint64_t mailbox = 0;
  std::vector<consumer_stats> consumers;
  // Counters.
  uint64_t published = 0;    // messages enqueued
  uint64_t delivered = 0;    // handed to consumers or basic.get, of which:
  uint64_t delivered_no_ack = 0;  // to consumers in automatic acknowledgement mode
  uint64_t got_ack = 0, got_no_ack = 0;  // basic.get-ok, with and without acknowledgement
  uint64_t got_empty = 0;    // basic.get-empty (not in `delivered`)
  uint64_t acked = 0;
  uint64_t redelivered = 0;  // deliveries with the redelivered flag
  uint64_t dead_lettered[death_reasons] = {};  // by reason, as counted with or without a DLX
  bool dead_letter_exchange = false;  // RabbitMQ's dead_letter_strategy: at_most_once, or disabled
  bool quorum = false;       // the queue type, which RabbitMQ's dead-letter counters name
  bool final = false;        // the queue stopped: its last report
};

struct exchange_stats {
  caf::actor_id id = 0;
  std::string vhost, name, type;
  uint64_t mailbox = 0;
  uint64_t publish_in = 0;   // messages received
  uint64_t publish_out = 0;  // copies sent to destinations
  uint64_t routed = 0;       // messages that reached at least one destination
  uint64_t unroutable = 0;   // messages dropped or returned (no destination, no alternate)
  bool final = false;
};

// Per-channel counters (a STOMP connection reports a single channel, number 1), as RabbitMQ
// splits them (channel_counter_fields names each one).
struct channel_counters {
  uint64_t published = 0;
  uint64_t confirmed = 0;         // publisher confirms sent as basic.ack
  uint64_t returned = 0;          // unroutable mandatory publishes, sent back (basic.return)
  uint64_t dropped = 0;           // unroutable publishes dropped (that the channel learns of)
  uint64_t delivered_ack = 0;     // deliveries to consumers that acknowledge
  uint64_t delivered_no_ack = 0;  // deliveries in automatic acknowledgement mode
  uint64_t got_ack = 0;           // basic.get-ok of messages to be acknowledged
  uint64_t got_no_ack = 0;        // basic.get-ok in automatic acknowledgement mode
  uint64_t got_empty = 0;         // basic.get-empty
  uint64_t acked = 0;
  uint64_t redelivered = 0;
  // Deliveries and basic.get-ok, of either mode (RabbitMQ's deliver_get).
  uint64_t deliver_get() const { return delivered_ack + delivered_no_ack + got_ack + got_no_ack; }
  channel_counters& operator+=(const channel_counters& o);
};

// Each counter with its key in the management API's message_stats and its Prometheus metric
// (RabbitMQ's names both).
struct channel_counter_field {
  uint64_t channel_counters::*member;
  const char* stats_key;
  const char* metric;
  bool delivery = false;  // one of those deliver_get sums
};

inline constexpr channel_counter_field channel_counter_fields[] = {
  {&channel_counters::published, "publish", "rabbitmq_channel_messages_published_total"},
  {&channel_counters::confirmed, "confirm", "rabbitmq_channel_messages_confirmed_total"},
  {&channel_counters::returned, "return_unroutable",
   "rabbitmq_channel_messages_unroutable_returned_total"},
  {&channel_counters::dropped, "drop_unroutable",
   "rabbitmq_channel_messages_unroutable_dropped_total"},
  {&channel_counters::delivered_ack, "deliver", "rabbitmq_channel_messages_delivered_ack_total",
   true},
  {&channel_counters::delivered_no_ack, "deliver_no_ack",
   "rabbitmq_channel_messages_delivered_total", true},
  {&channel_counters::got_ack, "get", "rabbitmq_channel_get_ack_total", true},
  {&channel_counters::got_no_ack, "get_no_ack", "rabbitmq_channel_get_total", true},
  {&channel_counters::got_empty, "get_empty", "rabbitmq_channel_get_empty_total"},
  {&channel_counters::acked, "ack", "rabbitmq_channel_messages_acked_total"},
  {&channel_counters::redelivered, "redeliver", "rabbitmq_channel_messages_redelivered_total"},
};

inline channel_counters& channel_counters::operator+=(const channel_counters& o) {
  for (auto& f : channel_counter_fields)
    this->*f.member += o.*f.member;
  return *this;
}

struct channel_stats {
  uint16_t number = 0;
  channel_counters counters;
  uint32_t unacked = 0;
  uint32_t unconfirmed = 0;  // publishes with confirms not yet acked or nacked
  uint32_t consumers = 0;
  uint32_t prefetch = 0;
  uint32_t global_prefetch = 0;
  bool confirm = false;
  bool transactional = false;
};

struct connection_stats {
  caf::actor_id id = 0;
  caf::actor_addr addr;  // to close it from the management API
  std::string protocol;  // "AMQP 0-9-1", "STOMP 1.2"
  std::string peer;      // host:port of the client
  std::string local;     // host:port of the listener
  std::string user, vhost;
  // TLS: protocol ("tlsv1.3") and cipher, and the client's certificate (RFC 4514 names).
  bool ssl = false;
  std::string ssl_protocol, ssl_cipher, peer_cert_subject, peer_cert_issuer;
  int64_t connected_at = 0;  // ms since the Unix epoch
  uint64_t mailbox = 0;
  uint64_t recv_oct = 0, send_oct = 0, recv_cnt = 0, send_cnt = 0;
  uint32_t frame_max = 0, channel_max = 0, heartbeat = 0;
  std::string client_properties;  // AMQP: connection.start-ok's, encoded as a field table
  std::string auth_mechanism;     // AMQP: PLAIN, AMQPLAIN or EXTERNAL
  std::vector<channel_stats> channels;
  channel_counters totals;  // all channels so far, closed ones included
  bool final = false;
};

// How consumers and connections cross to the other nodes of a cluster (cluster/node_stats.hpp),
// for their management API. Queue and exchange reports stay on their node.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, consumer_stats& x) {
  encoded_table args{x.arguments, {}};
  return f(caf::meta::type_name("consumer_stats"), x.tag, x.connection_name, x.user, x.node,
           x.channel, x.ack_required, x.exclusive, x.priority, x.prefetch, args, x.activity);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, channel_counters& x) {
  return f(caf::meta::type_name("channel_counters"), x.published, x.confirmed, x.returned,
           x.dropped, x.delivered_ack, x.delivered_no_ack, x.got_ack, x.got_no_ack, x.got_empty,
           x.acked, x.redelivered);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, channel_stats& x) {
  return f(caf::meta::type_name("channel_stats"), x.number, x.counters, x.unacked,
           x.unconfirmed, x.consumers, x.prefetch, x.global_prefetch, x.confirm,
           x.transactional);
}

// The handle crosses as a handle of the connection's actor on its node (to close it from
// the API of any node).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, connection_stats& x) {
  return f(caf::meta::type_name("connection_stats"), x.id, x.addr, x.protocol, x.peer, x.local,
           x.user, x.vhost, x.ssl, x.ssl_protocol, x.ssl_cipher, x.peer_cert_subject,
           x.peer_cert_issuer, x.connected_at, x.mailbox, x.recv_oct, x.send_oct, x.recv_cnt,
           x.send_cnt, x.frame_max, x.channel_max, x.heartbeat, x.client_properties,
           x.auth_mechanism, x.channels, x.totals, x.final);
}

}  // namespace warren::metrics

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::metrics::queue_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::metrics::exchange_stats)
