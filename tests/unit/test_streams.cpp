// Stream arguments (x-max-age, segment size, the arguments of other queue types), consumer
// offsets (x-stream-offset), and the super stream exchange's partitioning.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

#include "actors/exchange/exchange_type.hpp"
#include "actors/stream_arguments.hpp"

using namespace warren;
using amqp::field_table;
using amqp::field_value;

TEST_CASE("x-max-age takes a positive count and one unit", "[streams]") {
  CHECK(parse_max_age("10s") == 10'000);
  CHECK(parse_max_age("30m") == 1'800'000);
  CHECK(parse_max_age("1h") == 3'600'000);
  CHECK(parse_max_age("7D") == 7LL * 86'400'000);
  CHECK(parse_max_age("1M") == 30LL * 86'400'000);
  CHECK(parse_max_age("1Y") == 365LL * 86'400'000);
  for (auto bad : {"", "s", "0s", "-5s", "1.5h", "10x", "abc", "5", "10 s", "99999999999999999Y"})
    CHECK_FALSE(parse_max_age(bad));
}

TEST_CASE("stream options and the arguments streams refuse", "[streams]") {
  argument_error e;
  auto o = parse_stream_options({{"x-queue-type", "stream"},
                                 {"x-max-length-bytes", int64_t{2000}},
                                 {"x-max-age", "1h"},
                                 {"x-stream-max-segment-size-bytes", int32_t{500}},
                                 {"x-initial-cluster-size", int32_t{3}},
                                 {"x-custom", "kept"}},
                                e);
  REQUIRE(o);
  CHECK(o->max_length_bytes == 2000);
  CHECK(o->max_age_ms == 3'600'000);
  CHECK(o->max_segment_bytes == 500);
  CHECK(parse_stream_options({}, e)->max_segment_bytes == default_segment_bytes);

  CHECK_FALSE(parse_stream_options({{"x-max-length", int32_t{10}}}, e));
  CHECK(e.argument == "x-max-length");
  CHECK(e.text == "invalid arg 'x-max-length' for");
  CHECK_FALSE(parse_stream_options({{"x-max-age", int32_t{10}}}, e));
  CHECK(e.reason == "{unacceptable_type,signedint}");
  CHECK_FALSE(parse_stream_options({{"x-max-age", "abc"}}, e));
  CHECK(e.argument == "x-max-age");
  CHECK(e.reason == "invalid_max_age");
  CHECK_FALSE(parse_stream_options({{"x-max-length-bytes", int32_t{-1}}}, e));
  CHECK(e.reason == "{value_negative,-1}");
  CHECK_FALSE(parse_stream_options({{"x-stream-max-segment-size-bytes", int32_t{0}}}, e));
}

TEST_CASE("queue types", "[streams]") {
  CHECK(is_stream({{"x-queue-type", "stream"}}));
  CHECK_FALSE(is_stream({{"x-queue-type", "classic"}}));
  CHECK_FALSE(is_stream({}));
  CHECK(queue_type({{"x-queue-type", "stream"}}) == "stream");
  CHECK(queue_type({}) == "classic");
}

TEST_CASE("x-stream-offset", "[streams]") {
  std::string why;
  CHECK(parse_stream_offset(nullptr, why)->k == stream_offset::kind::next);
  field_value first{"first"}, last{"last"}, next{"next"};
  CHECK(parse_stream_offset(&first, why)->k == stream_offset::kind::first);
  CHECK(parse_stream_offset(&last, why)->k == stream_offset::kind::last);
  CHECK(parse_stream_offset(&next, why)->k == stream_offset::kind::next);
  field_value n{int32_t{-5}};
  auto o = parse_stream_offset(&n, why);
  CHECK(o->k == stream_offset::kind::offset);
  CHECK(o->value == -5);
  field_value t{amqp::timestamp_value{1700000000}};
  o = parse_stream_offset(&t, why);
  CHECK(o->k == stream_offset::kind::timestamp);
  CHECK(o->value == 1'700'000'000'000);
  field_value age{"10m"};
  o = parse_stream_offset(&age, why);
  CHECK(o->k == stream_offset::kind::timestamp);
  field_value numeric{"5"}, flag{true};
  CHECK_FALSE(parse_stream_offset(&numeric, why));
  CHECK(why == "{invalid_stream_offset_arg,{longstr,<<\"5\">>}}");
  CHECK_FALSE(parse_stream_offset(&flag, why));
  CHECK(why == "{invalid_stream_offset_arg,{bool,true}}");
}

TEST_CASE("MurmurHash3 x86_32 reference values", "[streams]") {
  CHECK(exchange::murmur3_32("", 0) == 0);
  CHECK(exchange::murmur3_32("", 1) == 0x514e28b7);
  CHECK(exchange::murmur3_32("hello", 0) == 0x248bfa47);
  CHECK(exchange::murmur3_32("The quick brown fox jumps over the lazy dog", 0x9747b28c) ==
        0x2fa826cd);
}

TEST_CASE("a super stream exchange picks one partition per message", "[streams]") {
  auto x = exchange::make_exchange_type(exchange::super_stream_type);
  REQUIRE(x);
  CHECK(exchange::is_known_type("x-super-stream"));
  std::vector<exchange::dest_id> out;
  x->route("k", nullptr, out);
  CHECK(out.empty());  // no partitions yet
  // Bound out of order: the partition order argument decides.
  for (int64_t i : {2, 0, 1})
    x->bind({static_cast<exchange::dest_id>(10 + i), std::to_string(i),
             field_table{{"x-stream-partition-order", i}}});
  for (std::string key : {"a", "customer-7", "zzz", "0"}) {
    out.clear();
    x->route(key, nullptr, out);
    REQUIRE(out.size() == 1);
    CHECK(out[0] == 10 + exchange::murmur3_32(key, 104729) % 3);
  }
  std::multiset<exchange::dest_id> keyless;
  for (int i = 0; i < 6; ++i) {
    out.clear();
    x->route("", nullptr, out);
    REQUIRE(out.size() == 1);
    keyless.insert(out[0]);
  }
  CHECK(keyless == std::multiset<exchange::dest_id>{10, 10, 11, 11, 12, 12});
  x->unbind({12, "2", {}});
  out.clear();
  x->route("a", nullptr, out);
  CHECK(out[0] == 10 + exchange::murmur3_32("a", 104729) % 2);
}
