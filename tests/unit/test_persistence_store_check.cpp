// The start-up check and the quarantine: a missing file, a file that is not a database, rows
// failing their checksum and a file with a damaged page are each reported by queue, vhost and
// file with their counts; quarantine moves them aside (kept, counted), salvages every good
// row of a damaged file, and leaves a data directory that checks clean.
#include <catch2/catch.hpp>

#include "temp_dir.hpp"

#include <sqlite3.h>

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "persistence/catalog.hpp"
#include "persistence/queue_store.hpp"
#include "persistence/sqlite_db.hpp"
#include "persistence/store_check.hpp"

using namespace warren::persistence;
namespace fs = std::filesystem;

namespace {

struct temp_dir : warren::test::temp_dir {
  temp_dir() : warren::test::temp_dir("warren-check") {}
};

stored_message message(uint64_t id, size_t body_size = 32) {
  stored_message m;
  m.id = id;
  m.routing_key = "k";
  m.body = std::string(body_size, static_cast<char>('a' + id % 26));
  return m;
}

queue_row queue(const std::string& name, uint64_t hint, bool durable = true) {
  return {"/", name, durable, false, "", queue_file_name("/", name), hint};
}

void fill(const std::string& path, uint64_t n, size_t body_size = 32) {
  queue_store s;
  std::string error;
  REQUIRE(s.open(path, error));
  for (uint64_t id = 1; id <= n; ++id) REQUIRE(s.append(message(id, body_size)));
  REQUIRE(s.commit(error));
}

const problem* find(const std::vector<problem>& ps, const std::string& queue_name) {
  auto it = std::find_if(ps.begin(), ps.end(), [&](auto& p) { return p.queue == queue_name; });
  return it == ps.end() ? nullptr : &*it;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("store check reports missing, garbage and corrupt rows, and quarantine clears them",
          "[persistence]") {
  temp_dir dir;
  std::string data = dir.path.string();
  catalog_snapshot snap;
  snap.queues = {queue("good", 5), queue("orders", 10), queue("garbage", 7), queue("rows", 10),
                 queue("transient", 3, false)};
  fill(dir / snap.queues[0].file, 5);
  // "orders": no file at all. "transient" is not durable: no file expected.
  {
    fs::create_directories(dir.path / "queues");
    std::ofstream g{dir / snap.queues[2].file, std::ios::binary};
    g << std::string(20000, 'x');
  }
  std::string rows_path = dir / snap.queues[3].file;
  fill(rows_path, 10);
  {
    sqlite_db db;
    std::string error;
    REQUIRE(db.open(rows_path, SQLITE_OPEN_READWRITE, error));
    REQUIRE(db.exec("UPDATE messages SET body = 'evil' WHERE id IN (3, 9)", error));
  }

  auto problems = check_store(data, snap);
  REQUIRE(problems.size() == 3);

  const problem* missing = find(problems, "orders");
  REQUIRE(missing);
  CHECK(missing->kind == problem_kind::missing);
  CHECK(missing->messages_affected == 10);
  CHECK(missing->describe() == "queue 'orders' in vhost '/': file " + dir / snap.queues[1].file +
                                   " is missing; about 10 messages affected");

  const problem* garbage = find(problems, "garbage");
  REQUIRE(garbage);
  CHECK(garbage->kind == problem_kind::corrupt_file);
  CHECK(garbage->messages_affected == 7);
  CHECK(garbage->estimate);
  CHECK(contains(garbage->describe(), "queue 'garbage' in vhost '/': file "));
  CHECK(contains(garbage->describe(), " is corrupt ("));
  CHECK(contains(garbage->describe(), "about 7 messages affected"));

  const problem* rows = find(problems, "rows");
  REQUIRE(rows);
  CHECK(rows->kind == problem_kind::corrupt_messages);
  CHECK(rows->ids == std::vector<uint64_t>{3, 9});
  CHECK(rows->messages_affected == 2);
  CHECK_FALSE(rows->estimate);
  CHECK(contains(rows->describe(), "has 2 message(s) failing their checksum (ids 3, 9); "
                                   "2 messages affected"));

  CHECK(quarantined_messages(data) == 0);
  for (const problem& p : problems) {
    std::string where;
    INFO(p.describe());
    REQUIRE(quarantine(data, p, where));
    CHECK(fs::exists(where));
    CHECK(contains(where, data + "/quarantine/"));
  }
  // 2 rows copied aside, and the 7 messages the garbage file was thought to hold.
  CHECK(quarantined_messages(data) == 9);

  // The garbage file is kept, and the queue has a fresh, empty, working file.
  size_t moved = 0;
  for (auto& e : fs::directory_iterator{dir.path / "quarantine"})
    if (contains(e.path().filename().string(), "-garbage.db") && e.path().extension() == ".db")
      ++moved;
  CHECK(moved == 1);
  queue_store fresh;
  std::string error;
  REQUIRE(fresh.open(dir / snap.queues[2].file, error));
  CHECK(fresh.count() == 0);
  fresh.close();

  queue_store cleaned;
  REQUIRE(cleaned.open(rows_path, error));
  CHECK(cleaned.count() == 8);
  cleaned.close();

  // "orders" is still missing (nothing to move); everything else checks clean.
  auto again = check_store(data, snap);
  REQUIRE(again.size() == 1);
  CHECK(again[0].queue == "orders");
  CHECK(check_store(data, snap, false).size() == 1);
}

TEST_CASE("a file with a damaged page is quarantined and its good rows salvaged",
          "[persistence]") {
  temp_dir dir;
  std::string data = dir.path.string();
  catalog_snapshot snap;
  snap.queues = {queue("big", 2000)};
  std::string path = dir / snap.queues[0].file;
  constexpr uint64_t total = 2000;
  fill(path, total, 200);  // about 18 rows per 4 KiB leaf page

  // Overwrite one page in the middle of the file with garbage.
  auto size = fs::file_size(path);
  REQUIRE(size > 100 * 4096);
  {
    std::fstream f{path, std::ios::binary | std::ios::in | std::ios::out};
    f.seekp(static_cast<std::streamoff>((size / 4096 / 2) * 4096));
    std::string junk(4096, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }

  auto problems = check_store(data, snap);
  REQUIRE(problems.size() == 1);
  const problem& p = problems[0];
  CHECK(p.kind == problem_kind::corrupt_file);
  CHECK(contains(p.describe(), "queue 'big' in vhost '/': file " + path + " is corrupt"));
  INFO(p.describe());

  std::string where;
  REQUIRE(quarantine(data, p, where));
  CHECK(fs::exists(where));
  CHECK(fs::exists(where + ".report"));

  queue_store s;
  std::string error;
  REQUIRE(s.open(path, error));
  auto r = s.load(0, total);
  REQUIRE(r.ok);
  CHECK(r.corrupt_ids.empty());
  uint64_t salvaged = r.messages.size();
  CHECK(salvaged >= total * 9 / 10);
  CHECK(salvaged < total);
  for (auto& m : r.messages) CHECK(m.body == message(m.id, 200).body);
  s.close();

  CHECK(quarantined_messages(data) == p.messages_affected - salvaged);
  CHECK(check_store(data, snap).empty());
}

TEST_CASE("an empty file is an empty queue unless the catalog expected messages",
          "[persistence]") {
  temp_dir dir;
  catalog_snapshot snap;
  snap.queues = {queue("empty", 0), queue("emptied", 4)};
  fs::create_directories(dir.path / "queues");
  for (auto& q : snap.queues) std::ofstream{dir / q.file};
  auto problems = check_store(dir.path.string(), snap);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].queue == "emptied");
  CHECK(problems[0].kind == problem_kind::corrupt_file);
  CHECK(contains(problems[0].describe(), "(the file is empty); about 4 messages affected"));
}

TEST_CASE("files no queue refers to are found", "[persistence]") {
  temp_dir dir;
  catalog_snapshot snap;
  snap.queues = {queue("kept", 0)};
  fill(dir / snap.queues[0].file, 1);
  fill(dir / queue_file_name("/", "deleted"), 1);
  auto orphans = orphan_files(dir.path.string(), snap);
  CHECK(orphans == std::vector<std::string>{queue_file_name("/", "deleted")});
}
