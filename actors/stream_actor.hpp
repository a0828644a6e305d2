// The stream actor: one per stream queue (x-queue-type = stream).
//
// Toward connections and the vhost it answers the queue actor's messages (queue_actor.hpp), so
// that declare, bind, publish, consume, credit, ack, delete and the statistics need no second
// path; what a stream does not do (basic.get, purge) it refuses with RabbitMQ's errors.
// Instead of (policy_atom, queue_options) its vhost sends it (policy_atom, stream_options) when
// a policy changes its retention or segment size.
#pragma once

#include <caf/all.hpp>

#include "actors/queue_actor.hpp"
#include "actors/stream_arguments.hpp"

namespace warren {

// `cfg` as for a queue (its options are not used: a stream has `opts`); a stream keeps every
// message in its store, persistent or not. Without a store (no data directory) it keeps its
// log in memory only.
caf::actor spawn_stream(caf::actor_system& sys, queue_config cfg, stream_options opts);

}  // namespace warren

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::stream_options)
