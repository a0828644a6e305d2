// /api/exchanges, /api/queues, /api/bindings: list with statistics from the snapshot (and,
// for queues of other cluster members, from the summaries their nodes send);
// declare, delete, purge and bind through the vhost actor's requests (the same ones AMQP
// connections use, with no owning connection); publish and get for testing, where this
// HTTP request's scoped actor plays the publishing or consuming connection.
#include <cstdio>

#include "actors/stream_arguments.hpp"
#include "management/api.hpp"
#include "management/json_amqp.hpp"
#include "persistence/checksum.hpp"
#include "protocol/amqp091/constants.hpp"
#include "protocol/amqp091/properties.hpp"

namespace warren::mgmt {

namespace {

bool query_flag(const std::string& query, const std::string& key) {
  auto pos = query.find(key + "=true");
  return pos != std::string::npos && (pos == 0 || query[pos - 1] == '&');
}

// URLs name the default exchange "amq.default" (RabbitMQ).
std::string exchange_name(const std::string& segment) {
  return segment == "amq.default" ? std::string{} : segment;
}

json exchange_json(const context& ctx, const std::string& vhost, const exchange_info& x,
                   const metrics::snapshot& snap, const policy_set& policies) {
  json j{{"name", x.name},       {"vhost", vhost},
         {"type", x.type},       {"durable", x.durable},
         {"auto_delete", x.auto_delete}, {"internal", x.internal},
         {"arguments", to_json(x.arguments)}, {"user_who_performed_action", ""}};
  add_policy_fields(j, policies, vhost, x.name, false);
  if (auto it = snap.exchanges.find(x.actor.id()); it != snap.exchanges.end()) {
    auto& s = *it->second;
    j["message_stats"] = {
      {"publish_in", s.cur.publish_in},
      {"publish_in_details", rate(s.rate(&metrics::exchange_stats::publish_in))},
      {"publish_out", s.cur.publish_out},
      {"publish_out_details", rate(s.rate(&metrics::exchange_stats::publish_out))},
      {"routed", s.cur.routed},
      {"unroutable", s.cur.unroutable},
    };
  }
  return j;
}

json default_exchange_json(const std::string& vhost) {
  return json{{"name", ""},      {"vhost", vhost},          {"type", "direct"},
              {"durable", true}, {"auto_delete", false},    {"internal", false},
              {"arguments", json::object()}, {"user_who_performed_action", "rmq-internal"}};
}

json queue_json(const context& ctx, const std::string& vhost, const queue_info& q,
                const cluster_numbers& numbers, const policy_set& policies) {
  json j{{"name", q.name},
         {"vhost", vhost},
         {"durable", q.durable},
         {"auto_delete", q.auto_delete},
         {"exclusive", q.exclusive},
         {"arguments", to_json(q.arguments)},
         {"node", q.node.empty() ? ctx.node : q.node},
         {"state", q.down ? "down" : "running"},
         {"type", queue_type(q.arguments)}};
  add_policy_fields(j, policies, vhost, q.name, true);
  if (j["type"] == "quorum") {  // one member, the node it lives on (no replicas)
    auto node = j["node"];
    j["leader"] = node;
    j["members"] = json::array({node});
    j["online"] = q.down ? json::array() : json::array({node});
  }
  auto n = numbers.queue(vhost, q);
  if (n) {
    // As RabbitMQ splits them: deliver_get is deliver (to consumers that acknowledge),
    // deliver_no_ack, get and get_no_ack together.
    auto others = n->delivered_no_ack + n->got_ack + n->got_no_ack;
    auto deliver = n->delivered - std::min(n->delivered, others);
    auto deliver_rate = std::max(0.0, n->deliver_rate - n->deliver_no_ack_rate -
                                        n->get_ack_rate - n->get_no_ack_rate);
    json stats = json::object();
    auto stat = [&](const char* key, uint64_t count, double per_second) {
      stats[key] = count;
      stats[std::string{key} + "_details"] = rate(per_second);
    };
    stat("publish", n->published, n->publish_rate);
    stat("deliver", deliver, deliver_rate);
    stat("deliver_no_ack", n->delivered_no_ack, n->deliver_no_ack_rate);
    stat("get", n->got_ack, n->get_ack_rate);
    stat("get_no_ack", n->got_no_ack, n->get_no_ack_rate);
    stat("get_empty", n->got_empty, n->get_empty_rate);
    stat("deliver_get", n->delivered, n->deliver_rate);
    stat("ack", n->acked, n->ack_rate);
    stat("redeliver", n->redelivered, n->redeliver_rate);
    j["message_stats"] = std::move(stats);
    json details = json::array();
    for (auto& k : n->consumers)
      details.push_back(consumer_json(vhost, q.name, k));
    j["consumer_details"] = std::move(details);
  }
  j["messages"] = n ? n->ready + n->unacked : 0;
  j["messages_details"] = rate(n ? n->depth_rate : 0);
  j["messages_ready"] = n ? n->ready : 0;
  j["messages_ready_details"] = rate(n ? n->ready_rate : 0);
  j["messages_unacknowledged"] = n ? n->unacked : 0;
  j["messages_unacknowledged_details"] = rate(n ? n->unacked_rate : 0);
  j["message_bytes"] = n ? n->ready_bytes + n->unacked_bytes : 0;
  j["message_bytes_ready"] = n ? n->ready_bytes : 0;
  j["message_bytes_unacknowledged"] = n ? n->unacked_bytes : 0;
  j["consumers"] = n ? n->consumers.size() : 0;
  if (q.owner) {
    auto& conns = numbers.snap->connections;
    if (auto c = conns.find(q.owner.id()); q.node.empty() && c != conns.end()) {
      auto& cs = c->second->cur;
      j["owner_pid_details"] = {{"name", connection_name(cs)},
                                {"peer_host", host_of(cs.peer)},
                                {"peer_port", port_of(cs.peer)}};
    }
  }
  return j;
}

// RabbitMQ's properties_key: identifies a binding among those between the same ends, and is
// ready to be a path segment: the routing key percent-encoded ("a.%23"), then "~" and a hash
// of the arguments when there are any.
std::string properties_key(const binding_info& b, bool encoded = true) {
  auto key = encoded ? percent_encode(b.key) : b.key;
  if (b.arguments.empty())
    return key.empty() ? "~" : key;
  char hash[16];
  std::snprintf(hash, sizeof hash, "%08x",
                persistence::crc32_update(0, encode_arguments(b.arguments)));
  return key + "~" + hash;
}

// The binding the path segment (decoded once by the router) names: the API's properties_key
// percent-encoded once more, or else written into the URL as it was listed.
template <class Bindings>
auto named_binding(const std::string& segment, Bindings& bs) {
  auto it = std::find_if(bs.begin(), bs.end(), [&](auto& b) { return properties_key(b) == segment; });
  if (it != bs.end())
    return it;
  return std::find_if(bs.begin(), bs.end(),
                      [&](auto& b) { return properties_key(b, false) == segment; });
}

json binding_json(const std::string& vhost, const binding_info& b) {
  return json{{"source", b.source},
              {"vhost", vhost},
              {"destination", b.destination},
              {"destination_type", b.to_exchange ? "exchange" : "queue"},
              {"routing_key", b.key},
              {"arguments", to_json(b.arguments)},
              {"properties_key", properties_key(b)}};
}

// The bindings of a vhost, with the default exchange's implicit one per queue first.
std::vector<binding_info> all_bindings(call& c, const caf::actor& vhost) {
  std::vector<binding_info> out;
  for (auto& q : list_queues(c, vhost))
    out.push_back(binding_info{"", q.name, false, q.name, {}});
  for (auto& b : list_bindings(c, vhost))
    out.push_back(std::move(b));
  return out;
}

// Runs f(vhost name, vhost actor) for the vhost in the path (segment i) or for all of them.
template <class F>
std::optional<reply> for_vhosts(call& c, size_t i, F f) {
  if (c.path.size() > i) {
    auto v = find_vhost(c, c.path[i]);
    if (!v)
      return not_found("vhost_not_found");
    f(c.path[i], *v);
  } else {
    for (auto& v : list_vhosts(c))
      if (c.sees_vhost(v.name))
        f(v.name, v.actor);
  }
  return std::nullopt;
}

using access::kind;
using access::perm;

// Creating an exchange with an alternate exchange, or a queue with a dead-letter exchange,
// is checked as the AMQP declare checks it (actors/access.hpp), with the API's 401.
std::optional<reply> refused_on_creation(const call& c, bool exists, const amqp::field_table& args,
                                         kind k, const std::string& name) {
  if (!exists && access::creation_refused(c.permissions_in(c.path[1]), k, name, args))
    return not_authorised("Access refused.");
  return std::nullopt;
}

amqp::field_table body_arguments(const json& body) {
  auto it = body.find("arguments");
  if (it == body.end())
    return {};
  std::string error;
  auto t = table_from_json(*it, error);
  if (!t)
    throw bad_request_error{"arguments: " + error};
  return *t;
}

reply exchanges(call& c) {
  auto snap = c.ctx.stats->get();
  if (c.path.size() <= 2) {
    if (c.method != "GET")
      return method_not_allowed();
    json out = json::array();
    policy_set policies{list_policies(c)};
    if (auto r = for_vhosts(c, 1, [&](const std::string& name, const caf::actor& v) {
          out.push_back(default_exchange_json(name));
          for (auto& x : list_exchanges(c, v))
            out.push_back(exchange_json(c.ctx, name, x, *snap, policies));
        }))
      return *r;
    return ok(out);
  }
  auto vhost = find_vhost(c, c.path[1]);
  if (!vhost)
    return not_found("vhost_not_found");
  auto name = exchange_name(c.path[2]);
  auto xs = list_exchanges(c, *vhost);
  auto it = std::find_if(xs.begin(), xs.end(), [&](auto& x) { return x.name == name; });
  bool exists = name.empty() || it != xs.end();
  if (c.path.size() == 3) {
    std::string error;
    if (c.method == "GET") {
      if (!exists)
        return not_found();
      if (name.empty())
        return ok(default_exchange_json(c.path[1]));
      return ok(exchange_json(c.ctx, c.path[1], *it, *snap, policy_set{list_policies(c)}));
    }
    if (c.method == "PUT") {
      if (auto refused = c.refuse_unless(perm::configure, kind::exchange, c.path[1], name))
        return *refused;
      auto body = c.parsed_body();
      exchange_spec spec;
      spec.name = name;
      spec.type = body.value("type", std::string{"direct"});
      spec.durable = body_bool(body, "durable", false);
      spec.auto_delete = body_bool(body, "auto_delete", false);
      spec.internal = body_bool(body, "internal", false);
      spec.arguments = body_arguments(body);
      if (auto refused = refused_on_creation(c, exists, spec.arguments, kind::exchange, name))
        return *refused;
      auto r = ask<op_result>(c.self, *vhost, error, declare_atom::value, exchange_atom::value,
                              std::move(spec));
      if (!r)
        return error_reply(500, "internal_server_error", error);
      if (r->code)
        return from_amqp(r->code, r->text);
      return exists ? no_content() : created();
    }
    if (c.method == "DELETE") {
      if (!exists)
        return not_found();
      if (auto refused = c.refuse_unless(perm::configure, kind::exchange, c.path[1], name))
        return *refused;
      auto r = ask<op_result>(c.self, *vhost, error, delete_atom::value, exchange_atom::value,
                              name, query_flag(c.query, "if-unused"));
      if (!r)
        return error_reply(500, "internal_server_error", error);
      return r->code ? from_amqp(r->code, r->text) : no_content();
    }
    return method_not_allowed();
  }
  if (!exists && c.path.size() == 4 && c.path[3] == "publish" && c.method == "POST")
    return bad_request("404 NOT_FOUND - no exchange '" + name + "' in vhost '" + c.path[1] +
                       "'");  // (RabbitMQ's answer: its channel's error)
  if (!exists)
    return not_found();
  if (c.path.size() == 5 && c.path[3] == "bindings" &&
      (c.path[4] == "source" || c.path[4] == "destination")) {
    if (c.method != "GET")
      return method_not_allowed();
    bool source = c.path[4] == "source";
    json out = json::array();
    for (auto& b : all_bindings(c, *vhost))
      if (source ? b.source == name : (b.to_exchange && b.destination == name))
        out.push_back(binding_json(c.path[1], b));
    return ok(out);
  }
  if (c.path.size() == 4 && c.path[3] == "publish") {
    if (c.method != "POST")
      return method_not_allowed();
    // RabbitMQ's API publishes over a channel of its own and reports that channel's 403.
    if (!c.allows(perm::write, kind::exchange, c.path[1], name))
      return bad_request("403 " + access::refused_text(kind::exchange, name, c.path[1], c.user));
    return publish(c, *vhost, name);
  }
  return not_found();
}

reply queues(call& c) {
  cluster_numbers numbers{c.ctx};
  if (c.path.size() <= 2) {
    if (c.method != "GET")
      return method_not_allowed();
    json out = json::array();
    policy_set policies{list_policies(c)};
    if (auto r = for_vhosts(c, 1, [&](const std::string& name, const caf::actor& v) {
          for (auto& q : list_queues(c, v))
            out.push_back(queue_json(c.ctx, name, q, numbers, policies));
        }))
      return *r;
    return ok(out);
  }
  auto vhost = find_vhost(c, c.path[1]);
  if (!vhost)
    return not_found("vhost_not_found");
  auto& name = c.path[2];
  auto qs = list_queues(c, *vhost);
  auto it = std::find_if(qs.begin(), qs.end(), [&](auto& q) { return q.name == name; });
  bool exists = it != qs.end();
  std::string error;
  if (c.path.size() == 3) {
    if (c.method == "GET") {
      if (!exists)
        return not_found();
      return ok(queue_json(c.ctx, c.path[1], *it, numbers, policy_set{list_policies(c)}));
    }
    if (c.method == "PUT") {
      if (auto refused = c.refuse_unless(perm::configure, kind::queue, c.path[1], name))
        return *refused;
      auto body = c.parsed_body();
      queue_spec spec;
      spec.name = name;
      spec.durable = body_bool(body, "durable", false);
      spec.auto_delete = body_bool(body, "auto_delete", false);
      spec.arguments = body_arguments(body);
      if (auto refused = refused_on_creation(c, exists, spec.arguments, kind::queue, name))
        return *refused;
      auto r = ask<queue_declared>(c.self, *vhost, error, declare_atom::value, queue_atom::value,
                                   std::move(spec));
      if (!r)
        return error_reply(500, "internal_server_error", error);
      if (r->code)
        return from_amqp(r->code, r->text);
      refresh_stats(c, r->queue);
      return exists ? no_content() : created();
    }
    if (c.method == "DELETE") {
      if (!exists)
        return not_found();
      if (auto refused = c.refuse_unless(perm::configure, kind::queue, c.path[1], name))
        return *refused;
      auto r = ask<op_result>(c.self, *vhost, error, delete_atom::value, queue_atom::value,
                              name, caf::actor{}, query_flag(c.query, "if-unused"),
                              query_flag(c.query, "if-empty"));
      if (!r)
        return error_reply(500, "internal_server_error", error);
      return r->code ? from_amqp(r->code, r->text) : no_content();
    }
    return method_not_allowed();
  }
  if (!exists)
    return not_found();
  if (c.path.size() == 4 && c.path[3] == "contents") {
    if (c.method != "DELETE")
      return method_not_allowed();
    if (auto refused = c.refuse_unless(perm::read, kind::queue, c.path[1], name))
      return *refused;
    auto r = ask<op_result>(c.self, *vhost, error, purge_atom::value, name, caf::actor{});
    if (!r)
      return error_reply(500, "internal_server_error", error);
    refresh_stats(c, it->actor);
    return r->code ? from_amqp(r->code, r->text) : no_content();
  }
  if (c.path.size() == 4 && c.path[3] == "bindings") {
    if (c.method != "GET")
      return method_not_allowed();
    json out = json::array();
    for (auto& b : all_bindings(c, *vhost))
      if (!b.to_exchange && b.destination == name)
        out.push_back(binding_json(c.path[1], b));
    return ok(out);
  }
  if (c.path.size() == 4 && c.path[3] == "get") {
    if (c.method != "POST")
      return method_not_allowed();
    if (!c.allows(perm::read, kind::queue, c.path[1], name))
      return not_authorised(access::refused_text(kind::queue, name, c.path[1], c.user));
    return get_messages(c, it->actor);
  }
  return not_found();
}

// /api/bindings[/vhost[/e/source/(q|e)/destination[/props]]]
reply bindings(call& c) {
  if (c.path.size() <= 2) {
    if (c.method != "GET")
      return method_not_allowed();
    json out = json::array();
    if (auto r = for_vhosts(c, 1, [&](const std::string& name, const caf::actor& v) {
          for (auto& b : all_bindings(c, v))
            out.push_back(binding_json(name, b));
        }))
      return *r;
    return ok(out);
  }
  if (c.path.size() < 6 || c.path.size() > 7 || c.path[2] != "e" ||
      (c.path[4] != "q" && c.path[4] != "e"))
    return not_found();
  auto vhost = find_vhost(c, c.path[1]);
  if (!vhost)
    return not_found("vhost_not_found");
  auto source = exchange_name(c.path[3]);
  bool to_exchange = c.path[4] == "e";
  auto& destination = c.path[5];
  // Binding and unbinding: write on the destination, read on the source, as over AMQP.
  auto refused_binding = [&]() {
    auto r = c.refuse_unless(perm::write, to_exchange ? kind::exchange : kind::queue, c.path[1],
                             destination);
    return r ? r : c.refuse_unless(perm::read, kind::exchange, c.path[1], source);
  };
  std::vector<binding_info> matching;
  for (auto& b : all_bindings(c, *vhost))
    if (b.source == source && b.destination == destination && b.to_exchange == to_exchange)
      matching.push_back(b);
  std::string error;
  if (c.path.size() == 6) {
    if (c.method == "GET") {
      json out = json::array();
      for (auto& b : matching)
        out.push_back(binding_json(c.path[1], b));
      return ok(out);
    }
    if (c.method != "POST")
      return method_not_allowed();
    if (auto refused = refused_binding())
      return *refused;
    auto body = c.parsed_body();
    binding_spec spec;
    spec.source = source;
    spec.destination = destination;
    spec.to_exchange = to_exchange;
    spec.key = body.value("routing_key", std::string{});
    spec.arguments = body_arguments(body);
    auto r = ask<op_result>(c.self, *vhost, error, bind_atom::value, spec);
    if (!r)
      return error_reply(500, "internal_server_error", error);
    if (r->code)
      return from_amqp(r->code, r->text);
    auto res = created();
    res.location = "/api/bindings/" + percent_encode(c.path[1]) + "/e/" +
                   percent_encode(c.path[3]) + "/" + c.path[4] + "/" +
                   percent_encode(destination) + "/" +
                   properties_key(binding_info{source, destination, to_exchange, spec.key,
                                               spec.arguments});
    return res;
  }
  auto props = c.path[6];
  auto b = named_binding(props, matching);
  if (b == matching.end())
    return not_found();
  if (c.method == "GET")
    return ok(binding_json(c.path[1], *b));
  if (c.method != "DELETE")
    return method_not_allowed();
  if (auto refused = refused_binding())
    return *refused;
  binding_spec spec{b->source, b->destination, b->to_exchange, b->key, b->arguments, {}};
  auto r = ask<op_result>(c.self, *vhost, error, unbind_atom::value, spec);
  if (!r)
    return error_reply(500, "internal_server_error", error);
  return r->code ? from_amqp(r->code, r->text) : no_content();
}

}  // namespace

std::optional<reply> route_definitions(call& c) {
  if (c.path.empty())
    return std::nullopt;
  if (c.path[0] == "exchanges")
    return exchanges(c);
  if (c.path[0] == "queues")
    return queues(c);
  if (c.path[0] == "bindings")
    return bindings(c);
  return std::nullopt;
}

}  // namespace warren::mgmt
