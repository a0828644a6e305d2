// The cluster in the management API: GET /api/nodes and /api/cluster-name list every member
// (RabbitMQ's paths); POST /api/cluster/join {"address": "host:port"}, POST
// /api/cluster/leave and DELETE /api/cluster/nodes/{name} are Warren's, for `warrenctl
// join_cluster`, `leave_cluster` and `forget_cluster_node` (rabbitmqctl does those through
// Erlang distribution, which Warren does not have).
#include <algorithm>

#include "actors/stream_arguments.hpp"
#include "cluster/cluster_actor.hpp"
#include "management/api.hpp"

namespace warren::mgmt {

namespace {

std::vector<node_status> members(const context& ctx, caf::scoped_actor& self) {
  std::string error;
  auto cluster = current_cluster(*ctx.sys);
  if (!cluster)
    return {};
  return ask<std::vector<node_status>>(self, cluster, error, list_atom::value)
    .value_or(std::vector<node_status>{});
}

std::vector<node_status> members(call& c) { return members(c.ctx, c.self); }

json other_node_json(const node_status& n) {
  return json{{"name", n.name},
              {"type", "disc"},
              {"running", n.running},
              {"cluster_address", n.address},
              {"partitions", json::array()}};
}

}  // namespace

json cluster_nodes(call& c) {
  auto all = json::array({node_json(c)});
  for (auto& n : members(c))
    if (n.name != c.ctx.node)
      all.push_back(other_node_json(n));
  return all;
}

reply member_health_check(call& c, const std::string& check) {
  // RabbitMQ answers so for a cluster of one node (rabbit_nodes:is_single_node_cluster).
  auto all = members(c);
  if (all.empty() && current_cluster(*c.ctx.sys))  // it lists this node too when it answers
    return reply{503,
                 json{{"status", "failed"},
                      {"reason", "the cluster's members could not be listed"}},
                 {},
                 {}};
  if (std::none_of(all.begin(), all.end(), [&](auto& n) { return n.name != c.ctx.node; }))
    return ok(json{{"status", "ok"}, {"reason", "single node cluster"}});
  if (check == "node-is-mirror-sync-critical")
    return ok(json{{"status", "ok"}});  // no mirrored queues
  // A quorum queue has one member here, on the node it lives on: each of this node's would be
  // unavailable while this node is down (RabbitMQ counts a one-member queue so too).
  json queues = json::array();
  for (auto& v : list_vhosts(c))
    for (auto& q : list_queues(c, v.actor))
      if (q.node.empty() && queue_type(q.arguments) == "quorum")
        queues.push_back(json{{"name", q.name},
                              {"readable_name",
                               "queue '" + q.name + "' in vhost '" + v.name + "'"},
                              {"virtual_host", v.name},
                              {"type", "quorum"}});
  if (queues.empty())
    return ok(json{{"status", "ok"}});
  return reply{503,
               json{{"status", "failed"},
                    {"reason", "There are quorum queues that would lose their quorum if the "
                               "target node is shut down"},
                    {"queues", queues}},
               {},
               {}};
}

std::optional<json> cluster_node(call& c, const std::string& name) {
  if (name == c.ctx.node)
    return node_json(c);
  for (auto& n : members(c))
    if (n.name == name)
      return other_node_json(n);
  return std::nullopt;
}

// As RabbitMQ's default: the name of a node of the cluster, the same on every member (the
// first of their names).
std::string cluster_name(const context& ctx, caf::scoped_actor& self) {
  auto name = ctx.node;
  for (auto& n : members(ctx, self))
    name = std::min(name, n.name);
  return name;
}

std::string cluster_name(call& c) { return cluster_name(c.ctx, c.self); }

std::optional<reply> route_cluster(call& c) {
  if (c.path.empty() || c.path[0] != "cluster")
    return std::nullopt;
  bool forget = c.path.size() == 3 && c.path[1] == "nodes";
  if (!forget && (c.path.size() != 2 || (c.path[1] != "join" && c.path[1] != "leave")))
    return not_found();
  if (c.method != (forget ? "DELETE" : "POST"))
    return method_not_allowed();
  if (!c.administrator)
    return error_reply(403, "access_refused", "changing the cluster needs the administrator tag");
  auto cluster = current_cluster(*c.ctx.sys);
  if (!cluster)
    return bad_request("this node runs without a cluster port (cluster.port)");
  std::string error;
  std::optional<op_result> r;
  if (forget) {
    r = ask<op_result>(c.self, cluster, error, forget_atom::value, remove_atom::value,
                       c.path[2]);
    if (r && (r->code == 404 || r->code == 409))
      return error_reply(r->code, r->code == 404 ? "not_found" : "conflict", r->text);
  } else if (c.path[1] == "join") {
    auto body = c.parsed_body();
    auto address = body.is_object() ? body.value("address", "") : "";
    std::string host;
    uint16_t port = 0;
    if (!parse_node_address(address, host, port))
      return bad_request("address must be host:port, the cluster port of a node");
    r = ask<op_result>(c.self, cluster, error, join_atom::value, host, port);
  } else {
    r = ask<op_result>(c.self, cluster, error, leave_atom::value);
  }
  if (!r)
    return error_reply(500, "internal_error", error);
  if (r->code != 0)
    return error_reply(502, "bad_gateway", r->text);
  return no_content();
}

}  // namespace warren::mgmt
