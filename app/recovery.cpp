#include "app/recovery.hpp"

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "actors/queue_actor.hpp"
#include "persistence/queue_store.hpp"
#include "persistence/store_check.hpp"
#include "protocol/amqp091/properties.hpp"

namespace warren {

namespace fs = std::filesystem;

namespace {

constexpr const char* clean_marker = "clean-shutdown";

}  // namespace

void mark_clean_shutdown(const std::string& data_dir) {
  std::ofstream{fs::path{data_dir} / clean_marker} << "clean\n";
}

recovery_result recover_store(const std::string& data_dir, const std::string& on_corruption,
                              size_t memory_limit) {
  recovery_result res;
  res.catalog = std::make_shared<persistence::catalog>();
  std::string error;
  auto catalog_path = (fs::path{data_dir} / "catalog.db").string();
  if (!res.catalog->open(catalog_path, error)) {
    res.error = "cannot open the catalog " + catalog_path + ": " + error;
    return res;
  }
  std::string report;
  if (!res.catalog->check(report)) {
    res.error = "the catalog " + catalog_path + " is damaged: " + report;
    return res;
  }
  persistence::catalog_snapshot snap;
  if (!res.catalog->load(snap, error)) {
    res.error = "cannot read the catalog " + catalog_path + ": " + error;
    return res;
  }
  bool clean = fs::exists(fs::path{data_dir} / clean_marker);
  std::error_code ec;
  fs::remove(fs::path{data_dir} / clean_marker, ec);

  auto problems = persistence::check_store(data_dir, snap);
  res.problems = problems.size();
  for (auto& p : problems)
    spdlog::error("store check: {}", p.describe());
  if (!problems.empty()) {
    if (on_corruption != "quarantine") {
      res.error = std::to_string(problems.size()) +
                  " damaged part(s) in the store (see above); refusing to start "
                  "(persistence.on_corruption = refuse). To start anyway and move the damage "
                  "aside, set persistence.on_corruption = quarantine.";
      return res;
    }
    for (auto& p : problems) {
      std::string where;
      if (persistence::quarantine(data_dir, p, where)) {
        res.quarantined += p.messages_affected;
        spdlog::warn("store check: quarantined {} ({}){}", p.describe(), persistence::to_string(p.kind),
                     where.empty() ? "" : " into " + where);
      } else {
        spdlog::error("store check: could not quarantine {}", p.describe());
      }
    }
  }

  // A store without users is new (or older than users): it gets the default vhost. Otherwise
  // the vhosts are the catalog's, so that a deleted "/" stays deleted.
  if (snap.users.empty())
    res.vhosts["/"];
  res.users = std::move(snap.users);
  res.permissions = std::move(snap.permissions);
  res.limits = std::move(snap.limits);
  res.policies = std::move(snap.policies);
  res.topic_permissions = std::move(snap.topic_permissions);
  for (auto& d : snap.deletions)
    if (d.kind == "registry")
      res.deletions.push_back(d);
  for (auto& v : snap.vhosts)
    res.vhosts[v.name];
  for (auto& x : snap.exchanges)
    res.vhosts[x.vhost];
  for (auto& q : snap.queues)
    res.vhosts[q.vhost];
  for (auto& b : snap.bindings)
    res.vhosts[b.vhost];
  for (auto& [vhost, p] : res.vhosts) {
    add_catalog_rows(snap, vhost, p);
    for (auto& rq : p.queues) {
      rq.reload = false;  // read here, before any actor runs
      persistence::queue_store store;
      auto path = (fs::path{data_dir} / rq.file).string();
      if (!store.open(path, error)) {
        res.error = "cannot open " + path + " for queue '" + rq.spec.name + "': " + error;
        return res;
      }
      uint64_t after = 0;
      size_t resident = 0;
      // A priority queue keeps its bodies in memory (see start_queue).
      bool priority_queue = amqp::find_field(rq.spec.arguments, "x-max-priority") != nullptr;
      for (;;) {
        auto batch = store.load(after, 10000);
        if (!batch.ok) {
          res.error = "cannot read " + path + ": " + batch.error;
          return res;
        }
        if (batch.last_id <= after)
          break;
        after = batch.last_id;  // pages on past corrupt rows too
        for (auto& m : batch.messages) {
          bool redelivered = m.delivered || !clean;
          auto id = m.id;
          auto bytes = static_cast<uint32_t>(m.body.size());
          auto expires = m.expires;
          auto msg = keep_resident(m, priority_queue ? 0 : memory_limit, resident);
          rq.messages.push_back(recovered_message{id, std::move(msg), redelivered, bytes, expires});
        }
      }
      rq.next_id = std::max(store.max_id(), after) + 1;
      store.close();
      res.messages += rq.messages.size();
    }
  }
  spdlog::info("store: recovered {} exchange(s), {} queue(s), {} binding(s), {} message(s){}",
               snap.exchanges.size(), snap.queues.size(), snap.bindings.size(), res.messages,
               clean ? "" : " after an abrupt stop (recovered messages are marked redelivered)");
  res.ok = true;
  return res;
}

}  // namespace warren
