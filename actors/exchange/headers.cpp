// Headers exchange (AMQP 0-9-1 §3.1.3.4, RabbitMQ semantics): a binding's arguments are matched
// against the message's headers table. `x-match` = `all` (default) needs every binding
// argument to match, `any` needs one; `all-with-x` / `any-with-x` also compare arguments whose
// names start with "x-", which plain all/any skip. A void-valued binding argument matches on
// presence alone. Bindings are kept pre-split into (mode, list of pairs).
#include <algorithm>

#include "actors/exchange/exchange_type.hpp"
#include "actors/queue_arguments.hpp"

namespace warren::exchange {
namespace {

struct compiled {
  dest_id dest;
  amqp::field_table original;
  bool any = false;
  std::vector<std::pair<std::string, amqp::field_value>> pairs;
};

compiled compile(const binding_key& b) {
  compiled c{b.dest, b.arguments, false, {}};
  bool with_x = false;
  if (auto m = amqp::find_field(b.arguments, "x-match")) {
    if (auto s = m->as_string()) {
      c.any = *s == "any" || *s == "any-with-x";
      with_x = *s == "all-with-x" || *s == "any-with-x";
    }
  }
  for (auto& [k, v] : b.arguments) {
    if (k == "x-match")
      continue;
    if (!with_x && k.rfind("x-", 0) == 0)
      continue;
    c.pairs.emplace_back(k, v);
  }
  return c;
}

bool value_matches(const amqp::field_value& want, const amqp::field_value* have) {
  if (!have)
    return false;
  if (std::holds_alternative<std::monostate>(want.v))
    return true;
  if (want == *have)
    return true;
  // Integers of different widths compare by value, as RabbitMQ's term comparison does.
  auto a = want.as_int(), b = have->as_int();
  return a && b && *a == *b;
}

constexpr std::string_view match_modes[] = {"all", "any", "all-with-x", "any-with-x"};

}  // namespace

std::string refused_binding(std::string_view type, const amqp::field_table& arguments) {
  if (type != "headers")
    return {};
  auto m = amqp::find_field(arguments, "x-match");
  if (!m)
    return {};
  auto s = std::get_if<std::string>(&m->v);
  if (!s) {
    auto n = m->as_int();
    return "PRECONDITION_FAILED - Invalid x-match field type " + std::string{type_name(*m)} +
           " (value " + (n ? std::to_string(*n) : std::string{type_name(*m)}) +
           "); expected longstr";
  }
  for (auto mode : match_modes)
    if (*s == mode)
      return {};
  return "PRECONDITION_FAILED - Invalid x-match field value <<" +
         (s->empty() ? std::string{} : "\"" + *s + "\"") +
         ">>; expected all, any, all-with-x, or any-with-x";
}

namespace {

class headers final : public exchange_type {
public:
  void bind(const binding_key& b) override { bindings_.push_back(compile(b)); }
  void unbind(const binding_key& b) override {
    auto pos = std::find_if(bindings_.begin(), bindings_.end(), [&](const compiled& c) {
      return c.dest == b.dest && c.original == b.arguments;
    });
    if (pos != bindings_.end())
      bindings_.erase(pos);
  }
  void route(std::string_view, const amqp::field_table* hdrs,
             std::vector<dest_id>& out) const override {
    static const amqp::field_table none;
    const auto& h = hdrs ? *hdrs : none;
    for (auto& c : bindings_) {
      bool ok;
      if (c.any) {
        ok = std::any_of(c.pairs.begin(), c.pairs.end(), [&](auto& p) {
          return value_matches(p.second, amqp::find_field(h, p.first));
        });
      } else {
        ok = std::all_of(c.pairs.begin(), c.pairs.end(), [&](auto& p) {
          return value_matches(p.second, amqp::find_field(h, p.first));
        });
      }
      if (ok)
        out.push_back(c.dest);
    }
  }
  bool needs_headers() const override { return true; }

private:
  std::vector<compiled> bindings_;
};

}  // namespace

std::unique_ptr<exchange_type> make_headers() { return std::make_unique<headers>(); }

}  // namespace warren::exchange
