// net::inline_unit on CAF's real scheduler: which thread runs an actor woken from the thread
// that owns the unit (the I/O thread in warrend), and what it hands to the workers.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "net/inline_unit.hpp"

using namespace std::chrono_literals;
using warren::net::inline_unit;

namespace {

// Where each message ran, in arrival order.
struct trace {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::pair<int, std::thread::id>> seen;

  void add(int i) {
    std::lock_guard lock{m};
    seen.emplace_back(i, std::this_thread::get_id());
    cv.notify_all();
  }
  bool wait_for(size_t n) {
    std::unique_lock lock{m};
    return cv.wait_for(lock, 10s, [&] { return seen.size() >= n; });
  }
  // The thread that handled `i`, once it has been handled (an empty id after 10 s).
  std::thread::id thread_of(int i) {
    std::unique_lock lock{m};
    std::thread::id found;
    cv.wait_for(lock, 10s, [&] {
      for (auto& [k, t] : seen)
        if (k == i)
          found = t;
      return found != std::thread::id{};
    });
    return found;
  }
};

// Records each int; with a `next`, passes it on (a connection actor handing a publish to a
// queue actor). A negative int also spins for -i milliseconds first.
caf::behavior recorder(caf::event_based_actor* self, trace* t, caf::actor next) {
  return {[=](int i) {
    if (i < 0) {
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(-i);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    t->add(i);
    if (next)
      self->send(next, i);
  }};
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  trace t;

  fixture() {
    cfg.set("scheduler.max-threads", size_t{2});
    sys = std::make_unique<caf::actor_system>(cfg);
  }
  ~fixture() {
    sys->await_actors_before_shutdown(false);
  }
  caf::actor spawn(caf::actor next = {}) {
    return sys->spawn(recorder, &t, next);
  }
  // Sends `i` through `unit` to a fresh, idle actor, runs the unit, and says whether the
  // calling thread handled it.
  bool handled_here(inline_unit& unit, int i, bool hot) {
    auto a = spawn();
    std::this_thread::sleep_for(20ms);  // idle: its mailbox blocked
    unit.send(a, caf::make_message(i), hot);
    unit.run();
    auto where = t.thread_of(i);
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    REQUIRE(where != std::thread::id{});
    return where == std::this_thread::get_id();
  }
};

}  // namespace

TEST_CASE_METHOD(fixture, "a hot message runs its actor, and the actors it wakes, on the calling thread",
                 "[inline_unit]") {
  inline_unit unit{*sys};
  unit.bind_to_this_thread();
  REQUIRE(inline_unit::current() == &unit);
  auto queue = spawn();
  auto conn = spawn(queue);
  std::this_thread::sleep_for(20ms);  // both idle (their mailboxes blocked)
  unit.send(conn, caf::make_message(1), true);
  std::this_thread::sleep_for(20ms);
  {
    std::lock_guard lock{t.m};
    CHECK(t.seen.empty());  // nothing runs before run()
  }
  unit.run();
  REQUIRE(t.wait_for(2));
  CHECK(t.thread_of(1) == std::this_thread::get_id());
  std::lock_guard lock{t.m};
  CHECK(t.seen[0].second == std::this_thread::get_id());
  CHECK(t.seen[1].second == std::this_thread::get_id());
  caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(queue, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture, "a message that is not hot goes to a worker", "[inline_unit]") {
  inline_unit unit{*sys};
  unit.bind_to_this_thread();
  CHECK(handled_here(unit, 8, true));
  CHECK_FALSE(handled_here(unit, 7, false));
}

TEST_CASE_METHOD(fixture, "a unit not bound to the calling thread runs nothing itself",
                 "[inline_unit]") {
  inline_unit unit{*sys};  // never bound (earlier units unbound themselves when destroyed)
  CHECK(inline_unit::current() == nullptr);
  CHECK_FALSE(handled_here(unit, 3, true));
}

TEST_CASE_METHOD(fixture, "after its busy limit the calling thread hands new work to the workers",
                 "[inline_unit]") {
  inline_unit unit{*sys};
  unit.bind_to_this_thread();
  auto a = spawn();
  auto b = spawn();
  std::this_thread::sleep_for(20ms);
  // One run longer than the limit, then a hot message within the same window.
  auto busy_ms = static_cast<int>(inline_unit::busy_limit.count()) + 1;
  auto started = std::chrono::steady_clock::now();
  unit.send(a, caf::make_message(-busy_ms), true);
  unit.run();
  unit.send(b, caf::make_message(5), true);
  unit.run();
  REQUIRE(t.wait_for(2));
  CHECK(t.thread_of(-busy_ms) == std::this_thread::get_id());
  if (std::chrono::steady_clock::now() - started < inline_unit::window)  // still that window
    CHECK(t.thread_of(5) != std::this_thread::get_id());
  // A window later the thread runs hot work again.
  std::this_thread::sleep_for(inline_unit::window + 5ms);
  unit.send(b, caf::make_message(6), true);
  unit.run();
  REQUIRE(t.wait_for(3));
  CHECK(t.thread_of(6) == std::this_thread::get_id());
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture, "an actor with more than its share in one run finishes on a worker",
                 "[inline_unit]") {
  inline_unit unit{*sys};
  unit.bind_to_this_thread();
  auto a = spawn();
  std::this_thread::sleep_for(20ms);
  const int total = static_cast<int>(inline_unit::max_messages) + 36;
  unit.send(a, caf::make_message(0), true);  // wakes it: queued on the unit
  for (int i = 1; i < total; ++i)             // behind it in its mailbox
    unit.send(a, caf::make_message(i), true);
  unit.run();
  REQUIRE(t.wait_for(static_cast<size_t>(total)));
  std::lock_guard lock{t.m};
  REQUIRE(t.seen.size() == static_cast<size_t>(total));
  for (int i = 0; i < total; ++i) {
    CHECK(t.seen[static_cast<size_t>(i)].first == i);  // in order
    bool here = t.seen[static_cast<size_t>(i)].second == std::this_thread::get_id();
    CHECK(here == (i < static_cast<int>(inline_unit::max_messages)));
  }
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}
