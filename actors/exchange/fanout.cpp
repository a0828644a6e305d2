// Fanout exchange (AMQP 0-9-1 §3.1.3.2): every bound destination gets every message; keys are
// ignored. A multiset of destinations (one entry per binding).
#include <algorithm>

#include "actors/exchange/exchange_type.hpp"

namespace warren::exchange {
namespace {

class fanout final : public exchange_type {
public:
  void bind(const binding_key& b) override { dests_.push_back(b.dest); }
  void unbind(const binding_key& b) override {
    if (auto pos = std::find(dests_.begin(), dests_.end(), b.dest); pos != dests_.end())
      dests_.erase(pos);
  }
  void route(std::string_view, const amqp::field_table*,
             std::vector<dest_id>& out) const override {
    out.insert(out.end(), dests_.begin(), dests_.end());
  }

private:
  std::vector<dest_id> dests_;
};

}  // namespace

std::unique_ptr<exchange_type> make_fanout() { return std::make_unique<fanout>(); }

}  // namespace warren::exchange
