// The STOMP adapter's pure mappings: destinations and the ERROR names of AMQP failures.
#include <catch2/catch.hpp>

#include "actors/stomp_mapping.hpp"

using namespace warren;

TEST_CASE("stomp mapping: destinations as RabbitMQ's adapter reads them", "[stomp]") {
  stomp_map::destination_error error;
  auto q = stomp_map::parse_destination("/queue/a%2Fb", error);  // "%2F" is a "/"
  REQUIRE(q);
  CHECK(q->kind == stomp_map::dest_kind::queue);
  CHECK(q->name == "a/b");
  auto bare = stomp_map::parse_destination("c%2Fd", error);
  REQUIRE(bare);
  CHECK((bare->kind == stomp_map::dest_kind::queue && bare->name == "c/d"));
  auto reply = stomp_map::parse_destination("/reply-queue/r/s", error);
  REQUIRE(reply);
  CHECK((reply->kind == stomp_map::dest_kind::reply_queue && reply->name == "r/s"));
  auto no_key = stomp_map::parse_destination("/exchange/logs", error);
  REQUIRE(no_key);
  CHECK((no_key->name == "logs" && no_key->key.empty()));
  auto x = stomp_map::parse_destination("/exchange/logs/key.one", error);
  REQUIRE(x);
  CHECK(x->kind == stomp_map::dest_kind::exchange);
  CHECK(x->name == "logs");
  CHECK(x->key == "key.one");
  CHECK(error.message.empty());

  // Each kind takes exactly its segments, none empty but an exchange's key.
  for (auto [text, detail] : std::initializer_list<std::pair<const char*, const char*>>{
         {"/queue/", "'/' is not a valid queue destination\n"},
         {"/queue", "'' is not a valid queue destination\n"},
         {"/queue/a/b", "'/a/b' is not a valid queue destination\n"},
         {"/topic/a/b", "'/a/b' is not a valid topic destination\n"},
         {"/exchange/", "'/' is not a valid exchange destination\n"},
         {"/exchange/x/a/b", "'/x/a/b' is not a valid exchange destination\n"},
         {"/amq/queue/", "'/' is not a valid amqqueue destination\n"},
         {"/temp-queue/", "'/' is not a valid temp_queue destination\n"},
         {"/reply-queue/", "'/' is not a valid reply_queue destination\n"}}) {
    error = {};
    CHECK_FALSE(stomp_map::parse_destination(text, error));
    CHECK(error.message == "Invalid destination");
    CHECK(error.detail == detail);
  }
  error = {};
  CHECK_FALSE(stomp_map::parse_destination("a/b", error));
  CHECK(error.message == "Unknown destination");
  error = {};

  CHECK_FALSE(stomp_map::parse_destination("", error));
  CHECK(error.message == "Invalid destination");
  CHECK(error.detail == "Destination cannot be blank");
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

TEST_CASE("stomp mapping: integer headers as RabbitMQ's adapter reads them", "[stomp]") {
  CHECK(stomp_map::parse_integer("5") == 5);
  CHECK(stomp_map::parse_integer(" 5 ") == 5);
  CHECK(stomp_map::parse_integer("-1") == -1);
  CHECK(stomp_map::parse_integer("+7") == 7);
  for (const char* bad : {"", " ", "x", "5x", "1.5", "+-1", "++1", "\t5", "99999999999999999999"})
    CHECK_FALSE(stomp_map::parse_integer(bad));

  stomp::frame send;
  send.command = "SEND";
  send.headers = {{"destination", "/queue/q"}, {"priority", " 3"}, {"x-max-length", "10"},
                  {"prefetch-count", "not looked at on a SEND"}, {"x-queue-type", "quorum"}};
  CHECK_FALSE(stomp_map::bad_integer_header(send));
  send.headers.emplace_back("timestamp", "now");
  CHECK(stomp_map::bad_integer_header(send) == "header 'timestamp' must be an integer, not 'now'\n");

  stomp::frame subscribe;
  subscribe.command = "SUBSCRIBE";
  subscribe.headers = {{"destination", "/queue/q"}, {"priority", "not looked at"}};
  CHECK_FALSE(stomp_map::bad_integer_header(subscribe));
  subscribe.headers.emplace_back("x-expires", "soon");
  CHECK(stomp_map::bad_integer_header(subscribe) ==
        "header 'x-expires' must be an integer, not 'soon'\n");
  subscribe.headers.insert(subscribe.headers.begin(), {"prefetch-count", "many"});
  CHECK(stomp_map::bad_integer_header(subscribe) ==
        "header 'prefetch-count' must be an integer, not 'many'\n");

  // The arguments of a declare take the same reading.
  stomp::frame spaced;
  spaced.headers = {{"x-max-length", " 5 "}};
  auto args = stomp_map::queue_arguments(spaced);
  REQUIRE(args.size() == 1);
  CHECK(args[0].second == amqp::field_value{int64_t{5}});
}
