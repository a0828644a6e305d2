// Implementation of the SQLite wrappers and file helpers (see sqlite_db.hpp). Every SQLite
// error is turned into a message carrying the SQLite error text; handles are released in
// destructors, so a failed open leaves nothing behind.
#include "persistence/sqlite_db.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <utility>

namespace warren::persistence {

namespace fs = std::filesystem;

// --- sqlite_db

sqlite_db::~sqlite_db() { close(); }

sqlite_db::sqlite_db(sqlite_db&& other) noexcept : db_{std::exchange(other.db_, nullptr)} {}

sqlite_db& sqlite_db::operator=(sqlite_db&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

bool sqlite_db::open(const std::string& path, int flags, std::string& error) {
  close();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    error = "cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return false;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  db_ = db;
  return true;
}

void sqlite_db::close() {
  if (db_) {
    // Statements are owned by sqlite_stmt objects; close_v2 defers until they are finalized.
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

bool sqlite_db::exec(const char* sql, std::string& error) {
  if (!db_) {
    error = "database is not open";
    return false;
  }
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    error = message ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    return false;
  }
  return true;
}

bool sqlite_db::query_int(const char* sql, int64_t& out, std::string& error) {
  sqlite_stmt stmt;
  if (!stmt.prepare(*this, sql, error)) return false;
  int rc = stmt.step();
  if (rc == SQLITE_ROW) {
    out = stmt.column_int(0);
    return true;
  }
  error = rc == SQLITE_DONE ? std::string{"no result from: "} + sql : last_error();
  return false;
}

void sqlite_db::disable_checkpoint_on_close() {
  if (db_) sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
}

bool sqlite_db::in_transaction() const { return db_ && sqlite3_get_autocommit(db_) == 0; }

int64_t sqlite_db::changes() const { return db_ ? sqlite3_changes64(db_) : 0; }

int sqlite_db::last_error_code() const { return db_ ? sqlite3_extended_errcode(db_) : SQLITE_MISUSE; }

std::string sqlite_db::last_error() const {
  return db_ ? std::string{sqlite3_errmsg(db_)} : std::string{"database is not open"};
}

// --- sqlite_stmt

sqlite_stmt::~sqlite_stmt() { finalize(); }

sqlite_stmt::sqlite_stmt(sqlite_stmt&& other) noexcept
    : stmt_{std::exchange(other.stmt_, nullptr)}, db_{std::exchange(other.db_, nullptr)} {}

sqlite_stmt& sqlite_stmt::operator=(sqlite_stmt&& other) noexcept {
  if (this != &other) {
    finalize();
    stmt_ = std::exchange(other.stmt_, nullptr);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

bool sqlite_stmt::prepare(const sqlite_db& db, const char* sql, std::string& error) {
  finalize();
  if (!db.is_open()) {
    error = "database is not open";
    return false;
  }
  int rc = sqlite3_prepare_v3(db.handle(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    error = db.last_error();
    finalize();
    return false;
  }
  db_ = db.handle();
  return true;
}

void sqlite_stmt::finalize() {
  if (stmt_) sqlite3_finalize(stmt_);
  stmt_ = nullptr;
  db_ = nullptr;
}

void sqlite_stmt::reset() {
  if (!stmt_) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool sqlite_stmt::bind_int(int index, int64_t value) {
  return stmt_ && sqlite3_bind_int64(stmt_, index, value) == SQLITE_OK;
}

bool sqlite_stmt::bind_blob(int index, std::string_view value) {
  // A zero-length blob with a null pointer would bind NULL; give it a valid pointer.
  const char* data = value.data() ? value.data() : "";
  return stmt_ && sqlite3_bind_blob64(stmt_, index, data, value.size(), SQLITE_STATIC) == SQLITE_OK;
}

bool sqlite_stmt::bind_text(int index, std::string_view value) {
  const char* data = value.data() ? value.data() : "";
  return stmt_ &&
         sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_STATIC, SQLITE_UTF8) == SQLITE_OK;
}

bool sqlite_stmt::bind_null(int index) { return stmt_ && sqlite3_bind_null(stmt_, index) == SQLITE_OK; }

int sqlite_stmt::step() { return stmt_ ? sqlite3_step(stmt_) : SQLITE_MISUSE; }

bool sqlite_stmt::run(std::string& error) {
  if (!stmt_) {
    error = "statement is not prepared";
    return false;
  }
  int rc;
  while ((rc = sqlite3_step(stmt_)) == SQLITE_ROW) {
  }
  bool ok = rc == SQLITE_DONE;
  if (!ok) error = sqlite3_errmsg(db_);
  reset();
  return ok;
}

int sqlite_stmt::column_type(int index) const {
  return stmt_ ? sqlite3_column_type(stmt_, index) : SQLITE_NULL;
}

int64_t sqlite_stmt::column_int(int index) const {
  return stmt_ ? sqlite3_column_int64(stmt_, index) : 0;
}

std::string sqlite_stmt::column_string(int index) const { return std::string{column_view(index)}; }

std::string_view sqlite_stmt::column_view(int index) const {
  if (!stmt_) return {};
  const void* data = sqlite3_column_blob(stmt_, index);
  int size = sqlite3_column_bytes(stmt_, index);
  if (!data || size <= 0) return {};
  return {static_cast<const char*>(data), static_cast<size_t>(size)};
}

// --- files

bool sync_directory(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

uint64_t database_bytes(const std::string& path) {
  uint64_t total = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    auto size = fs::file_size(path + suffix, ec);
    if (!ec) total += size;
  }
  return total;
}

bool remove_database_files(const std::string& path) {
  bool ok = true;
  for (const char* suffix : {"-wal", "-shm", "-journal", ""}) {
    std::error_code ec;
    fs::remove(path + suffix, ec);
    if (ec) ok = false;
  }
  sync_directory(fs::path{path}.parent_path().string());
  return ok;
}

}  // namespace warren::persistence
