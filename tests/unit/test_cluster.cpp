// What crosses between the nodes of a cluster: the messages of actors/messages.hpp and
// cluster/definitions.hpp, serialized as CAF's middleman does it (the whole caf::message, by
// the type names add_cluster_types registers) and read back; and conn_keys, which keeps the
// connections of different nodes apart in a queue.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <string>
#include <vector>

#include "actors/conn_keys.hpp"
#include "actors/registry_actor.hpp"
#include "cluster/cluster_actor.hpp"

using namespace warren;
using amqp::field_value;

namespace {

struct cluster_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  cluster_system() {
    add_cluster_types(cfg);
    cfg.set("scheduler.max-threads", size_t{1});
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

// The message as another node reads it.
caf::message cross(caf::actor_system& sys, caf::message m) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE_FALSE(sink(m));
  caf::message out;
  caf::binary_deserializer source{sys, buf};
  REQUIRE_FALSE(source(out));
  return out;
}

message_ptr make_msg(std::string_view exchange, std::string_view key, std::string body,
                     uint8_t mode, bool dead_lettered = false) {
  message::fields f;
  f.exchange = exchange;
  f.routing_key = key;
  f.properties = std::string_view{"\x10\x00\x02", 3};  // delivery-mode flag and value
  f.delivery_mode = mode;
  f.has_headers = true;
  f.dead_lettered = dead_lettered;
  return message::make(f, std::move(body));
}

}  // namespace

TEST_CASE("a publish batch crosses with its messages, weights and credit", "[cluster]") {
  cluster_system cs;
  std::string big(5000, 'x');
  big[17] = '\0';  // bodies are bytes
  publish_batch b;
  b.channel = 7;
  b.hops = 2;
  b.credited = true;
  b.credited_bytes = 5005;
  b.redelivered = true;
  b.items.push_back(publish_item{make_msg("ex", "k.1", "small", 2), 41, full_weight / 2});
  b.items.push_back(publish_item{make_msg("", "q", big, 1, true), 42, 0});
  auto m = cross(*cs.sys, caf::make_message(publish_atom::value, b));
  REQUIRE(m.match_elements<publish_atom, publish_batch>());
  auto& r = m.get_as<publish_batch>(1);
  CHECK_FALSE(r.publisher);
  CHECK(r.channel == 7);
  CHECK(r.hops == 2);
  CHECK(r.credited);
  CHECK(r.credited_bytes == 5005);
  CHECK(r.redelivered);
  REQUIRE(r.items.size() == 2);
  CHECK(r.items[0].seq == 41);
  CHECK(r.items[0].weight == full_weight / 2);
  CHECK(r.items[0].msg->exchange() == "ex");
  CHECK(r.items[0].msg->routing_key() == "k.1");
  CHECK(r.items[0].msg->body() == "small");
  CHECK(r.items[0].msg->properties() == std::string_view{"\x10\x00\x02", 3});
  CHECK(r.items[0].msg->delivery_mode() == 2);
  CHECK(r.items[0].msg->has_headers());
  CHECK_FALSE(r.items[0].msg->dead_lettered());
  CHECK(r.items[1].msg->body() == big);
  CHECK(r.items[1].msg->dead_lettered());
  CHECK(r.items[1].msg.get() != b.items[1].msg.get());  // built anew on the other side
}

TEST_CASE("deliveries, confirms and answers cross", "[cluster]") {
  cluster_system cs;
  delivery_batch d;
  d.consumer_id = 3;
  d.items.push_back(delivery{make_msg("amq.direct", "rk", "body", 2), 99, true});
  auto m = cross(*cs.sys, caf::make_message(deliver_atom::value, d));
  REQUIRE(m.match_elements<deliver_atom, delivery_batch>());
  auto& rd = m.get_as<delivery_batch>(1);
  CHECK(rd.consumer_id == 3);
  REQUIRE(rd.items.size() == 1);
  CHECK(rd.items[0].msg_id == 99);
  CHECK(rd.items[0].redelivered);
  CHECK(rd.items[0].msg->body() == "body");

  confirm_report c{5, {weight_return{1, 2, true, false}, weight_return{3, 4, true, true}}};
  auto rc = cross(*cs.sys, caf::make_message(confirm_atom::value, c)).get_as<confirm_report>(1);
  CHECK(rc.channel == 5);
  REQUIRE(rc.returns.size() == 2);
  CHECK(rc.returns[1].seq == 3);
  CHECK(rc.returns[1].weight == 4);
  CHECK(rc.returns[1].rejected);

  get_result g{0, "", false, delivery{make_msg("", "q", "got", 1), 12, false}, 4};
  auto rg = cross(*cs.sys, caf::make_message(g)).get_as<get_result>(0);
  CHECK_FALSE(rg.empty);
  CHECK(rg.d.msg_id == 12);
  CHECK(rg.d.msg->body() == "got");
  CHECK(rg.message_count == 4);

  queue_declared q{404, "NOT_FOUND - x", "q", 1, 2, {}};
  auto rq = cross(*cs.sys, caf::make_message(q)).get_as<queue_declared>(0);
  CHECK(rq.code == 404);
  CHECK(rq.text == "NOT_FOUND - x");
  CHECK(rq.messages == 1);
  CHECK(rq.consumers == 2);

  auto ids = std::vector<uint64_t>{1, 5, 9};
  auto ra = cross(*cs.sys, caf::make_message(ack_atom::value, ids));
  CHECK(ra.get_as<std::vector<uint64_t>>(1) == ids);
}

TEST_CASE("a consumer crosses with its arguments and its selector, compiled again",
          "[cluster]") {
  cluster_system cs;
  consumer_spec s;
  s.channel = 2;
  s.consumer_id = 8;
  s.tag = "ctag";
  s.priority = -3;
  s.credit = 100;
  s.prefetch = 50;
  s.arguments = {{"x-stream-offset", field_value{int64_t{1234}}}};
  s.selector_text = "color = 'red' AND n > 5";
  s.selector = stomp::selector::parse(s.selector_text).expr;
  s.connection_name = "127.0.0.1:40000 -> 127.0.0.1:5672";
  s.user = "guest";
  s.node = "b@h";
  auto r = cross(*cs.sys, caf::make_message(consume_atom::value, s)).get_as<consumer_spec>(1);
  CHECK(r.tag == "ctag");
  CHECK(r.connection_name == s.connection_name);
  CHECK(r.user == "guest");
  CHECK(r.node == "b@h");
  CHECK(r.priority == -3);
  CHECK(r.credit == 100);
  CHECK(r.prefetch == 50);
  REQUIRE(r.arguments.size() == 1);
  CHECK(r.arguments[0].first == "x-stream-offset");
  CHECK(r.arguments[0].second == field_value{int64_t{1234}});
  REQUIRE(r.selector);
  auto headers = [](std::string color, std::string n) {
    return [=](std::string_view name) -> std::optional<std::string> {
      if (name == "color")
        return color;
      if (name == "n")
        return n;
      return std::nullopt;
    };
  };
  CHECK(stomp::selector::matches(*r.selector, headers("red", "6")));
  CHECK_FALSE(stomp::selector::matches(*r.selector, headers("red", "5")));
}

TEST_CASE("the numbers of a node's queues and connections cross", "[cluster]") {
  cluster_system cs;
  metrics::sample<metrics::queue_stats> q;
  q.prev.vhost = q.cur.vhost = "/";
  q.prev.name = q.cur.name = "orders";
  q.prev.ready = 10;
  q.cur.ready = 4;
  q.cur.unacked = 3;
  q.prev.published = 100;
  q.cur.published = 300;
  q.cur.delivered = 250;
  q.cur.acked = 240;
  q.cur.redelivered = 2;
  q.seconds = 2;
  metrics::consumer_stats k;
  k.tag = "ctag";
  k.connection_name = "127.0.0.1:40000 -> 127.0.0.1:5672";
  k.user = "bob";
  k.node = "b@h";
  k.channel = 3;
  k.prefetch = 10;
  k.priority = 4;
  k.arguments = {{"x-priority", field_value{int32_t{4}}}};
  k.activity = "single_active";
  q.cur.consumers.push_back(k);
  auto mine = metrics::summarize(q);
  CHECK(mine.publish_rate == 100.0);  // (300 - 100) / 2 s
  CHECK(mine.depth_rate == -1.5);     // 10 ready, then 4 + 3
  metrics::node_stats all;
  all.queues.push_back(mine);
  metrics::sample<metrics::connection_stats> conn;
  conn.cur.id = 42;
  conn.cur.protocol = "AMQP 0-9-1";
  conn.cur.peer = "127.0.0.1:40000";
  conn.cur.local = "127.0.0.1:5672";
  conn.cur.user = "bob";
  conn.cur.recv_oct = 1000;
  conn.prev.recv_oct = 400;
  conn.seconds = 1.5;
  metrics::channel_stats ch;
  ch.number = 2;
  ch.prefetch = 10;
  ch.counters.published = 7;
  ch.confirm = true;
  conn.cur.channels.push_back(ch);
  conn.cur.totals.published = 9;
  all.connections.push_back(conn);
  all.closed.acked = 5;
  all.listeners.push_back(metrics::listener_summary{"clustering", "127.0.0.1", 25672});
  auto m = cross(*cs.sys, caf::make_message(stats_atom::value, all, std::string{"a@h"}));
  CHECK(m.get_as<std::string>(2) == "a@h");
  auto& got = m.get_as<metrics::node_stats>(1);
  REQUIRE(got.listeners.size() == 1);
  CHECK(got.listeners[0].protocol == "clustering");
  CHECK(got.listeners[0].address == "127.0.0.1");
  CHECK(got.listeners[0].port == 25672);
  auto& r = got.queues;
  REQUIRE(r.size() == 1);
  CHECK(r[0].vhost == "/");
  CHECK(r[0].name == "orders");
  CHECK(r[0].ready == 4);
  CHECK(r[0].unacked == 3);
  CHECK(r[0].published == 300);
  CHECK(r[0].delivered == 250);
  CHECK(r[0].acked == 240);
  CHECK(r[0].redelivered == 2);
  CHECK(r[0].publish_rate == 100.0);
  CHECK(r[0].depth_rate == -1.5);
  REQUIRE(r[0].consumers.size() == 1);
  auto& c = r[0].consumers[0];
  CHECK(c.tag == "ctag");
  CHECK(c.connection_name == k.connection_name);
  CHECK(c.user == "bob");
  CHECK(c.node == "b@h");
  CHECK(c.channel == 3);
  CHECK(c.prefetch == 10);
  CHECK(c.priority == 4);
  CHECK(c.activity == "single_active");
  REQUIRE(c.arguments.size() == 1);
  CHECK(c.arguments[0].second == field_value{int32_t{4}});
  REQUIRE(got.connections.size() == 1);
  auto& rc = got.connections[0];
  CHECK(rc.cur.id == 42);
  CHECK(rc.cur.peer == "127.0.0.1:40000");
  CHECK(rc.cur.user == "bob");
  CHECK(rc.rate(&metrics::connection_stats::recv_oct) == 400.0);  // 600 B in 1.5 s
  REQUIRE(rc.cur.channels.size() == 1);
  CHECK(rc.cur.channels[0].number == 2);
  CHECK(rc.cur.channels[0].prefetch == 10);
  CHECK(rc.cur.channels[0].counters.published == 7);
  CHECK(rc.cur.channels[0].confirm);
  CHECK(rc.cur.totals.published == 9);
  CHECK(got.closed.acked == 5);

  metrics::remote_stats_store store;
  store.set("a@h", got);
  auto nodes = store.get();
  REQUIRE(nodes.count("a@h") == 1);
  CHECK(nodes["a@h"]->queues.at({"/", "orders"}).ready == 4);
  CHECK(nodes["a@h"]->connections.size() == 1);
  CHECK(nodes["a@h"]->closed.acked == 5);
  store.erase("a@h");
  CHECK(store.get().empty());
}

TEST_CASE("definitions and registry changes cross", "[cluster]") {
  cluster_system cs;
  vhost_definitions d;
  d.vhost = "/";
  exchange_spec x;
  x.name = "ex";
  x.type = "topic";
  x.durable = true;
  x.arguments = {{"alternate-exchange", field_value{std::string{"ae"}}}};
  x.stamp = 1'700'000'000'000'001;
  d.exchanges.push_back(x);
  queue_spec q;
  q.name = "q";
  q.durable = true;
  q.arguments = {{"x-max-length", field_value{int32_t{10}}}};
  q.stamp = 1'700'000'000'000'002;
  d.queues.push_back(queue_location{q, {}});
  d.bindings.push_back(binding_spec{"ex", "q", false, "a.#", {}, {}, {}, 1'700'000'000'000'003});
  d.deleted_queues.push_back(tombstone{"old", 1'700'000'000'000'004});
  d.deleted_exchanges.push_back(tombstone{"gone", 1'700'000'000'000'005});
  d.unbound.push_back(binding_spec{"ex", "q", false, "b.*", {}, {}, {}, 1'700'000'000'000'006});
  d.taken = 1'700'000'000'000'007;
  cluster_snapshot snap;
  snap.vhosts.push_back(d);
  snap.registry.push_back(
    registry_change{caf::make_message(put_atom::value, user_info{"u", "hash", "tag"}), 8});
  snap.registry.push_back(registry_change{
    caf::make_message(put_atom::value, permission_info{"u", "/", ".*", "w", "r"}), 9});
  snap.registry.push_back(registry_change{
    caf::make_message(delete_atom::value, user_atom::value, std::string{"gone"}), 10});
  snap.removed.push_back(tombstone{"c@h", 11});
  snap.admitted = 12;
  auto r = cross(*cs.sys, caf::make_message(hello_atom::value, node_info{"a@h", "127.0.0.1",
                                                                          25672, {}, 13},
                                            snap));
  REQUIRE(r.match_elements<hello_atom, node_info, cluster_snapshot>());
  auto& who = r.get_as<node_info>(1);
  CHECK(who.name == "a@h");
  CHECK(who.port == 25672);
  CHECK(who.admitted == 13);
  auto& rs = r.get_as<cluster_snapshot>(2);
  REQUIRE(rs.vhosts.size() == 1);
  auto& rd = rs.vhosts[0];
  REQUIRE(rd.exchanges.size() == 1);
  CHECK(rd.exchanges[0].type == "topic");
  CHECK(rd.exchanges[0].durable);
  REQUIRE(rd.exchanges[0].arguments.size() == 1);
  CHECK(rd.exchanges[0].arguments[0].second == field_value{std::string{"ae"}});
  CHECK(rd.exchanges[0].stamp == 1'700'000'000'000'001);
  REQUIRE(rd.queues.size() == 1);
  CHECK(rd.queues[0].spec.name == "q");
  CHECK(rd.queues[0].spec.arguments[0].second == field_value{int32_t{10}});
  CHECK(rd.queues[0].spec.stamp == 1'700'000'000'000'002);
  REQUIRE(rd.bindings.size() == 1);
  CHECK(rd.bindings[0].key == "a.#");
  CHECK(rd.bindings[0].stamp == 1'700'000'000'000'003);
  CHECK(rd.deleted_queues == std::vector<tombstone>{{"old", 1'700'000'000'000'004}});
  CHECK(rd.deleted_exchanges == std::vector<tombstone>{{"gone", 1'700'000'000'000'005}});
  REQUIRE(rd.unbound.size() == 1);
  CHECK(rd.unbound[0].key == "b.*");
  CHECK(rd.unbound[0].stamp == 1'700'000'000'000'006);
  CHECK(rd.taken == 1'700'000'000'000'007);
  CHECK_FALSE(rs.refused);
  CHECK(rs.removed == std::vector<tombstone>{{"c@h", 11}});
  CHECK(rs.admitted == 12);
  cluster_snapshot refusal;
  refusal.refused = true;
  CHECK(cross(*cs.sys, caf::make_message(refusal)).get_as<cluster_snapshot>(0).refused);
  REQUIRE(rs.registry.size() == 3);
  REQUIRE(rs.registry[0].change.match_elements<put_atom, user_info>());
  CHECK(rs.registry[0].change.get_as<user_info>(1).password_hash == "hash");
  CHECK(rs.registry[0].stamp == 8);
  REQUIRE(rs.registry[1].change.match_elements<put_atom, permission_info>());
  CHECK(rs.registry[1].change.get_as<permission_info>(1).write == "w");
  CHECK(rs.registry[1].stamp == 9);
  REQUIRE(rs.registry[2].change.match_elements<delete_atom, user_atom, std::string>());
  CHECK(rs.registry[2].change.get_as<std::string>(2) == "gone");
  CHECK(rs.registry[2].stamp == 10);
}

TEST_CASE("connections of different nodes with the same actor id get different keys",
          "[cluster]") {
  cluster_system cs;
  conn_keys keys;
  keys.local = cs.sys->node();
  caf::node_id::default_data::host_id_type h1{}, h2{};
  h1[0] = 1;
  h2[0] = 2;
  auto n1 = caf::make_node_id(100, h1);
  auto n2 = caf::make_node_id(200, h2);
  CHECK(keys.of(keys.local, 42) == 42);  // this node's: the actor id itself
  auto k1 = keys.of(n1, 42);
  auto k2 = keys.of(n2, 42);
  CHECK(k1 != 42);
  CHECK(k2 != 42);
  CHECK(k1 != k2);
  CHECK(keys.of(n1, 42) == k1);  // stable
  CHECK(keys.of(n1, 43) != k1);
}

TEST_CASE("node addresses are host:port", "[cluster]") {
  std::string host;
  uint16_t port = 0;
  CHECK(parse_node_address("127.0.0.1:25672", host, port));
  CHECK(host == "127.0.0.1");
  CHECK(port == 25672);
  for (auto bad : {"", "host", ":25672", "host:", "host:0", "host:70000", "host:12x"})
    CHECK_FALSE(parse_node_address(bad, host, port));
}
