#include "actors/access.hpp"

#include <boost/asio/ip/address.hpp>

namespace warren::access {

namespace {

std::shared_ptr<const std::regex> compile(const std::string& source) {
  // ECMAScript is the closest of std::regex's grammars to the PCRE RabbitMQ uses.
  return std::make_shared<const std::regex>(source, std::regex::ECMAScript | std::regex::optimize);
}

const char* kind_name(kind k) { return k == kind::queue ? "queue" : "exchange"; }

}  // namespace

pattern::pattern(const std::string& source) : source_(source) {
  if (source.empty()) {
    mode_ = mode::only_empty;  // RabbitMQ reads "" as "^$"
  } else if (source == ".*" || source == "^.*" || source == ".*$" || source == "^.*$") {
    mode_ = mode::everything;
  } else {
    try {
      re_ = compile(source);
      mode_ = mode::regex;
    } catch (const std::regex_error&) {
      mode_ = mode::nothing;  // refused when it was set; a stored one grants nothing
    }
  }
}

bool pattern::matches(std::string_view name) const {
  switch (mode_) {
    case mode::everything:
      return true;
    case mode::only_empty:
      return name.empty();
    case mode::regex:
      return std::regex_search(name.begin(), name.end(), *re_);
    case mode::nothing:
      break;
  }
  return false;
}

std::optional<std::string> invalid_pattern(const std::string& source) {
  try {
    compile(source);
    return std::nullopt;
  } catch (const std::regex_error& e) {
    return std::string{"invalid regular expression '"} + source + "': " + e.what();
  }
}

vhost_permissions::vhost_permissions(const std::string& configure, const std::string& write,
                                     const std::string& read)
  : granted_(true), patterns_{pattern{configure}, pattern{write}, pattern{read}} {}

bool vhost_permissions::allows(perm p, kind k, std::string_view name) const {
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
  if (cache.size() >= cache_limit)
    cache.clear();
  cache.emplace(std::string{name}, ok);
  return ok;
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
