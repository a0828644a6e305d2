// Start-up of the durable store: opens the catalog, checks every durable queue's message file
// (missing, unreadable, or holding messages that fail their checksum), reports each problem by
// name with the queue and the number of messages affected, then either refuses to start or
// moves the damage aside into <data>/quarantine (persistence.on_corruption), and loads what
// is sound for the vhosts.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "actors/vhost_actor.hpp"
#include "persistence/catalog.hpp"

namespace warren {

struct recovery_result {
  bool ok = false;
  std::string error;  // why the broker must not start
  std::shared_ptr<persistence::catalog> catalog;
  std::map<std::string, vhost_persistence> vhosts;  // by vhost name
  std::vector<persistence::user_row> users;
  std::vector<persistence::permission_row> permissions;
  std::vector<persistence::limit_row> limits;
  std::vector<persistence::policy_row> policies;
  std::vector<persistence::topic_permission_row> topic_permissions;
  std::vector<persistence::deletion_row> deletions;  // the registry's (cluster)
  size_t problems = 0;
  size_t quarantined = 0;
  size_t messages = 0;
};

// on_corruption: "refuse" or "quarantine". A missing clean-shutdown marker means the broker
// stopped abruptly: every recovered message is then flagged redelivered, since it may have
// been delivered before the stop.
// Of each durable queue, at most `memory_limit` bytes of bodies are loaded (0 = all); the rest
// stays on disk and is paged in by the queue when needed.
recovery_result recover_store(const std::string& data_dir, const std::string& on_corruption,
                              size_t memory_limit);

// Written at the end of a graceful stop; consumed by the next start.
void mark_clean_shutdown(const std::string& data_dir);

}  // namespace warren
