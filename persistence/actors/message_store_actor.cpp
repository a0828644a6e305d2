#include "persistence/actors/message_store_actor.hpp"

#include <map>
#include <memory>

#include <spdlog/spdlog.h>

#include "actors/hardening.hpp"
#include "actors/messages.hpp"

namespace warren::persistence {

namespace {

using clock = std::chrono::steady_clock;

struct open_store {
  std::unique_ptr<queue_store> store;
  caf::actor_addr owner;        // the queue to tell about commits
  uint64_t appended_max = 0;    // highest id appended since the last commit
  std::vector<uint64_t> failed;  // ids whose append failed since the last commit
  bool dirty = false;
  clock::time_point last_reclaim{};
};

struct store_state {
  store_settings settings;
  std::map<std::string, open_store> stores;
  size_t ops = 0;
  clock::time_point first_uncommitted{};
  static inline const char* name = "message_store";
};

using store_actor = caf::stateful_actor<store_state>;

open_store* get(store_actor* self, const std::string& path) {
  auto& st = self->state;
  auto it = st.stores.find(path);
  if (it != st.stores.end())
    return &it->second;
  auto s = std::make_unique<queue_store>();
  std::string error;
  if (!s->open(path, error)) {
    spdlog::error("message store: cannot open {}: {}", path, error);
    return nullptr;
  }
  auto& os = st.stores[path];
  os.store = std::move(s);
  return &os;
}

void touch(store_actor* self, open_store& os) {
  auto& st = self->state;
  if (st.ops == 0)
    st.first_uncommitted = clock::now();
  os.dirty = true;
  ++st.ops;
  os.store->begin_if_needed();
}

void commit_all(store_actor* self) {
  auto& st = self->state;
  for (auto& [path, os] : st.stores) {
    if (!os.dirty)
      continue;
    std::string error;
    bool ok = os.store->commit(error);
    if (!ok)
      spdlog::error("message store: commit of {} failed: {}", path, error);
    os.dirty = false;
    if (os.appended_max) {
      // A failed commit loses the whole batch: every message in it is nacked.
      if (auto q = caf::actor_cast<caf::actor>(os.owner))
        self->send(q, stored_atom::value, os.appended_max, ok, std::move(os.failed));
      os.appended_max = 0;
      os.failed = {};
    }
  }
  st.ops = 0;
}

// Group commit: called after every message.
void maybe_commit(store_actor* self) {
  auto& st = self->state;
  if (st.ops == 0)
    return;
  if (self->mailbox().size() == 0 || st.ops >= st.settings.max_batch ||
      clock::now() - st.first_uncommitted >= st.settings.max_wait)
    commit_all(self);
}

caf::behavior store_behavior(store_actor* self, store_settings settings) {
  self->state.settings = settings;
  install_defaults(self, "message store");
  return {
    [=](append_atom, std::string& path, std::vector<stored_message>& msgs) {
      if (auto os = get(self, path)) {
        os->owner = caf::actor_cast<caf::actor_addr>(self->current_sender());
        touch(self, *os);
        for (auto& m : msgs) {
          if (!os->store->append(m)) {
            spdlog::error("message store: append to {} failed: {}", path,
                          os->store->last_error());
            os->failed.push_back(m.id);  // never confirmed: the publisher gets a nack
          }
          os->appended_max = std::max(os->appended_max, m.id);
        }
      }
      maybe_commit(self);
    },
    [=](remove_atom, std::string& path, std::vector<uint64_t>& ids) {
      if (auto os = get(self, path)) {
        touch(self, *os);
        for (auto id : ids)
          os->store->remove(id);
      }
      maybe_commit(self);
    },
    [=](remove_atom, std::string& path, uint64_t through_id) {
      if (auto os = get(self, path)) {
        touch(self, *os);
        os->store->remove_through(through_id);
      }
      maybe_commit(self);
    },
    [=](delivered_atom, std::string& path, std::vector<uint64_t>& ids) {
      if (auto os = get(self, path)) {
        touch(self, *os);
        for (auto id : ids)
          os->store->mark_delivered(id);
      }
      maybe_commit(self);
    },
    [=](load_atom, std::string& path, uint64_t after_id, uint32_t limit) {
      std::vector<stored_message> out;
      if (auto os = get(self, path)) {
        auto r = os->store->load(after_id, limit);
        if (!r.corrupt_ids.empty())
          spdlog::error("message store: {} messages of {} fail their checksum",
                        r.corrupt_ids.size(), path);
        out = std::move(r.messages);
      }
      maybe_commit(self);
      return out;
    },
    [=](purge_atom, std::string& path, std::vector<uint64_t>& ids) -> uint32_t {
      uint32_t n = 0;
      if (auto os = get(self, path)) {
        touch(self, *os);
        for (auto id : ids)
          n += os->store->remove(id) ? 1 : 0;
        commit_all(self);
        os->store->reclaim();
        os->last_reclaim = clock::now();
      }
      return n;
    },
    [=](reclaim_atom, std::string& path) {
      auto it = self->state.stores.find(path);
      if (it == self->state.stores.end())
        return;
      commit_all(self);
      it->second.store->reclaim();
      it->second.last_reclaim = clock::now();
    },
    [=](destroy_atom, std::string& path) -> bool {
      auto& st = self->state;
      commit_all(self);
      auto it = st.stores.find(path);
      if (it != st.stores.end()) {
        it->second.store->close();
        st.stores.erase(it);
      }
      return queue_store::destroy(path);
    },
    [=](shutdown_atom) -> bool {
      commit_all(self);
      for (auto& [path, os] : self->state.stores)
        os.store->close();
      self->state.stores.clear();
      return true;
    },
  };
}

}  // namespace

caf::actor spawn_message_store(caf::actor_system& sys, store_settings settings) {
  return sys.spawn<caf::detached>(store_behavior, settings);
}

}  // namespace warren::persistence
