#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "store/store.h"
#include "util/clock.h"

typedef struct MDB_env MDB_env;
typedef struct MDB_txn MDB_txn;
typedef unsigned int MDB_dbi;

namespace greylight::store {

struct LmdbOptions {
  // Group commit: updates are acknowledged at once and committed (with fsync) together
  // every commit_interval, so a crash or power loss loses at most the last interval of
  // updates and never corrupts the database. Zero commits every request durably before
  // answering it, as postgrey does.
  static constexpr std::chrono::milliseconds kDefaultCommitInterval{50};
  static constexpr size_t kDefaultExpiryBatch = 5000;  // records examined per expiry step
  static constexpr size_t kDefaultInitialMapBytes = size_t{64} << 20;

  std::filesystem::path dbdir;
  policy::GreylistTiming timing;
  std::chrono::milliseconds commit_interval = kDefaultCommitInterval;
  // Expire records in the background commit thread (only with commit_interval > 0).
  bool background_expiry = true;
  size_t expiry_batch = kDefaultExpiryBatch;
  // The memory map starts at this size and doubles whenever a commit finds it full.
  size_t initial_map_bytes = kDefaultInitialMapBytes;
  // Hold <dbdir>/greylight.lock exclusively, so only one daemon owns the dbdir. Tools that
  // work beside a running daemon leave it off.
  bool exclusive = true;
  const Clock* clock = nullptr;  // for background expiry; nullptr means the system clock
};

// The embedded default store: one LMDB environment <dbdir>/greylight.lmdb with the named
// databases "triplets", "clients" and "traps" (TableName()), values in postgrey's formats. LMDB
// quirks (map growth, stale readers, resizes by other processes) stay inside this class.
class LmdbStore final : public Store {
 public:
  static constexpr std::string_view kDataFile = "greylight.lmdb";
  static constexpr std::string_view kLockFile = "greylight.lock";

  // Opens or creates the environment. Fails with kBusy if another daemon holds the lock.
  static Result<std::unique_ptr<LmdbStore>> Open(LmdbOptions options);
  ~LmdbStore() override;

  void Check(const CheckKeys& keys, UnixTime now, CheckCallback done) override;
  Result<std::optional<std::string>> Get(Table table, std::string_view key) override;
  Status Put(Table table, std::string_view key, std::string_view value) override;
  Status Delete(Table table, std::string_view key) override;
  Status PutMany(Table table,
                 const std::vector<std::pair<std::string, std::string>>& records) override;
  Status ForEach(Table table, const VisitFunction& visit) override;
  Result<size_t> ExpireSome(UnixTime now, size_t max_records) override;
  Status Flush() override;
  StoreStats Stats() override;

  // Current size of the memory map, for tests of map growth.
  size_t map_bytes() const;

 private:
  // A pending change: a value to put, or nullopt to delete.
  // Transparent hashing: lookups by string_view allocate nothing.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>()(key); }
  };
  using Overlay =
      std::unordered_map<std::string, std::optional<std::string>, KeyHash, std::equal_to<>>;
  // One overlay per table, indexed by TableIndex().
  using Overlays = std::array<Overlay, kAllTables.size()>;
  static size_t PendingCount(const Overlays& overlays) {
    size_t count = 0;
    for (const Overlay& overlay : overlays) count += overlay.size();
    return count;
  }

  explicit LmdbStore(LmdbOptions options);
  Status OpenEnvironment();
  void CommitLoop();
  // Moves pending_ into one durable write transaction.
  Status CommitPending();
  // Runs `body` in a write transaction, growing the map and retrying on MDB_MAP_FULL.
  template <typename Body>
  Status WithWriteTxn(Body&& body);
  // Reads `key` through the overlays, then LMDB. REQUIRES: mutex_ held.
  Result<std::optional<std::string_view>> ReadLocked(Table table, const std::string& key);
  Status GrowMap();
  // REQUIRES: mutex_ held.
  void DropReadTxnLocked();
  // Takes the map size another process set. REQUIRES: mutex_ held.
  void AdoptMapSizeLocked();
  MDB_dbi Dbi(Table table) const { return dbis_[TableIndex(table)]; }

  const LmdbOptions options_;
  int lock_fd_ = -1;
  MDB_env* env_ = nullptr;
  std::array<MDB_dbi, kAllTables.size()> dbis_{};

  mutable std::mutex mutex_;     // guards everything below and map resizes
  MDB_txn* read_txn_ = nullptr;  // reused (reset/renew) for Check reads
  Overlays pending_;             // acknowledged, not yet in a write transaction
  Overlays committing_;          // in the write transaction being committed
  std::string read_buffer_;      // value copy for reads from the overlays

  std::mutex commit_mutex_;  // serialises CommitPending and ExpireSome
  // Where the next expiry step starts, per table.
  std::array<std::optional<std::string>, kAllTables.size()> expiry_resume_;
  size_t expiry_table_ = 0;  // index into kAllTables of the table being expired

  std::atomic<uint64_t> expired_total_{0};

  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread committer_;
};

}  // namespace greylight::store
