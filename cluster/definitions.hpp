// What nodes of a cluster tell each other about the definitions of a vhost, and the types of
// the cluster actor's protocol (cluster_actor.hpp).
//
// Every node keeps every definition: its own exchange actors (with the same bindings), and
// for each queue either the queue's actor (the queue lives here) or a handle of the actor on
// the node where it lives. A `vhost_definitions` is either what one node has (sent when two
// nodes meet; `taken` is then set) or one change (sent as it happens); the receiver applies
// it the same way.
//
// Nodes that were apart (one was down, or a partition) meet again with what each did
// meanwhile, and settle it so (last writer wins, by stamps: microseconds of the wall clock
// of the node that made the change, never below a stamp that node has seen):
// - Every definition carries the stamp of its declaration; every deletion a tombstone with
//   the stamp of the deletion. A definition older than a tombstone of its name is deleted
//   where it is, and is not taken where the tombstone is. Nodes keep tombstones (in their
//   catalogs too, across restarts) while a member is not running, and keep_deletions
//   (cluster_config) beyond that (the cluster actor says when they may go: prune_atom).
// - A node is the authority on the queues that live on it: a queue that a full snapshot of
//   its node lacks, and that is older than the snapshot, is gone there, and goes here.
// - One name, two queues (declared on two nodes that were apart, or at the same moment):
//   the earlier declaration stays (stamp, then node name). The other queue's node cancels
//   its consumers, moves its messages to the one that stays (the queue yields,
//   actors/handover.hpp), and routes to that one from then on. Streams too. If the one that
//   stays goes away mid-move, the other keeps what was not confirmed and is the queue of
//   that name on its node again, until the two meet again (vhost_actor.cpp, stays_here).
// - One name, two definitions of an exchange: the later declaration wins (stamp, then the
//   definitions themselves); where the other one was, the exchange is made anew with the
//   winning definition and keeps its bindings.
// - A transient queue of a node that goes down is deleted here (RabbitMQ does so); it comes
//   back if the node does and still has it.
#pragma once

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "actors/messages.hpp"

namespace warren {

// A queue as the nodes where it does not live know it.
struct queue_location {
  queue_spec spec;
  caf::actor actor;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_location& x) {
  return f(caf::meta::type_name("queue_location"), x.spec, x.actor);
}

// A deletion: the name, and when it was deleted.
struct tombstone {
  std::string name;
  uint64_t stamp = 0;
  bool operator==(const tombstone&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tombstone& x) {
  return f(caf::meta::type_name("tombstone"), x.name, x.stamp);
}

// A stamp for a change made now: the wall clock in microseconds, and later than `last` (the
// last stamp made or seen here), which it becomes: a change that follows another one is
// later everywhere.
inline uint64_t next_stamp(uint64_t& last) {
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  last = std::max(last + 1, static_cast<uint64_t>(now));
  return last;
}

struct vhost_definitions {
  std::string vhost;
  std::vector<exchange_spec> exchanges;
  std::vector<queue_location> queues;  // queues that live on the sending node
  std::vector<binding_spec> bindings;
  std::vector<tombstone> deleted_exchanges;
  std::vector<tombstone> deleted_queues;
  std::vector<binding_spec> unbound;  // each with the stamp of its unbind
  uint64_t taken = 0;  // a full snapshot of the sending node: its stamp when it was taken

  bool empty() const {
    return exchanges.empty() && queues.empty() && bindings.empty() &&
           deleted_exchanges.empty() && deleted_queues.empty() && unbound.empty();
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vhost_definitions& x) {
  return f(caf::meta::type_name("vhost_definitions"), x.vhost, x.exchanges, x.queues,
           x.bindings, x.deleted_exchanges, x.deleted_queues, x.unbound, x.taken);
}

// A node as the others reach it.
struct node_info {
  std::string name;
  std::string host;
  uint16_t port = 0;
  caf::actor actor;  // its cluster actor; null when it is not running
  uint64_t admitted = 0;  // when it last joined the cluster (a stamp), 0: never
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("node_info"), x.name, x.host, x.port, x.actor, x.admitted);
}

// A change of the registry (users, vhosts, permissions, topic permissions, limits) as the
// request that made it, with its stamp. Deletions are settled as those of exchanges are:
// a registry keeps the requests that deleted something, with their stamps, while a member
// is not running; a definition put before a deletion kept elsewhere goes, one put after it
// stays.
struct registry_change {
  caf::message change;
  uint64_t stamp = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, registry_change& x) {
  return f(caf::meta::type_name("registry_change"), x.change, x.stamp);
}

// Everything a node has: the registry's users, vhosts, permissions and limits (as the
// requests that would create them, then the deletions it keeps), then each vhost's
// definitions.
// Membership travels with it: the nodes removed from the cluster (forget_cluster_node, or
// they left) that the sending node knows of, each with the stamp of its removal, and when the
// sending node last joined. A removal is settled as deletions are: it holds for a node
// admitted (joined) before it, not for one that joined again after it, so that a member that
// was down when a node was removed learns it when it meets the others.
// `refused`, in the answer to a hello: the node that said hello was removed from the cluster
// and must join again; the snapshot is then empty.
struct cluster_snapshot {
  std::vector<registry_change> registry;
  std::vector<vhost_definitions> vhosts;
  bool refused = false;
  std::vector<tombstone> removed;
  uint64_t admitted = 0;
  uint64_t clock = 0;  // the sending node's wall clock when it sent it (µs), to check skew
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_snapshot& x) {
  return f(caf::meta::type_name("cluster_snapshot"), x.registry, x.vhosts, x.refused,
           x.removed, x.admitted, x.clock);
}

// A node as `cluster_status` shows it.
struct node_status {
  std::string name;
  std::string address;  // host:port of its cluster listener
  bool running = false;
};

// The node's cluster actor, null when the node runs alone (no cluster port).
inline caf::actor current_cluster(caf::actor_system& sys) {
  return caf::actor_cast<caf::actor>(sys.registry().get(caf::atom("cluster")));
}

// Atoms of the cluster protocol.
using join_atom = caf::atom_constant<caf::atom("join")>;
using hello_atom = caf::atom_constant<caf::atom("hello")>;
using replicate_atom = caf::atom_constant<caf::atom("replicate")>;
using forget_atom = caf::atom_constant<caf::atom("forget")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;
using cluster_atom = caf::atom_constant<caf::atom("cluster")>;
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;
using node_down_atom = caf::atom_constant<caf::atom("nodedown")>;
using removed_atom = caf::atom_constant<caf::atom("removed")>;

}  // namespace warren

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::node_status>)
