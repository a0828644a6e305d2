// Publisher confirms that wait for a message store's commit (queue and stream actors): a
// persistent message is confirmed only once the store says it is on disk.
#pragma once

#include <caf/all.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "actors/messages.hpp"

namespace warren {

class store_confirms {
public:
  // A tracked message appended with store id `id`, in increasing id order.
  void wait(uint64_t id, const caf::actor& publisher, uint64_t channel, weight_return ret) {
    pending_.push_back(pending{id, publisher, channel, ret});
  }

  // Everything appended up to max_id is on disk (but the failed ones, or nothing when the
  // commit failed): acks or nacks those confirms, one report per publishing channel.
  template <class Self>
  void release(Self* self, uint64_t max_id, bool committed, const std::vector<uint64_t>& failed) {
    std::vector<std::pair<caf::actor, confirm_report>> reports;
    while (!pending_.empty() && pending_.front().id <= max_id) {
      auto& p = pending_.front();
      if (!committed || std::find(failed.begin(), failed.end(), p.id) != failed.end())
        p.ret.rejected = true;
      auto it = std::find_if(reports.begin(), reports.end(), [&](auto& r) {
        return r.first == p.publisher && r.second.channel == p.channel;
      });
      if (it == reports.end()) {
        reports.emplace_back(p.publisher, confirm_report{p.channel, {}});
        it = std::prev(reports.end());
      }
      it->second.returns.push_back(p.ret);
      pending_.pop_front();
    }
    for (auto& [pub, r] : reports)
      self->send(pub, confirm_atom::value, std::move(r));
  }

private:
  struct pending {
    uint64_t id;
    caf::actor publisher;
    uint64_t channel;
    weight_return ret;
  };
  std::deque<pending> pending_;  // by id
};

}  // namespace warren
