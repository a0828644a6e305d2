// The vhost actor: the name registry and metadata authority of one virtual host.
// Besides the requests of connections (actors/messages.hpp) it answers the management API:
//   (list_atom, exchange_atom) -> std::vector<exchange_info>
//   (list_atom, queue_atom)    -> std::vector<queue_info>
//   (list_atom, binding_atom)  -> std::vector<binding_info>
//   (delete_atom, vhost_atom)  -> bool: stops every exchange and queue (their message files
//                                 go), then the vhost itself; the registry has already
//                                 removed it from the catalog.
//   (crash_atom, exchange_atom | queue_atom, name) -> bool: makes that actor fail (fault
//                                 injection); false when there is no such actor
//   (crash_atom)               makes the vhost itself fail
//   (limit_atom, int64)        from the registry: the vhost limit max-queues (negative: none);
//                              declaring a new queue past it is a 406
//   (lookup_atom, reply_to_atom, token) -> lookup_result: the connection that consumes from
//                              amq.rabbitmq.reply-to under `token`; one of another node is
//                              found by the cluster actor, which asks the other nodes with
//   (lookup_atom, reply_to_atom, token, bool) -> lookup_result: on this node only
// Supervision: the vhost links to its exchange and queue actors and restarts one that crashes
// (one_for_one, within `limits`): a queue under a new handle that its exchanges rebind to, a
// durable one with the messages of its file; an exchange with all of its bindings.
#pragma once

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/queue_actor.hpp"
#include "persistence/catalog.hpp"
#include "supervisor/supervisor.hpp"

namespace warren {

// What a vhost needs to keep durable entities on disk, and what it found there at start-up.
struct vhost_persistence {
  std::string data_dir;  // "" = nothing is persisted
  caf::actor catalog;    // persistence/actors/catalog_actor.hpp
  std::vector<caf::actor> stores;  // message store actors; a queue's file picks one by hash
  size_t queue_memory_limit = 0;   // per durable queue: bytes of ready bodies kept in memory
  std::string node;  // this node's name (a cluster tells its queues of one name apart by it)
  struct recovered_queue {
    queue_spec spec;
    std::string file;  // relative to data_dir
    std::vector<recovered_message> messages;
    uint64_t next_id = 1;
    bool reload = false;  // messages are read back by the queue itself
  };
  std::vector<exchange_spec> exchanges;
  std::vector<recovered_queue> queues;
  std::vector<binding_spec> bindings;
  std::vector<persistence::deletion_row> deletions;  // cluster: the tombstones kept
  // Supervision: the vhost restarts its crashed exchanges and queues within `limits`; past
  // them it gives up (exits with an error) and its own supervisor, the registry, decides.
  caf::actor_addr supervisor;
  sup::intensity limits;
  // Restarted by the registry: the vhost reads its definitions from the catalog, and its
  // durable queues their messages from their files, before serving anyone.
  bool reload = false;
};

// Definitions as the catalog holds them, for a vhost (queues without their messages).
void add_catalog_rows(const persistence::catalog_snapshot& snap, const std::string& vhost,
                      vhost_persistence& out);

struct exchange_info {
  std::string name;
  std::string type;
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  amqp::field_table arguments;
  caf::actor actor;
};

struct queue_info {
  std::string name;
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  amqp::field_table arguments;
  caf::actor actor;
  caf::actor_addr owner;  // the exclusive owner's connection, null otherwise
  std::string node;       // cluster: the node it lives on, "" = this one
  bool down = false;      // that node is out of reach
};

struct binding_info {
  std::string source;
  std::string destination;
  bool to_exchange = false;
  std::string key;
  amqp::field_table arguments;
};

caf::actor spawn_vhost(caf::actor_system& sys, std::string name, vhost_persistence persist = {});

}  // namespace warren

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::exchange_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::queue_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::binding_info>)
