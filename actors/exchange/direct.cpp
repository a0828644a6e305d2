// Direct exchange (AMQP 0-9-1 §3.1.3.1): a message goes to every binding whose key equals its
// routing key. A hash map from key to destinations.
#include <algorithm>
#include <unordered_map>

#include "actors/exchange/exchange_type.hpp"

namespace warren::exchange {
namespace {

class direct final : public exchange_type {
public:
  void bind(const binding_key& b) override { index_[b.key].push_back(b.dest); }
  void unbind(const binding_key& b) override {
    auto it = index_.find(b.key);
    if (it == index_.end())
      return;
    auto& v = it->second;
    if (auto pos = std::find(v.begin(), v.end(), b.dest); pos != v.end())
      v.erase(pos);
    if (v.empty())
      index_.erase(it);
  }
  void route(std::string_view key, const amqp::field_table*,
             std::vector<dest_id>& out) const override {
    auto it = index_.find(std::string{key});
    if (it != index_.end())
      out.insert(out.end(), it->second.begin(), it->second.end());
  }

private:
  std::unordered_map<std::string, std::vector<dest_id>> index_;
};

}  // namespace

std::unique_ptr<exchange_type> make_direct() { return std::make_unique<direct>(); }

}  // namespace warren::exchange
