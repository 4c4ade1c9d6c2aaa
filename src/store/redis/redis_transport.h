#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/redis/redis_connection.h"
#include "store/redis/redis_pipeline.h"
#include "util/status.h"

namespace greylight::store {

// How the Redis record store (redis_records.h) reaches its servers: one server
// (SingleServerTransport) or a cluster (RedisClusterRouter), behind one seam, so the
// record logic is written once.
//
// Thread-safety: all methods may be called from any thread.
class RedisTransport {
 public:
  using Callback = RedisPipeline::Callback;
  virtual ~RedisTransport() = default;

  // Sends `commands`, which touch only keys in the hash slot of the Redis key `key`, to the
  // server that holds that slot, pipelined. `done` runs exactly once: on a transport
  // thread, or at once on the calling thread when the server is known to be unreachable.
  virtual void Submit(std::string_view key, std::vector<RedisCommand> commands, Callback done) = 0;
  // The servers a SCAN must visit to see every key, as known now: the one server, or every
  // master of a cluster. Names are for SubmitTo() and logs.
  virtual Result<std::vector<std::string>> ScanTargets() = 0;
  // Sends `commands` to the server `target` (from ScanTargets()) as they are.
  virtual void SubmitTo(const std::string& target, std::vector<RedisCommand> commands,
                        Callback done) = 0;
  // True on a thread that runs callbacks, where waiting for a reply would deadlock.
  virtual bool OnTransportThread() const = 0;
  // Whether every server is connected now, and the pipelined exchanges so far.
  virtual bool connected() const = 0;
  virtual uint64_t round_trips() const = 0;
};

// Synchronous helpers over a transport. kBusy on a transport thread.
Result<std::vector<RedisReply>> CallKey(RedisTransport& transport, std::string_view key,
                                        std::vector<RedisCommand> commands);
Result<std::vector<RedisReply>> CallTarget(RedisTransport& transport, const std::string& target,
                                           std::vector<RedisCommand> commands);
// Submits one job per (key, command) at once and waits for all: one Result per job, in
// order. The transport pipelines them (a cluster groups them by node).
Result<std::vector<Result<RedisReply>>> CallEachKey(
    RedisTransport& transport, std::vector<std::pair<std::string, RedisCommand>> jobs);

// The transport of a single Redis server (redis://, redis+unix://, redis+sentinel://): one
// pipeline; every key lives on it.
class SingleServerTransport final : public RedisTransport {
 public:
  explicit SingleServerTransport(std::unique_ptr<RedisPipeline> pipeline)
      : pipeline_(std::move(pipeline)) {}
  void Submit(std::string_view, std::vector<RedisCommand> commands, Callback done) override {
    pipeline_->Submit(std::move(commands), std::move(done));
  }
  Result<std::vector<std::string>> ScanTargets() override {
    return std::vector<std::string>{pipeline_->Describe()};
  }
  void SubmitTo(const std::string&, std::vector<RedisCommand> commands, Callback done) override {
    pipeline_->Submit(std::move(commands), std::move(done));
  }
  bool OnTransportThread() const override { return pipeline_->OnIoThread(); }
  bool connected() const override { return pipeline_->connected(); }
  uint64_t round_trips() const override { return pipeline_->round_trips(); }

 private:
  std::unique_ptr<RedisPipeline> pipeline_;
};

}  // namespace greylight::store
