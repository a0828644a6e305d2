// The cluster actor (one per node, when the node has a cluster port): which nodes form the
// cluster, and the traffic of definitions between them. Nodes talk over CAF's middleman
// (BASP): this actor is published on the cluster port, and every message between nodes is a
// CAF message to an actor of the other node (types: add_cluster_types).
//
// Start: (start_atom, uint16 port) once it is published on the cluster port;
// (put_atom, std::vector<metrics::listener_summary>) this node's listeners, once they listen
// (the others list them in /api/overview).
// Membership:
//   (join_atom, host, uint16 port)    -> op_result   from the management API: join the cluster
//       of the node listening there. That node answers with every member; this node then
//       meets each of them (hello) and remembers them in <data_dir>/cluster-nodes.
//   (leave_atom)                      -> op_result   this node leaves: the others forget it
//       (and its queues); it goes on alone with its own definitions.
//   (forget_atom, remove_atom, name)  -> op_result   a member that is down for good is
//       forgotten here and by the running members (404: no such member, 409: it runs).
//   (list_atom)                       -> std::vector<node_status>   this node first
//   (lookup_atom, reply_to_atom, vhost, token) -> lookup_result   from a vhost here: the
//       connection of another node that consumes from amq.rabbitmq.reply-to under `token`;
//       each running member is asked with the same message and `true` (on that node only)
//   (hello_atom)                      from a vhost restarted here: meet the running members
//       again (its queues have new handles, and it lost those of the other nodes)
// Between nodes:
//   (join_atom, node_info, cookie)    -> std::vector<node_info>   a node joins through this one
//   (hello_atom, node_info, cookie, cluster_snapshot, bool joining) -> cluster_snapshot  two
//       nodes meet (a join, a restart, a connection back after a partition): each applies
//       what the other has. The node that says hello takes the other's users and permissions
//       where both have one. A node removed from the cluster (forget_cluster_node, or it
//       left) is refused (`refused` in the answer) unless it is joining, or joined after the
//       removal (node_info.admitted): it then forgets this node. Each snapshot carries the
//       removals its node knows of; a member that learns one forgets that node, and tells it
//       with (removed_atom, name) when it runs, so that it forgets this node in turn.
//   (replicate_atom, vhost_definitions, from)
//   (replicate_atom, std::vector<registry_change>, from)   a change made on node `from`,
//       applied here
//   (forget_atom, name)               node `name` left, or was removed
//   (removed_atom, name)              node `name` learned that this node was removed
//   (stats_atom, metrics::node_stats, from)   the numbers of node `from`'s queues and
//       connections, sent each second (node_stats.hpp)
// A join or hello with another cookie is refused; replicate, forget, stats and reply-to
// lookups are taken from the cluster actors of members only.
// From this node's vhosts and registry (sent on to every running member):
//   (replicate_atom, vhost_definitions) / (replicate_atom, registry_change)
// To this node's vhosts: (cluster_atom, vhost_definitions, from), (cluster_atom,
// node_down_atom, node), (cluster_atom, forget_atom, node); to its registry (cluster_atom,
// std::vector<registry_change>, bool overwrite).
//
// Failure: members are monitored; a member that dies or becomes unreachable (heartbeats, see
// warrend's middleman settings) is marked down and its queues take nothing until it is back.
// Every second this actor tries to reach the members that are down; when one answers, the two
// meet again, and settle what each did meanwhile (cluster/definitions.hpp). Once every member
// has run for a quarter of keep_deletions (30 s by default), it lets this node's vhosts and
// registry drop the tombstones older than keep_deletions, as often:
// (cluster_atom, prune_atom, uint64 before).
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <string>

#include "cluster/definitions.hpp"
#include "cluster/node_stats.hpp"

namespace warren {

struct cluster_config {
  std::string name;      // this node's name (warren@host)
  std::string host;      // the address of this node's cluster port, as the others reach it
  uint16_t port = 0;     // the cluster port
  std::string data_dir;  // where the members are remembered
  std::string join;      // host:port of a node whose cluster to join at start, or ""
  std::string cookie;    // the same on every node of the cluster ("" on all of them: none)
  bool tls = false;      // connect through CAF's openssl module (loaded, with certificates)
  // How long tombstones are kept once every member runs (cluster/definitions.hpp): longer
  // than a node takes to see another one down (heartbeats), so that no deletion made
  // meanwhile is forgotten.
  std::chrono::seconds keep_deletions{120};
  // This node's numbers, summarized for the others each second, and theirs (either may be
  // null: nothing is sent, or what arrives is dropped).
  std::shared_ptr<metrics::snapshot_store> stats;
  std::shared_ptr<metrics::remote_stats_store> remote_stats;
};

caf::actor spawn_cluster(caf::actor_system& sys, cluster_config cfg);

// The types that cross between nodes, registered before the actor system starts.
void add_cluster_types(caf::actor_system_config& cfg);

// "host:port" -> host and port; false when it is not one.
bool parse_node_address(const std::string& text, std::string& host, uint16_t& port);

}  // namespace warren
