// Policies: RabbitMQ 3.10.8's validation (rabbit_policy, rabbit_policies,
// rabbit_mirror_queue_misc; the texts were read off a running 3.10.8), matching and merging.
#include "actors/policy.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "actors/access.hpp"
#include "actors/stream_arguments.hpp"

namespace warren {

using amqp::field_value;

std::string erlang_term(const field_value& v) {
  if (auto s = std::get_if<std::string>(&v.v))
    return "<<\"" + *s + "\">>";
  if (auto n = v.as_int())
    return std::to_string(*n);
  if (auto b = std::get_if<bool>(&v.v))
    return *b ? "true" : "false";
  if (std::holds_alternative<std::monostate>(v.v))
    return "null";
  if (auto d = std::get_if<double>(&v.v)) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *d);
    std::string out{buf, ec == std::errc{} ? end : buf};
    if (out.find_first_of(".e") == std::string::npos)
      out += ".0";  // Erlang prints a float with its point
    return out;
  }
  if (auto a = std::get_if<amqp::field_array>(&v.v)) {
    std::string out = "[";
    for (size_t i = 0; i < a->size(); ++i)
      out += (i ? "," : "") + erlang_term((*a)[i]);
    return out + "]";
  }
  if (auto t = std::get_if<amqp::field_table>(&v.v)) {
    std::string out = "#{";
    for (size_t i = 0; i < t->size(); ++i)
      out += (i ? "," : "") + erlang_term(field_value{(*t)[i].first}) + " => " +
             erlang_term((*t)[i].second);
    return out + "}";
  }
  return "undefined";
}

namespace {

std::string term(const field_value& v) { return erlang_term(v); }  // (shorter, for below)

bool int_at_least(const field_value& v, int64_t min) {
  auto n = v.as_int();
  return n && *n >= min;
}

bool one_of(const field_value& v, std::initializer_list<std::string_view> allowed) {
  auto s = std::get_if<std::string>(&v.v);
  return s && std::find(allowed.begin(), allowed.end(), *s) != allowed.end();
}

struct key_check {
  std::string_view key;
  bool (*valid)(const field_value&);
  const char* fault;  // after the value's term
  bool operator_policy;  // an operator policy may set it too
};

// rabbit_policies' keys, with their checks and texts.
constexpr std::array<key_check, 18> policy_keys = {{
  {"alternate-exchange", [](const field_value& v) { return v.as_string() != nullptr; },
   "is not a valid alternate exchange name", false},
  {"dead-letter-exchange", [](const field_value& v) { return v.as_string() != nullptr; },
   "is not a valid dead letter exchange name", false},
  {"dead-letter-routing-key", [](const field_value& v) { return v.as_string() != nullptr; },
   "is not a valid dead letter routing key", false},
  {"dead-letter-strategy",
   [](const field_value& v) { return one_of(v, {"at-most-once", "at-least-once"}); },
   "is not a valid dead letter strategy", false},
  {"delivery-limit", [](const field_value& v) { return int_at_least(v, 0); },
   "is not a valid delivery limit", true},
  {"expires", [](const field_value& v) { return int_at_least(v, 1); },
   "is not a valid queue expiry", true},
  {"initial-cluster-size", [](const field_value& v) { return int_at_least(v, 0); },
   "is not a valid cluster size", false},
  {"max-age",
   [](const field_value& v) {
     auto s = v.as_string();
     return s && parse_max_age(*s).has_value();
   },
   "is not a valid max age", false},
  {"max-in-memory-bytes", [](const field_value& v) { return int_at_least(v, 0); },
   "is not a valid maximum memory in bytes", true},
  {"max-in-memory-length", [](const field_value& v) { return int_at_least(v, 0); },
   "is not a valid maximum memory in bytes", true},
  {"max-length", [](const field_value& v) { return int_at_least(v, 0); },
   "is not a valid maximum length", true},
  {"max-length-bytes", [](const field_value& v) { return int_at_least(v, 0); },
   "is not a valid maximum length in bytes", true},
  {"message-ttl", [](const field_value& v) { return int_at_least(v, 0); },
   "is not a valid message TTL", true},
  {"overflow",
   [](const field_value& v) {
     return one_of(v, {"drop-head", "reject-publish", "reject-publish-dlx"});
   },
   "is not a valid overflow value", false},
  {"queue-leader-locator",
   [](const field_value& v) { return one_of(v, {"client-local", "random", "least-leaders"}); },
   "is not a valid queue leader locator value", false},
  {"queue-mode", [](const field_value& v) { return one_of(v, {"default", "lazy"}); },
   "is not a valid queue-mode value", false},
  {"queue-version",
   [](const field_value& v) {
     auto n = v.as_int();
     return n && (*n == 1 || *n == 2);
   },
   "is not a valid queue-version value", false},
  {"stream-max-segment-size-bytes", [](const field_value& v) { return int_at_least(v, 0); },
   "is not a valid segment size", false},
}};

const key_check* find_check(std::string_view key) {
  for (auto& c : policy_keys)
    if (c.key == key)
      return &c;
  return nullptr;
}

// The keys of classic queue mirroring (rabbit_mirror_queue_misc) and queue-master-locator.
// Warren keeps every queue on one node: they are taken and shown, and change nothing.
constexpr std::array<std::string_view, 7> mirroring_keys = {
  "ha-mode", "ha-params", "ha-sync-mode", "ha-sync-batch-size", "ha-promote-on-shutdown",
  "ha-promote-on-failure", "queue-master-locator"};

bool mirroring_key(std::string_view key) {
  return std::find(mirroring_keys.begin(), mirroring_keys.end(), key) != mirroring_keys.end();
}

std::optional<std::string> invalid_mirroring(const amqp::field_table& d) {
  auto get = [&](std::string_view k) { return amqp::find_field(d, k); };
  if (auto v = get("queue-master-locator");
      v && !one_of(*v, {"min-masters", "client-local", "random"}))
    return term(*v) + " invalid queue-master-locator value";
  auto mode = get("ha-mode");
  if (!mode) {
    for (auto k : mirroring_keys)
      if (k != "queue-master-locator" && get(k))
        return std::string{"ha-mode must be specified to specify ha-params, ha-sync-mode or "
                           "ha-promote-on-shutdown"};
    return std::nullopt;
  }
  auto params = get("ha-params");
  if (one_of(*mode, {"all"})) {
    if (params)
      return std::string{"ha-mode=\"all\" does not take parameters"};
  } else if (one_of(*mode, {"exactly"})) {
    if (!params)
      return std::string{"ha-mode=\"exactly\" takes an integer, none given"};
    if (!int_at_least(*params, 1))
      return "ha-mode=\"exactly\" takes an integer, " + term(*params) + " given";
  } else if (one_of(*mode, {"nodes"})) {
    if (!params)
      return std::string{"ha-mode=\"nodes\" takes a list, none given"};
    if (!std::holds_alternative<amqp::field_array>(params->v))
      return "ha-mode=\"nodes\" takes a list, " + term(*params) + " given";
  } else {
    return term(*mode) + " is not a valid ha-mode value";
  }
  if (auto v = get("ha-sync-mode"); v && !one_of(*v, {"manual", "automatic"}))
    return "ha-sync-mode must be \"manual\" or \"automatic\", got " + term(*v);
  if (auto v = get("ha-sync-batch-size"); v && !int_at_least(*v, 1))
    return "ha-sync-batch-size takes an integer greater than 0, " + term(*v) + " given";
  for (const char* k : {"ha-promote-on-shutdown", "ha-promote-on-failure"})
    if (auto v = get(k); v && !one_of(*v, {"always", "when-synced"}))
      return std::string{k} + " must be \"always\" or \"when-synced\", got " + term(*v);
  return std::nullopt;
}

// The keys whose smaller value holds, between a policy and an operator policy and between a
// queue's argument and its policy.
bool merged_by_min(std::string_view key) {
  return key == "expires" || key == "message-ttl" || key == "max-length" ||
         key == "max-length-bytes" || key == "max-in-memory-length" ||
         key == "max-in-memory-bytes" || key == "delivery-limit";
}

bool applies_to(const policy_info& p, policy_target target) {
  if (p.apply_to == "all")
    return true;
  return p.apply_to == (target == policy_target::queue ? "queues" : "exchanges");
}

}  // namespace

policy_info policy_from_row(persistence::policy_row row) {
  return policy_info{std::move(row.vhost),   std::move(row.name),     row.operator_policy,
                     std::move(row.pattern), std::move(row.apply_to), row.priority,
                     decode_arguments(row.definition)};
}

persistence::policy_row policy_row_of(const policy_info& p) {
  return persistence::policy_row{p.vhost,    p.name,     p.operator_policy,
                                 p.pattern,  p.apply_to, p.priority,
                                 encode_arguments(p.definition)};
}

std::optional<std::string> invalid_policy(const policy_info& p) {
  if (!p.pattern.empty())
    if (auto why = access::invalid_pattern(p.pattern))
      return "pattern should be regular expression but is invalid: " + *why;
  if (p.apply_to != "all" && p.apply_to != "queues" && p.apply_to != "exchanges")
    return "apply-to '" + p.apply_to +
           "' unrecognised; should be 'queues', 'exchanges' or 'all'";
  if (p.definition.empty())
    return std::string{"no policy provided"};
  // RabbitMQ's validators look at the keys in ascending order; those of mirroring come after.
  auto d = p.definition;
  std::sort(d.begin(), d.end(), [](auto& a, auto& b) { return a.first < b.first; });
  amqp::field_table unknown;
  for (auto& [key, value] : d) {
    auto check = find_check(key);
    if (check && (!p.operator_policy || check->operator_policy)) {
      if (!check->valid(value))
        return term(value) + " " + check->fault;
    } else if (p.operator_policy || !mirroring_key(key)) {
      unknown.emplace_back(key, value);
    }
  }
  if (!p.operator_policy)
    if (auto bad = invalid_mirroring(d))
      return bad;
  if (!unknown.empty()) {
    std::string list = "[";
    for (size_t i = 0; i < unknown.size(); ++i)
      list += (i ? "," : "") + std::string{"{"} + term(field_value{unknown[i].first}) + "," +
              term(unknown[i].second) + "}";
    return list + "] are not recognised policy settings";
  }
  return std::nullopt;
}

policy_set::policy_set(std::vector<policy_info> policies) : policies_(std::move(policies)) {
  patterns_.reserve(policies_.size());
  for (auto& p : policies_)  // an empty regular expression is found in every name
    patterns_.emplace_back(p.pattern.empty() ? std::string{".*"} : p.pattern);
}

const policy_info* policy_set::match(const std::string& vhost, policy_target target,
                                     const std::string& name, bool operator_policy) const {
  const policy_info* best = nullptr;
  for (size_t i = 0; i < policies_.size(); ++i) {
    auto& p = policies_[i];
    if (p.operator_policy != operator_policy || p.vhost != vhost || !applies_to(p, target))
      continue;
    if (best && (p.priority < best->priority ||
                 (p.priority == best->priority && p.name >= best->name)))
      continue;
    if (patterns_[i].matches(name))
      best = &p;
  }
  return best;
}

amqp::field_table policy_set::definition_for(const std::string& vhost, policy_target target,
                                             const std::string& name) const {
  return effective_definition(match(vhost, target, name, false),
                              match(vhost, target, name, true));
}

amqp::field_table effective_definition(const policy_info* p, const policy_info* op) {
  amqp::field_table out = p ? p->definition : amqp::field_table{};
  if (op)
    for (auto& [key, value] : op->definition) {
      auto it = std::find_if(out.begin(), out.end(), [&](auto& kv) { return kv.first == key; });
      if (it == out.end()) {
        out.emplace_back(key, value);
      } else if (merged_by_min(key)) {
        auto a = it->second.as_int(), b = value.as_int();
        if (a && b && *b < *a)
          it->second = value;
      }
    }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first < b.first; });
  return out;
}

amqp::field_table effective_queue_arguments(const amqp::field_table& arguments,
                                            const amqp::field_table& definition, queue_kind kind) {
  // The keys each queue type takes from a policy (args_policy_lookup in
  // rabbit_amqqueue_process, rabbit_quorum_queue and rabbit_stream_queue).
  static constexpr std::array<std::string_view, 8> classic = {
    "expires",  "message-ttl", "max-length",           "max-length-bytes",
    "overflow", "queue-mode",  "dead-letter-exchange", "dead-letter-routing-key"};
  static constexpr std::array<std::string_view, 8> quorum = {
    "expires",  "message-ttl",    "max-length",           "max-length-bytes",
    "overflow", "delivery-limit", "dead-letter-exchange", "dead-letter-routing-key"};
  static constexpr std::array<std::string_view, 3> stream = {
    "max-length-bytes", "max-age", "stream-max-segment-size-bytes"};
  auto takes = [&](std::string_view key) {
    auto in = [&](auto& keys) { return std::find(keys.begin(), keys.end(), key) != keys.end(); };
    return kind == queue_kind::classic ? in(classic)
           : kind == queue_kind::quorum ? in(quorum)
                                        : in(stream);
  };
  auto out = arguments;
  for (auto& [key, value] : definition) {
    if (!takes(key))
      continue;
    auto arg = "x-" + key;
    auto it = std::find_if(out.begin(), out.end(), [&](auto& kv) { return kv.first == arg; });
    if (it == out.end()) {
      out.emplace_back(arg, value);
    } else if (key == "overflow" && kind == queue_kind::quorum) {
      it->second = value;  // rabbit_quorum_queue: the policy's overflow wins over the argument
    } else if (key == "max-age") {  // the shorter age
      auto a = it->second.as_string(), b = value.as_string();
      auto age_a = a ? parse_max_age(*a) : std::nullopt;
      auto age_b = b ? parse_max_age(*b) : std::nullopt;
      if (age_a && age_b && *age_b < *age_a)
        it->second = value;
    } else if (merged_by_min(key) || key == "stream-max-segment-size-bytes") {
      auto a = it->second.as_int(), b = value.as_int();
      if (a && b && *b < *a)
        it->second = field_value{*b};
    }
  }
  return out;
}

std::string effective_alternate(const amqp::field_table& arguments,
                                const amqp::field_table& definition) {
  for (auto* t : {&arguments, &definition})
    if (auto v = amqp::find_field(*t, "alternate-exchange"))
      if (auto s = std::get_if<std::string>(&v->v))
        return *s;
  return {};
}

void sort_policies(std::vector<policy_info>& policies) {
  std::stable_sort(policies.begin(), policies.end(), [](auto& a, auto& b) {
    if (a.priority != b.priority)
      return a.priority < b.priority;
    return a.vhost != b.vhost ? a.vhost < b.vhost : a.name < b.name;
  });
}

}  // namespace warren
