// Queue arguments (RabbitMQ 3.10's checks and equivalence rule), per-message expiration, and
// the dead-lettered copy of a message with its x-death bookkeeping and cycle check.
#include <catch2/catch.hpp>

#include <limits>
#include <string>

#include "actors/dead_letter.hpp"
#include "actors/queue_arguments.hpp"
#include "protocol/amqp091/properties.hpp"

using namespace warren;
using amqp::field_table;
using amqp::field_value;

namespace {

std::string reason_for(const field_table& args, std::string* argument = nullptr) {
  argument_error e;
  auto o = parse_queue_options(args, e);
  if (argument)
    *argument = e.argument;
  return o ? std::string{"ok"} : e.reason;
}

amqp::basic_properties props_of(const message& m) {
  amqp::basic_properties p;
  REQUIRE(amqp::decode_properties(m.properties(), p));
  return p;
}

const field_table& first_death(const amqp::basic_properties& p) {
  auto d = amqp::find_field(*p.headers, "x-death");
  REQUIRE(d);
  auto& deaths = std::get<amqp::field_array>(d->v);
  REQUIRE(!deaths.empty());
  return *deaths.front().as_table();
}

message_ptr published(const amqp::basic_properties& p, std::string_view exchange,
                      std::string_view key, std::string_view body) {
  std::string raw;
  amqp::encode_properties(p, raw);
  return message::make({exchange, key, raw, p.delivery_mode.value_or(uint8_t{0}),
                        p.headers.has_value(), p.expiration.has_value()},
                       body);
}

}  // namespace

TEST_CASE("queue arguments: accepted values", "[queue-args]") {
  argument_error e;
  auto o = parse_queue_options({{"x-message-ttl", int32_t{0}},
                                {"x-expires", int64_t{1000}},
                                {"x-max-length", uint8_t{3}},
                                {"x-max-length-bytes", int16_t{0}},
                                {"x-overflow", "reject-publish-dlx"},
                                {"x-dead-letter-exchange", ""},
                                {"x-dead-letter-routing-key", "dead"},
                                {"x-custom", "left alone"}},
                               e);
  REQUIRE(o);
  CHECK(*o->message_ttl == 0);
  CHECK(*o->expires == 1000);
  CHECK(*o->max_length == 3);
  CHECK(*o->max_length_bytes == 0);
  CHECK(o->overflow == overflow_mode::reject_publish_dlx);
  CHECK(*o->dead_letter_exchange == "");
  CHECK(*o->dead_letter_routing_key == "dead");
  CHECK(o->limited());
  CHECK_FALSE(parse_queue_options({}, e)->limited());
  // A quorum queue has no reject-publish-dlx and keeps drop-head, as in RabbitMQ 3.10.
  auto quorum = parse_queue_options(
    {{"x-queue-type", "quorum"}, {"x-overflow", "reject-publish-dlx"}}, e);
  REQUIRE(quorum);
  CHECK(quorum->overflow == overflow_mode::drop_head);
  CHECK(parse_queue_options({{"x-queue-type", "quorum"}, {"x-overflow", "reject-publish"}}, e)
          ->overflow == overflow_mode::reject_publish);
}

TEST_CASE("queue arguments: refused with RabbitMQ's error terms", "[queue-args]") {
  std::string arg;
  CHECK(reason_for({{"x-message-ttl", int32_t{-1}}}, &arg) == "{value_negative,-1}");
  CHECK(arg == "x-message-ttl");
  CHECK(reason_for({{"x-message-ttl", "1000"}}) == "\"expected integer, got longstr\"");
  CHECK(reason_for({{"x-message-ttl", int64_t{8589934592}}}) == "ok");  // as RabbitMQ 3.10
  CHECK(reason_for({{"x-message-ttl", int64_t{315360000000}}}) == "ok");  // ten years
  CHECK(reason_for({{"x-message-ttl", int64_t{315360000001}}}) == "{value_too_large,315360000001}");
  CHECK(reason_for({{"x-expires", int64_t{315360000001}}}) == "{value_too_large,315360000001}");
  CHECK(reason_for({{"x-max-length", int64_t{315360000001}}}) == "ok");
  CHECK(reason_for({{"x-expires", int32_t{0}}}) == "{value_zero,0}");
  CHECK(reason_for({{"x-expires", 1.5}}) == "\"expected integer, got double\"");
  CHECK(reason_for({{"x-max-length", int32_t{-2}}}) == "{value_negative,-2}");
  CHECK(reason_for({{"x-max-length-bytes", true}}) == "\"expected integer, got bool\"");
  CHECK(reason_for({{"x-overflow", "bogus"}}, &arg) == "invalid_overflow");
  CHECK(arg == "x-overflow");
  CHECK(reason_for({{"x-dead-letter-routing-key", "k"}}, &arg) == "routing_key_but_no_dlx_defined");
  CHECK(arg == "x-dead-letter-routing-key");
  // A classic queue's mode and index version: only RabbitMQ's values.
  CHECK(reason_for({{"x-queue-mode", "lazy"}}) == "ok");
  CHECK(reason_for({{"x-queue-mode", "default"}}) == "ok");
  CHECK(reason_for({{"x-queue-mode", "LAZY"}}, &arg) == "\"unsupported queue mode 'LAZY'\"");
  CHECK(arg == "x-queue-mode");
  CHECK(reason_for({{"x-queue-mode", int32_t{7}}}) == "{unacceptable_type,signedint}");
  CHECK(reason_for({{"x-queue-mode", true}}) == "{unacceptable_type,bool}");
  CHECK(reason_for({{"x-queue-version", int32_t{1}}}) == "ok");
  CHECK(reason_for({{"x-queue-version", int8_t{2}}}) == "ok");
  CHECK(reason_for({{"x-queue-version", int32_t{3}}}) == "\"unsupported queue version '3'\"");
  CHECK(reason_for({{"x-queue-version", int32_t{0}}}) == "\"unsupported queue version '0'\"");
  CHECK(reason_for({{"x-queue-version", int32_t{-1}}}) == "{value_negative,-1}");
  CHECK(reason_for({{"x-queue-version", "2"}}) == "\"expected integer, got longstr\"");
  // A string argument of another type: RabbitMQ words the whole text itself.
  argument_error e;
  CHECK_FALSE(parse_queue_options({{"x-dead-letter-exchange", int32_t{1}}}, e));
  CHECK(e.argument == "x-dead-letter-exchange");
  CHECK(e.text == "invalid type 'signedint' for arg 'x-dead-letter-exchange'");
}

TEST_CASE("queue arguments: redeclare equivalence", "[queue-args]") {
  std::string detail;
  // Integer types are compatible with each other; unknown keys are not compared.
  CHECK(inequivalent_queue_argument({{"x-message-ttl", int32_t{2000}}},
                                    {{"x-message-ttl", int64_t{2000}}, {"x-other", "1"}},
                                    detail)
          .empty());
  CHECK(inequivalent_queue_argument({}, {{"x-message-ttl", int32_t{2000}}}, detail) ==
        "x-message-ttl");
  CHECK(detail == "received the value '2000' of type 'signedint' but current is none");
  CHECK(inequivalent_queue_argument({{"x-overflow", "drop-head"}},
                                    {{"x-overflow", "reject-publish"}}, detail) == "x-overflow");
  CHECK(detail == "received 'reject-publish' but current is 'drop-head'");
  CHECK(inequivalent_queue_argument({{"x-dead-letter-exchange", "dlx"}}, {}, detail) ==
        "x-dead-letter-exchange");
  CHECK(detail == "received none but current is the value 'dlx' of type 'longstr'");
  CHECK(inequivalent_queue_argument({{"x-queue-mode", "lazy"}}, {{"x-queue-mode", "default"}},
                                    detail) == "x-queue-mode");
  CHECK(detail == "received 'default' but current is 'lazy'");
  CHECK(inequivalent_queue_argument({}, {{"x-queue-version", int32_t{1}}}, detail) ==
        "x-queue-version");
  CHECK(detail == "received the value '1' of type 'signedint' but current is none");
}

TEST_CASE("queue arguments: quorum queues", "[queue-args]") {
  argument_error e;
  field_table quorum{{"x-queue-type", "quorum"}};
  CHECK(is_quorum(quorum));
  CHECK_FALSE(is_quorum({{"x-queue-type", "classic"}}));
  auto with = [&](std::string key, field_value v) {
    auto t = quorum;
    t.emplace_back(std::move(key), std::move(v));
    return t;
  };
  auto o = parse_queue_options(with("x-delivery-limit", int16_t{3}), e);
  REQUIRE(o);
  CHECK(o->quorum);
  CHECK(o->delivery_limit == 3);
  // A limit that is not an integer is none, as in RabbitMQ; negative ones are kept.
  CHECK_FALSE(parse_queue_options(with("x-delivery-limit", "3"), e)->delivery_limit);
  CHECK(parse_queue_options(with("x-delivery-limit", int32_t{-1}), e)->delivery_limit == -1);
  CHECK_FALSE(parse_queue_options({{"x-delivery-limit", int32_t{3}}}, e)->quorum);
  CHECK(reason_for(with("x-dead-letter-strategy", "bogus")) == "invalid_dlx_strategy");
  CHECK(reason_for(with("x-dead-letter-strategy", int32_t{1})) == "{unacceptable_type,signedint}");
  CHECK(reason_for(with("x-dead-letter-strategy", "at-least-once")) == "ok");
  CHECK(reason_for(with("x-quorum-initial-group-size", int32_t{0})) == "{value_zero,0}");
  CHECK(reason_for(with("x-quorum-initial-group-size", "3")) ==
        "\"expected integer, got longstr\"");
  CHECK(reason_for(with("x-queue-leader-locator", "nearest")) == "invalid_queue_locator_arg");
  CHECK(reason_for(with("x-max-in-memory-bytes", int32_t{-1})) == "{value_negative,-1}");
  // Each type refuses the arguments of the others.
  CHECK(foreign_queue_argument(with("x-max-priority", int32_t{5}), e));
  CHECK(e.argument == "x-max-priority");
  CHECK(e.other_type);
  CHECK_FALSE(foreign_queue_argument(with("x-delivery-limit", int32_t{5}), e));
  CHECK(foreign_queue_argument({{"x-delivery-limit", int32_t{5}}}, e));
  CHECK(e.argument == "x-delivery-limit");
  CHECK_FALSE(foreign_queue_argument({{"x-max-priority", int32_t{5}}, {"x-custom", 1}}, e));
  // Compared on redeclare.
  std::string detail;
  CHECK(inequivalent_queue_argument(with("x-delivery-limit", int32_t{3}),
                                    with("x-delivery-limit", int64_t{4}), detail) ==
        "x-delivery-limit");
  CHECK(detail == "received '4' but current is '3'");
  CHECK(inequivalent_queue_argument(quorum, {}, detail) == "x-queue-type");
}

TEST_CASE("a copy with one header set (x-delivery-count)", "[dead-letter]") {
  amqp::basic_properties p;
  p.delivery_mode = 2;
  p.expiration = "5000";
  p.headers = field_table{{"a", int32_t{1}}, {"x-delivery-count", int64_t{1}}};
  auto m = published(p, "ex", "key", "body");
  auto c = with_header(*m, "x-delivery-count", int64_t{2});
  REQUIRE(c);
  auto q = props_of(*c);
  CHECK(*q.headers == field_table{{"a", int32_t{1}}, {"x-delivery-count", int64_t{2}}});
  CHECK(q.expiration == p.expiration);
  CHECK((c->exchange() == "ex" && c->routing_key() == "key" && c->body() == "body"));
  CHECK((c->delivery_mode() == 2 && c->has_headers() && c->has_expiration()));
  auto bare = published(amqp::basic_properties{}, "", "q", "");
  auto d = with_header(*bare, "x-delivery-count", int64_t{0});
  REQUIRE(d);
  CHECK(*props_of(*d).headers == field_table{{"x-delivery-count", int64_t{0}}});
}

TEST_CASE("per-message expiration as RabbitMQ parses it", "[queue-args]") {
  std::string why;
  CHECK(parse_expiration("0", why) == 0);
  CHECK(parse_expiration("60000", why) == 60000);
  CHECK(parse_expiration("+5", why) == 5);
  CHECK_FALSE(parse_expiration("abc", why));
  CHECK(why == "no_integer");
  CHECK_FALSE(parse_expiration("", why));
  CHECK(why == "no_integer");
  CHECK_FALSE(parse_expiration("10s", why));
  CHECK(why == "{leftover_string,\"s\"}");
  CHECK_FALSE(parse_expiration("-5", why));
  CHECK(why == "{value_negative,-5}");
  CHECK(parse_expiration("-0", why) == 0);
  CHECK(parse_expiration("8589934592", why) == 8589934592);
  CHECK(parse_expiration("315360000000", why) == 315360000000);
  CHECK_FALSE(parse_expiration("315360000001", why));
  CHECK(why == "{value_too_large,315360000001}");
  CHECK_FALSE(parse_expiration("99999999999999999999999", why));
  CHECK(why == "{value_too_large,99999999999999999999999}");
  CHECK_FALSE(parse_expiration("-99999999999999999999999", why));
}

TEST_CASE("dead-lettered copy: x-death, first-death headers, no expiration", "[dead-letter]") {
  amqp::basic_properties p;
  p.delivery_mode = 2;
  p.expiration = "500";
  p.content_type = "text/plain";
  p.headers = field_table{{"app", "kept"}};
  auto m = published(p, "orders", "order.created", "body\0with nul");
  auto d = dead_letter(*m, death_reason::expired, "work", "dlx", std::nullopt, 1700000000);
  REQUIRE(d);
  CHECK(d->exchange() == "dlx");
  CHECK(d->routing_key() == "order.created");
  CHECK(d->body() == m->body());
  CHECK(d->delivery_mode() == 2);
  CHECK(d->dead_lettered());
  CHECK_FALSE(d->has_expiration());
  auto q = props_of(*d);
  CHECK_FALSE(q.expiration);
  CHECK(q.content_type == "text/plain");
  auto& h = *q.headers;
  CHECK(*amqp::find_field(h, "app")->as_string() == "kept");
  CHECK(*amqp::find_field(h, "x-first-death-reason")->as_string() == "expired");
  CHECK(*amqp::find_field(h, "x-first-death-queue")->as_string() == "work");
  CHECK(*amqp::find_field(h, "x-first-death-exchange")->as_string() == "orders");
  auto& e = first_death(q);
  CHECK(amqp::find_field(e, "count")->as_int() == 1);
  CHECK(*amqp::find_field(e, "reason")->as_string() == "expired");
  CHECK(*amqp::find_field(e, "queue")->as_string() == "work");
  CHECK(*amqp::find_field(e, "exchange")->as_string() == "orders");
  CHECK(std::get<amqp::timestamp_value>(amqp::find_field(e, "time")->v).seconds == 1700000000);
  CHECK(std::get<amqp::field_array>(amqp::find_field(e, "routing-keys")->v) ==
        amqp::field_array{"order.created"});
  CHECK(*amqp::find_field(e, "original-expiration")->as_string() == "500");
}

TEST_CASE("dead-lettered copy: the routing key argument and repeated deaths", "[dead-letter]") {
  auto m = published({}, "", "work", "x");
  auto once = dead_letter(*m, death_reason::rejected, "work", "", std::string{"retry"}, 1);
  REQUIRE(once);
  CHECK(once->routing_key() == "retry");
  CHECK(once->exchange() == "");
  // Back into "work" and rejected there again: the same entry counts 2 and comes first.
  auto other = dead_letter(*once, death_reason::expired, "retry", "", std::string{"work"}, 2);
  auto twice = dead_letter(*other, death_reason::rejected, "work", "", std::string{"retry"}, 3);
  REQUIRE(twice);
  auto p = props_of(*twice);
  auto& deaths = std::get<amqp::field_array>(amqp::find_field(*p.headers, "x-death")->v);
  REQUIRE(deaths.size() == 2);
  auto& e = *deaths[0].as_table();
  CHECK(*amqp::find_field(e, "queue")->as_string() == "work");
  CHECK(amqp::find_field(e, "count")->as_int() == 2);
  CHECK(std::get<amqp::timestamp_value>(amqp::find_field(e, "time")->v).seconds == 1);
  CHECK(*amqp::find_field(*deaths[1].as_table(), "queue")->as_string() == "retry");
  // The first death is still the first one.
  CHECK(*amqp::find_field(*p.headers, "x-first-death-reason")->as_string() == "rejected");
  CHECK(*amqp::find_field(*p.headers, "x-first-death-queue")->as_string() == "work");
}

TEST_CASE("dead-letter cycles: dropped unless a client rejected on the way", "[dead-letter]") {
  auto m = published({}, "", "a", "x");
  // a expires into b: arriving at b is no cycle; back at a after b expires it, it is.
  auto to_b = dead_letter(*m, death_reason::expired, "a", "", std::string{"b"}, 1);
  CHECK_FALSE(dead_letter_cycle(*to_b, "b"));
  auto to_a = dead_letter(*to_b, death_reason::expired, "b", "", std::string{"a"}, 1);
  CHECK(dead_letter_cycle(*to_a, "a"));
  CHECK(dead_letter_cycle(*dead_letter(*m, death_reason::maxlen, "a", "", std::nullopt, 1), "a"));
  // A rejection anywhere in the cycle makes it the client's doing: no drop.
  auto rejected_at_b = dead_letter(*to_b, death_reason::rejected, "b", "", std::string{"a"}, 1);
  CHECK_FALSE(dead_letter_cycle(*rejected_at_b, "a"));
  CHECK_FALSE(dead_letter_cycle(*dead_letter(*m, death_reason::rejected, "a", "", {}, 1), "a"));
  CHECK_FALSE(dead_letter_cycle(*m, "a"));
}

TEST_CASE("dead-lettered copy: x-death a client forged", "[dead-letter]") {
  // Whatever a publisher put in x-death: entries that are not tables stay as they are, a count
  // at its largest stays there, and a value that is not an array is replaced.
  amqp::basic_properties p;
  field_table forged{{"count", std::numeric_limits<int64_t>::max()},
                     {"reason", "expired"},
                     {"queue", "work"}};
  p.headers = field_table{{"x-death", amqp::field_array{"junk", forged}}};
  auto d = dead_letter(*published(p, "", "k", "x"), death_reason::expired, "work", "", {}, 1);
  REQUIRE(d);
  auto q = props_of(*d);
  auto& deaths = std::get<amqp::field_array>(amqp::find_field(*q.headers, "x-death")->v);
  REQUIRE(deaths.size() == 2);
  CHECK(amqp::find_field(*deaths[0].as_table(), "count")->as_int() ==
        std::numeric_limits<int64_t>::max());
  CHECK(deaths[1] == field_value{"junk"});
  amqp::basic_properties s;
  s.headers = field_table{{"x-death", "not an array"}};
  auto e = dead_letter(*published(s, "", "k", "x"), death_reason::maxlen, "work", "", {}, 1);
  REQUIRE(e);
  auto ep = props_of(*e);
  auto& fresh = first_death(ep);
  CHECK(amqp::find_field(fresh, "count")->as_int() == 1);
  CHECK(*amqp::find_field(fresh, "reason")->as_string() == "maxlen");
}
