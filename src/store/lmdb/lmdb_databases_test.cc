#include "store/lmdb/lmdb_databases.h"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <array>
#include <string>
#include <string_view>

#include "support/temp_dir.h"

namespace greylight::store {
namespace {

using testing_support::TempDir;

constexpr size_t kPassed = TableIndex(Table::kTriplets);
constexpr size_t kPending = LmdbDatabases::kPendingTriplets;
constexpr std::array<size_t, 2> kPassedFirst = {kPassed, kPending};
constexpr std::array<size_t, 2> kPendingFirst = {kPending, kPassed};

TEST(TripletReadOrderTest, PassedTripletsAreLookedForFirstUntilFindsSayOtherwise) {
  TripletReadOrder order;
  EXPECT_EQ(order.order(), kPassedFirst);
  order.Weigh(5, 3);
  EXPECT_EQ(order.order(), kPassedFirst) << "nothing found yet: a tie";
}

TEST(TripletReadOrderTest, FindsInTheOtherDatabaseWeighedByDepthDecide) {
  TripletReadOrder order;
  for (int i = 0; i < 30; ++i) order.Found(kPending);
  for (int i = 0; i < 20; ++i) order.Found(kPassed);
  order.Weigh(5, 3);  // 30 * 5 wasted passed first, 20 * 3 pending first
  EXPECT_EQ(order.order(), kPendingFirst);
  order.Weigh(2, 3);  // 30 * 2 against 20 * 3: a tie
  EXPECT_EQ(order.order(), kPassedFirst);
  order.Weigh(1, 3);
  EXPECT_EQ(order.order(), kPassedFirst);
  order.Weigh(5, 0);  // an empty pending tree costs nothing to look in
  EXPECT_EQ(order.order(), kPendingFirst);
}

TEST(TripletReadOrderTest, OldFindsFadeSoTheOrderFollowsTheTraffic) {
  TripletReadOrder order;
  for (int i = 0; i < 1'000'000; ++i) order.Found(kPassed);
  order.Weigh(3, 3);
  EXPECT_EQ(order.order(), kPassedFirst);
  // Within two windows the million finds in "triplets" weigh less than the new ones.
  for (uint32_t i = 0; i < 2 * TripletReadOrder::kWindow; ++i) order.Found(kPending);
  order.Weigh(3, 3);
  EXPECT_EQ(order.order(), kPendingFirst);
}

class LmdbDatabasesTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mdb_env_create(&env_), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env_, 16), 0);
    ASSERT_EQ(mdb_env_open(env_, dir_.path().c_str(), MDB_NOSYNC, 0600), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    std::string failed;
    ASSERT_EQ(databases_.Open(txn, failed, FromUnixSeconds(1800000000)), 0) << failed;
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }
  void TearDown() override { mdb_env_close(env_); }

  void Write(std::string_view key, std::string_view value) {
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    ASSERT_EQ(databases_.Write(txn, Table::kTriplets, &k, value), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }
  // Puts a record straight into database `index`, as an older greylightd did.
  void WriteRaw(size_t index, std::string_view key, std::string_view value) {
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{value.size(), const_cast<char*>(value.data())};
    ASSERT_EQ(mdb_put(txn, databases_.dbi(index), &k, &v, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }
  // The value of `key`, or "(none)", read in one snapshot that weighs the order first.
  std::string Read(std::string_view key) {
    MDB_txn* txn = nullptr;
    EXPECT_EQ(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), 0);
    databases_.WeighTripletReadOrder(txn);
    MDB_val k{key.size(), const_cast<char*>(key.data())}, v{};
    int rc = databases_.Get(txn, Table::kTriplets, &k, &v);
    std::string value = rc == MDB_NOTFOUND ? "(none)"
                        : rc == 0          ? std::string(static_cast<char*>(v.mv_data), v.mv_size)
                                           : "error " + std::to_string(rc);
    mdb_txn_abort(txn);
    return value;
  }

  TempDir dir_;
  policy::GreylistTiming timing_;
  MDB_env* env_ = nullptr;
  LmdbDatabases databases_{timing_};
};

// Whichever database reads look in first, every triplet is found where it is (an older
// database's pending ones in "triplets" too) and a missing one is missing.
TEST_F(LmdbDatabasesTest, EveryTripletIsFoundInEitherOrder) {
  Write("passed", "1800000000,1800000300");
  Write("pending", "1800000000,1800000000");
  WriteRaw(kPassed, "older pending", "1800000000,1800000100");
  for (int i = 0; i < 50; ++i) Read("passed");
  ASSERT_EQ(Read("passed"), "1800000000,1800000300");
  ASSERT_EQ(databases_.triplet_read_order(), kPassedFirst);
  for (const std::array<size_t, 2>& order : {kPassedFirst, kPendingFirst}) {
    if (order == kPendingFirst) {
      for (int i = 0; i < 200; ++i) Read("pending");
      ASSERT_EQ(databases_.triplet_read_order(), kPendingFirst)
          << "finds in the pending tree, which is no deeper, move it first";
    }
    EXPECT_EQ(Read("passed"), "1800000000,1800000300");
    EXPECT_EQ(Read("pending"), "1800000000,1800000000");
    EXPECT_EQ(Read("older pending"), "1800000000,1800000100");
    EXPECT_EQ(Read("missing"), "(none)");
  }
}

// After a downgrade an older greylightd wrote "triplets" only, leaving a key's pending
// record behind: the key is in both, the record in "triplets" the newer. Whichever database
// reads look in first, that record wins; a pending record written since the open (this
// process's) is taken from "pending_triplets" as it is.
TEST_F(LmdbDatabasesTest, ARecordAnOlderGreylightdLeftInPendingLosesToTriplets) {
  WriteRaw(kPending, "left behind", "1799990000,1799990000");
  WriteRaw(kPassed, "left behind", "1799990000,1799990400");
  Write("young", "1800000000,1800000000");
  for (int i = 0; i < 200; ++i) Read("young");
  ASSERT_EQ(databases_.triplet_read_order(), kPendingFirst);
  EXPECT_EQ(Read("left behind"), "1799990000,1799990400");
  EXPECT_EQ(Read("young"), "1800000000,1800000000");
  // A record from before the open that nothing in "triplets" contradicts is found as well.
  WriteRaw(kPending, "older pending", "1799990000,1799990000");
  EXPECT_EQ(Read("older pending"), "1799990000,1799990000");
  ASSERT_EQ(databases_.triplet_read_order(), kPendingFirst);
}

}  // namespace
}  // namespace greylight::store
