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

// Which of the two triplet databases a read looks in first. A triplet found in the second
// has cost a descent of the first in vain, so the first is the one where that waste is
// expected to be smaller: the triplets recently found in the other database, times this
// one's depth. Passed triplets that repeat (most of a real server's traffic) keep "triplets"
// first; retries of pending triplets over a deep tree of passed ones put "pending_triplets"
// first. A miss descends both whatever the order, and a key is in at most one (but see
// LmdbDatabases::Get), so the order changes no answer.
class TripletReadOrder {
 public:
  // Database indexes: "triplets" (its table's own), then "pending_triplets".
  static constexpr std::array<size_t, 2> kDefault = {TableIndex(Table::kTriplets),
                                                     kAllTables.size()};
  // Finds are counted over a sliding window of about this many: halved when it is reached.
  static constexpr uint32_t kWindow = 4096;

  const std::array<size_t, 2>& order() const { return order_; }
  // Counts a triplet found in `database` (an index of kDefault).
  void Found(size_t database);
  // The depths (MDB_stat::ms_depth, 0 for an empty tree) of "triplets" and
  // "pending_triplets". A tie keeps "triplets" first.
  void Weigh(uint32_t passed_depth, uint32_t pending_depth);

 private:
  std::array<uint32_t, 2> found_{};  // in kDefault's order
  std::array<size_t, 2> order_ = kDefault;
};

// The named databases of the LMDB environment, and which one holds a record. Every table is
// the database TableName(table), except the triplets that have not passed yet
// (policy::Passed false under the daemon's timing): those live in "pending_triplets". A new
// triplet is an insert at a random place; in a tree of the pending triplets alone a commit's
// inserts share far fewer pages than in a tree of every passed triplet as well, and each
// page a commit dirties is written and synced whole.
//
// A key is in at most one of the two: every write of a triplet deletes it from the other.
// A database written before "pending_triplets" existed holds its pending triplets in
// "triplets", where reads find them; each moves when it is next written. An older
// greylightd run on a newer database (a downgrade) writes "triplets" only and leaves a
// key's pending record behind, so afterwards a key may be in both, the record in
// "triplets" the newer. Get keeps that record winning (see there).
//
// Not thread-safe: Get counts where it finds triplets (TripletReadOrder).
class LmdbDatabases {
 public:
  // Each table's own database (at TableIndex), then the pending triplets.
  static constexpr size_t kCount = kAllTables.size() + 1;
  static constexpr size_t kPendingTriplets = kAllTables.size();
  static constexpr const char* kPendingTripletsName = "pending_triplets";

  explicit LmdbDatabases(const policy::GreylistTiming& timing) : timing_(timing) {}

  // Opens every database in `txn`, creating those missing, at wall time `now`. An LMDB
  // return code; on an error, `failed` names the database.
  int Open(MDB_txn* txn, std::string& failed, UnixTime now);

  // The table whose records database `index` (< kCount) holds, and its handle.
  static Table TableOf(size_t index) {
    static_assert(TableIndex(kAllTables.back()) == kAllTables.size() - 1);
    return index == kPendingTriplets ? Table::kTriplets : kAllTables[index];
  }
  MDB_dbi dbi(size_t index) const { return dbis_[index]; }

  // The value of `key` in `table`, from whichever database holds it. An LMDB return code
  // (MDB_NOTFOUND when none does). Triplets are looked for in TripletReadOrder's order; a
  // record found in "pending_triplets" first that was last seen before Open (so possibly
  // left behind by an older greylightd) is looked for in "triplets" too, which wins.
  int Get(MDB_txn* txn, Table table, MDB_val* key, MDB_val* value);
  // Weighs again which triplet database reads look in first, from the depths of the two
  // trees in `txn`; called when a read snapshot begins.
  void WeighTripletReadOrder(MDB_txn* txn);
  // The two triplet databases, in the order reads look in them.
  const std::array<size_t, 2>& triplet_read_order() const { return triplet_order_.order(); }
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
  // Whether the triplet record `value` was last seen before Open (or cannot be read).
  bool WrittenBeforeOpen(const MDB_val& value) const;

  const policy::GreylistTiming& timing_;
  UnixTime opened_at_{};
  std::array<MDB_dbi, kCount> dbis_{};
  TripletReadOrder triplet_order_;
};

}  // namespace greylight::store
