// The firehose's trace messages (actors/trace.hpp), as RabbitMQ's rabbit_trace makes them.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "actors/trace.hpp"
#include "protocol/amqp091/header_routes.hpp"
#include "protocol/amqp091/properties.hpp"

using namespace warren;
using namespace warren::amqp;

namespace {

field_table headers_of(const message& m) {
  basic_properties p;
  REQUIRE(decode_properties(m.properties(), p));
  REQUIRE(p.headers);
  CHECK_FALSE(p.delivery_mode);  // a trace is transient, whatever it traces
  return *p.headers;
}

std::vector<std::string> names(const field_table& t) {
  std::vector<std::string> out;
  for (auto& [k, v] : t)
    out.push_back(k);
  return out;
}

}  // namespace

TEST_CASE("a publish trace names the exchange, keys, properties, origin and queues", "[trace]") {
  basic_properties p;
  p.content_type = "text/plain";
  p.delivery_mode = 2;
  p.timestamp = 1234;
  p.headers = field_table{{"a", int32_t{1}}};
  std::string props;
  encode_properties(p, props);
  message::fields f{"logs", "rk", props, 2, true};
  auto routes = encode_routes({"cc1", "bcc1"});
  f.extra_routes = routes;
  auto m = message::make(f, std::string{"body"});
  trace_origin o{"warren@h", "/", "127.0.0.1:1 -> 127.0.0.1:5672", "guest", 7};

  auto t = trace::publish(*m, o, {"q1", "q2"});
  CHECK(t->exchange() == trace::exchange_name);
  CHECK(t->routing_key() == "publish.logs");
  CHECK(t->body() == "body");
  CHECK(t->delivery_mode() == 0);
  auto h = headers_of(*t);
  CHECK(names(h) == std::vector<std::string>{"exchange_name", "routing_keys", "properties", "node",
                                             "vhost", "connection", "channel", "user",
                                             "routed_queues"});
  CHECK(*find_field(h, "exchange_name") == field_value{"logs"});
  CHECK(*find_field(h, "routing_keys") == field_value{field_array{"rk", "cc1", "bcc1"}});
  CHECK(*find_field(h, "routed_queues") == field_value{field_array{"q1", "q2"}});
  CHECK(*find_field(h, "channel") == field_value{int32_t{7}});
  CHECK(*find_field(h, "node") == field_value{"warren@h"});
  auto* traced_props = find_field(h, "properties")->as_table();
  REQUIRE(traced_props);
  // RabbitMQ's order: the last property first; integers as signed 32-bit, timestamp as long.
  CHECK(names(*traced_props) ==
        std::vector<std::string>{"timestamp", "delivery_mode", "headers", "content_type"});
  CHECK(*find_field(*traced_props, "delivery_mode") == field_value{int32_t{2}});
  CHECK(*find_field(*traced_props, "timestamp") == field_value{int64_t{1234}});
  CHECK(*find_field(*traced_props, "headers") == field_value{field_table{{"a", int32_t{1}}}});

  CHECK(trace::traced(*m));
  CHECK_FALSE(trace::traced(*t));  // traces are not traced
}

TEST_CASE("a delivery trace names the queue and whether it was redelivered", "[trace]") {
  auto m = message::make({"", "jobs", {}, 0, false}, std::string{"x"});
  trace_origin o{"n", "v", "c", "u", 1};
  auto t = trace::deliver(*m, "jobs", true, o);
  CHECK(t->routing_key() == "deliver.jobs");
  auto h = headers_of(*t);
  CHECK(names(h) == std::vector<std::string>{"exchange_name", "routing_keys", "properties", "node",
                                             "redelivered", "vhost", "connection", "channel",
                                             "user"});
  CHECK(*find_field(h, "redelivered") == field_value{int32_t{1}});
  CHECK(*find_field(h, "properties") == field_value{field_table{}});
  CHECK(trace::publish(*m, o, {})->routing_key() == "publish.");
}

TEST_CASE("the default exchange's routed queues are its keys, sorted, each once", "[trace]") {
  message::fields f{"", "b", {}, 0, false};
  auto routes = encode_routes({"a", "b", "c", "a"});
  f.extra_routes = routes;
  auto m = message::make(f, std::string{});
  auto q = trace::default_exchange_queues(*m);
  CHECK(std::vector<std::string>(q.begin(), q.end()) == std::vector<std::string>{"a", "b", "c"});
}
