// The STOMP adapter's pure mappings: destinations and the ERROR names of AMQP failures.
#include <catch2/catch.hpp>

#include "actors/stomp_mapping.hpp"

using namespace warren;

TEST_CASE("stomp mapping: destinations as RabbitMQ's adapter reads them", "[stomp]") {
  stomp_map::destination_error error;
  auto q = stomp_map::parse_destination("/queue/a/b", error);
  REQUIRE(q);
  CHECK(q->kind == stomp_map::dest_kind::queue);
  CHECK(q->name == "a/b");
  auto x = stomp_map::parse_destination("/exchange/logs/key.one", error);
  REQUIRE(x);
  CHECK(x->kind == stomp_map::dest_kind::exchange);
  CHECK(x->name == "logs");
  CHECK(x->key == "key.one");
  CHECK(error.message.empty());

  CHECK_FALSE(stomp_map::parse_destination("", error));
  CHECK(error.message == "Missing destination");
  error = {};
  CHECK_FALSE(stomp_map::parse_destination("/nonsense/x", error));
  CHECK(error.message == "Unknown destination");
  CHECK(error.detail ==
        "'/nonsense/x' is not a valid destination.\nValid destination types are: /temp-queue, "
        "/exchange, /topic, /queue, /amq/queue, /reply-queue/.\n");
}

TEST_CASE("stomp mapping: an AMQP failure's ERROR name", "[stomp]") {
  CHECK(stomp_map::error_name("PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q'") ==
        "precondition_failed");
  CHECK(stomp_map::error_name("RESOURCE_LOCKED - cannot obtain exclusive access") ==
        "resource_locked");
  CHECK(stomp_map::error_name("NOT_FOUND - no queue 'q'") == "not_found");
  CHECK(stomp_map::error_name("no dash here") == "internal_error");
  CHECK(stomp_map::error_name(" - starts with the dash") == "internal_error");
  CHECK(stomp_map::error_name("Mixed_Case - x") == "internal_error");
  CHECK(stomp_map::error_name("") == "internal_error");
}
