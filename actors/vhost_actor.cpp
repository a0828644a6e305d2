// The vhost actor (one per virtual host).
//
// Jobs: map exchange and queue names to their actors; own the metadata that declarations are
// checked against (type, durable, exclusive owner, auto-delete, arguments) and the binding
// table; spawn and stop exchange and queue actors; enforce exclusive-queue ownership; delete
// exclusive queues when their connection goes away, auto-delete queues when asked by them and
// auto-delete exchanges when their last binding goes; forward unroutable messages to alternate
// exchanges.
// Talks to: connections (requests in), exchange and queue actors (bind/unbind/stop out).
// Not on the message hot path: connections cache the handles they look up here.
// Invariant: a binding is recorded here iff its source exchange actor has it.
#include "actors/vhost_actor.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/hardening.hpp"
#include "metrics/restarts.hpp"

#include "actors/exchange/exchange_type.hpp"
#include "actors/exchange_actor.hpp"
#include "actors/policy.hpp"
#include "actors/queue_actor.hpp"
#include "actors/stream_actor.hpp"
#include "actors/trace.hpp"
#include "cluster/definitions.hpp"
#include "metrics/node_counters.hpp"
#include "persistence/actors/catalog_actor.hpp"
#include "persistence/actors/message_store_actor.hpp"
#include "persistence/catalog.hpp"
#include "protocol/amqp091/constants.hpp"
#include "protocol/amqp091/wire.hpp"

namespace warren {
namespace {

struct exchange_record {
  caf::actor actor;
  exchange_spec spec;
  std::string alternate;
};

struct queue_record {
  caf::actor actor;
  queue_spec spec;
  caf::actor_addr owner;  // exclusive owner, null otherwise
  bool persisted = false;  // in the catalog, with a message file
  std::string file;        // the message file, relative to data_dir (persisted queues)
  // Cluster: the node the queue lives on ("" = this one, which alone keeps it in its catalog
  // and supervises it), and whether that node is out of reach.
  std::string node;
  bool down = false;
};

// A queue of this node that yields (its record as it was, kept in the catalog until the move
// is done), and the queue it moves its messages to.
struct yielding_queue {
  queue_record record;
  caf::actor winner;
};

struct binding_record {
  std::string source;
  std::string destination;
  bool to_exchange = false;
  std::string key;
  amqp::field_table arguments;
  uint64_t stamp = 0;  // cluster: when it was bound (not part of what the binding is)
  bool operator==(const binding_record& o) const {
    return source == o.source && destination == o.destination && to_exchange == o.to_exchange &&
           key == o.key && arguments == o.arguments;
  }
};

struct vhost_state {
  std::string vhost;
  std::map<std::string, exchange_record> exchanges;
  std::map<std::string, queue_record> queues;
  std::vector<binding_record> bindings;
  std::map<std::string, caf::actor> reply_to;  // direct reply-to token -> connection
  // Queues of this node that yielded and are still moving their messages (handover.hpp), by
  // their actor. Exchanges route to them until the move is done.
  std::map<caf::actor_addr, yielding_queue> yielding;
  int64_t max_queues = -1;  // the vhost limit max-queues (negative: none), from the registry
  policy_set policies;  // the vhost's policies, from the registry (policy.hpp)
  vhost_persistence persist;
  sup::restart_budget budget;  // restarts of exchanges and queues
  std::mt19937_64 rng{std::random_device{}()};
  bool from_cluster = false;  // applying another node's change, which is not sent back
  // Cluster (cluster/definitions.hpp): the last stamp made or seen here, and the deletions
  // kept for the nodes that were not there: name (bindings: binding_key) -> stamp.
  uint64_t last_stamp = 0;
  std::map<std::string, uint64_t> deleted_exchanges, deleted_queues;
  std::map<std::string, std::pair<binding_record, uint64_t>> unbound;
  static inline const char* name = "vhost";
};

using vhost_actor_t = caf::stateful_actor<vhost_state>;

std::string bool_text(bool b) { return b ? "true" : "false"; }

std::string where(const vhost_state& st) { return " in vhost '" + st.vhost + "'"; }

// The queue (kind queue_atom) or exchange (exchange_atom) of that name, or none.
caf::actor queue_or_exchange(const vhost_state& st, caf::atom_value kind,
                             const std::string& name) {
  if (auto q = st.queues.find(name); kind == queue_atom::value && q != st.queues.end())
    return q->second.actor;
  if (auto x = st.exchanges.find(name); kind == exchange_atom::value && x != st.exchanges.end())
    return x->second.actor;
  return {};
}

op_result inequivalent(const vhost_state& st, const char* kind, const std::string& name,
                       const char* arg, const std::string& received, const std::string& current) {
  return op_result{amqp::precondition_failed,
                   "PRECONDITION_FAILED - inequivalent arg '" + std::string{arg} + "' for " + kind +
                     " '" + name + "'" + where(st) + ": received '" + received +
                     "' but current is '" + current + "'",
                   0};
}

// The alternate-exchange argument of a new exchange must be a string (RabbitMQ's 406
// otherwise; an existing one only compares it).
op_result invalid_alternate(const vhost_state& st, const exchange_spec& spec) {
  auto v = amqp::find_field(spec.arguments, "alternate-exchange");
  if (!v || std::holds_alternative<std::string>(v->v))
    return {};
  return op_result{amqp::precondition_failed,
                   "PRECONDITION_FAILED - invalid type '" + std::string{type_name(*v)} +
                     "' for arg 'alternate-exchange' in exchange '" + spec.name + "'" + where(st),
                   0};
}

// The definition of the policy and operator policy that apply to the queue or exchange
// `name` now (policy.hpp).
amqp::field_table policy_definition(const vhost_state& st, policy_target target,
                                    const std::string& name) {
  return st.policies.definition_for(st.vhost, target, name);
}

std::string alternate_of(const vhost_state& st, const exchange_spec& spec) {
  return effective_alternate(spec.arguments,
                             policy_definition(st, policy_target::exchange, spec.name));
}

// What a classic or quorum queue, or a stream, does, from its arguments and its policies. When
// the queue cannot take them all at once, the policy's keys are taken one at a time
// (ascending: a dead-letter exchange before its routing key), so that a value the queue cannot
// take (a dead-letter routing key without an exchange, a TTL past ten years) leaves out that
// key alone, as RabbitMQ ignores it.
template <class Options, class Parse>
Options options_of(const vhost_state& st, const queue_spec& spec, queue_kind kind, Parse parse) {
  argument_error ignored;  // the arguments were checked when the queue was declared
  auto def = policy_definition(st, policy_target::queue, spec.name);
  if (def.empty())
    return parse(spec.arguments, ignored).value_or(Options{});
  if (auto all = parse(effective_queue_arguments(spec.arguments, def, kind), ignored))
    return std::move(*all);
  auto args = spec.arguments;
  for (auto& kv : def) {
    auto with = effective_queue_arguments(args, amqp::field_table{kv}, kind);
    if (with != args && parse(with, ignored))
      args = std::move(with);
  }
  return parse(args, ignored).value_or(Options{});
}

queue_options options_of(const vhost_state& st, const queue_spec& spec) {
  return options_of<queue_options>(
    st, spec, is_quorum(spec.arguments) ? queue_kind::quorum : queue_kind::classic,
    parse_queue_options);
}

stream_options stream_options_of(const vhost_state& st, const queue_spec& spec) {
  return options_of<stream_options>(st, spec, queue_kind::stream, parse_stream_options);
}

std::string server_named_queue(vhost_state& st) {
  static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string s = "amq.gen-";
  for (int i = 0; i < 22; ++i)
    s += alphabet[st.rng() % 64];
  return s;
}

exchange_record make_exchange(vhost_actor_t* self, const exchange_spec& spec) {
  exchange_record r;
  r.spec = spec;
  r.alternate = alternate_of(self->state, spec);
  r.actor = spawn_exchange(self->home_system(),
                           exchange_config{self->state.vhost, spec.name, spec.type, r.alternate,
                                           caf::actor_cast<caf::actor>(self)});
  self->link_to(r.actor);  // supervised: see on_child_exit
  return r;
}

// Spawns (and supervises) the actor of queue `r`. A persisted queue keeps its messages in
// r.file; `recovered` are those found there at start-up, or, with `reload`, the queue reads
// them back itself.
caf::actor start_queue(vhost_actor_t* self, const queue_record& r,
                       std::vector<recovered_message> recovered = {}, uint64_t next_id = 1,
                       bool reload = false) {
  auto& st = self->state;
  queue_config qc;
  qc.vhost_name = st.vhost;
  qc.name = r.spec.name;
  qc.auto_delete = r.spec.auto_delete;
  bool stream = is_stream(r.spec.arguments);
  if (!stream)
    qc.options = options_of(st, r.spec);
  qc.vhost = caf::actor_cast<caf::actor>(self);
  if (r.persisted) {
    qc.store_path = st.persist.data_dir + "/" + r.file;
    // A priority queue keeps its bodies in memory: paging in works in arrival order.
    qc.memory_limit = qc.options.max_priority ? 0 : st.persist.queue_memory_limit;
    qc.store = st.persist.stores[std::hash<std::string>{}(r.file) % st.persist.stores.size()];
    qc.recovered = std::move(recovered);
    qc.next_id = next_id;
    qc.reload = reload;
  }
  caf::actor actor;
  if (stream)
    actor = spawn_stream(self->home_system(), std::move(qc), stream_options_of(st, r.spec));
  else
    actor = spawn_queue(self->home_system(), std::move(qc));
  self->link_to(actor);  // supervised: see on_child_exit
  return actor;
}

op_result not_found(const vhost_state& st, const char* kind, const std::string& name) {
  return op_result{amqp::not_found,
                   "NOT_FOUND - no " + std::string{kind} + " '" + name + "'" + where(st), 0};
}

op_result locked(const vhost_state& st, const std::string& name) {
  return op_result{amqp::resource_locked,
                   "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '" + name +
                     "'" + where(st) +
                     ". It could be originally declared on another connection or the exclusive "
                     "property value does not match that of the original declaration.",
                   0};
}

bool accessible(const queue_record& q, const caf::actor& conn) {
  if (!q.node.empty())  // the owner of an exclusive queue is a connection of its node
    return !q.spec.exclusive;
  return !q.owner || (conn && q.owner == conn.address());
}

// What RabbitMQ answers for a durable queue whose node is out of reach.
op_result node_down(const vhost_state& st, const queue_record& q) {
  return op_result{amqp::not_found,
                   "NOT_FOUND - home node '" + q.node + "' of durable queue '" + q.spec.name +
                     "'" + where(st) + " is down or inaccessible",
                   0};
}

// Sends a change made here to the other nodes of the cluster (cluster/definitions.hpp). One
// that came from them goes no further.
void replicate(vhost_actor_t* self, vhost_definitions d) {
  if (self->state.from_cluster)
    return;
  if (auto cluster = current_cluster(self->home_system())) {
    d.vhost = self->state.vhost;
    self->send(cluster, replicate_atom::value, std::move(d));
  }
}

// Tells queue `q` what it does under the policies now.
void send_policy(vhost_actor_t* self, const queue_record& q) {
  auto& st = self->state;
  if (is_stream(q.spec.arguments))
    self->send(q.actor, policy_atom::value, stream_options_of(st, q.spec));
  else
    self->send(q.actor, policy_atom::value, options_of(st, q.spec));
}

// The policies changed: every queue of this node gets what it does now (it keeps its options
// where they are the same), every exchange its alternate exchange. (A queue that yields drops
// it; it gets it again if it stays.)
void apply_policies(vhost_actor_t* self) {
  auto& st = self->state;
  for (auto& [name, q] : st.queues)
    if (q.node.empty() && q.actor)
      send_policy(self, q);
  for (auto& [name, x] : st.exchanges) {
    if (name.empty())
      continue;  // the default exchange has no alternate
    auto alternate = alternate_of(st, x.spec);
    if (alternate != x.alternate) {
      x.alternate = alternate;
      self->send(x.actor, policy_atom::value, alternate);
    }
  }
}

binding_spec to_spec(const binding_record& b) {
  return binding_spec{b.source, b.destination, b.to_exchange, b.key, b.arguments, {}, {},
                      b.stamp};
}

// Stamps and tombstones (cluster/definitions.hpp).

uint64_t next_stamp(vhost_state& st) { return warren::next_stamp(st.last_stamp); }

void saw_stamp(vhost_state& st, uint64_t stamp) { st.last_stamp = std::max(st.last_stamp, stamp); }

bool in_cluster(vhost_actor_t* self) { return current_cluster(self->home_system()) != nullptr; }

// A binding as one string (the key of its tombstone, here and in the catalog): a version
// byte, then source, destination and routing key each with its length before it (names and
// keys may hold any byte, NUL too), the kind of destination, and the arguments.
constexpr char binding_key_version = '\x01';

void put_sized(std::string& k, const std::string& s) {
  k += std::to_string(s.size());
  k += ':';
  k += s;
}

std::string binding_key(const binding_record& b) {
  std::string k(1, binding_key_version);
  put_sized(k, b.source);
  put_sized(k, b.destination);
  k += b.to_exchange ? 'x' : 'q';
  put_sized(k, b.key);
  k += encode_arguments(b.arguments);
  return k;
}

// The stamp of the deletion of `name`, 0 when none is kept.
uint64_t deleted_at(const std::map<std::string, uint64_t>& tombs, const std::string& name) {
  auto it = tombs.find(name);
  return it == tombs.end() ? 0 : it->second;
}

uint64_t unbound_at(const vhost_state& st, const binding_record& b) {
  auto it = st.unbound.find(binding_key(b));
  return it == st.unbound.end() ? 0 : it->second.second;
}

// Whether a definition stamped `stamp` was deleted after it was made (`deleted`: the stamp of
// the deletion kept here, 0 for none).
bool outlived(uint64_t deleted, uint64_t stamp) { return deleted != 0 && deleted >= stamp; }

// Past this many tombstones of one kind (a member down for long, with much churn meanwhile),
// the older half goes: what they deleted may come back from that member.
constexpr size_t max_tombstones = 100000;

bool persisting(const vhost_state& st) { return st.persist.catalog != nullptr; }

bool take_sized(std::string_view& in, std::string& out) {
  size_t n = 0;
  auto [end, ec] = std::from_chars(in.data(), in.data() + in.size(), n);
  if (ec != std::errc{} || end == in.data() + in.size() || *end != ':')
    return false;
  in.remove_prefix(static_cast<size_t>(end - in.data()) + 1);
  if (n > in.size())
    return false;
  out.assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

// The binding a binding_key names. Keys kept by builds before the version byte separated
// the parts with NUL bytes; those are read too.
std::optional<binding_record> binding_of_key(const std::string& k) {
  binding_record r;
  if (!k.empty() && k[0] == binding_key_version) {
    std::string_view in{k};
    in.remove_prefix(1);
    if (!take_sized(in, r.source) || !take_sized(in, r.destination) || in.empty())
      return std::nullopt;
    r.to_exchange = in[0] == 'x';
    in.remove_prefix(1);
    if (!take_sized(in, r.key))
      return std::nullopt;
    r.arguments = decode_arguments(std::string{in});
    return r;
  }
  auto a = k.find('\0');
  auto b = a == std::string::npos ? a : k.find('\0', a + 1);
  auto c = b == std::string::npos || b + 1 >= k.size() ? std::string::npos : k.find('\0', b + 2);
  if (c == std::string::npos)
    return std::nullopt;
  r.source = k.substr(0, a);
  r.destination = k.substr(a + 1, b - a - 1);
  r.to_exchange = k[b + 1] == 'x';
  r.key = k.substr(b + 2, c - b - 2);
  r.arguments = decode_arguments(k.substr(c + 1));
  return r;
}

// The catalog keeps the tombstones too (kind "exchange", "queue" or "binding"), so that they
// hold across a restart of this node.
void keep_tombstone(const vhost_state& st, const char* kind, const std::string& key,
                    uint64_t stamp) {
  if (persisting(st))
    caf::anon_send(st.persist.catalog, put_atom::value,
                   persistence::deletion_row{st.vhost, kind, key, stamp});
}

// Declared (or bound) again here: the tombstone goes.
template <class Map>
void unbury(const vhost_state& st, Map& tombs, const char* kind, const std::string& key) {
  if (tombs.erase(key) && persisting(st))
    caf::anon_send(st.persist.catalog, delete_atom::value,
                   persistence::deletion_row{st.vhost, kind, key, 0});
}

template <class Map, class StampOf>
void cap_tombstones(const vhost_state& st, Map& tombs, StampOf stamp_of, const char* kind) {
  if (tombs.size() <= max_tombstones)
    return;
  std::vector<uint64_t> stamps;
  stamps.reserve(tombs.size());
  for (auto& kv : tombs)
    stamps.push_back(stamp_of(kv.second));
  auto mid = stamps.begin() + static_cast<std::ptrdiff_t>(stamps.size() / 2);
  std::nth_element(stamps.begin(), mid, stamps.end());
  auto before = *mid;
  for (auto it = tombs.begin(); it != tombs.end();)
    it = stamp_of(it->second) < before ? tombs.erase(it) : std::next(it);
  if (persisting(st))  // (the catalog's of every kind, as old)
    caf::anon_send(st.persist.catalog, prune_atom::value, before);
  spdlog::warn("vhost '{}': more than {} tombstones of a {} kept for members that are not "
               "running; the older half is dropped",
               st.vhost, max_tombstones, kind);
}

void bury(vhost_state& st, std::map<std::string, uint64_t>& tombs, const char* kind,
          const std::string& name, uint64_t stamp) {
  auto& kept = tombs[name];
  if (kept >= stamp)
    return;
  kept = stamp;
  keep_tombstone(st, kind, name, stamp);
  cap_tombstones(st, tombs, [](uint64_t s) { return s; }, kind);
}

void bury_binding(vhost_state& st, const binding_record& b, uint64_t stamp) {
  auto key = binding_key(b);
  auto& kept = st.unbound[key];
  if (kept.second >= stamp)
    return;
  kept.first = b;
  kept.second = stamp;
  keep_tombstone(st, "binding", key, stamp);
  cap_tombstones(st, st.unbound, [](const auto& v) { return v.second; }, "binding");
}

// The tombstones the catalog kept (a restart).
void load_tombstones(vhost_state& st, const std::vector<persistence::deletion_row>& rows) {
  for (auto& d : rows) {
    if (d.kind == "exchange")
      st.deleted_exchanges[d.key] = d.stamp;
    else if (d.kind == "queue")
      st.deleted_queues[d.key] = d.stamp;
    else if (auto b = d.kind == "binding" ? binding_of_key(d.key) : std::nullopt) {
      auto key = binding_key(*b);  // (as the key of an older build, read differently)
      st.unbound[key] = {std::move(*b), d.stamp};
    }
  }
}

// Tombstones older than `before` go (every member runs: none of them needs them).
void prune_tombstones(vhost_state& st, uint64_t before) {
  auto prune = [&](auto& tombs, auto stamp_of) {
    for (auto it = tombs.begin(); it != tombs.end();)
      it = stamp_of(it->second) < before ? tombs.erase(it) : std::next(it);
  };
  prune(st.deleted_exchanges, [](uint64_t s) { return s; });
  prune(st.deleted_queues, [](uint64_t s) { return s; });
  prune(st.unbound, [](const auto& v) { return v.second; });
}

// A binding is durable when both of its ends are (RabbitMQ semantics).
bool durable_binding(const vhost_state& st, const binding_record& b) {
  auto src = st.exchanges.find(b.source);
  if (src == st.exchanges.end() || !src->second.spec.durable)
    return false;
  if (b.to_exchange) {
    auto d = st.exchanges.find(b.destination);
    return d != st.exchanges.end() && d->second.spec.durable;
  }
  auto q = st.queues.find(b.destination);
  return q != st.queues.end() && q->second.persisted;
}

persistence::binding_row to_row(const vhost_state& st, const binding_record& b) {
  return persistence::binding_row{st.vhost, b.source, b.destination, b.to_exchange, b.key,
                                  encode_arguments(b.arguments)};
}

// A durable exchange as the catalog keeps it.
persistence::exchange_row to_row(const vhost_state& st, const exchange_spec& x) {
  return persistence::exchange_row{st.vhost, x.name, x.type, true, x.auto_delete, x.internal,
                                   encode_arguments(x.arguments)};
}

// Removes bindings matching `pred`, telling each source exchange; then deletes auto-delete
// exchanges that lost their last binding.
template <class Pred>
void drop_bindings(vhost_actor_t* self, Pred pred);

// `stamp`: of the deletion, 0 for one made here now.
void delete_exchange(vhost_actor_t* self, const std::string& name, uint64_t stamp = 0) {
  auto& st = self->state;
  auto it = st.exchanges.find(name);
  if (it == st.exchanges.end())
    return;
  auto actor = it->second.actor;
  bool durable = it->second.spec.durable;
  if (!stamp)
    stamp = next_stamp(st);
  if (in_cluster(self))
    bury(st, st.deleted_exchanges, "exchange", name, stamp);
  vhost_definitions change;
  change.deleted_exchanges.push_back(tombstone{name, stamp});
  replicate(self, std::move(change));
  drop_bindings(self, [&](const binding_record& b) {
    return b.source == name || (b.to_exchange && b.destination == name);
  });
  st.exchanges.erase(name);
  if (durable && persisting(st))  // the catalog drops its bindings too
    self->send(st.persist.catalog, delete_atom::value, exchange_atom::value, st.vhost, name);
  self->send(actor, stop_atom::value);
}

caf::actor destination_actor(vhost_state& st, const binding_record& b) {
  if (b.to_exchange) {
    auto it = st.exchanges.find(b.destination);
    return it == st.exchanges.end() ? caf::actor{} : it->second.actor;
  }
  auto it = st.queues.find(b.destination);
  return it == st.queues.end() ? caf::actor{} : it->second.actor;
}

template <class Pred>
void drop_bindings(vhost_actor_t* self, Pred pred) {
  auto& st = self->state;
  std::vector<binding_record> removed;
  for (auto it = st.bindings.begin(); it != st.bindings.end();) {
    if (pred(*it)) {
      if (persisting(st) && durable_binding(st, *it))
        self->send(st.persist.catalog, unbind_atom::value, to_row(st, *it));
      removed.push_back(std::move(*it));
      it = st.bindings.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<std::string> maybe_auto_delete;
  for (auto& b : removed) {
    auto src = st.exchanges.find(b.source);
    if (src == st.exchanges.end())
      continue;
    // The destination actor may be gone already; the exchange matches on the address.
    binding_entry e{destination_actor(st, b), b.destination, b.to_exchange, b.key, b.arguments};
    if (e.destination)
      self->send(src->second.actor, unbind_atom::value, std::move(e));
    if (src->second.spec.auto_delete)
      maybe_auto_delete.push_back(b.source);
  }
  for (auto& x : maybe_auto_delete) {
    bool still_bound = std::any_of(st.bindings.begin(), st.bindings.end(),
                                   [&](const binding_record& b) { return b.source == x; });
    if (!still_bound)
      delete_exchange(self, x);
  }
}

// Deletes queue `name`. `bury`: a deletion that the other nodes must learn, also if they were
// apart (`stamp`: of the deletion, 0 for one made here now); not when the queue merely goes
// from this node's view (its node left, or went down with a transient queue, or no longer
// has it). Only a queue of another node leaves a tombstone: a node is the authority on its
// own queues.
void delete_queue(vhost_actor_t* self, const std::string& name, bool bury_it = true,
                  uint64_t stamp = 0) {
  auto& st = self->state;
  auto it = st.queues.find(name);
  if (it == st.queues.end())
    return;
  auto actor = it->second.actor;
  bool persisted = it->second.persisted;
  bool here = it->second.node.empty();  // a queue of another node is stopped there
  if (!stamp)
    stamp = next_stamp(st);
  if (bury_it && !here && in_cluster(self))
    bury(st, st.deleted_queues, "queue", name, stamp);
  vhost_definitions change;
  change.deleted_queues.push_back(tombstone{name, stamp});
  replicate(self, std::move(change));
  // Unbind while the queue actor is still registered, so that exchanges get its handle.
  drop_bindings(self, [&](const binding_record& b) {
    return !b.to_exchange && b.destination == name;
  });
  st.queues.erase(name);
  if (persisted)
    self->send(st.persist.catalog, delete_atom::value, queue_atom::value, st.vhost, name);
  if (here) {
    self->send(actor, stop_atom::value);  // the queue deletes its message file
    metrics::count(metrics::node_event::queue_deleted);
  }
}

void declare_defaults(vhost_actor_t* self) {
  struct predeclared {
    std::string_view name;
    const char* type;
    bool internal;
  };
  const predeclared defaults[] = {
    {"amq.direct", "direct", false}, {"amq.fanout", "fanout", false},
    {"amq.topic", "topic", false},   {"amq.headers", "headers", false},
    {"amq.match", "headers", false}, {trace::exchange_name, "topic", true}};  // the firehose's
  for (auto& d : defaults) {
    exchange_spec spec;
    spec.name = d.name;
    spec.type = d.type;
    spec.durable = true;
    spec.internal = d.internal;
    self->state.exchanges.emplace(spec.name, make_exchange(self, spec));
  }
}

caf::result<op_result> declare_exchange(vhost_actor_t* self, exchange_spec& spec) {
  auto& st = self->state;
  if (spec.name.empty()) {
    if (spec.passive)
      return op_result{};
    return op_result{amqp::access_refused,
                     "ACCESS_REFUSED - operation not permitted on the default exchange", 0};
  }
  auto it = st.exchanges.find(spec.name);
  if (it == st.exchanges.end()) {
    if (spec.passive)
      return not_found(st, "exchange", spec.name);
    if (!exchange::is_known_type(spec.type))
      return op_result{amqp::command_invalid,
                       "COMMAND_INVALID - unknown exchange type '" + spec.type + "'", 0};
    if (spec.name.rfind("amq.", 0) == 0)
      return op_result{amqp::access_refused, "ACCESS_REFUSED - exchange name '" + spec.name +
                                               "' contains reserved prefix 'amq.*'",
                       0};
    if (auto bad = invalid_alternate(st, spec); bad.code != 0)
      return bad;
    if (!spec.refused_if_new.empty())
      return op_result{amqp::access_refused, std::move(spec.refused_if_new), 0};
    spec.stamp = next_stamp(st);
    unbury(st, st.deleted_exchanges, "exchange", spec.name);
    st.exchanges.emplace(spec.name, make_exchange(self, spec));
    vhost_definitions change;
    change.exchanges.push_back(spec);
    replicate(self, std::move(change));
    if (!spec.durable || !persisting(st))
      return op_result{};
    // declare-ok once the exchange is in the catalog.
    auto rp = self->make_response_promise<op_result>();
    self->request(st.persist.catalog, caf::infinite, put_atom::value, to_row(st, spec))
      .then([=](bool) mutable { rp.deliver(op_result{}); },
            [=](caf::error&) mutable { rp.deliver(op_result{}); });
    return rp;
  }
  if (spec.passive)
    return op_result{};
  auto& cur = it->second.spec;
  if (!exchange::is_known_type(spec.type))
    return op_result{amqp::command_invalid,
                     "COMMAND_INVALID - unknown exchange type '" + spec.type + "'", 0};
  if (cur.type != spec.type)
    return inequivalent(st, "exchange", spec.name, "type", spec.type, cur.type);
  if (cur.durable != spec.durable)
    return inequivalent(st, "exchange", spec.name, "durable", bool_text(spec.durable),
                        bool_text(cur.durable));
  if (cur.auto_delete != spec.auto_delete)
    return inequivalent(st, "exchange", spec.name, "auto_delete", bool_text(spec.auto_delete),
                        bool_text(cur.auto_delete));
  if (cur.internal != spec.internal)
    return inequivalent(st, "exchange", spec.name, "internal", bool_text(spec.internal),
                        bool_text(cur.internal));
  if (auto d = argument_difference(amqp::find_field(cur.arguments, "alternate-exchange"),
                                   amqp::find_field(spec.arguments, "alternate-exchange"));
      !d.empty())
    return op_result{amqp::precondition_failed,
                     "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '" +
                       spec.name + "'" + where(st) + ": " + d,
                     0};
  cur.stamp = next_stamp(st);  // declared again: outlives a deletion made before elsewhere
  return op_result{};
}

caf::result<op_result> delete_exchange_checked(vhost_actor_t* self, const std::string& name,
                                               bool if_unused) {
  auto& st = self->state;
  if (name.empty())
    return op_result{amqp::access_refused,
                     "ACCESS_REFUSED - operation not permitted on the default exchange", 0};
  if (name.rfind("amq.", 0) == 0)
    return op_result{amqp::access_refused, "ACCESS_REFUSED - deletion of system exchange '" +
                                             name + "'" + where(st) + " not allowed",
                     0};
  if (st.exchanges.find(name) == st.exchanges.end())
    return op_result{};  // idempotent, as in RabbitMQ 3.x
  if (if_unused && std::any_of(st.bindings.begin(), st.bindings.end(),
                               [&](const binding_record& b) { return b.source == name; }))
    return op_result{amqp::precondition_failed,
                     "PRECONDITION_FAILED - exchange '" + name + "'" + where(st) + " in use", 0};
  delete_exchange(self, name);
  return op_result{};
}

// What RabbitMQ refuses in the declaration of a new queue: its arguments (rabbit_amqqueue),
// then, for a stream or a quorum queue, its properties (rabbit_stream_queue:declare,
// rabbit_quorum_queue:declare).
op_result refuse_declaration(const vhost_state& st, const queue_spec& spec) {
  auto desc = "queue '" + spec.name + "'" + where(st);
  // The type first, whatever else is wrong (RabbitMQ 3.10).
  if (auto t = amqp::find_field(spec.arguments, "x-queue-type")) {
    auto s = std::get_if<std::string>(&t->v);
    std::string reason =
      !s ? unacceptable_type(*t)
      : *s != "classic" && *s != "quorum" && *s != "stream"
        ? "\"unsupported queue type '" + *s + "'\""
        : "";
    if (!reason.empty())
      return op_result{amqp::precondition_failed,
                       "PRECONDITION_FAILED - invalid arg 'x-queue-type' for " + desc + ": " +
                         reason,
                       0};
  }
  bool stream = is_stream(spec.arguments), quorum = !stream && is_quorum(spec.arguments);
  argument_error bad;
  bool refused = stream ? !parse_stream_options(spec.arguments, bad)
                        : foreign_queue_argument(spec.arguments, bad) ||
                            !parse_queue_options(spec.arguments, bad);
  if (refused) {
    auto type = stream   ? "rabbit_stream_queue"
                : quorum ? "rabbit_quorum_queue"
                         : "rabbit_classic_queue";
    return op_result{amqp::precondition_failed,
                     "PRECONDITION_FAILED - " + argument_error_text(bad, desc, type), 0};
  }
  auto property = !stream && !quorum ? nullptr
                  : spec.auto_delete ? "auto-delete"
                  : spec.exclusive   ? "exclusive-owner"
                  : !spec.durable    ? "non-durable"
                                     : nullptr;
  if (property)
    return op_result{amqp::precondition_failed,
                     "PRECONDITION_FAILED - invalid property '" + std::string{property} +
                       "' for " + desc,
                     0};
  return {};
}

caf::result<queue_declared> declare_queue(vhost_actor_t* self, queue_spec& spec) {
  auto& st = self->state;
  // RabbitMQ: an exclusive queue is never durable, whatever the declaration says.
  if (spec.exclusive)
    spec.durable = false;
  auto fail = [](op_result r) { return queue_declared{r.code, std::move(r.text), {}, 0, 0, {}}; };
  if ((spec.name.empty() || spec.server_named) && !spec.passive && is_quorum(spec.arguments))
    return fail(op_result{amqp::precondition_failed,
                          "PRECONDITION_FAILED - Cannot declare a server-named queue for type "
                          "rabbit_quorum_queue",
                          0});
  if (spec.name.empty() || (spec.server_named && st.queues.count(spec.name))) {
    if (spec.passive)
      return fail(not_found(st, "queue", spec.name));
    do
      spec.name = server_named_queue(st);
    while (st.queues.count(spec.name));
  } else if (!spec.server_named && !spec.passive && spec.name.rfind("amq.", 0) == 0 &&
             !st.queues.count(spec.name)) {
    return fail(op_result{amqp::access_refused, "ACCESS_REFUSED - queue name '" + spec.name +
                                                  "' contains reserved prefix 'amq.*'",
                          0});
  }
  auto it = st.queues.find(spec.name);
  if (it == st.queues.end()) {
    if (spec.passive)
      return fail(not_found(st, "queue", spec.name));
    if (!spec.refused_if_new.empty())
      return fail(op_result{amqp::access_refused, std::move(spec.refused_if_new), 0});
    if (auto refused = refuse_declaration(st, spec); refused.code != 0)
      return fail(std::move(refused));
    if (st.max_queues >= 0 && static_cast<int64_t>(st.queues.size()) >= st.max_queues)
      return fail(op_result{amqp::precondition_failed,
                            "PRECONDITION_FAILED - cannot declare queue '" + spec.name +
                              "': queue limit in vhost '" + st.vhost + "' (" +
                              std::to_string(st.max_queues) + ") is reached",
                            0});
    queue_record r;
    r.spec = spec;
    r.spec.owner = nullptr;
    r.spec.stamp = next_stamp(st);
    unbury(st, st.deleted_queues, "queue", spec.name);
    if (spec.exclusive && spec.owner) {
      r.owner = spec.owner.address();
      self->monitor(spec.owner);
    }
    // Exclusive queues die with their connection, so they are never persisted.
    r.persisted = spec.durable && !spec.exclusive && persisting(st);
    persistence::queue_row row;
    if (r.persisted) {
      row = persistence::queue_row{st.vhost, spec.name, true, spec.auto_delete,
                                   encode_arguments(spec.arguments),
                                   persistence::queue_file_name(st.vhost, spec.name), 0};
      r.file = row.file;
    }
    r.actor = start_queue(self, r);
    metrics::count(metrics::node_event::queue_declared);
    metrics::count(metrics::node_event::queue_created);
    auto actor = r.actor;
    vhost_definitions change;
    change.queues.push_back(queue_location{r.spec, actor});
    replicate(self, std::move(change));
    st.queues.emplace(spec.name, std::move(r));
    queue_declared ok{0, {}, spec.name, 0, 0, actor};
    if (!row.file.empty()) {
      // declare-ok once the queue's message file exists and then the queue is in the catalog
      // (in this order, so that the catalog never names a file that is not there).
      auto rp = self->make_response_promise<queue_declared>();
      auto store = st.persist.stores[std::hash<std::string>{}(row.file) % st.persist.stores.size()];
      auto catalog = st.persist.catalog;
      auto path = st.persist.data_dir + "/" + row.file;
      self->request(store, caf::infinite, load_atom::value, path, uint64_t{0}, uint32_t{0})
        .then(
          [=](std::vector<persistence::stored_message>&) mutable {
            self->request(catalog, caf::infinite, put_atom::value, row)
              .then([=](bool) mutable { rp.deliver(ok); },
                    [=](caf::error&) mutable { rp.deliver(ok); });
          },
          [=](caf::error&) mutable { rp.deliver(ok); });
      return rp;
    }
    return ok;
  }
  auto& cur = it->second;
  if (cur.down)
    return fail(node_down(st, cur));
  if (!accessible(cur, spec.owner))
    return fail(locked(st, spec.name));
  if (!spec.passive) {
    // RabbitMQ looks at exclusivity first: a declaration that differs in it is locked out
    // whatever else differs.
    if (cur.spec.exclusive != spec.exclusive)
      return fail(locked(st, spec.name));
    if (cur.spec.durable != spec.durable)
      return fail(inequivalent(st, "queue", spec.name, "durable", bool_text(spec.durable),
                               bool_text(cur.spec.durable)));
    if (cur.spec.auto_delete != spec.auto_delete)
      return fail(inequivalent(st, "queue", spec.name, "auto_delete",
                               bool_text(spec.auto_delete), bool_text(cur.spec.auto_delete)));
    std::string detail;
    if (auto arg = inequivalent_queue_argument(cur.spec.arguments, spec.arguments, detail);
        !arg.empty())
      return fail(op_result{amqp::precondition_failed,
                            "PRECONDITION_FAILED - inequivalent arg '" + arg + "' for queue '" +
                              spec.name + "'" + where(st) + ": " + detail,
                            0});
  }
  if (!spec.passive)
    metrics::count(metrics::node_event::queue_declared);
  auto rp = self->make_response_promise<queue_declared>();
  if (cur.node.empty()) {
    rp.delegate(cur.actor, stats_atom::value);
    return rp;
  }
  // On another node, which may go away before it answers.
  auto down = node_down(st, cur);
  self->request(cur.actor, remote_timeout, stats_atom::value)
    .then([=](queue_declared& ok) mutable { rp.deliver(std::move(ok)); },
          [=](caf::error&) mutable {
            rp.deliver(queue_declared{down.code, down.text, {}, 0, 0, {}});
          });
  return rp;
}

caf::result<op_result> bind(vhost_actor_t* self, binding_spec& spec, bool add) {
  auto& st = self->state;
  if (spec.source.empty() || (spec.to_exchange && spec.destination.empty()))
    return op_result{amqp::access_refused,
                     "ACCESS_REFUSED - operation not permitted on the default exchange", 0};
  // Topic permissions, as rabbit_channel checks them: before the binding is looked at.
  if (auto s = st.exchanges.find(spec.source);
      !spec.topic_refused.empty() && s != st.exchanges.end() && s->second.spec.type == "topic")
    return op_result{amqp::access_refused, spec.topic_refused, 0};
  // As RabbitMQ orders its checks: the source exists, then the destination, the exchange
  // takes the binding, then the connection may use the queue. An unbind of what does not
  // exist is done already (RabbitMQ answers unbind-ok).
  auto src = st.exchanges.find(spec.source);
  if (src == st.exchanges.end())
    return add ? not_found(st, "exchange", spec.source) : op_result{};
  caf::actor dest;
  const queue_record* queue = nullptr;
  if (spec.to_exchange) {
    auto d = st.exchanges.find(spec.destination);
    if (d == st.exchanges.end())
      return add ? not_found(st, "exchange", spec.destination) : op_result{};
    dest = d->second.actor;
  } else {
    auto q = st.queues.find(spec.destination);
    if (q == st.queues.end())
      return add ? not_found(st, "queue", spec.destination) : op_result{};
    queue = &q->second;
    dest = q->second.actor;
  }
  if (add) {
    if (auto why = exchange::refused_binding(src->second.spec.type, spec.arguments); !why.empty())
      return op_result{amqp::precondition_failed, std::move(why), 0};
  }
  if (queue && !accessible(*queue, spec.conn))
    return locked(st, spec.destination);
  binding_record rec{spec.source, spec.destination, spec.to_exchange, spec.key, spec.arguments,
                     next_stamp(st)};
  binding_entry entry{dest, spec.destination, spec.to_exchange, spec.key, spec.arguments};
  auto existing = std::find(st.bindings.begin(), st.bindings.end(), rec);
  if (add) {
    if (existing != st.bindings.end()) {
      existing->stamp = rec.stamp;  // bound again: outlives an unbind made before elsewhere
      return op_result{};
    }
    unbury(st, st.unbound, "binding", binding_key(rec));
    st.bindings.push_back(rec);
    vhost_definitions change;
    change.bindings.push_back(to_spec(rec));
    replicate(self, std::move(change));
    auto rp = self->make_response_promise<op_result>();
    bool durable = persisting(st) && durable_binding(st, rec);
    auto row = to_row(st, rec);
    auto catalog = st.persist.catalog;
    // bind-ok once the exchange routes with it and, when durable, it is in the catalog.
    self->request(src->second.actor, caf::infinite, bind_atom::value, std::move(entry))
      .then(
        [=](op_result& r) mutable {
          if (!durable) {
            rp.deliver(std::move(r));
            return;
          }
          self->request(catalog, caf::infinite, put_atom::value, row)
            .then([=](bool) mutable { rp.deliver(op_result{}); },
                  [=](caf::error&) mutable { rp.deliver(op_result{}); });
        },
        [=](caf::error&) mutable { rp.deliver(op_result{}); });
    return rp;
  }
  if (existing == st.bindings.end())
    return op_result{};
  if (in_cluster(self))
    bury_binding(st, rec, rec.stamp);
  vhost_definitions change;
  change.unbound.push_back(to_spec(rec));  // with the stamp of the unbind
  replicate(self, std::move(change));
  drop_bindings(self, [&](const binding_record& b) { return b == rec; });
  return op_result{};
}

// Rebuilds what the catalog holds: durable exchanges, durable queues with the messages their
// files kept, and the bindings between them. Runs before any client can connect.
void recover(vhost_actor_t* self) {
  auto& st = self->state;
  auto& p = st.persist;
  for (auto& spec : p.exchanges)
    if (!st.exchanges.count(spec.name))
      st.exchanges.emplace(spec.name, make_exchange(self, spec));
  for (auto& q : p.queues) {
    queue_record r;
    r.spec = q.spec;
    r.persisted = persisting(st);
    r.file = q.file;
    r.actor = start_queue(self, r, std::move(q.messages), q.next_id, q.reload);
    st.queues.emplace(q.spec.name, std::move(r));
  }
  for (auto& b : p.bindings) {
    auto src = st.exchanges.find(b.source);
    caf::actor dest;
    if (b.to_exchange) {
      if (auto d = st.exchanges.find(b.destination); d != st.exchanges.end())
        dest = d->second.actor;
    } else if (auto q = st.queues.find(b.destination); q != st.queues.end()) {
      dest = q->second.actor;
    }
    if (src == st.exchanges.end() || !dest)
      continue;
    st.bindings.push_back(binding_record{b.source, b.destination, b.to_exchange, b.key, b.arguments});
    self->send(src->second.actor, bind_atom::value,
               binding_entry{dest, b.destination, b.to_exchange, b.key, b.arguments});
  }
  load_tombstones(st, p.deletions);
  p.exchanges.clear();
  p.queues.clear();
  p.bindings.clear();
  p.deletions.clear();
}

// Past the restart intensity the vhost stops with an error; its exchanges and queues go with
// it (linked), its connections are closed (they monitor it), and the registry decides.
void give_up(vhost_actor_t* self, const std::string& what, const caf::error& reason) {
  auto& st = self->state;
  spdlog::error("vhost '{}' gave up: more than {} restarts of its exchanges and queues within "
                "{} ms (the last: {} failed with {}); the registry decides",
                st.vhost, st.persist.limits.max_restarts, st.persist.limits.period.count(), what,
                self->home_system().render(reason));
  self->quit(caf::make_error(caf::sec::runtime_error,
                             "vhost '" + st.vhost + "' reached its restart intensity"));
}

// The exchanges bound to queue `name`, each once.
std::vector<caf::actor> sources_of(vhost_state& st, const std::string& name) {
  std::vector<caf::actor> out;
  for (auto& b : st.bindings)
    if (!b.to_exchange && b.destination == name)
      if (auto src = st.exchanges.find(b.source); src != st.exchanges.end() &&
                                                  std::find(out.begin(), out.end(),
                                                            src->second.actor) == out.end())
        out.push_back(src->second.actor);
  return out;
}

void restart_queue(vhost_actor_t* self, queue_record& q, const caf::error& reason) {
  auto& st = self->state;
  auto what = "queue '" + q.spec.name + "'" + where(st);
  if (!st.budget.allow())
    return give_up(self, what, reason);
  auto old = q.actor.address();
  // A durable queue reads its file back; a transient one starts empty (its messages are
  // lost, as in RabbitMQ).
  q.actor = start_queue(self, q, {}, 1, q.persisted);
  auto n = metrics::count_restart("queue", st.vhost, q.spec.name);
  spdlog::warn("{} crashed ({}); restarted (restart {} of this queue){}", what,
               self->home_system().render(reason), n,
               q.persisted ? ", reading its messages back from its store" : "");
  // Exchanges route to the new handle. Connections that consumed from the old one cancel
  // those consumers (they monitor it); connections that published through exchanges are
  // told, since messages on their way may have been lost.
  for (auto& src : sources_of(st, q.spec.name))
    self->send(src, rebind_atom::value, old, q.actor);
  self->send(vhost_group(self->home_system(), st.vhost), restarted_atom::value, old);
  vhost_definitions change;  // the other nodes route to the new handle too
  change.queues.push_back(queue_location{q.spec, q.actor});
  replicate(self, std::move(change));
}

// Exchange `x` runs under a new actor (restarted, or redefined by another node) where `old`
// ran: it gets its own bindings, before any publish can reach it, and the exchanges bound to
// it route to the new actor. Returns how many bindings it got.
size_t bind_again(vhost_actor_t* self, const exchange_record& x, const caf::actor_addr& old) {
  auto& st = self->state;
  size_t rebound = 0;
  for (auto& b : st.bindings) {
    if (b.source == x.spec.name) {
      if (auto dest = destination_actor(st, b)) {
        self->send(x.actor, bind_atom::value,
                   binding_entry{dest, b.destination, b.to_exchange, b.key, b.arguments});
        ++rebound;
      }
    } else if (b.to_exchange && b.destination == x.spec.name) {
      if (auto src = st.exchanges.find(b.source); src != st.exchanges.end())
        self->send(src->second.actor, rebind_atom::value, old, x.actor);
    }
  }
  return rebound;
}

void restart_exchange(vhost_actor_t* self, const std::string& name, const caf::error& reason) {
  auto& st = self->state;
  auto what = "exchange '" + name + "'" + where(st);
  if (!st.budget.allow())
    return give_up(self, what, reason);
  auto& x = st.exchanges[name];
  auto old = x.actor.address();
  x.actor = make_exchange(self, x.spec).actor;
  auto n = metrics::count_restart("exchange", st.vhost, name);
  auto rebound = bind_again(self, x, old);
  spdlog::warn("{} crashed ({}); restarted with {} binding(s) (restart {} of this exchange)",
               what, self->home_system().render(reason), rebound, n);
}

void moved(vhost_actor_t* self, const caf::actor_addr& old, bool all = true);
void stays_here(vhost_actor_t* self, const caf::actor_addr& old, const caf::error* crash);

// One of the linked actors ended. Exchanges and queues that stopped on purpose (deleted) are
// no longer in the maps, or ended normally; any other end is a crash.
void on_child_exit(vhost_actor_t* self, caf::exit_msg& em) {
  auto& st = self->state;
  if (st.persist.supervisor && em.source == st.persist.supervisor) {
    self->quit(em.reason);  // the registry is going: so do we, and our children with us
    return;
  }
  if (st.yielding.count(em.source)) {  // a queue that yields ended mid-move
    if (!em.reason || em.reason == caf::exit_reason::normal)
      moved(self, em.source, false);  // stopped mid-move: what it kept stays in its file
    else
      stays_here(self, em.source, &em.reason);
    return;
  }
  if (!em.reason || em.reason == caf::exit_reason::normal)
    return;
  for (auto& [name, q] : st.queues)
    if (q.actor.address() == em.source)
      return restart_queue(self, q, em.reason);
  for (auto& [name, x] : st.exchanges)
    if (x.actor.address() == em.source)
      return restart_exchange(self, name, em.reason);
  // A queue or exchange that was already deleted failed on its way out: nothing to restart.
}

// Cluster (cluster/definitions.hpp): the definitions of other nodes, applied here.

// Tells the exchanges bound to queue `q` to route to it (bind) or no longer (unbind).
void route_to(vhost_actor_t* self, const queue_record& q, bool bind) {
  auto& st = self->state;
  for (auto& b : st.bindings)
    if (!b.to_exchange && b.destination == q.spec.name)
      if (auto src = st.exchanges.find(b.source); src != st.exchanges.end()) {
        binding_entry e{q.actor, b.destination, false, b.key, b.arguments};
        if (bind)
          self->send(src->second.actor, bind_atom::value, std::move(e));
        else
          self->send(src->second.actor, unbind_atom::value, std::move(e));
      }
}

// Of two queues of one name, whether the one declared at `stamp` on `node` stays: the earlier
// declaration does (the node's name decides a tie).
bool stays(uint64_t stamp, const std::string& node, uint64_t other_stamp,
           const std::string& other_node) {
  return std::tie(stamp, node) < std::tie(other_stamp, other_node);
}

// The queue here yields to the one of the same name on node `from` (cluster/definitions.hpp):
// it sends its messages there and ends, and this node routes to that one from now on. It stays
// this node's (in the catalog, with its file, and linked) until its move is done (moved), or
// comes back if the move cannot end (stays_here).
void yield_queue(vhost_actor_t* self, queue_record& r, queue_location& q,
                 const std::string& from) {
  auto& st = self->state;
  spdlog::warn("queue '{}'{} was declared on this node and, earlier, on {}: the queue of {} "
               "stays and this node's moves its messages there",
               r.spec.name, where(st), from, from);
  self->send(r.actor, yield_atom::value, q.actor, from);
  st.yielding[r.actor.address()] = yielding_queue{r, q.actor};
  r.spec = std::move(q.spec);
  r.actor = std::move(q.actor);
  r.node = from;
  r.down = false;
  r.persisted = false;
  r.file.clear();
  r.owner = nullptr;
  // Exchanges and connections go on sending to the old queue while it moves its messages:
  // what they send waits there and follows the moved messages (moved()).
}

// The yielding queue whose actor is `old`, taken out of the list; none if it is not there.
std::optional<yielding_queue> take_yielding(vhost_state& st, const caf::actor_addr& old) {
  auto it = st.yielding.find(old);
  if (it == st.yielding.end())
    return std::nullopt;
  auto y = std::move(it->second);
  st.yielding.erase(it);
  return y;
}

// The queue here that yielded (actor `old`) has moved its messages, and what was sent to it
// meanwhile (`all`; or it was stopped before it could, and what it kept stays in its file and
// in the catalog, to be settled again when this node starts): exchanges and connections route
// to the queue of its name from now on. So no publisher's messages overtake its earlier ones.
void moved(vhost_actor_t* self, const caf::actor_addr& old, bool all) {
  auto& st = self->state;
  auto found = take_yielding(st, old);
  if (!found)
    return;
  auto& y = *found;
  self->unlink_from(y.record.actor);  // it ends on purpose
  auto& name = y.record.spec.name;
  if (y.record.persisted && all)  // its file went with the move
    self->send(st.persist.catalog, delete_atom::value, queue_atom::value, st.vhost, name);
  if (auto q = st.queues.find(name); q != st.queues.end())
    for (auto& src : sources_of(st, name))
      self->send(src, rebind_atom::value, old, q->second.actor);
  self->send(vhost_group(self->home_system(), st.vhost), restarted_atom::value, old);
}

// The queue here that yielded (actor `old`) could not finish its move: the queue it moved to
// went away (`crash` null: `old` goes on as a queue, with what that one had not confirmed), or
// `old` itself ended with `crash` (it starts again from its store). If the name has another
// live queue by now (the one it moved to, restarted), the move starts over with that one; if
// the name was deleted meanwhile, this one goes too; otherwise it is the queue of that name
// here again, and the other nodes are told. Nothing it had but did not hand over is lost.
void stays_here(vhost_actor_t* self, const caf::actor_addr& old, const caf::error* crash) {
  auto& st = self->state;
  auto found = take_yielding(st, old);
  if (!found)
    return;
  auto& y = *found;
  auto name = y.record.spec.name;
  auto cur = st.queues.find(name);
  if (cur == st.queues.end() &&
      outlived(deleted_at(st.deleted_queues, name), y.record.spec.stamp)) {
    spdlog::info("queue '{}'{} was deleted while it moved its messages: it goes too", name,
                 where(st));
    if (!crash) {
      self->unlink_from(y.record.actor);
      self->send(y.record.actor, stop_atom::value);  // (its file goes with it)
    } else if (y.record.persisted) {
      auto& file = y.record.file;
      self->send(st.persist.stores[std::hash<std::string>{}(file) % st.persist.stores.size()],
                 destroy_atom::value, st.persist.data_dir + "/" + file);
    }
    if (y.record.persisted)
      self->send(st.persist.catalog, delete_atom::value, queue_atom::value, st.vhost, name);
    return;
  }
  auto r = std::move(y.record);
  if (crash) {  // from its store, as a crashed queue is restarted
    r.actor = start_queue(self, r, {}, 1, r.persisted);
    spdlog::warn("queue '{}'{} ended while it moved its messages ({}); started again{}", name,
                 where(st), self->home_system().render(*crash),
                 r.persisted ? ", reading what it had not handed over from its store" : "");
    for (auto& src : sources_of(st, name))
      self->send(src, rebind_atom::value, old, r.actor);
    self->send(vhost_group(self->home_system(), st.vhost), restarted_atom::value, old);
  }
  if (cur != st.queues.end()) {
    auto& other = cur->second;
    bool gone = !other.node.empty() && (other.down || other.actor == y.winner);
    if (!gone) {
      spdlog::warn("queue '{}'{}: the queue it moved its messages to went away; it moves them "
                   "to the one of that name on {} now",
                   name, where(st), other.node.empty() ? "this node" : other.node);
      self->send(r.actor, yield_atom::value, other.actor,
                 other.node.empty() ? st.persist.node : other.node);
      st.yielding[r.actor.address()] = yielding_queue{std::move(r), other.actor};
      return;
    }
  }
  spdlog::warn("queue '{}'{} stays on this node: the queue it moved its messages to went away "
               "before it had them all",
               name, where(st));
  auto& q = st.queues[name] = std::move(r);
  route_to(self, q, true);
  if (!crash)  // a policy change that came during the move was dropped there
    send_policy(self, q);
  vhost_definitions change;  // the other nodes learn where it is (they settle the name again)
  change.queues.push_back(queue_location{q.spec, q.actor});
  replicate(self, std::move(change));
}

// A queue that lives on node `from`, as that node announced it (declared, restarted, or all
// of its queues when the two nodes meet).
void locate_queue(vhost_actor_t* self, queue_location& q, const std::string& from) {
  auto& st = self->state;
  saw_stamp(st, q.spec.stamp);
  auto& name = q.spec.name;
  if (outlived(deleted_at(st.deleted_queues, name), q.spec.stamp))
    return;  // deleted after it was declared (this node tells `from` so)
  auto it = st.queues.find(name);
  if (it == st.queues.end()) {
    unbury(st, st.deleted_queues, "queue", name);
    queue_record r;
    r.spec = std::move(q.spec);
    r.actor = std::move(q.actor);
    r.node = from;
    st.queues.emplace(r.spec.name, std::move(r));
    return;
  }
  auto& r = it->second;
  if (r.node.empty()) {
    if (!stays(r.spec.stamp, st.persist.node, q.spec.stamp, from))
      return yield_queue(self, r, q, from);
    return;  // this one stays: node `from` yields when it learns of it
  }
  if (r.node != from && stays(r.spec.stamp, r.node, q.spec.stamp, from))
    return;  // one name on two other nodes: the one that stays is known here already
  auto old = r.actor;
  bool was_down = r.down;
  r.spec = std::move(q.spec);
  r.actor = std::move(q.actor);
  r.node = from;
  r.down = false;
  if (old == r.actor && !was_down)
    return;
  if (was_down) {
    route_to(self, r, true);
    spdlog::info("queue '{}'{} is back on node {}", r.spec.name, where(st), from);
    return;
  }
  // Restarted there: exchanges route to the new handle; publishers on their way may have lost
  // messages with the old one.
  for (auto& src : sources_of(st, r.spec.name))
    self->send(src, rebind_atom::value, old.address(), r.actor);
  self->send(vhost_group(self->home_system(), st.vhost), restarted_atom::value, old.address());
}

// A binding another node made (or has), when both of its ends are known here and it was not
// unbound after it was made.
void add_remote_binding(vhost_actor_t* self, const binding_spec& b) {
  auto& st = self->state;
  saw_stamp(st, b.stamp);
  binding_record rec{b.source, b.destination, b.to_exchange, b.key, b.arguments, b.stamp};
  if (outlived(unbound_at(st, rec), b.stamp))
    return;
  if (auto known = std::find(st.bindings.begin(), st.bindings.end(), rec);
      known != st.bindings.end()) {
    known->stamp = std::max(known->stamp, b.stamp);
    return;
  }
  unbury(st, st.unbound, "binding", binding_key(rec));
  auto src = st.exchanges.find(b.source);
  if (src == st.exchanges.end())
    return;
  caf::actor dest;
  bool routed = true;
  if (b.to_exchange) {
    auto d = st.exchanges.find(b.destination);
    if (d == st.exchanges.end())
      return;
    dest = d->second.actor;
  } else {
    auto q = st.queues.find(b.destination);
    if (q == st.queues.end())
      return;
    dest = q->second.actor;
    routed = !q->second.down;  // bound to the exchange once its node is back
  }
  st.bindings.push_back(rec);
  if (routed)
    self->send(src->second.actor, bind_atom::value,
               binding_entry{dest, b.destination, b.to_exchange, b.key, b.arguments});
  if (persisting(st) && durable_binding(st, rec))
    self->send(st.persist.catalog, put_atom::value, to_row(st, rec));
}

// Queues of another node that go from this node's view only (their node left, or went down
// with them, or no longer has them): the deletion is not sent on and leaves no tombstone.
void forget_queues(vhost_actor_t* self, const std::vector<std::string>& names) {
  auto& st = self->state;
  auto applying = std::exchange(st.from_cluster, true);
  for (auto& name : names)
    delete_queue(self, name, false);
  st.from_cluster = applying;
}

// Queues that live on node `from` but that its full snapshot taken at `taken` lacks: deleted
// there (while the two were apart, or while it was down). Queues it declared after `taken`
// are not in that snapshot and stay.
void drop_queues_gone_from(vhost_actor_t* self, const std::set<std::string>& there,
                           uint64_t taken, const std::string& from) {
  auto& st = self->state;
  std::vector<std::string> gone;
  for (auto& [name, q] : st.queues)
    if (q.node == from && q.spec.stamp < taken && !there.count(name))
      gone.push_back(name);
  for (auto& name : gone)
    spdlog::info("queue '{}'{} is no longer on node {}", name, where(st), from);
  forget_queues(self, gone);
}

// Deletions of queues or exchanges (`records`) made on another node: one declared here before
// the deletion goes (`erase`); the tombstone is kept here for the nodes that were not there.
template <class Records, class Erase>
void apply_tombstones(vhost_state& st, const std::vector<tombstone>& tombs, Records& records,
                      std::map<std::string, uint64_t>& kept, const char* kind, Erase erase) {
  for (auto& t : tombs) {
    saw_stamp(st, t.stamp);
    auto it = records.find(t.name);
    if (it == records.end())
      bury(st, kept, kind, t.name, t.stamp);
    else if (it->second.spec.stamp <= t.stamp)
      erase(t);
  }
}

bool same_definition(const exchange_spec& a, const exchange_spec& b) {
  return a.type == b.type && a.durable == b.durable && a.auto_delete == b.auto_delete &&
         a.internal == b.internal && a.arguments == b.arguments;
}

// Of two definitions of one exchange, whether `a` replaces `b`: the later declaration does
// (last writer wins, as deletions do); a tie goes by the definitions, the same on every node.
bool replaces(const exchange_spec& a, const exchange_spec& b) {
  auto order = [](const exchange_spec& x) {
    return std::make_tuple(x.stamp, x.type, x.durable, x.auto_delete, x.internal,
                           encode_arguments(x.arguments));
  };
  return order(b) < order(a);
}

// Node `from` has exchange `x` as `spec`, declared later than it is here (two nodes that were
// apart, or two declarations at the same moment): the exchange here takes that definition,
// under a new actor, and keeps its bindings. Connections that cached the old actor see it
// end, and nack what they sent it, as when an exchange restarts.
void redefine_exchange(vhost_actor_t* self, exchange_record& x, const exchange_spec& spec,
                       const std::string& from) {
  auto& st = self->state;
  spdlog::warn("exchange '{}'{} was declared here as {}{} and, later, on {} as {}{}: it is "
               "the latter from now on",
               spec.name, where(st), x.spec.durable ? "durable " : "", x.spec.type, from,
               spec.durable ? "durable " : "", spec.type);
  auto old = x.actor;
  bool was_durable = x.spec.durable;
  self->unlink_from(old);  // it ends on purpose
  self->send(old, stop_atom::value);
  x = make_exchange(self, spec);
  bind_again(self, x, old.address());
  if (!persisting(st))
    return;
  if (spec.durable) {
    self->send(st.persist.catalog, put_atom::value, to_row(st, spec));
    for (auto& b : st.bindings)  // durable now if their other end is
      if ((b.source == spec.name || (b.to_exchange && b.destination == spec.name)) &&
          durable_binding(st, b))
        self->send(st.persist.catalog, put_atom::value, to_row(st, b));
  } else if (was_durable) {  // the catalog drops its bindings too
    self->send(st.persist.catalog, delete_atom::value, exchange_atom::value, st.vhost,
               spec.name);
  }
}

void apply_remote(vhost_actor_t* self, vhost_definitions& d, const std::string& from) {
  auto& st = self->state;
  st.from_cluster = true;
  saw_stamp(st, d.taken);
  for (auto& spec : d.exchanges) {
    saw_stamp(st, spec.stamp);
    if (outlived(deleted_at(st.deleted_exchanges, spec.name), spec.stamp))
      continue;  // deleted here after it was declared there
    spec.passive = false;
    spec.refused_if_new.clear();
    if (auto known = st.exchanges.find(spec.name); known != st.exchanges.end()) {
      auto& cur = known->second.spec;
      if (same_definition(cur, spec))  // declared as late as either says
        cur.stamp = std::max(cur.stamp, spec.stamp);
      else if (replaces(spec, cur))
        redefine_exchange(self, known->second, spec, from);
      // else this node's stays: node `from` takes it when it learns of it
      continue;
    }
    unbury(st, st.deleted_exchanges, "exchange", spec.name);
    st.exchanges.emplace(spec.name, make_exchange(self, spec));
    if (spec.durable && persisting(st))
      self->send(st.persist.catalog, put_atom::value, to_row(st, spec));
  }
  std::set<std::string> there;  // (locate_queue takes the specs)
  for (auto& q : d.queues)
    there.insert(q.spec.name);
  for (auto& q : d.queues)
    locate_queue(self, q, from);
  if (d.taken)
    drop_queues_gone_from(self, there, d.taken, from);
  for (auto& b : d.bindings)
    add_remote_binding(self, b);
  // Deletions: what was made here before them goes; what was made after them stays.
  for (auto& b : d.unbound) {
    saw_stamp(st, b.stamp);
    binding_record rec{b.source, b.destination, b.to_exchange, b.key, b.arguments};
    bury_binding(st, rec, b.stamp);
    drop_bindings(self, [&](const binding_record& r) { return r == rec && r.stamp <= b.stamp; });
  }
  apply_tombstones(st, d.deleted_queues, st.queues, st.deleted_queues, "queue",
                   [&](const tombstone& t) { delete_queue(self, t.name, true, t.stamp); });
  apply_tombstones(st, d.deleted_exchanges, st.exchanges, st.deleted_exchanges, "exchange",
                   [&](const tombstone& t) { delete_exchange(self, t.name, t.stamp); });
  st.from_cluster = false;
}

// Node `node` is out of reach: its queues take nothing until it is back (RabbitMQ drops what
// is routed to them meanwhile). Publishers are told, as when a queue here restarts: what
// they sent those queues through exchanges may be lost, and its confirms become nacks.
// Its transient queues are deleted here, as RabbitMQ does (they come back if the node does
// and still has them).
void on_node_down(vhost_actor_t* self, const std::string& node) {
  auto& st = self->state;
  std::vector<std::string> transient;
  for (auto& [name, q] : st.queues) {
    if (q.node != node)
      continue;
    if (!q.spec.durable) {
      transient.push_back(name);
    } else if (!q.down) {
      q.down = true;
      route_to(self, q, false);
      self->send(vhost_group(self->home_system(), st.vhost), restarted_atom::value,
                 q.actor.address());
    }
  }
  forget_queues(self, transient);
}

// Node `node` left the cluster: its queues are no longer known here.
void forget_node(vhost_actor_t* self, const std::string& node) {
  auto& st = self->state;
  std::vector<std::string> gone;
  for (auto& [name, q] : st.queues)
    if (q.node == node)
      gone.push_back(name);
  forget_queues(self, gone);
}

// What this node has in this vhost: every exchange and binding, the queues that live here,
// and the deletions it keeps.
vhost_definitions snapshot(vhost_state& st) {
  vhost_definitions d;
  d.vhost = st.vhost;
  d.taken = next_stamp(st);
  for (auto& [name, stamp] : st.deleted_exchanges)
    d.deleted_exchanges.push_back(tombstone{name, stamp});
  for (auto& [name, stamp] : st.deleted_queues)
    d.deleted_queues.push_back(tombstone{name, stamp});
  for (auto& [key, b] : st.unbound) {
    d.unbound.push_back(to_spec(b.first));
    d.unbound.back().stamp = b.second;
  }
  for (auto& [name, x] : st.exchanges)
    d.exchanges.push_back(x.spec);
  for (auto& [name, q] : st.queues)
    if (q.node.empty())
      d.queues.push_back(queue_location{q.spec, q.actor});
  for (auto& b : st.bindings)
    d.bindings.push_back(to_spec(b));
  return d;
}

}  // namespace

void add_catalog_rows(const persistence::catalog_snapshot& snap, const std::string& vhost,
                      vhost_persistence& out) {
  for (auto& x : snap.exchanges)
    if (x.vhost == vhost)
      out.exchanges.push_back(exchange_spec{x.name, x.type, false, true, x.auto_delete,
                                            x.internal, decode_arguments(x.arguments)});
  for (auto& q : snap.queues) {
    if (q.vhost != vhost)
      continue;
    vhost_persistence::recovered_queue rq;
    rq.spec = queue_spec{q.name, false, true, false, q.auto_delete,
                         decode_arguments(q.arguments), {}};
    rq.file = q.file.empty() ? persistence::queue_file_name(q.vhost, q.name) : q.file;
    rq.reload = true;
    out.queues.push_back(std::move(rq));
  }
  for (auto& b : snap.bindings)
    if (b.vhost == vhost)
      out.bindings.push_back(binding_spec{b.source, b.destination, b.to_exchange, b.key,
                                          decode_arguments(b.arguments), {}});
  for (auto& d : snap.deletions)
    if (d.scope == vhost && d.kind != "registry")
      out.deletions.push_back(d);
}

std::string encode_arguments(const amqp::field_table& t) {
  std::string out;
  amqp::writer w{out};
  w.table(t);
  return out;
}

amqp::field_table decode_arguments(const std::string& bytes) {
  if (bytes.empty())
    return {};
  amqp::reader r{bytes};
  auto t = r.table();
  return r.failed() ? amqp::field_table{} : t;
}

caf::actor spawn_vhost(caf::actor_system& sys, std::string name, vhost_persistence persist) {
  auto init = [](vhost_actor_t* self, std::string name,
                 vhost_persistence persist) -> caf::behavior {
    install_defaults(self, "vhost");
    self->state.vhost = name;
    self->state.persist = std::move(persist);
    self->state.budget = sup::restart_budget{self->state.persist.limits};
    self->set_exit_handler([=](caf::exit_msg& em) { on_child_exit(self, em); });
    on_crash(self, [self](const std::string& what) {
      spdlog::error("vhost '{}' crashed: {}", self->state.vhost, what);
    });
    declare_defaults(self);
    auto catalog = self->state.persist.catalog;
    if (self->state.persist.reload && catalog) {
      // Restarted: what is durable comes from the catalog; nothing is served before.
      self->request(catalog, caf::infinite, list_atom::value)
        .await(
          [=](persistence::catalog_snapshot& snap) {
            add_catalog_rows(snap, self->state.vhost, self->state.persist);
            recover(self);
            // The catalog has this node's queues only, under new handles now: the node meets
            // the others again, to learn theirs and to tell them these.
            if (auto cluster = current_cluster(self->home_system()))
              self->send(cluster, hello_atom::value);
            spdlog::info("vhost '{}' restarted: {} exchange(s), {} queue(s) and {} binding(s) "
                         "from the catalog",
                         self->state.vhost, self->state.exchanges.size(),
                         self->state.queues.size(), self->state.bindings.size());
          },
          [=](caf::error& err) {
            spdlog::error("vhost '{}' restarted without its durable definitions: {}",
                          self->state.vhost, self->home_system().render(err));
          });
    } else {
      recover(self);
    }
    self->set_down_handler([=](caf::down_msg& dm) {
      // An exclusive queue's connection went away: delete its queues.
      std::vector<std::string> doomed;
      for (auto& [qname, q] : self->state.queues)
        if (q.owner == dm.source)
          doomed.push_back(qname);
      for (auto& q : doomed)
        delete_queue(self, q);
      auto& rt = self->state.reply_to;
      for (auto it = rt.begin(); it != rt.end();)
        it = it->second.address() == dm.source ? rt.erase(it) : std::next(it);
    });
    return {
      [=](declare_atom, exchange_atom, exchange_spec& spec) { return declare_exchange(self, spec); },
      [=](delete_atom, exchange_atom, std::string& name, bool if_unused) {
        return delete_exchange_checked(self, name, if_unused);
      },
      [=](declare_atom, queue_atom, queue_spec& spec) { return declare_queue(self, spec); },
      [=](limit_atom, int64_t max_queues) { self->state.max_queues = max_queues; },
      [=](policy_atom, std::vector<policy_info>& policies) {
        self->state.policies = policy_set{std::move(policies)};
        apply_policies(self);
      },
      [=](delete_atom, queue_atom, std::string& name, caf::actor& conn, bool if_unused,
          bool if_empty) -> caf::result<op_result> {
        auto& st = self->state;
        auto it = st.queues.find(name);
        if (it == st.queues.end())
          return op_result{};  // idempotent, as in RabbitMQ 3.x
        if (it->second.down)
          return node_down(st, it->second);
        if (!accessible(it->second, conn))
          return locked(st, name);
        if ((if_unused || if_empty) && is_quorum(it->second.spec.arguments))
          return op_result{amqp::not_implemented,
                           "NOT_IMPLEMENTED - cannot delete queue '" + name + "'" + where(st) +
                             ". queue.delete operations with " +
                             (if_unused ? "if-unused" : "if-empty") +
                             " flag set are not supported by quorum queues",
                           0};
        auto rp = self->make_response_promise<op_result>();
        auto actor = it->second.actor;
        self->request(actor, remote_timeout, check_atom::value, if_unused, if_empty)
          .then(
            [=](op_result& r) mutable {
              if (r.code == 0) {
                auto cur = self->state.queues.find(name);
                if (cur != self->state.queues.end() && cur->second.actor == actor)
                  delete_queue(self, name);
              }
              rp.deliver(std::move(r));
            },
            [=](caf::error&) mutable { rp.deliver(op_result{}); });
        return rp;
      },
      [=](purge_atom, std::string& name, caf::actor& conn) -> caf::result<op_result> {
        auto& st = self->state;
        auto it = st.queues.find(name);
        if (it == st.queues.end())
          return not_found(st, "queue", name);
        if (it->second.down)
          return node_down(st, it->second);
        if (!accessible(it->second, conn))
          return locked(st, name);
        auto rp = self->make_response_promise<op_result>();
        auto down = node_down(st, it->second);
        self->request(it->second.actor, remote_timeout, purge_atom::value)
          .then([=](op_result& r) mutable { rp.deliver(std::move(r)); },
                [=](caf::error&) mutable { rp.deliver(down); });
        return rp;
      },
      [=](bind_atom, binding_spec& spec) { return bind(self, spec, true); },
      [=](unbind_atom, binding_spec& spec) { return bind(self, spec, false); },
      [=](lookup_atom, exchange_atom, std::string& name) -> lookup_result {
        auto& st = self->state;
        auto it = st.exchanges.find(name);
        if (it == st.exchanges.end()) {
          auto r = not_found(st, "exchange", name);
          return lookup_result{r.code, std::move(r.text), {}, false};
        }
        return lookup_result{0, {}, it->second.actor, it->second.spec.internal,
                             it->second.spec.type == "topic"};
      },
      [=](lookup_atom, queue_atom, std::string& name, caf::actor& conn) -> lookup_result {
        auto& st = self->state;
        auto it = st.queues.find(name);
        if (it == st.queues.end()) {
          auto r = not_found(st, "queue", name);
          return lookup_result{r.code, std::move(r.text), {}, false};
        }
        if (it->second.down) {
          auto r = node_down(st, it->second);
          return lookup_result{r.code, std::move(r.text), {}, false};
        }
        if (conn && !accessible(it->second, conn)) {  // publishers pass no connection
          auto r = locked(st, name);
          return lookup_result{r.code, std::move(r.text), {}, false};
        }
        return lookup_result{0, {}, it->second.actor, false};
      },
      [=](route_atom, std::string& exchange_name, publish_batch& b) {
        auto& st = self->state;
        if (exchange_name.empty()) {
          // Dead letters for the default exchange: to the queues their routing key, CC and
          // BCC name, once each.
          std::map<std::string, publish_batch, std::less<>> to;
          std::vector<std::string_view> keys;
          for (auto& item : b.items) {
            keys.assign(1, item.msg->routing_key());
            item.msg->each_extra_route([&](std::string_view k) { keys.push_back(k); });
            std::sort(keys.begin(), keys.end());
            keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
            for (auto key : keys) {
              if (st.queues.find(std::string{key}) == st.queues.end())
                continue;
              auto& out = to[std::string{key}];
              out.hops = b.hops + 1;
              out.items.push_back(item);
            }
          }
          for (auto& [key, out] : to)
            self->send(st.queues.find(key)->second.actor, publish_atom::value, std::move(out));
          return;
        }
        auto it = st.exchanges.find(exchange_name);
        if (it != st.exchanges.end()) {
          self->send(it->second.actor, publish_atom::value, std::move(b));
          return;
        }
        // No such alternate exchange: the messages are unroutable.
        route_report report;
        report.channel = b.channel;
        for (auto& item : b.items)
          if (item.weight)
            report.returns.push_back(weight_return{item.seq, item.weight, false, false});
        if (b.publisher)
          self->send(b.publisher, routed_atom::value, std::move(report));
      },
      [](op_result&) {
        // Answer of an exchange to an unbind sent without waiting: nothing to do.
      },
      [](bool) {
        // Answer of the catalog to a change sent without waiting.
      },
      [=](reply_to_atom, std::string& token, caf::actor& conn) {
        self->monitor(conn);
        self->state.reply_to[token] = conn;
      },
      [=](lookup_atom, reply_to_atom, std::string& token) -> caf::result<lookup_result> {
        auto it = self->state.reply_to.find(token);
        if (it != self->state.reply_to.end())
          return lookup_result{0, {}, it->second, false};
        // A reply-to name of a client of another node: that node knows it.
        if (auto cluster = current_cluster(self->home_system())) {
          auto rp = self->make_response_promise<lookup_result>();
          rp.delegate(cluster, lookup_atom::value, reply_to_atom::value, self->state.vhost,
                      std::move(token));
          return rp;
        }
        return lookup_result{amqp::not_found, "NOT_FOUND", {}, false};
      },
      [=](lookup_atom, reply_to_atom, std::string& token, bool /* this node only */) {
        auto it = self->state.reply_to.find(token);
        if (it == self->state.reply_to.end())
          return lookup_result{amqp::not_found, "NOT_FOUND", {}, false};
        return lookup_result{0, {}, it->second, false};
      },
      [=](list_atom, exchange_atom) {
        std::vector<exchange_info> out;
        for (auto& [name, x] : self->state.exchanges)
          out.push_back(exchange_info{name, x.spec.type, x.spec.durable, x.spec.auto_delete,
                                      x.spec.internal, x.spec.arguments, x.actor});
        return out;
      },
      [=](list_atom, queue_atom) {
        std::vector<queue_info> out;
        for (auto& [name, q] : self->state.queues)
          out.push_back(queue_info{name, q.spec.durable, q.spec.exclusive, q.spec.auto_delete,
                                   q.spec.arguments, q.actor, q.owner, q.node, q.down});
        return out;
      },
      [=](list_atom, binding_atom) {
        std::vector<binding_info> out;
        for (auto& b : self->state.bindings)
          out.push_back(binding_info{b.source, b.destination, b.to_exchange, b.key, b.arguments});
        return out;
      },
      [=](delete_atom, vhost_atom) {
        // The registry removed this vhost from the catalog: stop everything, files included.
        auto& st = self->state;
        spdlog::info("deleting vhost '{}': {} exchange(s), {} queue(s)", st.vhost,
                     st.exchanges.size(), st.queues.size());
        for (auto& [name, q] : st.queues)
          if (q.node.empty())
            self->send(q.actor, stop_atom::value);
        for (auto& [name, x] : st.exchanges)
          self->send(x.actor, stop_atom::value);
        st.queues.clear();
        st.exchanges.clear();
        st.bindings.clear();
        self->quit();
        return true;
      },
      [=](crash_atom, caf::atom_value kind, std::string& name) {
        auto target = queue_or_exchange(self->state, kind, name);
        if (target)
          self->send(target, crash_atom::value);
        return target != nullptr;
      },
      [=](stall_atom, caf::atom_value kind, std::string& name, uint32_t ms) {
        auto target = queue_or_exchange(self->state, kind, name);
        if (target)
          self->send(target, stall_atom::value, ms);
        return target != nullptr;
      },
      [=](crash_atom) { inject_fault("vhost '" + self->state.vhost + "'"); },
      [=](cluster_atom, vhost_definitions& d, std::string& from) { apply_remote(self, d, from); },
      [=](cluster_atom, node_down_atom, std::string& node) { on_node_down(self, node); },
      [=](cluster_atom, forget_atom, std::string& node) { forget_node(self, node); },
      [=](cluster_atom, snapshot_atom) { return snapshot(self->state); },
      [=](cluster_atom, prune_atom, uint64_t before) { prune_tombstones(self->state, before); },
      [=](yield_atom, caf::actor_addr& old) { moved(self, old); },
      [=](resume_atom, caf::actor_addr& old) { stays_here(self, old, nullptr); },
      [=](autodel_atom, std::string& name, caf::actor& queue) {
        auto it = self->state.queues.find(name);
        if (it != self->state.queues.end() && it->second.actor == queue)
          delete_queue(self, name);
      },
      [=](unused_atom, std::string& name, caf::actor& queue) {
        // x-expires: the queue found itself unused. Asked again while this actor takes nothing
        // else, so that no declare can slip in between the answer and the delete.
        auto it = self->state.queues.find(name);
        if (it == self->state.queues.end() || it->second.actor != queue)
          return;
        self->request(queue, std::chrono::seconds(5), unused_atom::value)
          .await(
            [=](bool unused) {
              auto it = self->state.queues.find(name);
              if (unused && it != self->state.queues.end() && it->second.actor == queue)
                delete_queue(self, name);
            },
            [](caf::error&) {});
      },
    };
  };
  // A thread of its own: declarations and the management API's lists must not wait behind
  // the connection and queue actors that fill the workers' queues under load.
  return sys.spawn<caf::detached>(init, std::move(name), std::move(persist));
}

}  // namespace warren
