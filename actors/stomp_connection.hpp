// The STOMP connection actor: one per STOMP client connection.
#pragma once

#include <caf/all.hpp>

#include <memory>

#include "actors/connection.hpp"

namespace warren {

namespace net {
class stomp_session;
}

caf::actor spawn_stomp_connection(caf::actor_system& sys,
                                  std::shared_ptr<net::stomp_session> session,
                                  std::shared_ptr<const broker_settings> settings);

}  // namespace warren

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<warren::net::stomp_session>)
