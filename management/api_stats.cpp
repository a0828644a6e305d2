// /api/overview, /api/nodes, /api/connections, /api/channels, /api/consumers and the health
// checks: built from the stats collector's snapshot (at most one report interval old), what
// the other cluster members sent of their queues and connections (cluster/node_stats.hpp),
// and process numbers; closing a connection is a message to its actor, on whichever node.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <map>
#include <thread>

#include "actors/resource_alarms.hpp"
#include "management/api.hpp"
#include "management/json_amqp.hpp"
#include "actors/message_inspect.hpp"  // decode_arguments (after the types it needs)
#include "metrics/process_stats.hpp"
#include "net/tls.hpp"

namespace warren::mgmt {

namespace {

constexpr auto& fields = metrics::channel_counter_fields;
using field_rates = std::array<double, std::size(fields)>;  // per counter, as `fields`

// RabbitMQ's message_stats of channel counters `n`: each count with its rate, and deliver_get,
// the sum of deliveries and gets, with its rate.
json message_stats(const metrics::channel_counters& n, const field_rates& rates) {
  json out = json::object();
  double deliver_get = 0;
  for (size_t i = 0; i < std::size(fields); ++i) {
    out[fields[i].stats_key] = n.*fields[i].member;
    out[std::string{fields[i].stats_key} + "_details"] = rate(rates[i]);
    deliver_get += fields[i].delivery ? rates[i] : 0;
  }
  out["deliver_get"] = n.deliver_get();
  out["deliver_get_details"] = rate(deliver_get);
  return out;
}

// The rate of each counter from `p` to `n`, `seconds` apart (none without `p`).
field_rates counter_rates(const metrics::channel_counters& n, const metrics::channel_counters* p,
                          double seconds) {
  field_rates r{};
  for (size_t i = 0; i < std::size(fields); ++i) {
    auto f = fields[i].member;
    if (p && seconds > 0 && n.*f >= p->*f)
      r[i] = double(n.*f - p->*f) / seconds;
  }
  return r;
}

double bytes_rate(const conn_sample& s, uint64_t metrics::connection_stats::*f) {
  return s.rate(f);
}

json channel_message_stats(const metrics::channel_counters& n, const metrics::channel_counters* p,
                           double seconds) {
  return message_stats(n, counter_rates(n, p, seconds));
}

json connection_json(const std::string& node, const conn_sample& s) {
  auto& c = s.cur;
  // RabbitMQ shows null for what a connection does not have (no TLS, no client certificate).
  auto text_or_null = [](const std::string& v) { return v.empty() ? json(nullptr) : json(v); };
  return json{{"name", connection_name(c)},
              {"node", node},
              {"type", "network"},
              {"state", "running"},
              {"protocol", c.protocol},
              {"user", c.user},
              {"vhost", c.vhost},
              {"host", host_of(c.local)},
              {"port", port_of(c.local)},
              {"peer_host", host_of(c.peer)},
              {"peer_port", port_of(c.peer)},
              {"ssl", c.ssl},
              {"ssl_protocol", text_or_null(c.ssl_protocol)},
              {"ssl_cipher", text_or_null(c.ssl_cipher)},
              {"peer_cert_subject", text_or_null(c.peer_cert_subject)},
              {"peer_cert_issuer", text_or_null(c.peer_cert_issuer)},
              {"channels", c.channels.size()},
              {"channel_max", c.channel_max},
              {"frame_max", c.frame_max},
              {"timeout", c.heartbeat},
              {"client_properties", c.client_properties.empty()
                                      ? json::object()
                                      : to_json(decode_arguments(c.client_properties))},
              {"auth_mechanism", text_or_null(c.auth_mechanism)},
              {"connected_at", c.connected_at},
              {"recv_oct", c.recv_oct},
              {"recv_oct_details", rate(bytes_rate(s, &metrics::connection_stats::recv_oct))},
              {"send_oct", c.send_oct},
              {"send_oct_details", rate(bytes_rate(s, &metrics::connection_stats::send_oct))},
              {"recv_cnt", c.recv_cnt},
              {"send_cnt", c.send_cnt}};
}

json channel_json(const std::string& node, const conn_sample& s,
                  const metrics::channel_stats& ch) {
  auto& c = s.cur;
  auto name = connection_name(c);
  const metrics::channel_counters* prev = nullptr;
  for (auto& p : s.prev.channels)
    if (p.number == ch.number)
      prev = &p.counters;
  return json{{"name", name + " (" + std::to_string(ch.number) + ")"},
              {"number", ch.number},
              {"node", node},
              {"user", c.user},
              {"vhost", c.vhost},
              {"state", "running"},
              {"connection_details",
               {{"name", name}, {"peer_host", host_of(c.peer)}, {"peer_port", port_of(c.peer)}}},
              {"consumer_count", ch.consumers},
              {"messages_unacknowledged", ch.unacked},
              {"prefetch_count", ch.prefetch},
              {"global_prefetch_count", ch.global_prefetch},
              {"confirm", ch.confirm},
              {"transactional", ch.transactional},
              {"message_stats", channel_message_stats(ch.counters, prev, s.seconds)}};
}

reply connections(call& c) {
  cluster_numbers numbers{c.ctx};
  if (c.path.size() == 1) {
    if (c.method != "GET")
      return method_not_allowed();
    json out = json::array();
    numbers.each_connection([&](const std::string& node, const conn_sample& s) {
      if (c.sees_user(s.cur.user))
        out.push_back(connection_json(node, s));
    });
    return ok(out);
  }
  const conn_sample* s = nullptr;
  std::string node;
  numbers.each_connection([&](const std::string& n, const conn_sample& x) {
    if (!s && connection_name(x.cur) == c.path[1]) {
      s = &x;
      node = n;
    }
  });
  if (!s || !c.sees_user(s->cur.user))
    return not_found();
  if (c.path.size() == 3 && c.path[2] == "channels") {
    json out = json::array();
    for (auto& ch : s->cur.channels)
      out.push_back(channel_json(node, *s, ch));
    return c.method == "GET" ? ok(out) : method_not_allowed();
  }
  if (c.path.size() != 2)
    return not_found();
  if (c.method == "GET")
    return ok(connection_json(node, *s));
  if (c.method == "DELETE") {
    // A connection of another node is closed through CAF's handle of its actor there.
    auto conn = caf::actor_cast<caf::actor>(s->cur.addr);
    if (!conn)
      return not_found();
    c.self->send(conn, force_close_atom::value,
                 c.reason.empty() ? std::string{"Closed via management plugin"} : c.reason);
    return no_content();
  }
  return method_not_allowed();
}

reply channels(call& c) {
  if (c.method != "GET")
    return method_not_allowed();
  json out = json::array();
  cluster_numbers{c.ctx}.each_connection([&](const std::string& node, const conn_sample& s) {
    if (c.sees_user(s.cur.user))
      for (auto& ch : s.cur.channels)
        out.push_back(channel_json(node, s, ch));
  });
  if (c.path.size() == 1)
    return ok(out);
  for (auto& ch : out)
    if (ch["name"] == c.path[1])
      return ok(ch);
  return not_found();
}

reply consumers(call& c) {
  if (c.method != "GET")
    return method_not_allowed();
  json out = json::array();
  cluster_numbers numbers{c.ctx};
  numbers.each_queue([&](const std::string&, const metrics::queue_summary& q) {
    if ((c.path.size() > 1 && q.vhost != c.path[1]) || !c.sees_vhost(q.vhost))
      return;
    for (auto& k : q.consumers)
      out.push_back(consumer_json(q.vhost, q.name, k));
  });
  return ok(out);
}

std::optional<alarm_status> alarms_now(call& c) {
  std::string error;
  return ask<alarm_status>(c.self, current_alarms(*c.ctx.sys), error, get_atom::value);
}

// The raised alarms as RabbitMQ's health check lists them.
json alarm_list(const call& c, const alarm_status& alarms) {
  json out = json::array();
  if (alarms.memory)
    out.push_back(json{{"resource", "memory"}, {"node", c.ctx.node}});
  if (alarms.disk)
    out.push_back(json{{"resource", "disk space"}, {"node", c.ctx.node}});
  return out;
}

}  // namespace

cluster_numbers::cluster_numbers(const context& ctx)
    : snap(ctx.stats->get()), remote(ctx.remote_stats->get()), local_node(ctx.node) {}

std::optional<metrics::queue_summary> cluster_numbers::queue(const std::string& vhost,
                                                             const queue_info& q) const {
  if (q.node.empty()) {
    auto it = snap->queues.find(q.actor.id());
    if (it == snap->queues.end())
      return std::nullopt;
    return metrics::summarize(*it->second);
  }
  auto node = remote.find(q.node);
  if (node == remote.end())
    return std::nullopt;
  auto it = node->second->queues.find({vhost, q.name});
  if (it == node->second->queues.end())
    return std::nullopt;
  return it->second;
}

json consumer_json(const std::string& vhost, const std::string& queue,
                   const metrics::consumer_stats& k) {
  json details = json::object();
  if (!k.connection_name.empty()) {
    auto peer = k.connection_name.substr(0, k.connection_name.find(" -> "));
    details = {{"name", k.connection_name + " (" + std::to_string(k.channel) + ")"},
               {"number", k.channel},
               {"connection_name", k.connection_name},
               {"peer_host", host_of(peer)},
               {"peer_port", port_of(peer)},
               {"user", k.user},
               {"node", k.node}};
  }
  return json{{"consumer_tag", k.tag},
              {"queue", {{"name", queue}, {"vhost", vhost}}},
              {"channel_details", details},
              {"ack_required", k.ack_required},
              {"exclusive", k.exclusive},
              {"prefetch_count", k.prefetch},
              {"priority", k.priority},
              {"arguments", to_json(k.arguments)},
              {"active", k.activity != "waiting"},
              {"activity_status", k.activity}};
}

json node_json(call& c) {
  auto& ctx = c.ctx;
  auto alarms = alarms_now(c).value_or(alarm_status{});
  const auto descriptors = metrics::open_descriptors(true);
  const uint64_t descriptor_limit = metrics::max_fds();
  // RabbitMQ counts the Erlang processes; Warren's are its actors, with no limit on them, so the
  // total is the Erlang VM's default limit, which tools that take the used share divide by.
  constexpr uint64_t erlang_default_process_limit = 1048576;
  const uint64_t actors = ctx.sys != nullptr ? ctx.sys->registry().running() : 0;
  return json{{"name", ctx.node},
              {"mem_limit", alarms.memory_limit},
              {"mem_alarm", alarms.memory},
              {"disk_free_limit", alarms.disk_free_limit},
              {"disk_free_alarm", alarms.disk},
              {"alarms", alarm_list(c, alarms)},
              {"type", "disc"},
              {"running", true},
              {"mem_used", metrics::resident_memory_bytes()},
              {"fd_used", descriptors.fds},
              {"fd_total", descriptor_limit},
              // Every socket takes a descriptor: the descriptor limit bounds them.
              {"sockets_used", descriptors.sockets},
              {"sockets_total", descriptor_limit},
              {"proc_used", actors},
              {"proc_total", erlang_default_process_limit},
              {"disk_free", metrics::free_disk_bytes(ctx.data_dir)},
              {"store_bytes", metrics::directory_bytes(ctx.data_dir)},
              {"uptime", static_cast<uint64_t>(metrics::uptime_seconds() * 1000)},
              {"processors", std::thread::hardware_concurrency()},
              {"os_pid", std::to_string(::getpid())},
              {"partitions", json::array()}};
}

namespace {

// A size in bytes from the body: a number or a string such as "50MB".
std::optional<uint64_t> body_bytes(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end())
    return std::nullopt;
  if (it->is_number_unsigned())
    return it->get<uint64_t>();
  if (it->is_string())
    if (auto n = parse_byte_size(it->get<std::string>()))
      return n;
  throw bad_request_error{std::string{key} + " must be a number of bytes or a size such as 50MB"};
}

// PUT /api/nodes/{node}/limits (warrenctl set_vm_memory_high_watermark, set_disk_free_limit):
// {"vm_memory_high_watermark": 0.4} or {"vm_memory_high_watermark_absolute": "1GB"},
// {"disk_free_limit": "50MB"}; answers the node's alarms and limits as they are now.
reply set_limits(call& c) {
  auto body = c.parsed_body();
  alarm_limits_change change;
  if (auto it = body.find("vm_memory_high_watermark"); it != body.end()) {
    if (!it->is_number() || !(it->get<double>() > 0) || it->get<double>() > 1000)
      throw bad_request_error{"vm_memory_high_watermark must be a fraction above 0"};
    change.memory_relative = it->get<double>();
  }
  change.memory_absolute = body_bytes(body, "vm_memory_high_watermark_absolute");
  if (change.memory_absolute && *change.memory_absolute == 0)
    throw bad_request_error{"vm_memory_high_watermark_absolute must be above 0"};
  change.disk_free_absolute = body_bytes(body, "disk_free_limit");
  std::string error;
  auto r = ask<alarm_status>(c.self, current_alarms(*c.ctx.sys), error, put_atom::value, change);
  if (!r)
    return error_reply(500, "internal_server_error", error);
  return ok(json{{"mem_limit", r->memory_limit},
                 {"mem_alarm", r->memory},
                 {"disk_free_limit", r->disk_free_limit},
                 {"disk_free_alarm", r->disk}});
}

// The exchange types there are, as RabbitMQ describes its own.
json exchange_types() {
  json out = json::array();
  for (auto [name, description] :
       {std::pair{"direct", "AMQP direct exchange, as per the AMQP specification"},
        std::pair{"fanout", "AMQP fanout exchange, as per the AMQP specification"},
        std::pair{"headers", "AMQP headers exchange, as per the AMQP specification"},
        std::pair{"topic", "AMQP topic exchange, as per the AMQP specification"}})
    out.push_back(json{{"name", name}, {"description", description}, {"enabled", true}});
  return out;
}

json overview(call& c) {
  // The whole cluster's, as RabbitMQ counts them.
  cluster_numbers numbers{c.ctx};
  uint64_t ready = 0, unacked = 0, consumers = 0, connections = 0, channels = 0, queues = 0;
  double depth_rate = 0, ready_rate = 0, unacked_rate = 0;
  numbers.each_queue([&](const std::string&, const metrics::queue_summary& q) {
    ready += q.ready;
    unacked += q.unacked;
    consumers += q.consumers.size();
    depth_rate += q.depth_rate;
    ready_rate += q.ready_rate;
    unacked_rate += q.unacked_rate;
    ++queues;
  });
  auto totals = numbers.snap->retired.channels;
  for (auto& [name, n] : numbers.remote)
    totals += n->closed;
  field_rates rates{};
  numbers.each_connection([&](const std::string&, const conn_sample& s) {
    totals += s.cur.totals;
    ++connections;
    channels += s.cur.channels.size();
    auto r = counter_rates(s.cur.totals, &s.prev.totals, s.seconds);
    for (size_t i = 0; i < rates.size(); ++i)
      rates[i] += r[i];
  });
  size_t exchanges = 0;
  auto vhosts = list_vhosts(c);
  for (auto& v : vhosts)
    exchanges += list_exchanges(c, v.actor).size() + 1;  // + the default exchange
  json listeners = json::array();  // every running node's, as RabbitMQ lists them
  auto add_listeners = [&](const std::string& node, const std::vector<listener_info>& of) {
    for (auto& l : of)
      listeners.push_back(
        json{{"node", node}, {"protocol", l.protocol}, {"ip_address", l.address}, {"port", l.port}});
  };
  add_listeners(c.ctx.node, c.ctx.listeners);
  for (auto& [name, n] : numbers.remote)
    add_listeners(name, n->listeners);
  return json{
    {"management_version", compatible_version},
    {"rabbitmq_version", compatible_version},
    {"product_name", product_name},
    {"product_version", product_version},
    {"cluster_name", cluster_name(c)},
    {"rates_mode", "basic"},
    {"exchange_types", exchange_types()},
    {"node", c.ctx.node},
    {"statistics_db_event_queue", 0},
    {"message_stats",
     message_stats(totals, rates)},
    {"queue_totals",
     {{"messages", ready + unacked},
      {"messages_details", rate(depth_rate)},
      {"messages_ready", ready},
      {"messages_ready_details", rate(ready_rate)},
      {"messages_unacknowledged", unacked},
      {"messages_unacknowledged_details", rate(unacked_rate)}}},
    {"object_totals",
     {{"connections", connections},
      {"channels", channels},
      {"exchanges", exchanges},
      {"queues", queues},
      {"consumers", consumers},
      {"vhosts", vhosts.size()}}},
    {"listeners", listeners}};
}

// RabbitMQ's names for a protocol (rabbit_mgmt_wm_health_check_protocol_listener).
std::string normalize_protocol(std::string p) {
  p = lowercase(std::move(p));
  for (auto* amqp : {"amqp091", "amqp0.9.1", "amqp0-9-1", "amqp0_9_1", "amqp10", "amqp1.0",
                     "amqp1-0", "amqp1_0"})
    if (p == amqp)
      return "amqp";
  if (p == "amqps")
    return "amqp/ssl";
  for (auto* stomp : {"stomp1.0", "stomp1.1", "stomp1.2", "stomp10", "stomp11", "stomp12",
                      "stomp1_0", "stomp1_1", "stomp1_2"})
    if (p == stomp)
      return "stomp";
  if (p == "stomps")
    return "stomp/ssl";
  return p;
}

// /api/health/checks/port-listener/{port} and .../protocol-listener/{protocol}: 200 when
// this node has such a listener, else 503 with what it has.
reply listener_check(call& c, bool by_port, const std::string& what) {
  json wanted;
  if (by_port) {
    auto port = parse_int(what);
    if (!port)
      return bad_request("Invalid port");
    wanted = *port;
  } else {
    wanted = normalize_protocol(what);
  }
  json have = json::array();
  bool found = false;
  for (auto& l : c.ctx.listeners) {
    json mine = by_port ? json(l.port) : json(l.protocol);
    found = found || mine == wanted;
    have.push_back(std::move(mine));
  }
  if (found)
    return ok(json{{"status", "ok"}, {by_port ? "port" : "protocol", wanted}});
  return reply{503,
               json{{"status", "failed"},
                    {"reason", "No active listener"},
                    {"missing", wanted},
                    {by_port ? "ports" : "protocols", have}},
               {},
               {}};
}

// A certificate's expiry as RabbitMQ 3.10 writes it: "2027-01-03 3:53:30", UTC, the hour
// not padded.
std::string expiry_text(int64_t t) {
  auto tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %d:%02d:%02d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

// /api/health/checks/certificate-expiration/{within}/{unit}: 503 when a certificate of a TLS
// listener of this node (its certfile or one of its cacertfile) expires within that time,
// with each such listener and the expiries in the window; the files are read now. A month is
// a twelfth of a year of 365 days. A file that cannot be read is 500.
reply certificate_check(call& c, const std::string& within_text, const std::string& unit) {
  // RabbitMQ takes any integer; a huge one is a window longer than any certificate.
  // (Erlang's binary_to_integer: a sign, then digits.)
  std::string_view digits = within_text;
  bool negative = !digits.empty() && digits.front() == '-';
  if (!digits.empty() && (digits.front() == '-' || digits.front() == '+'))
    digits.remove_prefix(1);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(),
                                     [](char d) { return d >= '0' && d <= '9'; }))
    return bad_request("Invalid expiration value.");
  while (digits.size() > 1 && digits.front() == '0')
    digits.remove_prefix(1);
  constexpr int64_t most = 1'000'000'000;  // units: past the year 10^9 is far enough
  auto n = digits.size() > 10 ? std::optional<int64_t>{most} : parse_int(digits);
  int64_t within = std::min(n.value_or(most), most) * (negative ? -1 : 1);
  static const std::map<std::string, int64_t, std::less<>> units{
    {"days", 86'400}, {"weeks", 604'800}, {"months", 2'628'000}, {"years", 31'536'000}};
  auto u = units.find(lowercase(unit));  // RabbitMQ takes "Days" too
  if (u == units.end())
    return bad_request("Time unit not recognised. Supported units: days, weeks, months, years.");
  auto cutoff = static_cast<int64_t>(std::time(nullptr)) + within * u->second;
  json expired = json::array();
  for (auto& t : c.ctx.tls_listeners) {
    auto expiring = [&](const std::string& file) -> std::optional<json> {
      json out = json::array();
      if (file.empty())
        return out;
      std::string why;
      auto expiries = net::certificate_expiries(file, why);
      if (!expiries)
        return std::nullopt;
      for (auto at : *expiries)
        if (at < cutoff)
          out.push_back(expiry_text(at));
      return out;
    };
    auto cert = expiring(t.certfile), ca = expiring(t.cacertfile);
    if (!cert || !ca)
      return error_reply(500, "internal_server_error",
                         "cannot read the certificates of " +
                           std::string{!cert ? t.certfile : t.cacertfile});
    if (cert->empty() && ca->empty())
      continue;
    auto file_or_null = [](const std::string& f) { return f.empty() ? json() : json(f); };
    expired.push_back(json{{"cacertfile", file_or_null(t.cacertfile)},
                           {"cacertfile_expires_on", *ca},
                           {"certfile", file_or_null(t.certfile)},
                           {"certfile_expires_on", *cert},
                           {"interface", t.listener.address},
                           {"node", c.ctx.node},
                           {"port", t.listener.port},
                           {"protocol", t.listener.protocol}});
  }
  if (expired.empty())
    return ok(json{{"status", "ok"}});
  return reply{503,
               json{{"status", "failed"},
                    {"reason", "Certificates expiring"},
                    {"expired", expired}},
               {},
               {}};
}

}  // namespace

std::optional<reply> route_stats(call& c) {
  if (c.path.empty())
    return std::nullopt;
  auto& area = c.path[0];
  if (area == "connections")
    return connections(c);
  if (area == "channels")
    return channels(c);
  if (area == "consumers")
    return consumers(c);
  if (area == "nodes" && c.path.size() == 3 && c.path[1] == c.ctx.node && c.path[2] == "limits")
    return c.method == "PUT" ? set_limits(c) : method_not_allowed();
  bool known = area == "overview" || area == "nodes" || area == "cluster-name" ||
               area == "healthchecks" || area == "health";
  if (known && c.method != "GET")
    return method_not_allowed();
  if (area == "overview" && c.path.size() == 1)
    return ok(overview(c));
  if (area == "nodes") {
    if (c.path.size() == 1)
      return ok(cluster_nodes(c));
    if (c.path.size() == 2)
      if (auto node = cluster_node(c, c.path[1]))
        return ok(*node);
    return not_found();
  }
  if (area == "extensions" && c.path.size() == 1)
    return ok(json::array());  // the management UI's plugins' scripts: none here
  if (area == "cluster-name" && c.path.size() == 1)
    return ok(json{{"name", cluster_name(c)}});
  if (area == "health" && c.path.size() == 3 && c.path[1] == "checks" &&
      (c.path[2] == "alarms" || c.path[2] == "local-alarms")) {
    // As RabbitMQ: 503 while a memory or disk alarm is raised.
    auto raised = alarm_list(c, alarms_now(c).value_or(alarm_status{}));
    if (raised.empty())
      return ok(json{{"status", "ok"}});
    return reply{503,
                 json{{"status", "failed"},
                      {"reason", c.path[2] == "alarms"
                                   ? "There are alarms in effect in the cluster"
                                   : "There are alarms in effect on the node"},
                      {"alarms", raised}},
                 {}, {}};
  }
  if (area == "health" && c.path.size() == 4 && c.path[1] == "checks" &&
      (c.path[2] == "port-listener" || c.path[2] == "protocol-listener"))
    return listener_check(c, c.path[2] == "port-listener", c.path[3]);
  if (area == "health" && c.path.size() == 5 && c.path[1] == "checks" &&
      c.path[2] == "certificate-expiration")
    return certificate_check(c, c.path[3], c.path[4]);
  if (area == "health" && c.path.size() == 3 && c.path[1] == "checks" &&
      (c.path[2] == "node-is-quorum-critical" || c.path[2] == "node-is-mirror-sync-critical"))
    return member_health_check(c, c.path[2]);
  // A vhost that fails is restarted at once by the registry, its supervisor (past the restart
  // intensity the failure goes up to the root supervisor): every vhost counts as running.
  if ((area == "healthchecks" && c.path.size() == 2 && c.path[1] == "node") ||
      (area == "health" && c.path.size() == 3 && c.path[1] == "checks" &&
       c.path[2] == "virtual-hosts"))
    return ok(json{{"status", "ok"}});
  return std::nullopt;
}

}  // namespace warren::mgmt
