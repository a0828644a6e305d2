// The delivery times behind the consumer timeout (actors/ack_timeout.hpp).
#include <catch2/catch.hpp>

#include <deque>

#include "actors/ack_timeout.hpp"

using warren::delivery_clock;

namespace {

struct pending {
  uint64_t tag;
};

}  // namespace

TEST_CASE("the oldest unacked delivery has the time of the run it came in",
          "[ack_timeout]") {
  delivery_clock c;
  CHECK(c.delivered_at(1) == -1);  // nothing stamped
  c.stamp(1, 100);  // tags 1..4 at 100
  c.stamp(3, 100);  // the same millisecond: no new run
  c.stamp(5, 250);  // tags 5..9 at 250
  c.stamp(10, 900);
  CHECK(c.runs() == 3);
  CHECK(c.delivered_at(1) == 100);
  CHECK(c.delivered_at(4) == 100);
  CHECK(c.runs() == 3);  // 1..4 still holds the oldest
  CHECK(c.delivered_at(5) == 250);
  CHECK(c.runs() == 2);  // the first run is wholly acked
  CHECK(c.delivered_at(12) == 900);
  CHECK(c.runs() == 1);
  // Tags never go back, so an older tag than every run has no time.
  CHECK(c.delivered_at(3) == -1);
}

TEST_CASE("acks trim the runs; nothing unacked clears them", "[ack_timeout]") {
  delivery_clock c;
  std::deque<pending> unacked;
  for (uint64_t t = 1; t <= 6; ++t) {
    c.stamp(t, static_cast<int64_t>(t) * 10);
    unacked.push_back({t});
  }
  CHECK(c.runs() == 6);
  // Acking a later delivery leaves the oldest and its run.
  unacked.erase(unacked.begin() + 3);
  c.settled(unacked, &pending::tag);
  CHECK(c.runs() == 6);
  unacked.erase(unacked.begin(), unacked.begin() + 2);  // 1 and 2 acked: 3 is the oldest
  c.settled(unacked, &pending::tag);
  CHECK(c.runs() == 4);
  CHECK(c.delivered_at(unacked.front().tag) == 30);
  unacked.clear();
  c.settled(unacked, &pending::tag);
  CHECK(c.runs() == 0);
}

TEST_CASE("RabbitMQ's text for the timeout", "[ack_timeout]") {
  CHECK(warren::ack_timeout_text(2, 1000) ==
        "PRECONDITION_FAILED - delivery acknowledgement on channel 2 timed out. Timeout value "
        "used: 1000 ms. This timeout value can be configured, see consumers doc guide to learn "
        "more");
}
