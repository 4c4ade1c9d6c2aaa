#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/redis/redis_connection.h"
#include "store/redis/redis_uri.h"
#include "store/store.h"
#include "util/clock.h"

namespace greylight::store {

struct RedisOptions {
  static constexpr std::string_view kDefaultPrefix = "greylight:";
  static constexpr std::chrono::milliseconds kDefaultTimeout{200};
  static constexpr std::chrono::milliseconds kDefaultMinReconnectDelay{100};
  static constexpr std::chrono::milliseconds kDefaultMaxReconnectDelay{5000};
  static constexpr std::chrono::milliseconds kDefaultExpiryPeriod{3600 * 1000};
  static constexpr size_t kDefaultExpiryBatch = 1000;
  static constexpr std::chrono::milliseconds kDefaultWarningInterval{10000};

  RedisEndpoint endpoint;
  // Keys are <prefix>t:<triplet key> and <prefix>c:<client key>, so several sites can share
  // one Redis. Two prefixes must not be prefixes of each other's "t:" or "c:" keys (keep a
  // trailing ':' and they never are).
  std::string prefix{kDefaultPrefix};
  policy::GreylistTiming timing;
  // Bounds each connection attempt (per sentinel and per server) and each round trip. A
  // request that cannot be answered within it fails, and the caller fails open.
  std::chrono::milliseconds timeout = kDefaultTimeout;
  // After a failure, reconnection is attempted after min_reconnect_delay, doubling up to
  // max_reconnect_delay while attempts keep failing. While disconnected, requests fail at
  // once instead of waiting.
  std::chrono::milliseconds min_reconnect_delay = kDefaultMinReconnectDelay;
  std::chrono::milliseconds max_reconnect_delay = kDefaultMaxReconnectDelay;
  // Records written by Check() carry TTLs, so Redis expires them by itself. A background
  // sweep every expiry_period runs ExpireSome() over the whole prefix for what TTLs do not
  // cover: malformed values and records that Put() stored already expired.
  bool background_expiry = true;
  std::chrono::milliseconds expiry_period = kDefaultExpiryPeriod;
  size_t expiry_batch = kDefaultExpiryBatch;
  // At most one warning per interval; the next one counts those suppressed meanwhile.
  std::chrono::milliseconds warning_interval = kDefaultWarningInterval;
  // For Put()'s TTLs and the background sweep; nullptr means the system clock. Must
  // outlive the store.
  const Clock* clock = nullptr;
};

// A Store in Redis, shared by any number of greylightd instances (several MX hosts).
//
// Check() is one round trip: an EVALSHA of a Lua script that reads the triplet and client
// records, applies the rules of policy::Decide and writes the new records with TTLs, all
// atomically in Redis. The script returns the records it read; the store reruns
// policy::Decide on them to build the Transition and refuses the answer if the script wrote
// anything else (see redis_scripts.cc).
//
// One I/O thread owns the connection. Check() only queues a job and returns; the thread
// sends every queued job in one pipelined write, reads the replies and runs each job's
// callback on the I/O thread. So requests on different connections share round trips
// instead of waiting for each other's.
//
// Never blocks mail: every connection attempt and round trip is bounded by
// RedisOptions::timeout; a failed or timed-out request gets a non-ok Status (kUnavailable);
// while the connection is down, requests fail at once, and the I/O thread reconnects in the
// background with exponential backoff (through the sentinels, for a sentinel endpoint, so a
// failover is followed). Warnings are rate-limited to one per 10 seconds, with a count of
// the ones suppressed (RedisOptions::warning_interval).
//
// Thread-safety: all methods may be called from any thread, except that the synchronous
// methods (Get, Put, Delete, ForEach, ExpireSome) must not be called from a Check callback
// (they return kBusy there, as they would wait for the thread running the callback).
class RedisStore final : public Store {
 public:
  // Starts the I/O thread and makes the first connection attempt. Fails if the options are
  // invalid or the server refuses the configuration (bad password, no such database);
  // an unreachable server is only logged, and the store keeps trying in the background.
  static Result<std::unique_ptr<RedisStore>> Open(RedisOptions options);
  // Fails the jobs still queued if disconnected, else completes them; then closes.
  ~RedisStore() override;

  void Check(const CheckKeys& keys, UnixTime now, CheckCallback done) override;
  Result<std::optional<std::string>> Get(Table table, std::string_view key) override;
  // Stores `value` with the TTL a Check would have given it, counted from its last-seen
  // time by the store's clock. A malformed value, or one policy::Expired() already allows
  // to delete, is stored without TTL and left to ExpireSome().
  Status Put(Table table, std::string_view key, std::string_view value) override;
  Status Delete(Table table, std::string_view key) override;
  // SCANs the prefix. As with any SCAN, a record may be visited twice if Redis rehashes
  // during the iteration; records written meanwhile may or may not be visited.
  Status ForEach(Table table, const VisitFunction& visit) override;
  // Examines the prefix with SCAN, resuming where the previous call stopped, and deletes up
  // to `max_records` malformed or policy::Expired() records, each only if unchanged since
  // read (compare-and-delete). One call examines at most one full cycle of each table.
  Result<size_t> ExpireSome(UnixTime now, size_t max_records) override;
  // Every acknowledged write is already in Redis; durability is Redis' persistence
  // configuration. Returns Ok.
  Status Flush() override;

  // True while the I/O thread holds a working connection.
  bool connected() const { return connected_.load(); }
  // Pipelined exchanges with Redis so far (each may carry many jobs); for tests and
  // statistics.
  uint64_t round_trips() const { return round_trips_.load(); }

  // The key Redis holds a record under.
  std::string RedisKey(Table table, std::string_view key) const;

 private:
  using JobCallback = std::function<void(Result<std::vector<RedisReply>>)>;
  struct Job {
    std::vector<RedisCommand> commands;
    JobCallback done;  // run on the I/O thread, exactly once
    std::chrono::steady_clock::time_point deadline;
  };
  struct ExpiryScan {
    std::string cursor = "0";
    std::deque<std::string> backlog;  // keys scanned, not yet examined
    uint64_t cycles = 0;              // full SCAN cycles completed
  };
  class WarningLimiter;

  explicit RedisStore(RedisOptions options);
  // Queues `job`, or fails it at once (on the calling thread) when disconnected.
  void Submit(Job job);
  // Submits `commands` and waits for the replies. REQUIRES: not on the I/O thread.
  Result<std::vector<RedisReply>> Call(std::vector<RedisCommand> commands);
  Result<size_t> ExpireBatch(UnixTime now, size_t max_records);
  void IoLoop(std::function<void(Status)> first_attempt);
  Status Connect();
  // Drops the connection and schedules the next attempt; `warn` logs (rate-limited) why.
  void Disconnect(const Status& why, bool warn = true);
  void RunBatch(std::vector<Job>& batch);
  void SweepLoop();
  std::string ScanPattern(Table table) const;
  Job MakeJob(std::vector<RedisCommand> commands, JobCallback done) const;

  const RedisOptions options_;
  const Clock* clock_;
  std::vector<RedisCommand> setup_commands_;  // SCRIPT LOAD of every script
  std::vector<std::string> check_arguments_;  // the EVALSHA prefix, minus keys and now

  // I/O thread state. connection_ and backoff are touched only by the I/O thread.
  std::unique_ptr<RedisConnection> connection_;
  std::chrono::milliseconds backoff_;
  std::chrono::steady_clock::time_point reconnect_due_;
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> round_trips_{0};
  std::unique_ptr<WarningLimiter> warnings_;

  std::mutex mutex_;  // guards the members below
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::string last_error_;
  bool stopping_ = false;
  std::thread io_thread_;

  std::mutex expiry_mutex_;  // serialises ExpireSome
  std::array<ExpiryScan, kAllTables.size()> expiry_;

  std::mutex sweep_mutex_;
  std::condition_variable sweep_wake_;
  bool sweep_stopping_ = false;
  std::thread sweeper_;
};

}  // namespace greylight::store
