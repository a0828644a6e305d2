// Policies (actors/policy.hpp): RabbitMQ 3.10.8's validation texts, which policy applies, and
// what a queue or exchange takes from it.
#include <catch2/catch.hpp>

#include "actors/policy.hpp"
#include "actors/queue_arguments.hpp"

using warren::policy_info;
using warren::policy_target;
namespace amqp = warren::amqp;

namespace {

policy_info policy(std::string name, std::string pattern, amqp::field_table definition,
                   double priority = 0, std::string apply_to = "all", bool op = false) {
  policy_info p;
  p.vhost = "/";
  p.name = std::move(name);
  p.pattern = std::move(pattern);
  p.definition = std::move(definition);
  p.priority = priority;
  p.apply_to = std::move(apply_to);
  p.operator_policy = op;
  return p;
}

std::string refused(const policy_info& p) { return warren::invalid_policy(p).value_or(""); }

const policy_info* match(const warren::policy_set& ps, const std::string& name,
                         policy_target t = policy_target::queue, bool op = false) {
  return ps.match("/", t, name, op);
}

}  // namespace

TEST_CASE("a policy is refused with RabbitMQ's words", "[policy]") {
  using T = amqp::field_table;
  CHECK(refused(policy("p", "^q", T{{"message-ttl", int64_t{1000}}})).empty());
  CHECK(refused(policy("p", "^q", T{{"message-ttl", int64_t{-1}}})) ==
        "-1 is not a valid message TTL");
  CHECK(refused(policy("p", "^q", T{{"message-ttl", 1.5}})) == "1.5 is not a valid message TTL");
  CHECK(refused(policy("p", "^q", T{{"max-length", "5"}})) ==
        "<<\"5\">> is not a valid maximum length");
  CHECK(refused(policy("p", "^q", T{{"expires", int64_t{0}}})) == "0 is not a valid queue expiry");
  CHECK(refused(policy("p", "^q", T{{"message-ttl", true}})) ==
        "true is not a valid message TTL");
  CHECK(refused(policy("p", "^q", T{{"alternate-exchange", amqp::field_value{}}})) ==
        "null is not a valid alternate exchange name");
  CHECK(refused(policy("p", "^q", T{})) == "no policy provided");
  // Keys in ascending order, whatever order they came in; unknown keys only after the rest.
  CHECK(refused(policy("p", "^q", T{{"message-ttl", int64_t{-1}}, {"expires", int64_t{0}}})) ==
        "0 is not a valid queue expiry");
  CHECK(refused(policy("p", "^q", T{{"max-length", int64_t{-1}}, {"foo", int64_t{1}}})) ==
        "-1 is not a valid maximum length");
  CHECK(refused(policy("p", "^q", T{{"foo", int64_t{1}}, {"bar", int64_t{2}}})) ==
        "[{<<\"bar\">>,2},{<<\"foo\">>,1}] are not recognised policy settings");
  CHECK(refused(policy("p", "^q", T{{"expires", int64_t{1}}}, 0, "bogus")) ==
        "apply-to 'bogus' unrecognised; should be 'queues', 'exchanges' or 'all'");
  CHECK(refused(policy("p", "(", T{{"expires", int64_t{1}}})).rfind(
          "pattern should be regular expression but is invalid: ", 0) == 0);
  // Mirroring keys are taken, and checked as RabbitMQ checks them.
  CHECK(refused(policy("p", "^q", T{{"ha-mode", "all"}})).empty());
  CHECK(refused(policy("p", "^q", T{{"ha-mode", "all"}, {"ha-params", int64_t{2}}})) ==
        "ha-mode=\"all\" does not take parameters");
  CHECK(refused(policy("p", "^q", T{{"ha-params", int64_t{2}}})) ==
        "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown");
  CHECK(refused(policy("p", "^q", T{{"ha-mode", "exactly"}, {"ha-params", int64_t{0}}})) ==
        "ha-mode=\"exactly\" takes an integer, 0 given");
  CHECK(refused(policy("p", "^q", T{{"max-age", "10s"}, {"queue-version", int64_t{2}}})).empty());
  CHECK(refused(policy("p", "^q", T{{"max-age", "1Z"}})) == "<<\"1Z\">> is not a valid max age");
}

TEST_CASE("an operator policy takes only the limits", "[policy]") {
  using T = amqp::field_table;
  CHECK(refused(policy("o", "^q", T{{"max-length", int64_t{1}}, {"delivery-limit", int64_t{3}}},
                       0, "all", true))
          .empty());
  CHECK(refused(policy("o", "^q", T{{"overflow", "drop-head"}}, 0, "all", true)) ==
        "[{<<\"overflow\">>,<<\"drop-head\">>}] are not recognised policy settings");
  CHECK(refused(policy("o", "^q", T{{"ha-mode", "all"}}, 0, "all", true)) ==
        "[{<<\"ha-mode\">>,<<\"all\">>}] are not recognised policy settings");
}

TEST_CASE("the matching policy of highest priority applies", "[policy]") {
  using T = amqp::field_table;
  warren::policy_set ps{std::vector<policy_info>{
    policy("low", "^orders", T{{"max-length", int64_t{1}}}, 0),
    policy("high", "orders", T{{"max-length", int64_t{3}}}, 5),
    policy("exchanges-only", "orders", T{{"alternate-exchange", "ae"}}, 9, "exchanges"),
    policy("op", "^orders", T{{"max-length", int64_t{2}}}, 0, "all", true),
  }};
  REQUIRE(match(ps, "orders.eu"));
  CHECK(match(ps, "orders.eu")->name == "high");
  CHECK(match(ps, "new-orders")->name == "high");  // searched, not anchored
  CHECK(match(ps, "returns") == nullptr);
  CHECK(match(ps, "orders", policy_target::exchange)->name == "exchanges-only");
  CHECK(match(ps, "orders", policy_target::queue, true)->name == "op");
  CHECK(ps.match("other-vhost", policy_target::queue, "orders", false) == nullptr);
  // Between equal priorities the first by name; an empty pattern matches every name.
  warren::policy_set ties{std::vector<policy_info>{policy("b", "", T{{"expires", int64_t{1}}}),
                                                   policy("a", "x", T{{"expires", int64_t{1}}})}};
  CHECK(match(ties, "x")->name == "a");
  CHECK(match(ties, "y")->name == "b");
}

TEST_CASE("what a queue and an exchange take from their policies", "[policy]") {
  using T = amqp::field_table;
  auto p = policy("p", "q", T{{"dead-letter-exchange", "from-policy"},
                              {"delivery-limit", int64_t{5}},
                              {"max-length", int64_t{5}},
                              {"message-ttl", int64_t{100}}});
  auto op = policy("o", "q", T{{"max-length", int64_t{2}}, {"expires", int64_t{60000}}}, 0,
                   "all", true);
  auto def = warren::effective_definition(&p, &op);
  CHECK(def == T{{"dead-letter-exchange", "from-policy"},
                 {"delivery-limit", int64_t{5}},
                 {"expires", int64_t{60000}},
                 {"max-length", int64_t{2}},
                 {"message-ttl", int64_t{100}}});
  CHECK(warren::effective_definition(nullptr, nullptr).empty());

  // The smaller limit, the queue's own dead-letter exchange; delivery-limit for quorum only.
  T args{{"x-max-length", int32_t{10}}, {"x-dead-letter-exchange", "own"},
         {"x-message-ttl", int32_t{50}}};
  warren::argument_error ignored;
  auto classic = warren::parse_queue_options(
    warren::effective_queue_arguments(args, def, warren::queue_kind::classic), ignored);
  REQUIRE(classic);
  CHECK(classic->max_length == 2);
  CHECK(classic->message_ttl == 50);
  CHECK(classic->expires == 60000);
  CHECK(classic->dead_letter_exchange == "own");
  CHECK_FALSE(classic->delivery_limit);
  auto quorum_args = T{{"x-queue-type", "quorum"}};
  auto quorum = warren::parse_queue_options(
    warren::effective_queue_arguments(quorum_args, def, warren::queue_kind::quorum), ignored);
  REQUIRE(quorum);
  CHECK(quorum->delivery_limit == 5);
  CHECK(quorum->dead_letter_exchange == "from-policy");

  // overflow: a classic queue keeps its argument, a quorum queue takes the policy's.
  auto over_def = T{{"overflow", "drop-head"}};
  auto classic_over = warren::parse_queue_options(
    warren::effective_queue_arguments(T{{"x-overflow", "reject-publish"}}, over_def,
                                      warren::queue_kind::classic),
    ignored);
  REQUIRE(classic_over);
  CHECK(classic_over->overflow == warren::overflow_mode::reject_publish);
  auto quorum_over = warren::parse_queue_options(
    warren::effective_queue_arguments(
      T{{"x-queue-type", "quorum"}, {"x-overflow", "reject-publish"}}, over_def,
      warren::queue_kind::quorum),
    ignored);
  REQUIRE(quorum_over);
  CHECK(quorum_over->overflow == warren::overflow_mode::drop_head);

  // A stream takes its retention: the shorter age, the smaller size.
  auto stream_def = T{{"max-age", "1h"}, {"max-length-bytes", int64_t{1000}},
                      {"message-ttl", int64_t{5}}};
  auto stream_args = warren::effective_queue_arguments(
    T{{"x-queue-type", "stream"}, {"x-max-age", "1D"}, {"x-max-length-bytes", int64_t{500}}},
    stream_def, warren::queue_kind::stream);
  CHECK(stream_args == T{{"x-queue-type", "stream"}, {"x-max-age", "1h"},
                         {"x-max-length-bytes", int64_t{500}}});

  CHECK(warren::effective_alternate(T{}, T{{"alternate-exchange", "pol"}}) == "pol");
  CHECK(warren::effective_alternate(T{{"alternate-exchange", "arg"}},
                                    T{{"alternate-exchange", "pol"}}) == "arg");
  CHECK(warren::effective_alternate(T{}, T{}).empty());
}

TEST_CASE("policies are listed lowest priority first, then by vhost and name", "[policy]") {
  using T = amqp::field_table;
  std::vector<policy_info> ps{policy("b", "", T{}, 1.5), policy("a", "", T{}, 5),
                              policy("c", "", T{}, -2), policy("B", "", T{}, 1.5)};
  ps[1].vhost = "other";
  warren::sort_policies(ps);
  std::vector<std::string> names;
  for (auto& p : ps)
    names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"c", "B", "b", "a"});
}
