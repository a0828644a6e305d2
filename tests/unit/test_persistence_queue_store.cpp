// A queue's message file: append/commit/load order, paging, remove, mark_delivered (the
// checksum stays right), rollback of what was not committed, reopening, giving disk back
// after a purge and after draining, checksum failures (a byte flipped in the file and a row
// changed behind our back), quarantine of rows, and an append throughput sanity check.
#include <catch2/catch.hpp>

#include "temp_dir.hpp"

#include <sqlite3.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "persistence/queue_store.hpp"
#include "persistence/sqlite_db.hpp"

using namespace warren::persistence;
namespace fs = std::filesystem;

namespace {

struct temp_dir : warren::test::temp_dir {
  temp_dir() : warren::test::temp_dir("warren-queue") {}
};

stored_message message(uint64_t id, size_t body_size = 16) {
  stored_message m;
  m.id = id;
  m.exchange = "amq.direct";
  m.routing_key = "key-" + std::to_string(id);
  m.properties = std::string{"\x80\x00\x01", 3} + std::to_string(id);
  m.body = "body-" + std::to_string(id);
  if (m.body.size() < body_size) m.body.resize(body_size, static_cast<char>('a' + id % 26));
  return m;
}

std::vector<uint64_t> ids_of(const queue_store::load_result& r) {
  std::vector<uint64_t> ids;
  for (auto& m : r.messages) ids.push_back(m.id);
  return ids;
}

void append_range(queue_store& s, uint64_t first, uint64_t last, size_t body_size = 16) {
  std::string error;
  for (uint64_t id = first; id <= last; ++id) REQUIRE(s.append(message(id, body_size)));
  REQUIRE(s.commit(error));
}

void raw_exec(const std::string& path, const char* sql) {
  sqlite_db db;
  std::string error;
  REQUIRE(db.open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, error));
  REQUIRE(db.exec(sql, error));
}

}  // namespace

TEST_CASE("queue store appends, commits and loads in id order", "[persistence]") {
  temp_dir dir;
  std::string path = dir / "queues/q.db";
  std::string error;
  queue_store s;
  REQUIRE(s.open(path, error));
  CHECK(s.count() == 0);
  CHECK(s.max_id() == 0);
  for (uint64_t id : {3, 1, 2, 10, 7}) REQUIRE(s.append(message(id)));
  CHECK(s.in_transaction());
  REQUIRE(s.commit(error));
  CHECK_FALSE(s.in_transaction());
  REQUIRE(s.commit(error));  // nothing to commit
  CHECK(s.count() == 5);
  CHECK(s.max_id() == 10);

  auto all = s.load(0, 100);
  REQUIRE(all.ok);
  CHECK(all.corrupt_ids.empty());
  CHECK(ids_of(all) == std::vector<uint64_t>{1, 2, 3, 7, 10});
  CHECK(all.last_id == 10);
  const stored_message& m = all.messages[3];
  auto expected = message(7);
  CHECK(m.exchange == expected.exchange);
  CHECK(m.routing_key == expected.routing_key);
  CHECK(m.properties == expected.properties);
  CHECK(m.body == expected.body);
  CHECK_FALSE(m.delivered);

  auto page = s.load(2, 2);
  CHECK(ids_of(page) == std::vector<uint64_t>{3, 7});
  CHECK(page.last_id == 7);
  CHECK(s.load(10, 5).messages.empty());
  CHECK(s.load(10, 5).last_id == 10);

  REQUIRE(s.remove(3));
  REQUIRE(s.remove(999));  // not stored: nothing happens
  REQUIRE(s.mark_delivered(7));
  REQUIRE(s.mark_delivered(7));  // already delivered
  REQUIRE(s.commit(error));
  auto after = s.load(0, 100);
  CHECK(after.corrupt_ids.empty());
  CHECK(ids_of(after) == std::vector<uint64_t>{1, 2, 7, 10});
  CHECK(after.messages[2].delivered);
  CHECK_FALSE(after.messages[1].delivered);

  // Appended with the flag already set, then marked again: still a good checksum.
  auto d = message(11);
  d.delivered = true;
  REQUIRE(s.append(d));
  REQUIRE(s.mark_delivered(11));
  REQUIRE(s.commit(error));
  auto with_d = s.load(10, 10);
  REQUIRE(with_d.messages.size() == 1);
  CHECK(with_d.messages[0].delivered);
  CHECK(with_d.corrupt_ids.empty());
}

TEST_CASE("queue store rejects bad appends without losing the batch", "[persistence]") {
  temp_dir dir;
  std::string error;
  queue_store s;
  REQUIRE(s.open(dir / "q.db", error));
  REQUIRE(s.append(message(1)));
  CHECK_FALSE(s.append(message(1)));  // duplicate id: this statement fails alone
  CHECK_FALSE(s.last_error().empty());
  CHECK_FALSE(s.append(message(0)));
  REQUIRE(s.append(message(2)));
  REQUIRE(s.commit(error));
  CHECK(ids_of(s.load(0, 10)) == std::vector<uint64_t>{1, 2});
  CHECK(message_checksum(message(1)) != message_checksum(message(2)));
}

TEST_CASE("queue store keeps committed data across a reopen and drops the rest", "[persistence]") {
  temp_dir dir;
  std::string path = dir / "q.db";
  std::string error;
  {
    queue_store s;
    REQUIRE(s.open(path, error));
    append_range(s, 1, 50);
    REQUIRE(s.remove(10));
    REQUIRE(s.commit(error));
    REQUIRE(s.append(message(51)));  // never committed
    REQUIRE(s.remove(20));           // never committed
  }
  queue_store s;
  REQUIRE(s.open(path, error));
  CHECK(s.count() == 49);
  CHECK(s.max_id() == 50);
  auto r = s.load(0, 1000);
  CHECK(r.messages.size() == 49);
  CHECK(r.corrupt_ids.empty());
  CHECK(r.messages[18].id == 20);
  CHECK(r.messages[18].body == message(20).body);
}

TEST_CASE("committed messages survive kill -9, uncommitted ones vanish", "[persistence]") {
  temp_dir dir;
  std::string path = dir / "q.db";
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child only stores, reports and waits to be killed; it never returns to Catch.
    close(ready[0]);
    queue_store s;
    std::string error;
    bool ok = s.open(path, error);
    for (uint64_t id = 1; ok && id <= 1000; ++id) ok = s.append(message(id, 200));
    ok = ok && s.commit(error);
    for (uint64_t id = 1; ok && id <= 100; ++id) ok = s.remove(id) && s.mark_delivered(id + 100);
    ok = ok && s.commit(error);
    for (uint64_t id = 1001; ok && id <= 2000; ++id) ok = s.append(message(id, 200));
    ok = ok && s.remove(500);  // uncommitted as well
    char c = ok ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(ready[1]);
  char c = 0;
  REQUIRE(read(ready[0], &c, 1) == 1);
  close(ready[0]);
  REQUIRE(kill(child, SIGKILL) == 0);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  REQUIRE(c == 'y');

  queue_store s;
  std::string error;
  REQUIRE(s.open(path, error));
  auto r = s.load(0, 5000);
  REQUIRE(r.ok);
  CHECK(r.corrupt_ids.empty());
  REQUIRE(r.messages.size() == 900);
  CHECK(r.messages.front().id == 101);
  CHECK(r.messages.front().delivered);
  CHECK(r.messages.back().id == 1000);
  CHECK_FALSE(r.messages.back().delivered);
  CHECK(s.max_id() == 1000);
}

TEST_CASE("queue store refuses a file that is not a queue file", "[persistence]") {
  temp_dir dir;
  std::string error;
  raw_exec(dir / "other.db", "CREATE TABLE t(x)");
  queue_store s;
  CHECK_FALSE(s.open(dir / "other.db", error));
  CHECK(error.find("not a queue file") != std::string::npos);
  {
    std::ofstream garbage{dir / "garbage.db", std::ios::binary};
    garbage << std::string(10000, 'Z');
  }
  CHECK_FALSE(s.open(dir / "garbage.db", error));
  CHECK_FALSE(s.is_open());
  CHECK_FALSE(s.append(message(1)));
  CHECK_FALSE(s.commit(error));
}

TEST_CASE("queue store gives disk back after purge and after draining", "[persistence]") {
  temp_dir dir;
  std::string path = dir / "q.db";
  std::string error;
  queue_store s;
  REQUIRE(s.open(path, error));
  uint64_t empty_size = database_bytes(path);

  append_range(s, 1, 4000, 1024);
  uint64_t full = database_bytes(path);
  CHECK(full > 4000 * 1024);

  SECTION("purge") {
    REQUIRE(s.purge());
    CHECK(s.count() == 0);
    REQUIRE(s.reclaim());
  }
  SECTION("drain") {
    for (uint64_t id = 1; id <= 4000; ++id) {
      REQUIRE(s.remove(id));
      if (id % 500 == 0) REQUIRE(s.commit(error));
    }
    CHECK(s.count() == 0);
    REQUIRE(s.reclaim());
  }
  SECTION("mostly drained, in bounded steps") {
    for (uint64_t id = 1; id <= 3600; ++id) REQUIRE(s.remove(id));
    REQUIRE(s.commit(error));
    uint64_t free_before = s.free_pages();
    CHECK(free_before > 1000);  // about three 1 KiB rows per page
    REQUIRE(s.reclaim(100));
    CHECK(s.free_pages() == free_before - 100);
    REQUIRE(s.reclaim());
    CHECK(s.free_pages() == 0);
    CHECK(s.count() == 400);
    CHECK(database_bytes(path) < full / 5);
    for (uint64_t id = 3601; id <= 4000; ++id) REQUIRE(s.remove(id));
    REQUIRE(s.commit(error));
    REQUIRE(s.reclaim());
  }
  uint64_t after = database_bytes(path);
  CHECK(after < full / 20);
  CHECK(after <= empty_size + 64 * 1024);
  std::error_code ec;
  CHECK(fs::file_size(path + "-wal", ec) == 0);

  // Still usable, and the ids go on.
  append_range(s, 4001, 4010);
  CHECK(s.count() == 10);
  s.close();
  CHECK(queue_store::destroy(path));
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + "-wal"));
  CHECK_FALSE(fs::exists(path + "-shm"));
}

TEST_CASE("reclaim needs no open transaction", "[persistence]") {
  temp_dir dir;
  std::string error;
  queue_store s;
  REQUIRE(s.open(dir / "q.db", error));
  REQUIRE(s.append(message(1)));
  CHECK_FALSE(s.reclaim());
  REQUIRE(s.commit(error));
  CHECK(s.reclaim());
}

TEST_CASE("queue store reports rows failing their checksum", "[persistence]") {
  temp_dir dir;
  std::string path = dir / "q.db";
  std::string error;
  {
    queue_store s;
    REQUIRE(s.open(path, error));
    for (uint64_t id = 1; id <= 100; ++id) {
      auto m = message(id, 64);
      if (id == 42) m.body = "MARKER-forty-two-" + std::string(64, '#');
      REQUIRE(s.append(m));
    }
    REQUIRE(s.commit(error));
  }  // closing checkpoints the WAL into the database file

  SECTION("a byte flipped inside a stored body in the file") {
    std::string bytes;
    {
      std::ifstream in{path, std::ios::binary};
      bytes.assign(std::istreambuf_iterator<char>{in}, {});
    }
    auto at = bytes.find("MARKER-forty-two-");
    REQUIRE(at != std::string::npos);
    bytes[at + 3] ^= 0x20;
    {
      std::ofstream out{path, std::ios::binary | std::ios::trunc};
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    queue_store s;
    REQUIRE(s.open(path, error));
    auto r = s.load(0, 1000);
    REQUIRE(r.ok);
    CHECK(r.corrupt_ids == std::vector<uint64_t>{42});
    CHECK(r.messages.size() == 99);
    CHECK(r.last_id == 100);
  }
  SECTION("rows changed behind our back") {
    raw_exec(path,
             "UPDATE messages SET body = 'tampered' WHERE id = 5;"
             "UPDATE messages SET routing_key = 'x' WHERE id = 6;"
             "UPDATE messages SET delivered = 1 WHERE id = 7;"
             "UPDATE messages SET checksum = 'abc' WHERE id = 8;");
    queue_store s;
    REQUIRE(s.open(path, error));
    auto first = s.load(0, 6);
    CHECK(ids_of(first) == std::vector<uint64_t>{1, 2, 3, 4});
    CHECK(first.corrupt_ids == std::vector<uint64_t>{5, 6});
    CHECK(first.last_id == 6);
    auto rest = s.load(first.last_id, 1000);
    CHECK(rest.corrupt_ids == std::vector<uint64_t>{7, 8});
    CHECK(rest.messages.size() == 92);

    REQUIRE(s.quarantine_rows({5, 6, 7, 8}, dir / "quarantine/queues/q.db"));
    CHECK(s.count() == 96);
    auto clean = s.load(0, 1000);
    CHECK(clean.corrupt_ids.empty());
    CHECK(clean.messages.size() == 96);

    sqlite_db q;
    int64_t n = 0;
    REQUIRE(q.open(dir / "quarantine/queues/q.db", SQLITE_OPEN_READWRITE, error));
    REQUIRE(q.query_int("SELECT count(*) FROM messages", n, error));
    CHECK(n == 4);
    REQUIRE(q.query_int("SELECT count(*) FROM messages WHERE body = 'tampered' AND id = 5", n,
                        error));
    CHECK(n == 1);
  }
}

TEST_CASE("queue store append throughput (sanity, not timed)", "[persistence]") {
  temp_dir dir;
  std::string error;
  queue_store s;
  REQUIRE(s.open(dir / "q.db", error));
  constexpr uint64_t n = 10000;
  std::vector<stored_message> batch;
  for (uint64_t id = 1; id <= n; ++id) batch.push_back(message(id, 100));
  auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    REQUIRE(s.append(batch[i]));
    if ((i + 1) % 1000 == 0) REQUIRE(s.commit(error));
  }
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("queue_store: %llu appends of 100-byte bodies in batches of 1000: %.0f msgs/s\n",
              static_cast<unsigned long long>(n), n / seconds);
  CHECK(s.count() == n);
}

TEST_CASE("queue store keeps each message's deadline under its checksum", "[persistence]") {
  temp_dir dir;
  std::string path = dir / "q.db";
  std::string error;
  queue_store s;
  REQUIRE(s.open(path, error));
  auto timed = message(1);
  timed.expires = 1796022483123;
  REQUIRE(s.append(timed));
  REQUIRE(s.append(message(2)));
  REQUIRE(s.mark_delivered(1));
  REQUIRE(s.commit(error));
  auto r = s.load(0, 10);
  REQUIRE(r.corrupt_ids.empty());
  REQUIRE(r.messages.size() == 2);
  CHECK(r.messages[0].expires == 1796022483123);
  CHECK(r.messages[0].delivered);
  CHECK(r.messages[1].expires == 0);
  s.close();
  raw_exec(path, "UPDATE messages SET expires = expires + 1 WHERE id = 1;");
  REQUIRE(s.open(path, error));
  CHECK(s.load(0, 10).corrupt_ids == std::vector<uint64_t>{1});
}

TEST_CASE("queue store opens a file written before deadlines were kept", "[persistence]") {
  temp_dir dir;
  std::string path = dir / "q.db";
  std::string error;
  // A schema version 1 file with one row, as the earlier build wrote it: its checksum has no
  // deadline in it.
  auto old = message(7);
  std::string sql =
    "PRAGMA application_id=1467109709; PRAGMA user_version=1;"
    "CREATE TABLE messages(id INTEGER PRIMARY KEY, properties BLOB, body BLOB, exchange TEXT,"
    " routing_key TEXT, delivered INTEGER NOT NULL, checksum INTEGER NOT NULL);"
    "INSERT INTO messages VALUES(7, x'" +
    [&] {
      std::string hex;
      for (unsigned char c : old.properties) {
        char b[3];
        std::snprintf(b, sizeof b, "%02x", c);
        hex += b;
      }
      return hex;
    }() +
    "', '" + old.body + "', '" + old.exchange + "', '" + old.routing_key + "', 0, " +
    std::to_string(message_checksum(old)) + ");";
  raw_exec(path, sql.c_str());
  queue_store s;
  REQUIRE(s.open(path, error));
  auto r = s.load(0, 10);
  REQUIRE(r.corrupt_ids.empty());
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].body == old.body);
  CHECK(r.messages[0].expires == 0);
  auto timed = message(8);
  timed.expires = 42;
  REQUIRE(s.append(timed));
  REQUIRE(s.commit(error));
  CHECK(s.load(7, 10).messages.at(0).expires == 42);
  sqlite_db db;
  int64_t version = 0;
  REQUIRE(db.open(path, SQLITE_OPEN_READWRITE, error));
  REQUIRE(db.query_int("PRAGMA user_version", version, error));
  CHECK(version == 2);
}
