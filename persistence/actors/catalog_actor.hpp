// The catalog actor: every change to durable metadata (exchanges, queues, bindings, vhosts,
// users, permissions) goes through it into the catalog database, on a thread of its own.
// The vhost and registry actors wait for its answer before they answer the client, so a
// declare-ok (or an HTTP 201) means the entity is on disk.
//
// (list_atom) -> catalog_snapshot: everything it holds (a vhost or the registry restarting).
// Requests (each answers bool: committed):
//   (put_atom, exchange_row)   (delete_atom, exchange_atom, vhost, name)
//   (put_atom, queue_row)      (delete_atom, queue_atom, vhost, name)
//   (put_atom, binding_row)    (unbind_atom, binding_row)
//   (put_atom, vhost_row)      (delete_atom, vhost_atom, name)       everything in it goes too
//   (put_atom, user_row)       (delete_atom, user_atom, name)        and its permissions
//   (put_atom, permission_row) (delete_atom, permission_atom, user, vhost)
//   (put_atom, policy_row)     (delete_atom, policy_atom, vhost, bool operator_policy, name)
//   (put_atom, deletion_row)   (delete_atom, deletion_row)   (prune_atom, uint64 before)
//       the deletions a cluster node keeps (catalog.hpp)
#pragma once

#include <caf/all.hpp>

#include <memory>

#include "persistence/catalog.hpp"

namespace warren::persistence {

caf::actor spawn_catalog_actor(caf::actor_system& sys, std::shared_ptr<catalog> db);

}  // namespace warren::persistence

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::exchange_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::queue_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::binding_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::vhost_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::user_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::permission_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::limit_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::topic_permission_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::deletion_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::policy_row)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<warren::persistence::catalog>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::catalog_snapshot)
