// actors/access: permission patterns as RabbitMQ's internal backend matches them, the refusal
// texts, and which addresses count as loopback.
#include <catch2/catch.hpp>

#include <regex.h>

#include "actors/access.hpp"

using namespace warren::access;

TEST_CASE("a pattern matches anywhere in the name, as an unanchored search", "[access]") {
  pattern p{"c-"};
  CHECK(p.matches("c-q"));
  CHECK(p.matches("abc-q"));
  CHECK_FALSE(p.matches("q"));
  pattern anchored{"^c-"};
  CHECK(anchored.matches("c-q"));
  CHECK_FALSE(anchored.matches("abc-q"));
}

TEST_CASE("the empty pattern matches only the empty name, .* everything", "[access]") {
  pattern empty{""};
  CHECK(empty.matches(""));
  CHECK_FALSE(empty.matches("q"));
  pattern all{".*"};
  CHECK(all.matches(""));
  CHECK(all.matches("anything at all"));
  CHECK_FALSE(all.costly());
  CHECK(pattern{"^(a|b)$"}.costly());
}

TEST_CASE("an anchored literal opening decides as the regular expression does", "[access]") {
  // The check of the literal opening is a shortcut: every answer must be the search's, which
  // POSIX regexec gives for these expressions (all of them valid POSIX as they are).
  const char* patterns[] = {"^orders\\.", "^orders\\.eu$", "^orders", "^orders$", "^ord+ers",
                            "^orders?", "^order*s", "^o{2}", "^ord(ers)?", "^ord[e]rs",
                            "^ord.rs", "^a|^orders", "^orders\\.+", "^", "^$", "^orders$x",
                            "^\\^caret", "^or\\.*ders", "orders", "^\xc3\xa9+t\xc3\xa9",
                            "^\\$x", "^ord\\>", "^\\<ord", "^or\\-d"};
  const char* names[] = {"orders", "orders.", "orders.eu", "orders.eu.1", "order", "ordders",
                         "ordrs", "oo", "ord", "ordxrs", "a", "orders..", "", "^caret",
                         "or...ders", "ordersx", "\xc3\xa9t\xc3\xa9",
                         "\xc3\xa9\xc3\xa9t\xc3\xa9", "$x", "xorders", "ordes", "ord", "<ord", "ord.x", "or-d"};
  for (auto* source : patterns) {
    regex_t re;
    REQUIRE(regcomp(&re, source, REG_EXTENDED | REG_NOSUB) == 0);
    pattern p{source};
    for (auto* name : names) {
      INFO("pattern " << source << ", name " << name);
      CHECK(p.matches(name) == (regexec(&re, name, 0, nullptr, 0) == 0));
    }
    regfree(&re);
  }
}

TEST_CASE("an invalid regular expression is reported, and grants nothing", "[access]") {
  CHECK(invalid_pattern("("));
  CHECK(invalid_pattern("[a-"));
  CHECK(invalid_pattern(std::string(100000, '(') + "a" + std::string(100000, ')')));
  CHECK(invalid_pattern(std::string(65, '(') + "a" + std::string(65, ')')));
  CHECK_FALSE(invalid_pattern(std::string(64, '(') + "a" + std::string(64, ')')));
  CHECK(invalid_pattern(std::string(5000, 'a')));
  CHECK_FALSE(invalid_pattern("^amq\\.gen-.*$"));
  CHECK_FALSE(invalid_pattern(""));
  CHECK_FALSE(pattern{"("}.matches("("));
}

TEST_CASE("vhost permissions check each kind of access on its own pattern", "[access]") {
  vhost_permissions p{"^c-", "^w-", "^r-"};
  CHECK(p.granted());
  CHECK(p.allows(perm::configure, kind::queue, "c-q"));
  CHECK_FALSE(p.allows(perm::write, kind::queue, "c-q"));
  CHECK(p.allows(perm::write, kind::exchange, "w-x"));
  CHECK(p.allows(perm::read, kind::queue, "r-q"));
  CHECK_FALSE(p.allows(perm::read, kind::queue, "c-q"));
  // Asked again: the remembered answer is the same.
  CHECK(p.allows(perm::configure, kind::queue, "c-q"));
  CHECK_FALSE(p.allows(perm::read, kind::queue, "c-q"));
}

TEST_CASE("the default exchange is checked as amq.default", "[access]") {
  vhost_permissions p{"", "^amq\\.default$", ""};
  CHECK(p.allows(perm::write, kind::exchange, ""));
  CHECK_FALSE(p.allows(perm::write, kind::queue, "x"));
  vhost_permissions none_but_empty{"", "", ""};
  CHECK_FALSE(none_but_empty.allows(perm::write, kind::exchange, ""));
}

TEST_CASE("no permission entry allows nothing", "[access]") {
  vhost_permissions none;
  CHECK_FALSE(none.granted());
  CHECK_FALSE(none.allows(perm::read, kind::queue, ""));
  CHECK_FALSE(none.allows(perm::configure, kind::exchange, "x"));
}

TEST_CASE("the remembered answers stay right past the cache's bound", "[access]") {
  vhost_permissions p{"^q[0-9]*7$", ".*", ".*"};
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < 1000; ++i) {
      auto name = "q" + std::to_string(i);
      CHECK(p.allows(perm::configure, kind::queue, name) == (i % 10 == 7));
    }
}

TEST_CASE("refusal texts are RabbitMQ's", "[access]") {
  CHECK(refused_text(kind::queue, "x", "/", "bob") ==
        "ACCESS_REFUSED - access to queue 'x' in vhost '/' refused for user 'bob'");
  CHECK(refused_text(kind::exchange, "", "v", "bob") ==
        "ACCESS_REFUSED - access to exchange 'amq.default' in vhost 'v' refused for user 'bob'");
  CHECK(vhost_refused_text("/", "nop") == "NOT_ALLOWED - access to vhost '/' refused for user 'nop'");
}

TEST_CASE("loopback addresses", "[access]") {
  CHECK(is_loopback_address("127.0.0.1"));
  CHECK(is_loopback_address("127.1.2.3"));
  CHECK(is_loopback_address("::1"));
  CHECK(is_loopback_address("::ffff:127.0.0.1"));
  CHECK_FALSE(is_loopback_address("10.77.0.1"));
  CHECK_FALSE(is_loopback_address("::ffff:10.0.0.1"));
  CHECK_FALSE(is_loopback_address("0.0.0.0"));
  CHECK_FALSE(is_loopback_address("not an address"));
}

TEST_CASE("PCRE spellings mean what they mean in RabbitMQ", "[access]") {
  CHECK(pattern{"^q\\d+$"}.matches("q42"));
  CHECK_FALSE(pattern{"^q\\d+$"}.matches("qx"));
  CHECK(pattern{"^\\D"}.matches("x1"));
  CHECK(pattern{"^[\\w.-]+$"}.matches("a.b-c_d"));
  CHECK_FALSE(pattern{"^[\\w.-]+$"}.matches("a b"));
  CHECK_FALSE(pattern{"^[\\w.-]+$"}.matches("a\\b"));
  CHECK(pattern{"^[\\]x]$"}.matches("]"));
  CHECK(pattern{"^(?:amq|app)\\."}.matches("app.q"));
  CHECK_FALSE(pattern{"^(?:amq|app)\\."}.matches("appxq"));
  CHECK(pattern{"^a.*?b$"}.matches("axxb"));
  CHECK(pattern{"^[[:alpha:]]+$"}.matches("abc"));
  CHECK_FALSE(pattern{"^[[:alpha:]]+$"}.matches("ab1"));
}

TEST_CASE("matching takes no time and no stack to speak of, whatever the name", "[access]") {
  // Patterns that make a backtracking matcher take exponential time or recurse per character.
  pattern nested{"^([a-z0-9]+-?)*$"};
  CHECK_FALSE(nested.matches(std::string(200, 'a') + "!"));
  CHECK(nested.matches(std::string(200, 'a')));
  pattern prefix{"^app\\..*"};
  CHECK(prefix.matches("app." + std::string(100000, 'a')));
  pattern alternation{"^((a)|(b)|(c)|.)*$"};
  CHECK(alternation.matches(std::string(100000, 'b')));
  vhost_permissions p{"^app\\.", ".*", ".*"};
  CHECK(p.allows(perm::configure, kind::queue, "app." + std::string(70000, 'x')));
}
