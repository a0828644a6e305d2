// Implementation of a queue's message file (see queue_store.hpp). Schema version 2:
//   messages(id INTEGER PRIMARY KEY, properties BLOB, body BLOB, exchange TEXT,
//            routing_key TEXT, delivered INTEGER, checksum INTEGER, expires INTEGER)
// Version 1 files (without `expires`) get the column when opened.
// identified by PRAGMA application_id = queue_application_id. All statements used on the
// write and read paths are prepared once in open() and reused.
#include "persistence/queue_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <system_error>

#include "persistence/checksum.hpp"

namespace warren::persistence {

namespace fs = std::filesystem;

namespace {

constexpr int64_t queue_application_id = 0x5772514D;  // "WrQM"
constexpr int64_t queue_schema_version = 2;

constexpr const char* schema_sql =
    "CREATE TABLE IF NOT EXISTS messages("
    " id INTEGER PRIMARY KEY, properties BLOB, body BLOB, exchange TEXT,"
    " routing_key TEXT, delivered INTEGER NOT NULL, checksum INTEGER NOT NULL,"
    " expires INTEGER NOT NULL DEFAULT 0);";

uint32_t update_length(uint32_t crc, uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  return crc32_update(crc, bytes, sizeof bytes);
}

uint32_t update_field(uint32_t crc, std::string_view field) {
  return crc32_update(update_length(crc, field.size()), field);
}

uint32_t checksum_of(uint64_t id, std::string_view exchange, std::string_view routing_key,
                     std::string_view properties, std::string_view body, int64_t expires,
                     unsigned char delivered) {
  uint32_t crc = update_length(0, id);
  crc = update_field(crc, exchange);
  crc = update_field(crc, routing_key);
  crc = update_field(crc, properties);
  crc = update_field(crc, body);
  if (expires != 0)
    crc = update_length(crc, static_cast<uint64_t>(expires));
  return crc32_update(crc, &delivered, 1);
}

// What setting the delivered flag (the last byte summed) from 0 to 1 xors into the CRC.
uint32_t delivered_delta() {
  const unsigned char zero = 0, one = 1;
  return crc32_update(0, &one, 1) ^ crc32_update(0, &zero, 1);
}

constexpr uint64_t max_id_value = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

int64_t to_key(uint64_t id) { return static_cast<int64_t>(id > max_id_value ? max_id_value : id); }

}  // namespace

uint32_t message_checksum(const stored_message& m) {
  return checksum_of(m.id, m.exchange, m.routing_key, m.properties, m.body, m.expires,
                     m.delivered ? 1 : 0);
}

bool queue_store::fail(std::string message) {
  last_error_ = std::move(message);
  return false;
}

bool queue_store::open(const std::string& path, std::string& error) {
  close();
  fs::path parent = fs::path{path}.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    bool created = fs::create_directories(parent, ec);
    if (ec) {
      error = "cannot create directory " + parent.string() + ": " + ec.message();
      return false;
    }
    if (created) sync_directory(parent.parent_path().string());
  }
  if (!db_.open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, error)) return false;

  int64_t app_id = 0, version = 0, tables = 0;
  bool ok = db_.query_int("PRAGMA application_id", app_id, error) &&
            db_.query_int("PRAGMA user_version", version, error) &&
            db_.query_int("SELECT count(*) FROM sqlite_schema", tables, error);
  if (ok && tables > 0 && app_id != queue_application_id) {
    error = "not a queue file (application_id " + std::to_string(app_id) + ")";
    ok = false;
  }
  if (ok && version > queue_schema_version) {
    error = "queue file schema version " + std::to_string(version) + " is newer than this build";
    ok = false;
  }
  // auto_vacuum only takes effect when set before the first table is created.
  ok = ok && (tables > 0 || db_.exec("PRAGMA auto_vacuum=INCREMENTAL", error)) &&
       db_.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                " PRAGMA journal_size_limit=4194304; PRAGMA cache_size=-1024;"
                " PRAGMA secure_delete=OFF;",
                error);
  std::string version_sql = "PRAGMA user_version=" + std::to_string(queue_schema_version) + ";";
  if (ok && tables == 0) {
    std::string ids = "PRAGMA application_id=" + std::to_string(queue_application_id) + "; " +
                      version_sql;
    ok = db_.exec("BEGIN IMMEDIATE", error) && db_.exec(schema_sql, error) &&
         db_.exec(ids.c_str(), error) && db_.exec("COMMIT", error);
  } else if (ok && version < 2) {  // a file from before deadlines were kept
    ok = db_.exec("BEGIN IMMEDIATE", error) &&
         db_.exec("ALTER TABLE messages ADD COLUMN expires INTEGER NOT NULL DEFAULT 0", error) &&
         db_.exec(version_sql.c_str(), error) && db_.exec("COMMIT", error);
    if (!ok && db_.in_transaction()) rollback();
  }
  ok = ok && begin_.prepare(db_, "BEGIN IMMEDIATE", error) &&
       commit_.prepare(db_, "COMMIT", error) && rollback_.prepare(db_, "ROLLBACK", error) &&
       insert_.prepare(db_,
                       "INSERT INTO messages(id, properties, body, exchange, routing_key,"
                       " delivered, checksum, expires) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                       error) &&
       mark_delivered_.prepare(db_,
                               "UPDATE messages SET delivered = 1,"
                               " checksum = (checksum | ?2) - (checksum & ?2)"
                               " WHERE id = ?1 AND delivered = 0",
                               error) &&
       remove_.prepare(db_, "DELETE FROM messages WHERE id = ?1", error) &&
       remove_through_.prepare(db_, "DELETE FROM messages WHERE id <= ?1", error) &&
       load_.prepare(db_,
                     "SELECT id, properties, body, exchange, routing_key, delivered, checksum,"
                     " expires FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2",
                     error) &&
       count_.prepare(db_, "SELECT count(*) FROM messages", error) &&
       max_id_.prepare(db_, "SELECT coalesce(max(id), 0) FROM messages", error);
  if (!ok) {
    error = path + ": " + error;
    close();
    return false;
  }
  path_ = path;
  batch_error_.clear();
  return true;
}

void queue_store::close() {
  if (db_.in_transaction()) rollback();
  for (sqlite_stmt* s : {&begin_, &commit_, &rollback_, &insert_, &mark_delivered_, &remove_,
                         &remove_through_, &load_, &count_, &max_id_})
    s->finalize();
  db_.close();
  path_.clear();
}

bool queue_store::destroy(const std::string& path) { return remove_database_files(path); }

void queue_store::rollback() {
  std::string ignored;
  if (!rollback_.is_prepared() || !rollback_.run(ignored)) db_.exec("ROLLBACK", ignored);
}

bool queue_store::begin_if_needed() {
  if (!db_.is_open()) return fail("queue file is not open");
  if (db_.in_transaction()) return true;
  std::string error;
  if (!begin_.run(error)) return fail("begin: " + error);
  return true;
}

// A failed statement either failed alone (the transaction is still open) or made SQLite roll
// the whole transaction back; in the second case the batch is lost and commit() must say so.
bool queue_store::after_write_failure(const char* what) {
  last_error_ = std::string{what} + ": " + db_.last_error();
  if (!db_.in_transaction() && batch_error_.empty()) batch_error_ = last_error_;
  return false;
}

bool queue_store::append(const stored_message& m) {
  if (m.id == 0 || m.id > max_id_value) return fail("message id out of range");
  if (!begin_if_needed()) return false;
  insert_.reset();
  insert_.bind_int(1, static_cast<int64_t>(m.id));
  insert_.bind_blob(2, m.properties);
  insert_.bind_blob(3, m.body);
  insert_.bind_text(4, m.exchange);
  insert_.bind_text(5, m.routing_key);
  insert_.bind_int(6, m.delivered ? 1 : 0);
  insert_.bind_int(7, message_checksum(m));
  insert_.bind_int(8, m.expires);
  std::string error;
  if (!insert_.run(error)) return after_write_failure("append");
  return true;
}

bool queue_store::mark_delivered(uint64_t id) {
  if (!begin_if_needed()) return false;
  static const uint32_t delta = delivered_delta();
  mark_delivered_.reset();
  mark_delivered_.bind_int(1, to_key(id));
  mark_delivered_.bind_int(2, delta);
  std::string error;
  if (!mark_delivered_.run(error)) return after_write_failure("mark_delivered");
  return true;
}

bool queue_store::remove(uint64_t id) {
  if (!begin_if_needed()) return false;
  remove_.reset();
  remove_.bind_int(1, to_key(id));
  std::string error;
  if (!remove_.run(error)) return after_write_failure("remove");
  return true;
}

bool queue_store::remove_through(uint64_t id) {
  if (!begin_if_needed()) return false;
  remove_through_.reset();
  remove_through_.bind_int(1, to_key(id));
  std::string error;
  if (!remove_through_.run(error)) return after_write_failure("remove_through");
  return true;
}

bool queue_store::commit(std::string& error) {
  if (!db_.is_open()) {
    error = "queue file is not open";
    return false;
  }
  if (!batch_error_.empty()) {
    if (db_.in_transaction()) rollback();
    error = "batch rolled back: " + batch_error_;
    batch_error_.clear();
    return false;
  }
  if (!db_.in_transaction()) return true;
  if (!commit_.run(error)) {
    error = "commit: " + error;
    if (db_.in_transaction()) rollback();
    return false;
  }
  return true;
}

bool queue_store::purge() {
  if (!begin_if_needed()) return false;
  std::string error;
  if (!db_.exec("DELETE FROM messages", error)) return after_write_failure("purge");
  if (!commit(error)) return fail(error);
  return true;
}

bool queue_store::reclaim(uint64_t max_pages) {
  if (!db_.is_open()) return fail("queue file is not open");
  if (db_.in_transaction()) return fail("reclaim: a transaction is open");
  std::string error;
  // Incremental vacuum writes every page it gives back to the WAL first; VACUUM of an empty
  // table writes a handful of pages.
  if (count() == 0) {
    if (!db_.exec("VACUUM", error)) return fail("vacuum: " + error);
  } else {
    constexpr uint64_t step = 1024;  // pages (4 MiB) per transaction and checkpoint
    uint64_t done = 0;
    for (uint64_t left = free_pages(); left > 0 && (max_pages == 0 || done < max_pages);) {
      uint64_t n = std::min(step, max_pages == 0 ? step : max_pages - done);
      std::string sql = "PRAGMA incremental_vacuum(" + std::to_string(n) + ")";
      if (!db_.exec(sql.c_str(), error)) return fail("incremental_vacuum: " + error);
      if (!db_.exec("PRAGMA wal_checkpoint(TRUNCATE)", error)) return fail("checkpoint: " + error);
      done += n;
      uint64_t now_left = free_pages();
      if (now_left >= left) break;  // a file made without incremental auto-vacuum
      left = now_left;
    }
  }
  if (!db_.exec("PRAGMA wal_checkpoint(TRUNCATE)", error)) return fail("checkpoint: " + error);
  return true;
}

uint64_t queue_store::free_pages() {
  int64_t n = 0;
  std::string error;
  return db_.query_int("PRAGMA freelist_count", n, error) ? static_cast<uint64_t>(n) : 0;
}

uint64_t queue_store::count() {
  count_.reset();
  uint64_t n = count_.step() == SQLITE_ROW ? static_cast<uint64_t>(count_.column_int(0)) : 0;
  count_.reset();
  return n;
}

uint64_t queue_store::max_id() {
  max_id_.reset();
  uint64_t n = max_id_.step() == SQLITE_ROW ? static_cast<uint64_t>(max_id_.column_int(0)) : 0;
  max_id_.reset();
  return n;
}

queue_store::load_result queue_store::load(uint64_t after_id, size_t limit) {
  load_result result;
  result.last_id = after_id;
  if (!db_.is_open()) {
    result.ok = false;
    result.error = "queue file is not open";
    return result;
  }
  load_.reset();
  load_.bind_int(1, to_key(after_id));
  load_.bind_int(2, static_cast<int64_t>(std::min<size_t>(limit, max_id_value)));
  int rc;
  while ((rc = load_.step()) == SQLITE_ROW) {
    uint64_t id = static_cast<uint64_t>(load_.column_int(0));
    result.last_id = id;
    int64_t delivered = load_.column_int(5);
    bool well_formed = load_.column_type(6) == SQLITE_INTEGER && (delivered == 0 || delivered == 1);
    std::string_view properties = load_.column_view(1), body = load_.column_view(2);
    std::string_view exchange = load_.column_view(3), routing_key = load_.column_view(4);
    int64_t expires = load_.column_int(7);
    if (!well_formed ||
        checksum_of(id, exchange, routing_key, properties, body, expires,
                    static_cast<unsigned char>(delivered)) != load_.column_int(6)) {
      result.corrupt_ids.push_back(id);
      continue;
    }
    stored_message& m = result.messages.emplace_back();
    m.id = id;
    m.properties = properties;
    m.body = body;
    m.exchange = exchange;
    m.routing_key = routing_key;
    m.delivered = delivered == 1;
    m.expires = expires;
  }
  if (rc != SQLITE_DONE) {
    result.ok = false;
    result.error = path_ + ": " + db_.last_error();
  }
  load_.reset();
  return result;
}

bool queue_store::quarantine_rows(const std::vector<uint64_t>& ids,
                                  const std::string& quarantine_db_path) {
  if (!db_.is_open()) return fail("queue file is not open");
  std::string error;
  if (!commit(error)) return fail(error);
  if (ids.empty()) return true;

  fs::path parent = fs::path{quarantine_db_path}.parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) return fail("cannot create " + parent.string() + ": " + ec.message());

  sqlite_stmt attach;
  if (!attach.prepare(db_, "ATTACH DATABASE ?1 AS quarantine", error)) return fail(error);
  attach.bind_text(1, quarantine_db_path);
  if (!attach.run(error)) return fail("attach " + quarantine_db_path + ": " + error);
  attach.finalize();

  bool ok = db_.exec("PRAGMA quarantine.synchronous=FULL;"
                     "CREATE TABLE IF NOT EXISTS quarantine.messages("
                     " id INTEGER, properties BLOB, body BLOB, exchange TEXT, routing_key TEXT,"
                     " delivered INTEGER, checksum INTEGER, quarantined_at INTEGER);",
                     error);
  // Copy and make the copy durable first; only then delete the originals.
  for (int pass = 0; ok && pass < 2; ++pass) {
    sqlite_stmt stmt;
    const char* sql = pass == 0 ? "INSERT INTO quarantine.messages SELECT id, properties, body,"
                                  " exchange, routing_key, delivered, checksum,"
                                  " CAST(strftime('%s','now') AS INTEGER)"
                                  " FROM main.messages WHERE id = ?1"
                                : "DELETE FROM main.messages WHERE id = ?1";
    ok = stmt.prepare(db_, sql, error) && db_.exec("BEGIN IMMEDIATE", error);
    for (size_t i = 0; ok && i < ids.size(); ++i) {
      stmt.reset();
      stmt.bind_int(1, to_key(ids[i]));
      ok = stmt.run(error);
    }
    stmt.finalize();
    if (ok) {
      ok = db_.exec("COMMIT", error);
    }
    if (!ok && db_.in_transaction()) rollback();
  }
  std::string detach_error;
  db_.exec("DETACH DATABASE quarantine", detach_error);
  if (!ok) return fail("quarantine to " + quarantine_db_path + ": " + error);
  sync_directory(parent.string());
  return true;
}

}  // namespace warren::persistence
