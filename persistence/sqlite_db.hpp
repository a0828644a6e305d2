// Thin owning wrappers over the SQLite C API used by the persistence layer: a connection
// (sqlite_db) and a prepared statement (sqlite_stmt), plus directory syncing for files we
// create, rename or delete. Both wrappers are move-only; a moved-from or failed object holds
// a null handle and every call on it fails cleanly. Nothing here throws. A connection is
// used by one thread at a time (it is opened with SQLITE_OPEN_NOMUTEX).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace warren::persistence {

class sqlite_db {
 public:
  sqlite_db() = default;
  ~sqlite_db();
  sqlite_db(const sqlite_db&) = delete;
  sqlite_db& operator=(const sqlite_db&) = delete;
  sqlite_db(sqlite_db&& other) noexcept;
  sqlite_db& operator=(sqlite_db&& other) noexcept;

  // flags are SQLITE_OPEN_* flags; SQLITE_OPEN_NOMUTEX is always added.
  bool open(const std::string& path, int flags, std::string& error);
  void close();
  bool is_open() const { return db_ != nullptr; }

  // Runs one or more statements without results (rows, if any, are stepped through).
  bool exec(const char* sql, std::string& error);
  // Runs a statement returning one integer in its first row (a PRAGMA, count(*)).
  bool query_int(const char* sql, int64_t& out, std::string& error);
  // Keeps checkpoints of the WAL from running when the connection closes (for looking at a
  // file without changing it).
  void disable_checkpoint_on_close();

  bool in_transaction() const;
  int64_t changes() const;
  int last_error_code() const;
  std::string last_error() const;
  sqlite3* handle() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

class sqlite_stmt {
 public:
  sqlite_stmt() = default;
  ~sqlite_stmt();
  sqlite_stmt(const sqlite_stmt&) = delete;
  sqlite_stmt& operator=(const sqlite_stmt&) = delete;
  sqlite_stmt(sqlite_stmt&& other) noexcept;
  sqlite_stmt& operator=(sqlite_stmt&& other) noexcept;

  bool prepare(const sqlite_db& db, const char* sql, std::string& error);
  void finalize();
  bool is_prepared() const { return stmt_ != nullptr; }

  // Clears bindings and resets; call before binding new values.
  void reset();
  // Binding indexes start at 1. Blobs and text are bound without copying: the bytes must
  // stay valid until the statement is stepped to completion or reset.
  bool bind_int(int index, int64_t value);
  bool bind_blob(int index, std::string_view value);
  bool bind_text(int index, std::string_view value);
  bool bind_null(int index);

  // Returns the SQLite result code (SQLITE_ROW, SQLITE_DONE or an error).
  int step();
  // Steps to completion, then resets. True when the statement ran without error.
  bool run(std::string& error);

  // Column indexes start at 0.
  int column_type(int index) const;
  int64_t column_int(int index) const;
  std::string column_string(int index) const;  // blob or text bytes, "" for NULL
  std::string_view column_view(int index) const;  // valid until the next step or reset

 private:
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
};

// fsyncs a directory so that entries created, renamed or removed in it survive power loss.
bool sync_directory(const std::string& dir);

// Bytes the database file and its -wal and -shm files take on disk (missing ones count 0).
uint64_t database_bytes(const std::string& path);

// Removes the database file and its -wal, -shm and -journal files. True when none remains.
bool remove_database_files(const std::string& path);

}  // namespace warren::persistence
