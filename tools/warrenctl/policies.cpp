// Policies and operator policies, as rabbitmqctl sets them:
//   set_policy [--priority N] [--apply-to queues|exchanges|all] <name> <pattern> <definition>
// (the options before, between or after the arguments), clear_policy <name>, and the same
// for operator policies; in the vhost given with -p. The broker checks the policy and
// answers RabbitMQ's reasons, which are printed as they are.
#include <iostream>

#include "tools/warrenctl/commands.hpp"

namespace warrenctl {

using json = nlohmann::json;

namespace {

std::string policy_path(const invocation& inv, bool operator_policy, const std::string& name) {
  return std::string{operator_policy ? "/api/operator-policies/" : "/api/policies/"} +
         encode(inv.vhost) + "/" + encode(name);
}

int set(invocation& inv, bool operator_policy) {
  const char* command = operator_policy ? "set_operator_policy" : "set_policy";
  json body = json::object();
  std::vector<std::string> positional;
  for (size_t i = 0; i < inv.args.size(); ++i) {
    auto a = inv.args[i];
    std::string value;
    bool option = a == "--priority" || a == "--apply-to";
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      option = true;
    } else if (option) {
      if (i + 1 >= inv.args.size())
        return usage(command, "option " + a + " needs a value");
      value = inv.args[++i];
    }
    if (!option) {
      positional.push_back(a);
    } else if (a == "--priority") {
      auto n = json::parse(value, nullptr, false);
      if (n.is_discarded() || !n.is_number())
        return usage(command, "--priority must be a number");
      body["priority"] = n;
    } else if (a == "--apply-to") {
      body["apply-to"] = value;
    } else {
      return usage(command, "unknown option " + a);
    }
  }
  if (positional.size() != 3)
    return usage(command, "expected <name> <pattern> <definition>");
  auto definition = json::parse(positional[2], nullptr, false);
  if (definition.is_discarded() || !definition.is_object())
    return usage(command,
                 "the definition must be a JSON object such as '{\"max-length\": 1000}'");
  body["pattern"] = positional[1];
  body["definition"] = definition;
  info(inv, std::string{"Setting "} + (operator_policy ? "operator policy" : "policy") +
              " \"" + positional[0] + "\" for pattern \"" + positional[1] + "\" to \"" +
              positional[2] + "\" with priority \"" +
              (body.contains("priority") ? body["priority"].dump() : "0") + "\" for vhost \"" +
              inv.vhost + "\" ...");
  return simple(inv, "PUT", policy_path(inv, operator_policy, positional[0]), &body,
                "setting the policy");
}

int clear(invocation& inv, bool operator_policy) {
  const char* command = operator_policy ? "clear_operator_policy" : "clear_policy";
  if (inv.args.size() != 1)
    return usage(command, "expected <name>");
  info(inv, std::string{"Clearing "} + (operator_policy ? "operator policy" : "policy") +
              " \"" + inv.args[0] + "\" on vhost \"" + inv.vhost + "\" ...");
  return simple(inv, "DELETE", policy_path(inv, operator_policy, inv.args[0]), nullptr,
                "clearing the policy");
}

}  // namespace

int set_policy(invocation& inv) { return set(inv, false); }
int clear_policy(invocation& inv) { return clear(inv, false); }
int set_operator_policy(invocation& inv) { return set(inv, true); }
int clear_operator_policy(invocation& inv) { return clear(inv, true); }

}  // namespace warrenctl
