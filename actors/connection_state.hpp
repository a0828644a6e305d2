// State of the AMQP connection actor, shared by the files that implement its method families:
//   connection.cpp          lifecycle, handshake, the command loop, channels, errors
//   connection_declare.cpp  exchange.*, queue.* (through the vhost actor)
//   connection_publish.cpp  basic.publish, confirms, mandatory returns, tx, direct reply-to
//   connection_consume.cpp  basic.consume/cancel/get/ack/nack/reject/recover/qos, deliveries,
//                           consumer credit
//   connection_report.cpp   statistics for the stats collector
#pragma once

#include <deque>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "actors/ack_timeout.hpp"
#include "actors/command_loop.hpp"
#include "actors/connection.hpp"
#include "metrics/node_counters.hpp"
#include "metrics/probe.hpp"
#include "net/amqp_session.hpp"
#include "protocol/amqp091/assembler.hpp"
#include "protocol/amqp091/constants.hpp"
#include "protocol/amqp091/methods.hpp"

namespace warren::conn {

struct tracked_publish {
  uint64_t seq = 0;
  uint64_t returned = 0;  // weight handed back so far
  bool routed = false;    // some queue took it
  bool rejected = false;  // some queue refused or lost it
  bool mandatory = false;
  bool confirm = false;  // answer with basic.ack / basic.nack
  bool tx = false;       // part of a transaction being committed
  bool done = false;
  message_ptr msg;  // kept for basic.return
  caf::actor_addr target;
  bool via_exchange = false;  // target is an exchange (the queues it reaches are unknown here)
};

struct unacked_delivery {
  uint64_t tag = 0;
  caf::actor queue;
  uint64_t msg_id = 0;
  uint64_t consumer_id = 0;  // 0 for basic.get
};

// An ack, nack or reject in a transaction: its delivery leaves the unacked list at once (a
// second ack of it is an unknown tag, as in RabbitMQ) and is settled at commit, or goes back
// to the list at rollback.
struct tx_settle {
  unacked_delivery delivery;
  bool requeue = false;
  bool discard = false;
  bool ack = false;  // basic.ack (counted as acked)
};

struct consumer_rec {
  uint64_t id = 0;
  uint16_t channel = 0;
  std::string tag;
  caf::actor queue;
  std::string queue_name;
  bool no_ack = false;
  uint32_t prefetch = 0;  // per-consumer limit, 0 = none
  uint64_t granted = 0;   // credit granted to the queue so far
  uint64_t delivered = 0;
  uint32_t unacked = 0;
};

struct tx_publish {
  caf::actor target;
  std::vector<caf::actor> queues;  // with `several`, instead of target: the default exchange's
  bool several = false;            // queues named by the routing key, CC and BCC
  bool to_exchange = false;
  bool mandatory = false;
  message_ptr msg;
};

struct channel_rec {
  uint16_t number = 0;
  uint64_t id = 0;  // incarnation id, unique within the connection
  bool closing = false;
  bool confirm = false;
  bool tx = false;
  bool flow = true;
  uint64_t publish_seq = 0;
  std::deque<tracked_publish> tracked;
  uint64_t next_tag = 1;
  std::deque<unacked_delivery> unacked;
  delivery_clock delivered;  // when the unacked deliveries were made (the consumer timeout)
  uint16_t prefetch = 0;         // basic.qos global=false: for consumers created afterwards
  uint16_t global_prefetch = 0;  // basic.qos global=true: shared by the channel's consumers
  std::vector<uint64_t> consumers;
  std::string last_queue;  // for queue name "" (AMQP 0-9-1 §1.7.2.1)
  std::vector<tx_publish> tx_publishes;
  std::vector<tx_settle> tx_settles;
  size_t tx_waiting = 0;
  bool commit_pending = false;
  std::string reply_tag;    // direct reply-to consumer tag, "" when none
  std::string reply_token;  // our part of amq.rabbitmq.reply-to.<token>
  std::vector<delivery_batch> held;  // deliveries parked while channel.flow is off
  uint32_t mandatory_pending = 0;     // mandatory publishes whose fate is not known yet
  uint32_t routes_in_flight = 0;  // batches to exchanges not yet reported routed (publish order)
  bool credit_dirty = false;
  metrics::channel_counters counters;
  metrics::channel_token token;  // counts it opened, and closed once the record goes
};

enum class phase { header, start_ok, tune_ok, open, running, closing, closed };

struct pending_cmd {
  amqp::command cmd;
  size_t bytes = 0;
  uint16_t error_code = 0;  // a protocol fault in the frames or commands
  std::string error_text;
  uint16_t error_class = 0, error_method = 0;
};

struct outgoing_batch {
  caf::actor target;
  bool to_exchange = false;
  publish_batch batch;
};

struct state {
  std::shared_ptr<net::amqp_session> session;
  std::shared_ptr<const broker_settings> settings;
  std::string peer;
  std::string local;
  // The firehose (actors/trace.hpp): on while the vhost is traced on this node; the traces of
  // the publishes and deliveries handled since the last flush_outgoing or delivery batch.
  bool tracing = false;
  std::vector<publish_item> traces;
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
  phase ph = phase::header;
  bool peer_gone = false;  // the socket closed: finish the commands already read, then stop
  bool waiting_returns = false;  // a synchronous method waits for pending basic.returns
  uint16_t channel_max = 2047;
  uint32_t frame_max = 131072;
  uint16_t heartbeat = 0;
  // What the client said of itself in connection.start-ok (encoded as a field table), and the
  // mechanism it logged in with: for the management API.
  std::string client_properties;
  std::string auth_mechanism;
  bool cancel_notify = false;  // client capability consumer_cancel_notify
  bool blocked_notify = false;  // client capability connection.blocked
  bool auth_failure_close = false;  // client capability authentication_failure_close

  std::string out;  // encoded frames waiting for the next write
  amqp::assembler assembler;  // frames from the session -> commands
  bool assembly_failed = false;  // a framing fault was found: later frames are dropped
  std::deque<pending_cmd> pending;
  // Frames read while commands could not run (an answer awaited, a flow stop, no credit):
  // kept as they came and assembled once they can run, `held_at` bytes into the first.
  std::deque<net::inbound_batch> held;
  size_t held_at = 0;
  bool awaiting = false;
  size_t current_bytes = 0;
  size_t processed_bytes = 0;
  std::string negative_lookup;  // a name just looked up and not found
  // The same for the queues a publish to the default exchange names in CC and BCC headers.
  std::vector<std::string> negative_routes;

  std::unordered_map<uint16_t, channel_rec> channels;
  std::unordered_map<uint64_t, uint16_t> channel_by_id;
  uint64_t next_channel_id = 1;

  std::unordered_map<std::string, std::pair<caf::actor, bool>> exchange_cache;  // -> internal
  std::unordered_map<std::string, caf::actor> queue_cache;  // default-exchange targets
  std::vector<outgoing_batch> outgoing;
  batch_meter batched;  // what `outgoing` holds
  uint32_t inflight_routes = 0;
  std::function<void()> after_routes;

  std::unordered_map<uint64_t, consumer_rec> consumers;
  // Stream queues this connection consumes from, with their names: they refuse nack/reject.
  std::unordered_map<caf::actor_addr, std::string> stream_queues;
  uint64_t next_consumer_id = 1;
  std::unordered_map<caf::actor_addr, std::vector<uint64_t>> acks_out;
  std::unordered_map<caf::actor_addr, std::vector<uint64_t>> rejects_out;  // nack/reject, no requeue
  std::unordered_map<caf::actor_addr, std::pair<caf::actor, std::vector<uint64_t>>> requeue_out;
  std::unordered_map<caf::actor_addr, caf::actor> ack_targets;
  bool drain_requested = false;
  bool ack_timer = false;  // an ack_timeout_atom is on its way
  publisher_flow flow;  // exchanges/queues that asked us to wait

  static inline const char* name = "connection";
};

using actor = caf::stateful_actor<state>;

// connection.cpp
void process(actor* self);
// connection_report.cpp
void report(actor* self, const caf::actor& to, bool final);
void flush_out(actor* self);
void channel_error(actor* self, channel_rec& ch, uint16_t code, std::string text,
                   uint16_t cls = 0, uint16_t mth = 0);
void connection_error(actor* self, uint16_t code, std::string text, uint16_t cls = 0,
                      uint16_t mth = 0);
channel_rec* channel_by_id(actor* self, uint64_t id);
void retry_current(actor* self, amqp::command&& cmd);
// (alarm_atom, memory, disk): a blocked connection goes on (connection.unblocked) once both
// alarms are clear.
void on_alarm(actor* self, bool memory, bool disk);
// Whether the user may do `p` on the exchange or queue `name` (actors/access.hpp); when not, a
// 403 ACCESS_REFUSED channel error.
bool refuse(actor* self, channel_rec& ch, access::kind k, const std::string& name, uint16_t cls,
            uint16_t mth);
inline bool permitted(actor* self, channel_rec& ch, access::perm p, access::kind k,
                      const std::string& name, uint16_t cls, uint16_t mth) {
  return self->state.perms.allows(p, k, name) || refuse(self, ch, k, name, cls, mth);
}
std::string random_token(size_t n);

template <class M>
void send_method(actor* self, uint16_t channel, const M& m) {
  amqp::encode_method(self->state.out, channel, m);
}

// Waits for a reply of `dest` to (xs...), with the command loop paused meanwhile; then calls f.
template <class R, class F, class... Ts>
void ask(actor* self, const caf::actor& dest, F f, Ts&&... xs);

// Runs fn once every batch sent to exchanges so far has been routed (so that queue operations
// see earlier publishes of this connection); pauses the command loop until then.
void when_routed(actor* self, std::function<void()> fn);

// connection_declare.cpp
void on_exchange_declare(actor* self, channel_rec& ch, amqp::exchange_declare& m);
void on_exchange_delete(actor* self, channel_rec& ch, amqp::exchange_delete& m);
void on_exchange_bind(actor* self, channel_rec& ch, amqp::exchange_bind& m);
void on_exchange_unbind(actor* self, channel_rec& ch, amqp::exchange_unbind& m);
void on_queue_declare(actor* self, channel_rec& ch, amqp::queue_declare& m);
void on_queue_bind(actor* self, channel_rec& ch, amqp::queue_bind& m);
void on_queue_unbind(actor* self, channel_rec& ch, amqp::queue_unbind& m);
void on_queue_purge(actor* self, channel_rec& ch, amqp::queue_purge& m);
void on_queue_delete(actor* self, channel_rec& ch, amqp::queue_delete& m);
void forget_target(actor* self, const caf::actor_addr& addr);

// connection_publish.cpp
void on_publish(actor* self, channel_rec& ch, amqp::command& cmd, amqp::basic_publish& m);
void on_confirm_select(actor* self, channel_rec& ch, amqp::confirm_select& m);
void on_tx_select(actor* self, channel_rec& ch);
void on_tx_commit(actor* self, channel_rec& ch);
void on_tx_rollback(actor* self, channel_rec& ch);
void flush_outgoing(actor* self);
// The firehose: who a trace of this connection's `channel` names (actors/trace.hpp).
trace_origin trace_origin_of(actor* self, uint16_t channel);
void on_weights(actor* self, uint64_t channel_id, std::vector<weight_return>& returns);
void on_direct_reply(actor* self, std::string& token, publish_batch& b);
void fail_tracked_to(actor* self, const caf::actor_addr& target);
// A queue of the vhost was restarted: what went through exchanges may have been lost with it.
void fail_tracked_via_exchanges(actor* self);

// connection_consume.cpp
void on_consume(actor* self, channel_rec& ch, amqp::basic_consume& m);
void on_cancel(actor* self, channel_rec& ch, amqp::basic_cancel& m);
void on_get(actor* self, channel_rec& ch, amqp::basic_get& m);
void on_qos(actor* self, channel_rec& ch, amqp::basic_qos& m);
void on_ack(actor* self, channel_rec& ch, uint64_t tag, bool multiple, bool requeue, bool discard,
            uint16_t cls, uint16_t mth);
void on_recover(actor* self, channel_rec& ch, bool requeue, bool reply);
// tx.commit and tx.rollback of the acks, nacks and rejects of a transaction.
void commit_settles(actor* self, channel_rec& ch);
void rollback_settles(channel_rec& ch);
void on_flow(actor* self, channel_rec& ch, bool active);
void on_deliver(actor* self, delivery_batch& b);
void on_server_cancel(actor* self, uint64_t consumer_id);
void release_channel(actor* self, channel_rec& ch);
// (ack_timeout_atom): closes the channels whose oldest unacked delivery is past the consumer
// timeout, and looks again when the next one would be.
void check_ack_timeouts(actor* self);
void refill_credit(actor* self);
void flush_acks(actor* self);
void encode_delivery(actor* self, uint16_t channel, std::string_view consumer_tag,
                     uint64_t delivery_tag, bool redelivered, const message& msg);

// Implementation of ask (template).
template <class R, class F, class... Ts>
void ask(actor* self, const caf::actor& dest, F f, Ts&&... xs) {
  flush_outgoing(self);
  request_paused<R>(
    self, dest, std::move(f),
    [self](caf::error& err) {
      connection_error(self, amqp::internal_error,
                       "INTERNAL_ERROR - " + self->home_system().render(err));
    },
    [](actor* s) { process(s); }, std::forward<Ts>(xs)...);
}

}  // namespace warren::conn
