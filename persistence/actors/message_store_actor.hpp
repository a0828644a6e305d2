// A message store actor: owns the SQLite files of some durable queues (one file per queue) and
// does every write, read and fsync for them on a thread of its own, never on the scheduler's
// workers. Several run side by side; a queue always talks to the same one.
//
// Group commit: writes from all of its queues go into open transactions, committed when the
// mailbox runs dry, after `max_batch` operations, or once the oldest uncommitted write is
// `max_wait` old, whichever comes first; then each queue hears (stored_atom, max_id): every
// message it appended up to that id is on disk.
//
// Messages (path = the queue's file):
//   (append_atom, path, std::vector<stored_message>)       async; answered later by stored_atom
//   (remove_atom, path, std::vector<uint64_t>)             async (acked or consumed)
//   (remove_atom, path, uint64_t through_id)               async (a stream's retention)
//   (delivered_atom, path, std::vector<uint64_t>)          async (flags for redelivery)
//   (load_atom, path, uint64_t after_id, uint32_t limit) -> std::vector<stored_message>
//   (purge_atom, path, std::vector<uint64_t> ids)        -> uint32_t removed  (and gives disk back)
//   (reclaim_atom, path)                                   async: give freed pages back
//   (destroy_atom, path)                                 -> bool (closes and deletes the file)
//   (shutdown_atom)                                      -> bool (commits and closes everything)
#pragma once

#include <caf/all.hpp>

#include <chrono>

#include "persistence/queue_store.hpp"

namespace warren::persistence {

struct store_settings {
  std::chrono::microseconds max_wait{2000};
  size_t max_batch = 20000;
};

caf::actor spawn_message_store(caf::actor_system& sys, store_settings settings);

}  // namespace warren::persistence

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::persistence::stored_message>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::persistence::store_settings)
