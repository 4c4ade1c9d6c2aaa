#include "store/lmdb/lmdb_store.h"

#include <fmt/format.h>
#include <lmdb.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/lmdb/lmdb_databases.h"
#include "store/lmdb/lmdb_dbdir.h"
#include "store/lmdb/lmdb_overlay.h"
#include "store/record_access.h"
#include "util/log.h"

namespace greylight::store {
namespace {

// The named databases (LmdbDatabases), with room for later ones.
constexpr unsigned kMaxDatabases = 8;
constexpr unsigned kMaxReaders = 126;
// Check() refuses new updates (the caller fails open) rather than grow without bound when
// commits keep failing, e.g. on a full disk.
constexpr size_t kMaxPendingRecords = size_t{1} << 20;
// Records per write transaction. LMDB holds every page a transaction dirties in malloc'd
// memory and keeps the largest such set for reuse while the environment is open, so the
// size of one transaction bounds the daemon's anonymous memory; and a transaction of more
// than 131,071 dirty pages fails (MDB_TXN_FULL), which a backlog after failed commits would
// reach. In a large database new triplets (random keys) dirty about one leaf page each:
// 8,192 records are at most about 40 MiB of dirty pages, whatever the number stored.
constexpr size_t kMaxRecordsPerTxn = 8192;
// Returned by a WithWriteTxn body that changed nothing: the transaction is aborted
// instead of committed, which saves a synced commit (LMDB returns negative codes and
// positive errno values, never this).
constexpr int kNothingToCommit = std::numeric_limits<int>::max();
// Expiry runs on every this many commit ticks: it is background work that must not
// double the number of synced transactions.
constexpr int kExpiryEveryTicks = 10;
// After a whole pass over every table that deleted nothing, expiry rests this long: it
// would only read the database again to find nothing (max-age is also enforced at lookup,
// so a record that expires meanwhile is absent to requests all the same).
constexpr std::chrono::seconds kExpiryIdlePause{60};
constexpr int kCommitThreadNice = 10;

Status LmdbError(std::string_view what, int rc) {
  std::string message = fmt::format("lmdb {}: {}", what, mdb_strerror(rc));
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID) {
    return Status::Corruption(std::move(message));
  }
  return Status::IoError(std::move(message));
}

MDB_val ToVal(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view FromVal(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

class WriteTxn {
 public:
  WriteTxn() = default;
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;
  ~WriteTxn() { Abort(); }
  void Abort() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    txn_ = nullptr;
  }
  int Begin(MDB_env* env) { return mdb_txn_begin(env, nullptr, 0, &txn_); }
  int Commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    return rc;
  }
  MDB_txn* get() const { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
};

class ReadTxn {
 public:
  ReadTxn() = default;
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  ~ReadTxn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  int Begin(MDB_env* env) { return mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_); }
  MDB_txn* get() const { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
};

// The LMDB store (see lmdb_store.h). Group commit: Check() updates an in-memory overlay of
// pending records and answers; the commit thread writes the overlay in one durable
// transaction every commit interval. Readers see the overlay first.
class LmdbStore final : public Store {
 public:
  LmdbStore(const LmdbOptions& options, const Clock& clock)
      : options_(options), timing_(options_.store.timing), clock_(clock) {}
  ~LmdbStore() override;

  Status OpenEnvironment();
  void StartCommitThread();

  void Check(const CheckKeys& keys, UnixTime now, CheckCallback done) override;
  void RecordReply(std::string_view key, UnixTime now, ReplyCallback done) override;
  Result<std::optional<std::string>> Get(Table table, std::string_view key) override;
  Status Put(Table table, std::string_view key, std::string_view value) override;
  Status Delete(Table table, std::string_view key) override;
  Status PutMany(Table table,
                 const std::vector<std::pair<std::string, std::string>>& records) override;
  Status ForEach(Table table, const VisitFunction& visit) override;
  Result<size_t> ExpireSome(UnixTime now, size_t max_records) override;
  Status Flush() override;
  StoreStats Stats() override;
  // A read transaction of its own (not the reused one), after adopting a map that another
  // process grew.
  Status BeginReadTxn(ReadTxn& txn);

 private:
  // Updates not yet committed: one overlay per table (by TableIndex), and the triplets still
  // pending, which wait for the slower commit (see pending_commit_interval). A key of the
  // triplets is held by `tables` or by `deferred`, never both, so either may be read first.
  struct Updates {
    std::array<LmdbOverlay, kAllTables.size()> tables;
    LmdbOverlay deferred;
    // Of `tables` only: what counts against kMaxPendingRecords.
    size_t TablesSize() const {
      size_t count = 0;
      for (const LmdbOverlay& overlay : tables) count += overlay.size();
      return count;
    }
    void Clear() {
      for (LmdbOverlay& overlay : tables) overlay.Clear();
      deferred.Clear();
    }
  };

  // Runs `body` (Status(), reading through ReadLocked and writing to pending_) under the
  // lock, unless too many updates are pending already; with a zero commit interval then
  // commits before returning. The one path of every acknowledged update.
  template <typename Body>
  Status Update(Body&& body);
  void CommitLoop();
  // Moves pending_ (its deferred triplets too when `with_deferred`) into one durable write
  // transaction.
  Status CommitPending(bool with_deferred = true);
  // Runs `body` in a write transaction, growing the map and retrying on MDB_MAP_FULL.
  template <typename Body>
  Status WithWriteTxn(Body&& body);
  // Reads `key` through the overlays, then LMDB's snapshot, which stays open (and the view
  // valid) until EndReadLocked(). With a commit thread, the snapshot serves every Check until
  // the next commit tick ends it (see read_txn_); without one, each Update ends it.
  // REQUIRES: mutex_ held.
  Result<std::optional<std::string_view>> ReadLocked(Table table, std::string_view key);
  void EndReadLocked();
  // Records a value for `key` in the overlay it belongs to. REQUIRES: mutex_ held.
  void WriteLocked(Table table, std::string_view key, std::optional<std::string_view> value,
                   bool deferred = false);
  // Pending triplets get their own, slower commit.
  bool deferring() const {
    return options_.store.pending_commit_interval > options_.store.commit_interval;
  }
  Result<size_t> MapBytes() const;
  Status GrowMap();
  // REQUIRES: mutex_ held.
  void DropReadTxnLocked();
  // Takes the map size another process set. REQUIRES: mutex_ held.
  Status AdoptMapSizeLocked();

  const LmdbOptions options_;
  const policy::GreylistTiming& timing_;
  const Clock& clock_;
  std::optional<DbdirLock> lock_;
  MDB_env* env_ = nullptr;
  LmdbDatabases databases_{timing_};

  // Guards everything below, map resizes, and databases_' triplet read order (ReadLocked).
  mutable std::mutex mutex_;
  // Reused (reset/renew) for Check reads. A snapshot is kept from one commit tick to the
  // next, not renewed per request: renewing, and finding each table's root again in a new
  // snapshot, was a third of the cost of LMDB reads on the pass path. What this process
  // updated since the snapshot is in the overlays until the commit that ends it, and what
  // other processes (greylight-admin) write is seen after at most one commit interval.
  MDB_txn* read_txn_ = nullptr;
  bool read_open_ = false;  // read_txn_ holds a snapshot (renewed, not yet reset)
  Updates pending_;         // acknowledged, not yet in a write transaction
  Updates committing_;      // in the write transaction being committed

  std::mutex commit_mutex_;  // serialises CommitPending and ExpireSome
  // A record of committing_, as CommitPending writes them (kept for its memory).
  struct CommitRecord {
    Table table;
    bool deferred;  // from committing_.deferred
    const LmdbOverlay::Entry* entry;
  };
  std::vector<CommitRecord> commit_order_;  // guarded by commit_mutex_
  // Committed updates, cleared outside mutex_ and then reused as pending_: their memory
  // serves the next updates. Guarded by commit_mutex_.
  Updates retired_;
  // Where the next expiry step starts, per database (LmdbDatabases index).
  std::array<std::optional<std::string>, LmdbDatabases::kCount> expiry_resume_;
  size_t expiry_database_ = 0;      // the database being expired
  size_t expiry_pass_deleted_ = 0;  // deleted so far in the current pass over every table
  MonoTime expiry_rest_until_{};    // CommitLoop's expiry rests until then (monotonic)

  std::atomic<uint64_t> expired_total_{0};

  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread committer_;
};

Status LmdbStore::OpenEnvironment() {
  const std::filesystem::path& dir = options_.store.dbdir;
  const std::filesystem::path data_path = dir / LmdbOptions::kDataFile;
  std::error_code ec;
  const bool existed = std::filesystem::exists(data_path, ec);
  if (options_.store.must_exist && !existed) {
    return Status::NotFound(fmt::format("no greylight store at {}: {} does not exist{}",
                                        dir.string(), data_path.string(),
                                        ec ? fmt::format(" ({})", ec.message()) : ""));
  }
  if (Status created = CreateDbdir(dir); !created.ok()) return created;
  if (options_.store.exclusive) {
    auto lock = DbdirLock::Acquire(dir / LmdbOptions::kLockFile);
    if (!lock.ok()) return lock.status();
    lock_.emplace(std::move(lock.value()));
  }

  int rc = mdb_env_create(&env_);
  if (rc != 0) return LmdbError("env_create", rc);
  if ((rc = mdb_env_set_maxdbs(env_, kMaxDatabases)) != 0) return LmdbError("set_maxdbs", rc);
  if ((rc = mdb_env_set_maxreaders(env_, kMaxReaders)) != 0) {
    return LmdbError("set_maxreaders", rc);
  }
  if ((rc = mdb_env_set_mapsize(env_, options_.initial_map_bytes)) != 0) {
    return LmdbError("set_mapsize", rc);
  }
  // MDB_NOTLS: the reused read transaction may be renewed on whichever thread runs Check.
  rc = mdb_env_open(env_, data_path.c_str(), MDB_NOSUBDIR | MDB_NOTLS, 0600);
  if (rc != 0) return LmdbError(fmt::format("open {}", data_path.string()), rc);
  if (!existed && options_.store.hand_new_files_to_dir_owner) {
    Status handed =
        HandToDirectoryOwner(dir, {data_path, std::filesystem::path(data_path.string() + "-lock")});
    if (!handed.ok()) return handed;
  }
  int dead_readers = 0;
  // Frees the reader slots a killed process left; failing that, they stay taken until the
  // next check, which costs slots, not correctness.
  if ((rc = mdb_reader_check(env_, &dead_readers)) != 0) {
    log::Warning("lmdb: reader check failed: {}", mdb_strerror(rc));
  }

  WriteTxn txn;
  if ((rc = txn.Begin(env_)) != 0) return LmdbError("txn_begin", rc);
  std::string failed;
  if ((rc = databases_.Open(txn.get(), failed, clock_.Now())) != 0) {
    return LmdbError("open " + failed, rc);
  }
  if ((rc = txn.Commit()) != 0) return LmdbError("commit", rc);
  return Status::Ok();
}

void LmdbStore::StartCommitThread() {
  if (options_.store.commit_interval.count() > 0) {
    committer_ = std::thread([this] { CommitLoop(); });
  }
}

LmdbStore::~LmdbStore() {
  if (committer_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    committer_.join();
  }
  if (env_ != nullptr) {
    Status status = CommitPending();
    if (!status.ok()) log::Error("lmdb: final commit failed: {}", status.message());
    if (read_txn_ != nullptr) mdb_txn_abort(read_txn_);
    mdb_env_close(env_);
  }
}

Result<size_t> LmdbStore::MapBytes() const {
  MDB_envinfo info;
  if (int rc = mdb_env_info(env_, &info); rc != 0) return LmdbError("env_info", rc);
  return info.me_mapsize;
}

// No transaction of this process may be active during a resize: the reused read
// transaction is dropped and recreated by the next read.
void LmdbStore::DropReadTxnLocked() {
  if (read_txn_ != nullptr) {
    mdb_txn_abort(read_txn_);
    read_txn_ = nullptr;
  }
  read_open_ = false;
}

Status LmdbStore::AdoptMapSizeLocked() {
  DropReadTxnLocked();
  if (int rc = mdb_env_set_mapsize(env_, 0); rc != 0) return LmdbError("adopt map size", rc);
  return Status::Ok();
}

Status LmdbStore::GrowMap() {
  std::lock_guard lock(mutex_);
  DropReadTxnLocked();
  auto map_bytes = MapBytes();
  if (!map_bytes.ok()) return map_bytes.status();
  size_t new_size = *map_bytes * 2;
  int rc = mdb_env_set_mapsize(env_, new_size);
  if (rc != 0) return LmdbError("set_mapsize", rc);
  log::Info("lmdb: map grown to {} MiB", new_size >> 20);
  return Status::Ok();
}

template <typename Body>
Status LmdbStore::WithWriteTxn(Body&& body) {
  for (int attempt = 0;; ++attempt) {
    WriteTxn txn;
    int rc = txn.Begin(env_);
    if (rc == MDB_MAP_RESIZED) {  // another process grew the map: adopt its size
      std::lock_guard lock(mutex_);
      if (Status adopted = AdoptMapSizeLocked(); !adopted.ok()) return adopted;
      continue;
    }
    if (rc != 0) return LmdbError("txn_begin", rc);
    rc = body(txn.get());
    if (rc == kNothingToCommit) return Status::Ok();  // the destructor aborts: no sync
    if (rc == 0) rc = txn.Commit();
    if (rc == MDB_MAP_FULL && attempt < 32) {
      txn.Abort();  // no transaction may be active during a resize
      Status grown = GrowMap();
      if (!grown.ok()) return grown;
      continue;
    }
    return rc == 0 ? Status::Ok() : LmdbError("write", rc);
  }
}

Result<std::optional<std::string_view>> LmdbStore::ReadLocked(Table table, std::string_view key) {
  const bool triplets = table == Table::kTriplets;
  // The newest first: what is acknowledged, then what is being committed.
  const LmdbOverlay* overlays[] = {
      &pending_.tables[TableIndex(table)], triplets ? &pending_.deferred : nullptr,
      &committing_.tables[TableIndex(table)], triplets ? &committing_.deferred : nullptr};
  // Hashed only for an overlay that holds something: on the pass path they are mostly empty.
  std::optional<uint64_t> hash;
  for (const LmdbOverlay* overlay : overlays) {
    if (overlay == nullptr || overlay->empty()) continue;
    if (!hash) hash = LmdbOverlay::Hash(key);
    if (const LmdbOverlay::Entry* entry = overlay->Find(key, *hash)) return entry->value();
  }
  if (!read_open_) {
    int rc = read_txn_ == nullptr ? mdb_txn_begin(env_, nullptr, MDB_RDONLY, &read_txn_)
                                  : mdb_txn_renew(read_txn_);
    if (rc == MDB_MAP_RESIZED) {
      if (Status adopted = AdoptMapSizeLocked(); !adopted.ok()) return adopted;
      rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &read_txn_);
    }
    if (rc != 0) {
      DropReadTxnLocked();
      return LmdbError("read txn", rc);
    }
    read_open_ = true;
    databases_.WeighTripletReadOrder(read_txn_);
  }
  MDB_val k = ToVal(key), v;
  int rc = databases_.Get(read_txn_, table, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != 0) return LmdbError("get", rc);
  // Valid until EndReadLocked(): the snapshot stays open for the rest of the Check.
  return std::optional<std::string_view>(FromVal(v));
}

void LmdbStore::EndReadLocked() {
  if (read_open_) {
    mdb_txn_reset(read_txn_);
    read_open_ = false;
  }
}

void LmdbStore::WriteLocked(Table table, std::string_view key,
                            std::optional<std::string_view> value, bool deferred) {
  const uint64_t hash = LmdbOverlay::Hash(key);
  LmdbOverlay& overlay = pending_.tables[TableIndex(table)];
  if (table == Table::kTriplets) {
    // Keep each key in one of the two overlays: the newest value is the only one.
    if (deferred) {
      overlay.Erase(key, hash);
      pending_.deferred.Put(key, hash, value);
      return;
    }
    pending_.deferred.Erase(key, hash);
  }
  overlay.Put(key, hash, value);
}

// Runs `body` (reads and writes of one request) under the lock on one read snapshot, then
// commits at once when there is no commit interval.
template <typename Body>
Status LmdbStore::Update(Body&& body) {
  {
    std::lock_guard lock(mutex_);
    if (pending_.TablesSize() >= kMaxPendingRecords) {
      return Status::Unavailable("lmdb: too many uncommitted updates (commits failing?)");
    }
    Status status = body();
    if (!status.ok() || options_.store.commit_interval.count() == 0) EndReadLocked();
    if (!status.ok()) return status;
  }
  if (options_.store.commit_interval.count() == 0) return CommitPending();
  return Status::Ok();
}

void LmdbStore::Check(const CheckKeys& keys, UnixTime now, CheckCallback done) {
  const bool immediate = options_.store.commit_interval.count() == 0;
  policy::Transition transition;
  Status status = Update([&] {
    Status failure;
    auto read = [&](Table table, const std::string& key) -> std::optional<std::string_view> {
      auto value = ReadLocked(table, key);
      if (!value.ok()) {
        if (failure.ok()) failure = value.status();
        return std::nullopt;
      }
      return *value;
    };
    policy::PriorState prior = ReadPrior(keys, now, timing_, read);
    if (!failure.ok()) return failure;
    transition = DecideFor(keys, prior, now, timing_);
    // A triplet still pending waits for the slower commit (see pending_commit_interval).
    const bool defer = !immediate && deferring() && transition.triplet_write &&
                       !policy::Passed(*transition.triplet_write, timing_);
    ApplyTransition(keys, transition, [&](Table table, const std::string& key, std::string value) {
      WriteLocked(table, key, value, defer && table == Table::kTriplets);
    });
    return Status::Ok();
  });
  if (!status.ok()) return done(status);
  done(std::move(transition));
}

void LmdbStore::RecordReply(std::string_view key, UnixTime now, ReplyCallback done) {
  policy::ReplyRecord record;
  Status status = Update([&] {
    auto value = ReadLocked(Table::kReplies, key);
    if (!value.ok()) return value.status();
    record = RecordedReply(key, *value, now, timing_);
    WriteLocked(Table::kReplies, key, policy::EncodeReply(record));
    return Status::Ok();
  });
  if (!status.ok()) return done(status);
  done(record);
}

Status LmdbStore::CommitPending(bool with_deferred) {
  std::lock_guard commit_lock(commit_mutex_);
  {
    std::lock_guard lock(mutex_);
    with_deferred = with_deferred && !pending_.deferred.empty();
    if (pending_.TablesSize() == 0 && !with_deferred) return Status::Ok();
    // committing_ is empty here, and its memory (cleared) serves the next updates.
    committing_.tables.swap(pending_.tables);
    if (with_deferred) std::swap(committing_.deferred, pending_.deferred);
  }
  // The records in key order, table by table, kMaxRecordsPerTxn to a write transaction:
  // neighbouring keys share the pages their descents touch.
  std::vector<CommitRecord>& records = commit_order_;
  records.clear();
  auto add = [&](Table table, const LmdbOverlay& overlay, bool deferred) {
    for (const LmdbOverlay::Entry& entry : overlay.entries()) {
      if (!entry.erased()) records.push_back({table, deferred, &entry});
    }
  };
  for (Table table : kAllTables) add(table, committing_.tables[TableIndex(table)], false);
  add(Table::kTriplets, committing_.deferred, true);
  std::sort(records.begin(), records.end(), [](const CommitRecord& a, const CommitRecord& b) {
    // LMDB's default order is the bytes' (memcmp, then length), as string_view compares.
    if (a.table != b.table) return TableIndex(a.table) < TableIndex(b.table);
    return a.entry->key() < b.entry->key();
  });
  size_t next = 0;
  Status status;
  while (status.ok() && next < records.size()) {
    const size_t chunk = next;
    status = WithWriteTxn([&](MDB_txn* txn) -> int {
      // WithWriteTxn runs this again after growing the map: start the chunk over.
      next = chunk;
      for (const size_t end = std::min(records.size(), chunk + kMaxRecordsPerTxn); next < end;
           ++next) {
        const CommitRecord& record = records[next];
        MDB_val k = ToVal(record.entry->key());
        if (int rc = databases_.Write(txn, record.table, &k, record.entry->value()); rc != 0) {
          return rc;
        }
      }
      return 0;
    });
  }
  {
    std::lock_guard lock(mutex_);
    if (!status.ok()) {
      // Keep the updates for the next attempt; newer pending values win.
      for (const CommitRecord& record : records) {
        const std::string_view key = record.entry->key();
        const uint64_t hash = record.entry->hash();
        LmdbOverlay& table = pending_.tables[TableIndex(record.table)];
        if (table.Find(key, hash) != nullptr ||
            (record.table == Table::kTriplets && pending_.deferred.Find(key, hash) != nullptr)) {
          continue;  // a newer pending value
        }
        (record.deferred ? pending_.deferred : table).Put(key, hash, record.entry->value());
      }
    }
    // The snapshot may predate this commit: the next read takes a new one, which has it.
    EndReadLocked();
    std::swap(committing_, retired_);
  }
  // Cleared outside the lock: thousands of entries take long enough to delay requests.
  records.clear();  // they point into what is cleared
  retired_.Clear();
  return status;
}

void LmdbStore::CommitLoop() {
  // Commits are background work: when both cores are busy, answering requests comes first
  // (a late commit only takes more updates at once).
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kCommitThreadNice) != 0) {
    log::Info("lmdb: commit thread keeps its priority: {}", std::strerror(errno));
  }
  // Pending triplets are committed on every this many ticks.
  const int deferred_every = deferring()
                                 ? static_cast<int>(options_.store.pending_commit_interval.count() /
                                                    options_.store.commit_interval.count())
                                 : 1;
  int ticks = 0;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.store.commit_interval);
    if (stopping_) break;
    lock.unlock();
    ++ticks;
    Status status = CommitPending(/*with_deferred=*/ticks % deferred_every == 0);
    if (!status.ok()) log::Error("lmdb: commit failed, will retry: {}", status.message());
    if (options_.store.background_expiry && ticks % kExpiryEveryTicks == 0 &&
        clock_.Monotonic() >= expiry_rest_until_) {
      auto expired = ExpireSome(clock_.Now(), options_.expiry_batch);
      if (!expired.ok()) log::Error("lmdb: expiry failed: {}", expired.status().message());
    }
    lock.lock();
    EndReadLocked();  // what other processes committed meanwhile, seen from the next read
  }
}

Result<size_t> LmdbStore::ExpireSome(UnixTime now, size_t max_records) {
  std::lock_guard commit_lock(commit_mutex_);
  size_t deleted = 0;
  // Where this step stops, adopted only once its transaction has committed: a retried
  // transaction (map grown) starts again from the same place.
  std::array<std::optional<std::string>, LmdbDatabases::kCount> resume;
  size_t database = 0;
  bool pass_ended = false;  // this step finished the last table: the next starts a new pass
  Status status = WithWriteTxn([&](MDB_txn* txn) -> int {
    deleted = 0;
    pass_ended = false;
    resume = expiry_resume_;
    database = expiry_database_;
    size_t examined = 0;
    // One database at a time, from where the last step stopped, moving on when it wraps: a
    // big triplet table must not starve the others of the batch.
    for (size_t turn = 0; turn < LmdbDatabases::kCount && examined < max_records; ++turn) {
      const Table table = LmdbDatabases::TableOf(database);
      std::optional<std::string>& table_resume = resume[database];
      MDB_cursor* cursor = nullptr;
      int rc = mdb_cursor_open(txn, databases_.dbi(database), &cursor);
      if (rc != 0) return rc;
      MDB_val k, v;
      if (table_resume) {
        k = ToVal(*table_resume);
        rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
      } else {
        rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
      }
      while (rc == 0 && examined < max_records) {
        ++examined;
        std::string_view key = FromVal(k);
        bool pending;
        {
          std::lock_guard lock(mutex_);
          const uint64_t hash = LmdbOverlay::Hash(key);
          pending = pending_.tables[TableIndex(table)].Find(key, hash) != nullptr ||
                    (table == Table::kTriplets && pending_.deferred.Find(key, hash) != nullptr);
        }
        if (!pending && ShouldExpire(table, FromVal(v), now, timing_)) {
          if ((rc = mdb_cursor_del(cursor, 0)) != 0) break;
          ++deleted;
          // After a delete LMDB's MDB_NEXT yields the record that followed, not the one after.
        }
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
      }
      if (rc == 0) {
        table_resume = std::string(FromVal(k));
      } else if (rc == MDB_NOTFOUND) {
        table_resume.reset();  // wrapped around: it starts at the beginning next time
        database = (database + 1) % LmdbDatabases::kCount;
        pass_ended = pass_ended || database == 0;
      } else {
        mdb_cursor_close(cursor);
        return rc;
      }
      mdb_cursor_close(cursor);
    }
    return deleted == 0 ? kNothingToCommit : 0;
  });
  if (!status.ok()) return status;
  expiry_resume_ = std::move(resume);
  expiry_database_ = database;
  expired_total_.fetch_add(deleted, std::memory_order_relaxed);
  expiry_pass_deleted_ += deleted;
  if (pass_ended) {
    // Back at the first table: a pass over every table that found nothing to delete
    // rests the expiry for a while.
    if (expiry_pass_deleted_ == 0) expiry_rest_until_ = clock_.Monotonic() + kExpiryIdlePause;
    expiry_pass_deleted_ = 0;
  }
  return deleted;
}

Status LmdbStore::BeginReadTxn(ReadTxn& txn) {
  int rc = txn.Begin(env_);
  if (rc == MDB_MAP_RESIZED) {  // another process grew the map: adopt its size
    {
      std::lock_guard lock(mutex_);
      if (Status adopted = AdoptMapSizeLocked(); !adopted.ok()) return adopted;
    }
    rc = txn.Begin(env_);
  }
  return rc == 0 ? Status::Ok() : LmdbError("read txn", rc);
}

StoreStats LmdbStore::Stats() {
  StoreStats stats;
  stats.expired_total = expired_total_.load(std::memory_order_relaxed);
  ReadTxn txn;
  if (!BeginReadTxn(txn).ok()) return stats;
  auto count = [&](Table table) -> std::optional<uint64_t> {
    uint64_t records = 0;
    if (databases_.Count(txn.get(), table, records) != 0) return std::nullopt;
    return records;
  };
  stats.triplets = count(Table::kTriplets);
  stats.clients = count(Table::kClients);
  stats.traps = count(Table::kTraps);
  stats.replies = count(Table::kReplies);
  return stats;
}

Status LmdbStore::Flush() { return CommitPending(); }

Result<std::optional<std::string>> LmdbStore::Get(Table table, std::string_view key) {
  std::lock_guard lock(mutex_);
  auto value = ReadLocked(table, key);
  std::optional<std::string> copy;
  if (value.ok() && *value) copy = std::string(**value);
  EndReadLocked();
  if (!value.ok()) return value.status();
  return copy;
}

Status LmdbStore::Put(Table table, std::string_view key, std::string_view value) {
  {
    std::lock_guard lock(mutex_);
    WriteLocked(table, key, value, /*deferred=*/false);
  }
  return CommitPending();
}

Status LmdbStore::PutMany(Table table,
                          const std::vector<std::pair<std::string, std::string>>& records) {
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, value] : records) WriteLocked(table, key, value, /*deferred=*/false);
  }
  return CommitPending();  // one transaction for the whole batch
}

Status LmdbStore::Delete(Table table, std::string_view key) {
  {
    std::lock_guard lock(mutex_);
    WriteLocked(table, key, std::nullopt, /*deferred=*/false);
  }
  return CommitPending();
}

Status LmdbStore::ForEach(Table table, const VisitFunction& visit) {
  Status flushed = Flush();
  if (!flushed.ok()) return flushed;
  ReadTxn txn;
  if (Status begun = BeginReadTxn(txn); !begun.ok()) return begun;
  int rc = databases_.ForEach(txn.get(), table, visit);
  return rc == 0 ? Status::Ok() : LmdbError("cursor", rc);
}

}  // namespace

Result<std::unique_ptr<Store>> OpenLmdbStore(const LmdbOptions& options, const Clock& clock) {
  auto store = std::make_unique<LmdbStore>(options, clock);
  if (Status status = store->OpenEnvironment(); !status.ok()) return status;
  store->StartCommitThread();
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace greylight::store
