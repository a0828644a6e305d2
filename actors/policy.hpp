// Policies and operator policies, as RabbitMQ 3.10 has them: a named rule of a vhost that gives
// the queues and exchanges whose names match its pattern optional arguments ("definition")
// without redeclaring them. Of the policies that match an object the one of highest priority
// applies, alone (keys are never merged between policies); an operator policy is chosen the
// same way among the operator policies, and where both set a key the smaller value holds.
// Between a queue's own x- argument and a policy: for expires, message-ttl, max-length,
// max-length-bytes and delivery-limit the smaller value holds; for the others the argument.
//
// Pure: validation, matching and the effective arguments. The registry keeps the policies
// (registry_actor.hpp), the vhost applies them to its queues and exchanges (vhost_actor.cpp).
#pragma once

#include <caf/all.hpp>

#include <optional>
#include <string>
#include <vector>

#include "actors/access.hpp"
#include "actors/messages.hpp"
#include "actors/queue_arguments.hpp"
#include "persistence/catalog.hpp"
#include "protocol/amqp091/field_table.hpp"

namespace warren {

struct policy_info {
  std::string vhost;
  std::string name;
  bool operator_policy = false;  // an operator policy (/api/operator-policies)
  std::string pattern;           // a regular expression searched for in the name
  std::string apply_to = "all";  // "queues", "exchanges" or "all"
  double priority = 0;           // RabbitMQ takes any number
  amqp::field_table definition;  // key -> value, keys in ascending order
};

// As it crosses to the other nodes of a cluster.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, policy_info& x) {
  encoded_table definition{x.definition, {}};
  return f(caf::meta::type_name("policy_info"), x.vhost, x.name, x.operator_policy, x.pattern,
           x.apply_to, x.priority, definition);
}

// A value as Erlang prints the term RabbitMQ decoded from JSON (~p): <<"text">>, 5, 1.5,
// true, null, [1,2].
std::string erlang_term(const amqp::field_value& v);

// A policy as the catalog keeps it, and back.
policy_info policy_from_row(persistence::policy_row row);
persistence::policy_row policy_row_of(const policy_info& p);

// Why RabbitMQ refuses `p` ("Validation failed\n\n" comes before it in its answer), or nullopt.
// Checks the apply-to value, the pattern and the definition (each key's value, the keys an
// operator policy may set, keys unknown to RabbitMQ), with RabbitMQ's texts.
std::optional<std::string> invalid_policy(const policy_info& p);

// What the policy applies to.
enum class policy_target { queue, exchange };

// Policies with their patterns compiled once, to be matched against many names (every queue
// of a vhost when one changes, every queue the API lists).
class policy_set {
public:
  policy_set() = default;
  explicit policy_set(std::vector<policy_info> policies);

  // The policy (of the kind `operator_policy`) that applies to `name`, a `target`, in vhost
  // `vhost`: the one of highest priority that matches; between equal priorities the first by
  // name. nullptr when none does.
  const policy_info* match(const std::string& vhost, policy_target target,
                           const std::string& name, bool operator_policy) const;
  // The definition that holds for `name`: effective_definition of both matches.
  amqp::field_table definition_for(const std::string& vhost, policy_target target,
                                   const std::string& name) const;

  const std::vector<policy_info>& all() const { return policies_; }

private:
  std::vector<policy_info> policies_;
  std::vector<access::pattern> patterns_;  // of policies_[i]; "" is found in every name
};

// The definition that holds for an object with policy `p` and operator policy `op` (either
// may be null): the keys of both, the smaller value where both set one. Keys ascending.
amqp::field_table effective_definition(const policy_info* p, const policy_info* op);

// A queue's arguments as the queue takes them under `definition` (effective_definition): its
// own x- arguments, and for each policy key its type knows the policy's value where the
// argument is absent, or the smaller of the two for the limits (max-age too).
amqp::field_table effective_queue_arguments(const amqp::field_table& arguments,
                                            const amqp::field_table& definition, queue_kind kind);

// An exchange's alternate exchange: its argument, else the policy's; "" when neither.
std::string effective_alternate(const amqp::field_table& arguments,
                                const amqp::field_table& definition);

// Policies listed as RabbitMQ lists them: lowest priority first, then by vhost and name.
void sort_policies(std::vector<policy_info>& policies);

}  // namespace warren

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<warren::policy_info>)
