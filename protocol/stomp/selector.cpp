// Message selector parser and evaluator (JMS 1.1 §3.8.1.1, SQL-92 conditional expressions).
// Grammar, keywords case-insensitive, precedence from loosest to tightest:
//
//   selector    = or-expr END
//   or-expr     = and-expr *( OR and-expr )
//   and-expr    = not-expr *( AND not-expr )
//   not-expr    = NOT not-expr | predicate
//   predicate   = sum [ ( "=" | "<>" | "<" | "<=" | ">" | ">=" ) sum
//                     | [NOT] BETWEEN sum AND sum
//                     | [NOT] IN "(" literal *( "," literal ) ")"
//                     | [NOT] LIKE string [ESCAPE string]      ; % any sequence, _ one character
//                     | IS [NOT] NULL ]
//   sum         = product *( ( "+" | "-" ) product )
//   product     = unary *( ( "*" | "/" ) unary )
//   unary       = ( "+" | "-" ) unary | primary
//   primary     = "(" or-expr ")" | identifier | string | number | TRUE | FALSE
//   literal     = string | [ "+" | "-" ] number
//   identifier  = ( letter | "_" | "$" ) *( letter | digit | "_" | "$" | "." ), not a keyword;
//                 octets >= 0x80 count as letters (UTF-8 names)
//   string      = "'" *( <any octet but '> | "''" ) "'"
//   number      = digits [ "." [digits] ] [ exponent ] | "." digits [ exponent ]
//   exponent    = ( "e" | "E" ) [ "+" | "-" ] digits
//
// A number with a fraction or exponent is a double, otherwise an int64 (a double when it
// does not fit). Evaluation follows SQL three-valued logic: a missing header is NULL, and a
// comparison or arithmetic involving NULL is NULL/UNKNOWN. Header values are strings: next
// to a number (comparison, BETWEEN, IN, arithmetic) a header string that is entirely a
// decimal number counts as that number, otherwise the result is UNKNOWN; next to TRUE or
// FALSE, "true"/"false" (any case) count as booleans. Two header strings that are both
// numbers compare as numbers. Strings and booleans only support = and <>; ordering them is
// UNKNOWN, as in JMS. Division by zero is UNKNOWN; int64 overflow falls back to double;
// int64 division truncates.
#include "protocol/stomp/selector.hpp"

#include <cmath>
#include <charconv>
#include <vector>

namespace warren::stomp::selector {

namespace {

enum class tok {
  end, error, identifier, string, integer, decimal,
  lparen, rparen, comma, eq, ne, lt, le, gt, ge, plus, minus, star, slash,
  kw_and, kw_or, kw_not, kw_between, kw_in, kw_like, kw_escape, kw_is, kw_null, kw_true, kw_false,
};

struct token {
  tok kind = tok::end;
  size_t pos = 0;
  std::string_view text;  // raw text of the token
  std::string str;        // string literal contents, quotes undone
  int64_t i = 0;
  double d = 0;
  std::string message;    // for tok::error
};

bool is_ident_start(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' || c >= 0x80;
}
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_ident_part(unsigned char c) { return is_ident_start(c) || is_digit(c) || c == '.'; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (x != b[i]) return false;
  }
  return true;
}

std::string at(size_t pos) { return " at position " + std::to_string(pos); }

// The syntax of `number` above, with an optional sign; a header string must match it all.
// Sets `integral` when there is neither fraction nor exponent.
bool scan_number(std::string_view s, size_t& len, bool& integral) {
  size_t i = 0;
  size_t int_digits = 0;
  size_t frac_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++int_digits;
  integral = true;
  if (i < s.size() && s[i] == '.') {
    integral = false;
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    integral = false;
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t exp_digits = 0;
    while (j < s.size() && is_digit(s[j])) ++j, ++exp_digits;
    if (exp_digits == 0) return false;
    i = j;
  }
  len = i;
  return true;
}

// Converts an unsigned number matched by scan_number; false when a double overflows.
bool convert_number(std::string_view s, bool integral, bool negative, std::variant<int64_t, double>& out) {
  if (integral) {
    // Parse the magnitude as unsigned so that -9223372036854775808 stays an integer.
    uint64_t u = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), u);
    if (r.ec == std::errc() && r.ptr == s.data() + s.size()) {
      constexpr uint64_t max = static_cast<uint64_t>(INT64_MAX);
      if (!negative && u <= max) {
        out = static_cast<int64_t>(u);
        return true;
      }
      if (negative && u <= max + 1) {
        out = u == max + 1 ? INT64_MIN : -static_cast<int64_t>(u);
        return true;
      }
    }
  }
  double d = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), d, std::chars_format::general);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(d)) return false;
  out = negative ? -d : d;
  return true;
}

class lexer {
 public:
  explicit lexer(std::string_view text) : text_(text) {}

  token next() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\f')) {
      ++pos_;
    }
    token t;
    t.pos = pos_;
    if (pos_ == text_.size()) return t;
    const auto c = static_cast<unsigned char>(text_[pos_]);
    const auto single = [&](tok k, size_t len) {
      t.kind = k;
      t.text = text_.substr(pos_, len);
      pos_ += len;
      return t;
    };
    const char n1 = pos_ + 1 < text_.size() ? text_[pos_ + 1] : '\0';
    switch (c) {
      case '(': return single(tok::lparen, 1);
      case ')': return single(tok::rparen, 1);
      case ',': return single(tok::comma, 1);
      case '=': return single(tok::eq, 1);
      case '+': return single(tok::plus, 1);
      case '-': return single(tok::minus, 1);
      case '*': return single(tok::star, 1);
      case '/': return single(tok::slash, 1);
      case '<':
        if (n1 == '>') return single(tok::ne, 2);
        if (n1 == '=') return single(tok::le, 2);
        return single(tok::lt, 1);
      case '>':
        if (n1 == '=') return single(tok::ge, 2);
        return single(tok::gt, 1);
      case '\'': return string_literal(t);
      default:
        break;
    }
    if (is_digit(c) || (c == '.' && is_digit(static_cast<unsigned char>(n1)))) return number(t);
    if (is_ident_start(c)) return word(t);
    t.kind = tok::error;
    std::string shown;
    if (c >= 0x20 && c < 0x7F) {
      shown = "'" + std::string(1, static_cast<char>(c)) + "'";
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      shown = std::string("0x") + hex[c >> 4] + hex[c & 15];
    }
    t.message = "unexpected character " + shown + at(pos_);
    return t;
  }

 private:
  token string_literal(token& t) {
    size_t i = pos_ + 1;
    for (;;) {
      if (i >= text_.size()) {
        t.kind = tok::error;
        t.message = "unterminated string literal" + at(pos_);
        return t;
      }
      if (text_[i] == '\'') {
        if (i + 1 < text_.size() && text_[i + 1] == '\'') {
          t.str += '\'';
          i += 2;
          continue;
        }
        break;
      }
      t.str += text_[i++];
    }
    t.kind = tok::string;
    t.text = text_.substr(pos_, i + 1 - pos_);
    pos_ = i + 1;
    return t;
  }

  token number(token& t) {
    size_t len = 0;
    bool integral = true;
    if (!scan_number(text_.substr(pos_), len, integral)) {
      t.kind = tok::error;
      t.message = "malformed number" + at(pos_);
      return t;
    }
    t.text = text_.substr(pos_, len);
    std::variant<int64_t, double> v;
    if (!convert_number(t.text, integral, false, v)) {
      t.kind = tok::error;
      t.message = "number out of range" + at(pos_);
      return t;
    }
    if (const auto* i = std::get_if<int64_t>(&v)) {
      t.kind = tok::integer;
      t.i = *i;
    } else {
      t.kind = tok::decimal;
      t.d = std::get<double>(v);
    }
    pos_ += len;
    return t;
  }

  token word(token& t) {
    size_t i = pos_ + 1;
    while (i < text_.size() && is_ident_part(static_cast<unsigned char>(text_[i]))) ++i;
    t.text = text_.substr(pos_, i - pos_);
    pos_ = i;
    static constexpr std::pair<std::string_view, tok> keywords[] = {
        {"AND", tok::kw_and},         {"OR", tok::kw_or},   {"NOT", tok::kw_not},
        {"BETWEEN", tok::kw_between}, {"IN", tok::kw_in},   {"LIKE", tok::kw_like},
        {"ESCAPE", tok::kw_escape},   {"IS", tok::kw_is},   {"NULL", tok::kw_null},
        {"TRUE", tok::kw_true},       {"FALSE", tok::kw_false},
    };
    t.kind = tok::identifier;
    for (const auto& [word, kind] : keywords) {
      if (iequals(t.text, word)) t.kind = kind;
    }
    return t;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// One element of a compiled LIKE pattern.
struct like_elem {
  enum kind_t : uint8_t { octet, one, any } kind;
  char c = 0;
};

enum class op : uint8_t {
  literal, identifier, logical_and, logical_or, logical_not,
  eq, ne, lt, le, gt, ge, between, in, like, is_null, arithmetic, negate, plus,
};

struct node {
  op kind = op::literal;
  bool negated = false;        // NOT BETWEEN / NOT IN / NOT LIKE / IS NOT NULL
  value lit;                   // literal
  std::string name;            // identifier
  std::vector<node> kids;      // operands, in order
  std::string ops;             // arithmetic: the operator before kids[i + 1] ('+', '-', '*', '/')
  std::vector<value> list;     // IN
  std::vector<like_elem> pattern;
};

}  // namespace

class expression {
 public:
  node root;
};

namespace {

class parser {
 public:
  explicit parser(std::string_view text) : lex_(text) { advance(); }

  bool parse(node& out) {
    out = or_expr();
    if (failed_) return false;
    if (cur_.kind != tok::end) return unexpected();
    return true;
  }

  parse_error error() const { return error_; }

 private:
  void advance() {
    if (failed_) return;
    cur_ = lex_.next();
    if (cur_.kind == tok::error) fail(cur_.pos, cur_.message);
  }

  bool fail(size_t pos, std::string message) {
    if (!failed_) {
      failed_ = true;
      error_ = {pos, std::move(message)};
    }
    return false;
  }

  bool unexpected() {
    if (cur_.kind == tok::end) return fail(cur_.pos, "unexpected end of selector" + at(cur_.pos));
    std::string shown(cur_.text.substr(0, 32));
    if (cur_.text.size() > 32) shown += "...";
    return fail(cur_.pos, "unexpected token '" + shown + "'" + at(cur_.pos));
  }

  bool expect(tok k) {
    if (failed_) return false;
    if (cur_.kind != k) return unexpected();
    advance();
    return !failed_;
  }

  // Guards one level of recursion that input can repeat without bound.
  bool enter() {
    if (++depth_ > max_nesting) {
      return fail(cur_.pos, "selector nested deeper than " + std::to_string(max_nesting) + at(cur_.pos));
    }
    return true;
  }

  node or_expr() {
    node first = and_expr();
    if (failed_ || cur_.kind != tok::kw_or) return first;
    node n;
    n.kind = op::logical_or;
    n.kids.push_back(std::move(first));
    while (!failed_ && cur_.kind == tok::kw_or) {
      advance();
      n.kids.push_back(and_expr());
    }
    return n;
  }

  node and_expr() {
    node first = not_expr();
    if (failed_ || cur_.kind != tok::kw_and) return first;
    node n;
    n.kind = op::logical_and;
    n.kids.push_back(std::move(first));
    while (!failed_ && cur_.kind == tok::kw_and) {
      advance();
      n.kids.push_back(not_expr());
    }
    return n;
  }

  node not_expr() {
    if (cur_.kind != tok::kw_not) return predicate();
    node n;
    n.kind = op::logical_not;
    if (!enter()) return n;
    advance();
    if (!failed_) n.kids.push_back(not_expr());
    --depth_;
    return n;
  }

  node predicate() {
    node lhs = sum();
    if (failed_) return lhs;
    node n;
    n.kids.push_back(std::move(lhs));
    switch (cur_.kind) {
      case tok::eq: n.kind = op::eq; break;
      case tok::ne: n.kind = op::ne; break;
      case tok::lt: n.kind = op::lt; break;
      case tok::le: n.kind = op::le; break;
      case tok::gt: n.kind = op::gt; break;
      case tok::ge: n.kind = op::ge; break;
      case tok::kw_is: {
        n.kind = op::is_null;
        advance();
        if (!failed_ && cur_.kind == tok::kw_not) {
          n.negated = true;
          advance();
        }
        expect(tok::kw_null);
        return n;
      }
      case tok::kw_not:
        n.negated = true;
        advance();
        if (failed_) return n;
        if (cur_.kind != tok::kw_between && cur_.kind != tok::kw_in && cur_.kind != tok::kw_like) {
          unexpected();
          return n;
        }
        return negatable(n);
      case tok::kw_between:
      case tok::kw_in:
      case tok::kw_like:
        return negatable(n);
      default:
        return std::move(n.kids.front());
    }
    advance();
    if (!failed_) n.kids.push_back(sum());
    return n;
  }

  // BETWEEN, IN or LIKE at cur_, after the left operand (and NOT).
  node negatable(node& n) {
    const tok k = cur_.kind;
    advance();
    if (k == tok::kw_between) {
      n.kind = op::between;
      if (!failed_) n.kids.push_back(sum());
      if (expect(tok::kw_and)) n.kids.push_back(sum());
      return std::move(n);
    }
    if (k == tok::kw_in) {
      n.kind = op::in;
      if (!expect(tok::lparen)) return std::move(n);
      for (;;) {
        value v;
        if (!literal(v)) return std::move(n);
        n.list.push_back(std::move(v));
        if (cur_.kind == tok::comma) {
          advance();
          continue;
        }
        expect(tok::rparen);
        return std::move(n);
      }
    }
    n.kind = op::like;
    if (failed_) return std::move(n);
    if (cur_.kind != tok::string) {
      unexpected();
      return std::move(n);
    }
    const std::string pattern = std::move(cur_.str);
    const size_t pattern_pos = cur_.pos;
    advance();
    std::string escape;
    if (!failed_ && cur_.kind == tok::kw_escape) {
      advance();
      if (failed_) return std::move(n);
      if (cur_.kind != tok::string) {
        unexpected();
        return std::move(n);
      }
      escape = std::move(cur_.str);
      if (escape.empty() || escape.size() != utf8_length(escape, 0)) {
        fail(cur_.pos, "ESCAPE must be a single character" + at(cur_.pos));
        return std::move(n);
      }
      advance();
    }
    compile_like(pattern, escape, pattern_pos, n.pattern);
    return std::move(n);
  }

  // Byte length of the UTF-8 sequence starting at s[i].
  static size_t utf8_length(std::string_view s, size_t i) {
    size_t j = i + 1;
    while (j < s.size() && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) ++j;
    return j - i;
  }

  void compile_like(std::string_view pattern, std::string_view escape, size_t pos, std::vector<like_elem>& out) {
    for (size_t i = 0; i < pattern.size();) {
      if (!escape.empty() && pattern.substr(i, escape.size()) == escape) {
        i += escape.size();
        if (i == pattern.size()) {
          fail(pos, "LIKE pattern ends with its escape character" + at(pos));
          return;
        }
        const size_t len = pattern[i] == '%' || pattern[i] == '_' ? 1 : utf8_length(pattern, i);
        if (pattern[i] != '%' && pattern[i] != '_' && pattern.substr(i, len) != escape) {
          fail(pos, "LIKE pattern escapes a character other than %, _ or the escape" + at(pos));
          return;
        }
        for (size_t j = 0; j < len; ++j) out.push_back({like_elem::octet, pattern[i + j]});
        i += len;
        continue;
      }
      if (pattern[i] == '%') {
        if (out.empty() || out.back().kind != like_elem::any) out.push_back({like_elem::any});
      } else if (pattern[i] == '_') {
        out.push_back({like_elem::one});
      } else {
        out.push_back({like_elem::octet, pattern[i]});
      }
      ++i;
    }
  }

  // An IN list element: a string or an optionally signed number.
  bool literal(value& v) {
    if (failed_) return false;
    if (cur_.kind == tok::string) {
      v.v = std::move(cur_.str);
      advance();
      return !failed_;
    }
    bool negative = false;
    if (cur_.kind == tok::plus || cur_.kind == tok::minus) {
      negative = cur_.kind == tok::minus;
      advance();
      if (failed_) return false;
    }
    if (cur_.kind != tok::integer && cur_.kind != tok::decimal) return unexpected();
    std::variant<int64_t, double> number;
    convert_number(cur_.text, cur_.kind == tok::integer, negative, number);
    std::visit([&](auto x) { v.v = x; }, number);
    advance();
    return !failed_;
  }

  node sum() {
    node first = product();
    if (failed_ || (cur_.kind != tok::plus && cur_.kind != tok::minus)) return first;
    node n;
    n.kind = op::arithmetic;
    n.kids.push_back(std::move(first));
    while (!failed_ && (cur_.kind == tok::plus || cur_.kind == tok::minus)) {
      n.ops += cur_.kind == tok::plus ? '+' : '-';
      advance();
      if (!failed_) n.kids.push_back(product());
    }
    return n;
  }

  node product() {
    node first = unary();
    if (failed_ || (cur_.kind != tok::star && cur_.kind != tok::slash)) return first;
    node n;
    n.kind = op::arithmetic;
    n.kids.push_back(std::move(first));
    while (!failed_ && (cur_.kind == tok::star || cur_.kind == tok::slash)) {
      n.ops += cur_.kind == tok::star ? '*' : '/';
      advance();
      if (!failed_) n.kids.push_back(unary());
    }
    return n;
  }

  node unary() {
    if (cur_.kind != tok::plus && cur_.kind != tok::minus) return primary();
    node n;
    n.kind = cur_.kind == tok::minus ? op::negate : op::plus;
    if (!enter()) return n;
    advance();
    if (!failed_) n.kids.push_back(unary());
    --depth_;
    // Fold a sign into a numeric literal.
    if (!failed_ && n.kind == op::negate && n.kids.front().kind == op::literal) {
      auto& v = n.kids.front().lit.v;
      if (const auto* i = std::get_if<int64_t>(&v); i != nullptr && *i != INT64_MIN) {
        return literal_node(value{-*i});
      }
      if (const auto* d = std::get_if<double>(&v)) return literal_node(value{-*d});
    }
    return n;
  }

  static node literal_node(value v) {
    node n;
    n.kind = op::literal;
    n.lit = std::move(v);
    return n;
  }

  node primary() {
    node n;
    switch (cur_.kind) {
      case tok::lparen: {
        if (!enter()) return n;
        advance();
        if (failed_) return n;
        n = or_expr();
        expect(tok::rparen);
        --depth_;
        return n;
      }
      case tok::identifier:
        n.kind = op::identifier;
        n.name = std::string(cur_.text);
        break;
      case tok::string:
        n = literal_node(value{std::move(cur_.str)});
        break;
      case tok::integer:
        n = literal_node(value{cur_.i});
        break;
      case tok::decimal:
        n = literal_node(value{cur_.d});
        break;
      case tok::kw_true:
        n = literal_node(value{true});
        break;
      case tok::kw_false:
        n = literal_node(value{false});
        break;
      default:
        unexpected();
        return n;
    }
    advance();
    return n;
  }

  lexer lex_;
  token cur_;
  bool failed_ = false;
  parse_error error_{0, {}};
  size_t depth_ = 0;
};

// --- Evaluation

enum class truth { false_, true_, unknown };

truth not3(truth t) {
  if (t == truth::unknown) return t;
  return t == truth::true_ ? truth::false_ : truth::true_;
}

using variant_t = decltype(value::v);

struct operand {
  variant_t v;
  bool from_header = false;  // a header string, open to numeric and boolean readings
};

operand of(truth t) {
  if (t == truth::unknown) return {};
  return {t == truth::true_};
}

bool is_null(const operand& o) { return std::holds_alternative<std::monostate>(o.v); }
bool is_number(const operand& o) {
  return std::holds_alternative<int64_t>(o.v) || std::holds_alternative<double>(o.v);
}

std::optional<std::variant<int64_t, double>> header_number(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  size_t len = 0;
  bool integral = true;
  if (!scan_number(s, len, integral) || len != s.size()) return std::nullopt;
  std::variant<int64_t, double> out;
  if (!convert_number(s, integral, negative, out)) return std::nullopt;
  return out;
}

std::optional<std::variant<int64_t, double>> to_number(const operand& o) {
  if (const auto* i = std::get_if<int64_t>(&o.v)) return *i;
  if (const auto* d = std::get_if<double>(&o.v)) return *d;
  if (const auto* s = std::get_if<std::string>(&o.v); s != nullptr && o.from_header) return header_number(*s);
  return std::nullopt;
}

truth to_truth(const operand& o) {
  if (const auto* b = std::get_if<bool>(&o.v)) return *b ? truth::true_ : truth::false_;
  if (const auto* s = std::get_if<std::string>(&o.v); s != nullptr && o.from_header) {
    if (iequals(*s, "TRUE")) return truth::true_;
    if (iequals(*s, "FALSE")) return truth::false_;
  }
  return truth::unknown;
}

// -1, 0, 1; nullopt when unordered (NaN).
std::optional<int> compare_numbers(const std::variant<int64_t, double>& a, const std::variant<int64_t, double>& b) {
  if (std::holds_alternative<int64_t>(a) && std::holds_alternative<int64_t>(b)) {
    const int64_t x = std::get<int64_t>(a);
    const int64_t y = std::get<int64_t>(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  const auto as_long_double = [](const std::variant<int64_t, double>& v) {
    return std::visit([](auto x) { return static_cast<long double>(x); }, v);
  };
  const long double x = as_long_double(a);
  const long double y = as_long_double(b);
  if (std::isnan(x) || std::isnan(y)) return std::nullopt;
  return x < y ? -1 : (x > y ? 1 : 0);
}

truth from_order(op k, int c) {
  bool r = false;
  switch (k) {
    case op::eq: r = c == 0; break;
    case op::ne: r = c != 0; break;
    case op::lt: r = c < 0; break;
    case op::le: r = c <= 0; break;
    case op::gt: r = c > 0; break;
    case op::ge: r = c >= 0; break;
    default: return truth::unknown;
  }
  return r ? truth::true_ : truth::false_;
}

truth compare(op k, const operand& a, const operand& b) {
  if (is_null(a) || is_null(b)) return truth::unknown;
  const bool equality = k == op::eq || k == op::ne;
  if (is_number(a) || is_number(b)) {
    const auto x = to_number(a);
    const auto y = to_number(b);
    if (!x || !y) return truth::unknown;
    const auto c = compare_numbers(*x, *y);
    return c ? from_order(k, *c) : truth::unknown;
  }
  if (std::holds_alternative<bool>(a.v) || std::holds_alternative<bool>(b.v)) {
    const truth x = to_truth(a);
    const truth y = to_truth(b);
    if (!equality || x == truth::unknown || y == truth::unknown) return truth::unknown;
    return from_order(k, x == y ? 0 : 1);
  }
  const auto& s = std::get<std::string>(a.v);
  const auto& t = std::get<std::string>(b.v);
  if (a.from_header && b.from_header) {
    const auto x = header_number(s);
    const auto y = header_number(t);
    if (x && y) {
      const auto c = compare_numbers(*x, *y);
      return c ? from_order(k, *c) : truth::unknown;
    }
  }
  if (!equality) return truth::unknown;
  return from_order(k, s == t ? 0 : 1);
}

operand number_operand(std::variant<int64_t, double> n) {
  operand o;
  std::visit([&](auto x) { o.v = x; }, n);
  if (const auto* d = std::get_if<double>(&o.v); d != nullptr && std::isnan(*d)) return {};
  return o;
}

// a op b; nullopt is NULL (non-numeric operand, division by zero).
std::optional<std::variant<int64_t, double>> arithmetic(char k, const std::variant<int64_t, double>& a,
                                                        const std::variant<int64_t, double>& b) {
  if (std::holds_alternative<int64_t>(a) && std::holds_alternative<int64_t>(b)) {
    const int64_t x = std::get<int64_t>(a);
    const int64_t y = std::get<int64_t>(b);
    int64_t r = 0;
    switch (k) {
      case '+':
        if (!__builtin_add_overflow(x, y, &r)) return r;
        break;
      case '-':
        if (!__builtin_sub_overflow(x, y, &r)) return r;
        break;
      case '*':
        if (!__builtin_mul_overflow(x, y, &r)) return r;
        break;
      default:
        if (y == 0) return std::nullopt;
        if (!(x == INT64_MIN && y == -1)) return x / y;
        break;
    }
  }
  const auto as_double = [](const std::variant<int64_t, double>& v) {
    return std::visit([](auto x) { return static_cast<double>(x); }, v);
  };
  const double x = as_double(a);
  const double y = as_double(b);
  switch (k) {
    case '+': return x + y;
    case '-': return x - y;
    case '*': return x * y;
    default:
      if (y == 0) return std::nullopt;
      return x / y;
  }
}

// Whole-string LIKE match; '_' and the restart points of '%' step over UTF-8 characters.
bool like_match(std::string_view s, const std::vector<like_elem>& p) {
  const auto next_char = [&](size_t i) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    return i;
  };
  size_t si = 0;
  size_t pi = 0;
  size_t star = SIZE_MAX;
  size_t star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi].kind == like_elem::octet && p[pi].c == s[si]) {
      ++si;
      ++pi;
    } else if (pi < p.size() && p[pi].kind == like_elem::one) {
      si = next_char(si);
      ++pi;
    } else if (pi < p.size() && p[pi].kind == like_elem::any) {
      star = pi++;
      star_s = si;
    } else if (star != SIZE_MAX) {
      pi = star + 1;
      star_s = next_char(star_s);
      si = star_s;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi].kind == like_elem::any) ++pi;
  return pi == p.size();
}

class evaluator {
 public:
  explicit evaluator(const lookup_fn& lookup) : lookup_(lookup) {}

  operand eval(const node& n) {
    switch (n.kind) {
      case op::literal:
        return {n.lit.v, false};
      case op::identifier: {
        auto v = lookup_ ? lookup_(n.name) : std::nullopt;
        if (!v) return {};
        return {std::move(*v), true};
      }
      case op::logical_and: {
        truth r = truth::true_;
        for (const auto& k : n.kids) {
          const truth t = to_truth(eval(k));
          if (t == truth::false_) return of(truth::false_);
          if (t == truth::unknown) r = truth::unknown;
        }
        return of(r);
      }
      case op::logical_or: {
        truth r = truth::false_;
        for (const auto& k : n.kids) {
          const truth t = to_truth(eval(k));
          if (t == truth::true_) return of(truth::true_);
          if (t == truth::unknown) r = truth::unknown;
        }
        return of(r);
      }
      case op::logical_not:
        return of(not3(to_truth(eval(n.kids[0]))));
      case op::eq:
      case op::ne:
      case op::lt:
      case op::le:
      case op::gt:
      case op::ge:
        return of(compare(n.kind, eval(n.kids[0]), eval(n.kids[1])));
      case op::between: {
        const operand x = eval(n.kids[0]);
        const truth lo = compare(op::ge, x, eval(n.kids[1]));
        if (lo == truth::false_) return of(n.negated ? truth::true_ : truth::false_);
        const truth hi = compare(op::le, x, eval(n.kids[2]));
        truth r = hi == truth::false_ ? truth::false_
                  : (lo == truth::unknown || hi == truth::unknown) ? truth::unknown
                                                                   : truth::true_;
        return of(n.negated ? not3(r) : r);
      }
      case op::in: {
        const operand x = eval(n.kids[0]);
        if (is_null(x)) return {};
        truth r = truth::false_;
        for (const auto& v : n.list) {
          const truth t = compare(op::eq, x, operand{v.v, false});
          if (t == truth::true_) {
            r = truth::true_;
            break;
          }
          if (t == truth::unknown) r = truth::unknown;
        }
        return of(n.negated ? not3(r) : r);
      }
      case op::like: {
        const operand x = eval(n.kids[0]);
        const auto* s = std::get_if<std::string>(&x.v);
        if (s == nullptr) return {};
        const truth r = like_match(*s, n.pattern) ? truth::true_ : truth::false_;
        return of(n.negated ? not3(r) : r);
      }
      case op::is_null: {
        const bool null = is_null(eval(n.kids[0]));
        return operand{null != n.negated};
      }
      case op::arithmetic: {
        auto acc = to_number(eval(n.kids[0]));
        for (size_t i = 1; acc && i < n.kids.size(); ++i) {
          const auto rhs = to_number(eval(n.kids[i]));
          if (!rhs) return {};
          acc = arithmetic(n.ops[i - 1], *acc, *rhs);
        }
        if (!acc) return {};
        return number_operand(*acc);
      }
      case op::negate: {
        const auto x = to_number(eval(n.kids[0]));
        if (!x) return {};
        if (const auto* i = std::get_if<int64_t>(&*x)) {
          if (*i == INT64_MIN) return {-static_cast<double>(*i)};
          return {-*i};
        }
        return number_operand(-std::get<double>(*x));
      }
      case op::plus: {
        const auto x = to_number(eval(n.kids[0]));
        if (!x) return {};
        return number_operand(*x);
      }
    }
    return {};
  }

 private:
  const lookup_fn& lookup_;
};

}  // namespace

parse_result parse(std::string_view text) {
  parse_result result;
  if (text.size() > max_selector_bytes) {
    result.error = parse_error{max_selector_bytes,
                               "selector longer than " + std::to_string(max_selector_bytes) + " bytes"};
    return result;
  }
  parser p(text);
  auto e = std::make_shared<expression>();
  if (!p.parse(e->root)) {
    result.error = p.error();
    return result;
  }
  result.expr = std::move(e);
  return result;
}

value evaluate(const expression& e, const lookup_fn& lookup) {
  evaluator ev(lookup);
  return value{ev.eval(e.root).v};
}

bool matches(const expression& e, const lookup_fn& lookup) {
  evaluator ev(lookup);
  return to_truth(ev.eval(e.root)) == truth::true_;
}

}  // namespace warren::stomp::selector
