#include "store/lmdb/lmdb_databases.h"

#include <string>
#include <utility>
#include <variant>

#include "store/record_access.h"

namespace greylight::store {
namespace {

// Each table's own database: index TableIndex(table), which is its place in kAllTables.
constexpr std::array<size_t, kAllTables.size()> kOwnDatabase = [] {
  std::array<size_t, kAllTables.size()> own{};
  for (Table table : kAllTables) own[TableIndex(table)] = TableIndex(table);
  return own;
}();
constexpr std::array<size_t, 2> kTripletDatabases = TripletReadOrder::kDefault;
static_assert(kTripletDatabases[1] == LmdbDatabases::kPendingTriplets);

std::string_view View(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// The triplet record `value` holds, if it decodes as one.
std::optional<policy::TripletRecord> DecodeTriplet(std::string_view value) {
  std::optional<AnyRecord> record = DecodeRecord(Table::kTriplets, value);
  if (!record || !std::holds_alternative<policy::TripletRecord>(*record)) return std::nullopt;
  return std::get<policy::TripletRecord>(*record);
}

}  // namespace

void TripletReadOrder::Found(size_t database) {
  ++found_[database == kDefault[0] ? 0 : 1];
  if (found_[0] + found_[1] >= kWindow) {
    found_[0] /= 2;
    found_[1] /= 2;
  }
}

void TripletReadOrder::Weigh(uint32_t passed_depth, uint32_t pending_depth) {
  const uint64_t waste_passed_first = uint64_t{found_[1]} * passed_depth;
  const uint64_t waste_pending_first = uint64_t{found_[0]} * pending_depth;
  order_ = kDefault;
  if (waste_pending_first < waste_passed_first) std::swap(order_[0], order_[1]);
}

int LmdbDatabases::Open(MDB_txn* txn, std::string& failed, UnixTime now) {
  opened_at_ = now;
  for (size_t index = 0; index < kCount; ++index) {
    std::string name =
        index == kPendingTriplets ? kPendingTripletsName : std::string(TableName(TableOf(index)));
    if (int rc = mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &dbis_[index]); rc != 0) {
      failed = std::move(name);
      return rc;
    }
  }
  return 0;
}

std::span<const size_t> LmdbDatabases::Holding(Table table) const {
  if (table == Table::kTriplets) return kTripletDatabases;
  return std::span<const size_t>(&kOwnDatabase[TableIndex(table)], 1);
}

size_t LmdbDatabases::Home(Table table, std::string_view value) const {
  if (table == Table::kTriplets) {
    std::optional<policy::TripletRecord> triplet = DecodeTriplet(value);
    if (triplet && !policy::Passed(*triplet, timing_)) return kPendingTriplets;
  }
  return TableIndex(table);
}

int LmdbDatabases::Get(MDB_txn* txn, Table table, MDB_val* key, MDB_val* value) {
  if (table != Table::kTriplets) return mdb_get(txn, dbis_[TableIndex(table)], key, value);
  const std::array<size_t, 2>& order = triplet_order_.order();
  size_t found_in = order[0];
  int rc = mdb_get(txn, dbis_[order[0]], key, value);
  // A pending record from before the open may have been left behind by an older greylightd
  // that has written this key to "triplets" since: the record there, if any, is the newer.
  if (rc == MDB_NOTFOUND ||
      (rc == 0 && order[0] == kPendingTriplets && WrittenBeforeOpen(*value))) {
    MDB_val second;
    if (int second_rc = mdb_get(txn, dbis_[order[1]], key, &second); second_rc != MDB_NOTFOUND) {
      rc = second_rc;
      *value = second;
      found_in = order[1];
    }
  }
  if (rc == 0) triplet_order_.Found(found_in);
  return rc;
}

bool LmdbDatabases::WrittenBeforeOpen(const MDB_val& value) const {
  std::optional<policy::TripletRecord> triplet = DecodeTriplet(View(value));
  return !triplet || triplet->last < opened_at_;
}

void LmdbDatabases::WeighTripletReadOrder(MDB_txn* txn) {
  MDB_stat passed{}, pending{};
  if (mdb_stat(txn, dbis_[kTripletDatabases[0]], &passed) != 0 ||
      mdb_stat(txn, dbis_[kTripletDatabases[1]], &pending) != 0) {
    return;  // the order stays; it changes no answer
  }
  triplet_order_.Weigh(passed.ms_depth, pending.ms_depth);
}

int LmdbDatabases::Write(MDB_txn* txn, Table table, MDB_val* key,
                         std::optional<std::string_view> value) const {
  const size_t home = value ? Home(table, *value) : kCount;
  for (size_t index : Holding(table)) {
    int rc;
    if (index == home) {
      MDB_val v{value->size(), const_cast<char*>(value->data())};
      rc = mdb_put(txn, dbis_[index], key, &v, 0);
    } else {
      rc = mdb_del(txn, dbis_[index], key, nullptr);
      if (rc == MDB_NOTFOUND) rc = 0;
    }
    if (rc != 0) return rc;
  }
  return 0;
}

int LmdbDatabases::ForEach(MDB_txn* txn, Table table, const VisitFunction& visit) const {
  // One cursor per database, merged: each step visits the smallest current key.
  struct Walk {
    MDB_cursor* cursor = nullptr;
    MDB_val key{}, value{};
    bool more = false;
  };
  std::array<Walk, kTripletDatabases.size()> walks;
  const std::span<const size_t> holding = Holding(table);
  auto close_all = [&] {
    for (Walk& walk : walks) {
      if (walk.cursor != nullptr) mdb_cursor_close(walk.cursor);
    }
  };
  auto step = [](Walk& walk, MDB_cursor_op op) {
    int rc = mdb_cursor_get(walk.cursor, &walk.key, &walk.value, op);
    walk.more = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
  };
  for (size_t i = 0; i < holding.size(); ++i) {
    int rc = mdb_cursor_open(txn, dbis_[holding[i]], &walks[i].cursor);
    if (rc == 0) rc = step(walks[i], MDB_FIRST);
    if (rc != 0) {
      close_all();
      return rc;
    }
  }
  int rc = 0;
  while (rc == 0) {
    Walk* next = nullptr;
    for (size_t i = 0; i < holding.size(); ++i) {
      Walk& walk = walks[i];
      // LMDB's default order is the bytes' (memcmp, then length), as string_view compares.
      if (walk.more && (next == nullptr || View(walk.key) < View(next->key))) next = &walk;
    }
    if (next == nullptr || !visit(View(next->key), View(next->value))) break;
    rc = step(*next, MDB_NEXT);
  }
  close_all();
  return rc;
}

int LmdbDatabases::Count(MDB_txn* txn, Table table, uint64_t& count) const {
  count = 0;
  for (size_t index : Holding(table)) {
    MDB_stat stat;
    if (int rc = mdb_stat(txn, dbis_[index], &stat); rc != 0) return rc;
    count += stat.ms_entries;
  }
  return 0;
}

}  // namespace greylight::store
