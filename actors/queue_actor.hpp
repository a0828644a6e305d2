// The queue actor: one per queue.
#pragma once

#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace warren {

struct queue_config {
  std::string vhost_name;
  std::string name;
  bool auto_delete = false;
  caf::actor vhost;
};

caf::actor spawn_queue(caf::actor_system& sys, queue_config cfg);

}  // namespace warren
