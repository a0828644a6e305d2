// warrenctl's list_* commands: one GET, then one tab-separated row per object with the
// columns named on the command line or rabbitmqctl's defaults, after a header row.
#include <algorithm>
#include <iostream>
#include <map>
#include <sstream>

#include "tools/warrenctl/commands.hpp"

namespace warrenctl {

using json = nlohmann::json;

// A value as a table cell: strings bare, arrays of scalars as [a, b], objects as JSON.
std::string text_of(const json& v) {
  if (v.is_null())
    return "";
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_boolean())
    return v.get<bool>() ? "true" : "false";
  if (v.is_array() && std::all_of(v.begin(), v.end(), [](auto& x) { return x.is_primitive(); })) {
    std::string out = "[";
    for (auto& x : v)
      out += (out.size() > 1 ? ", " : "") + text_of(x);
    return out + "]";
  }
  if (v.is_number_float()) {
    std::ostringstream s;
    s << v.get<double>();
    return s.str();
  }
  return v.dump();
}

namespace {

// "message_stats.publish" looks inside objects.
json lookup(const json& obj, const std::string& path) {
  const json* cur = &obj;
  size_t pos = 0;
  while (true) {
    auto dot = path.find('.', pos);
    auto key = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (!cur->is_object() || !cur->contains(key))
      return nullptr;
    cur = &(*cur)[key];
    if (dot == std::string::npos)
      return *cur;
    pos = dot + 1;
  }
}

// rabbitmqctl column names that are named differently in the API.
using aliases = std::map<std::string, std::string>;

int list(invocation& inv, const std::string& path, std::vector<std::string> defaults,
         const aliases& names, const std::string& what) {
  auto r = request(inv.ep, "GET", path);
  if (r.status != 200)
    return failed(r, "listing " + what);
  auto columns = inv.args.empty() ? defaults : inv.args;
  auto rows = r.json();
  if (inv.table_headers) {
    for (size_t i = 0; i < columns.size(); ++i)
      std::cout << (i ? "\t" : "") << columns[i];
    std::cout << "\n";
  }
  for (auto& row : rows) {
    for (size_t i = 0; i < columns.size(); ++i) {
      auto a = names.find(columns[i]);
      auto field = a == names.end() ? columns[i] : a->second;
      // An alias starting with '=' is a constant (rabbitmqctl's source_kind is "exchange").
      std::cout << (i ? "\t" : "")
                << (field[0] == '=' ? field.substr(1) : text_of(lookup(row, field)));
    }
    std::cout << "\n";
  }
  return exit_ok;
}

}  // namespace

int list_queues(invocation& inv) {
  info(inv, "Listing queues for vhost " + inv.vhost + " ...");
  return list(inv, "/api/queues/" + encode(inv.vhost), {"name", "messages", "consumers"},
              {{"messages_unacked", "messages_unacknowledged"}}, "queues");
}

int list_exchanges(invocation& inv) {
  info(inv, "Listing exchanges for vhost " + inv.vhost + " ...");
  return list(inv, "/api/exchanges/" + encode(inv.vhost), {"name", "type"}, {}, "exchanges");
}

int list_bindings(invocation& inv) {
  info(inv, "Listing bindings for vhost " + inv.vhost + "...");
  return list(inv, "/api/bindings/" + encode(inv.vhost),
              {"source_name", "source_kind", "destination_name", "destination_kind",
               "routing_key", "arguments"},
              {{"source_name", "source"},
               {"destination_name", "destination"},
               {"destination_kind", "destination_type"},
               {"source_kind", "=exchange"}},
              "bindings");
}

int list_connections(invocation& inv) {
  info(inv, "Listing connections ...");
  return list(inv, "/api/connections", {"user", "peer_host", "peer_port", "state"},
              {{"peer_address", "peer_host"}}, "connections");
}

int list_channels(invocation& inv) {
  info(inv, "Listing channels ...");
  return list(inv, "/api/channels",
              {"name", "user", "consumer_count", "messages_unacknowledged"},
              {{"connection", "connection_details.name"}}, "channels");
}

int list_consumers(invocation& inv) {
  info(inv, "Listing consumers in vhost " + inv.vhost + " ...");
  return list(inv, "/api/consumers/" + encode(inv.vhost),
              {"queue_name", "channel_pid", "consumer_tag", "ack_required", "prefetch_count",
               "active", "arguments"},
              {{"queue_name", "queue.name"}, {"channel_pid", "channel_details.name"}},
              "consumers");
}

int list_users(invocation& inv) {
  info(inv, "Listing users ...");
  return list(inv, "/api/users", {"user", "tags"}, {{"user", "name"}}, "users");
}

int list_vhosts(invocation& inv) {
  info(inv, "Listing vhosts ...");
  return list(inv, "/api/vhosts", {"name"}, {}, "vhosts");
}

int list_topic_permissions(invocation& inv) {
  info(inv, "Listing topic permissions for vhost \"" + inv.vhost + "\" ...");
  return list(inv, "/api/vhosts/" + encode(inv.vhost) + "/topic-permissions",
              {"user", "exchange", "write", "read"}, {}, "topic permissions");
}

int list_policies(invocation& inv) {
  info(inv, "Listing policies for vhost \"" + inv.vhost + "\" ...");
  return list(inv, "/api/policies/" + encode(inv.vhost),
              {"vhost", "name", "pattern", "apply-to", "definition", "priority"}, {}, "policies");
}

int list_operator_policies(invocation& inv) {
  info(inv, "Listing operator policy overrides for vhost \"" + inv.vhost + "\" ...");
  return list(inv, "/api/operator-policies/" + encode(inv.vhost),
              {"vhost", "name", "pattern", "apply-to", "definition", "priority"}, {},
              "operator policies");
}

int list_permissions(invocation& inv) {
  info(inv, "Listing permissions for vhost \"" + inv.vhost + "\" ...");
  return list(inv, "/api/vhosts/" + encode(inv.vhost) + "/permissions",
              {"user", "configure", "write", "read"}, {}, "permissions");
}

}  // namespace warrenctl
