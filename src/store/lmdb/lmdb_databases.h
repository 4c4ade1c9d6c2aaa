#pragma once

#include <lmdb.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "policy/greylist_state.h"
#include "store/store.h"

namespace greylight::store {

// The named databases of the LMDB environment, and which one holds a record. Every table is
// the database TableName(table), except the triplets that have not passed yet
// (policy::Passed false under the daemon's timing): those live in "pending_triplets". A new
// triplet is an insert at a random place; in a tree of the pending triplets alone a commit's
// inserts share far fewer pages than in a tree of every passed triplet as well, and each
// page a commit dirties is written and synced whole.
//
// A key is in at most one of the two: every write of a triplet deletes it from the other.
// A database written before "pending_triplets" existed holds its pending triplets in
// "triplets", where reads find them; each moves when it is next written.
class LmdbDatabases {
 public:
  // Each table's own database (at TableIndex), then the pending triplets.
  static constexpr size_t kCount = kAllTables.size() + 1;
  static constexpr size_t kPendingTriplets = kAllTables.size();
  static constexpr const char* kPendingTripletsName = "pending_triplets";

  explicit LmdbDatabases(const policy::GreylistTiming& timing) : timing_(timing) {}

  // Opens every database in `txn`, creating those missing. An LMDB return code; on an
  // error, `failed` names the database.
  int Open(MDB_txn* txn, std::string& failed);

  // The table whose records database `index` (< kCount) holds, and its handle.
  static Table TableOf(size_t index) {
    static_assert(TableIndex(kAllTables.back()) == kAllTables.size() - 1);
    return index == kPendingTriplets ? Table::kTriplets : kAllTables[index];
  }
  MDB_dbi dbi(size_t index) const { return dbis_[index]; }

  // The value of `key` in `table`, from whichever database holds it. An LMDB return code
  // (MDB_NOTFOUND when none does).
  int Get(MDB_txn* txn, Table table, MDB_val* key, MDB_val* value) const;
  // Puts `value` of `key` in the database of `table` where it belongs, or deletes the key
  // (nullopt), and deletes it from the table's other database. An LMDB return code.
  int Write(MDB_txn* txn, Table table, MDB_val* key, std::optional<std::string_view> value) const;
  // Visits the records of `table` in key order (LMDB's), across its databases, until
  // `visit` returns false. An LMDB return code: 0 when the walk ended or was stopped.
  int ForEach(MDB_txn* txn, Table table, const VisitFunction& visit) const;
  // The number of records of `table`.
  int Count(MDB_txn* txn, Table table, uint64_t& count) const;

 private:
  // The databases that may hold `table`'s records: its own, then the pending triplets'.
  std::span<const size_t> Holding(Table table) const;
  // Where `value` of `table` belongs.
  size_t Home(Table table, std::string_view value) const;

  const policy::GreylistTiming& timing_;
  std::array<MDB_dbi, kCount> dbis_{};
};

}  // namespace greylight::store
