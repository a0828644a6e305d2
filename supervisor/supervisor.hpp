// OTP-style supervisors for CAF 0.17 (which has none): a supervisor actor links to its
// children, traps their exits and restarts them by a strategy, within a restart intensity.
//
// - Strategies: one_for_one (restart the child that died), one_for_all (stop the others,
//   restart all in order), rest_for_one (stop and restart the children started after it, and
//   it).
// - Child kinds: permanent (always restarted), transient (restarted unless it ended normally),
//   temporary (never restarted).
// - Intensity: more than `max_restarts` within `period` and the supervisor gives up: it stops
//   all children and exits with an error, so that its own supervisor (its parent, linked to it)
//   decides; a root supervisor that gives up takes the node down (see app/warrend.cpp).
// - A restarted child has a new handle: the supervisor calls `on_restart` so that whoever
//   maps names to handles (a registry) can follow.
//
// Messages: (add_atom, child_spec) -> caf::actor   starts a child at the end of the list
//           (remove_atom, std::string id) -> bool   stops it for good (no restart)
//           (which_atom) -> std::vector<std::pair<std::string, caf::actor>>
//           (count_atom) -> uint64_t                restarts so far
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace warren::sup {

enum class strategy { one_for_one, one_for_all, rest_for_one };
enum class restart { permanent, transient, temporary };

struct child_spec {
  std::string id;
  // Spawns the child; the supervisor links to what it returns.
  std::function<caf::actor(caf::actor_system&)> start;
  restart kind = restart::permanent;
};

struct intensity {
  size_t max_restarts = 3;
  std::chrono::milliseconds period{5000};
};

// Counts restarts in a sliding window: allow() is false once a restart would exceed it.
class restart_budget {
public:
  explicit restart_budget(intensity limits = {}) : limits_(limits) {}
  bool allow(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
  uint64_t total() const { return total_; }

private:
  intensity limits_;
  std::deque<std::chrono::steady_clock::time_point> recent_;
  uint64_t total_ = 0;
};

struct config {
  std::string name;
  strategy strat = strategy::one_for_one;
  intensity limits;
  std::vector<child_spec> children;
  std::function<void(const std::string& id, const caf::actor& now)> on_restart;
};

caf::actor spawn_supervisor(caf::actor_system& sys, config cfg);

using child_list = std::vector<std::pair<std::string, caf::actor>>;

using add_atom = caf::atom_constant<caf::atom("sup_add")>;
using remove_atom = caf::atom_constant<caf::atom("sup_rm")>;
using which_atom = caf::atom_constant<caf::atom("sup_which")>;
using count_atom = caf::atom_constant<caf::atom("sup_count")>;

}  // namespace warren::sup

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::sup::child_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::sup::config)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(warren::sup::child_list)
