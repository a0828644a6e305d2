// Exchange type plug-ins: direct, fanout, topic (AMQP 0-9-1 §3.1.3.3 edge cases, RabbitMQ
// semantics) and headers (x-match all / any, with and without x- keys).
#include <catch2/catch.hpp>

#include <algorithm>

#include "actors/exchange/exchange_type.hpp"

using namespace warren;
using namespace warren::exchange;

namespace {

std::vector<dest_id> route(const exchange_type& x, std::string_view key,
                           const amqp::field_table* headers = nullptr) {
  std::vector<dest_id> out;
  x.route(key, headers, out);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool topic_matches(std::string_view pattern, std::string_view key) {
  auto t = make_exchange_type("topic");
  t->bind(binding_key{1, std::string{pattern}, {}});
  return !route(*t, key).empty();
}

}  // namespace

TEST_CASE("direct exchange routes on equal keys only", "[routing]") {
  auto d = make_exchange_type("direct");
  d->bind({1, "jason", {}});
  d->bind({2, "jason", {}});
  d->bind({3, "other", {}});
  CHECK(route(*d, "jason") == std::vector<dest_id>{1, 2});
  CHECK(route(*d, "other") == std::vector<dest_id>{3});
  CHECK(route(*d, "Jason").empty());
  CHECK(route(*d, "").empty());
  d->unbind({2, "jason", {}});
  CHECK(route(*d, "jason") == std::vector<dest_id>{1});
}

TEST_CASE("fanout exchange ignores keys", "[routing]") {
  auto f = make_exchange_type("fanout");
  f->bind({1, "", {}});
  f->bind({2, "whatever", {}});
  CHECK(route(*f, "x.y") == std::vector<dest_id>{1, 2});
  f->unbind({1, "", {}});
  CHECK(route(*f, "") == std::vector<dest_id>{2});
}

TEST_CASE("topic: the seed tutorial's patterns", "[routing]") {
  CHECK(topic_matches("audit.#", "audit.irs.corporate"));
  CHECK(topic_matches("audit.#", "audit.irs"));
  CHECK(topic_matches("audit.#", "audit"));  // # matches zero words
  CHECK(topic_matches("audit.*", "audit.irs"));
  CHECK_FALSE(topic_matches("audit.*", "audit.irs.corporate"));
  CHECK_FALSE(topic_matches("audit.*", "audit"));
}

TEST_CASE("topic: # alone, #.#, a.#.b", "[routing]") {
  CHECK(topic_matches("#", ""));
  CHECK(topic_matches("#", "a"));
  CHECK(topic_matches("#", "a.b.c"));
  CHECK(topic_matches("#.#", "a.b"));
  CHECK(topic_matches("#.#", ""));
  CHECK(topic_matches("a.#.b", "a.b"));
  CHECK(topic_matches("a.#.b", "a.x.b"));
  CHECK(topic_matches("a.#.b", "a.x.y.b"));
  CHECK_FALSE(topic_matches("a.#.b", "a.x.y.c"));
  CHECK_FALSE(topic_matches("a.#.b", "b.a.b.c"));
  CHECK(topic_matches("#.b", "b"));
  CHECK(topic_matches("a.#", "a"));
  CHECK(topic_matches("#.a.#", "x.a.y"));
  CHECK_FALSE(topic_matches("#.a.#", "x.y"));
}

TEST_CASE("topic: * versus empty keys and empty words", "[routing]") {
  CHECK(topic_matches("*", "a"));
  CHECK_FALSE(topic_matches("*", ""));  // the empty key has no words at all
  CHECK_FALSE(topic_matches("*", "."));
  CHECK_FALSE(topic_matches("*", "a.b"));
  CHECK(topic_matches("*.*", "."));  // two empty words
  CHECK(topic_matches("a.*", "a."));
  CHECK(topic_matches("a..b", "a..b"));
  CHECK(topic_matches("a.*.b", "a..b"));
  CHECK_FALSE(topic_matches("a.b", "a..b"));
  CHECK(topic_matches("", ""));
  CHECK_FALSE(topic_matches("", "a"));
  CHECK(topic_matches("*.#", "a"));
  CHECK_FALSE(topic_matches("*.*.#", "a"));
}

TEST_CASE("topic: bindings come and go", "[routing]") {
  auto t = make_exchange_type("topic");
  t->bind({1, "a.*", {}});
  t->bind({2, "a.#", {}});
  t->bind({3, "#", {}});
  CHECK(route(*t, "a.b") == std::vector<dest_id>{1, 2, 3});
  t->unbind({2, "a.#", {}});
  CHECK(route(*t, "a.b") == std::vector<dest_id>{1, 3});
  t->unbind({3, "#", {}});
  CHECK(route(*t, "a.b.c").empty());
  t->unbind({1, "a.*", {}});
  CHECK(route(*t, "a.b").empty());
}

TEST_CASE("headers: x-match all and any", "[routing]") {
  auto h = make_exchange_type("headers");
  h->bind({1, "", {{"x-match", "all"}, {"format", "pdf"}, {"type", "report"}}});
  h->bind({2, "", {{"x-match", "any"}, {"format", "pdf"}, {"type", "log"}}});
  h->bind({3, "", {{"format", "zip"}}});  // all is the default
  amqp::field_table pdf_report{{"format", "pdf"}, {"type", "report"}};
  amqp::field_table pdf_only{{"format", "pdf"}};
  amqp::field_table log{{"type", "log"}, {"size", int32_t{5}}};
  amqp::field_table zip{{"format", "zip"}};
  CHECK(route(*h, "", &pdf_report) == std::vector<dest_id>{1, 2});
  CHECK(route(*h, "", &pdf_only) == std::vector<dest_id>{2});
  CHECK(route(*h, "", &log) == std::vector<dest_id>{2});
  CHECK(route(*h, "", &zip) == std::vector<dest_id>{3});
  CHECK(route(*h, "", nullptr).empty());
}

TEST_CASE("headers: x- keys are ignored unless x-match ends in -with-x", "[routing]") {
  auto h = make_exchange_type("headers");
  h->bind({1, "", {{"x-match", "all"}, {"x-tenant", "a"}}});
  h->bind({2, "", {{"x-match", "all-with-x"}, {"x-tenant", "a"}}});
  h->bind({3, "", {{"x-match", "any-with-x"}, {"x-tenant", "b"}, {"k", "v"}}});
  amqp::field_table none;
  amqp::field_table tenant_a{{"x-tenant", "a"}};
  amqp::field_table tenant_b{{"x-tenant", "b"}};
  // Binding 1 has no non-x arguments left: "all" of nothing matches everything.
  CHECK(route(*h, "", &none) == std::vector<dest_id>{1});
  CHECK(route(*h, "", &tenant_a) == std::vector<dest_id>{1, 2});
  CHECK(route(*h, "", &tenant_b) == std::vector<dest_id>{1, 3});
}

TEST_CASE("headers: void values match on presence and integer widths compare by value",
          "[routing]") {
  auto h = make_exchange_type("headers");
  h->bind({1, "", {{"flag", amqp::field_value{}}}});
  h->bind({2, "", {{"n", int8_t{7}}}});
  amqp::field_table with_flag{{"flag", "anything"}};
  amqp::field_table n_long{{"n", int64_t{7}}};
  amqp::field_table n_other{{"n", int64_t{8}}};
  CHECK(route(*h, "", &with_flag) == std::vector<dest_id>{1});
  CHECK(route(*h, "", &n_long) == std::vector<dest_id>{2});
  CHECK(route(*h, "", &n_other).empty());
  h->unbind({2, "", {{"n", int8_t{7}}}});
  CHECK(route(*h, "", &n_long).empty());
}

TEST_CASE("unknown exchange types are refused", "[routing]") {
  CHECK(make_exchange_type("x-consistent-hash") == nullptr);
  CHECK_FALSE(is_known_type("foo"));
  CHECK(is_known_type("headers"));
}
