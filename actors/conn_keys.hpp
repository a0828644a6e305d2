// How a queue tells the connections of its consumers apart. Actor ids are unique within a
// node only, and a queue of a cluster serves connections of other nodes too: their key folds
// in a small number the queue gives each other node. A connection of this node keeps its
// actor id as its key, so the common case costs nothing more.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <map>

namespace warren {

struct conn_keys {
  caf::node_id local;
  std::map<caf::node_id, uint64_t> others;  // node -> 1, 2, ...

  uint64_t of(const caf::node_id& node, caf::actor_id id) {
    if (!node || node == local)
      return id;
    auto it = others.emplace(node, others.size() + 1).first;
    return (it->second << 48) | id;
  }
  uint64_t of(const caf::actor& a) { return of(a.node(), a.id()); }
  uint64_t of(const caf::actor_addr& a) { return of(a.node(), a.id()); }
  // The connection that sent the current message, which names itself by `id`.
  template <class Self>
  uint64_t of_sender(Self* self, caf::actor_id id) {
    auto& sender = self->current_sender();
    return of(sender ? sender->node() : local, id);
  }
};

}  // namespace warren
