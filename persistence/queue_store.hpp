// The message file of one durable queue: one SQLite database per queue (WAL, synchronous=FULL,
// incremental auto-vacuum), so that one slow or large queue never holds back another's disk.
// What stays true:
//  - every row carries a CRC-32 over all its other columns (message_checksum()), computed
//    here on append and kept right by mark_delivered(); load() returns only rows whose
//    checksum matches and lists the others in corrupt_ids;
//  - writes go into one open transaction; commit() returns true only once that transaction
//    is committed and synced. If SQLite rolled the transaction back on its own (disk full,
//    I/O error), commit() returns false: no message written since the last successful
//    commit is stored, so none of them may be confirmed;
//  - quarantine_rows() makes the copy durable before deleting the originals, so a crash in
//    between leaves a row in both places, never in neither.
// One object is used by one thread at a time (a queue's store thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "persistence/sqlite_db.hpp"

namespace warren::persistence {

struct stored_message {
  uint64_t id = 0;  // the queue's message id: > 0, increasing, at most INT64_MAX
  std::string exchange;
  std::string routing_key;
  std::string properties;  // encoded content header properties (opaque here)
  std::string body;
  bool delivered = false;
  int64_t expires = 0;  // deadline (ms since the Unix epoch) from the queue's TTL; 0 = none
};

// CRC-32 over id, exchange, routing key, properties, body (each length-prefixed), the deadline
// when there is one (so rows written before deadlines were kept keep their checksums) and,
// last, the delivered flag. Flipping the flag changes the CRC by a constant (CRC is affine in
// its input), which lets mark_delivered() update the checksum without reading the row.
uint32_t message_checksum(const stored_message& m);

class queue_store {
 public:
  struct load_result {
    std::vector<stored_message> messages;  // rows that passed their checksum, in id order
    std::vector<uint64_t> corrupt_ids;     // rows that did not (left in the file)
    uint64_t last_id = 0;  // the highest id looked at (either list); page on from here
    bool ok = true;        // false: reading stopped at an error (in `error`)
    std::string error;
  };

  queue_store() = default;
  ~queue_store() { close(); }
  queue_store(const queue_store&) = delete;
  queue_store& operator=(const queue_store&) = delete;

  // Opens or creates the file (and its parent directory).
  bool open(const std::string& path, std::string& error);
  // Closes the file; an uncommitted transaction is rolled back (call commit() first).
  void close();
  bool is_open() const { return db_.is_open(); }
  const std::string& path() const { return path_; }
  // Deletes a closed queue file with its -wal and -shm files. True when nothing remains.
  static bool destroy(const std::string& path);

  // Writes. Each starts the transaction if none is open. False on error (last_error()).
  // mark_delivered() and remove() of an id that is not stored succeed and change nothing.
  bool begin_if_needed();
  bool append(const stored_message& m);
  bool mark_delivered(uint64_t id);
  bool remove(uint64_t id);
  // Removes every message with an id up to `id` (a stream's retention).
  bool remove_through(uint64_t id);
  // Commits and syncs the open transaction; true with nothing to commit.
  bool commit(std::string& error);
  bool in_transaction() const { return db_.in_transaction(); }

  // Deletes every message and commits (together with any open transaction).
  bool purge();
  // Gives free pages back to the file system and empties the WAL. An empty queue is
  // VACUUMed (cheap with no rows: milliseconds however large the file was); otherwise free
  // pages go in steps of incremental vacuum, each followed by a truncating checkpoint, so the
  // WAL never grows past a few MiB on the way. max_pages > 0 bounds the work of one call
  // (free_pages() tells what is left). Needs no open transaction: false while one is open.
  bool reclaim(uint64_t max_pages = 0);
  uint64_t free_pages();

  uint64_t count();
  uint64_t max_id();  // 0 when empty
  // Rows with id > after_id in id order, at most `limit` rows looked at.
  load_result load(uint64_t after_id, size_t limit);

  // Copies the rows with these ids into the quarantine database at quarantine_db_path
  // (created when missing; same columns, no key, plus the time of quarantine), commits that,
  // then deletes them here and commits. Commits any open transaction first.
  bool quarantine_rows(const std::vector<uint64_t>& ids, const std::string& quarantine_db_path);

  const std::string& last_error() const { return last_error_; }

 private:
  bool fail(std::string message);
  bool after_write_failure(const char* what);
  void rollback();

  sqlite_db db_;
  std::string path_;
  std::string last_error_;
  // The error that made SQLite roll the current batch back; reported by the next commit().
  std::string batch_error_;
  sqlite_stmt begin_;
  sqlite_stmt commit_;
  sqlite_stmt rollback_;
  sqlite_stmt insert_;
  sqlite_stmt mark_delivered_;
  sqlite_stmt remove_;
  sqlite_stmt remove_through_;
  sqlite_stmt load_;
  sqlite_stmt count_;
  sqlite_stmt max_id_;
};

}  // namespace warren::persistence
