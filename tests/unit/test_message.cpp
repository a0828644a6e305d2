// warren::message: one block holding a published message's fields and (small) body.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "actors/messages.hpp"
#include "protocol/amqp091/header_routes.hpp"
#include "protocol/amqp091/wire.hpp"

using warren::message;

TEST_CASE("message keeps each field and a small body inline", "[message]") {
  std::string props{"\x90\x00\x02", 3};
  auto m = message::make({"amq.topic", "a.b.c", props, 2, true}, std::string{"hello, world: 16B"});
  CHECK(m->exchange() == "amq.topic");
  CHECK(m->routing_key() == "a.b.c");
  CHECK(m->properties() == props);
  CHECK(m->body() == "hello, world: 16B");
  CHECK(m->delivery_mode() == 2);
  CHECK(m->has_headers());
  // The inline body lies in the same block, right after the properties.
  CHECK(m->body().data() == m->properties().data() + props.size());
}

TEST_CASE("message adopts a large body without copying it", "[message]") {
  std::string body(message::inline_body_max + 1, 'x');
  body[0] = '\0';
  const char* bytes = body.data();
  auto m = message::make({"", "q", {}, 0, false}, std::move(body));
  CHECK(m->body().size() == message::inline_body_max + 1);
  CHECK(m->body().data() == bytes);
  CHECK(m->body()[0] == '\0');
  CHECK(m->exchange().empty());
  CHECK(m->routing_key() == "q");
  CHECK(m->properties().empty());
  CHECK(m->delivery_mode() == 0);
  CHECK_FALSE(m->has_headers());
}

TEST_CASE("message copies a body given as a view, inline or not", "[message]") {
  std::string small(message::inline_body_max, 's');
  std::string large(message::inline_body_max + 100, 'l');
  auto a = message::make({"x", "k", {}, 1, false}, std::string_view{small});
  auto b = message::make({"x", "k", {}, 1, false}, std::string_view{large});
  CHECK(a->body() == small);
  CHECK(b->body() == large);
  CHECK(a->body().data() != small.data());
  CHECK(b->body().data() != large.data());
  CHECK(message::make({}, std::string_view{})->body().empty());
}

TEST_CASE("message references are counted across threads", "[message]") {
  auto m = message::make({"ex", "key", {}, 0, false}, std::string(40, 'b'));
  std::vector<std::thread> threads;
  std::vector<size_t> seen(4, 0);  // Catch2's assertions are not thread-safe: count, check after
  for (size_t t = 0; t < seen.size(); ++t)
    threads.emplace_back([m, &n = seen[t]] {
      for (int i = 0; i < 100000; ++i) {
        warren::message_ptr copy = m;
        n += copy->body().size() == 40;
      }
    });
  for (auto& t : threads)
    t.join();
  for (auto n : seen)
    CHECK(n == 100000);
  // Still alive and intact: the copies above took and gave back their references.
  CHECK(m->body() == std::string(40, 'b'));
  CHECK(m->routing_key() == "key");
}

TEST_CASE("message carries the routes of CC and BCC after its body", "[message]") {
  using namespace warren::amqp;
  field_table headers{{"x", "1"},
                      {"CC", field_array{"a", int32_t{5}, "b"}},
                      {"BCC", field_array{"c"}}};
  auto routes = read_header_routes(headers);
  REQUIRE_FALSE(routes.error);
  CHECK(routes.keys == std::vector<std::string>{"a", "b", "c"});
  CHECK(routes.has_bcc);
  auto encoded = encode_routes(routes.keys);
  for (auto body : {std::string{"small"}, std::string(message::inline_body_max + 1, 'y')}) {
    message::fields f{"ex", "rk", "props", 1, true};
    f.extra_routes = encoded;
    auto m = message::make(f, std::string{body});
    CHECK(m->body() == body);
    CHECK(m->extra_routes() == encoded);
    std::vector<std::string> seen;
    m->each_extra_route([&](std::string_view k) { seen.emplace_back(k); });
    CHECK(seen == routes.keys);
  }
  auto plain = message::make({"ex", "rk", "props", 1, true}, std::string{"b"});
  CHECK(plain->extra_routes().empty());

  CHECK(read_header_routes(field_table{{"CC", "q"}}).error ==
        "{unacceptable_type_in_header,\"CC\",longstr}");
  CHECK(read_header_routes(field_table{{"BCC", int64_t{1}}}).error ==
        "{unacceptable_type_in_header,\"BCC\",long}");
  CHECK(read_header_routes(field_table{{"cc", "q"}}).keys.empty());  // case matters

  // The look at the encoded bytes lets through only tables that may have the keys.
  // (A value may look like a key to it: the table is then read in full.)
  std::string raw;
  writer{raw}.table(headers);
  CHECK(may_have_header_routes(raw));
  raw.clear();
  writer{raw}.table(field_table{{"CCX", "1"}, {"ABCC", "2"}, {"x", "C"}});
  CHECK_FALSE(may_have_header_routes(raw));
}
