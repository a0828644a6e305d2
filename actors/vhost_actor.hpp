// The vhost actor: the name registry and metadata authority of one virtual host.
#pragma once

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/queue_actor.hpp"

namespace warren {

// What a vhost needs to keep durable entities on disk, and what it found there at start-up.
struct vhost_persistence {
  std::string data_dir;  // "" = nothing is persisted
  caf::actor catalog;    // persistence/actors/catalog_actor.hpp
  std::vector<caf::actor> stores;  // message store actors; a queue's file picks one by hash
  struct recovered_queue {
    queue_spec spec;
    std::string file;  // relative to data_dir
    std::vector<recovered_message> messages;
    uint64_t next_id = 1;
  };
  std::vector<exchange_spec> exchanges;
  std::vector<recovered_queue> queues;
  std::vector<binding_spec> bindings;
};

caf::actor spawn_vhost(caf::actor_system& sys, std::string name, vhost_persistence persist = {});

// Field tables as stored in the catalog (the AMQP wire encoding).
std::string encode_arguments(const amqp::field_table& t);
amqp::field_table decode_arguments(const std::string& bytes);

// Queue arguments this build does not implement yet; declaring one is refused with 540
// NOT_IMPLEMENTED rather than silently ignored. Returns the offending argument or "".
std::string unsupported_queue_argument(const amqp::field_table& args);

}  // namespace warren
