// Unit tests for SUBSCRIBE selectors (JMS 1.1 §3.8.1.1 SQL-92 subset): every operator,
// precedence, SQL three-valued logic, LIKE with ESCAPE, IN, BETWEEN, arithmetic on numeric
// header strings, NULL handling, error positions, the safety bounds, and mutated selectors.
#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "protocol/stomp/selector.hpp"

using namespace warren::stomp::selector;

namespace {

using headers = std::map<std::string, std::string, std::less<>>;

lookup_fn lookup_in(headers h) {
  return [h = std::move(h)](std::string_view name) -> std::optional<std::string> {
    const auto it = h.find(name);
    if (it == h.end()) return std::nullopt;
    return it->second;
  };
}

std::shared_ptr<const expression> compile(std::string_view text) {
  auto r = parse(text);
  INFO("selector: " << text);
  INFO("error: " << (r.error ? r.error->message : std::string()));
  REQUIRE(r.expr != nullptr);
  REQUIRE_FALSE(r.error.has_value());
  return r.expr;
}

bool sel(std::string_view text, const headers& h = {}) { return matches(*compile(text), lookup_in(h)); }

value eval(std::string_view text, const headers& h = {}) { return evaluate(*compile(text), lookup_in(h)); }

bool is_unknown(std::string_view text, const headers& h = {}) {
  return std::holds_alternative<std::monostate>(eval(text, h).v);
}

parse_error error_of(std::string_view text) {
  auto r = parse(text);
  INFO("selector: " << text);
  REQUIRE(r.expr == nullptr);
  REQUIRE(r.error.has_value());
  return *r.error;
}

}  // namespace

TEST_CASE("selector: comparison operators on numbers", "[stomp]") {
  const headers h = {{"n", "5"}, {"price", "10.5"}, {"big", "1000"}};
  CHECK(sel("n = 5", h));
  CHECK_FALSE(sel("n = 6", h));
  CHECK(sel("n <> 6", h));
  CHECK_FALSE(sel("n <> 5", h));
  CHECK(sel("n < 10", h));
  CHECK_FALSE(sel("n < 5", h));
  CHECK(sel("n <= 5", h));
  CHECK(sel("n > 4", h));
  CHECK_FALSE(sel("n > 5", h));
  CHECK(sel("n >= 5.0", h));
  CHECK(sel("price > 9.99", h));
  CHECK(sel("price = 10.5", h));
  CHECK(sel("big = 1e3", h));
  CHECK(sel("big = 1E+3", h));
  CHECK(sel("n = .5e1", h));
  CHECK(sel("5 = n", h));
  CHECK(sel("1 < 2"));
  CHECK(sel("2.5 > 2"));
}

TEST_CASE("selector: strings compare with = and <> only", "[stomp]") {
  const headers h = {{"color", "red"}, {"q", "it's"}, {"n", "5"}};
  CHECK(sel("color = 'red'", h));
  CHECK_FALSE(sel("color = 'Red'", h));
  CHECK(sel("color <> 'blue'", h));
  CHECK(sel("q = 'it''s'", h));
  CHECK(sel("'red' = color", h));
  // Ordering strings is UNKNOWN: neither the comparison nor its negation matches.
  CHECK(is_unknown("color < 'z'", h));
  CHECK_FALSE(sel("NOT color < 'z'", h));
  CHECK(is_unknown("'a' < 'b'"));
  // A header next to a string literal is a string, even when it looks numeric.
  CHECK(sel("n = '5'", h));
  CHECK_FALSE(sel("n = '5.0'", h));
  // A string literal is never a number.
  CHECK(is_unknown("'5' = 5"));
  // A non-numeric header next to a number is UNKNOWN.
  CHECK(is_unknown("color = 5", h));
  CHECK(is_unknown("color <> 5", h));
}

TEST_CASE("selector: booleans", "[stomp]") {
  const headers h = {{"flag", "true"}, {"off", "FALSE"}, {"word", "yes"}};
  CHECK(sel("TRUE"));
  CHECK_FALSE(sel("FALSE"));
  CHECK(sel("flag = TRUE", h));
  CHECK(sel("flag", h));
  CHECK(sel("NOT off", h));
  CHECK(sel("off = false", h));
  CHECK(sel("flag <> off", h));  // two header strings compare as strings
  CHECK(is_unknown("word = TRUE", h));
  CHECK(is_unknown("TRUE < FALSE"));
  CHECK(is_unknown("TRUE = 1"));
  CHECK(sel("(1 < 2) = TRUE"));
}

TEST_CASE("selector: precedence and parentheses", "[stomp]") {
  // NOT binds tighter than AND, AND tighter than OR.
  CHECK(sel("a = 1 OR b = 2 AND c = 3", {{"a", "1"}, {"b", "0"}, {"c", "0"}}));
  CHECK_FALSE(sel("a = 1 OR b = 2 AND c = 3", {{"a", "0"}, {"b", "2"}, {"c", "0"}}));
  CHECK_FALSE(sel("(a = 1 OR b = 2) AND c = 3", {{"a", "1"}, {"b", "0"}, {"c", "0"}}));
  CHECK(sel("NOT a = 1 AND b = 2", {{"a", "0"}, {"b", "2"}}));
  CHECK_FALSE(sel("NOT (a = 1 AND b = 2) AND b = 2", {{"a", "1"}, {"b", "2"}}));
  CHECK(sel("NOT NOT TRUE"));
  CHECK(sel("TRUE OR FALSE AND FALSE"));
  CHECK_FALSE(sel("(TRUE OR FALSE) AND FALSE"));
  // Arithmetic: * and / before + and -, left to right, unary signs tightest.
  CHECK(sel("2 + 3 * 4 = 14"));
  CHECK(sel("(2 + 3) * 4 = 20"));
  CHECK(sel("10 - 4 - 3 = 3"));
  CHECK(sel("100 / 10 / 5 = 2"));
  CHECK(sel("-2 * -3 = 6"));
  CHECK(sel("- (2 + 3) = -5"));
  CHECK(sel("+4 = 4"));
  CHECK(sel("1 + 2 < 2 * 2"));
  CHECK(sel("color = 'red' and n between 1 and 10 or not TRUE", {{"color", "red"}, {"n", "3"}}));
}

TEST_CASE("selector: SQL three-valued logic", "[stomp]") {
  // `missing = 1` is UNKNOWN.
  CHECK(is_unknown("missing = 1"));
  CHECK(is_unknown("NOT missing = 1"));
  CHECK_FALSE(sel("missing = 1"));
  CHECK_FALSE(sel("NOT missing = 1"));
  CHECK_FALSE(sel("NOT (missing = 1)"));
  // UNKNOWN AND FALSE = FALSE; UNKNOWN AND TRUE = UNKNOWN.
  CHECK(std::get<bool>(eval("missing = 1 AND FALSE").v) == false);
  CHECK(std::get<bool>(eval("FALSE AND missing = 1").v) == false);
  CHECK(sel("NOT (missing = 1 AND FALSE)"));
  CHECK(is_unknown("missing = 1 AND TRUE"));
  // UNKNOWN OR TRUE = TRUE; UNKNOWN OR FALSE = UNKNOWN.
  CHECK(sel("missing = 1 OR TRUE"));
  CHECK(sel("TRUE OR missing = 1"));
  CHECK(is_unknown("missing = 1 OR FALSE"));
  CHECK_FALSE(sel("NOT (missing = 1 OR FALSE)"));
  CHECK(is_unknown("missing = 1 OR missing = 2"));
  CHECK(is_unknown("missing <> 1"));
  CHECK(is_unknown("missing = missing"));
}

TEST_CASE("selector: LIKE", "[stomp]") {
  const headers h = {{"name", "abcdef"}, {"code", "a_x"}, {"pct", "100%"}, {"w", "\xC3\xA9t\xC3\xA9"}, {"n", "55"}};
  CHECK(sel("name LIKE 'abc%'", h));
  CHECK(sel("name LIKE '%def'", h));
  CHECK(sel("name LIKE '%cd%'", h));
  CHECK(sel("name LIKE 'a_c___'", h));
  CHECK(sel("name LIKE '%'", h));
  CHECK(sel("name LIKE 'a%b%c%f'", h));
  CHECK_FALSE(sel("name LIKE 'a_c__'", h));
  CHECK_FALSE(sel("name LIKE 'abc'", h));
  CHECK_FALSE(sel("name LIKE 'ABC%'", h));  // case-sensitive
  CHECK(sel("name NOT LIKE 'x%'", h));
  CHECK_FALSE(sel("name NOT LIKE 'a%'", h));
  CHECK(sel("n LIKE '5_'", h));
  // `_` is one character, not one octet.
  CHECK(sel("w LIKE '_t_'", h));
  CHECK(sel("w LIKE '%t_'", h));
  CHECK_FALSE(sel("w LIKE '__t__'", h));
  // ESCAPE makes % and _ literal.
  CHECK(sel("code LIKE 'a\\_%' ESCAPE '\\'", h));
  CHECK_FALSE(sel("name LIKE 'a\\_%' ESCAPE '\\'", h));
  CHECK(sel("pct LIKE '100!%' ESCAPE '!'", h));
  CHECK_FALSE(sel("name LIKE '100!%' ESCAPE '!'", h));
  CHECK(sel("pct LIKE '%!%' escape '!'", h));
  CHECK(sel("code LIKE 'a!_x' ESCAPE '!'", h));
  CHECK(sel("'a!b' LIKE 'a!!b' ESCAPE '!'"));
  // NULL and non-strings are UNKNOWN.
  CHECK(is_unknown("missing LIKE '%'"));
  CHECK(is_unknown("missing NOT LIKE '%'"));
  CHECK(is_unknown("5 LIKE '5'"));
  // Bad patterns and escapes.
  CHECK(error_of("a LIKE 'x' ESCAPE 'ab'").message == "ESCAPE must be a single character at position 18");
  CHECK(error_of("a LIKE 'x' ESCAPE ''").position == 18);
  CHECK(error_of("a LIKE 'x!' ESCAPE '!'").position == 7);
  CHECK(error_of("a LIKE 'x!y' ESCAPE '!'").position == 7);
}

TEST_CASE("selector: IN and NOT IN", "[stomp]") {
  const headers h = {{"color", "red"}, {"n", "2"}};
  CHECK(sel("color IN ('red', 'green')", h));
  CHECK_FALSE(sel("color IN ('blue', 'green')", h));
  CHECK(sel("color NOT IN ('blue', 'green')", h));
  CHECK_FALSE(sel("color NOT IN ('red')", h));
  CHECK(sel("n IN (1, 2, 3)", h));
  CHECK(sel("n IN (-1, 2.0)", h));
  CHECK(sel("n not in ('1', '3')", h));
  CHECK(is_unknown("missing IN ('a')"));
  CHECK(is_unknown("missing NOT IN ('a')"));
  CHECK(is_unknown("color IN (1, 2)", h));
  CHECK(error_of("color IN ()").message == "unexpected token ')' at position 10");
  CHECK(error_of("color IN ('a',)").position == 14);
  CHECK(error_of("color IN 'a'").position == 9);
  CHECK(error_of("color IN (other)").position == 10);
}

TEST_CASE("selector: BETWEEN and NOT BETWEEN", "[stomp]") {
  const headers h = {{"n", "5"}, {"s", "m"}};
  CHECK(sel("n BETWEEN 1 AND 10", h));
  CHECK(sel("n BETWEEN 5 AND 5", h));
  CHECK(sel("n BETWEEN 4.5 AND 5.5", h));
  CHECK_FALSE(sel("n BETWEEN 6 AND 10", h));
  CHECK_FALSE(sel("n BETWEEN 10 AND 1", h));
  CHECK(sel("n NOT BETWEEN 6 AND 10", h));
  CHECK_FALSE(sel("n NOT BETWEEN 1 AND 10", h));
  CHECK(sel("n BETWEEN 1 + 1 AND 2 * 3 AND n = 5", h));
  CHECK(sel("n * 2 BETWEEN 9 AND 11", h));
  CHECK(is_unknown("missing BETWEEN 1 AND 2"));
  CHECK(is_unknown("missing NOT BETWEEN 1 AND 2"));
  CHECK(is_unknown("s BETWEEN 'a' AND 'z'", h));
  // One bound decides when the other is UNKNOWN.
  CHECK(std::get<bool>(eval("n BETWEEN 6 AND missing", h).v) == false);
  CHECK(is_unknown("n BETWEEN 1 AND missing", h));
}

TEST_CASE("selector: arithmetic on numeric header strings", "[stomp]") {
  const headers h = {{"a", "2"}, {"b", "3"}, {"c", "2.5"}, {"e", "1e2"}, {"plus", "+5"}, {"minus", "-5"},
                     {"word", "abc"}, {"spaced", " 5"}, {"zero", "0"}, {"hex", "0x10"}, {"inf", "inf"}};
  CHECK(sel("a + b = 5", h));
  CHECK(sel("a * b = 6", h));
  CHECK(sel("b - a = 1", h));
  CHECK(sel("b / a = 1", h));  // integer division truncates
  CHECK(sel("b / 2.0 = 1.5", h));
  CHECK(sel("a + c = 4.5", h));
  CHECK(sel("e = 100", h));
  CHECK(sel("plus = 5 AND minus = -5", h));
  CHECK(sel("-minus = 5", h));
  CHECK(sel("a < b", h));  // two numeric headers compare as numbers
  CHECK(sel("e > b", h));  // 100 > 3, not "1e2" < "3"
  CHECK(is_unknown("word + 1 = 1", h));
  CHECK(is_unknown("spaced = 5", h));
  CHECK(is_unknown("hex = 16", h));
  CHECK(is_unknown("inf > 1", h));
  CHECK(is_unknown("missing + 1 = 1", h));
  CHECK(is_unknown("'1' + 1 = 2"));
  CHECK(is_unknown("TRUE + 1 = 2"));
  // Division by zero is UNKNOWN.
  CHECK(is_unknown("a / zero = 1", h));
  CHECK(is_unknown("a / 0.0 = 1", h));
  CHECK_FALSE(sel("NOT (a / 0 = 1)", h));
  // Result types and overflow.
  CHECK(std::get<int64_t>(eval("7 / 2").v) == 3);
  CHECK(std::get<int64_t>(eval("-7 / 2").v) == -3);
  CHECK(std::get<double>(eval("7.0 / 2").v) == 3.5);
  CHECK(std::get<int64_t>(eval("a * b", h).v) == 6);
  CHECK(std::get<int64_t>(eval("9223372036854775807").v) == INT64_MAX);
  CHECK(std::get<int64_t>(eval("-9223372036854775807 - 1").v) == INT64_MIN);
  CHECK(sel("9223372036854775807 + 1 > 9223372036854775807"));
  CHECK(std::holds_alternative<double>(eval("9223372036854775807 * 2").v));
  CHECK(std::holds_alternative<double>(eval("-(-9223372036854775807 - 1)").v));
  CHECK(std::holds_alternative<double>(eval("99999999999999999999").v));
  CHECK(sel("n = 9223372036854775807", {{"n", "9223372036854775807"}}));
  CHECK(sel("n < 0", {{"n", "-9223372036854775808"}}));
  CHECK(sel("n > 1e19", {{"n", "99999999999999999999"}}));
  CHECK(is_unknown("1e308 * 10 - 1e308 * 10 = 0"));  // NaN
}

TEST_CASE("selector: NULL handling", "[stomp]") {
  const headers h = {{"x", "1"}, {"empty", ""}};
  CHECK(sel("missing IS NULL", h));
  CHECK_FALSE(sel("x IS NULL", h));
  CHECK(sel("x IS NOT NULL", h));
  CHECK_FALSE(sel("missing IS NOT NULL", h));
  CHECK(sel("empty IS NOT NULL", h));  // an empty header is a value
  CHECK(sel("empty = ''", h));
  CHECK(sel("missing is null or missing = 'a'", h));
  CHECK(sel("NOT missing IS NOT NULL", h));
  CHECK(is_unknown("missing"));
  CHECK(error_of("x = NULL").message == "unexpected token 'NULL' at position 4");
  CHECK(error_of("x IS 1").position == 5);
  // A lookup that is empty behaves as a message without headers.
  CHECK(matches(*compile("missing IS NULL"), lookup_fn{}));
}

TEST_CASE("selector: identifiers and keywords", "[stomp]") {
  const headers h = {{"JMSType", "t"}, {"_x", "1"}, {"$y", "2"}, {"a.b", "3"}, {"isx", "4"}, {"caf\xC3\xA9", "5"}};
  CHECK(sel("JMSType = 't'", h));
  CHECK_FALSE(sel("jmstype = 't'", h));  // header names are case-sensitive
  CHECK(sel("_x = 1 AND $y = 2 AND a.b = 3 AND isx = 4", h));
  CHECK(sel("caf\xC3\xA9 = 5", h));
  CHECK(sel("_x=1AND(a.b=3)", h));
  CHECK(sel("tRuE aNd NoT fAlSe"));
  CHECK(error_of("and = 1").position == 0);
  CHECK(sel("a-b = 1", {{"a", "3"}, {"b", "2"}}));  // '-' is minus, never part of a name
}

TEST_CASE("selector: parse errors name the offending position", "[stomp]") {
  const std::vector<std::tuple<std::string, size_t, std::string>> cases = {
      {"color = 'red' AND )", 18, "unexpected token ')' at position 18"},
      {"color = 'red", 8, "unterminated string literal at position 8"},
      {"a = ", 4, "unexpected end of selector at position 4"},
      {"", 0, "unexpected end of selector at position 0"},
      {"   ", 3, "unexpected end of selector at position 3"},
      {"a = 1 b", 6, "unexpected token 'b' at position 6"},
      {"a # 1", 2, "unexpected character '#' at position 2"},
      {"a = 1 OR", 8, "unexpected end of selector at position 8"},
      {"a NOT = 1", 6, "unexpected token '=' at position 6"},
      {"a LIKE 5", 7, "unexpected token '5' at position 7"},
      {"(a = 1", 6, "unexpected end of selector at position 6"},
      {"a = 1)", 5, "unexpected token ')' at position 5"},
      {"a = 1e", 4, "malformed number at position 4"},
      {"a = 1e999", 4, "number out of range at position 4"},
      {"a = = 1", 4, "unexpected token '=' at position 4"},
      {"a = 1 = 2", 6, "unexpected token '=' at position 6"},
      {"a BETWEEN 1 OR 2", 12, "unexpected token 'OR' at position 12"},
      {"a != 1", 2, "unexpected character '!' at position 2"},
      {"a = \"x\"", 4, "unexpected character '\"' at position 4"},
      {"a = 'x' AND b = 'y", 16, "unterminated string literal at position 16"},
      {std::string("a = \x01", 5), 4, "unexpected character 0x01 at position 4"},
  };
  for (const auto& [text, position, message] : cases) {
    const auto e = error_of(text);
    CHECK(e.position == position);
    CHECK(e.message == message);
  }
  // A syntax error before a bad token is the one reported.
  CHECK(error_of(") 'unterminated").position == 0);
  // Long tokens are shortened in the message.
  const auto e = error_of("a = 1 " + std::string(100, 'b'));
  CHECK(e.message == "unexpected token '" + std::string(32, 'b') + "...' at position 6");
}

TEST_CASE("selector: nesting and length are bounded", "[stomp]") {
  const auto nested = [](size_t depth) {
    return std::string(depth, '(') + "a = 1" + std::string(depth, ')');
  };
  CHECK(sel(nested(max_nesting), {{"a", "1"}}));
  const auto deep = error_of(nested(max_nesting + 1));
  CHECK(deep.position == max_nesting);
  CHECK(deep.message == "selector nested deeper than 100 at position 100");
  CHECK(error_of(nested(4000)).position == max_nesting);

  std::string nots;
  for (size_t i = 0; i < 1000; ++i) nots += "NOT ";
  CHECK(error_of(nots + "TRUE").position == max_nesting * 4);
  CHECK(error_of(std::string(1000, '-') + "1").position == max_nesting);

  // Long flat chains are not nesting: the tree stays shallow.
  std::string chain = "a = 0";
  while (chain.size() + 9 <= max_selector_bytes) chain += " OR a = 1";
  CHECK(sel(chain, {{"a", "1"}}));
  std::string sum = "1";
  while (sum.size() + 4 <= max_selector_bytes) sum += " + 1";
  CHECK(std::get<int64_t>(eval(sum).v) == static_cast<int64_t>((sum.size() - 1) / 4 + 1));

  std::string padded = "a = 1";
  padded.resize(max_selector_bytes, ' ');
  CHECK(sel(padded, {{"a", "1"}}));
  padded += ' ';
  const auto too_long = error_of(padded);
  CHECK(too_long.position == max_selector_bytes);
  CHECK(too_long.message == "selector longer than 8192 bytes");
}

TEST_CASE("selector: mutated selectors never crash", "[stomp]") {
  const std::vector<std::string> seeds = {
      "color = 'red' AND n > 5",
      "(a + b) * -c / 2 BETWEEN 1.5e1 AND 100 OR NOT x IS NULL",
      "name NOT LIKE 'a\\_%' ESCAPE '\\' AND id IN ('1', '2', 'it''s')",
      "NOT (TRUE = flag) OR n NOT BETWEEN -1 AND +1 AND s <> 'x'",
      "x IS NOT NULL AND y NOT IN (1, 2.5, -3) OR z LIKE '%_%'",
  };
  const std::string alphabet = "()'%_=<>!+-*/., \\0123456789eEabnxyzANDORNOTINLIKEISNULL";
  const std::vector<std::string> words = {" AND ", " OR ", " NOT ", " IN ", " LIKE ", " BETWEEN ", " IS ",
                                          " NULL ", " ESCAPE ", "''", "(", ")", "1e", ".", "9999999999999999999"};
  const headers h = {{"a", "1"}, {"b", "2.5"}, {"c", "x"}, {"n", "6"}, {"name", "abc"}, {"flag", "true"},
                     {"x", ""}, {"y", "2.5"}, {"z", "%"}, {"color", "red"}, {"s", "-0"}, {"id", "it's"}};
  const auto lookup = lookup_in(h);
  std::mt19937 rng(7);
  const auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  size_t parsed = 0;
  size_t matched = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string s = seeds[pick(seeds.size())];
    const size_t mutations = 1 + pick(4);
    for (size_t m = 0; m < mutations; ++m) {
      const size_t at = s.empty() ? 0 : pick(s.size());
      switch (pick(5)) {
        case 0:
          if (!s.empty()) s[at] = static_cast<char>(pick(256));
          break;
        case 1:
          if (!s.empty()) s[at] = alphabet[pick(alphabet.size())];
          break;
        case 2: s.insert(at, words[pick(words.size())]); break;
        case 3: s.insert(at, 1, alphabet[pick(alphabet.size())]); break;
        default:
          if (!s.empty()) s.erase(at, 1 + pick(4));
          break;
      }
    }
    const auto r = parse(s);
    REQUIRE((r.expr == nullptr) == r.error.has_value());
    if (r.error) {
      CAPTURE(s);
      REQUIRE(r.error->position <= s.size());
      REQUIRE_FALSE(r.error->message.empty());
      continue;
    }
    ++parsed;
    if (matches(*r.expr, lookup)) ++matched;
    evaluate(*r.expr, lookup);
  }
  CHECK(parsed > 100);
  CHECK(matched > 0);
}
