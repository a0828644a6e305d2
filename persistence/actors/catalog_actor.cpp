#include "persistence/actors/catalog_actor.hpp"

#include <spdlog/spdlog.h>

#include "actors/hardening.hpp"
#include "actors/messages.hpp"

namespace warren::persistence {

namespace {

bool logged(bool ok, const std::string& what, const std::string& error) {
  if (!ok)
    spdlog::error("catalog: {} failed: {}", what, error);
  return ok;
}

caf::behavior catalog_behavior(caf::event_based_actor* self, std::shared_ptr<catalog> db) {
  install_defaults(self, "catalog");
  return {
    [=](list_atom) -> caf::result<catalog_snapshot> {
      catalog_snapshot snap;
      std::string e;
      if (!db->load(snap, e)) {
        spdlog::error("catalog: reading it back failed: {}", e);
        return caf::make_error(caf::sec::runtime_error, "cannot read the catalog: " + e);
      }
      return snap;
    },
    [=](put_atom, exchange_row& r) {
      std::string e;
      return logged(db->put_exchange(r, e), "storing exchange " + r.name, e);
    },
    [=](delete_atom, exchange_atom, std::string& vhost, std::string& name) {
      std::string e;
      return logged(db->delete_exchange(vhost, name, e), "deleting exchange " + name, e);
    },
    [=](put_atom, queue_row& r) {
      std::string e;
      return logged(db->put_queue(r, e), "storing queue " + r.name, e);
    },
    [=](delete_atom, queue_atom, std::string& vhost, std::string& name) {
      std::string e;
      return logged(db->delete_queue(vhost, name, e), "deleting queue " + name, e);
    },
    [=](put_atom, binding_row& r) {
      std::string e;
      return logged(db->put_binding(r, e), "storing binding " + r.source + "->" + r.destination, e);
    },
    [=](unbind_atom, binding_row& r) {
      std::string e;
      return logged(db->delete_binding(r, e), "deleting binding " + r.source + "->" + r.destination,
                    e);
    },
    [=](put_atom, vhost_row& r) {
      std::string e;
      return logged(db->put_vhost(r, e), "storing vhost " + r.name, e);
    },
    [=](delete_atom, vhost_atom, std::string& name) {
      std::string e;
      return logged(db->delete_vhost(name, e), "deleting vhost " + name, e);
    },
    [=](put_atom, user_row& r) {
      std::string e;
      return logged(db->put_user(r, e), "storing user " + r.name, e);
    },
    [=](delete_atom, user_atom, std::string& name) {
      std::string e;
      return logged(db->delete_user(name, e), "deleting user " + name, e);
    },
    [=](put_atom, permission_row& r) {
      std::string e;
      return logged(db->put_permission(r, e), "storing permissions of " + r.user + " in " + r.vhost,
                    e);
    },
    [=](delete_atom, permission_atom, std::string& user, std::string& vhost) {
      std::string e;
      return logged(db->delete_permission(user, vhost, e),
                    "deleting permissions of " + user + " in " + vhost, e);
    },
    [=](put_atom, topic_permission_row& r) {
      std::string e;
      return logged(db->put_topic_permission(r, e),
                    "storing topic permissions of " + r.user + " in " + r.vhost, e);
    },
    [=](delete_atom, topic_atom, std::string& user, std::string& vhost) {
      std::string e;
      return logged(db->delete_topic_permissions(user, vhost, e),
                    "deleting topic permissions of " + user + " in " + vhost, e);
    },
    [=](put_atom, limit_row& r) {
      std::string e;
      return logged(db->put_limit(r, e), "storing limit " + r.limit + " of " + r.name, e);
    },
    [=](delete_atom, limit_atom, bool user, std::string& name, std::string& limit) {
      std::string e;
      return logged(db->delete_limit(user, name, limit, e),
                    "deleting limit " + limit + " of " + name, e);
    },
    [=](put_atom, policy_row& r) {
      std::string e;
      return logged(db->put_policy(r, e), "storing policy " + r.name + " of " + r.vhost, e);
    },
    [=](delete_atom, policy_atom, std::string& vhost, bool operator_policy, std::string& name) {
      std::string e;
      return logged(db->delete_policy(vhost, operator_policy, name, e),
                    "deleting policy " + name + " of " + vhost, e);
    },
    [=](put_atom, deletion_row& r) {
      std::string e;
      return logged(db->put_deletion(r, e), "keeping a deletion of a " + r.kind, e);
    },
    [=](delete_atom, deletion_row& r) {
      std::string e;
      return logged(db->delete_deletion(r, e), "dropping a deletion of a " + r.kind, e);
    },
    [=](prune_atom, uint64_t before) {
      std::string e;
      return logged(db->prune_deletions(before, e), "dropping old deletions", e);
    },
  };
}

}  // namespace

caf::actor spawn_catalog_actor(caf::actor_system& sys, std::shared_ptr<catalog> db) {
  return sys.spawn<caf::detached>(catalog_behavior, std::move(db));
}

}  // namespace warren::persistence
