#include "supervisor/supervisor.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/hardening.hpp"

namespace warren::sup {

bool restart_budget::allow(std::chrono::steady_clock::time_point now) {
  while (!recent_.empty() && now - recent_.front() > limits_.period)
    recent_.pop_front();
  if (recent_.size() >= limits_.max_restarts)
    return false;
  recent_.push_back(now);
  ++total_;
  return true;
}

namespace {

struct child {
  child_spec spec;
  caf::actor handle;
};

struct sup_state {
  config cfg;
  std::vector<child> children;
  restart_budget budget;
  static inline const char* name = "supervisor";
};

using sup_actor = caf::stateful_actor<sup_state>;

void start_child(sup_actor* self, child& c) {
  c.handle = c.spec.start(self->home_system());
  if (c.handle)
    self->link_to(c.handle);
}

// Stops a child on purpose: unlink first so that its exit is not taken for a crash.
void stop_child(sup_actor* self, child& c) {
  if (!c.handle)
    return;
  self->unlink_from(c.handle);
  self->send_exit(c.handle, caf::exit_reason::user_shutdown);
  c.handle = nullptr;
}

void give_up(sup_actor* self, const caf::error& why) {
  auto& st = self->state;
  spdlog::error("supervisor {}: too many restarts ({} within {} ms), giving up",
                st.cfg.name, st.cfg.limits.max_restarts, st.cfg.limits.period.count());
  for (auto i = st.children.rbegin(); i != st.children.rend(); ++i)
    stop_child(self, *i);
  self->quit(caf::make_error(caf::sec::runtime_error,
                             "supervisor " + st.cfg.name + " reached its restart intensity: " +
                               self->home_system().render(why)));
}

void on_child_exit(sup_actor* self, size_t index, const caf::error& reason) {
  auto& st = self->state;
  auto& dead = st.children[index];
  bool normal = !reason || reason == caf::exit_reason::normal;
  bool again = dead.spec.kind == restart::permanent ||
               (dead.spec.kind == restart::transient && !normal);
  dead.handle = nullptr;
  if (!again) {
    spdlog::info("supervisor {}: child {} ended ({}), not restarted", st.cfg.name, dead.spec.id,
                 self->home_system().render(reason));
    st.children.erase(st.children.begin() + static_cast<std::ptrdiff_t>(index));
    return;
  }
  if (!st.budget.allow())
    return give_up(self, reason);
  spdlog::warn("supervisor {}: child {} exited with {}; restarting (restart {})", st.cfg.name,
               dead.spec.id, self->home_system().render(reason), st.budget.total());
  size_t first = index, last = index + 1;
  if (st.cfg.strat == strategy::one_for_all) {
    first = 0;
    last = st.children.size();
  } else if (st.cfg.strat == strategy::rest_for_one) {
    last = st.children.size();
  }
  // Stop the others in reverse start order, then start all of them in order.
  for (size_t i = last; i-- > first;)
    if (i != index)
      stop_child(self, st.children[i]);
  for (size_t i = first; i < last; ++i) {
    start_child(self, st.children[i]);
    if (st.cfg.on_restart)
      st.cfg.on_restart(st.children[i].spec.id, st.children[i].handle);
  }
}

caf::behavior supervisor_behavior(sup_actor* self, config cfg) {
  install_defaults(self, "supervisor");
  auto& st = self->state;
  st.budget = restart_budget{cfg.limits};
  st.cfg = std::move(cfg);
  for (auto& spec : st.cfg.children)
    st.children.push_back(child{spec, nullptr});
  st.cfg.children.clear();
  for (auto& c : st.children)
    start_child(self, c);
  self->set_exit_handler([=](caf::exit_msg& em) {
    auto& st = self->state;
    auto it = std::find_if(st.children.begin(), st.children.end(), [&](const child& c) {
      return c.handle && c.handle.address() == em.source;
    });
    if (it != st.children.end())
      return on_child_exit(self, static_cast<size_t>(it - st.children.begin()), em.reason);
    // Not a child: our parent (or another link) is going; go with it, children first.
    for (auto i = st.children.rbegin(); i != st.children.rend(); ++i)
      stop_child(self, *i);
    self->quit(em.reason);
  });
  return {
    [=](add_atom, child_spec& spec) {
      auto& st = self->state;
      st.children.push_back(child{std::move(spec), nullptr});
      start_child(self, st.children.back());
      return st.children.back().handle;
    },
    [=](remove_atom, std::string& id) {
      auto& st = self->state;
      auto it = std::find_if(st.children.begin(), st.children.end(),
                             [&](const child& c) { return c.spec.id == id; });
      if (it == st.children.end())
        return false;
      stop_child(self, *it);
      st.children.erase(it);
      return true;
    },
    [=](which_atom) {
      std::vector<std::pair<std::string, caf::actor>> out;
      for (auto& c : self->state.children)
        out.emplace_back(c.spec.id, c.handle);
      return out;
    },
    [=](count_atom) { return self->state.budget.total(); },
  };
}

}  // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, config cfg) {
  return sys.spawn(supervisor_behavior, std::move(cfg));
}

}  // namespace warren::sup
