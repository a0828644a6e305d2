// Publish credit (actors/publish_credit.hpp): the connection's account of what each queue or
// exchange has not handed back, and the receiver's grants, through real CAF actors.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "actors/publish_credit.hpp"

using namespace std::chrono_literals;
using warren::batch_meter;
using warren::credit_account;
using warren::credit_grants;
using warren::message;
using warren::publish_batch;
using warren::publish_credit;

namespace {

publish_batch batch_of(size_t n, size_t body_bytes) {
  publish_batch b;
  for (size_t i = 0; i < n; ++i)
    b.items.push_back({message::make({"", "q", {}, 0, false}, std::string(body_bytes, 'x')), 0, 0});
  return b;
}

// Takes credited batches the way a queue does, granting through credit_grants.
struct receiver_state {
  credit_grants grants;
};

// (An argument, even unused: CAF 0.17 dereferences a null tuple for argument-less function
// actors, which UBSan reports.)
caf::behavior receiver(caf::stateful_actor<receiver_state>* self, int) {
  return {
    [=](warren::publish_atom, publish_batch& b) {
      if (b.credited && b.publisher)
        self->state.grants.took(self, b.publisher, publish_credit::of(b));
    },
    [=](warren::report_atom) { return self->state.grants.publishers(); },
    [](warren::grant_atom, uint64_t, uint64_t) {},  // as publishers, for the last test
  };
}

struct grant {
  uint64_t messages = 0, bytes = 0;
};

// The grants that reach `self` within `wait`.
std::vector<grant> grants_received(caf::scoped_actor& self, std::chrono::milliseconds wait) {
  std::vector<grant> out;
  bool more = true;
  while (more)
    self->receive(
      [&](warren::grant_atom, uint64_t m, uint64_t b) { out.push_back({m, b}); },
      caf::after(wait) >> [&] { more = false; });
  return out;
}

}  // namespace

TEST_CASE("an account stops at a window of messages or bytes and goes on when granted",
          "[credit]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto queue = sys.spawn(receiver, 0);
  auto other = sys.spawn(receiver, 0);
  credit_account acct;

  auto b = batch_of(publish_credit::window_messages - 1, 16);
  acct.spend(queue, b);
  CHECK(b.credited);
  CHECK_FALSE(acct.exhausted());
  auto one = batch_of(1, 16);
  acct.spend(queue, one);
  CHECK(acct.exhausted());
  // Another receiver with credit left does not help: one exhausted receiver stops it all.
  auto small = batch_of(10, 16);
  acct.spend(other, small);
  CHECK(acct.exhausted());
  // A grant from a stranger changes nothing.
  CHECK_FALSE(acct.grant(caf::actor_addr{}, 1000, 0));
  CHECK(acct.exhausted());
  // Half a window back: usable again.
  CHECK(acct.grant(queue.address(), publish_credit::window_messages / 2,
                   publish_credit::window_messages / 2 * 16));
  CHECK_FALSE(acct.exhausted());
  CHECK(acct.receivers() == 2);
  // All of it back: the entry goes.
  CHECK_FALSE(acct.grant(other.address(), 10, 160));
  CHECK(acct.receivers() == 1);

  // Bytes: one message of a whole window's bytes stops it too.
  credit_account bytes;
  auto big = batch_of(1, publish_credit::window_bytes);
  bytes.spend(queue, big);
  CHECK(bytes.exhausted());
  // A receiver that goes away takes its debt with it.
  bytes.forget(queue.address());
  CHECK_FALSE(bytes.exhausted());
  CHECK(bytes.receivers() == 0);

  caf::anon_send_exit(queue, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
}

TEST_CASE("a receiver grants half a window at a time, and all of it to many publishers",
          "[credit]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto queue = sys.spawn(receiver, 0);
  caf::scoped_actor self{sys};
  credit_account acct;

  // 25 batches of 1,000: grants come at 10,000 and 20,000 messages taken.
  for (int i = 0; i < 25; ++i) {
    auto b = batch_of(1000, 16);
    b.publisher = caf::actor_cast<caf::actor>(self);
    acct.spend(queue, b);
    self->send(queue, warren::publish_atom::value, std::move(b));
  }
  auto got = grants_received(self, 500ms);
  REQUIRE(got.size() == 2);
  for (auto& g : got) {
    CHECK(g.messages == publish_credit::window_messages / 2);
    CHECK(g.bytes == publish_credit::window_messages / 2 * 16);
    acct.grant(queue.address(), g.messages, g.bytes);
  }
  CHECK_FALSE(acct.exhausted());

  // An uncredited batch (from an exchange, or an internal publish) is never granted.
  auto plain = batch_of(publish_credit::window_messages, 16);
  plain.publisher = caf::actor_cast<caf::actor>(self);
  self->send(queue, warren::publish_atom::value, std::move(plain));
  CHECK(grants_received(self, 200ms).empty());

  // Many publishers that each sent a little: past max_publishers the receiver grants all of
  // it back rather than keep an entry for each.
  std::vector<caf::actor> publishers;
  for (size_t i = 0; i <= credit_grants::max_publishers; ++i) {
    auto b = batch_of(1, 16);
    b.credited = true;
    b.publisher = i == 0 ? caf::actor_cast<caf::actor>(self) : sys.spawn(receiver, 0);
    if (i > 0)
      publishers.push_back(b.publisher);
    self->send(queue, warren::publish_atom::value, std::move(b));
  }
  // The first of them is this actor: it had 5,000 messages owed from above, plus this one.
  got = grants_received(self, 500ms);
  REQUIRE(got.size() == 1);
  CHECK(got[0].messages == 5001);
  self->request(queue, 5s, warren::report_atom::value)
    .receive([](size_t n) { CHECK(n == 0); }, [](caf::error&) { FAIL("no answer"); });

  for (auto& p : publishers)
    caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(queue, caf::exit_reason::user_shutdown);
}

TEST_CASE("a batch meter fills at a count of messages or of bytes", "[credit]") {
  batch_meter m;
  for (uint64_t i = 1; i < batch_meter::max_messages; ++i)
    REQUIRE_FALSE(m.add(16));
  CHECK(m.add(16));
  m.reset();
  CHECK(m.messages == 0);
  CHECK(m.add(batch_meter::max_bytes));
}
