// The vhost actor: the name registry and metadata authority of one virtual host.
#pragma once

#include <caf/all.hpp>

#include "actors/messages.hpp"

namespace warren {

caf::actor spawn_vhost(caf::actor_system& sys, std::string name);

// Queue arguments this build does not implement yet; declaring one is refused with 540
// NOT_IMPLEMENTED rather than silently ignored. Returns the offending argument or "".
std::string unsupported_queue_argument(const amqp::field_table& args);

}  // namespace warren
