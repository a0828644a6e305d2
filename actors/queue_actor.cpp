// The queue actor (one per queue).
//
// Jobs: hold ready messages in order and the unacknowledged ones by id; dispatch to consumers
// round-robin (highest consumer priority first) while they have credit; answer basic.get,
// purge, delete checks and declare counts; requeue what a consumer's connection leaves behind.
// Talks to: connections (batches in, deliveries and confirm weights out, credit/acks in), the
// vhost (auto-delete request out, stop in).
// Durable queues also keep their persistent messages in a message store actor: appended on
// arrival (a confirm waits until the store says the message is on disk), flagged when
// delivered, removed once acked or consumed, and the file's free pages given back when the
// queue drains. Beyond `memory_limit` bytes of ready bodies, a persistent message keeps only
// its id in memory (paged out); bodies are read back from the store, a page at a time, when
// they reach the head of the queue.
// Queue arguments (queue_arguments.hpp): a message expires x-message-ttl (or its own
// `expiration`, if shorter) after it entered the queue, at the head of the queue, as in
// RabbitMQ, by a timer set for the head's deadline; x-max-length / x-max-length-bytes count
// ready messages and drop the oldest (drop-head) or refuse the newest (reject-publish, a nack
// with confirms); x-expires deletes the queue after that long without consumers, basic.get
// or redeclare. With x-dead-letter-exchange, what is rejected without requeue, expires or
// is dropped for length goes there (dead_letter.hpp), through the vhost, which finds the
// exchange by name; a copy that went round a cycle without a rejection is dropped on arrival.
// Reports its depth, consumers and counters to the stats collector when asked (report_atom),
// counting in its own state only.
// Invariants: a message is either ready or unacked, never both; deliveries for a consumer are
// sent only after its consume request was answered; credit is granted by the consumer's
// connection and never exceeded; a persistent message's confirm never precedes its commit.
#include "actors/queue_actor.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/dead_letter.hpp"
#include "actors/handover.hpp"
#include "actors/hardening.hpp"
#include "actors/conn_keys.hpp"
#include "actors/mailbox_flow.hpp"
#include "actors/publish_credit.hpp"
#include "actors/store_confirms.hpp"
#include "actors/message_lookup.hpp"
#include "metrics/probe.hpp"
#include "protocol/amqp091/properties.hpp"
#include "persistence/actors/message_store_actor.hpp"

#include "protocol/amqp091/constants.hpp"

namespace warren {
namespace {

struct ready_entry {
  uint64_t id;
  message_ptr msg;  // null while paged out (persistent messages of durable queues only)
  bool redelivered;
  uint8_t priority = 0;  // in a priority queue (x-max-priority); 0 elsewhere
  uint16_t returned = 0;  // quorum queues: times a client gave it back (x-delivery-count)
  uint32_t bytes = 0;    // body size, known while paged out too (x-max-length-bytes)
  int64_t expires = 0;   // deadline on the now_ms() clock; 0 = never
};
// A million ready messages cost this much each besides the message (S10's peak RSS).
static_assert(sizeof(ready_entry) <= 32);

// The order of the ready list: by priority, highest first (all 0 outside priority queues), then
// by id, that is in order of arrival.
bool goes_before(const ready_entry& a, const ready_entry& b) {
  return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
}

struct pending_get {
  caf::response_promise rp;
  caf::actor conn;
  bool no_ack;
};

struct unacked_entry {
  message_ptr msg;
  uint64_t conn;  // conn_keys
  bool redelivered;
  uint16_t returned;  // as in ready_entry
  int64_t expires = 0;  // kept for a requeue: the message does not get a new lease of life
};

struct consumer {
  consumer_spec spec;
  uint32_t credit;
  uint64_t conn = 0;  // conn_keys
};

struct queue_state {
  queue_config cfg;
  std::deque<ready_entry> ready;
  std::unordered_map<uint64_t, unacked_entry> unacked;
  size_t unacked_bytes = 0;  // of the bodies in `unacked` (add_unacked, take_unacked)
  std::vector<consumer> consumers;
  size_t rr = 0;
  uint64_t next_id = 1;
  bool had_consumer = false;
  bool dispatch_scheduled = false;
  std::unordered_set<caf::actor_addr> monitored;
  conn_keys keys;
  mailbox_flow flow;
  credit_grants grants;  // publish credit owed to connections (publish_credit.hpp)
  bool stalled = false;           // publishers waited and consumers took nothing meanwhile
  bool stall_check_scheduled = false;
  // Persistence (durable queues only).
  store_confirms unconfirmed;  // waiting for the store's commit
  std::vector<uint64_t> to_remove;
  std::vector<uint64_t> to_mark_delivered;
  bool removed_since_reclaim = false;
  bool reclaim_scheduled = false;
  size_t resident_bytes = 0;  // bodies of ready messages held in memory
  size_t ready_bytes = 0;     // bodies of ready messages, paged out or not
  int64_t expiry_armed = 0;   // the deadline the expiry timer is set for; 0 = none
  int64_t last_use = 0;       // now_ms() of the last consume, cancel, get or declare (x-expires)
  bool idle_armed = false;    // the x-expires timer is set
  uint64_t idle_epoch = 0;    // a timer of an earlier epoch (a policy changed expires) is stale
  bool over_limit = false;    // a quorum queue with reject-publish refuses publishes (note_limit)
  publish_batch dead_letters;  // for the dead-letter exchange, sent at the end of the turn
  bool paging_in = false;
  std::vector<pending_get> pending_gets;  // basic.get waiting for a page-in
  // Statistics (metrics/stats.hpp).
  caf::actor collector;
  uint64_t published = 0, delivered = 0, acked = 0, redelivered = 0;
  uint64_t delivered_no_ack = 0, got_ack = 0, got_no_ack = 0, got_empty = 0;
  uint64_t dead_lettered[metrics::death_reasons] = {};  // by death_reason, DLX or not
  static inline const char* name = "queue";
};

using queue_actor_t = caf::stateful_actor<queue_state>;

void add_unacked(queue_state& st, uint64_t id, unacked_entry&& u) {
  st.unacked_bytes += u.msg->body().size();
  st.unacked.emplace(id, std::move(u));
}

// Takes the unacked message at `it` out of the unacked ones.
unacked_entry take_unacked(queue_state& st,
                           std::unordered_map<uint64_t, unacked_entry>::iterator it) {
  auto u = std::move(it->second);
  st.unacked.erase(it);
  st.unacked_bytes -= std::min(st.unacked_bytes, u.msg->body().size());
  return u;
}

std::string queue_desc(const queue_state& st) {
  return "queue '" + st.cfg.name + "' in vhost '" + st.cfg.vhost_name + "'";
}

// A quorum queue keeps every message it takes, as RabbitMQ's Raft log does.
bool persistent(const queue_state& st, const message& m) {
  return !st.cfg.store_path.empty() && (m.delivery_mode() == 2 || st.cfg.options.quorum);
}

// Quorum queues say how often a message came back (x-delivery-count): in a delivery once it
// has, in every basic.get-ok (0 the first time), as RabbitMQ 3.10 does.
message_ptr counted(const queue_state& st, message_ptr m, uint16_t returned, bool get) {
  if (!st.cfg.options.quorum || (returned == 0 && !get))
    return m;
  auto copy = with_header(*m, "x-delivery-count", int64_t{returned});
  return copy ? copy : m;
}

// Milliseconds on the monotonic clock, never 0 (0 marks "no deadline").
int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count() + 1;
}

// Milliseconds since the Unix epoch: deadlines as the store keeps them, valid across restarts.
int64_t wall_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// The clock read at most once per turn, and only when a deadline is looked at.
struct turn_clock {
  int64_t at = 0;
  int64_t operator()() { return at ? at : (at = now_ms()); }
};

bool expired(const ready_entry& e, turn_clock& now) { return e.expires && e.expires <= now(); }

// now + ttl, saturating (a TTL of 2^63 ms is "never", not a deadline in the past).
int64_t deadline_after(turn_clock& now, int64_t ttl) {
  return ttl > std::numeric_limits<int64_t>::max() - now() ? std::numeric_limits<int64_t>::max()
                                                            : now() + ttl;
}

// The deadline of a message entering the queue now: x-message-ttl or its own expiration,
// whichever is shorter; 0 when it has neither.
int64_t deadline_of(const queue_state& st, const message& m, turn_clock& now) {
  auto ttl = st.cfg.options.message_ttl;
  if (m.has_expiration()) {
    amqp::property_scan scan;
    std::string why;
    if (amqp::scan_properties(m.properties(), scan) && scan.expiration)
      if (auto own = parse_expiration(*scan.expiration, why))
        ttl = ttl ? std::min(*ttl, *own) : *own;
  }
  return ttl ? deadline_after(now, *ttl) : 0;
}

// Timers are set for at most a day; one that fires early looks again and sets the next.
std::chrono::milliseconds timer_delay(int64_t ms) {
  constexpr int64_t day = 24 * 3600 * 1000;
  return std::chrono::milliseconds(std::clamp<int64_t>(ms, 0, day));
}

// A message's place in a priority queue: its priority property, at most x-max-priority.
uint8_t priority_of(const queue_state& st, const message& m) {
  if (!st.cfg.options.max_priority)
    return 0;
  amqp::property_scan scan;
  if (!amqp::scan_properties(m.properties(), scan) || !scan.priority)
    return 0;
  return std::min(*scan.priority, *st.cfg.options.max_priority);
}

// A new message joins the ready list: at the back, or in a priority queue at the back of its
// priority's band.
void enqueue(queue_state& st, ready_entry&& e) {
  if (st.ready.empty() || !goes_before(e, st.ready.back()))
    st.ready.push_back(std::move(e));
  else
    st.ready.insert(std::upper_bound(st.ready.begin(), st.ready.end(), e, goes_before),
                    std::move(e));
}

bool dead_lettering(const queue_state& st) {
  return st.cfg.options.dead_letter_exchange.has_value();
}

// Queues m's copy for the dead-letter exchange, if the queue has one; counts it either way.
void dead_letter_one(queue_state& st, const message& m, death_reason why) {
  ++st.dead_lettered[static_cast<size_t>(why)];
  if (!dead_lettering(st))
    return;
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
    std::chrono::system_clock::now().time_since_epoch());
  auto copy = dead_letter(m, why, st.cfg.name, *st.cfg.options.dead_letter_exchange,
                          st.cfg.options.dead_letter_routing_key,
                          static_cast<uint64_t>(seconds.count()));
  if (copy)
    st.dead_letters.items.push_back(publish_item{std::move(copy), 0, 0});
}

// Takes the head of the ready list (which must be in memory), keeping the accounting right.
ready_entry pop_ready(queue_state& st) {
  auto e = std::move(st.ready.front());
  st.ready.pop_front();
  st.resident_bytes -= std::min(st.resident_bytes, e.msg->body().size());
  st.ready_bytes -= std::min<size_t>(st.ready_bytes, e.bytes);
  return e;
}

void note_gone(queue_state& st, uint64_t id, const message& m);

// Takes a ready message out for good, dead-lettered if the queue says so (then it must be in
// memory). Returns the next position.
std::deque<ready_entry>::iterator discard(queue_state& st, std::deque<ready_entry>::iterator it,
                                          death_reason why) {
  st.ready_bytes -= std::min<size_t>(st.ready_bytes, it->bytes);
  if (!it->msg) {  // paged out: a persistent message, on disk only (and no dead-lettering)
    ++st.dead_lettered[static_cast<size_t>(why)];
    st.to_remove.push_back(it->id);
  } else {
    st.resident_bytes -= std::min(st.resident_bytes, it->msg->body().size());
    dead_letter_one(st, *it->msg, why);
    note_gone(st, it->id, *it->msg);
  }
  return st.ready.erase(it);
}

void page_in(queue_actor_t* self);

// Messages with an id from `fresh_from` on arrived in this turn: while the turn first tries to
// hand them out they do not expire yet, so that a message with a TTL of 0 still reaches a
// consumer that can take it at once (RabbitMQ's rule).
constexpr uint64_t none_fresh = std::numeric_limits<uint64_t>::max();

// Expires the messages at the head whose deadline has passed. False when the head must first
// be read from the store (its body goes to the dead-letter exchange).
bool expire_head(queue_actor_t* self, turn_clock& now, uint64_t fresh_from = none_fresh) {
  auto& st = self->state;
  while (!st.ready.empty() && st.ready.front().id < fresh_from && expired(st.ready.front(), now)) {
    if (!st.ready.front().msg && dead_lettering(st)) {
      page_in(self);
      return false;
    }
    discard(st, st.ready.begin(), death_reason::expired);
  }
  return true;
}

bool over_length(const queue_state& st, size_t extra_messages, size_t extra_bytes) {
  auto& o = st.cfg.options;
  return (o.max_length && st.ready.size() + extra_messages > static_cast<size_t>(*o.max_length)) ||
         (o.max_length_bytes &&
          st.ready_bytes + extra_bytes > static_cast<size_t>(*o.max_length_bytes));
}

// drop-head: the oldest ready messages go until the queue is within its length limits.
void enforce_length(queue_actor_t* self) {
  auto& st = self->state;
  if (!st.cfg.options.limited() || st.cfg.options.overflow != overflow_mode::drop_head)
    return;
  while (!st.ready.empty() && over_length(st, 0, 0)) {
    if (!st.ready.front().msg && dead_lettering(st)) {
      page_in(self);
      return;
    }
    discard(st, st.ready.begin(), death_reason::maxlen);
  }
}

// A quorum queue with reject-publish refuses publishes as rabbit_fifo does: the publish that
// takes it over a limit is still taken, and from then on it refuses them until its ready
// messages (and their bytes) are down to 80% of the limits. `over_limit` is that state;
// note_limit runs at each point where the count may have crossed either mark: before a message
// is added (the lowest the count got since the last addition), after one was added, and at the
// end of each dispatch (requeues, deliveries, a policy's new limits).
bool quorum_refuses(const queue_state& st) {
  auto& o = st.cfg.options;
  return o.quorum && o.limited() && o.overflow == overflow_mode::reject_publish;
}

void note_limit(queue_state& st) {
  if (!quorum_refuses(st)) {
    st.over_limit = false;
    return;
  }
  auto& o = st.cfg.options;
  auto low = [](int64_t max) { return static_cast<size_t>(static_cast<double>(max) * 0.8); };
  if (over_length(st, 0, 0))
    st.over_limit = true;
  else if ((!o.max_length || st.ready.size() <= low(*o.max_length)) &&
           (!o.max_length_bytes || st.ready_bytes <= low(*o.max_length_bytes)))
    st.over_limit = false;
}

// Sets the timer for the head's deadline, unless one is set for that time or earlier. The timer
// carries its deadline: one that an earlier deadline replaced finds it is no longer the one
// armed and does nothing, so timers never pile up. A paged-out head that expired is being read
// (expire_head started the page-in), and the page-in's answer looks again.
void arm_expiry(queue_actor_t* self) {
  auto& st = self->state;
  if (st.ready.empty() || (st.paging_in && !st.ready.front().msg))
    return;
  auto at = st.ready.front().expires;
  if (!at || (st.expiry_armed && st.expiry_armed <= at))
    return;
  st.expiry_armed = at;
  self->delayed_send(self, timer_delay(at - now_ms()), expire_atom::value, at);
}

// The message left the queue for good (acked, consumed without ack, purged).
void note_gone(queue_state& st, uint64_t id, const message& m) {
  if (persistent(st, m))
    st.to_remove.push_back(id);
}

void note_delivered(queue_state& st, uint64_t id, const message& m) {
  if (persistent(st, m))
    st.to_mark_delivered.push_back(id);
}

// Sends the dead-letter exchange and the store what this turn dead-lettered, removed or
// delivered; once the queue is empty, asks the store to give the file's free pages back (at
// most once a second).
void flush_store(queue_actor_t* self) {
  auto& st = self->state;
  if (!st.dead_letters.items.empty() && st.cfg.options.dead_letter_exchange)
    self->send(st.cfg.vhost, route_atom::value, *st.cfg.options.dead_letter_exchange,
               std::exchange(st.dead_letters, {}));
  if (st.cfg.store_path.empty())
    return;
  if (!st.to_mark_delivered.empty())
    self->send(st.cfg.store, delivered_atom::value, st.cfg.store_path,
               std::exchange(st.to_mark_delivered, {}));
  if (!st.to_remove.empty()) {
    self->send(st.cfg.store, remove_atom::value, st.cfg.store_path, std::exchange(st.to_remove, {}));
    st.removed_since_reclaim = true;
  }
  if (st.removed_since_reclaim && st.ready.empty() && st.unacked.empty() && !st.reclaim_scheduled) {
    st.reclaim_scheduled = true;
    self->delayed_send(self, std::chrono::seconds(1), reclaim_atom::value);
  }
}

void watch(queue_actor_t* self, const caf::actor& conn) {
  if (conn && self->state.monitored.insert(conn.address()).second)
    self->monitor(conn);
}

// Picks the consumer for the next message: the highest priority among those with credit,
// round-robin within it. Returns consumers.size() when nobody can take a message.
size_t pick_consumer(queue_state& st) {
  size_t n = st.consumers.size();
  if (st.cfg.options.single_active_consumer)  // only the first one registered is active
    return n && st.consumers[0].credit ? 0 : n;
  size_t best = n;
  for (size_t k = 0; k < n; ++k) {
    size_t i = (st.rr + k) % n;
    auto& c = st.consumers[i];
    if (c.credit == 0)
      continue;
    if (best == n || c.spec.priority > st.consumers[best].spec.priority)
      best = i;
  }
  return best;
}

void send_batches(queue_actor_t* self, std::vector<delivery_batch>& batches) {
  auto& st = self->state;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (batches[i].items.empty())
      continue;
    st.stalled = false;
    batches[i].queue = caf::actor_cast<caf::actor>(self);
    batches[i].consumer_id = st.consumers[i].spec.consumer_id;
    self->send(st.consumers[i].spec.conn, deliver_atom::value, std::move(batches[i]));
  }
}

// Dispatch when some consumer filters with a selector: each ready message goes to the first
// consumer (priority, then round-robin) that has credit and accepts it; messages nobody accepts
// stay where they are. Scans at most `max_scan` messages per round to stay bounded.
void dispatch_selective(queue_actor_t* self, uint64_t fresh_from) {
  constexpr size_t max_scan = 10000;
  auto& st = self->state;
  std::vector<delivery_batch> batches(st.consumers.size());
  // With a single active consumer only the first one registered takes messages.
  size_t n = st.cfg.options.single_active_consumer ? std::min<size_t>(1, st.consumers.size())
                                                   : st.consumers.size();
  size_t scanned = 0;
  turn_clock now;
  for (auto it = st.ready.begin(); it != st.ready.end() && scanned < max_scan; ++scanned) {
    if (it->id < fresh_from && expired(*it, now) && (it->msg || !dead_lettering(st))) {
      it = discard(st, it, death_reason::expired);  // never delivered, wherever it stands
      continue;
    }
    if (!it->msg) {  // paged out: selectors need the message, read the page first
      page_in(self);
      break;
    }
    bool any_credit = false;
    size_t best = n;
    message_lookup lookup{*it->msg};
    for (size_t k = 0; k < n; ++k) {
      size_t i = (st.rr + k) % n;
      auto& c = st.consumers[i];
      if (c.credit == 0)
        continue;
      any_credit = true;
      if (best != n && c.spec.priority <= st.consumers[best].spec.priority)
        continue;
      if (c.spec.selector && !stomp::selector::matches(*c.spec.selector, std::ref(lookup)))
        continue;
      best = i;
    }
    if (!any_credit)
      break;
    if (best == n) {
      ++it;
      continue;
    }
    auto& c = st.consumers[best];
    --c.credit;
    st.rr = (best + 1) % n;
    ++st.delivered;
    st.delivered_no_ack += c.spec.no_ack ? 1 : 0;
    st.redelivered += it->redelivered ? 1 : 0;
    if (!c.spec.no_ack) {
      add_unacked(st, it->id,
                  unacked_entry{it->msg, c.conn, it->redelivered, it->returned, it->expires});
      note_delivered(st, it->id, *it->msg);
    } else {
      note_gone(st, it->id, *it->msg);
    }
    st.resident_bytes -= std::min(st.resident_bytes, it->msg->body().size());
    st.ready_bytes -= std::min<size_t>(st.ready_bytes, it->bytes);
    batches[best].items.push_back(
      delivery{counted(st, std::move(it->msg), it->returned, false), it->id, it->redelivered});
    it = st.ready.erase(it);
  }
  send_batches(self, batches);
  flush_store(self);
}

void dispatch_in_order(queue_actor_t* self, uint64_t fresh_from) {
  auto& st = self->state;
  st.dispatch_scheduled = false;
  if (st.consumers.empty() || st.ready.empty())
    return;
  if (std::any_of(st.consumers.begin(), st.consumers.end(),
                  [](const consumer& c) { return c.spec.selector != nullptr; }))
    return dispatch_selective(self, fresh_from);
  std::vector<delivery_batch> batches(st.consumers.size());
  turn_clock now;
  while (!st.ready.empty()) {
    if (!expire_head(self, now, fresh_from) || st.ready.empty())
      break;
    if (!st.ready.front().msg) {  // the next message is on disk only
      page_in(self);
      break;
    }
    size_t i = pick_consumer(st);
    if (i == st.consumers.size())
      break;
    auto& c = st.consumers[i];
    auto e = pop_ready(st);
    --c.credit;
    st.rr = (i + 1) % st.consumers.size();
    ++st.delivered;
    st.delivered_no_ack += c.spec.no_ack ? 1 : 0;
    st.redelivered += e.redelivered ? 1 : 0;
    if (!c.spec.no_ack) {
      add_unacked(st, e.id, unacked_entry{e.msg, c.conn, e.redelivered, e.returned, e.expires});
      note_delivered(st, e.id, *e.msg);
    } else {
      note_gone(st, e.id, *e.msg);
    }
    batches[i].items.push_back(
      delivery{counted(st, std::move(e.msg), e.returned, false), e.id, e.redelivered});
  }
  send_batches(self, batches);
}

// Hands ready messages to consumers, then applies drop-head, expires what is due at the head
// (a TTL of 0: what no consumer took), sets the expiry timer for the new head and sends what
// the turn produced.
void dispatch(queue_actor_t* self, uint64_t fresh_from = none_fresh) {
  dispatch_in_order(self, fresh_from);
  enforce_length(self);
  note_limit(self->state);
  turn_clock now;
  expire_head(self, now);
  arm_expiry(self);
  flush_store(self);
}

// Deliveries must follow the reply that confirms a consume, so dispatching after a state change
// made inside a request handler goes through the mailbox.
void schedule_dispatch(queue_actor_t* self) {
  if (!self->state.dispatch_scheduled) {
    self->state.dispatch_scheduled = true;
    self->send(self, tick_atom::value);
  }
}

// An unacked message is ready again (`u` was taken out of the unacked ones: take_unacked).
// `returned`: a client had it and gave it back (a reject or nack with requeue, its channel
// or connection gone); a quorum queue counts that, and past x-delivery-limit dead-letters
// the message (reason delivery_limit) or drops it instead.
void requeue(queue_state& st, uint64_t id, unacked_entry&& u, bool mark_redelivered,
             bool returned) {
  if (returned && st.cfg.options.quorum) {
    if (u.returned < std::numeric_limits<uint16_t>::max())
      ++u.returned;
    if (auto limit = st.cfg.options.delivery_limit; limit && u.returned > *limit) {
      dead_letter_one(st, *u.msg, death_reason::delivery_limit);
      note_gone(st, id, *u.msg);
      return;
    }
  }
  note_limit(st);
  auto bytes = u.msg->body().size();
  st.resident_bytes += bytes;
  st.ready_bytes += bytes;
  auto priority = priority_of(st, *u.msg);
  ready_entry e{id,       std::move(u.msg),           u.redelivered || mark_redelivered,
                priority, u.returned, static_cast<uint32_t>(bytes), u.expires};
  // Requeued messages go back to their original place (goes_before).
  st.ready.insert(std::lower_bound(st.ready.begin(), st.ready.end(), e, goes_before),
                  std::move(e));
}

// x-expires: the timer runs while the queue has no consumers; when it fires, the queue deletes
// itself if nothing used it for x-expires ms, or sets it again for the time that is left.
void arm_idle(queue_actor_t* self, int64_t delay) {
  auto& st = self->state;
  if (!st.cfg.options.expires || st.idle_armed || !st.consumers.empty())
    return;
  st.idle_armed = true;
  self->delayed_send(self, timer_delay(delay), unused_atom::value, st.idle_epoch);
}

void note_use(queue_actor_t* self) {
  auto& st = self->state;
  if (!st.cfg.options.expires)
    return;
  st.last_use = now_ms();
  arm_idle(self, *st.cfg.options.expires);
}

int64_t idle_left(const queue_state& st) {
  return *st.cfg.options.expires - (now_ms() - st.last_use);
}

// The vhost deletes the queue only after asking it again (unused_atom): a declare it passed on
// before it got this request counts as a use.
void idle_timeout(queue_actor_t* self) {
  auto& st = self->state;
  st.idle_armed = false;
  if (!st.consumers.empty() || !st.cfg.options.expires)
    return;  // armed again when the last one goes
  if (auto left = idle_left(st); left > 0)
    return arm_idle(self, left);
  self->send(st.cfg.vhost, unused_atom::value, st.cfg.name, caf::actor_cast<caf::actor>(self));
}

void relax_flow(queue_actor_t* self);

// A policy of the vhost changed what the queue does (the vhost sends every queue what it
// does now, changed or not). As RabbitMQ has it: a new TTL holds for messages that come from
// now on, a new length limit at once, a new expiry counts from now.
void apply_policy(queue_actor_t* self, const queue_options& o) {
  auto& st = self->state;
  flush_store(self);  // what was dead-lettered before goes where it was meant to
  auto& cur = st.cfg.options;
  bool expiry_changed = cur.expires != o.expires;
  cur.message_ttl = o.message_ttl;
  cur.expires = o.expires;
  cur.max_length = o.max_length;
  cur.max_length_bytes = o.max_length_bytes;
  cur.overflow = o.overflow;
  cur.dead_letter_exchange = o.dead_letter_exchange;
  cur.dead_letter_routing_key = o.dead_letter_routing_key;
  cur.delivery_limit = o.delivery_limit;
  if (expiry_changed) {
    ++st.idle_epoch;
    st.idle_armed = false;
    note_use(self);
  }
  enforce_length(self);
  note_limit(st);
  flush_store(self);
  relax_flow(self);  // messages dropped for the new limit may let blocked publishers go
}

void remove_consumer(queue_actor_t* self, size_t i) {
  auto& st = self->state;
  st.consumers.erase(st.consumers.begin() + static_cast<std::ptrdiff_t>(i));
  if (st.rr >= st.consumers.size())
    st.rr = 0;
  if (st.consumers.empty())
    note_use(self);
  if (st.consumers.empty() && st.had_consumer && st.cfg.auto_delete)
    self->send(st.cfg.vhost, autodel_atom::value, st.cfg.name, caf::actor_cast<caf::actor>(self));
}

// basic.get on a head that is in memory.
get_result serve_get(queue_actor_t* self, const caf::actor& conn, bool no_ack) {
  auto& st = self->state;
  get_result r;
  if (st.ready.empty()) {
    ++st.got_empty;
    flush_store(self);  // what the get's expiry of the head dead-lettered or removed
    return r;
  }
  auto e = pop_ready(st);
  ++st.delivered;
  ++(no_ack ? st.got_no_ack : st.got_ack);
  st.redelivered += e.redelivered ? 1 : 0;
  if (!no_ack) {
    watch(self, conn);
    add_unacked(st, e.id,
                unacked_entry{e.msg, st.keys.of(conn), e.redelivered, e.returned, e.expires});
    note_delivered(st, e.id, *e.msg);
  } else {
    note_gone(st, e.id, *e.msg);
  }
  turn_clock now;
  expire_head(self, now);  // the count leaves out what expired behind the message taken
  arm_expiry(self);
  flush_store(self);
  r.empty = false;
  r.d = delivery{counted(st, std::move(e.msg), e.returned, true), e.id, e.redelivered};
  r.message_count = static_cast<uint32_t>(st.ready.size());
  return r;
}

constexpr uint32_t page_in_size = 1024;  // messages per read from the store

// Fills in the bodies of a page read from the store (`rows`, in id order, from the id of the
// first paged-out message on) and drops a paged-out head the store does not have (damaged and
// skipped at start-up).
void fill_in(queue_state& st, std::vector<persistence::stored_message>& rows) {
  size_t r = 0;
  for (auto it = st.ready.begin(); it != st.ready.end() && r < rows.size(); ++it) {
    while (r < rows.size() && rows[r].id < it->id)
      ++r;  // unacked messages are in the store as well
    if (r == rows.size())
      break;
    if (rows[r].id != it->id)
      continue;
    if (!it->msg) {
      st.resident_bytes += rows[r].body.size();
      it->msg = from_stored(rows[r]);
      if (!it->expires && it->msg->has_expiration()) {  // recovered while paged out
        turn_clock now;
        it->expires = deadline_of(st, *it->msg, now);
      }
    }
    ++r;
  }
  while (!st.ready.empty() && !st.ready.front().msg &&
         (rows.empty() || st.ready.front().id < rows.front().id)) {
    spdlog::error("queue '{}': message {} is missing from its store", st.cfg.name,
                  st.ready.front().id);
    st.ready_bytes -= std::min<size_t>(st.ready_bytes, st.ready.front().bytes);
    st.ready.pop_front();
  }
}

// Reads the next page of paged-out bodies from the store (in id order), fills them in, then
// serves waiting gets and dispatches. One page at a time.
void page_in(queue_actor_t* self) {
  auto& st = self->state;
  if (st.paging_in || st.ready.empty() || st.ready.front().msg)
    return;
  st.paging_in = true;
  auto after = st.ready.front().id - 1;
  self->request(st.cfg.store, caf::infinite, load_atom::value, st.cfg.store_path, after,
                page_in_size)
    .then(
      [=](std::vector<persistence::stored_message>& rows) {
        auto& st = self->state;
        st.paging_in = false;
        fill_in(st, rows);
        turn_clock now;
        expire_head(self, now);
        auto gets = std::move(st.pending_gets);
        st.pending_gets.clear();
        for (auto& g : gets) {
          if (!st.ready.empty() && !st.ready.front().msg) {
            st.pending_gets.push_back(std::move(g));
            continue;
          }
          g.rp.deliver(serve_get(self, g.conn, g.no_ack));
        }
        dispatch(self);
        if (!st.pending_gets.empty())
          page_in(self);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.paging_in = false;
        spdlog::error("queue '{}': reading from its store failed: {}", st.cfg.name,
                      self->home_system().render(err));
      });
}

void report(queue_actor_t* self, const caf::actor& to, bool final) {
  auto& st = self->state;
  metrics::queue_stats s;
  s.id = self->id();
  s.vhost = st.cfg.vhost_name;
  s.name = st.cfg.name;
  s.ready = st.ready.size();
  s.unacked = st.unacked.size();
  s.ready_bytes = st.ready_bytes;
  s.unacked_bytes = st.unacked_bytes;
  s.mailbox = self->mailbox().size();
  s.consumers.reserve(st.consumers.size());
  bool single = st.cfg.options.single_active_consumer;
  for (auto& c : st.consumers)
    s.consumers.push_back(metrics::consumer_of(
      c.spec, !single ? "up" : &c == &st.consumers.front() ? "single_active" : "waiting"));
  s.published = st.published;
  s.delivered = st.delivered;
  s.delivered_no_ack = st.delivered_no_ack;
  s.got_ack = st.got_ack;
  s.got_no_ack = st.got_no_ack;
  s.got_empty = st.got_empty;
  s.acked = st.acked;
  s.redelivered = st.redelivered;
  std::copy(std::begin(st.dead_lettered), std::end(st.dead_lettered), s.dead_lettered);
  s.dead_letter_exchange = dead_lettering(st);
  s.quorum = st.cfg.options.quorum;
  s.final = final;
  metrics::send_stats(self, to, std::move(s));
}

// Server-sent basic.cancel for every consumer (RabbitMQ consumer_cancel_notify).
void cancel_consumers(queue_actor_t* self) {
  auto& st = self->state;
  for (auto& c : st.consumers)
    self->send(c.spec.conn, cancelled_atom::value, c.spec.consumer_id);
  st.consumers.clear();
}

// The queue is done with: its file goes (a deleted queue's disk is given back), and the
// collector gets its last numbers.
void close_out(queue_actor_t* self) {
  auto& st = self->state;
  if (!st.cfg.store_path.empty())
    self->send(st.cfg.store, destroy_atom::value, st.cfg.store_path);
  report(self, st.collector, true);
}

void finish(queue_actor_t* self) {
  close_out(self);
  self->quit();
}

// Publishers are paced by consumers. While the queue has consumers and more than
// `backlog_messages` ready messages (or `backlog_bytes` of bodies in memory), a publish batch
// blocks its publisher (mailbox_flow), until the backlog is down to half of that: the queue
// stays short, so memory stays bounded and latency low, and publishers run at the consumers'
// pace. Without consumers a backlog is what the user asked for: no pacing. If consumers take
// nothing for `stall_check` while publishers wait (their acks may sit behind a blocked publish
// on the same connection), the queue lets the publishers go until consumers take again.
constexpr size_t backlog_messages = 20000;
constexpr size_t backlog_bytes = size_t{16} << 20;
constexpr auto stall_check = std::chrono::milliseconds(250);

bool backlogged(const queue_state& st, size_t divisor) {
  if (st.consumers.empty() || st.stalled)
    return false;
  return st.ready.size() > backlog_messages / divisor ||
         st.resident_bytes > backlog_bytes / divisor;
}

void pace_publisher(queue_actor_t* self, const caf::actor& publisher) {
  auto& st = self->state;
  st.flow.on_publish(self, publisher, backlogged(st, 1));
  if (!st.flow.blocked.empty() && !st.stall_check_scheduled) {
    st.stall_check_scheduled = true;
    self->delayed_send(self, stall_check, tick_atom::value, st.delivered);
  }
}

void relax_flow(queue_actor_t* self) {
  self->state.flow.relax(self, backlogged(self->state, 2));
}

// A message read back from the store joins the ready list, with the deadline the store kept
// (on the wall clock: the time the broker was down counts). A message stored before deadlines
// were kept gets its TTL from now.
void add_recovered(queue_state& st, recovered_message&& r, turn_clock& now) {
  int64_t expires = 0;
  if (r.expires)
    expires = std::max<int64_t>(1, now() + (r.expires - wall_now_ms()));
  else if (r.msg)
    expires = deadline_of(st, *r.msg, now);
  else if (st.cfg.options.message_ttl)
    expires = deadline_after(now, *st.cfg.options.message_ttl);
  st.ready_bytes += r.bytes;
  auto priority = r.msg ? priority_of(st, *r.msg) : uint8_t{0};  // (priority queues: all in memory)
  // A quorum queue counts a message delivered before the restart as given back once.
  uint16_t returned = st.cfg.options.quorum && r.redelivered ? 1 : 0;
  st.ready.push_back(
    ready_entry{r.id, std::move(r.msg), r.redelivered, priority, returned, r.bytes, expires});
}

// Unacked messages leave for good (acked, or settled without requeue): `each` sees each one that
// is still unacked before it goes.
template <class F>
void settle_unacked(queue_actor_t* self, const std::vector<uint64_t>& ids, F&& each) {
  auto& st = self->state;
  for (auto id : ids) {
    auto it = st.unacked.find(id);
    if (it == st.unacked.end())
      continue;
    auto u = take_unacked(st, it);
    each(*u.msg);
    note_gone(st, id, *u.msg);
  }
  flush_store(self);
  relax_flow(self);
}

// Recovered messages come in arrival order; a priority queue sorts them into its bands.
void order_recovered(queue_state& st) {
  if (st.cfg.options.max_priority)
    std::stable_sort(st.ready.begin(), st.ready.end(), goes_before);
}

// A restarted durable queue reads its file back, a page at a time, before it serves anyone
// (awaited requests hold every other message in the mailbox meanwhile). Bodies beyond the
// memory limit stay on disk, as at start-up.
void reload(queue_actor_t* self, uint64_t after) {
  auto& st = self->state;
  constexpr uint32_t page = 10000;
  self->request(st.cfg.store, caf::infinite, load_atom::value, st.cfg.store_path, after, page)
    .await(
      [=](std::vector<persistence::stored_message>& rows) {
        auto& st = self->state;
        turn_clock now;
        for (auto& m : rows) {
          auto id = m.id;
          bool redelivered = m.delivered;
          auto bytes = static_cast<uint32_t>(m.body.size());
          auto expires = m.expires;
          auto msg = keep_resident(m, st.cfg.memory_limit, st.resident_bytes);
          add_recovered(st, recovered_message{id, std::move(msg), redelivered, bytes, expires},
                        now);
          st.next_id = std::max(st.next_id, id + 1);
        }
        if (rows.size() == page)
          return reload(self, rows.back().id);
        order_recovered(st);
        spdlog::info("{}: reloaded {} message(s) from its store", queue_desc(st),
                     st.ready.size());
        report(self, st.collector, false);
        arm_expiry(self);
      },
      [=](caf::error& err) {
        spdlog::error("{}: reading its store back failed: {}", queue_desc(self->state),
                      self->home_system().render(err));
      });
}

// A client left (a connection watched as a consumer's or an unacked message's): its consumers
// go and what it had not acknowledged is ready again.
void on_down(queue_actor_t* self, caf::down_msg& dm) {
  auto& st = self->state;
  st.monitored.erase(dm.source);
  auto conn_id = st.keys.of(dm.source);
  for (size_t i = st.consumers.size(); i-- > 0;)
    if (st.consumers[i].conn == conn_id)
      remove_consumer(self, i);
  for (auto it = st.unacked.begin(); it != st.unacked.end();) {
    if (it->second.conn == conn_id) {
      auto id = it->first;
      auto next = std::next(it);
      requeue(st, id, take_unacked(st, it), true, true);
      it = next;
    } else {
      ++it;
    }
  }
  dispatch(self);
  relax_flow(self);
}

// A publish batch from `sender` (a connection, an exchange, or a queue that yields).
void take_publish(queue_actor_t* self, const caf::actor& sender, publish_batch& b) {
  auto& st = self->state;
  if (b.credited)
    st.grants.took(self, sender, publish_credit::of(b));
  confirm_report report;
  report.channel = b.channel;
  st.published += b.items.size();
  std::vector<persistence::stored_message> to_store;
  auto& opts = st.cfg.options;
  bool refusing = opts.limited() && opts.overflow != overflow_mode::drop_head;
  bool quorum = quorum_refuses(st), refused = false;
  auto fresh_from = st.next_id;
  turn_clock now;
  for (auto& item : b.items) {
    if (item.msg->dead_lettered() && dead_letter_cycle(*item.msg, st.cfg.name))
      continue;  // came round a cycle of dead-lettering without a rejection: dropped
    auto bytes = item.msg->body().size();
    if (quorum) {
      note_limit(st);
      refused = st.over_limit;
    } else {
      refused = refusing && over_length(st, 1, bytes);
    }
    if (refused) {  // reject-publish(-dlx): a nack
      if (opts.overflow == overflow_mode::reject_publish_dlx)
        dead_letter_one(st, *item.msg, death_reason::maxlen);
      if (item.weight)
        report.returns.push_back(weight_return{item.seq, item.weight, true, true});
      continue;
    }
    auto id = st.next_id++;
    int64_t expires = opts.message_ttl || item.msg->has_expiration()
                        ? deadline_of(st, *item.msg, now)
                        : 0;
    st.ready_bytes += bytes;
    weight_return ret{item.seq, item.weight, true, false};
    if (persistent(st, *item.msg)) {
      auto& m = *item.msg;
      to_store.push_back(persistence::stored_message{
        id, std::string{m.exchange()}, std::string{m.routing_key()},
        std::string{m.properties()}, std::string{m.body()}, b.redelivered,
        expires ? wall_now_ms() + (expires - now()) : 0});
      if (item.weight && b.publisher)  // confirmed once on disk
        st.unconfirmed.wait(id, b.publisher, b.channel, ret);
    } else if (item.weight) {
      report.returns.push_back(ret);
    }
    bool page_out = persistent(st, *item.msg) && st.cfg.memory_limit &&
                    st.resident_bytes + item.msg->body().size() > st.cfg.memory_limit;
    auto size = static_cast<uint32_t>(bytes);
    if (page_out) {
      st.ready.push_back(ready_entry{id, nullptr, b.redelivered, 0, 0, size, expires});
    } else {
      st.resident_bytes += bytes;
      auto priority = priority_of(st, *item.msg);
      enqueue(st, ready_entry{id, std::move(item.msg), b.redelivered, priority, 0, size,
                              expires});
    }
    if (quorum)
      note_limit(st);
  }
  if (!to_store.empty())
    self->send(st.cfg.store, append_atom::value, st.cfg.store_path, std::move(to_store));
  if (!report.returns.empty() && b.publisher)
    self->send(b.publisher, confirm_atom::value, std::move(report));
  pace_publisher(self, b.publisher);
  dispatch(self, fresh_from);
  relax_flow(self);
}

// The next messages of a queue that yields, for its move (handover.hpp): from the front of
// its ready list, in order, reading paged-out bodies back a page at a time as it gets to them.
handover::fill next_to_move(queue_actor_t* self, handover::move<queue_actor_t>& mv) {
  auto& st = self->state;
  while (!st.ready.empty()) {
    auto& e = st.ready.front();
    if (!e.msg && !st.cfg.store_path.empty()) {
      auto more = mv.shared_from_this();
      self->request(st.cfg.store, caf::infinite, load_atom::value, st.cfg.store_path, e.id - 1,
                    page_in_size)
        .then(
          [=](std::vector<persistence::stored_message>& rows) {
            fill_in(self->state, rows);
            more->go();
          },
          [=](caf::error& err) {
            auto& st = self->state;
            if (more->over())  // (abandoned: the queue pages its ready list in itself)
              return;
            size_t lost = 0;
            while (!st.ready.empty() && !st.ready.front().msg) {
              st.ready.pop_front();
              ++lost;
            }
            spdlog::error("{}: reading from its store failed: {}; {} message(s) that only the "
                          "store held are not moved",
                          queue_desc(st), self->home_system().render(err), lost);
            more->go();
          });
      return handover::fill::loading;
    }
    auto msg = std::move(e.msg);
    bool redelivered = e.redelivered;
    auto id = e.id;
    if (msg)
      st.resident_bytes -= std::min(st.resident_bytes, msg->body().size());
    st.ready_bytes -= std::min<size_t>(st.ready_bytes, e.bytes);
    st.ready.pop_front();
    if (msg && !mv.add(std::move(msg), redelivered, id))
      return handover::fill::paused;
  }
  return handover::fill::done;
}

// The queue it was moving its messages to went away mid-move (handover.hpp): it goes on as a
// queue, with what was not confirmed back in its place and the publishes that waited taken in
// the order they came, and tells its vhost, which settles the name again (resume_atom).
void resume(queue_actor_t* self, std::vector<handover::in_flight>& back,
            handover::held_publishes& held) {
  auto& st = self->state;
  install_defaults(self, "queue");
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  // Timers that fired during the move were dropped: armed again below, as needed.
  st.expiry_armed = 0;
  st.idle_armed = false;
  ++st.idle_epoch;
  st.dispatch_scheduled = false;
  st.stall_check_scheduled = false;
  st.reclaim_scheduled = false;
  turn_clock now;
  auto& opts = st.cfg.options;
  for (auto& e : back) {  // (ids from before the rest of the ready list: they go first)
    auto bytes = e.msg->body().size();
    st.resident_bytes += bytes;
    st.ready_bytes += bytes;
    int64_t expires = opts.message_ttl || e.msg->has_expiration()
                        ? deadline_of(st, *e.msg, now)
                        : 0;
    auto priority = priority_of(st, *e.msg);
    enqueue(st, ready_entry{e.id, std::move(e.msg), e.redelivered, priority, 0,
                            static_cast<uint32_t>(bytes), expires});
  }
  for (auto& [sender, b] : held)
    take_publish(self, sender, b);
  report(self, st.collector, false);
  self->send(st.cfg.vhost, resume_atom::value, self->address());
  note_use(self);
  arm_expiry(self);
  flush_store(self);
}

// Hands every ready message to `winner`, in order (handover.hpp), then forwards what follows.
void yield_to(queue_actor_t* self, const caf::actor& winner, const std::string& node) {
  auto& st = self->state;
  for (auto& g : st.pending_gets)
    g.rp.deliver(get_result{});
  st.pending_gets.clear();
  // Publishers waiting for this queue's store: it cannot tell them the messages are safe.
  st.unconfirmed.release(self, std::numeric_limits<uint64_t>::max(), false, {});
  // Its numbers go now (the queue that stays counts what it moves), its file once moved.
  report(self, st.collector, true);
  handover::steps<queue_actor_t> steps;
  steps.source = next_to_move;
  steps.settled = [](queue_actor_t* self, std::vector<handover::in_flight>& gone) {
    auto& st = self->state;
    for (auto& e : gone)
      note_gone(st, e.id, *e.msg);
    flush_store(self);
  };
  steps.end = [](queue_actor_t* self) {
    auto& st = self->state;
    if (!st.cfg.store_path.empty())
      self->send(st.cfg.store, destroy_atom::value, st.cfg.store_path);
  };
  steps.abandon = resume;
  handover::start(self, winner, st.cfg.vhost, queue_desc(st), node, std::move(steps));
}

caf::behavior queue_behavior(queue_actor_t* self, queue_config cfg) {
  install_defaults(self, "queue");
  self->state.cfg = std::move(cfg);
  {
    auto& st = self->state;
    turn_clock now;
    for (auto& r : st.cfg.recovered) {
      if (r.msg)
        st.resident_bytes += r.msg->body().size();
      add_recovered(st, std::move(r), now);
    }
    st.cfg.recovered.clear();
    st.cfg.recovered.shrink_to_fit();
    order_recovered(st);
    st.next_id = st.cfg.next_id;
    st.keys.local = self->node();
    st.collector = metrics::find_collector(self->home_system());
    report(self, st.collector, false);
    if (st.cfg.reload && !st.cfg.store_path.empty())
      reload(self, 0);
    note_use(self);
    arm_expiry(self);
  }
  on_crash(self, [self](const std::string& what) {
    // Confirms waiting for the store will not come from this incarnation: nack them. (What
    // is on disk comes back when the vhost restarts the queue.)
    spdlog::error("{} crashed: {}", queue_desc(self->state), what);
    self->state.unconfirmed.release(self, std::numeric_limits<uint64_t>::max(), false, {});
  });
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  return {
    [=](publish_atom, publish_batch& b) {
      take_publish(self, caf::actor_cast<caf::actor>(self->current_sender()), b);
    },
    [=](stored_atom, uint64_t max_id, bool committed, std::vector<uint64_t>& failed) {
      self->state.unconfirmed.release(self, max_id, committed, failed);
    },
    [=](reclaim_atom) {
      auto& st = self->state;
      st.reclaim_scheduled = false;
      if (st.ready.empty() && st.unacked.empty() && st.removed_since_reclaim) {
        st.removed_since_reclaim = false;
        self->send(st.cfg.store, reclaim_atom::value, st.cfg.store_path);
      }
    },
    [](uint32_t) {
      // The store's answer to a purge sent without waiting.
    },
    [](bool) {
      // The store's answer to a destroy sent without waiting.
    },
    [=](tick_atom) {
      dispatch(self);
      relax_flow(self);
    },
    [=](expire_atom, int64_t at) {  // the head's deadline
      if (at != self->state.expiry_armed)
        return;  // replaced by an earlier one
      self->state.expiry_armed = 0;
      turn_clock now;
      expire_head(self, now);
      dispatch(self);
      relax_flow(self);
    },
    [=](unused_atom, uint64_t epoch) {
      if (epoch == self->state.idle_epoch)
        idle_timeout(self);
    },
    [=](policy_atom, queue_options& o) { apply_policy(self, o); },
    [=](unused_atom) -> bool {  // the vhost asks before it deletes the queue for x-expires
      auto& st = self->state;
      bool unused = st.cfg.options.expires && st.consumers.empty() && idle_left(st) <= 0;
      if (unused)
        spdlog::info("{}: unused for {} ms (x-expires), deleting it", queue_desc(st),
                     *st.cfg.options.expires);
      return unused;
    },
    [=](tick_atom, uint64_t delivered_then) {
      // Publishers have been waiting for stall_check: if consumers took nothing meanwhile,
      // waiting does not help them; let the publishers go.
      auto& st = self->state;
      st.stall_check_scheduled = false;
      if (st.flow.blocked.empty())
        return;
      if (st.delivered == delivered_then)
        st.stalled = true;
      relax_flow(self);
      if (!st.flow.blocked.empty()) {
        st.stall_check_scheduled = true;
        self->delayed_send(self, stall_check, tick_atom::value, st.delivered);
      }
    },
    [=](report_atom) {
      report(self, caf::actor_cast<caf::actor>(self->current_sender()), false);
    },
    [=](consume_atom, consumer_spec& spec) -> op_result {
      auto& st = self->state;
      argument_error bad;
      if (refused_consumer_argument(
            spec.arguments, st.cfg.options.quorum ? queue_kind::quorum : queue_kind::classic, bad))
        return op_result{amqp::precondition_failed,
                         "PRECONDITION_FAILED - " +
                           argument_error_text(bad, queue_desc(st),
                                               st.cfg.options.quorum ? "rabbit_quorum_queue"
                                                                     : "rabbit_classic_queue"),
                         0};
      if (st.cfg.options.quorum && spec.global_qos)
        return op_result{amqp::not_implemented,
                         "NOT_IMPLEMENTED - " + queue_desc(st) + " does not support global qos", 0};
      bool exclusive_taken = std::any_of(st.consumers.begin(), st.consumers.end(),
                                         [](const consumer& c) { return c.spec.exclusive; });
      // RabbitMQ: no exclusive consumer on a single-active-consumer queue.
      if (exclusive_taken ||
          (spec.exclusive && (!st.consumers.empty() || st.cfg.options.single_active_consumer)))
        return op_result{amqp::access_refused,
                         "ACCESS_REFUSED - " + queue_desc(st) + " in exclusive use", 0};
      watch(self, spec.conn);
      auto credit = spec.credit;
      auto key = st.keys.of(spec.conn);
      st.consumers.push_back(consumer{std::move(spec), credit, key});
      note_use(self);  // (with a consumer, the x-expires timer waits for the last to go)
      st.had_consumer = true;
      schedule_dispatch(self);
      return op_result{};
    },
    [=](cancel_atom, caf::actor_id conn_id, uint64_t consumer_id) -> op_result {
      auto& st = self->state;
      auto conn = st.keys.of_sender(self, conn_id);
      for (size_t i = 0; i < st.consumers.size(); ++i) {
        if (st.consumers[i].conn == conn && st.consumers[i].spec.consumer_id == consumer_id) {
          remove_consumer(self, i);
          if (i == 0 && st.cfg.options.single_active_consumer)
            schedule_dispatch(self);  // the next one registered is active now
          break;
        }
      }
      relax_flow(self);
      return op_result{};
    },
    // A channel or a STOMP connection lets go: its consumers here leave and what it had not
    // acknowledged is ready again, in one step, as when its connection goes (on_down). Apart, a
    // requeue that came first could be dispatched to one of its own consumers on the way out
    // (an auto-ack one would lose it), and a cancel that came first would let the next single
    // active consumer start before the requeued messages were back.
    [=](release_atom, caf::actor_id conn_id, std::vector<uint64_t>& consumer_ids,
        std::vector<uint64_t>& ids) {
      auto& st = self->state;
      auto conn = st.keys.of_sender(self, conn_id);
      for (size_t i = st.consumers.size(); i-- > 0;) {
        const auto& c = st.consumers[i];
        if (c.conn == conn && std::find(consumer_ids.begin(), consumer_ids.end(),
                                        c.spec.consumer_id) != consumer_ids.end())
          remove_consumer(self, i);
      }
      for (auto id : ids) {
        auto it = st.unacked.find(id);
        if (it != st.unacked.end())
          requeue(st, id, take_unacked(st, it), true, true);
      }
      dispatch(self);
      relax_flow(self);
    },
    [=](credit_atom, caf::actor_id conn_id, uint64_t consumer_id, uint32_t n) {
      auto& st = self->state;
      auto conn = st.keys.of_sender(self, conn_id);
      for (auto& c : st.consumers) {
        if (c.conn == conn && c.spec.consumer_id == consumer_id) {
          c.credit += n;
          dispatch(self);
          break;
        }
      }
      relax_flow(self);
    },
    [=](ack_atom, std::vector<uint64_t>& ids) {
      auto& st = self->state;
      settle_unacked(self, ids, [&](const message&) { ++st.acked; });
    },
    [=](reject_atom, std::vector<uint64_t>& ids) {
      // nack / reject without requeue: gone, or to the dead-letter exchange.
      auto& st = self->state;
      settle_unacked(self, ids, [&](const message& m) {
        dead_letter_one(st, m, death_reason::rejected);
      });
    },
    [=](requeue_atom, std::vector<uint64_t>& ids, bool mark_redelivered) {
      auto& st = self->state;
      for (auto id : ids) {
        auto it = st.unacked.find(id);
        if (it == st.unacked.end())
          continue;
        requeue(st, id, take_unacked(st, it), mark_redelivered, mark_redelivered);
      }
      dispatch(self);
    },
    [=](get_atom, caf::actor& conn, bool no_ack) -> caf::result<get_result> {
      auto& st = self->state;
      note_use(self);
      turn_clock now;
      expire_head(self, now);
      if (!st.ready.empty() && !st.ready.front().msg) {
        auto rp = self->make_response_promise<get_result>();
        st.pending_gets.push_back(pending_get{rp, conn, no_ack});
        page_in(self);
        return rp;
      }
      return serve_get(self, conn, no_ack);
    },
    [=](purge_atom) -> op_result {
      auto& st = self->state;
      auto n = static_cast<uint32_t>(st.ready.size());
      std::vector<uint64_t> ids;
      for (auto& e : st.ready)
        if (!e.msg || persistent(st, *e.msg))  // paged-out messages are persistent ones
          ids.push_back(e.id);
      st.ready.clear();
      st.resident_bytes = 0;
      st.ready_bytes = 0;
      if (!ids.empty())  // removes them and gives the disk back at once
        self->send(st.cfg.store, purge_atom::value, st.cfg.store_path, std::move(ids));
      return op_result{0, {}, n};
    },
    [=](stats_atom) -> queue_declared {  // a declare: counts as a use (x-expires)
      auto& st = self->state;
      note_use(self);
      turn_clock now;
      expire_head(self, now);
      flush_store(self);
      return queue_declared{0, {}, st.cfg.name, static_cast<uint32_t>(st.ready.size()),
                            static_cast<uint32_t>(st.consumers.size()),
                            caf::actor_cast<caf::actor>(self)};
    },
    [=](check_atom, bool if_unused, bool if_empty) -> op_result {
      auto& st = self->state;
      if (if_unused && !st.consumers.empty())
        return op_result{amqp::precondition_failed,
                         "PRECONDITION_FAILED - " + queue_desc(st) + " in use", 0};
      if (if_empty && !st.ready.empty())
        return op_result{amqp::precondition_failed,
                         "PRECONDITION_FAILED - " + queue_desc(st) + " not empty", 0};
      return op_result{0, {}, static_cast<uint32_t>(st.ready.size())};
    },
    [=](crash_atom) { inject_fault(queue_desc(self->state)); },
    [=](stall_atom, uint32_t ms) { inject_stall(self, "queue", queue_desc(self->state), ms); },
    [=](stop_atom) {
      cancel_consumers(self);
      finish(self);
    },
    [=](yield_atom, caf::actor& winner, std::string& node) {
      auto& st = self->state;
      cancel_consumers(self);
      // What consumers had not acknowledged goes too, marked redelivered.
      while (!st.unacked.empty()) {
        auto id = st.unacked.begin()->first;
        requeue(st, id, take_unacked(st, st.unacked.begin()), true, false);
      }
      // Publishers it held back go on (the move's credit paces them now), rather than wait
      // for its end or for consumers that do not come back.
      st.flow.release(self);
      yield_to(self, winner, node);
    },
  };
}

}  // namespace

message_ptr from_stored(persistence::stored_message& m) {
  message::fields f{m.exchange, m.routing_key, m.properties};
  amqp::property_scan scan;
  if (amqp::scan_properties(m.properties, scan)) {
    f.delivery_mode = scan.delivery_mode;
    f.has_headers = scan.has_headers;
    f.has_expiration = scan.expiration.has_value();
  }
  return message::make(f, std::move(m.body));
}

message_ptr keep_resident(persistence::stored_message& m, size_t memory_limit, size_t& resident) {
  if (memory_limit != 0 && resident + m.body.size() > memory_limit)
    return nullptr;
  resident += m.body.size();
  return from_stored(m);
}

caf::actor spawn_queue(caf::actor_system& sys, queue_config cfg) {
  return sys.spawn(queue_behavior, std::move(cfg));
}

}  // namespace warren
