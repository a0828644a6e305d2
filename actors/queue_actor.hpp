// The queue actor: one per queue.
#pragma once

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "actors/queue_arguments.hpp"
#include "persistence/queue_store.hpp"

namespace warren {

// A message a durable queue found in its store at start-up.
struct recovered_message {
  uint64_t id = 0;
  message_ptr msg;
  bool redelivered = false;
  uint32_t bytes = 0;  // body size (known while msg is null too)
  int64_t expires = 0;  // its deadline as stored (ms since the Unix epoch); 0 = none
};

struct queue_config {
  std::string vhost_name;
  std::string name;
  bool auto_delete = false;
  queue_options options;  // TTL, expiry, length limit, dead-lettering (queue_arguments.hpp)
  caf::actor vhost;
  // Durable queues: persistent messages (delivery_mode 2) go to `store`, in the file at
  // `store_path`; empty for transient queues.
  std::string store_path;
  caf::actor store;
  std::vector<recovered_message> recovered;  // msg null = on disk only (paged out)
  uint64_t next_id = 1;
  size_t memory_limit = 0;  // bytes of ready bodies kept in memory; 0 = no limit
  // A restarted durable queue reads its messages back from `store` before it serves anyone
  // (every message found is ready again; those delivered before are flagged redelivered).
  bool reload = false;
};

// Besides the messages of the queue protocol (messages.hpp), from its vhost:
//   (policy_atom, queue_options)  what the queue does now that a policy changed (policy.hpp):
//       its TTL, expiry, length limits, overflow, dead-lettering and delivery limit
// and in a cluster:
//   (yield_atom, caf::actor winner, node)  a queue of the same name on node `node` stays
//       (cluster/definitions.hpp): this one cancels its consumers, sends every message it has
//       (the unacknowledged ones marked redelivered) to `winner`, paced (handover.hpp), then
//       what was published to it meanwhile, deletes its file and tells its vhost
//       (yield_atom, its address), which then routes to `winner`; for 10 s more it forwards
//       the publishes that reach it, then it ends. Each message is gone from here once
//       `winner` confirms it; if `winner` goes away first, what it did not confirm comes
//       back, the queue goes on as before and tells its vhost (resume_atom, its address).
caf::actor spawn_queue(caf::actor_system& sys, queue_config cfg);

// A message as read back from a queue's store (its fields are moved out of `m`).
message_ptr from_stored(persistence::stored_message& m);

// The same for a queue filling up from its store (start-up recovery, a restarted queue):
// nullptr once the bodies kept, counted in `resident`, would pass `memory_limit` (0: no
// limit); such a message stays on disk (paged out) until it nears the head of the queue.
message_ptr keep_resident(persistence::stored_message& m, size_t memory_limit, size_t& resident);

}  // namespace warren

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::queue_options)
