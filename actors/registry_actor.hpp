// The registry actor: the broker's users, virtual hosts, permissions and limits (with the
// connections and channels the limits count). Connections ask it
// at login (AMQP connection.start-ok, STOMP CONNECT) and when they open a vhost
// (connection.open, STOMP `host`); the management API lists and changes what it holds.
// Talks to: the catalog actor (every change is committed before it is answered), vhost
// actors (spawned here, told to delete themselves here).
// What stays true: a vhost in the map has a running vhost actor and a catalog row; users and
// permissions in memory equal the catalog's; passwords are only ever held as salted SHA-256
// hashes (persistence/password_hash.hpp). Connections hold their user's permissions for their
// vhost (actors/access.hpp) and enforce them; a change of a user's permissions is sent to the
// vhost's group, where the connections of that user take it at once.
//
// Requests (`loopback`: the client reached a loopback address of this host):
//   (login_atom, user, password, loopback) -> login_result
//   (login_atom, user, loopback)       -> login_result   trusted login (STOMP without login)
//   (lookup_atom, vhost_atom, name)    -> lookup_result  target = the vhost actor
//   (lookup_atom, vhost_atom, name, user) -> vhost_access   the vhost and the user's permissions
//   (list_atom, vhost_atom)            -> std::vector<vhost_info>
//   (put_atom, vhost_atom, name)       -> op_result      count 1 when it was created
//   (delete_atom, vhost_atom, name)    -> op_result
//   (trace_atom, vhost_atom, name, bool on) -> op_result   the firehose (actors/trace.hpp) on
//                                      or off for the vhost on this node; 404 no such vhost.
//                                      Sent to vhost_group(vhost): (trace_atom, bool on)
//   (list_atom, user_atom)             -> std::vector<user_info>
//   (put_atom, user_info)              -> op_result      count 1 when it was created
//   (delete_atom, user_atom, name)     -> op_result
//   (list_atom, permission_atom)       -> std::vector<permission_info>
//   (put_atom, permission_info)        -> op_result      406 for an invalid regular expression
//   (delete_atom, permission_atom, user, vhost) -> op_result
// Topic permissions (access.hpp):
//   (list_atom, topic_atom)            -> std::vector<topic_permission_info>
//   (put_atom, topic_permission_info)  -> op_result      406 no such user or vhost, or an invalid
//                                                        pattern; count 1 when the user had none
//                                                        in the vhost
//   (delete_atom, topic_atom, user, vhost) -> op_result  all of the user's in the vhost; 404 none
// Sent to vhost_group(vhost) when they change: (topic_atom, user, std::vector<access::topic_entry>),
// the user's whole set there.
// Limits (RabbitMQ's vhost limits max-connections and max-queues, user limits max-connections
// and max-channels; a negative value is no limit):
//   (list_atom, limit_atom)            -> std::vector<limit_info>
//   (put_atom, limit_info)             -> op_result      404 no such vhost or user, 406 no such
//                                                        limit; count 1 when it was set anew
//   (delete_atom, limit_atom, bool user, name, limit) -> op_result
//   (admit_atom, vhost_atom, name, user, int32 channels) -> vhost_access   connection.open and
//       STOMP CONNECT: the vhost and user connection limits (and, for a STOMP connection's one
//       channel, the user's channel limit), then what the lookup above answers; an admitted
//       connection is tracked (monitored) until it ends
//   (admit_atom, channel_atom)         -> op_result      the sender opens a channel: 530 over
//                                                        its user's max-channels
//   (remove_atom, channel_atom)        -> (no answer)    the sender closed a channel
// A vhost actor gets its max-queues when it starts and when it changes: (limit_atom, int64).
// Policies and operator policies (policy.hpp):
//   (list_atom, policy_atom)           -> std::vector<policy_info>   every vhost's, as RabbitMQ
//                                                        lists them
//   (put_atom, policy_info)            -> op_result      404 no such vhost, 406 refused (the
//                                                        text is RabbitMQ's, "Validation
//                                                        failed..."); count 1 when created
//   (delete_atom, policy_atom, vhost, bool operator_policy, name) -> op_result   404 none
// A vhost actor gets its policies when it starts and when one of them changes:
// (policy_atom, std::vector<policy_info>), all of them.
// Sent to vhost_group(vhost) when a user's permissions there change (put, delete, the user
// or vhost deleted): (permission_atom, permission_info, bool granted).
// Sent to every vhost's group when a user is deleted (its connections close with 320):
// (force_close_atom, user_atom, user, reason).
//   (crash_atom, vhost_atom, name)     -> bool           fault injection: that vhost fails
//   (crash_atom, exchange_atom | queue_atom, vhost, name) -> bool   that actor fails
// Supervision: the registry links to its vhosts and restarts one that crashed or gave up
// (one_for_one, within `persistence.limits`), from the catalog; past the intensity it gives
// up itself and the root supervisor decides.
#pragma once

#include <caf/all.hpp>

#include <map>
#include <string>
#include <vector>

#include "actors/access.hpp"
#include "actors/messages.hpp"
#include "actors/policy.hpp"
#include "actors/vhost_actor.hpp"

namespace warren {

struct user_info {
  std::string name;
  std::string password_hash;
  std::string tags;  // comma-separated, as RabbitMQ ("administrator", "monitoring", ...)
};

struct permission_info {
  std::string user, vhost, configure, write, read;
};

struct topic_permission_info {
  std::string user, vhost, exchange, write, read;
};

struct vhost_info {
  std::string name;
  caf::actor actor;
  bool tracing = false;  // this node traces it (actors/trace.hpp)
};

struct login_result {
  bool ok = false;
  std::string user;
  std::string tags;
  // The password was right, but the user is one of `loopback_users` and came from elsewhere.
  bool loopback_only = false;
};

// connection.open and STOMP CONNECT: the vhost (code 530 when it does not exist) and whether
// the user may open it, with what.
struct vhost_access {
  uint16_t code = 0;
  std::string text;
  caf::actor target;
  bool granted = false;
  permission_info permissions;
  std::string limit;  // the limit that refused the connection ("max-connections", ...)
  std::vector<access::topic_entry> topics;  // the user's topic permissions in the vhost
  bool tracing = false;  // this node traces the vhost (actors/trace.hpp)
};

// A vhost limit or a user limit, as RabbitMQ names them; a negative value is no limit.
struct limit_info {
  bool user = false;  // a user's limit, else a vhost's
  std::string name;   // the vhost or user
  std::string limit;  // max-connections, max-queues (vhost), max-channels (user)
  int64_t value = -1;
};

// As they cross to the other nodes of a cluster.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_info& x) {
  return f(caf::meta::type_name("user_info"), x.name, x.password_hash, x.tags);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, permission_info& x) {
  return f(caf::meta::type_name("permission_info"), x.user, x.vhost, x.configure, x.write,
           x.read);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, topic_permission_info& x) {
  return f(caf::meta::type_name("topic_permission_info"), x.user, x.vhost, x.exchange, x.write,
           x.read);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, limit_info& x) {
  return f(caf::meta::type_name("limit_info"), x.user, x.name, x.limit, x.value);
}

// Whether `limit` is one RabbitMQ knows for a vhost (user = false) or a user.
inline bool known_limit(bool user, const std::string& limit) {
  return limit == "max-connections" || limit == (user ? "max-channels" : "max-queues");
}

struct registry_config {
  // What new vhosts need to persist their entities (data_dir, catalog, stores).
  vhost_persistence persistence;
  // What recovery found: vhosts with their entities, users, permissions.
  std::map<std::string, vhost_persistence> vhosts;
  std::vector<user_info> users;
  std::vector<permission_info> permissions;
  std::vector<limit_info> limits;
  std::vector<topic_permission_info> topic_permissions;
  std::vector<policy_info> policies;
  // Cluster: the deletions the catalog kept (cluster/definitions.hpp).
  std::vector<persistence::deletion_row> deletions;
  // Created when there are no users at all (first start); on a store without vhosts the
  // default vhost "/" is created too, with full permissions for that user.
  std::string default_user = "guest";
  std::string default_pass = "guest";
  // Users who may log in only through a loopback address (RabbitMQ's loopback_users).
  std::vector<std::string> loopback_users{"guest"};
  // Restarted by the root supervisor: users, permissions and vhosts come from the catalog
  // (the fields above that recovery fills are then empty).
  bool reload = false;
};

// The registry's name in the actor system's registry: restarted registries have a new handle,
// so connections and the HTTP API look it up there.
inline caf::actor current_registry(caf::actor_system& sys) {
  return caf::actor_cast<caf::actor>(sys.registry().get(caf::atom("registry")));
}
inline void register_registry(caf::actor_system& sys, const caf::actor& registry) {
  sys.registry().erase(caf::atom("registry"));  // put() does not overwrite
  sys.registry().put(caf::atom("registry"), registry);
}

caf::actor spawn_registry(caf::actor_system& sys, registry_config cfg);

}  // namespace warren

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::login_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::vhost_access)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::topic_permission_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::access::topic_entry>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::limit_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::user_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::permission_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::vhost_info>)
