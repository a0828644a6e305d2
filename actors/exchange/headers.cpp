// Headers exchange (AMQP 0-9-1 §3.1.3.4, RabbitMQ semantics): a binding's arguments are matched
// against the message's headers table. `x-match` = `all` (default) needs every binding
// argument to match, `any` needs one; `all-with-x` / `any-with-x` also compare arguments whose
// names start with "x-", which plain all/any skip. A void-valued binding argument matches on
// presence alone. Bindings are kept pre-split into (mode, list of pairs).
#include <algorithm>

#include "actors/exchange/exchange_type.hpp"

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
