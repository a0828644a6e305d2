// State of the STOMP connection actor, shared by its files:
//   stomp_connection.cpp     lifecycle, CONNECT, the frame loop, SEND, transactions, receipts
//   stomp_subscriptions.cpp  SUBSCRIBE / UNSUBSCRIBE / ACK / NACK, MESSAGE delivery, credit
//   connection_report.cpp    statistics for the stats collector
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "actors/ack_timeout.hpp"
#include "actors/command_loop.hpp"
#include "actors/connection.hpp"
#include "actors/stomp_mapping.hpp"
#include "metrics/node_counters.hpp"
#include "metrics/probe.hpp"
#include "net/stomp_session.hpp"
#include "protocol/amqp091/constants.hpp"

namespace warren::stomp_conn {

enum class ack_mode { auto_ack, client, client_individual };

struct subscription {
  std::string id;
  bool id_given = true;  // SUBSCRIBE had an id (else `id` is the destination): MESSAGEs say so
  std::string destination;
  ack_mode mode = ack_mode::auto_ack;
  uint64_t consumer_id = 0;
  caf::actor queue;
  std::string queue_name;
  bool durable = false;
  uint32_t prefetch = 0;  // 0 = no limit
  uint64_t granted = 0;
  uint64_t delivered = 0;
  uint32_t unacked = 0;
  bool stream = false;  // of a stream queue: acks only
};

struct unacked_message {
  uint64_t seq = 0;
  caf::actor queue;
  uint64_t msg_id = 0;
  uint64_t consumer_id = 0;
};

struct pending_frame {
  stomp::frame f;
  size_t bytes = 0;
};

struct state {
  std::shared_ptr<net::stomp_session> session;
  std::shared_ptr<const broker_settings> settings;
  std::string peer;
  std::string local;
  bool local_loopback = false;  // reached through a loopback address (loopback_users)
  net::tls_details tls;  // the TLS session, once the handshake is done (`on` false: plain)
  access::vhost_permissions perms;  // the user's in this vhost, from connection.open / CONNECT
  access::topic_permissions topics;  // the user's topic permissions in this vhost
  std::unordered_set<std::string> topic_exchanges;  // cached exchanges that are topic exchanges
  alarm_block alarms;  // memory and disk alarms (resource_alarms.hpp)
  std::string user;
  std::string vhost_name;
  caf::actor vhost;
  metrics::connection_counters stats;
  metrics::channel_counters counters;  // reported as channel 1
  std::optional<metrics::channel_token> channel;  // counts channel 1 open from CONNECTED on
  bool connected = false;
  bool closing = false;
  bool peer_gone = false;  // the socket closed: finish the frames already read, then stop
  stomp::version version = stomp::version::v1_0;
  std::string session_id;
  std::string client_id;

  std::string out;
  stomp::frame message_frame;  // reused for every MESSAGE (on_deliver)
  struct {
    bool valid = false;
    std::string exchange;
    std::string routing_key;
    std::string destination;
  } last_destination;  // destination header of the last message delivered
  std::deque<pending_frame> pending;
  bool awaiting = false;
  size_t current_bytes = 0;
  size_t processed_bytes = 0;

  std::map<std::string, subscription> subs;
  std::unordered_map<uint64_t, std::string> sub_by_consumer;
  uint64_t next_consumer_id = 1;
  std::deque<unacked_message> unacked;  // ordered by seq
  delivery_clock delivered;  // when the unacked messages were sent (the consumer timeout)
  bool ack_timer = false;  // an ack_timeout_atom is on its way
  uint64_t next_seq = 1;
  std::map<std::string, std::vector<stomp::frame>> transactions;
  std::map<std::string, std::string> temp_queues;  // temp-queue name -> real queue name

  std::unordered_map<std::string, caf::actor> queue_cache;
  std::unordered_map<std::string, caf::actor> exchange_cache;
  std::string negative_lookup;

  // SEND frames that asked for a receipt wait until their weight came back (messages.hpp).
  uint64_t publish_seq = 0;
  std::map<uint64_t, std::pair<uint64_t, std::string>> receipts;  // seq -> (weight, receipt-id)
  // SENDs of the frames handled so far, one batch per target; sent when the frames of a read
  // are done, before any other frame, or every batch_meter::max_messages SENDs (one actor
  // message per batch, not per SEND).
  std::vector<std::pair<caf::actor, publish_batch>> outgoing;
  // The firehose (actors/trace.hpp), as for AMQP connections: this is channel 1.
  bool tracing = false;
  std::vector<publish_item> traces;
  batch_meter batched;  // what `outgoing` holds
  // Batches to exchanges not yet reported routed: a SEND to a queue waits for them (publish
  // order, as in connection_publish.cpp), with `awaiting` and `waiting_routes` set.
  uint32_t routes_in_flight = 0;
  bool waiting_routes = false;
  publisher_flow flow;
  bool drain_requested = false;

  static inline const char* name = "stomp_connection";
};

using actor = caf::stateful_actor<state>;

// stomp_connection.cpp
void process(actor* self);
// connection_report.cpp
void report(actor* self, const caf::actor& to, bool final);
void flush_out(actor* self);
void flush_publishes(actor* self);
trace_origin trace_origin_of(actor* self);  // who this connection's traces name (trace.hpp)
void send_frame(actor* self, const stomp::frame& f);
void send_receipt(actor* self, const stomp::frame& request);
void fatal(actor* self, std::string message, std::string detail = {});
// (alarm_atom, memory, disk): a SEND waiting for the alarms goes on once both are clear.
void on_alarm(actor* self, bool memory, bool disk);
// Whether the user may do `p` on the exchange or queue `name` (actors/access.hpp); when not,
// an ERROR frame (message "access_refused") and the connection closes, as RabbitMQ's adapter
// does for its channel's 403.
bool permitted(actor* self, access::perm p, access::kind k, const std::string& name);
// The spec of a server-named queue (a temporary queue, a topic subscription's), named here so
// that the configure permission sees its name; nullopt (and the ERROR sent) when refused.
// `prefix`: "amq.gen-" for temporary queues; RabbitMQ names a topic subscription's queue
// "stomp-subscription-<random>".
std::optional<queue_spec> server_named_spec(actor* self, bool exclusive, bool auto_delete,
                                            const char* prefix = "amq.gen-");
void retry_current(actor* self, stomp::frame&& f);
void routes_done(actor* self);  // ends a wait for routes_in_flight
// Resolves a queue for a destination, declaring it when the destination asks for that; calls
// `then` with the queue actor and name, or sends ERROR. Pauses the frame loop meanwhile.
void with_queue(actor* self, const stomp_map::destination& d, const stomp::frame& request,
                std::function<void(caf::actor, std::string)> then);
// RabbitMQ's adapter: a temporary queue is only a reply-to, neither sent to nor subscribed to by
// name (ERROR "Invalid destination").
void refuse_temp_queue(actor* self, const stomp::frame& f);

template <class R, class F, class... Ts>
void ask(actor* self, const caf::actor& dest, F f, Ts&&... xs) {
  flush_publishes(self);
  request_paused<R>(
    self, dest, std::move(f),
    [self](caf::error& err) { fatal(self, "Internal error", self->home_system().render(err)); },
    [](actor* s) { process(s); }, std::forward<Ts>(xs)...);
}

// stomp_subscriptions.cpp
void on_subscribe(actor* self, stomp::frame& f);
void on_unsubscribe(actor* self, stomp::frame& f);
void on_ack(actor* self, const stomp::frame& f, bool nack);
void on_deliver(actor* self, delivery_batch& b);
void on_server_cancel(actor* self, uint64_t consumer_id);
// Cancels every subscription and requeues what is unacked (DISCONNECT, ERROR, socket gone).
void release_subscriptions(actor* self);
void refill_credit(actor* self);
// (ack_timeout_atom): an ERROR frame and the end of the connection when its oldest unacked
// message is past the consumer timeout (ack_timeout.hpp); else a look again when it would be.
void check_ack_timeout(actor* self);
void subscribe_temp_queue(actor* self, const std::string& temp, const std::string& queue_name,
                          caf::actor queue);

}  // namespace warren::stomp_conn
