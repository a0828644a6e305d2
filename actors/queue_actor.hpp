// The queue actor: one per queue.
#pragma once

#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace warren {

// A message a durable queue found in its store at start-up.
struct recovered_message {
  uint64_t id = 0;
  message_ptr msg;
  bool redelivered = false;
};

struct queue_config {
  std::string vhost_name;
  std::string name;
  bool auto_delete = false;
  caf::actor vhost;
  // Durable queues: persistent messages (delivery_mode 2) go to `store`, in the file at
  // `store_path`; empty for transient queues.
  std::string store_path;
  caf::actor store;
  std::vector<recovered_message> recovered;  // msg null = on disk only (paged out)
  uint64_t next_id = 1;
  size_t memory_limit = 0;  // bytes of ready bodies kept in memory; 0 = no limit
};

caf::actor spawn_queue(caf::actor_system& sys, queue_config cfg);

}  // namespace warren
