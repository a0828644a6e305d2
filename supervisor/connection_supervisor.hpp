// Keeps track of the live connection actors so that a shutdown can close them all with
// 320 CONNECTION_FORCED and wait until they are gone. Connections are temporary children:
// a connection that ends is never restarted.
#pragma once

#include <caf/all.hpp>

namespace warren {

// Messages: (start_atom, caf::actor conn) registers a connection;
// (shutdown_atom) -> bool closes every connection and answers once all are gone (or after a
// grace period).
caf::actor spawn_connection_supervisor(caf::actor_system& sys);

}  // namespace warren
