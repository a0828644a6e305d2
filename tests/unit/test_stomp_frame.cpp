// Unit tests for the STOMP frame codec (STOMP 1.0, 1.1, 1.2): round trips of every command,
// bodies sized by content-length or ended by NUL, CRLF line ends, input split at every byte,
// heart-beats, header escaping (STOMP 1.2 Value Encoding), repeated headers, limits checked
// before anything is buffered, and mutated input that must fail cleanly.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>

#include "protocol/stomp/frame.hpp"

using namespace warren::stomp;

// Counts heap bytes requested through operator new, to show that limits are enforced before
// the parser allocates. The array, nothrow and sized forms are replaced too, so that every
// pair of allocation and deallocation goes through malloc/free (also under AddressSanitizer).
namespace {
std::atomic<size_t> allocated_bytes{0};

void* counted_alloc(size_t n) {
  allocated_bytes.fetch_add(n, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
}  // namespace

void* operator new(size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

using namespace std::string_literals;

struct event {
  parse_status status;
  frame f;
};

// Parses everything in `in` at once: frames and heart-beats, then need_more or error.
std::vector<event> parse_all(parser& p, std::string_view in) {
  std::vector<event> out;
  for (;;) {
    event e;
    size_t consumed = 0;
    e.status = p.parse(in, consumed, e.f);
    if (e.status == parse_status::frame || e.status == parse_status::heartbeat) {
      REQUIRE(consumed > 0);
      REQUIRE(consumed <= in.size());
      in.remove_prefix(consumed);
      out.push_back(std::move(e));
      continue;
    }
    REQUIRE(consumed == 0);
    out.push_back(std::move(e));
    return out;
  }
}

// Feeds `in` one byte at a time into a buffer, as a connection would.
std::vector<event> parse_bytewise(parser& p, std::string_view in) {
  std::vector<event> out;
  std::string buffer;
  for (size_t i = 0; i <= in.size(); ++i) {
    for (;;) {
      event e;
      size_t consumed = 0;
      e.status = p.parse(buffer, consumed, e.f);
      if (e.status == parse_status::frame || e.status == parse_status::heartbeat) {
        REQUIRE(consumed > 0);
        REQUIRE(consumed <= buffer.size());
        buffer.erase(0, consumed);
        out.push_back(std::move(e));
        continue;
      }
      REQUIRE(consumed == 0);
      if (e.status == parse_status::error || i == in.size()) {
        out.push_back(std::move(e));
        return out;
      }
      break;
    }
    buffer += in[i];
  }
  return out;
}

bool same_events(const std::vector<event>& a, const std::vector<event>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].status != b[i].status) return false;
    if (a[i].status != parse_status::frame) continue;
    const frame& x = a[i].f;
    const frame& y = b[i].f;
    if (x.command != y.command || x.headers != y.headers || x.body != y.body) return false;
  }
  return true;
}

parse_status parse_one(std::string_view in, frame& out, version v = version::v1_2, size_t* used = nullptr,
                       limits l = {}) {
  parser p(l);
  p.set_version(v);
  size_t consumed = 0;
  const auto st = p.parse(in, consumed, out);
  if (used) *used = consumed;
  return st;
}

const std::vector<std::string> all_commands = {
    "CONNECT", "STOMP", "CONNECTED", "SEND",  "SUBSCRIBE", "UNSUBSCRIBE", "ACK",   "NACK",
    "BEGIN",   "COMMIT", "ABORT",    "DISCONNECT", "MESSAGE", "RECEIPT", "ERROR",
};

}  // namespace

TEST_CASE("stomp: every command round-trips in every version", "[stomp]") {
  for (const auto v : {version::v1_0, version::v1_1, version::v1_2}) {
    for (const auto& command : all_commands) {
      CAPTURE(command, static_cast<int>(v));
      const bool escaping = v != version::v1_0 && command != "CONNECT" && command != "STOMP" &&
                            command != "CONNECTED";
      frame f;
      f.command = command;
      f.headers = {{"destination", "/queue/a"}, {"receipt", "77"}, {"x-url", "http://h:1/p"}};
      if (escaping) {
        f.headers.emplace_back("odd:name", "line1\nline2\\back:colon");
        if (v == version::v1_2) f.headers.emplace_back("cr", "a\rb");
      }
      for (const std::string& body : {""s, "hello"s, "with\0nul\0"s}) {
        f.body = body;
        const std::string wire = encode(f, v);
        parser p;
        p.set_version(v);
        frame got;
        size_t consumed = 0;
        REQUIRE(p.parse(wire, consumed, got) == parse_status::frame);
        CHECK(consumed + 1 == wire.size());  // the LF after the NUL is left: a heart-beat
        frame want = f;
        if (!body.empty()) want.set("content-length", std::to_string(body.size()));
        CHECK(got.command == want.command);
        CHECK(got.headers == want.headers);
        CHECK(got.body == want.body);
      }
    }
  }
}

TEST_CASE("stomp: encode writes the spec's frame layout", "[stomp]") {
  frame f;
  f.command = "MESSAGE";
  f.headers = {{"destination", "/queue/a"}, {"message-id", "m:1"}};
  CHECK(encode(f, version::v1_2) == "MESSAGE\ndestination:/queue/a\nmessage-id:m\\c1\n\n\0\n"s);
  CHECK(encode(f, version::v1_0) == "MESSAGE\ndestination:/queue/a\nmessage-id:m:1\n\n\0\n"s);
  f.body = "hi";
  CHECK(encode(f, version::v1_2) == "MESSAGE\ndestination:/queue/a\nmessage-id:m\\c1\ncontent-length:2\n\nhi\0\n"s);
  // A wrong content-length from the caller is corrected in place; repeats are dropped.
  f.headers = {{"content-length", "99"}, {"a", "b"}, {"content-length", "1"}};
  CHECK(encode(f, version::v1_2) == "MESSAGE\ncontent-length:2\na:b\n\nhi\0\n"s);
  f.body.clear();
  CHECK(encode(f, version::v1_2) == "MESSAGE\ncontent-length:0\na:b\n\n\0\n"s);
}

TEST_CASE("stomp: header names that cannot be written as they are are left out", "[stomp]") {
  // Names come from AMQP headers tables too, where any octet goes.
  frame f;
  f.command = "MESSAGE";
  f.body = "BODYBODY";
  f.headers = {{"a", "1"}, {"content-length\0"s, "2"}, {"", "empty"}, {"\0"s, "nul"},
               {"content-length\r", "3"}, {"b", "4"}};
  CHECK(encode(f, version::v1_2) ==
        "MESSAGE\na:1\ncontent-length\\r:3\nb:4\ncontent-length:8\n\nBODYBODY\0\n"s);
  CHECK(encode(f, version::v1_1) == "MESSAGE\na:1\nb:4\ncontent-length:8\n\nBODYBODY\0\n"s);
  // 1.0 escapes nothing: LF and CR are dropped, and a ':' would move the split.
  f.headers = {{"a", "1"}, {"\n", "lf"}, {"content-length\n", "2"}, {"k:x", "v"}, {"b", "x:y"}};
  CHECK(encode(f, version::v1_0) == "MESSAGE\na:1\nb:x:y\ncontent-length:8\n\nBODYBODY\0\n"s);
  for (auto v : {version::v1_0, version::v1_1, version::v1_2}) {
    const std::string wire = encode(f, v);
    frame back;
    size_t used = 0;
    REQUIRE(parse_one(wire, back, v, &used) == parse_status::frame);
    CHECK(used + 1 == wire.size());
    CHECK(back.body == "BODYBODY");
  }
}

TEST_CASE("stomp: content-length bodies may hold NULs", "[stomp]") {
  const std::string body = "a\0b\0\0c"s;
  const std::string wire = "SEND\ndestination:/q\ncontent-length:6\n\n"s + body + "\0"s + "SEND\n\nx\0"s;
  parser p;
  const auto events = parse_all(p, wire);
  REQUIRE(events.size() == 3);
  REQUIRE(events[0].status == parse_status::frame);
  CHECK(events[0].f.body == body);
  CHECK(*events[0].f.header("content-length") == "6");
  REQUIRE(events[1].status == parse_status::frame);
  CHECK(events[1].f.body == "x");
  CHECK(events[2].status == parse_status::need_more);

  SECTION("the octet after the body must be NUL") {
    frame f;
    CHECK(parse_one("SEND\ncontent-length:2\n\nabc\0"s, f) == parse_status::error);
  }
  SECTION("content-length must be decimal digits") {
    frame f;
    for (const auto& bad : {"SEND\ncontent-length:\n\n\0"s, "SEND\ncontent-length:-1\n\n\0"s,
                           "SEND\ncontent-length: 1\n\nx\0"s, "SEND\ncontent-length:0x1\n\nx\0"s}) {
      CAPTURE(bad);
      CHECK(parse_one(bad, f) == parse_status::error);
    }
  }
  SECTION("the first content-length wins") {
    frame f;
    REQUIRE(parse_one("SEND\ncontent-length:1\ncontent-length:junk\n\n\0\0"s, f) == parse_status::frame);
    CHECK(f.body == "\0"s);
  }
}

TEST_CASE("stomp: without content-length the body ends at the first NUL", "[stomp]") {
  frame f;
  size_t used = 0;
  REQUIRE(parse_one("SEND\ndestination:/q\n\nhello\0world\0"s, f, version::v1_2, &used) == parse_status::frame);
  CHECK(f.body == "hello");
  CHECK(used == 27);
  REQUIRE(parse_one("DISCONNECT\n\n\0"s, f) == parse_status::frame);
  CHECK(f.command == "DISCONNECT");
  CHECK(f.headers.empty());
  CHECK(f.body.empty());
}

TEST_CASE("stomp: CRLF line ends", "[stomp]") {
  frame f;
  size_t used = 0;
  const auto wire = "SEND\r\ndestination:/q\r\nreceipt:r1\r\n\r\nbody\r\n\0"s;
  for (const auto v : {version::v1_0, version::v1_1, version::v1_2}) {
    REQUIRE(parse_one(wire, f, v, &used) == parse_status::frame);
    CHECK(used == wire.size());
    CHECK(f.command == "SEND");
    CHECK(f.headers == std::vector<std::pair<std::string, std::string>>{{"destination", "/q"}, {"receipt", "r1"}});
    CHECK(f.body == "body\r\n");  // the body is octets, CRLF included
  }
  // A CR that does not start an EOL: an error in the command, and in 1.2 headers.
  CHECK(parse_one("SE\rND\n\n\0"s, f) == parse_status::error);
  CHECK(parse_one("SEND\na:b\rc\n\n\0"s, f, version::v1_2) == parse_status::error);
  REQUIRE(parse_one("SEND\na:b\rc\n\n\0"s, f, version::v1_1) == parse_status::frame);
  CHECK(*f.header("a") == "b\rc");
}

TEST_CASE("stomp: input split at every byte gives the same frames", "[stomp]") {
  const std::string stream = "\nCONNECT\r\naccept-version:1.2\r\nhost:h\r\n\r\n\0"s
                             "\r\n"
                             "SEND\ndestination:/q\ncontent-length:5\n\na\0b\0c\0\n\n"s
                             "SEND\ndestination:/q\n\nplain body\0"s
                             "ACK\nid:x\\cy\n\n\0"s;
  for (const auto v : {version::v1_0, version::v1_2}) {
    parser whole;
    whole.set_version(v);
    parser split;
    split.set_version(v);
    const auto a = parse_all(whole, stream);
    const auto b = parse_bytewise(split, stream);
    CHECK(same_events(a, b));
    REQUIRE(a.size() == 9);
    CHECK(a[0].status == parse_status::heartbeat);
    CHECK(a[1].f.command == "CONNECT");
    CHECK(a[2].status == parse_status::heartbeat);
    CHECK(a[3].f.body == "a\0b\0c"s);
    CHECK(a[4].status == parse_status::heartbeat);
    CHECK(a[5].status == parse_status::heartbeat);
    CHECK(a[6].f.body == "plain body");
    CHECK(*a[7].f.header("id") == (v == version::v1_2 ? "x:y" : "x\\cy"));
    CHECK(a[8].status == parse_status::need_more);
  }
}

TEST_CASE("stomp: need_more until the last byte, then the frame", "[stomp]") {
  const std::string wire = "MESSAGE\r\nsubscription:0\r\ncontent-length:3\r\n\r\nab\0\0"s;
  parser p;
  frame f;
  size_t consumed = 99;
  for (size_t i = 0; i < wire.size(); ++i) {
    CAPTURE(i);
    REQUIRE(p.parse(std::string_view(wire).substr(0, i), consumed, f) == parse_status::need_more);
    CHECK(consumed == 0);
  }
  REQUIRE(p.parse(wire, consumed, f) == parse_status::frame);
  CHECK(consumed == wire.size());
  CHECK(f.body == "ab\0"s);

  SECTION("a caller that shrinks its buffer starts over") {
    parser q;
    REQUIRE(q.parse("SEND\ndestination:/q\n", consumed, f) == parse_status::need_more);
    REQUIRE(q.parse("ACK\n\n\0"s, consumed, f) == parse_status::frame);
    CHECK(f.command == "ACK");
  }
}

TEST_CASE("stomp: heart-beats are lone EOLs between frames", "[stomp]") {
  parser p;
  frame f;
  size_t consumed = 0;
  CHECK(p.parse("", consumed, f) == parse_status::need_more);
  CHECK(p.parse("\n", consumed, f) == parse_status::heartbeat);
  CHECK(consumed == 1);
  CHECK(p.parse("\r", consumed, f) == parse_status::need_more);
  CHECK(p.parse("\r\n", consumed, f) == parse_status::heartbeat);
  CHECK(consumed == 2);
  CHECK(p.parse("\r\nSEND", consumed, f) == parse_status::heartbeat);
  CHECK(consumed == 2);
  CHECK(p.parse("\rX", consumed, f) == parse_status::error);
  // EOLs after a frame's NUL come back as heart-beats.
  const auto events = parse_all(p, "SEND\n\n\0\n\r\n\n"s);
  REQUIRE(events.size() == 5);
  CHECK(events[0].status == parse_status::frame);
  CHECK(events[1].status == parse_status::heartbeat);
  CHECK(events[2].status == parse_status::heartbeat);
  CHECK(events[3].status == parse_status::heartbeat);
  CHECK(events[4].status == parse_status::need_more);
}

TEST_CASE("stomp: header escaping (STOMP 1.2 Value Encoding)", "[stomp]") {
  std::string out;
  SECTION("unescape") {
    REQUIRE(unescape("a\\nb\\cc\\\\d", version::v1_1, out));
    CHECK(out == "a\nb:c\\d");
    REQUIRE(unescape("a\\rb", version::v1_2, out));
    CHECK(out == "a\rb");
    CHECK_FALSE(unescape("a\\rb", version::v1_1, out));  // \r is 1.2 only
    CHECK_FALSE(unescape("\\t", version::v1_2, out));
    CHECK_FALSE(unescape("end\\", version::v1_2, out));
    REQUIRE(unescape("a\\tb\\", version::v1_0, out));  // 1.0 has no escapes
    CHECK(out == "a\\tb\\");
  }
  SECTION("escape") {
    CHECK(escape("a\nb:c\\d\re", version::v1_2) == "a\\nb\\cc\\\\d\\re");
    CHECK(escape("a\nb:c\\d\re", version::v1_1) == "a\\nb\\cc\\\\de");  // CR cannot be carried
    CHECK(escape("a\nb:c\\d\re\0f"s, version::v1_0) == "ab:c\\def");   // no line breaks in 1.0
    for (const auto v : {version::v1_1, version::v1_2}) {
      const std::string s = "::\\\\n\n\\c";
      REQUIRE(unescape(escape(s, v), v, out));
      CHECK(out == s);
    }
  }
  SECTION("the parser unescapes 1.1 and 1.2 headers, names too") {
    frame f;
    REQUIRE(parse_one("SEND\nna\\cme:v\\na\\\\l\\cue\n\n\0"s, f, version::v1_1) == parse_status::frame);
    CHECK(f.headers.at(0) == std::pair<std::string, std::string>{"na:me", "v\na\\l:ue"});
    REQUIRE(parse_one("SEND\nk:a\\rb\n\n\0"s, f, version::v1_2) == parse_status::frame);
    CHECK(*f.header("k") == "a\rb");
    REQUIRE(parse_one("SEND\nk:a\\nb\\t\n\n\0"s, f, version::v1_0) == parse_status::frame);
    CHECK(*f.header("k") == "a\\nb\\t");
  }
  SECTION("CONNECT, STOMP and CONNECTED are never unescaped") {
    frame f;
    for (const auto command : {"CONNECT", "STOMP", "CONNECTED"}) {
      REQUIRE(parse_one(std::string(command) + "\nlogin:a\\nb\\t:c\n\n\0"s, f, version::v1_2) == parse_status::frame);
      CHECK(*f.header("login") == "a\\nb\\t:c");
    }
    f.command = "CONNECTED";
    f.headers = {{"server", "warren:1\\x"}};
    CHECK(encode(f, version::v1_2) == "CONNECTED\nserver:warren:1\\x\n\n\0\n"s);
  }
  SECTION("an undefined escape is an error") {
    frame f;
    parser p;
    p.set_version(version::v1_2);
    size_t consumed = 0;
    CHECK(p.parse("SEND\nk:a\\tb\n\n\0"s, consumed, f) == parse_status::error);
    CHECK_FALSE(p.error().empty());
    CHECK(parse_one("SEND\nk:a\\\n\n\0"s, f, version::v1_2) == parse_status::error);
    CHECK(parse_one("SEND\nk\\x:a\n\n\0"s, f, version::v1_2) == parse_status::error);
    CHECK(parse_one("SEND\nk:\\r\n\n\0"s, f, version::v1_1) == parse_status::error);
  }
  SECTION("encode never lets a header value break the frame") {
    frame f;
    f.command = "MESSAGE";
    f.headers = {{"evil", "x\n\nINJECTED\0"s}};
    for (const auto v : {version::v1_0, version::v1_1, version::v1_2}) {
      frame got;
      const auto wire = encode(f, v);
      size_t used = 0;
      REQUIRE(parse_one(wire, got, v, &used) == parse_status::frame);
      CHECK(used + 1 == wire.size());
      CHECK(got.headers.size() == 1);
    }
  }
}

TEST_CASE("stomp: repeated headers are kept and the first one wins", "[stomp]") {
  frame f;
  REQUIRE(parse_one("MESSAGE\nfoo:World\nfoo:Hello\nbar:1\n\n\0"s, f) == parse_status::frame);
  REQUIRE(f.headers.size() == 3);
  CHECK(*f.header("foo") == "World");
  CHECK(f.header("missing") == nullptr);
  f.set("foo", "again");
  CHECK(f.headers == std::vector<std::pair<std::string, std::string>>{{"foo", "again"}, {"bar", "1"}});
  f.set("new", "v");
  CHECK(f.headers.back() == std::pair<std::string, std::string>{"new", "v"});
}

TEST_CASE("stomp: malformed frames are errors with a reason", "[stomp]") {
  const std::vector<std::string> bad = {
      "SEND\nno-colon\n\n\0"s,          // header line without ':'
      "SEND\n:value\n\n\0"s,            // empty header name
      "SE ND\n\n\0"s,                   // space in the command
      "\0SEND\n\n\0"s,                  // stray NUL before a command
      "SEND\nk:v\0x\n\n\0"s,            // NUL inside a header
      "AMQP\0\0\x09\x01"s,              // another protocol's greeting
  };
  for (const auto& wire : bad) {
    CAPTURE(wire);
    parser p;
    p.set_version(version::v1_2);
    frame f;
    size_t consumed = 7;
    REQUIRE(p.parse(wire, consumed, f) == parse_status::error);
    CHECK(consumed == 0);
    CHECK_FALSE(p.error().empty());
  }
  // Unknown commands are frames: the server decides what to do with them.
  frame f;
  REQUIRE(parse_one("FROB\nx:y\n\n\0"s, f) == parse_status::frame);
  CHECK(f.command == "FROB");
}

TEST_CASE("stomp: limits are enforced before anything is buffered", "[stomp]") {
  frame f;
  size_t consumed = 0;

  SECTION("too many headers: an error before the frame is complete") {
    limits l;
    l.max_headers = 3;
    parser p(l);
    std::string wire = "SEND\n";
    for (int i = 0; i < 3; ++i) wire += "h" + std::to_string(i) + ":v\n";
    CHECK(p.parse(wire, consumed, f) == parse_status::need_more);
    wire += "h3:v\n";  // no blank line and no NUL yet
    const size_t before = allocated_bytes.load();
    const auto status = p.parse(wire, consumed, f);
    const size_t used = allocated_bytes.load() - before;
    CHECK(status == parse_status::error);
    CHECK(used < 256);  // the error message only
    CHECK(p.error().find("headers") != std::string::npos);
    CHECK(f.headers.empty());
  }
  SECTION("a header line over the limit, before its EOL arrives") {
    limits l;
    l.max_header_line = 100;
    parser p(l);
    const std::string ok = "SEND\nk:" + std::string(98, 'v') + "\r\n\r\n\0"s;
    REQUIRE(p.parse(ok, consumed, f) == parse_status::frame);
    const std::string wire = "SEND\nk:" + std::string(200, 'v');
    CHECK(p.parse(wire, consumed, f) == parse_status::error);
    CHECK(p.parse(std::string(101, 'A'), consumed, f) == parse_status::error);  // command line too
  }
  SECTION("a huge content-length is refused at once, without allocating") {
    parser p;
    const std::string wire = "SEND\ndestination:/q\ncontent-length:1099511627776\n";
    const size_t before = allocated_bytes.load();
    const auto status = p.parse(wire, consumed, f);
    const size_t used = allocated_bytes.load() - before;
    CHECK(status == parse_status::error);
    CHECK(used < 256);
    CHECK(p.error().find("content-length") != std::string::npos);
    CHECK(p.parse("SEND\ncontent-length:99999999999999999999999999999999\n", consumed, f) == parse_status::error);
  }
  SECTION("a frame over max_frame_bytes, with and without content-length") {
    limits l;
    l.max_frame_bytes = 64;
    parser p(l);
    CHECK(p.parse("SEND\ncontent-length:60\n\n", consumed, f) == parse_status::error);
    CHECK(p.parse("SEND\n\n" + std::string(100, 'x'), consumed, f) == parse_status::error);
    const std::string fits = "SEND\n\n" + std::string(57, 'x') + "\0"s;  // exactly 64 bytes
    REQUIRE(fits.size() == 64);
    CHECK(p.parse(fits, consumed, f) == parse_status::frame);
    CHECK(p.parse("SEND\n\n" + std::string(58, 'x') + "\0"s, consumed, f) == parse_status::error);
  }
  SECTION("need_more allocates nothing while a large body arrives") {
    parser p;
    std::string wire = "SEND\ncontent-length:1000000\n\n";
    wire.reserve(wire.size() + 1000001);
    bool all_need_more = true;
    const size_t before = allocated_bytes.load();
    for (int i = 0; i < 100; ++i) {
      wire.append(10000, 'b');
      all_need_more = all_need_more && p.parse(wire, consumed, f) == parse_status::need_more;
    }
    const size_t used = allocated_bytes.load() - before;
    CHECK(all_need_more);
    CHECK(used == 0);
    wire += '\0';
    REQUIRE(p.parse(wire, consumed, f) == parse_status::frame);
    CHECK(f.body.size() == 1000000);
  }
}

TEST_CASE("stomp: mutated frames fail cleanly", "[stomp]") {
  const std::vector<std::string> seeds = {
      "CONNECT\naccept-version:1.0,1.1,1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0"s,
      "SEND\r\ndestination:/queue/a\r\ncontent-length:5\r\n\r\nx\0y\0z\0\n"s,
      "SUBSCRIBE\nid:0\ndestination:/topic/t\nack:client\nselector:a = 'b'\n\n\0"s,
      "MESSAGE\nmessage-id:1\nk:a\\cb\\nc\\\\d\\re\n\nbody\0\r\n"s,
      "\n\nACK\nid:1\n\n\0NACK\nid:2\n\n\0"s,
  };
  std::mt19937 rng(20240511);
  const auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  const std::string interesting = "\n\r\0:\\0123456789cnrA"s;
  size_t frames = 0;
  size_t errors = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string s = seeds[pick(seeds.size())];
    const size_t mutations = 1 + pick(4);
    for (size_t m = 0; m < mutations && !s.empty(); ++m) {
      const size_t at = pick(s.size());
      switch (pick(4)) {
        case 0: s[at] = static_cast<char>(pick(256)); break;
        case 1: s[at] = interesting[pick(interesting.size())]; break;
        case 2: s.insert(at, 1, interesting[pick(interesting.size())]); break;
        default: s.erase(at, 1 + pick(3)); break;
      }
    }
    limits l;
    if (round % 2 == 1) {
      l.max_frame_bytes = 1 + pick(80);
      l.max_headers = pick(5);
      l.max_header_line = 1 + pick(40);
    }
    const auto v = static_cast<version>(pick(3));
    parser whole(l);
    whole.set_version(v);
    const auto a = parse_all(whole, s);
    for (const auto& e : a) {
      if (e.status == parse_status::frame) ++frames;
      if (e.status == parse_status::error) ++errors;
    }
    parser split(l);
    split.set_version(v);
    const auto b = parse_bytewise(split, s);
    CAPTURE(s, round);
    REQUIRE(same_events(a, b));
  }
  CHECK(frames > 0);
  CHECK(errors > 0);

  SECTION("random octets") {
    parser p;
    for (int round = 0; round < 2000; ++round) {
      std::string s(pick(64), '\0');
      for (auto& c : s) c = static_cast<char>(pick(256));
      p.reset();
      parse_all(p, s);
    }
  }
}

TEST_CASE("stomp: an encoded frame ends with NUL and LF, and the LF parses as a heart-beat",
          "[stomp]") {
  frame f;
  f.command = "MESSAGE";
  f.headers = {{"destination", "/queue/a"}};
  f.body = "abc";
  const std::string wire = encode(f, version::v1_2) + encode(f, version::v1_2);
  REQUIRE(wire.substr(wire.size() - 5) == "abc\0\n"s);
  parser p;
  p.set_version(version::v1_2);
  const auto events = parse_all(p, wire);
  REQUIRE(events.size() == 5);
  CHECK(events[0].f.body == "abc");
  CHECK(events[1].status == parse_status::heartbeat);
  CHECK(events[2].f.body == "abc");
  CHECK(events[3].status == parse_status::heartbeat);
  CHECK(events[4].status == parse_status::need_more);
}
