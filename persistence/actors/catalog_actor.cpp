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
  };
}

}  // namespace

caf::actor spawn_catalog_actor(caf::actor_system& sys, std::shared_ptr<catalog> db) {
  return sys.spawn<caf::detached>(catalog_behavior, std::move(db));
}

}  // namespace warren::persistence
