// The exchange actor: owns one exchange's bindings and routes publish batches to queues and
// (exchange-to-exchange bindings, alternate exchange) to further exchanges.
#pragma once

#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace warren {

struct exchange_config {
  std::string vhost_name;
  std::string name;
  std::string type;
  std::string alternate;  // alternate-exchange argument or policy, "" when none; a policy
                          // change sends (policy_atom, std::string) with the new one
  caf::actor vhost;
};

caf::actor spawn_exchange(caf::actor_system& sys, exchange_config cfg);

}  // namespace warren
