// The messages connection, exchange, queue and vhost actors exchange.
//
// Hot path (at most three hops, one actor message per batch, never per AMQP frame):
//   connection --publish_batch--> exchange --publish_batch--> queue --delivery_batch--> connection
// Publishes to the default exchange skip the exchange hop: the connection sends them to the
// queue directly.
//
// Publisher confirms and mandatory returns use weight throwing: every tracked publish starts
// with weight `full_weight`; an exchange splits the weight it receives among the destinations
// it routes to and hands back what it keeps; a queue hands back the weight it received once the
// message is enqueued. The publishing channel knows a message's fate when all of its weight has
// come back, no matter in which order the reports arrive.
#pragma once

#include <boost/intrusive_ptr.hpp>
#include <caf/all.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/amqp091/field_table.hpp"
#include "protocol/stomp/selector.hpp"

namespace warren {

class message;
using message_ptr = boost::intrusive_ptr<const message>;

// A published message. Immutable once built and shared (reference-counted) by every queue it
// reaches: fanout to N queues does not copy the body.
//
// One allocation holds the reference count, the sizes and the bytes of exchange, routing key,
// properties and (up to `inline_body_max`) the body. A queue holds many messages for a long
// time, and each separate block of a message costs a malloc where it is published and a free,
// often on another thread, where it is delivered. A larger body is adopted as the std::string it
// arrived in, so that it is not copied.
class message {
 public:
  static constexpr size_t inline_body_max = 512;

  struct fields {
    std::string_view exchange;
    std::string_view routing_key;
    std::string_view properties;  // raw AMQP basic-class property bytes (flags + list), resent as is
    uint8_t delivery_mode = 0;
    bool has_headers = false;  // properties carry a headers table (headers exchange needs it)
    bool has_expiration = false;  // properties carry a per-message TTL (`expiration`)
    bool dead_lettered = false;   // made by dead-lettering: queues check it for cycles
    // Routing keys besides routing_key, from the CC and BCC headers (RabbitMQ's sender-selected
    // distribution), each as a 4-byte length (host order) and the key: see extra_routes().
    std::string_view extra_routes{};
  };

  static message_ptr make(const fields& f, std::string&& body);
  static message_ptr make(const fields& f, std::string_view body);

  message(const message&) = delete;
  message& operator=(const message&) = delete;

  std::string_view exchange() const noexcept { return {bytes(), exchange_len_}; }
  std::string_view routing_key() const noexcept {
    return {bytes() + exchange_len_, routing_key_len_};
  }
  std::string_view properties() const noexcept {
    return {bytes() + exchange_len_ + routing_key_len_, properties_len_};
  }
  std::string_view body() const noexcept {
    if (adopted_body_)
      return *adopted_body_;
    return {bytes() + exchange_len_ + routing_key_len_ + properties_len_, inline_body_len_};
  }
  uint8_t delivery_mode() const noexcept { return delivery_mode_; }
  bool has_headers() const noexcept { return has_headers_; }
  bool has_expiration() const noexcept { return has_expiration_; }
  bool dead_lettered() const noexcept { return dead_lettered_; }
  // The routing keys the message is routed by besides routing_key() (CC and BCC), encoded as
  // in fields::extra_routes; empty for nearly every message. each_extra_route walks them.
  std::string_view extra_routes() const noexcept {
    if (!has_extra_routes_)
      return {};
    const char* at = bytes() + exchange_len_ + routing_key_len_ + properties_len_ +
                     inline_body_len_;
    uint32_t len;
    std::memcpy(&len, at, sizeof len);
    return {at + sizeof len, len};
  }
  template <class F>
  void each_extra_route(F&& f) const {
    auto rest = extra_routes();
    while (rest.size() >= sizeof(uint32_t)) {
      uint32_t len;
      std::memcpy(&len, rest.data(), sizeof len);
      rest.remove_prefix(sizeof len);
      f(rest.substr(0, len));
      rest.remove_prefix(std::min<size_t>(len, rest.size()));
    }
  }

  friend void intrusive_ptr_add_ref(const message* m) noexcept {
    m->refs_.fetch_add(1, std::memory_order_relaxed);
  }
  friend void intrusive_ptr_release(const message* m) noexcept {
    if (m->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      destroy(m);
  }

 private:
  message() = default;
  ~message() = default;
  static message_ptr build(const fields& f, std::string_view inline_body,
                           std::unique_ptr<std::string> adopted);
  static void destroy(const message* m) noexcept;
  const char* bytes() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  char* bytes() noexcept { return reinterpret_cast<char*>(this + 1); }

  mutable std::atomic<uint32_t> refs_{1};
  uint32_t exchange_len_ = 0;
  uint32_t routing_key_len_ = 0;
  uint32_t properties_len_ = 0;
  // fields' flags, in its order (build copies them together)
  uint8_t delivery_mode_ = 0;
  bool has_headers_ = false;
  bool has_expiration_ = false;
  bool dead_lettered_ = false;
  bool has_extra_routes_ = false;  // a length and the routes follow the inline body
  uint16_t inline_body_len_ = 0;   // at most inline_body_max
  // Null unless the body is larger than inline_body_max (a pointer: 8 bytes per message, not 32).
  std::unique_ptr<std::string> adopted_body_;
};

// What every message costs besides its bytes (a queue holds many).
static_assert(sizeof(message) <= 32);

inline constexpr uint64_t full_weight = uint64_t{1} << 62;

// One message on its way to queues. seq/weight are zero for untracked publishes.
struct publish_item {
  message_ptr msg;
  uint64_t seq = 0;     // the channel's publish sequence number
  uint64_t weight = 0;  // share of full_weight carried by this copy
};

// Who published a batch, for the firehose (actors/trace.hpp).
struct trace_origin {
  std::string node, vhost, connection, user;
  uint16_t channel = 0;  // the channel's number
};

struct publish_batch {
  caf::actor publisher;  // connection to report weights to (may be null for internal publishes)
  uint64_t channel = 0;  // the publishing channel's incarnation id within its connection
  uint8_t hops = 0;  // exchange-to-exchange / alternate-exchange hops so far (cycle guard)
  bool credited = false;  // the publisher counts it against its credit (publish_credit.hpp)
  uint64_t credited_bytes = 0;  // the body bytes it counted, so the receiver need not add them
  // Delivered before: messages a queue that yielded hands over (queue_actor.hpp).
  bool redelivered = false;
  std::vector<publish_item> items;
  // One origin when the publisher's vhost is traced: the first exchange copies each publish to
  // amq.rabbitmq.trace (actors/trace.hpp).
  std::vector<trace_origin> trace{};
};

// Weight handed back to a publishing channel.
struct weight_return {
  uint64_t seq = 0;
  uint64_t weight = 0;
  bool enqueued = false;  // true when it comes from a queue that took the message
  bool rejected = false;  // the queue refused or lost it: nack
};

struct route_report {
  uint64_t channel = 0;
  uint32_t forwarded_batches = 0;  // batches sent on to other exchanges (they report as well)
  std::vector<weight_return> returns;
};

// Sent by queues for tracked messages.
struct confirm_report {
  uint64_t channel = 0;
  std::vector<weight_return> returns;
};

struct delivery {
  message_ptr msg;
  uint64_t msg_id = 0;  // the queue's id, used to ack/requeue
  bool redelivered = false;
};

struct delivery_batch {
  caf::actor queue;
  uint64_t consumer_id = 0;
  std::vector<delivery> items;
};

struct consumer_spec {
  caf::actor conn;
  uint16_t channel = 0;
  uint64_t consumer_id = 0;  // unique within the connection
  std::string tag;
  bool no_ack = false;
  bool exclusive = false;
  int32_t priority = 0;
  uint32_t credit = 0;  // initial credit
  // STOMP subscriptions may filter (ActiveMQ selectors); messages no consumer wants stay queued.
  std::shared_ptr<const stomp::selector::expression> selector;
  uint32_t prefetch = 0;  // the consumer's prefetch limit; 0 = none (stream queues need one)
  bool global_qos = false;  // its channel has a basic.qos global=true (quorum queues refuse it)
  amqp::field_table arguments = {};  // basic.consume's arguments (x-stream-offset)
  std::string selector_text = {};  // the selector's source, which crosses nodes in its stead
  // Who consumes, as the management API shows it on any node: "peer -> listener", the user
  // and the node of the connection (name_consumer in command_loop.hpp).
  std::string connection_name = {};
  std::string user = {};
  std::string node = {};
};

struct get_result {
  uint16_t code = 0;  // not 0: the queue refuses basic.get (a stream), with `text`
  std::string text;
  bool empty = true;
  delivery d;
  uint32_t message_count = 0;  // messages left in the queue
};

// Reply of vhost/queue operations: code 0 means success, otherwise an AMQP reply code + text.
struct op_result {
  uint16_t code = 0;
  std::string text;
  uint32_t count = 0;  // message count (purge, delete) where it applies
  bool stream = false;  // a consume answered by a stream queue
};

struct queue_declared {
  uint16_t code = 0;
  std::string text;
  std::string name;
  uint32_t messages = 0;
  uint32_t consumers = 0;
  caf::actor queue;
};

// How long an actor of another cluster node may take to answer before it counts as out of
// reach (one that died with the request answers nothing).
inline constexpr auto remote_timeout = std::chrono::seconds(10);

struct lookup_result {
  uint16_t code = 0;
  std::string text;
  caf::actor target;
  bool internal = false;  // exchanges: internal exchanges refuse client publishes
  bool topic = false;     // exchanges: a topic exchange (topic permissions apply)
};

struct exchange_spec {
  std::string name;
  std::string type;
  bool passive = false;
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  amqp::field_table arguments;
  // When the exchange does not exist yet: the 403 text to refuse its creation with (the
  // declaring user may not use its alternate exchange), "" when nothing stands in the way.
  std::string refused_if_new{};
  // Cluster: when it was declared (cluster/definitions.hpp), 0 = not known.
  uint64_t stamp = 0;
};

struct queue_spec {
  std::string name;
  bool passive = false;
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  amqp::field_table arguments;
  caf::actor owner;  // the declaring connection
  bool server_named = false;  // `name` was made by the connection for a declare of ""
  // As for exchanges: the 403 text for a new queue whose dead-letter exchange the user may
  // not use, "" when nothing stands in the way.
  std::string refused_if_new{};
  uint64_t stamp = 0;  // cluster: when it was declared, as for exchanges
};

struct binding_spec {
  std::string source;       // exchange
  std::string destination;  // queue or exchange
  bool to_exchange = false;
  std::string key;
  amqp::field_table arguments;
  caf::actor conn;  // for exclusive-queue checks
  // The connection's topic permissions refuse this key on `source` (access.hpp): the text of
  // the 403, given when `source` is a topic exchange.
  std::string topic_refused = {};
  // Cluster: when it was bound (or, in an unbind that crosses, unbound); 0 = not known.
  uint64_t stamp = 0;
};

// A binding as an exchange actor keeps it.
struct binding_entry {
  caf::actor destination;
  std::string destination_name;
  bool to_exchange = false;
  std::string key;
  amqp::field_table arguments;
};

}  // namespace warren

#include "actors/message_inspect.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::binding_entry)

namespace warren {

// Atoms (CAF 0.17: at most 10 characters).
using publish_atom = caf::atom_constant<caf::atom("publish")>;
using trace_atom = caf::atom_constant<caf::atom("trace")>;
using routed_atom = caf::atom_constant<caf::atom("routed")>;
using confirm_atom = caf::atom_constant<caf::atom("confirm")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using consume_atom = caf::atom_constant<caf::atom("consume")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
// A channel or a STOMP connection lets go of a queue: cancels and requeues in one message.
using release_atom = caf::atom_constant<caf::atom("release")>;
using cancelled_atom = caf::atom_constant<caf::atom("cancelled")>;
using credit_atom = caf::atom_constant<caf::atom("credit")>;
using ack_atom = caf::atom_constant<caf::atom("ack")>;
using requeue_atom = caf::atom_constant<caf::atom("requeue")>;
using reject_atom = caf::atom_constant<caf::atom("reject")>;  // settled without requeue
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using unused_atom = caf::atom_constant<caf::atom("unused")>;  // x-expires
using unsent_atom = caf::atom_constant<caf::atom("unsent")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using alarm_atom = caf::atom_constant<caf::atom("alarm")>;  // memory / disk alarm changed
using purge_atom = caf::atom_constant<caf::atom("purge")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using delete_atom = caf::atom_constant<caf::atom("delete")>;
using check_atom = caf::atom_constant<caf::atom("check")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using bind_atom = caf::atom_constant<caf::atom("bind")>;
using unbind_atom = caf::atom_constant<caf::atom("unbind")>;
using declare_atom = caf::atom_constant<caf::atom("declare")>;
using exchange_atom = caf::atom_constant<caf::atom("exchange")>;
using queue_atom = caf::atom_constant<caf::atom("queue")>;
using lookup_atom = caf::atom_constant<caf::atom("lookup")>;
using route_atom = caf::atom_constant<caf::atom("route")>;
using autodel_atom = caf::atom_constant<caf::atom("autodel")>;
using inbound_atom = caf::atom_constant<caf::atom("inbound")>;
using closed_atom = caf::atom_constant<caf::atom("closed")>;
using drained_atom = caf::atom_constant<caf::atom("drained")>;
using start_atom = caf::atom_constant<caf::atom("start")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
// A connection looks for deliveries unacknowledged past the consumer timeout (ack_timeout.hpp).
using ack_timeout_atom = caf::atom_constant<caf::atom("acktimeout")>;
using reply_to_atom = caf::atom_constant<caf::atom("replyto")>;
using direct_atom = caf::atom_constant<caf::atom("direct")>;
using flow_atom = caf::atom_constant<caf::atom("flow")>;
using grant_atom = caf::atom_constant<caf::atom("grant")>;
using stomp_atom = caf::atom_constant<caf::atom("stomp")>;
using append_atom = caf::atom_constant<caf::atom("append")>;
using remove_atom = caf::atom_constant<caf::atom("remove")>;
using delivered_atom = caf::atom_constant<caf::atom("delivered")>;
using stored_atom = caf::atom_constant<caf::atom("stored")>;
using load_atom = caf::atom_constant<caf::atom("load")>;
using reclaim_atom = caf::atom_constant<caf::atom("reclaim")>;
using destroy_atom = caf::atom_constant<caf::atom("destroy")>;
using put_atom = caf::atom_constant<caf::atom("put")>;
// Management and observability (registry, vhost listings, statistics).
using list_atom = caf::atom_constant<caf::atom("list")>;
using login_atom = caf::atom_constant<caf::atom("login")>;
using vhost_atom = caf::atom_constant<caf::atom("vhost")>;
using user_atom = caf::atom_constant<caf::atom("user")>;
using permission_atom = caf::atom_constant<caf::atom("permission")>;
using binding_atom = caf::atom_constant<caf::atom("binding")>;
using report_atom = caf::atom_constant<caf::atom("report")>;
using force_close_atom = caf::atom_constant<caf::atom("forceclose")>;
// Supervision and fault injection.
using crash_atom = caf::atom_constant<caf::atom("crash")>;
using stall_atom = caf::atom_constant<caf::atom("stall")>;
using restarted_atom = caf::atom_constant<caf::atom("restarted")>;
using rebind_atom = caf::atom_constant<caf::atom("rebind")>;
using yield_atom = caf::atom_constant<caf::atom("yield")>;  // cluster: see queue_actor.hpp
using resume_atom = caf::atom_constant<caf::atom("resume")>;  // cluster: see queue_actor.hpp
using prune_atom = caf::atom_constant<caf::atom("prune")>;  // cluster: old tombstones go
// Vhost and user limits (registry_actor.hpp): admission of a connection, the channels it
// opens and closes.
using limit_atom = caf::atom_constant<caf::atom("limit")>;
using admit_atom = caf::atom_constant<caf::atom("admit")>;
using channel_atom = caf::atom_constant<caf::atom("channel")>;
// Topic permissions (registry_actor.hpp).
using topic_atom = caf::atom_constant<caf::atom("topic")>;
// Policies (actors/policy.hpp): registry -> vhost -> queues and exchanges.
using policy_atom = caf::atom_constant<caf::atom("policy")>;

// Makes the receiving actor fail the way an unhandled exception would (debug.fault_injection).
[[noreturn]] inline void inject_fault(const std::string& what) {
  throw std::runtime_error("fault injected into " + what);
}

// The local group on which a vhost tells its connections that one of its queues was restarted
// (restarted_atom, the dead queue's address): publishes routed through exchanges may have been
// lost with it.
inline caf::group vhost_group(caf::actor_system& sys, const std::string& vhost) {
  return sys.groups().get_local("warren.vhost." + vhost);
}

}  // namespace warren
