// /api/policies and /api/operator-policies, as RabbitMQ 3.10's management API has them: the
// lists (all, or of a vhost), one policy, PUT and DELETE. The registry keeps and checks them
// (actors/policy.hpp); here the request body is read the way RabbitMQ reads it, with its
// texts for a missing or mistyped field.
#include <cmath>

#include "management/api.hpp"
#include "management/json_amqp.hpp"
#include "protocol/amqp091/constants.hpp"

namespace warren::mgmt {

namespace {

// A JSON value as RabbitMQ prints the term it decoded it to.
std::string term_of(const json& v) {
  std::string error;
  auto t = table_from_json(json{{"v", v}}, error);
  return t && !t->empty() ? erlang_term(t->front().second) : v.dump();
}

bool operator_kind(const call& c) { return c.path[0] == "operator-policies"; }

// The policy of the PUT's body, or the 400 that refuses it. RabbitMQ checks that the mandatory
// fields are there, then priority, pattern, apply-to and definition in turn (the pattern as a
// regular expression, apply-to's value and the definition are the registry's to check).
std::variant<policy_info, reply> read_policy(call& c) {
  auto body = c.parsed_body();
  if (!body.is_object())
    return bad_request("Validation failed\n\ndefinition must be a dictionary: " + term_of(body) +
                       "\n");
  for (auto* key : {"pattern", "definition"})
    if (!body.contains(key))
      return bad_request(std::string{"[{key_missing,"} + key + "}]");
  auto failed = [](const std::string& why) {
    return bad_request("Validation failed\n\n" + why + "\n");
  };
  policy_info p;
  p.vhost = c.path[1];
  p.name = c.path[2];
  p.operator_policy = operator_kind(c);
  if (auto it = body.find("priority"); it != body.end()) {
    if (!it->is_number())
      return failed("priority should be a number, actually was " + term_of(*it));
    p.priority = it->get<double>();
  }
  auto& pattern = body["pattern"];
  if (!pattern.is_string())
    return failed("pattern should be a binary but was " + term_of(pattern));
  p.pattern = pattern.get<std::string>();
  if (auto it = body.find("apply-to"); it != body.end()) {
    if (!it->is_string())
      return failed("apply-to should be a binary but was " + term_of(*it));
    p.apply_to = it->get<std::string>();
  }
  auto& definition = body["definition"];
  if (!definition.is_object())
    return failed("definition must be a dictionary: " + term_of(definition));
  std::string error;
  auto table = table_from_json(definition, error);
  if (!table)
    return failed("definition: " + error);
  p.definition = std::move(*table);
  return p;
}

reply policy_request(call& c) {
  bool op = operator_kind(c);
  if (c.path.size() > 3)
    return not_found();
  if (c.path.size() >= 2 && !find_vhost(c, c.path[1]))
    return c.method == "PUT" ? error_reply(404, "not_found", "vhost_not_found") : not_found();
  if (c.method != "GET" && c.path.size() >= 2 &&
      !c.sees_vhost(c.path[1]))  // a policymaker's, in its own vhosts
    return not_authorised("User not authorised to access object");
  if (c.method == "GET") {
    json out = json::array();
    for (auto& p : list_policies(c)) {
      if (p.operator_policy != op || !c.sees_vhost(p.vhost) ||
          (c.path.size() >= 2 && p.vhost != c.path[1]) ||
          (c.path.size() == 3 && p.name != c.path[2]))
        continue;
      if (c.path.size() == 3)
        return ok(policy_json(p));
      out.push_back(policy_json(p));
    }
    return c.path.size() == 3 ? not_found() : ok(out);
  }
  if (c.path.size() != 3)
    return method_not_allowed();
  std::string error;
  std::optional<op_result> r;
  if (c.method == "PUT") {
    auto read = read_policy(c);
    if (auto* refused = std::get_if<reply>(&read))
      return *refused;
    r = ask<op_result>(c.self, c.ctx.registry(), error, put_atom::value,
                       std::get<policy_info>(read));
  } else if (c.method == "DELETE") {
    r = ask<op_result>(c.self, c.ctx.registry(), error, delete_atom::value, policy_atom::value,
                       c.path[1], op, c.path[2]);
  } else {
    return method_not_allowed();
  }
  if (!r)
    return error_reply(500, "internal_server_error", error);
  if (r->code == amqp::not_found)
    return not_found();
  if (r->code)
    return bad_request(r->text);  // RabbitMQ's text as it is ("Validation failed...")
  return r->count ? created() : no_content();
}

}  // namespace

std::vector<policy_info> list_policies(call& c) {
  std::string error;
  auto r = ask<std::vector<policy_info>>(c.self, c.ctx.registry(), error, list_atom::value,
                                         policy_atom::value);
  return r ? std::move(*r) : std::vector<policy_info>{};
}

json policy_json(const policy_info& p) {
  json priority = p.priority;
  if (std::abs(p.priority) < 9e15 && p.priority == std::trunc(p.priority))
    priority = static_cast<int64_t>(p.priority);  // 0, not 0.0
  return json{{"vhost", p.vhost},         {"name", p.name},
              {"pattern", p.pattern},     {"apply-to", p.apply_to},
              {"definition", to_json(p.definition)}, {"priority", priority}};
}

void add_policy_fields(json& j, const policy_set& policies,
                       const std::string& vhost, const std::string& name, bool queue) {
  auto target = queue ? policy_target::queue : policy_target::exchange;
  auto p = policies.match(vhost, target, name, false);
  if (!queue) {  // RabbitMQ shows an exchange's policy only when one applies
    if (p)
      j["policy"] = p->name;
    return;
  }
  auto op = policies.match(vhost, target, name, true);
  j["policy"] = p ? json(p->name) : json(nullptr);
  j["operator_policy"] = op ? json(op->name) : json(nullptr);
  j["effective_policy_definition"] = to_json(effective_definition(p, op));
}

std::optional<reply> route_policies(call& c) {
  if (c.path.empty() || (c.path[0] != "policies" && c.path[0] != "operator-policies"))
    return std::nullopt;
  return policy_request(c);
}

}  // namespace warren::mgmt
