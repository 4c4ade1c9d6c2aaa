#include "store/lmdb/lmdb_store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <lmdb.h>

#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/store_conformance.h"
#include "support/temp_dir.h"

namespace greylight::store {
namespace {

using testing_support::TempDir;

// Owns the temporary dbdir of a store created for the conformance suite.
class LmdbStoreInTempDir final : public Store {
 public:
  static std::unique_ptr<Store> Create(const policy::GreylistTiming& timing,
                                       std::chrono::milliseconds interval) {
    auto owner = std::unique_ptr<LmdbStoreInTempDir>(new LmdbStoreInTempDir());
    LmdbOptions options;
    options.store.dbdir = owner->dir_.path();
    options.store.timing = timing;
    options.store.commit_interval = interval;
    options.store.background_expiry = false;
    options.initial_map_bytes = 1 << 20;
    auto store = OpenLmdbStore(options, owner->clock_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    owner->store_ = std::move(store.value());
    return owner;
  }
  void Check(const CheckKeys& k, UnixTime now, CheckCallback done) override {
    store_->Check(k, now, std::move(done));
  }
  void RecordReply(std::string_view k, UnixTime now, ReplyCallback done) override {
    store_->RecordReply(k, now, std::move(done));
  }
  Result<std::optional<std::string>> Get(Table t, std::string_view k) override {
    return store_->Get(t, k);
  }
  Status Put(Table t, std::string_view k, std::string_view v) override {
    return store_->Put(t, k, v);
  }
  Status Delete(Table t, std::string_view k) override { return store_->Delete(t, k); }
  Status ForEach(Table t, const VisitFunction& f) override { return store_->ForEach(t, f); }
  Result<size_t> ExpireSome(UnixTime now, size_t n) override { return store_->ExpireSome(now, n); }
  Status Flush() override { return store_->Flush(); }

 private:
  TempDir dir_;
  FakeClock clock_{FromUnixSeconds(1800000000)};
  std::unique_ptr<Store> store_;  // destroyed before dir_ and clock_
};

INSTANTIATE_TEST_SUITE_P(Lmdb, StoreConformanceTest,
                         testing::Values(StoreFactory{"lmdb_commit_each_request",
                                                      [](const policy::GreylistTiming& timing) {
                                                        return LmdbStoreInTempDir::Create(
                                                            timing, std::chrono::milliseconds(0));
                                                      }},
                                         StoreFactory{"lmdb_group_commit",
                                                      [](const policy::GreylistTiming& timing) {
                                                        return LmdbStoreInTempDir::Create(
                                                            timing, std::chrono::milliseconds(5));
                                                      }}),
                         [](const auto& info) { return info.param.name; });

LmdbOptions OptionsFor(const TempDir& dir) {
  LmdbOptions options;
  options.store.dbdir = dir.path();
  options.store.commit_interval = std::chrono::milliseconds(1000);
  options.store.background_expiry = false;
  return options;
}

// The stores' clock: only the background expiry reads it, and these tests turn that off.
const FakeClock kClock(FromUnixSeconds(1800000000));

Result<std::unique_ptr<Store>> Open(const LmdbOptions& options) {
  return OpenLmdbStore(options, kClock);
}

void CheckSync(Store& store, const CheckKeys& keys, long long now) {
  bool called = false;
  store.Check(keys, FromUnixSeconds(now), [&](Result<policy::Transition> r) {
    EXPECT_TRUE(r.ok());
    called = true;
  });
  EXPECT_TRUE(called) << "LMDB decides before returning";
}

TEST(LmdbStoreTest, StateSurvivesReopen) {
  TempDir dir;
  {
    auto store = Open(OptionsFor(dir));
    ASSERT_TRUE(store.ok()) << store.status().message();
    CheckSync(**store, {"k", "1.2.3.4"}, 1800000000);
    CheckSync(**store, {"k", "1.2.3.4"}, 1800000300);
    // Not flushed explicitly: closing commits what is pending.
  }
  auto store = Open(OptionsFor(dir));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Get(Table::kTriplets, "k").value(), "1800000000,1800000300");
  EXPECT_EQ((*store)->Get(Table::kClients, "1.2.3.4").value(), "1,1800000300");
}

using Records = std::map<std::string, std::string>;

// Writes a database as an older greylightd left it: exactly the named databases given, with
// their records, through LMDB's own API.
void WriteOlderDatabase(const TempDir& dir, const std::map<std::string, Records>& databases) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 8), 0);
  const std::string path = (dir.path() / LmdbOptions::kDataFile).string();
  ASSERT_EQ(mdb_env_open(env, path.c_str(), MDB_NOSUBDIR, 0600), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  for (const auto& [name, records] : databases) {
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &dbi), 0);
    for (const auto& [key, value] : records) {
      MDB_val k{key.size(), const_cast<char*>(key.data())};
      MDB_val v{value.size(), const_cast<char*>(value.data())};
      ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    }
  }
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

// The records of the named database `name` in the store's environment at `dir`, through
// LMDB's own API (with the store closed: LMDB forbids opening an environment twice in one
// process). Empty when the database does not exist.
Records RawRecords(const TempDir& dir, const char* name) {
  Records records;
  MDB_env* env = nullptr;
  EXPECT_EQ(mdb_env_create(&env), 0);
  EXPECT_EQ(mdb_env_set_maxdbs(env, 8), 0);
  const std::string path = (dir.path() / LmdbOptions::kDataFile).string();
  EXPECT_EQ(mdb_env_open(env, path.c_str(), MDB_NOSUBDIR | MDB_RDONLY, 0600), 0);
  MDB_txn* txn = nullptr;
  EXPECT_EQ(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), 0);
  MDB_dbi dbi;
  if (mdb_dbi_open(txn, name, 0, &dbi) == 0) {
    MDB_cursor* cursor = nullptr;
    EXPECT_EQ(mdb_cursor_open(txn, dbi, &cursor), 0);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
      records.emplace(std::string(static_cast<const char*>(k.mv_data), k.mv_size),
                      std::string(static_cast<const char*>(v.mv_data), v.mv_size));
    }
    mdb_cursor_close(cursor);
  }
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return records;
}

// A database written before reply tracking (triplets, clients and traps only, as LMDB's own
// API leaves it) opens unchanged and gets an empty replies table; reply records then survive
// a restart like every other record.
TEST(LmdbStoreTest, ADatabaseWithoutTheRepliesTableOpensAndKeepsReplies) {
  TempDir dir;
  WriteOlderDatabase(dir, {{"triplets", {{"192.0.2.0/a@b/c@d", "1800000000,1800000300"}}},
                           {"clients", {}},
                           {"traps", {}}});
  {
    auto store = Open(OptionsFor(dir));
    ASSERT_TRUE(store.ok()) << store.status().message();
    EXPECT_EQ((*store)->Get(Table::kTriplets, "192.0.2.0/a@b/c@d").value(),
              "1800000000,1800000300");
    EXPECT_EQ((*store)->Get(Table::kReplies, "carol@remote.example/bob@example.org").value(),
              std::nullopt);
    bool recorded = false;
    (*store)->RecordReply("carol@remote.example/bob@example.org", FromUnixSeconds(1800000000),
                          [&](Result<policy::ReplyRecord> r) { recorded = r.ok(); });
    EXPECT_TRUE(recorded) << "LMDB records before returning";
    ASSERT_TRUE((*store)->Flush().ok());
    EXPECT_EQ((*store)->Stats().replies, 1u);
  }
  auto store = Open(OptionsFor(dir));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Get(Table::kReplies, "carol@remote.example/bob@example.org").value(),
            "1,1800000000");
}

TEST(LmdbStoreTest, SecondOwnerOfADbdirIsRefused) {
  TempDir dir;
  auto first = Open(OptionsFor(dir));
  ASSERT_TRUE(first.ok());
  auto second = Open(OptionsFor(dir));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kBusy);
  EXPECT_EQ(second.status().message(), "locked: " + (dir.path() / "greylight.lock").string());
  LmdbOptions shared = OptionsFor(dir);
  shared.store.exclusive = false;  // tools work beside the daemon
  EXPECT_TRUE(Open(shared).ok());
}

TEST(LmdbStoreTest, MapGrowsWhenFull) {
  TempDir dir;
  LmdbOptions options = OptionsFor(dir);
  options.initial_map_bytes = 256 << 10;
  auto store = Open(options);
  ASSERT_TRUE(store.ok());
  for (int i = 0; i < 20000; ++i) {
    CheckSync(**store, {fmt::format("192.0.2.0/sender{}@example.net/rcpt@example.org", i), ""},
              1800000000 + i);
  }
  ASSERT_TRUE((*store)->Flush().ok());
  // The data file never outgrows the map: a file larger than the first map proves growth.
  EXPECT_GT(std::filesystem::file_size(dir.path() / LmdbOptions::kDataFile),
            options.initial_map_bytes);
  EXPECT_EQ(
      (*store)->Get(Table::kTriplets, "192.0.2.0/sender19999@example.net/rcpt@example.org").value(),
      "1800019999,1800019999");
}

// A backlog larger than one write transaction (after commits were held back, or failed) is
// committed in several, every record of every table, the map growing in the middle.
TEST(LmdbStoreTest, ABacklogIsCommittedInSeveralTransactions) {
  TempDir dir;
  LmdbOptions options = OptionsFor(dir);
  options.initial_map_bytes = 256 << 10;
  options.store.commit_interval = std::chrono::milliseconds(60000);  // never during the test
  options.store.pending_commit_interval = std::chrono::milliseconds(60000);
  auto store = Open(options);
  ASSERT_TRUE(store.ok());
  constexpr int kRecords = 20000;
  // Each triplet greylisted, then passed after the delay, which writes its client record
  // too: 40,000 records in two tables, several transactions.
  for (long long now : {1800000000LL, 1800000400LL}) {
    for (int i = 0; i < kRecords; ++i) {
      CheckSync(**store,
                {fmt::format("10.{}.{}.0/s@example.net/r@example.org", i / 256, i % 256),
                 fmt::format("10.{}.{}.0", i / 256, i % 256)},
                now);
    }
  }
  LmdbOptions reader_options = options;
  reader_options.store.exclusive = false;
  auto reader = Open(reader_options);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->Stats().triplets, 0u);
  ASSERT_TRUE((*store)->Flush().ok());
  StoreStats stats = (*reader)->Stats();
  EXPECT_EQ(stats.triplets, static_cast<uint64_t>(kRecords));
  EXPECT_EQ(stats.clients, static_cast<uint64_t>(kRecords));
  for (int i : {0, 8191, 8192, 8193, kRecords - 1}) {
    EXPECT_EQ((*reader)
                  ->Get(Table::kTriplets,
                        fmt::format("10.{}.{}.0/s@example.net/r@example.org", i / 256, i % 256))
                  .value(),
              "1800000000,1800000400")
        << i;
  }
}

TEST(LmdbStoreTest, PendingUpdatesAreReadBeforeCommit) {
  TempDir dir;
  LmdbOptions options = OptionsFor(dir);
  options.store.commit_interval = std::chrono::milliseconds(60000);  // never during the test
  auto store = Open(options);
  ASSERT_TRUE(store.ok());
  CheckSync(**store, {"k", ""}, 1800000000);
  EXPECT_EQ((*store)->Get(Table::kTriplets, "k").value(), "1800000000,1800000000");
  // A second process (tool) sees it only once committed.
  LmdbOptions reader_options = options;
  reader_options.store.exclusive = false;
  auto reader = Open(reader_options);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->Get(Table::kTriplets, "k").value(), std::nullopt);
  ASSERT_TRUE((*store)->Flush().ok());
  EXPECT_EQ((*reader)->Get(Table::kTriplets, "k").value(), "1800000000,1800000000");
}

// Pending triplets wait for the slower commit (--pending-commit-interval); passed ones and
// client records go with the fast one. Both are read at once through the overlays.
TEST(LmdbStoreTest, PendingTripletsWaitForTheSlowerCommit) {
  TempDir dir;
  LmdbOptions options = OptionsFor(dir);
  options.store.commit_interval = std::chrono::milliseconds(10);
  options.store.pending_commit_interval = std::chrono::milliseconds(60000);  // not in the test
  auto store = Open(options);
  ASSERT_TRUE(store.ok());
  CheckSync(**store, {"passed", "1.2.3.4"}, 1800000000);
  CheckSync(**store, {"passed", "1.2.3.4"}, 1800000300);  // passes: fast commit
  CheckSync(**store, {"pending", ""}, 1800000300);        // new: slow commit
  EXPECT_EQ((*store)->Get(Table::kTriplets, "pending").value(), "1800000300,1800000300");
  LmdbOptions reader_options = options;
  reader_options.store.exclusive = false;
  reader_options.store.background_expiry = false;
  auto reader = Open(reader_options);
  ASSERT_TRUE(reader.ok());
  // The commit thread writes the passed triplet within a few of its 10 ms ticks.
  std::optional<std::string> passed;
  for (int i = 0; i < 500 && !passed; ++i) {
    passed = (*reader)->Get(Table::kTriplets, "passed").value();
    if (!passed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(passed, "1800000000,1800000300");
  EXPECT_EQ((*reader)->Get(Table::kClients, "1.2.3.4").value(), "1,1800000300");
  EXPECT_EQ((*reader)->Get(Table::kTriplets, "pending").value(), std::nullopt);
  // A later pass of the pending triplet moves it to the fast commit, value and all.
  CheckSync(**store, {"pending", ""}, 1800000600);
  ASSERT_TRUE((*store)->Flush().ok());
  EXPECT_EQ((*reader)->Get(Table::kTriplets, "pending").value(), "1800000300,1800000600");
}

// A triplet waits in "pending_triplets" until it passes, then lives in "triplets" only: new
// triplets are inserted into the small tree of the pending ones.
TEST(LmdbStoreTest, PendingTripletsLiveInTheirOwnDatabaseUntilTheyPass) {
  TempDir dir;
  {
    auto store = Open(OptionsFor(dir));
    ASSERT_TRUE(store.ok()) << store.status().message();
    CheckSync(**store, {"192.0.2.0/a@b/c@d", ""}, 1800000000);
    CheckSync(**store, {"192.0.2.0/e@f/g@h", ""}, 1800000000);
  }
  EXPECT_EQ(RawRecords(dir, "pending_triplets"),
            (Records{{"192.0.2.0/a@b/c@d", "1800000000,1800000000"},
                     {"192.0.2.0/e@f/g@h", "1800000000,1800000000"}}));
  EXPECT_EQ(RawRecords(dir, "triplets"), Records{});
  {
    auto store = Open(OptionsFor(dir));
    ASSERT_TRUE(store.ok());
    CheckSync(**store, {"192.0.2.0/a@b/c@d", ""}, 1800000300);  // the retry passes
  }
  EXPECT_EQ(RawRecords(dir, "triplets"), (Records{{"192.0.2.0/a@b/c@d", "1800000000,1800000300"}}));
  EXPECT_EQ(RawRecords(dir, "pending_triplets"),
            (Records{{"192.0.2.0/e@f/g@h", "1800000000,1800000000"}}));
}

// A database from before "pending_triplets" holds its pending triplets in "triplets": they
// are found there, decide as before, and move when written.
TEST(LmdbStoreTest, PendingTripletsOfAnOlderDatabaseAreFoundAndMoveWhenWritten) {
  TempDir dir;
  WriteOlderDatabase(dir, {{"triplets",
                            {{"early", "1800000000,1800000000"},
                             {"retry", "1800000000,1800000000"},
                             {"passed", "1799990000,1799990400"}}}});
  {
    auto store = Open(OptionsFor(dir));
    ASSERT_TRUE(store.ok()) << store.status().message();
    EXPECT_EQ((*store)->Stats().triplets, 3u);
    Result<policy::Transition> early = policy::Transition{}, retry = policy::Transition{};
    (*store)->Check({"early", ""}, FromUnixSeconds(1800000100),
                    [&](Result<policy::Transition> r) { early = std::move(r); });
    (*store)->Check({"retry", ""}, FromUnixSeconds(1800000300),
                    [&](Result<policy::Transition> r) { retry = std::move(r); });
    ASSERT_TRUE(early.ok() && retry.ok());
    EXPECT_EQ(early->reason, policy::Reason::kEarlyRetry);
    EXPECT_EQ(retry->reason, policy::Reason::kPassFirst);
  }
  Records triplets = RawRecords(dir, "triplets"), pending = RawRecords(dir, "pending_triplets");
  EXPECT_EQ(triplets,
            (Records{{"passed", "1799990000,1799990400"}, {"retry", "1800000000,1800000300"}}));
  EXPECT_EQ(pending, (Records{{"early", "1800000000,1800000100"}}));
}

// Listing, counting and deleting see one table of triplets, in key order, whichever
// database holds each.
TEST(LmdbStoreTest, TheTwoTripletDatabasesAreOneTable) {
  TempDir dir;
  auto store = Open(OptionsFor(dir));
  ASSERT_TRUE(store.ok()) << store.status().message();
  const std::string passed = "1800000000,1800000400", pending = "1800000000,1800000000";
  for (auto [key, value] : {std::pair<std::string, std::string>{"d", pending},
                            {"a", passed},
                            {"ab", pending},
                            {"c", passed},
                            {"b", pending},
                            {"e", "malformed"}}) {
    ASSERT_TRUE((*store)->Put(Table::kTriplets, key, value).ok());
  }
  auto list = [&](size_t stop_after) {
    std::vector<std::string> keys;
    EXPECT_TRUE((*store)
                    ->ForEach(Table::kTriplets,
                              [&](std::string_view key, std::string_view) {
                                keys.emplace_back(key);
                                return keys.size() < stop_after;
                              })
                    .ok());
    return keys;
  };
  EXPECT_EQ(list(100), (std::vector<std::string>{"a", "ab", "b", "c", "d", "e"}));
  EXPECT_EQ(list(3), (std::vector<std::string>{"a", "ab", "b"}));
  EXPECT_EQ((*store)->Stats().triplets, 6u);
  // Passing moves "b"; deleting removes "ab" from either.
  ASSERT_TRUE((*store)->Put(Table::kTriplets, "b", passed).ok());
  ASSERT_TRUE((*store)->Delete(Table::kTriplets, "ab").ok());
  EXPECT_EQ(list(100), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ((*store)->Stats().triplets, 5u);
  EXPECT_EQ((*store)->Get(Table::kTriplets, "b").value(), passed);
  EXPECT_EQ((*store)->Get(Table::kTriplets, "d").value(), pending);
  store->reset();
  EXPECT_EQ(RawRecords(dir, "pending_triplets"), (Records{{"d", pending}}));
  EXPECT_EQ(RawRecords(dir, "triplets"),
            (Records{{"a", passed}, {"b", passed}, {"c", passed}, {"e", "malformed"}}));
}

TEST(LmdbStoreTest, MustExistRefusesToCreate) {
  TempDir dir;
  LmdbOptions options = OptionsFor(dir);
  options.store.dbdir = dir.path() / "nowhere";
  options.store.must_exist = true;
  auto missing = Open(options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(missing.status().message(),
            fmt::format("no greylight store at {0}: {0}/greylight.lmdb does not exist",
                        options.store.dbdir.string()));
  EXPECT_FALSE(std::filesystem::exists(options.store.dbdir));
}

TEST(LmdbStoreTest, UnwritableDbdirFailsToOpen) {
  LmdbOptions options;
  options.store.dbdir = "/proc/greylight-cannot-exist";
  auto store = Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_FALSE(store.status().message().empty());
}

}  // namespace
}  // namespace greylight::store
