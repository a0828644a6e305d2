// /api/parameters and /api/global-parameters: what Warren has of RabbitMQ's runtime
// parameters (vhost limits, operator policies).
// /api/definitions: the broker's definitions as one JSON document, RabbitMQ's export format
// (users, vhosts, permissions, topic permissions, vhost limits and operator policies as
// parameters, policies, queues, exchanges, bindings), and its import (also at start-up:
// load_definitions); /api/definitions/{vhost} the same for one vhost's parameters, policies,
// queues, exchanges and bindings. And /api/aliveness-test/{vhost}. Both are built on the rest
// of the API (sub_call), so they check and store what a request per object would.
#include "management/api.hpp"
#include "management/json_amqp.hpp"

namespace warren::mgmt {

namespace {

// The answer of a GET made from within this request, or an empty list.
json list_of(call& c, std::vector<std::string> path) {
  auto r = sub_call(c, "GET", std::move(path), nullptr);
  return r.status == 200 && r.body && r.body->is_array() ? std::move(*r.body) : json::array();
}

// Only `keys` of `j` (those it has), in that order.
json pick(const json& j, std::initializer_list<const char*> keys) {
  json out = json::object();
  for (auto* k : keys)
    if (auto it = j.find(k); it != j.end())
      out[k] = *it;
  return out;
}

bool predeclared_exchange(const std::string& name) {
  return name.empty() || name.rfind("amq.", 0) == 0;
}

json header() {
  return json{{"rabbit_version", compatible_version},
              {"rabbitmq_version", compatible_version},
              {"product_name", product_name},
              {"product_version", product_version}};
}

// Queues, exchanges and bindings of one vhost (all when `vhost` is null), as exported:
// without the predeclared exchanges, the default exchange's bindings or exclusive queues.
void add_vhost_objects(call& c, const std::string* vhost, json& out) {
  std::vector<std::string> at = vhost ? std::vector<std::string>{*vhost}
                                      : std::vector<std::string>{};
  auto in = [&](const char* area) {
    std::vector<std::string> path{area};
    path.insert(path.end(), at.begin(), at.end());
    return list_of(c, path);
  };
  bool with_vhost = vhost == nullptr;
  json queues = json::array();
  for (auto& q : in("queues"))
    if (!q.value("exclusive", false))
      queues.push_back(with_vhost ? pick(q, {"name", "vhost", "durable", "auto_delete",
                                             "arguments"})
                                  : pick(q, {"name", "durable", "auto_delete", "arguments"}));
  json exchanges = json::array();
  for (auto& x : in("exchanges"))
    if (!predeclared_exchange(x.value("name", std::string{})))
      exchanges.push_back(with_vhost ? pick(x, {"name", "vhost", "type", "durable",
                                                "auto_delete", "internal", "arguments"})
                                     : pick(x, {"name", "type", "durable", "auto_delete",
                                                "internal", "arguments"}));
  json bindings = json::array();
  for (auto& b : in("bindings"))
    if (!b.value("source", std::string{}).empty())
      bindings.push_back(with_vhost ? pick(b, {"source", "vhost", "destination",
                                               "destination_type", "routing_key", "arguments"})
                                    : pick(b, {"source", "destination", "destination_type",
                                               "routing_key", "arguments"}));
  out["queues"] = std::move(queues);
  out["exchanges"] = std::move(exchanges);
  out["bindings"] = std::move(bindings);
}

// Policies (all, or one vhost's), with their vhost; operator policies travel as runtime
// parameters of component "operator_policy" (limit_parameters).
json policies_of(call& c, const std::string* vhost, bool operator_policies) {
  json out = json::array();
  for (auto& p : list_policies(c)) {
    if (p.operator_policy != operator_policies || (vhost && p.vhost != *vhost) ||
        !c.sees_vhost(p.vhost))
      continue;
    auto j = policy_json(p);
    if (!operator_policies) {
      out.push_back(std::move(j));
      continue;
    }
    out.push_back(json{{"value", pick(j, {"pattern", "definition", "priority", "apply-to"})},
                       {"vhost", p.vhost},
                       {"component", "operator_policy"},
                       {"name", p.name}});
  }
  return out;
}

// Vhost limits travel as RabbitMQ's runtime parameters of component "vhost-limits", operator
// policies as those of component "operator_policy".
json limit_parameters(call& c, const std::string* vhost) {
  json out = json::array();
  for (auto& l : list_of(c, {"vhost-limits"})) {
    auto name = l.value("vhost", std::string{});
    if (vhost && name != *vhost)
      continue;
    json p{{"value", l.value("value", json::object())},
           {"component", "vhost-limits"},
           {"name", "limits"}};
    if (!vhost)
      p["vhost"] = name;
    out.push_back(std::move(p));
  }
  for (auto& p : policies_of(c, vhost, true))
    out.push_back(std::move(p));
  return out;
}

json export_all(call& c) {
  auto out = header();
  json users = json::array();
  for (auto& u : list_of(c, {"users"}))
    users.push_back(pick(u, {"name", "password_hash", "hashing_algorithm", "tags", "limits"}));
  json vhosts = json::array();
  for (auto& v : list_of(c, {"vhosts"}))
    vhosts.push_back(pick(v, {"name"}));
  out["users"] = std::move(users);
  out["vhosts"] = std::move(vhosts);
  out["permissions"] = list_of(c, {"permissions"});
  out["topic_permissions"] = list_of(c, {"topic-permissions"});
  out["parameters"] = limit_parameters(c, nullptr);
  out["global_parameters"] = json::array();
  out["policies"] = policies_of(c, nullptr, false);
  add_vhost_objects(c, nullptr, out);
  return out;
}

json export_vhost(call& c, const std::string& vhost) {
  json out{{"rabbit_version", compatible_version}};
  out["parameters"] = limit_parameters(c, &vhost);
  out["policies"] = policies_of(c, &vhost, false);
  add_vhost_objects(c, &vhost, out);
  return out;
}

// The import, one object at a time; the first failure ends it (RabbitMQ's 400).
class importer {
public:
  importer(call& c, const json& doc) : c_(c), doc_(doc) {}

  std::optional<reply> all() {
    for (auto& u : section("users")) {
      json body = pick(u, {"password_hash", "password", "tags"});
      if (!body.contains("tags"))
        body["tags"] = "";
      if (auto r = put({"users", text(u, "name")}, body))
        return r;
      if (auto l = u.find("limits"); l != u.end() && l->is_object())
        for (auto& [limit, value] : l->items())
          if (auto r = put({"user-limits", text(u, "name"), limit}, json{{"value", value}}))
            return r;
    }
    for (auto& v : section("vhosts"))
      if (auto r = add_vhost(text(v, "name")))
        return r;
    for (auto& p : section("permissions"))
      if (auto r = put({"permissions", text(p, "vhost"), text(p, "user")},
                       pick(p, {"configure", "write", "read"})))
        return r;
    for (auto& t : section("topic_permissions"))
      if (auto r = put({"topic-permissions", text(t, "vhost"), text(t, "user")},
                       pick(t, {"exchange", "write", "read"})))
        return r;
    return objects(nullptr);
  }

  // Parameters (vhost limits, operator policies), policies, queues, exchanges and bindings;
  // into `vhost` when given, else each into the vhost it names.
  std::optional<reply> objects(const std::string* vhost) {
    auto where = [&](const json& o) { return vhost ? *vhost : text(o, "vhost"); };
    for (auto& p : section("parameters")) {
      auto component = text(p, "component");
      auto v = p.find("value");
      if (v == p.end() || !v->is_object())
        continue;
      if (component == "vhost-limits") {
        for (auto& [limit, value] : v->items())
          if (auto r = put({"vhost-limits", where(p), limit}, json{{"value", value}}))
            return r;
      } else if (component == "operator_policy") {
        if (auto r = put_policy("operator-policies", where(p), text(p, "name"), *v))
          return r;
      }  // no other component exists here (federation, shovels)
    }
    for (auto& p : section("policies"))
      if (auto r = put_policy("policies", where(p), text(p, "name"), p))
        return r;
    for (auto& q : section("queues"))
      if (auto r = put({"queues", where(q), text(q, "name")},
                       pick(q, {"durable", "auto_delete", "arguments"})))
        return r;
    for (auto& x : section("exchanges"))
      if (auto r = put({"exchanges", where(x), text(x, "name")},
                       pick(x, {"type", "durable", "auto_delete", "internal", "arguments"})))
        return r;
    for (auto& b : section("bindings")) {
      auto kind = text(b, "destination_type") == "exchange" ? "e" : "q";
      auto source = text(b, "source");
      if (auto r = request("POST",
                           {"bindings", where(b), "e", source.empty() ? "amq.default" : source,
                            kind, text(b, "destination")},
                           pick(b, {"routing_key", "arguments"})))
        return r;
    }
    return std::nullopt;
  }

private:
  const json& section(const char* key) {
    static const json none = json::array();
    auto it = doc_.find(key);
    if (it == doc_.end() || !it->is_array())
      return none;
    return *it;
  }

  static std::string text(const json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || !it->is_string())
      throw bad_request_error{std::string{"definitions: an entry without \""} + key + "\""};
    return it->get<std::string>();
  }

  std::optional<reply> put(std::vector<std::string> path, const json& body) {
    return request("PUT", std::move(path), body);
  }

  // RabbitMQ names the policy after its reason when it refuses one.
  std::optional<reply> put_policy(const char* kind, const std::string& vhost,
                                  const std::string& name, const json& p) {
    auto r = sub_call(c_, "PUT", {kind, vhost, name},
                      pick(p, {"pattern", "definition", "priority", "apply-to"}), true);
    if (r.status < 300)
      return std::nullopt;
    auto reason = r.body ? r.body->value("reason", std::string{}) : std::string{};
    return bad_request(reason + " (" + vhost + "/" + name + ")");
  }

  std::optional<reply> request(const char* method, std::vector<std::string> path,
                               const json& body) {
    auto r = sub_call(c_, method, std::move(path), body, true);
    if (r.status < 300)
      return std::nullopt;
    auto reason = r.body ? r.body->value("reason", std::string{}) : std::string{};
    return bad_request(reason.empty() ? "definitions: a request failed with " +
                                          std::to_string(r.status)
                                      : reason);
  }

  // Straight to the registry: the vhost API's PUT would also give the importing user
  // permissions in it, which the file does not say.
  std::optional<reply> add_vhost(const std::string& name) {
    std::string error;
    auto r = ask<op_result>(c_.self, c_.ctx.registry(), error, put_atom::value,
                            vhost_atom::value, name);
    if (!r)
      return error_reply(500, "internal_server_error", error);
    if (r->code)
      return bad_request(r->text);
    return std::nullopt;
  }

  call& c_;
  const json& doc_;
};

reply definitions(call& c) {
  if (c.path.size() > 2)
    return not_found();
  bool vhost = c.path.size() == 2;
  if (vhost && !find_vhost(c, c.path[1]))  // (RabbitMQ's two answers)
    return c.method == "GET" ? bad_request("vhost_not_found")
                             : error_reply(404, "not_found", "vhost_not_found");
  if (c.method == "GET") {
    auto r = ok(vhost ? export_vhost(c, c.path[1]) : export_all(c));
    auto params = query_params(c.query);
    if (auto it = params.find("download"); it != params.end())
      for (char ch : it->second)  // a file name, never a way to end the header
        if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == '_')
          r.attachment.push_back(ch);
    return r;
  }
  if (c.method != "POST")
    return method_not_allowed();
  auto doc = c.body.empty() ? json::object() : json::parse(c.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return bad_request("failed_to_parse_json");
  importer in{c, doc};
  auto failed = c.path.size() == 2 ? in.objects(&c.path[1]) : in.all();
  return failed ? *failed : no_content();
}

// RabbitMQ's check: declare the queue "aliveness-test" in the vhost, publish a message to it
// and get it back.
reply aliveness_test(call& c) {
  if (c.path.size() != 2)
    return not_found();
  if (c.method != "GET")
    return method_not_allowed();
  auto& vhost = c.path[1];
  if (!find_vhost(c, vhost))
    return not_found();
  auto declared = sub_call(c, "PUT", {"queues", vhost, "aliveness-test"}, json::object());
  if (declared.status >= 300)
    return declared;
  auto published = sub_call(c, "POST", {"exchanges", vhost, "amq.default", "publish"},
                            json{{"routing_key", "aliveness-test"},
                                 {"payload", "test_message"},
                                 {"payload_encoding", "string"},
                                 {"properties", json::object()}});
  auto got = sub_call(c, "POST", {"queues", vhost, "aliveness-test", "get"},
                      json{{"count", 1}, {"ackmode", "ack_requeue_false"}, {"encoding", "auto"}});
  bool alive = published.status == 200 && got.status == 200 && got.body &&
               got.body->is_array() && got.body->size() == 1 &&
               (*got.body)[0].value("payload", std::string{}) == "test_message";
  if (!alive)
    return reply{503, json{{"status", "failed"}, {"reason", "the test message did not come back"}},
                 {}, {}};
  return ok(json{{"status", "ok"}});
}

// /api/parameters[/{component}[/{vhost}]]: the vhost limits and operator policies, the runtime
// parameters Warren has (as RabbitMQ lists them, components "vhost-limits" and
// "operator_policy"); /api/global-parameters has none.
reply parameters(call& c) {
  if (c.method != "GET")
    return method_not_allowed();
  if (c.path.size() > 3)
    return not_found();
  if (c.path.size() == 3 && !find_vhost(c, c.path[2]))
    return not_found("vhost_not_found");
  json out = json::array();
  for (auto& p : limit_parameters(c, nullptr))
    if ((c.path.size() < 2 || p.value("component", std::string{}) == c.path[1]) &&
        (c.path.size() < 3 || p.value("vhost", std::string{}) == c.path[2]))
      out.push_back(std::move(p));
  return ok(out);
}

}  // namespace

std::optional<std::string> import_definitions(const context& ctx, const std::string& text) {
  caf::scoped_actor self{*ctx.sys};
  call c{ctx, "POST", {"definitions"}, std::string{}, text, "rmq-internal", std::string{},
         self, true, true, {}};
  reply r;
  try {
    r = definitions(c);
  } catch (const bad_request_error& e) {
    return std::string{e.what()};
  } catch (const json::exception& e) {
    return std::string{e.what()};
  }
  if (r.status < 300)
    return std::nullopt;
  auto reason = r.body ? r.body->value("reason", std::string{}) : std::string{};
  return reason.empty() ? "status " + std::to_string(r.status) : reason;
}

std::optional<reply> route_export(call& c) {
  if (c.path.empty())
    return std::nullopt;
  if (c.path[0] == "parameters")
    return parameters(c);
  if (c.path[0] == "global-parameters") {  // (none: the cluster's name is its first node's)
    if (c.path.size() > 2)
      return not_found();
    if (c.method != "GET")
      return method_not_allowed();
    return c.path.size() == 1 ? ok(json::array()) : not_found();
  }
  if (c.path[0] == "definitions")
    return definitions(c);
  if (c.path[0] == "aliveness-test")
    return aliveness_test(c);
  return std::nullopt;
}

}  // namespace warren::mgmt
