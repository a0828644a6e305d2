// Access control as RabbitMQ 3.10's internal backend does it: a user's permissions in a vhost
// are three regular expressions (configure, write, read), matched unanchored against the name
// of the exchange or queue an operation touches; the default exchange is checked as
// "amq.default", and an empty pattern matches only the empty name. A user without a
// permission entry for a vhost cannot open it.
//
// Which operation needs which permission (rabbit_channel):
//   configure  queue.declare and exchange.declare (not passive), queue.delete, exchange.delete
//   write      basic.publish (the exchange), queue.bind / exchange.bind (the destination)
//   read       basic.get, basic.consume, queue.purge (the queue), binds (the source exchange)
//
// `loopback_users` (default: guest) may log in only through a loopback address of this host:
// the local address of the accepted socket, as RabbitMQ decides it.
//
// Pure: no actors, no sockets; the connection actors and the management API hold one
// `vhost_permissions` per user and vhost and ask it.
#pragma once

#include <regex.h>

#include <map>
#include <memory>
#include <optional>
#include <vector>
#include <string>
#include <string_view>
#include <unordered_map>

#include "protocol/amqp091/field_table.hpp"

namespace warren::access {

enum class perm { configure = 0, write = 1, read = 2 };
enum class kind { exchange, queue };

// A POSIX regex_t, freed with its owner.
struct compiled_regex {
  regex_t re{};
  bool ok = true;
  compiled_regex() = default;
  compiled_regex(const compiled_regex&) = delete;
  compiled_regex& operator=(const compiled_regex&) = delete;
  ~compiled_regex();
};

// One compiled pattern. ".*" (the common case) and "" are decided without a regex.
class pattern {
public:
  pattern() = default;  // matches nothing
  explicit pattern(const std::string& source);
  bool matches(std::string_view name) const;
  // Whether matches() is a regex search, worth remembering the answer of.
  bool costly() const { return mode_ == mode::regex; }
  bool everything() const { return mode_ == mode::everything; }
  const std::string& source() const { return source_; }

private:
  enum class mode { nothing, everything, only_empty, regex } mode_ = mode::nothing;
  std::string source_;
  std::shared_ptr<const compiled_regex> re_;
  // An anchored expression that opens with literal characters (`^orders\.`): what every name
  // it matches starts with, checked before the search. `literal_`: the expression is that
  // much and no more (`$` at its end: `exact_`), so the check decides alone.
  std::string prefix_;
  bool literal_ = false;
  bool exact_ = false;
};

// Why a pattern is not a valid regular expression (or is longer than 4096 characters, or nests
// groups deeper than 64), or nullopt when it is.
std::optional<std::string> invalid_pattern(const std::string& source);

// A user's permissions in one vhost; default-constructed: no access at all.
class vhost_permissions {
public:
  vhost_permissions() = default;
  vhost_permissions(const std::string& configure, const std::string& write,
                    const std::string& read);

  bool granted() const { return granted_; }
  // The name as it is checked: "" (the default exchange) is "amq.default". Inline for the
  // common ".*", which every publish asks about.
  bool allows(perm p, kind k, std::string_view name) const {
    return everything_[static_cast<size_t>(p)] || allows_slow(p, k, name);
  }

private:
  bool allows_slow(perm p, kind k, std::string_view name) const;

  bool granted_ = false;
  bool everything_[3] = {false, false, false};
  pattern patterns_[3];
  // Answers for names seen before: a regex match costs microseconds, a publish far less.
  // Bounded: cleared when it holds cache_limit names.
  static constexpr size_t cache_limit = 256;
  static constexpr size_t cached_name_max = 255;  // AMQP's longest name
  struct name_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::unordered_map<std::string, bool, name_hash, std::equal_to<>> cache_[3];
};

// RabbitMQ's topic permissions: for a user in a vhost, per topic exchange, a write pattern
// for the routing keys it may publish with and a read pattern for the keys it may bind with
// (queue.bind, exchange.bind and their unbinds, the exchange being the source). "{username}"
// and "{vhost}" in a pattern stand for the user's and the vhost's names. An exchange without
// an entry, and an exchange that is not a topic exchange, is not checked.
struct topic_entry {
  std::string exchange, write, read;
};

class topic_permissions {
public:
  topic_permissions() = default;
  topic_permissions(const std::vector<topic_entry>& entries, std::string_view user,
                    std::string_view vhost);
  bool empty() const { return rules_.empty(); }
  // Whether a rule names `exchange` (then its type decides whether it applies).
  bool names(std::string_view exchange) const { return rules_.find(exchange) != rules_.end(); }
  // perm::write (publish) or perm::read (bind); true when no rule names the exchange.
  bool allows(perm p, std::string_view exchange, std::string_view key) const;

private:
  struct rule {
    pattern write, read;
  };
  std::map<std::string, rule, std::less<>> rules_;
};

// A topic permission's pattern with the variables expanded ("{username}", "{vhost}").
std::string expand_topic_variables(std::string source, std::string_view user,
                                   std::string_view vhost);

// "ACCESS_REFUSED - access to topic 'a.b' in exchange 'amq.topic' in vhost '/' refused for
// user 'bob'", and the same without the prefix.
std::string topic_refused_reason(std::string_view key, std::string_view exchange,
                                 std::string_view vhost, std::string_view user);
std::string topic_refused_text(std::string_view key, std::string_view exchange,
                               std::string_view vhost, std::string_view user);

struct resource {
  kind k;
  std::string name;
};

// Creating a queue with x-dead-letter-exchange, or an exchange with alternate-exchange, needs
// read on the new entity and write on the exchange it names (rabbit_channel checks both only
// when the declare creates the entity): the resource refused first, nullopt when both are
// allowed or `args` names no such exchange.
std::optional<resource> creation_refused(const vhost_permissions& p, kind k,
                                         const std::string& name,
                                         const amqp::field_table& args);

// "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'bob'"
std::string refused_text(kind k, std::string_view name, std::string_view vhost,
                         std::string_view user);
// The same without the "ACCESS_REFUSED - " prefix.
std::string refused_reason(kind k, std::string_view name, std::string_view vhost,
                           std::string_view user);

// connection.open (530) and the STOMP CONNECT refusal for a vhost the user may not open.
std::string vhost_refused_text(std::string_view vhost, std::string_view user);

// Whether an address ("127.0.0.1", "::1", "::ffff:127.0.0.2", ...) is a loopback address.
bool is_loopback_address(const std::string& address);

}  // namespace warren::access
