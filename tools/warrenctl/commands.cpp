// warrenctl's commands other than the lists (lists.cpp), and the table of all commands; see
// commands.hpp.
#include "tools/warrenctl/commands.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <map>

namespace warrenctl {

using json = nlohmann::json;

int failed(const response& r, const std::string& what) {
  std::cerr << "Error: " << what << ": " << r.reason() << "\n";
  return r.status == 0 ? exit_unavailable : exit_failed;
}

int usage(const std::string& name, const std::string& why) {
  std::cerr << "warrenctl " << name << ": " << why << " (see warrenctl " << name
            << " --help)\n";
  return exit_usage;
}

void info(const invocation& inv, const std::string& line) {
  if (!inv.quiet)
    std::cerr << line << "\n";
}

int simple(const invocation& inv, const std::string& method, const std::string& path,
           const json* body, const std::string& what) {
  auto r = request(inv.ep, method, path, body);
  if (r.status < 200 || r.status >= 300)
    return failed(r, what);
  return exit_ok;
}

namespace {

std::string vhost_path(const invocation& inv) { return encode(inv.vhost); }

// key=value arguments (rabbitmqadmin style); a bare first word is the name.
bool parse_pairs(const std::vector<std::string>& args, size_t from,
                 std::map<std::string, std::string>& out, std::string& error) {
  for (size_t i = from; i < args.size(); ++i) {
    auto eq = args[i].find('=');
    if (eq == std::string::npos) {
      if (i == from && !out.count("name")) {
        out["name"] = args[i];
        continue;
      }
      error = "expected key=value, got '" + args[i] + "'";
      return false;
    }
    out[args[i].substr(0, eq)] = args[i].substr(eq + 1);
  }
  return true;
}

bool to_bool(const std::map<std::string, std::string>& kv, const std::string& key, bool fallback,
             std::string& error) {
  auto it = kv.find(key);
  if (it == kv.end())
    return fallback;
  if (it->second == "true" || it->second == "True" || it->second == "1")
    return true;
  if (it->second == "false" || it->second == "False" || it->second == "0")
    return false;
  error = key + " must be true or false";
  return fallback;
}

bool arguments_of(const std::map<std::string, std::string>& kv, json& out, std::string& error) {
  auto it = kv.find("arguments");
  out = json::object();
  if (it == kv.end())
    return true;
  out = json::parse(it->second, nullptr, false);
  if (out.is_discarded() || !out.is_object()) {
    error = "arguments must be a JSON object";
    return false;
  }
  return true;
}


int declare(invocation& inv) {
  if (inv.args.empty())
    return usage("declare", "what to declare: queue, exchange or binding");
  std::map<std::string, std::string> kv;
  std::string error;
  if (!parse_pairs(inv.args, 1, kv, error))
    return usage("declare", error);
  json args;
  if (!arguments_of(kv, args, error))
    return usage("declare", error);
  auto kind = inv.args[0];
  if (kind == "queue" && kv.count("queue_type"))  // as rabbitmqadmin: x-queue-type
    args["x-queue-type"] = kv["queue_type"];
  auto vhost = kv.count("vhost") ? encode(kv["vhost"]) : vhost_path(inv);
  if (kind == "queue" || kind == "exchange") {
    if (!kv.count("name"))
      return usage("declare", kind + " needs name=NAME");
    json body{{"durable", to_bool(kv, "durable", kind == "exchange", error)},
              {"auto_delete", to_bool(kv, "auto_delete", false, error)},
              {"arguments", args}};
    if (kind == "exchange") {
      body["type"] = kv.count("type") ? kv["type"] : "direct";
      body["internal"] = to_bool(kv, "internal", false, error);
    }
    if (!error.empty())
      return usage("declare", error);
    auto rc = simple(inv, "PUT", "/api/" + kind + "s/" + vhost + "/" + encode(kv["name"]), &body,
                     "declaring " + kind + " '" + kv["name"] + "'");
    if (rc == exit_ok)
      std::cout << kind << " declared\n";
    return rc;
  }
  if (kind == "binding") {
    if (!kv.count("source") || !kv.count("destination"))
      return usage("declare", "binding needs source=EXCHANGE destination=NAME");
    auto dtype = kv.count("destination_type") ? kv["destination_type"] : "queue";
    if (dtype != "queue" && dtype != "exchange")
      return usage("declare", "destination_type must be queue or exchange");
    json body{{"routing_key", kv["routing_key"]}, {"arguments", args}};
    auto rc = simple(inv, "POST",
                     "/api/bindings/" + vhost + "/e/" + encode(kv["source"]) + "/" +
                       (dtype == "queue" ? "q" : "e") + "/" + encode(kv["destination"]),
                     &body, "declaring binding");
    if (rc == exit_ok)
      std::cout << "binding declared\n";
    return rc;
  }
  return usage("declare", "unknown kind '" + kind + "': queue, exchange or binding");
}

int delete_object(invocation& inv) {
  if (inv.args.empty())
    return usage("delete", "what to delete: queue, exchange or binding");
  std::map<std::string, std::string> kv;
  std::string error;
  if (!parse_pairs(inv.args, 1, kv, error))
    return usage("delete", error);
  auto kind = inv.args[0];
  auto vhost = kv.count("vhost") ? encode(kv["vhost"]) : vhost_path(inv);
  if (kind == "queue" || kind == "exchange") {
    if (!kv.count("name"))
      return usage("delete", kind + " needs name=NAME");
    std::string query;
    if (to_bool(kv, "if_unused", false, error))
      query += "if-unused=true";
    if (to_bool(kv, "if_empty", false, error))
      query += std::string{query.empty() ? "" : "&"} + "if-empty=true";
    if (!error.empty())
      return usage("delete", error);
    auto rc = simple(inv, "DELETE",
                     "/api/" + kind + "s/" + vhost + "/" + encode(kv["name"]) +
                       (query.empty() ? "" : "?" + query),
                     nullptr, "deleting " + kind + " '" + kv["name"] + "'");
    if (rc == exit_ok)
      std::cout << kind << " deleted\n";
    return rc;
  }
  if (kind == "binding") {
    if (!kv.count("source") || !kv.count("destination"))
      return usage("delete", "binding needs source=EXCHANGE destination=NAME");
    auto dtype = kv.count("destination_type") ? kv["destination_type"] : "queue";
    auto base = "/api/bindings/" + vhost + "/e/" + encode(kv["source"]) + "/" +
                (dtype == "exchange" ? "e" : "q") + "/" + encode(kv["destination"]);
    std::string props = kv.count("properties_key") ? kv["properties_key"] : "";
    if (props.empty()) {
      // Find it by routing key (and no arguments) among the bindings between the two.
      auto r = request(inv.ep, "GET", base);
      if (r.status != 200)
        return failed(r, "looking up the binding");
      for (auto& b : r.json())
        if (b.value("routing_key", "") == kv["routing_key"] &&
            (!b.contains("arguments") || b["arguments"].empty()))
          props = b.value("properties_key", "");
      if (props.empty()) {
        std::cerr << "Error: no such binding\n";
        return exit_failed;
      }
    }
    auto rc = simple(inv, "DELETE", base + "/" + encode(props), nullptr, "deleting binding");
    if (rc == exit_ok)
      std::cout << "binding deleted\n";
    return rc;
  }
  return usage("delete", "unknown kind '" + kind + "': queue, exchange or binding");
}

int purge_queue(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("purge_queue", "expected the queue name");
  info(inv, "Purging queue '" + inv.args[0] + "' in vhost '" + inv.vhost + "' ...");
  return simple(inv, "DELETE",
                "/api/queues/" + vhost_path(inv) + "/" + encode(inv.args[0]) + "/contents",
                nullptr, "purging queue '" + inv.args[0] + "'");
}

// Fault injection (debug.fault_injection on the broker): the actor fails as if it had thrown.
int crash(invocation& inv) {
  if (inv.args.size() != 2)
    return usage("crash", "expected queue|exchange|vhost|connection and a name");
  auto& kind = inv.args[0];
  auto& name = inv.args[1];
  std::string path;
  if (kind == "queue" || kind == "exchange")
    path = "/api/debug/crash/" + kind + "/" + vhost_path(inv) + "/" + encode(name);
  else if (kind == "vhost" || kind == "connection")
    path = "/api/debug/crash/" + kind + "/" + encode(name);
  else
    return usage("crash", "unknown kind '" + kind + "': queue, exchange, vhost or connection");
  std::string where = kind == "queue" || kind == "exchange" ? " in vhost '" + inv.vhost + "'" : "";
  info(inv, "Crashing " + kind + " '" + name + "'" + where + " ...");
  return simple(inv, "POST", path, nullptr, "crashing " + kind + " '" + name + "'");
}

int add_user(invocation& inv) {
  if (inv.args.size() < 2 || inv.args.size() > 3)
    return usage("add_user", "expected <user> <password> [tags]");
  auto& name = inv.args[0];
  if (request(inv.ep, "GET", "/api/users/" + encode(name)).status == 200) {
    std::cerr << "Error: user '" << name << "' already exists\n";
    return exit_failed;
  }
  info(inv, "Adding user \"" + name + "\" ...");
  json body{{"password", inv.args[1]}, {"tags", inv.args.size() > 2 ? inv.args[2] : ""}};
  return simple(inv, "PUT", "/api/users/" + encode(name), &body, "adding user '" + name + "'");
}

int delete_user(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("delete_user", "expected <user>");
  info(inv, "Deleting user \"" + inv.args[0] + "\" ...");
  return simple(inv, "DELETE", "/api/users/" + encode(inv.args[0]), nullptr,
                "deleting user '" + inv.args[0] + "'");
}

int change_password(invocation& inv) {
  if (inv.args.size() != 2)
    return usage("change_password", "expected <user> <new password>");
  auto& name = inv.args[0];
  auto r = request(inv.ep, "GET", "/api/users/" + encode(name));
  if (r.status != 200)
    return failed(r, "looking up user '" + name + "'");
  info(inv, "Changing password for user \"" + name + "\" ...");
  json body{{"password", inv.args[1]}, {"tags", r.json().value("tags", json::array())}};
  return simple(inv, "PUT", "/api/users/" + encode(name), &body,
                "changing the password of '" + name + "'");
}

int set_user_tags(invocation& inv) {
  if (inv.args.empty())
    return usage("set_user_tags", "expected <user> [tag ...]");
  auto& name = inv.args[0];
  auto r = request(inv.ep, "GET", "/api/users/" + encode(name));
  if (r.status != 200)
    return failed(r, "looking up user '" + name + "'");
  json tags = json::array();
  for (size_t i = 1; i < inv.args.size(); ++i)
    tags.push_back(inv.args[i]);
  json body{{"password_hash", r.json().value("password_hash", "")}, {"tags", tags}};
  return simple(inv, "PUT", "/api/users/" + encode(name), &body,
                "setting the tags of '" + name + "'");
}

int set_permissions(invocation& inv) {
  if (inv.args.size() != 4)
    return usage("set_permissions", "expected <user> <configure> <write> <read>");
  info(inv, "Setting permissions for user \"" + inv.args[0] + "\" in vhost \"" + inv.vhost +
              "\" ...");
  json body{{"configure", inv.args[1]}, {"write", inv.args[2]}, {"read", inv.args[3]}};
  return simple(inv, "PUT", "/api/permissions/" + vhost_path(inv) + "/" + encode(inv.args[0]),
                &body, "setting permissions");
}

int clear_permissions(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("clear_permissions", "expected <user>");
  return simple(inv, "DELETE",
                "/api/permissions/" + vhost_path(inv) + "/" + encode(inv.args[0]), nullptr,
                "clearing permissions");
}

int set_topic_permissions(invocation& inv) {
  if (inv.args.size() != 4)
    return usage("set_topic_permissions", "expected <user> <exchange> <write> <read>");
  info(inv, "Setting topic permissions on \"" + inv.args[1] + "\" for user \"" + inv.args[0] +
              "\" in vhost \"" + inv.vhost + "\" ...");
  json body{{"exchange", inv.args[1]}, {"write", inv.args[2]}, {"read", inv.args[3]}};
  return simple(inv, "PUT",
                "/api/topic-permissions/" + vhost_path(inv) + "/" + encode(inv.args[0]), &body,
                "setting topic permissions");
}

int clear_topic_permissions(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("clear_topic_permissions", "expected <user>");
  info(inv, "Clearing topic permissions for user \"" + inv.args[0] + "\" in vhost \"" +
              inv.vhost + "\" ...");
  return simple(inv, "DELETE",
                "/api/topic-permissions/" + vhost_path(inv) + "/" + encode(inv.args[0]),
                nullptr, "clearing topic permissions");
}

// Limits (rabbitmqctl set_vhost_limits / set_user_limits): a JSON object of limit -> value,
// one PUT per limit. `base` is /api/vhost-limits/{vhost} or /api/user-limits/{user}.
int set_limits(invocation& inv, const std::string& name, const std::string& base,
               const std::string& definition) {
  auto limits = json::parse(definition, nullptr, false);
  if (limits.is_discarded() || !limits.is_object() || limits.empty())
    return usage(name, "the definition must be a JSON object such as '{\"max-connections\": 10}'");
  for (auto& [limit, value] : limits.items()) {
    if (!value.is_number_integer())
      return usage(name, "the value of " + limit + " must be an integer");
    json body{{"value", value}};
    if (auto rc = simple(inv, "PUT", base + "/" + encode(limit), &body, "setting " + limit);
        rc != exit_ok)
      return rc;
  }
  return exit_ok;
}

// The limits set at `base` ({} when none), or nullopt after reporting a failure in `rc`.
std::optional<json> current_limits(const invocation& inv, const std::string& base, int& rc) {
  auto r = request(inv.ep, "GET", base);
  if (r.status != 200) {
    rc = failed(r, "listing limits");
    return std::nullopt;
  }
  auto list = r.json();
  if (list.is_array() && !list.empty() && list[0].contains("value"))
    return list[0]["value"];
  return json::object();
}

int clear_limits(invocation& inv, const std::string& base, const std::string& which) {
  int rc = exit_ok;
  auto limits = current_limits(inv, base, rc);
  if (!limits)
    return rc;
  for (auto& [limit, value] : limits->items())
    if (which == "all" || which == limit)
      if (rc = simple(inv, "DELETE", base + "/" + encode(limit), nullptr, "clearing " + limit);
          rc != exit_ok)
        return rc;
  return exit_ok;
}

int set_vhost_limits(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("set_vhost_limits", "expected <definition>");
  info(inv, "Setting vhost limits to \"" + inv.args[0] + "\" for vhost \"" + inv.vhost +
              "\" ...");
  return set_limits(inv, "set_vhost_limits", "/api/vhost-limits/" + vhost_path(inv), inv.args[0]);
}

int clear_vhost_limits(invocation& inv) {
  if (!inv.args.empty())
    return usage("clear_vhost_limits", "expected no arguments");
  info(inv, "Clearing vhost \"" + inv.vhost + "\" limits ...");
  return clear_limits(inv, "/api/vhost-limits/" + vhost_path(inv), "all");
}

int list_vhost_limits(invocation& inv) {
  if (!inv.args.empty())
    return usage("list_vhost_limits", "expected no arguments");
  info(inv, "Listing limits for vhost \"" + inv.vhost + "\" ...");
  int rc = exit_ok;
  auto limits = current_limits(inv, "/api/vhost-limits/" + vhost_path(inv), rc);
  if (limits && !limits->empty())
    std::cout << limits->dump() << "\n";
  return rc;
}

int set_user_limits(invocation& inv) {
  if (inv.args.size() != 2)
    return usage("set_user_limits", "expected <user> <definition>");
  info(inv, "Setting user limits to \"" + inv.args[1] + "\" for user \"" + inv.args[0] +
              "\" ...");
  return set_limits(inv, "set_user_limits", "/api/user-limits/" + encode(inv.args[0]),
                    inv.args[1]);
}

int clear_user_limits(invocation& inv) {
  if (inv.args.size() != 2)
    return usage("clear_user_limits", "expected <user> <limit name | all>");
  info(inv, "Clearing \"" + inv.args[1] + "\" limit for user \"" + inv.args[0] + "\" ...");
  return clear_limits(inv, "/api/user-limits/" + encode(inv.args[0]), inv.args[1]);
}

int list_user_limits(invocation& inv) {
  if (inv.args.size() > 1)
    return usage("list_user_limits", "expected [user]");
  if (inv.args.size() == 1) {
    info(inv, "Listing limits for user \"" + inv.args[0] + "\" ...");
    int rc = exit_ok;
    auto limits = current_limits(inv, "/api/user-limits/" + encode(inv.args[0]), rc);
    if (limits && !limits->empty())
      std::cout << limits->dump() << "\n";
    return rc;
  }
  info(inv, "Listing limits for all users ...");
  auto r = request(inv.ep, "GET", "/api/user-limits");
  if (r.status != 200)
    return failed(r, "listing limits");
  for (auto& entry : r.json())
    std::cout << text_of(entry["user"]) << "\t" << entry["value"].dump() << "\n";
  return exit_ok;
}

int add_vhost(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("add_vhost", "expected <vhost>");
  auto& name = inv.args[0];
  if (request(inv.ep, "GET", "/api/vhosts/" + encode(name)).status == 200) {
    std::cerr << "Error: vhost '" << name << "' already exists\n";
    return exit_failed;
  }
  info(inv, "Adding vhost \"" + name + "\" ...");
  return simple(inv, "PUT", "/api/vhosts/" + encode(name), nullptr,
                "adding vhost '" + name + "'");
}

int delete_vhost(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("delete_vhost", "expected <vhost>");
  info(inv, "Deleting vhost \"" + inv.args[0] + "\" ...");
  return simple(inv, "DELETE", "/api/vhosts/" + encode(inv.args[0]), nullptr,
                "deleting vhost '" + inv.args[0] + "'");
}

// trace_on / trace_off: the firehose for the vhost (-p) on the node warrenctl talks to.
int set_tracing(invocation& inv, const char* command, bool on) {
  if (!inv.args.empty())
    return usage(command, "expected no arguments");
  if (request(inv.ep, "GET", "/api/vhosts/" + vhost_path(inv)).status != 200) {
    std::cerr << "Error: vhost '" << inv.vhost << "' does not exist\n";
    return exit_failed;
  }
  info(inv, std::string{on ? "Starting" : "Stopping"} + " tracing for vhost \"" + inv.vhost +
              "\" ...");
  json body = {{"tracing", on}};
  return simple(inv, "PUT", "/api/vhosts/" + vhost_path(inv), &body,
                std::string{on ? "starting" : "stopping"} + " tracing for vhost '" + inv.vhost +
                  "'");
}

int trace_on(invocation& inv) { return set_tracing(inv, "trace_on", true); }
int trace_off(invocation& inv) { return set_tracing(inv, "trace_off", false); }

int close_connection(invocation& inv) {
  if (inv.args.empty() || inv.args.size() > 2)
    return usage("close_connection", "expected <connection name> [reason]");
  auto r = request(inv.ep, "GET", "/api/connections/" + encode(inv.args[0]));
  if (r.status != 200)
    return failed(r, "looking up connection '" + inv.args[0] + "'");
  info(inv, "Closing connection " + inv.args[0] + " ...");
  std::vector<std::pair<std::string, std::string>> headers;
  if (inv.args.size() == 2)
    headers.emplace_back("X-Reason", inv.args[1]);
  auto d = request(inv.ep, "DELETE", "/api/connections/" + encode(inv.args[0]), nullptr,
                   headers);
  if (d.status < 200 || d.status >= 300)
    return failed(d, "closing connection");
  return exit_ok;
}

int status(invocation& inv) {
  auto o = request(inv.ep, "GET", "/api/overview");
  if (o.status != 200)
    return failed(o, "reading the overview");
  auto n = request(inv.ep, "GET", "/api/nodes");
  if (n.status != 200)
    return failed(n, "reading the node");
  auto ov = o.json();
  auto node = n.json().empty() ? json::object() : n.json()[0];
  std::cout << "Status of node " << text_of(ov["node"]) << " ...\n"
            << "Product: " << text_of(ov["product_name"]) << " " << text_of(ov["product_version"])
            << "\nUptime (seconds): " << node.value("uptime", 0) / 1000 << "\n\nListeners\n";
  for (auto& l : ov["listeners"])
    std::cout << "  " << text_of(l["protocol"]) << "\t" << text_of(l["ip_address"]) << ":"
              << text_of(l["port"]) << "\n";
  auto& totals = ov["object_totals"];
  auto& queue_totals = ov["queue_totals"];
  std::cout << "\nTotals\n"
            << "  connections\t" << text_of(totals["connections"]) << "\n"
            << "  channels\t" << text_of(totals["channels"]) << "\n"
            << "  queues\t" << text_of(totals["queues"]) << "\n"
            << "  exchanges\t" << text_of(totals["exchanges"]) << "\n"
            << "  consumers\t" << text_of(totals["consumers"]) << "\n"
            << "  messages\t" << text_of(queue_totals["messages"]) << "\n"
            << "  messages_ready\t" << text_of(queue_totals["messages_ready"]) << "\n"
            << "  messages_unacknowledged\t" << text_of(queue_totals["messages_unacknowledged"])
            << "\n\nResources\n"
            << "  memory_bytes\t" << text_of(node["mem_used"]) << "\n"
            << "  file_descriptors\t" << text_of(node["fd_used"]) << " / "
            << text_of(node["fd_total"]) << "\n"
            << "  sockets\t" << text_of(node["sockets_used"]) << " / "
            << text_of(node["sockets_total"]) << "\n"
            << "  actors\t" << text_of(node["proc_used"]) << "\n"
            << "  disk_free_bytes\t" << text_of(node["disk_free"]) << "\n"
            << "  store_bytes\t" << text_of(node["store_bytes"]) << "\n"
            << "  memory_high_watermark_bytes\t" << text_of(node["mem_limit"]) << "\n"
            << "  disk_free_limit_bytes\t" << text_of(node["disk_free_limit"]) << "\n"
            << "\nAlarms\n";
  if (node.value("mem_alarm", false))
    std::cout << "  memory\n";
  if (node.value("disk_free_alarm", false))
    std::cout << "  disk\n";
  if (!node.value("mem_alarm", false) && !node.value("disk_free_alarm", false))
    std::cout << "  (none)\n";
  return exit_ok;
}

// PUT /api/nodes/{node}/limits with `body`, for the node warrenctl talks to.
int set_limits(invocation& inv, const json& body, const std::string& what) {
  auto n = request(inv.ep, "GET", "/api/nodes");
  if (n.status != 200)
    return failed(n, "reading the node");
  auto nodes = n.json();
  if (!nodes.is_array() || nodes.empty())
    return failed(n, "reading the node");
  auto node = text_of(nodes[0]["name"]);
  info(inv, "Setting " + what + " on " + node + " ...");
  return simple(inv, "PUT", "/api/nodes/" + encode(node) + "/limits", &body, "setting " + what);
}

int set_vm_memory_high_watermark(invocation& inv) {
  const char* name = "set_vm_memory_high_watermark";
  if (inv.args.size() == 2 && inv.args[0] == "absolute")
    return set_limits(inv, json{{"vm_memory_high_watermark_absolute", inv.args[1]}},
                      "the memory high watermark to " + inv.args[1] + " bytes");
  if (inv.args.size() != 1)
    return usage(name, "expected <fraction> or absolute <bytes>");
  char* end = nullptr;
  double f = std::strtod(inv.args[0].c_str(), &end);
  if (inv.args[0].empty() || *end != '\0' || !(f > 0))
    return usage(name, "the fraction must be a number above 0");
  return set_limits(inv, json{{"vm_memory_high_watermark", f}},
                    "the memory high watermark to " + inv.args[0] + " of the memory");
}

int set_disk_free_limit(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("set_disk_free_limit", "expected <bytes>, e.g. 50000000 or 50MB");
  return set_limits(inv, json{{"disk_free_limit", inv.args[0]}},
                    "the disk free limit to " + inv.args[0]);
}

int cluster_status(invocation& inv) {
  auto n = request(inv.ep, "GET", "/api/nodes");
  if (n.status != 200)
    return failed(n, "reading the nodes");
  auto name = request(inv.ep, "GET", "/api/cluster-name");
  if (name.status != 200)
    return failed(name, "reading the cluster name");
  auto nodes = n.json();
  std::string first = nodes.empty() ? "" : text_of(nodes[0]["name"]);
  std::cout << "Cluster status of node " << first << " ...\nBasics\n\nCluster name: "
            << text_of(name.json()["name"]) << "\n\nDisk Nodes\n\n";
  for (auto& node : nodes)
    std::cout << text_of(node["name"]) << "\n";
  std::cout << "\nRunning Nodes\n\n";
  for (auto& node : nodes)
    if (node.value("running", false))
      std::cout << text_of(node["name"]) << "\n";
  return exit_ok;
}

int join_cluster(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("join_cluster", "expected <host:port>, the cluster port of a node");
  json body{{"address", inv.args[0]}};
  info(inv, "Clustering this node with " + inv.args[0] + " ...");
  return simple(inv, "POST", "/api/cluster/join", &body, "joining the cluster at " + inv.args[0]);
}

int forget_cluster_node(invocation& inv) {
  if (inv.args.size() != 1)
    return usage("forget_cluster_node", "expected <node>, the name of a member that is down");
  info(inv, "Removing node " + inv.args[0] + " from the cluster ...");
  return simple(inv, "DELETE", "/api/cluster/nodes/" + encode(inv.args[0]), nullptr,
                "forgetting node " + inv.args[0]);
}

int leave_cluster(invocation& inv) {
  if (!inv.args.empty())
    return usage("leave_cluster", "expected no arguments");
  info(inv, "Leaving the cluster ...");
  return simple(inv, "POST", "/api/cluster/leave", nullptr, "leaving the cluster");
}

}  // namespace

const std::vector<command>& commands() {
  static const std::vector<command> all = {
    {"status", "", "Shows the node's listeners, totals and resource use.", status},
    {"cluster_status", "", "Shows the cluster's nodes, and which of them run.", cluster_status},
    {"join_cluster", "<host:port>",
     "Makes this node join the cluster of the node whose cluster port that is.", join_cluster},
    {"forget_cluster_node", "<node>",
     "Removes a member that is down for good from the cluster (on every running node).",
     forget_cluster_node},
    {"leave_cluster", "",
     "Makes this node leave its cluster: the others forget it, it runs alone.", leave_cluster},
    {"list_queues", "[column ...]",
     "Lists the vhost's queues (default columns: name messages consumers).", list_queues},
    {"list_exchanges", "[column ...]", "Lists the vhost's exchanges (name type).",
     list_exchanges},
    {"list_bindings", "[column ...]",
     "Lists the vhost's bindings (source_name source_kind destination_name destination_kind "
     "routing_key arguments).",
     list_bindings},
    {"list_connections", "[column ...]",
     "Lists connections (user peer_host peer_port state; also name, vhost, protocol, ...).",
     list_connections},
    {"list_channels", "[column ...]",
     "Lists channels (name user consumer_count messages_unacknowledged).", list_channels},
    {"list_consumers", "[column ...]",
     "Lists the vhost's consumers (queue_name channel_pid consumer_tag ack_required "
     "prefetch_count active arguments).",
     list_consumers},
    {"list_users", "[column ...]", "Lists users (user tags).", list_users},
    {"list_vhosts", "[column ...]", "Lists virtual hosts (name).", list_vhosts},
    {"list_permissions", "[column ...]",
     "Lists the vhost's permissions (user configure write read).", list_permissions},
    {"declare",
     "queue name=N [durable=true|false] [auto_delete=..] [queue_type=T] [arguments=JSON]\n"
     "       | exchange name=N [type=direct|fanout|topic|headers] [durable=..] "
     "[auto_delete=..] [internal=..] [arguments=JSON]\n"
     "       | binding source=E destination=N [destination_type=queue|exchange] "
     "[routing_key=K] [arguments=JSON]",
     "Declares a queue, an exchange or a binding in the vhost (-p). queue_type=T is the\n"
     "argument x-queue-type T (classic, quorum or stream), as in rabbitmqadmin.",
     declare},
    {"delete",
     "queue name=N [if_unused=true] [if_empty=true] | exchange name=N [if_unused=true]\n"
     "       | binding source=E destination=N [destination_type=..] [routing_key=K | "
     "properties_key=P]",
     "Deletes a queue, an exchange or a binding in the vhost (-p).", delete_object},
    {"purge_queue", "<queue>", "Removes the ready messages of a queue.", purge_queue},
    {"add_user", "<user> <password> [tags]", "Adds a user.", add_user},
    {"delete_user", "<user>", "Deletes a user and its permissions.", delete_user},
    {"change_password", "<user> <password>", "Sets a user's password.", change_password},
    {"set_user_tags", "<user> [tag ...]", "Sets a user's tags.", set_user_tags},
    {"set_permissions", "<user> <configure> <write> <read>",
     "Sets a user's permissions (regular expressions) in the vhost (-p).",
     set_permissions},
    {"clear_permissions", "<user>", "Removes a user's permissions in the vhost (-p).",
     clear_permissions},
    {"set_topic_permissions", "<user> <exchange> <write> <read>",
     "Sets a user's topic permissions (routing-key patterns) on a topic exchange in the vhost "
     "(-p).",
     set_topic_permissions},
    {"clear_topic_permissions", "<user>",
     "Removes all of a user's topic permissions in the vhost (-p).", clear_topic_permissions},
    {"list_topic_permissions", "[column ...]",
     "Lists the vhost's topic permissions (user exchange write read).", list_topic_permissions},
    {"set_vhost_limits", "<definition>",
     "Sets the vhost's (-p) limits: '{\"max-connections\": N, \"max-queues\": N}' (a "
     "negative value is no limit).",
     set_vhost_limits},
    {"clear_vhost_limits", "", "Clears every limit of the vhost (-p).", clear_vhost_limits},
    {"list_vhost_limits", "", "Shows the vhost's (-p) limits as JSON.", list_vhost_limits},
    {"set_user_limits", "<user> <definition>",
     "Sets a user's limits: '{\"max-connections\": N, \"max-channels\": N}'.",
     set_user_limits},
    {"clear_user_limits", "<user> <limit name | all>", "Clears a user's limit, or all of them.",
     clear_user_limits},
    {"list_user_limits", "[user]", "Shows a user's limits as JSON, or every user's.",
     list_user_limits},
    {"set_policy",
     "[--priority N] [--apply-to queues|exchanges|all] <name> <pattern> <definition>",
     "Sets a policy in the vhost (-p): names matching <pattern> take the JSON <definition>.",
     set_policy},
    {"clear_policy", "<name>", "Removes a policy from the vhost (-p).", clear_policy},
    {"list_policies", "[column ...]",
     "Lists the vhost's (-p) policies (vhost name pattern apply-to definition priority).",
     list_policies},
    {"set_operator_policy",
     "[--priority N] [--apply-to queues|exchanges|all] <name> <pattern> <definition>",
     "Sets an operator policy in the vhost (-p): limits that hold over the policies.",
     set_operator_policy},
    {"clear_operator_policy", "<name>", "Removes an operator policy from the vhost (-p).",
     clear_operator_policy},
    {"list_operator_policies", "[column ...]",
     "Lists the vhost's (-p) operator policies (vhost name pattern apply-to definition "
     "priority).",
     list_operator_policies},
    {"add_super_stream",
     "<name> --partitions N [--max-length-bytes B] [--max-age AGE] "
     "[--stream-max-segment-size-bytes B]",
     "Adds a partitioned stream to the vhost (-p): the exchange <name> (type x-super-stream: "
     "a message goes to one partition by a hash of its routing key) and the streams "
     "<name>-0 .. <name>-(N-1).",
     add_super_stream},
    {"alter_super_stream", "<name> --partitions N",
     "Raises the partition count of a super stream to N (it can only grow); new partitions "
     "take the first one's arguments.",
     alter_super_stream},
    {"delete_super_stream", "<name>", "Deletes a super stream with its partitions.",
     delete_super_stream},
    {"list_super_stream_partitions", "<name>", "Lists a super stream's partition streams.",
     list_super_stream_partitions},
    {"add_vhost", "<vhost>", "Adds a virtual host.", add_vhost},
    {"delete_vhost", "<vhost>",
     "Deletes a virtual host with everything in it; its connections are closed.", delete_vhost},
    {"trace_on", "",
     "Copies every message published and delivered in the vhost to its exchange "
     "amq.rabbitmq.trace (the firehose), on this node, until trace_off or a restart.",
     trace_on},
    {"trace_off", "", "Stops the firehose for the vhost on this node.", trace_off},
    {"set_vm_memory_high_watermark", "<fraction> | absolute <bytes>",
     "Sets the memory high watermark: a fraction of the machine's memory, or bytes (50MB, "
     "1GiB); publishers are blocked while the broker uses more.",
     set_vm_memory_high_watermark},
    {"set_disk_free_limit", "<bytes>",
     "Sets the free disk space (50MB, 1GB) under which publishers are blocked.",
     set_disk_free_limit},
    {"close_connection", "<connection name> [reason]", "Closes a client connection (320).",
     close_connection},
    {"crash", "queue|exchange <name> | vhost <vhost> | connection <connection name>",
     "Makes that actor fail like an unhandled exception, for testing supervision (needs "
     "debug.fault_injection = true on the broker and an administrator). Queues and "
     "exchanges are in the vhost (-p).",
     crash},
  };
  return all;
}

}  // namespace warrenctl
