#include "actors/access.hpp"

#include <boost/asio/ip/address.hpp>

#include <cctype>

namespace warren::access {

namespace {

constexpr size_t max_pattern_length = 4096;
constexpr int max_pattern_depth = 64;

// RabbitMQ's patterns are PCRE; glibc's POSIX extended expressions match in time linear in the
// name (no backtracking blow-up on patterns such as "^([a-z]+-?)*$") and in heap memory. The
// PCRE spellings patterns commonly use are rewritten: \d and \D, the escapes in bracket
// expressions (where POSIX reads a backslash literally) and (?: groups. Matching only asks
// whether there is a match, so lazy quantifiers mean the same as greedy ones.
std::optional<std::string> to_posix(const std::string& pcre, std::string& why) {
  if (pcre.size() > max_pattern_length) {
    why = "longer than " + std::to_string(max_pattern_length) + " characters";
    return std::nullopt;
  }
  std::string out;
  int depth = 0;
  bool in_bracket = false;
  for (size_t i = 0; i < pcre.size(); ++i) {
    char c = pcre[i];
    if (in_bracket) {
      if (c == ']' && out.back() != '[' && !(out.size() >= 2 && out.back() == '^' &&
                                             out[out.size() - 2] == '[')) {
        in_bracket = false;
        out += c;
      } else if (c == '\\' && i + 1 < pcre.size()) {
        char e = pcre[++i];
        switch (e) {
          case 'd': out += "0-9"; break;
          case 'w': out += "[:alnum:]_"; break;
          case 's': out += "[:space:]"; break;
          case ']': case '-': case '^': case '[':
            out += std::string{"[."} + e + ".]";
            break;
          default: out += e;
        }
      } else {
        out += c;
      }
      continue;
    }
    if (c == '[') {
      in_bracket = true;
      out += c;
    } else if (c == '\\' && i + 1 < pcre.size()) {
      char e = pcre[++i];
      if (e == 'd')
        out += "[0-9]";
      else if (e == 'D')
        out += "[^0-9]";
      else
        out += std::string{'\\'} + e;
    } else if (c == '(') {
      if (++depth > max_pattern_depth) {
        why = "groups nested deeper than " + std::to_string(max_pattern_depth);
        return std::nullopt;
      }
      out += c;
      if (pcre.compare(i + 1, 2, "?:") == 0)
        i += 2;
    } else if (c == ')') {
      --depth;
      out += c;
    } else if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < pcre.size() &&
               pcre[i + 1] == '?') {
      out += c;  // a lazy quantifier
      ++i;
    } else {
      out += c;
    }
  }
  return out;
}

std::shared_ptr<const compiled_regex> compile(const std::string& source, std::string& why) {
  auto posix = to_posix(source, why);
  if (!posix)
    return nullptr;
  auto re = std::make_shared<compiled_regex>();
  int rc = regcomp(&re->re, posix->c_str(), REG_EXTENDED | REG_NOSUB);
  if (rc != 0) {
    char buf[256];
    regerror(rc, &re->re, buf, sizeof buf);
    why = buf;
    re->ok = false;  // regcomp leaves nothing to free on failure
    return nullptr;
  }
  return re;
}

// The literal characters an expression anchored with `^` opens with, as pattern::prefix_
// holds them; `whole`: nothing follows them (but `$`, then `exact`). Conservative: an
// alternation anywhere, a character a quantifier may leave out, or anything else that is not
// a plain ASCII or escaped punctuation character ends it.
std::string anchored_prefix(const std::string& source, bool& whole, bool& exact) {
  whole = exact = false;
  if (source.empty() || source[0] != '^' || source.find('|') != std::string::npos)
    return {};
  static constexpr std::string_view special = ".[]()*+?{}|^$\\";
  std::string out;
  size_t i = 1;
  while (i < source.size()) {
    char c = source[i];
    size_t next = i + 1;
    if (c == '\\') {
      // Only an escaped metacharacter is that character for both PCRE and glibc's regcomp
      // (\d, \w are classes; glibc reads \< \> \` \' as anchors).
      static constexpr std::string_view escapable = ".[]()*+?{}|^$\\/-";
      if (next >= source.size() || escapable.find(source[next]) == std::string_view::npos)
        return out;
      c = source[next++];
    } else if (special.find(c) != std::string_view::npos || c == '\0' ||
               static_cast<unsigned char>(c) >= 0x80) {
      break;  // (regcomp ends the expression at a NUL; a quantifier may follow a multibyte
              // character, of which this is a byte)
    }
    if (next < source.size()) {
      char q = source[next];
      if (q == '*' || q == '?' || q == '{')
        return out;  // c may be left out or repeated
      if (q == '+') {
        out += c;
        return out;
      }
    }
    out += c;
    i = next;
  }
  whole = i == source.size();
  exact = i + 1 == source.size() && source[i] == '$';
  whole = whole || exact;
  return out;
}

const char* kind_name(kind k) { return k == kind::queue ? "queue" : "exchange"; }

}  // namespace

compiled_regex::~compiled_regex() {
  if (ok)
    regfree(&re);
}

pattern::pattern(const std::string& source) : source_(source) {
  if (source.empty()) {
    mode_ = mode::only_empty;  // RabbitMQ reads "" as "^$"
  } else if (source == ".*" || source == "^.*" || source == ".*$" || source == "^.*$") {
    mode_ = mode::everything;
  } else {
    std::string why;
    re_ = compile(source, why);
    // Refused when it was set; one that no longer compiles grants nothing.
    mode_ = re_ ? mode::regex : mode::nothing;
    if (re_)
      prefix_ = anchored_prefix(source, literal_, exact_);
  }
}

bool pattern::matches(std::string_view name) const {
  switch (mode_) {
    case mode::everything:
      return true;
    case mode::only_empty:
      return name.empty();
    case mode::regex: {
      if (name.find('\0') != std::string_view::npos)
        return false;  // not a name an exchange or queue can have
      if (name.substr(0, prefix_.size()) != prefix_)
        return false;
      if (literal_)
        return !exact_ || name.size() == prefix_.size();
      std::string text{name};
      return regexec(&re_->re, text.c_str(), 0, nullptr, 0) == 0;
    }
    case mode::nothing:
      break;
  }
  return false;
}

std::optional<std::string> invalid_pattern(const std::string& source) {
  std::string why;
  if (source.empty() || compile(source, why))
    return std::nullopt;
  return "invalid regular expression '" + source + "': " + why;
}

vhost_permissions::vhost_permissions(const std::string& configure, const std::string& write,
                                     const std::string& read)
  : granted_(true), patterns_{pattern{configure}, pattern{write}, pattern{read}} {
  for (size_t i = 0; i < 3; ++i)
    everything_[i] = patterns_[i].everything();
}

bool vhost_permissions::allows_slow(perm p, kind k, std::string_view name) const {
  if (!granted_)
    return false;
  if (k == kind::exchange && name.empty())
    name = "amq.default";
  auto i = static_cast<size_t>(p);
  auto& pat = patterns_[i];
  if (!pat.costly())
    return pat.matches(name);
  // Both kinds share the cache: the pattern sees only the name.
  auto& cache = cache_[i];
  if (auto it = cache.find(name); it != cache.end())
    return it->second;
  bool ok = pat.matches(name);
  if (name.size() > cached_name_max)
    return ok;
  if (cache.size() >= cache_limit)
    cache.clear();
  cache.emplace(std::string{name}, ok);
  return ok;
}

std::optional<resource> creation_refused(const vhost_permissions& p, kind k,
                                         const std::string& name,
                                         const amqp::field_table& args) {
  auto f = amqp::find_field(args, k == kind::queue ? "x-dead-letter-exchange"
                                                   : "alternate-exchange");
  auto target = f ? f->as_string() : nullptr;
  if (!target)
    return std::nullopt;
  if (!p.allows(perm::read, k, name))
    return resource{k, name};
  if (!p.allows(perm::write, kind::exchange, *target))
    return resource{kind::exchange, *target};
  return std::nullopt;
}

std::string refused_reason(kind k, std::string_view name, std::string_view vhost,
                           std::string_view user) {
  std::string n{name.empty() && k == kind::exchange ? std::string_view{"amq.default"} : name};
  return "access to " + std::string{kind_name(k)} + " '" + n + "' in vhost '" +
         std::string{vhost} + "' refused for user '" + std::string{user} + "'";
}

std::string refused_text(kind k, std::string_view name, std::string_view vhost,
                         std::string_view user) {
  return "ACCESS_REFUSED - " + refused_reason(k, name, vhost, user);
}

std::string expand_topic_variables(std::string source, std::string_view user,
                                   std::string_view vhost) {
  for (auto [var, value] : {std::pair{std::string_view{"{username}"}, user},
                            std::pair{std::string_view{"{vhost}"}, vhost}})
    for (auto at = source.find(var); at != std::string::npos;
         at = source.find(var, at + value.size()))
      source.replace(at, var.size(), value);
  return source;
}

topic_permissions::topic_permissions(const std::vector<topic_entry>& entries,
                                     std::string_view user, std::string_view vhost) {
  for (auto& e : entries)
    rules_[e.exchange] = rule{pattern{expand_topic_variables(e.write, user, vhost)},
                              pattern{expand_topic_variables(e.read, user, vhost)}};
}

bool topic_permissions::allows(perm p, std::string_view exchange, std::string_view key) const {
  auto it = rules_.find(exchange);
  if (it == rules_.end())
    return true;
  return (p == perm::write ? it->second.write : it->second.read).matches(key);
}

std::string topic_refused_reason(std::string_view key, std::string_view exchange,
                                 std::string_view vhost, std::string_view user) {
  return "access to topic '" + std::string{key} + "' in exchange '" + std::string{exchange} +
         "' in vhost '" + std::string{vhost} + "' refused for user '" + std::string{user} + "'";
}

std::string topic_refused_text(std::string_view key, std::string_view exchange,
                               std::string_view vhost, std::string_view user) {
  return "ACCESS_REFUSED - " + topic_refused_reason(key, exchange, vhost, user);
}

std::string vhost_refused_text(std::string_view vhost, std::string_view user) {
  return "NOT_ALLOWED - access to vhost '" + std::string{vhost} + "' refused for user '" +
         std::string{user} + "'";
}

bool is_loopback_address(const std::string& address) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(address, ec);
  if (ec)
    return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).is_loopback();
  return a.is_loopback();
}

}  // namespace warren::access
