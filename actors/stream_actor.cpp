// The stream actor (one per stream queue).
//
// Jobs: append what is published to an ordered log and give each message its offset (0, 1,
// 2, ... never reused), written into the message as the header x-stream-offset; serve each
// consumer from the offset it asked for (x-stream-offset: first, last, next, a number or a
// timestamp) as far as its credit goes, without removing anything: acks only give credit
// back. Retention drops the oldest segments once the stream holds more than
// x-max-length-bytes or they are older than x-max-age, the active segment always stays.
// Talks to: connections (batches in, deliveries and confirms out, credit and acks in), the
// vhost (stop in), its message store (the log on disk).
// The log on disk is a queue file (queue_store.hpp): the message id is the offset + 1, and the
// column a queue keeps its deadline in holds the time the stream took the message. Every
// message goes to disk, persistent or not, and a confirm waits for its commit, as in
// RabbitMQ. Bodies of the newest `memory_limit` bytes stay in memory too; a consumer reading
// older messages reads them from the store a page at a time, into a page of its own.
// Invariants: offsets in the log are consecutive from `first`; a consumer is never sent more
// than its credit; deliveries for a consumer are sent only after its consume was answered.
#include "actors/stream_actor.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "actors/handover.hpp"
#include "actors/hardening.hpp"
#include "actors/conn_keys.hpp"
#include "actors/mailbox_flow.hpp"
#include "actors/publish_credit.hpp"
#include "actors/store_confirms.hpp"
#include "metrics/probe.hpp"
#include "persistence/actors/message_store_actor.hpp"
#include "protocol/amqp091/constants.hpp"
#include "protocol/amqp091/properties.hpp"

namespace warren {
namespace {

struct log_entry {
  message_ptr msg;  // null: on disk only (or lost from it: `missing`)
  uint32_t bytes = 0;
  bool missing = false;  // the store did not give it back at start-up (damaged, quarantined)
  int64_t ts = 0;        // ms since the Unix epoch when the stream took it
};

struct segment {
  uint64_t first = 0;  // its first offset
  uint64_t bytes = 0;  // body bytes
  int64_t last_ts = 0;
};

struct stream_consumer {
  consumer_spec spec;
  uint64_t conn = 0;  // conn_keys
  uint32_t credit = 0;
  uint64_t next = 0;         // the offset it reads next
  bool reading = false;      // a page from the store is on its way
  std::deque<std::pair<uint64_t, message_ptr>> page;  // read from the store, offsets from `next`
};

struct stream_state {
  queue_config cfg;
  stream_options opts;
  std::deque<log_entry> log;
  uint64_t first = 0;       // the offset of log.front()
  uint64_t last_chunk = 0;  // the first offset of the latest publish batch ("last")
  std::deque<segment> segments;
  uint64_t total_bytes = 0;
  size_t resident_bytes = 0;  // footprint() of the messages in memory
  uint64_t resident_from = 0;  // bodies before this offset are on disk only
  std::vector<stream_consumer> consumers;
  std::unordered_set<caf::actor_addr> monitored;
  conn_keys keys;
  mailbox_flow flow;
  credit_grants grants;
  store_confirms unconfirmed;  // waiting for the store's commit
  // Appended batches the store has not committed yet, and their sums: publishers wait while
  // too much is on its way to disk (store_backlogged).
  struct append_batch {
    uint64_t last_id, messages, bytes;
  };
  std::deque<append_batch> unstored;
  uint64_t unstored_messages = 0, unstored_bytes = 0;
  bool dispatch_scheduled = false;
  bool retention_armed = false;
  int64_t retention_timer = 0;  // the x-max-age check that counts (one dropped in a move does not)
  caf::actor collector;
  uint64_t published = 0, delivered = 0, acked = 0;
  uint64_t move_next = 0;  // while it yields: the offset its move sends next
  static inline const char* name = "stream";

  uint64_t end() const { return first + log.size(); }  // the offset the next message gets
  bool stored() const { return !cfg.store_path.empty(); }
};

using stream_actor_t = caf::stateful_actor<stream_state>;

constexpr uint32_t page_size = 512;  // messages per read from the store
// A stream keeps at most this much of its newest bodies in memory when no limit is set.
constexpr size_t default_resident = size_t{64} << 20;
constexpr auto retention_check = std::chrono::seconds(1);
// Publishers are paced by the disk: while more than this is appended and not committed yet
// (it waits in the store actor's mailbox, copies and all), a publish batch blocks its
// publisher (mailbox_flow) until the store is down to half of it.
constexpr uint64_t store_backlog_messages = 50000;
constexpr uint64_t store_backlog_bytes = uint64_t{32} << 20;

bool store_backlogged(const stream_state& st, uint64_t divisor) {
  return st.unstored_messages > store_backlog_messages / divisor ||
         st.unstored_bytes > store_backlog_bytes / divisor;
}

// The store committed everything appended up to max_id.
void note_stored(stream_state& st, uint64_t max_id) {
  while (!st.unstored.empty() && st.unstored.front().last_id <= max_id) {
    auto& b = st.unstored.front();
    st.unstored_messages -= std::min(st.unstored_messages, b.messages);
    st.unstored_bytes -= std::min(st.unstored_bytes, b.bytes);
    st.unstored.pop_front();
  }
}

std::string stream_desc(const stream_state& st) {
  return "queue '" + st.cfg.name + "' in vhost '" + st.cfg.vhost_name + "'";
}

int64_t wall_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

size_t resident_limit(const stream_state& st) {
  if (!st.stored())
    return 0;  // nowhere to read a body back from: all stay
  return st.cfg.memory_limit ? st.cfg.memory_limit : default_resident;
}

// The message as the stream keeps it: its headers carry x-stream-offset.
message_ptr with_offset(const message& m, uint64_t offset) {
  amqp::basic_properties p;
  if (!amqp::decode_properties(m.properties(), p))
    p = {};
  auto& headers = p.headers ? *p.headers : p.headers.emplace();
  std::erase_if(headers, [](auto& kv) { return kv.first == "x-stream-offset"; });
  headers.emplace_back("x-stream-offset", amqp::field_value{static_cast<int64_t>(offset)});
  std::string raw;
  amqp::encode_properties(p, raw);
  message::fields f{m.exchange(), m.routing_key(), raw};
  f.delivery_mode = m.delivery_mode();
  f.has_headers = true;
  f.has_expiration = m.has_expiration();
  return message::make(f, m.body());
}

// What a message in memory costs, counted against the resident limit: with small bodies the
// rest of the message is most of it.
size_t footprint(const message& m) {
  return sizeof(message) + sizeof(log_entry) + m.exchange().size() + m.routing_key().size() +
         m.properties().size() + m.body().size();
}

// Messages beyond the resident limit leave memory, oldest first (they stay in the store).
void evict(stream_state& st) {
  auto limit = resident_limit(st);
  if (!limit)
    return;
  if (st.resident_from < st.first)
    st.resident_from = st.first;
  while (st.resident_bytes > limit && st.resident_from < st.end()) {
    auto& e = st.log[st.resident_from - st.first];
    if (e.msg) {
      st.resident_bytes -= std::min(st.resident_bytes, footprint(*e.msg));
      e.msg.reset();
    }
    ++st.resident_from;
  }
}

void append_entry(stream_state& st, log_entry&& e) {
  auto offset = st.end();
  if (st.segments.empty() ||
      (st.segments.back().bytes > 0 &&
       st.segments.back().bytes + e.bytes > static_cast<uint64_t>(st.opts.max_segment_bytes)))
    st.segments.push_back(segment{offset, 0, e.ts});
  auto& seg = st.segments.back();
  seg.bytes += e.bytes;
  seg.last_ts = std::max(seg.last_ts, e.ts);
  st.total_bytes += e.bytes;
  if (e.msg)
    st.resident_bytes += footprint(*e.msg);
  st.log.push_back(std::move(e));
}

// The log's front goes, up to offset `to`: its segments and byte counts with it. (Bodies before
// resident_from that are in memory were read back for a move and never counted as resident.)
void drop_front(stream_state& st, uint64_t to) {
  while (st.first < to && !st.log.empty()) {
    while (st.segments.size() > 1 && st.segments[1].first <= st.first)
      st.segments.pop_front();
    auto& e = st.log.front();
    if (e.msg && st.first >= st.resident_from)
      st.resident_bytes -= std::min(st.resident_bytes, footprint(*e.msg));
    st.total_bytes -= std::min(st.total_bytes, uint64_t{e.bytes});
    if (!st.segments.empty()) {
      auto& seg = st.segments.front();
      seg.bytes -= std::min(seg.bytes, uint64_t{e.bytes});
      seg.first = st.first + 1;
    }
    st.log.pop_front();
    ++st.first;
  }
  while (st.segments.size() > 1 && st.segments[1].first <= st.first)
    st.segments.pop_front();
  st.resident_from = std::max(st.resident_from, st.first);
}

// Retention: whole segments go from the front while the stream is over x-max-length-bytes or
// the front segment's newest message is older than x-max-age; the active segment stays.
void apply_retention(stream_actor_t* self) {
  auto& st = self->state;
  auto now = wall_now_ms();
  uint64_t dropped = 0;
  while (st.segments.size() > 1) {
    auto& front = st.segments.front();
    bool over_size = st.opts.max_length_bytes &&
                     st.total_bytes > static_cast<uint64_t>(*st.opts.max_length_bytes);
    bool too_old = st.opts.max_age_ms && front.last_ts < now - *st.opts.max_age_ms;
    if (!over_size && !too_old)
      break;
    auto from = st.first;
    drop_front(st, st.segments[1].first);
    dropped += st.first - from;
  }
  if (!dropped)
    return;
  spdlog::debug("{}: retention dropped {} message(s), first offset now {}", stream_desc(st),
                dropped, st.first);
  if (st.stored()) {  // ids up to the new first offset (offset + 1 = id)
    self->send(st.cfg.store, remove_atom::value, st.cfg.store_path, st.first);
    self->send(st.cfg.store, reclaim_atom::value, st.cfg.store_path);
  }
}

// With x-max-age, segments age out without publishes too: looked at once a second.
void arm_retention(stream_actor_t* self) {
  auto& st = self->state;
  if (!st.opts.max_age_ms || st.retention_armed || st.segments.size() < 2)
    return;
  st.retention_armed = true;
  self->delayed_send(self, retention_check, expire_atom::value, st.retention_timer);
}

stream_consumer* find_consumer(stream_state& st, uint64_t conn, uint64_t id) {
  for (auto& c : st.consumers)
    if (c.conn == conn && c.spec.consumer_id == id)
      return &c;
  return nullptr;
}

void read_page(stream_actor_t* self, stream_consumer& c);

// Hands consumer `c` what it may take: from its page, else from the log, reading a page from
// the store where the body is on disk only.
void serve(stream_actor_t* self, stream_consumer& c, delivery_batch& out) {
  auto& st = self->state;
  while (c.credit > 0) {
    if (c.next < st.first) {  // retention went past it
      c.next = st.first;
      c.page.clear();
    }
    while (!c.page.empty() && c.page.front().first < c.next)
      c.page.pop_front();
    if (c.next >= st.end())
      break;
    message_ptr msg;
    if (!c.page.empty() && c.page.front().first == c.next) {
      msg = std::move(c.page.front().second);
      c.page.pop_front();
    } else {
      auto& e = st.log[c.next - st.first];
      if (e.missing) {
        ++c.next;
        continue;
      }
      if (!e.msg) {
        read_page(self, c);
        break;
      }
      msg = e.msg;
    }
    out.items.push_back(delivery{std::move(msg), c.next + 1, false});
    ++c.next;
    --c.credit;
    ++st.delivered;
  }
}

void dispatch(stream_actor_t* self) {
  auto& st = self->state;
  st.dispatch_scheduled = false;
  for (auto& c : st.consumers) {
    delivery_batch b;
    serve(self, c, b);
    if (b.items.empty())
      continue;
    b.queue = caf::actor_cast<caf::actor>(self);
    b.consumer_id = c.spec.consumer_id;
    self->send(c.spec.conn, deliver_atom::value, std::move(b));
  }
}

void schedule_dispatch(stream_actor_t* self) {
  if (!self->state.dispatch_scheduled) {
    self->state.dispatch_scheduled = true;
    self->send(self, tick_atom::value);
  }
}

void read_page(stream_actor_t* self, stream_consumer& c) {
  auto& st = self->state;
  if (c.reading)
    return;
  c.reading = true;
  auto conn = c.conn;
  auto id = c.spec.consumer_id;
  auto from = c.next;
  self->request(st.cfg.store, caf::infinite, load_atom::value, st.cfg.store_path, from, page_size)
    .then(
      [=](std::vector<persistence::stored_message>& rows) {
        auto& st = self->state;
        auto c = find_consumer(st, conn, id);
        if (!c)
          return;
        c->reading = false;
        if (c->next != from)  // moved on meanwhile (retention)
          return schedule_dispatch(self);
        c->page.clear();
        for (auto& r : rows)
          c->page.emplace_back(r.id - 1, from_stored(r));
        if (rows.empty() || rows.front().id - 1 > c->next) {
          // Not in the store (damaged and set aside at start-up): on to what is there.
          auto to = rows.empty() ? st.end() : rows.front().id - 1;
          spdlog::error("{}: offsets {} to {} are missing from its store", stream_desc(st),
                        c->next, to);
          c->next = std::max(c->next, to);
        }
        schedule_dispatch(self);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        if (auto c = find_consumer(st, conn, id))
          c->reading = false;
        spdlog::error("{}: reading from its store failed: {}", stream_desc(st),
                      self->home_system().render(err));
      });
}

void report(stream_actor_t* self, const caf::actor& to, bool final) {
  auto& st = self->state;
  metrics::queue_stats s;
  s.id = self->id();
  s.vhost = st.cfg.vhost_name;
  s.name = st.cfg.name;
  s.ready = st.log.size();  // as RabbitMQ shows a stream: every message ready, none unacked
  s.ready_bytes = st.total_bytes;
  s.mailbox = self->mailbox().size();
  for (auto& c : st.consumers)
    s.consumers.push_back(metrics::consumer_of(c.spec, "up"));
  s.published = st.published;
  s.delivered = st.delivered;
  s.acked = st.acked;
  s.final = final;
  metrics::send_stats(self, to, std::move(s));
}

// The next messages of a stream that yields, for its move (handover.hpp): from the start of its
// log, in order, reading what only the store has back a page at a time as it gets to it. They
// stay in the log until the stream that stays has confirmed them (drop_front).
handover::fill next_to_move(stream_actor_t* self, handover::move<stream_actor_t>& mv) {
  auto& st = self->state;
  while (st.move_next < st.end()) {
    auto& e = st.log[st.move_next - st.first];
    if (!e.msg && !e.missing && st.stored()) {
      auto more = mv.shared_from_this();
      auto from = st.move_next;
      self->request(st.cfg.store, caf::infinite, load_atom::value, st.cfg.store_path, from,
                    page_size)
        .then(
          [=](std::vector<persistence::stored_message>& rows) {
            if (more->over())  // (cut short: the stream is itself again, bodies on disk stay)
              return;
            auto& st = self->state;
            for (auto& r : rows)
              if (r.id > st.first && r.id - 1 - st.first < st.log.size())
                if (auto& e = st.log[r.id - 1 - st.first]; !e.msg)
                  e.msg = from_stored(r);
            // Offsets the store does not have (damaged and set aside at start-up).
            uint64_t to = rows.empty() ? st.end() : rows.front().id - 1;
            auto at = std::max(from, st.first);
            for (auto o = at; o < to && !st.log[o - st.first].msg; ++o)
              st.log[o - st.first].missing = true;
            if (to > at && at < st.end() && st.log[at - st.first].missing)
              spdlog::error("{}: offsets {} to {} are missing from its store; they are not moved",
                            stream_desc(st), at, to);
            more->go();
          },
          [=](caf::error& err) {
            if (more->over())
              return;
            auto& st = self->state;
            for (auto& e : st.log)
              e.missing = e.missing || !e.msg;
            spdlog::error("{}: reading from its store failed: {}; what only the store held is "
                          "not moved",
                          stream_desc(st), self->home_system().render(err));
            more->go();
          });
      return handover::fill::loading;
    }
    auto id = ++st.move_next;  // (its store id: offset + 1)
    if (e.msg && !mv.add(e.msg, false, id))
      return handover::fill::paused;
  }
  return handover::fill::done;
}

void on_down(stream_actor_t* self, caf::down_msg& dm) {
  auto& st = self->state;
  st.monitored.erase(dm.source);
  auto conn = st.keys.of(dm.source);
  std::erase_if(st.consumers, [&](const stream_consumer& c) { return c.conn == conn; });
  st.flow.blocked.erase(caf::actor_cast<caf::actor>(dm.source));
}

void take_publish(stream_actor_t* self, const caf::actor& sender, publish_batch& b);

// The stream it was moving its messages to went away mid-move (handover.hpp): it goes on as a
// stream. What was not confirmed never left its log (nor its store), the publishes that waited
// are appended in the order they came, and its vhost settles the name again (resume_atom).
void resume(stream_actor_t* self, std::vector<handover::in_flight>&,
            handover::held_publishes& held) {
  auto& st = self->state;
  install_defaults(self, "stream");
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  // Timers that fired during the move were dropped: armed again below, as needed.
  st.dispatch_scheduled = false;
  st.retention_armed = false;
  ++st.retention_timer;  // (one armed before the move may still come: it is not this one)
  // Bodies the move read back from the store leave memory again.
  if (st.stored())
    for (auto o = st.first; o < std::min(st.resident_from, st.end()); ++o)
      st.log[o - st.first].msg.reset();
  for (auto& [sender, b] : held)
    take_publish(self, sender, b);
  report(self, st.collector, false);
  self->send(st.cfg.vhost, resume_atom::value, self->address());
  evict(st);
  apply_retention(self);
  arm_retention(self);
}

// Yields to the queue of the same name on node `node` (handover.hpp): consumers are cancelled,
// and every message of the log goes there in order; the other one gives them offsets of its
// own. What the other one confirmed leaves the log and the store as it goes; if the other one
// goes away mid-move, the stream goes on with the rest (resume).
void yield_to(stream_actor_t* self, const caf::actor& winner, const std::string& node) {
  auto& st = self->state;
  for (auto& c : st.consumers)
    self->send(c.spec.conn, cancelled_atom::value, c.spec.consumer_id);
  st.consumers.clear();
  // Publishers waiting for this stream's store: it cannot tell them the messages are safe.
  // (The store's answers are not taken during the move: what it has on its way is forgotten.)
  st.unconfirmed.release(self, std::numeric_limits<uint64_t>::max(), false, {});
  st.unstored.clear();
  st.unstored_messages = st.unstored_bytes = 0;
  st.flow.release(self);  // (publishers it held back: the move's credit paces them now)
  st.move_next = st.first;
  // Its numbers go now (the stream that stays counts what it takes), its file once moved.
  report(self, st.collector, true);
  handover::steps<stream_actor_t> steps;
  steps.source = next_to_move;
  steps.settled = [](stream_actor_t* self, std::vector<handover::in_flight>& gone) {
    auto& st = self->state;
    auto upto = gone.back().id;  // (in order: every id up to the last one confirmed)
    drop_front(st, upto);        // (offsets below id)
    if (st.stored())
      self->send(st.cfg.store, remove_atom::value, st.cfg.store_path, upto);
  };
  steps.end = [](stream_actor_t* self) {
    auto& st = self->state;
    if (st.stored())
      self->send(st.cfg.store, destroy_atom::value, st.cfg.store_path);
  };
  steps.abandon = resume;
  handover::start(self, winner, st.cfg.vhost, stream_desc(st), node, std::move(steps));
}


// Where a new consumer starts.
uint64_t start_offset(const stream_state& st, const stream_offset& o) {
  switch (o.k) {
    case stream_offset::kind::first:
      return st.first;
    case stream_offset::kind::last:
      return std::clamp(st.last_chunk, st.first, st.end());
    case stream_offset::kind::next:
      return st.end();
    case stream_offset::kind::offset:
      // Past the end, the consumer waits for that offset (as an osiris reader does).
      return std::max(static_cast<uint64_t>(std::max<int64_t>(0, o.value)), st.first);
    case stream_offset::kind::timestamp: {
      // The first message taken at or after that time.
      auto it = std::partition_point(st.log.begin(), st.log.end(),
                                     [&](const log_entry& e) { return e.ts < o.value; });
      return st.first + static_cast<uint64_t>(it - st.log.begin());
    }
  }
  return st.end();
}

void add_recovered(stream_state& st, uint64_t id, message_ptr msg, uint32_t bytes, int64_t ts) {
  auto offset = id - 1;
  if (st.log.empty() && st.segments.empty())
    st.first = offset;
  while (st.end() < offset)  // a gap: rows set aside as damaged
    append_entry(st, log_entry{nullptr, 0, true, ts});
  append_entry(st, log_entry{std::move(msg), bytes, false, ts});
}

void finish_recovery(stream_actor_t* self) {
  auto& st = self->state;
  if (st.log.empty())
    st.first = st.cfg.next_id ? st.cfg.next_id - 1 : 0;
  st.last_chunk = st.end() ? st.end() - 1 : 0;
  st.resident_from = st.first;
  while (st.resident_from < st.end() && !st.log[st.resident_from - st.first].msg)
    ++st.resident_from;
  evict(st);
  apply_retention(self);
  arm_retention(self);
}

// A restarted stream reads its log back from the store before it serves anyone (as a
// restarted queue does).
void reload(stream_actor_t* self, uint64_t after) {
  auto& st = self->state;
  self->request(st.cfg.store, caf::infinite, load_atom::value, st.cfg.store_path, after,
                uint32_t{10000})
    .await(
      [=](std::vector<persistence::stored_message>& rows) {
        auto& st = self->state;
        for (auto& m : rows) {
          auto bytes = static_cast<uint32_t>(m.body.size());
          auto id = m.id;
          auto ts = m.expires;
          add_recovered(st, id, from_stored(m), bytes, ts);
          evict(st);
        }
        if (rows.size() == 10000)
          return reload(self, rows.back().id);
        finish_recovery(self);
        spdlog::info("{}: reloaded {} message(s) of its stream", stream_desc(st), st.log.size());
        report(self, st.collector, false);
      },
      [=](caf::error& err) {
        spdlog::error("{}: reading its store back failed: {}", stream_desc(self->state),
                      self->home_system().render(err));
      });
}

// Appends a publish batch from `sender` (a connection, an exchange, or a node's forwarder).
void take_publish(stream_actor_t* self, const caf::actor& sender, publish_batch& b) {
  auto& st = self->state;
  if (b.credited)
    st.grants.took(self, sender, publish_credit::of(b));
  confirm_report report;
  report.channel = b.channel;
  std::vector<persistence::stored_message> to_store;
  auto ts = wall_now_ms();
  bool first_of_batch = true;
  for (auto& item : b.items) {
    auto offset = st.end();
    auto msg = with_offset(*item.msg, offset);
    if (first_of_batch)
      st.last_chunk = offset;
    first_of_batch = false;
    ++st.published;
    weight_return ret{item.seq, item.weight, true, false};
    if (st.stored()) {
      to_store.push_back(persistence::stored_message{
        offset + 1, std::string{msg->exchange()}, std::string{msg->routing_key()},
        std::string{msg->properties()}, std::string{msg->body()}, false, ts});
      if (item.weight && b.publisher)  // confirmed once on disk
        st.unconfirmed.wait(offset + 1, b.publisher, b.channel, ret);
    } else if (item.weight) {
      report.returns.push_back(ret);
    }
    auto bytes = static_cast<uint32_t>(msg->body().size());
    append_entry(st, log_entry{std::move(msg), bytes, false, ts});
  }
  if (!to_store.empty()) {
    uint64_t bytes = 0;
    for (auto& m : to_store)
      bytes += m.body.size();
    st.unstored.push_back({to_store.back().id, to_store.size(), bytes});
    st.unstored_messages += to_store.size();
    st.unstored_bytes += bytes;
    self->send(st.cfg.store, append_atom::value, st.cfg.store_path, std::move(to_store));
  }
  if (!report.returns.empty() && b.publisher)
    self->send(b.publisher, confirm_atom::value, std::move(report));
  dispatch(self);
  evict(st);
  apply_retention(self);
  arm_retention(self);
  st.flow.on_publish(self, b.publisher, store_backlogged(st, 1));
  st.flow.relax(self, store_backlogged(st, 2));
}

op_result refuse(uint16_t code, std::string text) { return op_result{code, std::move(text), 0}; }

caf::behavior stream_behavior(stream_actor_t* self, queue_config cfg, stream_options opts) {
  install_defaults(self, "stream");
  self->state.keys.local = self->node();
  {
    auto& st = self->state;
    st.cfg = std::move(cfg);
    st.opts = opts;
    for (auto& r : st.cfg.recovered)
      add_recovered(st, r.id, std::move(r.msg), r.bytes, r.expires);
    st.cfg.recovered.clear();
    st.cfg.recovered.shrink_to_fit();
    if (st.log.empty())
      st.first = st.cfg.next_id ? st.cfg.next_id - 1 : 0;
    finish_recovery(self);
    st.collector = metrics::find_collector(self->home_system());
    report(self, st.collector, false);
    if (st.cfg.reload && st.stored()) {
      st.log.clear();
      st.segments.clear();
      st.total_bytes = st.resident_bytes = 0;
      reload(self, 0);
    }
  }
  on_crash(self, [self](const std::string& what) {
    spdlog::error("{} crashed: {}", stream_desc(self->state), what);
    self->state.unconfirmed.release(self, std::numeric_limits<uint64_t>::max(), false, {});
  });
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  return {
    [=](publish_atom, publish_batch& b) {
      take_publish(self, caf::actor_cast<caf::actor>(self->current_sender()), b);
    },
    [=](stored_atom, uint64_t max_id, bool committed, std::vector<uint64_t>& failed) {
      auto& st = self->state;
      st.unconfirmed.release(self, max_id, committed, failed);
      note_stored(st, max_id);
      st.flow.relax(self, store_backlogged(st, 2));
    },
    [=](policy_atom, stream_options& o) {  // a policy changed the retention (policy.hpp)
      self->state.opts = o;
      apply_retention(self);
      arm_retention(self);
    },
    [=](expire_atom, int64_t timer) {  // the x-max-age check
      if (timer != self->state.retention_timer)
        return;
      self->state.retention_armed = false;
      apply_retention(self);
      arm_retention(self);
    },
    [=](tick_atom) {
      dispatch(self);
      self->state.flow.relax(self, store_backlogged(self->state, 2));
    },
    [](bool) {},  // the store's answer to the destroy sent without waiting
    [=](unused_atom) -> bool { return false; },  // streams take no x-expires
    [=](report_atom) {
      report(self, caf::actor_cast<caf::actor>(self->current_sender()), false);
    },
    [=](consume_atom, consumer_spec& spec) -> op_result {
      auto& st = self->state;
      // RabbitMQ's order: the arguments other queue types take, then the prefetch.
      argument_error bad;
      if (refused_consumer_argument(spec.arguments, queue_kind::stream, bad))
        return refuse(amqp::precondition_failed,
                      "PRECONDITION_FAILED - " +
                        argument_error_text(bad, stream_desc(st), "rabbit_stream_queue"));
      if (spec.prefetch == 0)
        return refuse(amqp::precondition_failed,
                      "PRECONDITION_FAILED - consumer prefetch count is not set for '" +
                        stream_desc(st) + "'");
      if (spec.no_ack)
        return refuse(amqp::not_implemented,
                      "NOT_IMPLEMENTED - automatic acknowledgement not supported by stream "
                      "queues " + stream_desc(st));
      std::string why;
      auto where = parse_stream_offset(amqp::find_field(spec.arguments, "x-stream-offset"), why);
      if (!where)
        return refuse(amqp::precondition_failed,
                      "PRECONDITION_FAILED - invalid arg 'x-stream-offset' for " +
                        stream_desc(st) + ": " + why);
      if (spec.conn && self->state.monitored.insert(spec.conn.address()).second)
        self->monitor(spec.conn);
      stream_consumer c;
      c.next = start_offset(st, *where);
      c.credit = spec.credit;
      c.conn = st.keys.of(spec.conn);
      c.spec = std::move(spec);
      st.consumers.push_back(std::move(c));
      schedule_dispatch(self);
      op_result ok;
      ok.stream = true;
      return ok;
    },
    [=](cancel_atom, caf::actor_id conn_id, uint64_t consumer_id) -> op_result {
      auto conn = self->state.keys.of_sender(self, conn_id);
      std::erase_if(self->state.consumers, [&](const stream_consumer& c) {
        return c.conn == conn && c.spec.consumer_id == consumer_id;
      });
      return op_result{};
    },
    [=](release_atom, caf::actor_id conn_id, std::vector<uint64_t>& consumer_ids,
        std::vector<uint64_t>&) {  // nothing comes back to a stream
      auto conn = self->state.keys.of_sender(self, conn_id);
      std::erase_if(self->state.consumers, [&](const stream_consumer& c) {
        return c.conn == conn && std::find(consumer_ids.begin(), consumer_ids.end(),
                                           c.spec.consumer_id) != consumer_ids.end();
      });
    },
    [=](credit_atom, caf::actor_id conn_id, uint64_t consumer_id, uint32_t n) {
      auto& st = self->state;
      if (auto c = find_consumer(st, st.keys.of_sender(self, conn_id), consumer_id)) {
        c->credit += n;
        delivery_batch b;
        serve(self, *c, b);
        if (!b.items.empty()) {
          b.queue = caf::actor_cast<caf::actor>(self);
          b.consumer_id = consumer_id;
          self->send(c->spec.conn, deliver_atom::value, std::move(b));
        }
      }
    },
    [=](ack_atom, std::vector<uint64_t>& ids) { self->state.acked += ids.size(); },
    // Nothing leaves a stream and nothing comes back to it: a consumer that went away with
    // deliveries unacknowledged, or a nack the connection let through (in a transaction).
    [=](reject_atom, std::vector<uint64_t>&) {},
    [=](requeue_atom, std::vector<uint64_t>&, bool) {},
    [=](get_atom, caf::actor&, bool) -> get_result {
      get_result r;
      r.code = amqp::not_implemented;
      r.text = "NOT_IMPLEMENTED - basic.get not supported by stream queues " +
               stream_desc(self->state);
      return r;
    },
    [=](purge_atom) -> op_result {
      return refuse(amqp::not_implemented,
                    "NOT_IMPLEMENTED - queue.purge not supported by stream queues " +
                      stream_desc(self->state));
    },
    [=](stats_atom) -> queue_declared {
      // RabbitMQ counts a stream's messages here, and no consumers.
      auto& st = self->state;
      return queue_declared{0, {}, st.cfg.name, static_cast<uint32_t>(st.log.size()), 0,
                            caf::actor_cast<caf::actor>(self)};
    },
    [=](check_atom, bool if_unused, bool) -> op_result {
      // As in RabbitMQ, if_empty does not hold a stream back, and delete-ok counts 0.
      auto& st = self->state;
      if (if_unused && !st.consumers.empty())
        return refuse(amqp::precondition_failed,
                      "PRECONDITION_FAILED - " + stream_desc(st) + " in use");
      return op_result{};
    },
    [=](crash_atom) { inject_fault(stream_desc(self->state)); },
    [=](stall_atom, uint32_t ms) { inject_stall(self, "stream", stream_desc(self->state), ms); },
    [=](yield_atom, caf::actor& winner, std::string& node) { yield_to(self, winner, node); },
    [=](stop_atom) {
      auto& st = self->state;
      for (auto& c : st.consumers)
        self->send(c.spec.conn, cancelled_atom::value, c.spec.consumer_id);
      st.consumers.clear();
      if (st.stored())
        self->send(st.cfg.store, destroy_atom::value, st.cfg.store_path);
      report(self, st.collector, true);
      self->quit();
    },
  };
}

}  // namespace

caf::actor spawn_stream(caf::actor_system& sys, queue_config cfg, stream_options opts) {
  return sys.spawn(stream_behavior, std::move(cfg), opts);
}

}  // namespace warren
