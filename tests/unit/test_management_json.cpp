// The management API's JSON conversions (field tables, properties, UTF-8) and the /metrics
// rendering of a snapshot, per object and aggregated.
#include <catch2/catch.hpp>

#include "management/json_amqp.hpp"
#include "metrics/prometheus_exporter.hpp"

using namespace warren;
using mgmt::json;

TEST_CASE("field tables convert to JSON and back") {
  amqp::field_table t{{"s", std::string{"text"}},
                      {"i", int32_t{-5}},
                      {"b", true},
                      {"d", 1.5},
                      {"nested", amqp::field_table{{"k", int64_t{7}}}},
                      {"list", amqp::field_array{int64_t{1}, std::string{"two"}}},
                      {"void", amqp::field_value{}}};
  auto j = mgmt::to_json(t);
  CHECK(j == json::parse(R"({"s":"text","i":-5,"b":true,"d":1.5,"nested":{"k":7},
                              "list":[1,"two"],"void":null})"));
  std::string error;
  auto back = mgmt::table_from_json(j, error);
  REQUIRE(back);
  CHECK(mgmt::to_json(*back) == j);
  CHECK_FALSE(mgmt::table_from_json(json::array({1}), error));
  CHECK_FALSE(error.empty());
}

TEST_CASE("properties convert from the API's JSON") {
  std::string error;
  auto p = mgmt::properties_from_json(
    json::parse(R"({"delivery_mode":2,"content_type":"text/plain","headers":{"a":"b"},
                    "priority":3,"timestamp":1700000000})"),
    error);
  REQUIRE(p);
  CHECK(p->delivery_mode == std::optional<uint8_t>{2});
  CHECK(p->content_type == std::optional<std::string>{"text/plain"});
  CHECK(p->priority == std::optional<uint8_t>{3});
  REQUIRE(p->headers);
  CHECK(mgmt::to_json(*p)["headers"] == json::parse(R"({"a":"b"})"));
  CHECK_FALSE(mgmt::properties_from_json(json::parse(R"({"delivery_mode":"two"})"), error));
  CHECK_FALSE(mgmt::properties_from_json(json::parse(R"({"reply_to":5})"), error));
}

TEST_CASE("UTF-8 validation") {
  CHECK(mgmt::valid_utf8("plain ascii"));
  CHECK(mgmt::valid_utf8("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x90\x87"));
  CHECK_FALSE(mgmt::valid_utf8("\xff"));
  CHECK_FALSE(mgmt::valid_utf8("cut \xe2\x82"));
  CHECK_FALSE(mgmt::valid_utf8("\xc3("));
  CHECK(mgmt::dump(json{std::string{"\xff"}}) != "");  // no throw on bad UTF-8
  // Well-formed only, as Prometheus checks: no overlong forms, surrogates or past U+10FFFF.
  CHECK_FALSE(mgmt::valid_utf8("\xc0\x80"));
  CHECK_FALSE(mgmt::valid_utf8("\xe0\x80\x80"));
  CHECK_FALSE(mgmt::valid_utf8("\xed\xa0\x80"));
  CHECK_FALSE(mgmt::valid_utf8("\xf4\x90\x80\x80"));
  CHECK(mgmt::valid_utf8("\xed\x9f\xbf \xf4\x8f\xbf\xbf"));
  CHECK(mgmt::utf8_or_replaced("ok \xc3\xa9") == "ok \xc3\xa9");
  CHECK(mgmt::utf8_or_replaced("a\xff" "b\xe2\x82") ==
        "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd");
}

namespace {

metrics::snapshot make_snapshot() {
  metrics::snapshot snap;
  auto q = std::make_shared<metrics::sample<metrics::queue_stats>>();
  q->cur.id = 1;
  q->cur.vhost = "/";
  q->cur.name = "q1";
  q->cur.ready = 7;
  q->cur.unacked = 2;
  q->cur.published = 12;
  q->cur.consumers.resize(1);
  snap.queues.emplace(1, q);
  auto q2 = std::make_shared<metrics::sample<metrics::queue_stats>>(*q);
  q2->cur.id = 2;
  q2->cur.name = "q2";
  q2->cur.ready = 1;
  q2->cur.unacked = 0;
  q2->cur.published = 1;
  snap.queues.emplace(2, q2);
  auto c = std::make_shared<metrics::sample<metrics::connection_stats>>();
  c->cur.id = 3;
  c->cur.peer = "127.0.0.1:5000";
  c->cur.local = "127.0.0.1:5672";
  c->cur.vhost = "/";
  c->cur.recv_oct = 100;
  c->cur.channels.resize(1);
  c->cur.channels[0].number = 1;
  c->cur.channels[0].counters.published = 4;
  c->cur.totals.published = 6;  // 2 on a closed channel
  snap.connections.emplace(3, c);
  snap.retired.queue_published = 30;
  snap.retired.channels.published = 10;
  return snap;
}

}  // namespace

TEST_CASE("/metrics per object has a series per queue and channel") {
  auto text = metrics::render_metrics(make_snapshot(), {true, "/nonexistent", "warren@test"});
  CHECK(text.find("# TYPE rabbitmq_queue_messages_ready gauge") != std::string::npos);
  CHECK(text.find("rabbitmq_queue_messages_ready{queue=\"q1\",vhost=\"/\"} 7") !=
        std::string::npos);
  CHECK(text.find("rabbitmq_queue_messages_unacked{queue=\"q1\",vhost=\"/\"} 2") !=
        std::string::npos);
  CHECK(text.find("rabbitmq_queue_messages_published_total{queue=\"q2\",vhost=\"/\"} 1") !=
        std::string::npos);
  CHECK(text.find("# TYPE rabbitmq_queue_messages_published_total counter") !=
        std::string::npos);
  CHECK(text.find("rabbitmq_channel_messages_published_total{channel=\"127.0.0.1:5000 -> "
                  "127.0.0.1:5672 (1)\",vhost=\"/\"} 4") != std::string::npos);
  CHECK(text.find("rabbitmq_connections 1") != std::string::npos);
  CHECK(text.find("warren_actor_restarts_total{actor=\"queue\"} 0") != std::string::npos);
}

TEST_CASE("/metrics labels are UTF-8 whatever the names") {
  // A queue may be named with any octets; one label value that is not UTF-8 makes
  // Prometheus drop the whole scrape.
  auto snap = make_snapshot();
  auto q = std::make_shared<metrics::sample<metrics::queue_stats>>(*snap.queues.at(1));
  q->cur.name = "bad\xff\xfe" "name";
  snap.queues[1] = q;
  auto text = metrics::render_metrics(snap, {true, "/nonexistent", "warren@test"});
  CHECK(mgmt::valid_utf8(text));
  CHECK(text.find("rabbitmq_queue_messages_ready{queue=\"bad\xef\xbf\xbd\xef\xbf\xbd" "name\","
                  "vhost=\"/\"} 7") != std::string::npos);
}

TEST_CASE("/metrics aggregated sums objects and keeps what stopped") {
  auto text = metrics::render_metrics(make_snapshot(), {false, "/nonexistent", "warren@test"});
  CHECK(text.find("rabbitmq_queue_messages_ready 8\n") != std::string::npos);
  CHECK(text.find("rabbitmq_queue_messages 10\n") != std::string::npos);
  CHECK(text.find("rabbitmq_queue_consumers 2\n") != std::string::npos);
  CHECK(text.find("rabbitmq_queue_messages_published_total 43\n") != std::string::npos);
  CHECK(text.find("rabbitmq_channel_messages_published_total 16\n") != std::string::npos);
  CHECK(text.find("queue=\"") == std::string::npos);
  CHECK(text.find("connection=\"") == std::string::npos);
  CHECK(text.find("channel=\"") == std::string::npos);
}
