// Supervisor strategies, child kinds, restart intensity and escalation, run on CAF's
// deterministic test scheduler (scheduler.policy = testing): nothing happens until the test
// runs the scheduler, so every step is observed in order.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <map>

#include "supervisor/supervisor.hpp"

using namespace warren;

namespace {

using crash_atom = caf::atom_constant<caf::atom("crash")>;
using finish_atom = caf::atom_constant<caf::atom("finish")>;

// Function actors get an argument: CAF 0.17 dereferences a null argument tuple for
// argument-less ones, which UBSan reports.
caf::behavior worker(caf::event_based_actor* self, int) {
  return {
    [=](crash_atom) { self->quit(caf::make_error(caf::sec::runtime_error, "boom")); },
    [=](finish_atom) { self->quit(); },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::vector<std::pair<std::string, caf::actor>> children;
  std::map<std::string, int> restarts;

  fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
  }

  sup::config make(sup::strategy s, std::vector<sup::restart> kinds, sup::intensity lim = {}) {
    sup::config c;
    c.name = "test";
    c.strat = s;
    c.limits = lim;
    for (size_t i = 0; i < kinds.size(); ++i)
      c.children.push_back(sup::child_spec{
        "c" + std::to_string(i), [](caf::actor_system& s) { return s.spawn(worker, 0); },
        kinds[i]});
    c.on_restart = [this](const std::string& id, const caf::actor&) { ++restarts[id]; };
    return c;
  }

  ~fixture() {
    // Stop what the test left running, then let the system go without waiting for stragglers.
    for (auto& a : owned)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    run();
    sys->await_actors_before_shutdown(false);
  }

  caf::actor own(caf::actor a) {
    owned.push_back(a);
    return a;
  }

  std::vector<caf::actor> owned;

  void run() { sched->run(); }

  // Asks the supervisor for its children through a probe actor (no blocking receive).
  std::vector<std::pair<std::string, caf::actor>> which(const caf::actor& svr) {
    children.clear();
    auto probe = sys->spawn(
      [this](caf::event_based_actor* self, caf::actor svr) {
        self->request(svr, caf::infinite, sup::which_atom::value)
          .then([this](std::vector<std::pair<std::string, caf::actor>>& v) { children = v; });
      },
      svr);
    run();
    return children;
  }
};

bool alive(fixture& f, const caf::actor& a) {
  bool down = false;
  auto watcher = f.sys->spawn(
    [&down](caf::event_based_actor* self, caf::actor a) -> caf::behavior {
      self->monitor(a);
      self->set_down_handler([&down](caf::down_msg&) { down = true; });
      return {[](finish_atom) {}};  // stays up until told to exit
    },
    a);
  f.run();
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
  f.run();
  return !down;
}

}  // namespace

TEST_CASE("one_for_one restarts only the child that died", "[supervisor]") {
  fixture f;
  auto svr = f.own(sup::spawn_supervisor(*f.sys, f.make(sup::strategy::one_for_one,
                                                  {sup::restart::permanent, sup::restart::permanent,
                                                   sup::restart::permanent})));
  f.run();
  auto before = f.which(svr);
  REQUIRE(before.size() == 3);
  caf::anon_send(before[1].second, crash_atom::value);
  f.run();
  auto after = f.which(svr);
  REQUIRE(after.size() == 3);
  CHECK(after[0].second == before[0].second);
  CHECK(after[1].second != before[1].second);
  CHECK(after[2].second == before[2].second);
  CHECK(f.restarts == std::map<std::string, int>{{"c1", 1}});
  CHECK(alive(f, after[1].second));
}

TEST_CASE("one_for_all restarts every child", "[supervisor]") {
  fixture f;
  auto svr = f.own(sup::spawn_supervisor(*f.sys, f.make(sup::strategy::one_for_all,
                                                  {sup::restart::permanent, sup::restart::permanent,
                                                   sup::restart::permanent})));
  f.run();
  auto before = f.which(svr);
  caf::anon_send(before[1].second, crash_atom::value);
  f.run();
  auto after = f.which(svr);
  REQUIRE(after.size() == 3);
  for (size_t i = 0; i < 3; ++i)
    CHECK(after[i].second != before[i].second);
  CHECK_FALSE(alive(f, before[0].second));
  CHECK_FALSE(alive(f, before[2].second));
}

TEST_CASE("rest_for_one restarts the child and those started after it", "[supervisor]") {
  fixture f;
  auto svr = f.own(sup::spawn_supervisor(*f.sys, f.make(sup::strategy::rest_for_one,
                                                  {sup::restart::permanent, sup::restart::permanent,
                                                   sup::restart::permanent})));
  f.run();
  auto before = f.which(svr);
  caf::anon_send(before[1].second, crash_atom::value);
  f.run();
  auto after = f.which(svr);
  CHECK(after[0].second == before[0].second);
  CHECK(after[1].second != before[1].second);
  CHECK(after[2].second != before[2].second);
}

TEST_CASE("transient children restart only after a crash; temporary ones never",
          "[supervisor]") {
  fixture f;
  auto svr = f.own(sup::spawn_supervisor(
    *f.sys, f.make(sup::strategy::one_for_one,
                   {sup::restart::transient, sup::restart::transient, sup::restart::temporary})));
  f.run();
  auto before = f.which(svr);
  caf::anon_send(before[0].second, finish_atom::value);  // normal exit: gone for good
  caf::anon_send(before[1].second, crash_atom::value);   // crash: restarted
  caf::anon_send(before[2].second, crash_atom::value);   // temporary: gone for good
  f.run();
  auto after = f.which(svr);
  REQUIRE(after.size() == 1);
  CHECK(after[0].first == "c1");
  CHECK(after[0].second != before[1].second);
}

TEST_CASE("past its restart intensity a supervisor gives up and its parent decides",
          "[supervisor]") {
  fixture f;
  // Child supervisor: at most 2 restarts per period.
  auto inner_cfg = f.make(sup::strategy::one_for_one, {sup::restart::permanent},
                          sup::intensity{2, std::chrono::hours(1)});
  sup::config outer;
  outer.name = "outer";
  outer.limits = sup::intensity{5, std::chrono::hours(1)};
  outer.children.push_back(sup::child_spec{
    "inner", [inner_cfg](caf::actor_system& s) { return sup::spawn_supervisor(s, inner_cfg); },
    sup::restart::permanent});
  int outer_restarts = 0;
  outer.on_restart = [&](const std::string&, const caf::actor&) { ++outer_restarts; };
  auto top = f.own(sup::spawn_supervisor(*f.sys, outer));
  f.run();
  auto inner = f.which(top).at(0).second;
  for (int i = 0; i < 3; ++i) {
    auto worker = f.which(inner).at(0).second;
    caf::anon_send(worker, crash_atom::value);
    f.run();
  }
  // The third crash was one too many: the inner supervisor gave up, the outer one restarted it.
  CHECK(outer_restarts == 1);
  CHECK_FALSE(alive(f, inner));
  auto new_inner = f.which(top).at(0).second;
  CHECK(new_inner != inner);
  CHECK(f.which(new_inner).size() == 1);
}

TEST_CASE("restart_budget slides its window", "[supervisor]") {
  sup::restart_budget b{sup::intensity{2, std::chrono::milliseconds(100)}};
  auto t0 = std::chrono::steady_clock::now();
  CHECK(b.allow(t0));
  CHECK(b.allow(t0 + std::chrono::milliseconds(10)));
  CHECK_FALSE(b.allow(t0 + std::chrono::milliseconds(20)));
  CHECK(b.allow(t0 + std::chrono::milliseconds(150)));
  CHECK(b.total() == 3);
}
