#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/redis/redis_cluster_map.h"
#include "store/redis/redis_pipeline.h"
#include "store/redis/redis_transport.h"
#include "util/clock.h"

namespace greylight::store {

struct RedisClusterRouterOptions {
  RedisEndpoint seeds;  // kCluster: the seed nodes, user and password
  // Every node gets a RedisPipeline with these (endpoint: the node).
  RedisPipelineOptions pipeline;
};

// The transport of a Redis Cluster (redis+cluster://): greylight's own cluster client, as
// Debian's hiredis 0.14 has none.
//
// The slot map comes from CLUSTER SLOTS (asked of the known masters, then the seeds);
// each master gets one RedisPipeline. A request goes to the master of its key's slot
// (KeySlot). Redirections: MOVED re-routes the request once to the named node and refreshes
// the map; ASK sends ASKING plus the request once to the named node; TRYAGAIN (a slot half
// migrated) is retried every 20 ms until the request's timeout; CLUSTERDOWN, READONLY and a
// node that does not answer fail the request (kUnavailable, the caller fails open) and
// refresh the map. A node that is down fails its requests at once (its pipeline is
// disconnected), so they are answered within the timeout; while a master is disconnected
// or a slot has no master, the map is refreshed every second, which follows a failover.
// No request waits longer than the timeout plus one redirection (and TRYAGAIN retries
// stop at the timeout).
//
// Thread-safety: all methods may be called from any thread.
class RedisClusterRouter final : public RedisTransport {
 public:
  // Asks the seeds for the slot map and connects to every master. An unreachable cluster is
  // only logged (the map is asked again in the background); kInvalidArgument if a node
  // refuses the configuration (bad password). `clock` must outlive the router.
  static Result<std::unique_ptr<RedisClusterRouter>> Open(RedisClusterRouterOptions options,
                                                          const Clock& clock);
  ~RedisClusterRouter() override;

  void Submit(std::string_view key, std::vector<RedisCommand> commands, Callback done) override;
  Result<std::vector<std::string>> ScanTargets() override;
  void SubmitTo(const std::string& target, std::vector<RedisCommand> commands,
                Callback done) override;
  bool OnTransportThread() const override;
  bool connected() const override;
  uint64_t round_trips() const override;

 private:
  struct Request {
    std::shared_ptr<const std::vector<RedisCommand>> commands;
    Callback done;
    int slot = 0;
    int redirections_left = 1;
    MonoTime give_up;  // TRYAGAIN retries stop here
  };
  struct Retry {
    MonoTime due;
    Request request;
  };

  RedisClusterRouter(RedisClusterRouterOptions options, const Clock& clock);
  // Sends `request` to the master of its slot (or `to`, after a redirection).
  void Route(Request request, const RedisAddress* to = nullptr, bool asking = false);
  void Finish(Request request, Result<std::vector<RedisReply>> replies, bool asked);
  // The pipeline of `node`, connecting to it first if new. nullptr while closing, or if
  // the node refuses the configuration.
  RedisPipeline* PipelineFor(const RedisAddress& node);
  Status Refresh();
  void RequestRefresh();
  void Background();

  const RedisClusterRouterOptions options_;
  const Clock& clock_;
  log::RateLimiter warnings_;

  mutable std::mutex mutex_;  // guards the members below
  ClusterSlotMap map_;
  std::map<std::string, std::unique_ptr<RedisPipeline>> pipelines_;  // by "host:port"
  bool closing_ = false;
  bool refresh_wanted_ = false;
  std::deque<Retry> retries_;
  std::condition_variable wake_;
  std::atomic<int> routing_{0};  // Route calls using a pipeline pointer right now

  std::mutex refresh_mutex_;  // one Refresh at a time
  std::thread background_;    // refreshes the map and sends retries
};

}  // namespace greylight::store
