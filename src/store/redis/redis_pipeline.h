#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/redis/reconnect_backoff.h"
#include "store/redis/redis_connection.h"
#include "store/redis/redis_scripts.h"
#include "store/redis/redis_uri.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/status.h"

namespace greylight::store {

// Filled by the store factories from RedisOptions (redis_store.h), which owns the defaults.
struct RedisPipelineOptions {
  RedisEndpoint endpoint;
  // Bounds each connection attempt (per sentinel and per server) and each round trip.
  std::chrono::milliseconds timeout{};
  // After a failure, reconnection is attempted after min_reconnect_delay, doubling up to
  // max_reconnect_delay while attempts keep failing (ReconnectBackoff).
  std::chrono::milliseconds min_reconnect_delay{};
  std::chrono::milliseconds max_reconnect_delay{};
  // At most one warning per interval; the next one counts those suppressed meanwhile.
  std::chrono::milliseconds warning_interval{};
  // Loaded (SCRIPT LOAD) on every new connection; an EVALSHA of one of them that the server
  // answers NOSCRIPT is sent again as EVAL. Must outlive the pipeline.
  std::vector<const RedisScript*> scripts;
};

// One pipelined connection to one Redis server, owned by an I/O thread: the connection
// management under every Redis store. Submit() only queues; the thread sends every queued
// job in one pipelined write, reads the replies and runs each job's callback on the I/O
// thread, so requests from many connections share round trips.
//
// Never blocks mail: every connection attempt and round trip is bounded by the timeout
// (deadlines on the clock's monotonic time); a job that waited in the queue past its
// deadline fails; while the connection is down, jobs fail at once (kUnavailable) and the
// thread reconnects in the background with ReconnectBackoff (through the sentinels for a
// sentinel endpoint, so a failover is followed). A server that answers READONLY or
// MASTERDOWN (a replica, e.g. a demoted master) is dropped and reconnected. Warnings are
// rate-limited (log::RateLimiter).
//
// Thread-safety: all methods may be called from any thread; Call() not from the I/O thread.
class RedisPipeline {
 public:
  using Callback = std::function<void(Result<std::vector<RedisReply>>)>;

  // Starts the I/O thread and waits for its first connection attempt. Fails with
  // kInvalidArgument if the options are invalid or the server refuses the configuration
  // (bad password, no such database); an unreachable server is only logged, and the
  // pipeline keeps trying in the background. `clock` must outlive the pipeline.
  static Result<std::unique_ptr<RedisPipeline>> Open(RedisPipelineOptions options,
                                                     const Clock& clock);
  // Fails the jobs still queued if disconnected, else completes them; then closes.
  ~RedisPipeline();
  RedisPipeline(const RedisPipeline&) = delete;
  RedisPipeline& operator=(const RedisPipeline&) = delete;

  // Queues `commands` for one pipelined exchange, or fails them at once (on the calling
  // thread) when disconnected. `done` runs exactly once, with one reply per command (error
  // replies included) or a non-ok Status for the whole job.
  void Submit(std::vector<RedisCommand> commands, Callback done);
  // Submits `commands` and waits for the replies. kBusy when called on the I/O thread
  // (from a callback), which would wait for itself.
  Result<std::vector<RedisReply>> Call(std::vector<RedisCommand> commands);

  // True on the I/O thread, i.e. inside a callback.
  bool OnIoThread() const { return std::this_thread::get_id() == io_thread_.get_id(); }
  // True while the I/O thread holds a working connection.
  bool connected() const { return connected_.load(); }
  // Pipelined exchanges so far (each may carry many jobs).
  uint64_t round_trips() const { return round_trips_.load(); }
  // Why the connection is down (empty while connected).
  std::string last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }
  // The endpoint, for logs (no password).
  std::string Describe() const { return options_.endpoint.Describe(); }

 private:
  struct Job {
    std::vector<RedisCommand> commands;
    Callback done;  // run exactly once
    MonoTime deadline;
  };

  RedisPipeline(RedisPipelineOptions options, const Clock& clock);
  void Warn(std::string_view message);
  void IoLoop(std::function<void(Status)> first_attempt);
  Status Connect();
  // Drops the connection and schedules the next attempt; `warn` logs (rate-limited) why.
  void Disconnect(const Status& why, bool warn = true);
  void RunBatch(std::vector<Job>& batch);
  // NOSCRIPT: sends the commands at `missing` again as EVAL. Returns the new replies.
  Result<std::vector<RedisReply>> RetryAsEval(const std::vector<RedisCommand>& commands,
                                              const std::vector<size_t>& missing);

  const RedisPipelineOptions options_;
  const Clock& clock_;
  std::vector<RedisCommand> setup_commands_;  // SCRIPT LOAD of every script
  log::RateLimiter warnings_;

  // I/O thread state.
  std::unique_ptr<RedisConnection> connection_;
  ReconnectBackoff backoff_;
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> round_trips_{0};

  mutable std::mutex mutex_;  // guards the members below
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::string last_error_;
  bool stopping_ = false;
  std::thread io_thread_;
};

}  // namespace greylight::store
