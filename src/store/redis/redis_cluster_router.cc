#include "store/redis/redis_cluster_router.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pthread.h>
#include <signal.h>

#include <cstring>

namespace greylight::store {
namespace {

// A slot half migrated answers TRYAGAIN; the request is sent again after this.
constexpr std::chrono::milliseconds kTryAgainDelay{20};
// While a master is down or a slot has no master, the map is asked again this often.
constexpr std::chrono::milliseconds kDegradedRefreshPeriod{1000};
// At least this long between two refreshes asked for by failing requests.
constexpr std::chrono::milliseconds kMinRefreshSpacing{100};

std::string NodeName(const RedisAddress& node) {
  if (node.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", node.host, node.port);
  return fmt::format("{}:{}", node.host, node.port);
}

}  // namespace

RedisClusterRouter::RedisClusterRouter(RedisClusterRouterOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock), warnings_(options_.pipeline.warning_interval) {}

Result<std::unique_ptr<RedisClusterRouter>> RedisClusterRouter::Open(
    RedisClusterRouterOptions options, const Clock& clock) {
  if (options.seeds.addresses.empty()) {
    return Status::InvalidArgument("redis cluster: no seed node");
  }
  std::unique_ptr<RedisClusterRouter> router(new RedisClusterRouter(std::move(options), clock));
  Status first = router->Refresh();
  if (first.code() == Status::Code::kInvalidArgument) return first;
  if (!first.ok()) log::Warning("{}; asking again in the background", first.message());
  router->background_ = std::thread([raw = router.get()] { raw->Background(); });
  return router;
}

RedisClusterRouter::~RedisClusterRouter() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  wake_.notify_all();
  if (background_.joinable()) background_.join();
  // No Route may be using a pipeline while they close; later Routes fail at once.
  while (routing_.load() > 0) std::this_thread::yield();
  std::deque<Retry> retries;
  std::map<std::string, std::unique_ptr<RedisPipeline>> pipelines;
  {
    std::lock_guard lock(mutex_);
    retries.swap(retries_);
    pipelines.swap(pipelines_);
  }
  for (Retry& retry : retries) retry.request.done(Status::Unavailable("redis: store is closing"));
  // Each pipeline drains and joins its thread here, outside the lock: its callbacks may
  // Route(), which fails at once now.
  pipelines.clear();
}

RedisPipeline* RedisClusterRouter::PipelineFor(const RedisAddress& node) {
  const std::string name = NodeName(node);
  {
    std::lock_guard lock(mutex_);
    if (closing_) return nullptr;
    auto it = pipelines_.find(name);
    if (it != pipelines_.end()) return it->second.get();
  }
  RedisPipelineOptions pipeline_options = options_.pipeline;
  pipeline_options.endpoint = options_.seeds;
  pipeline_options.endpoint.kind = RedisEndpoint::Kind::kTcp;
  pipeline_options.endpoint.addresses = {node};
  auto opened = RedisPipeline::Open(std::move(pipeline_options), clock_);
  if (!opened.ok()) {
    log::Error("redis cluster node {}: {}", name, opened.status().message());
    return nullptr;
  }
  std::lock_guard lock(mutex_);
  if (closing_) return nullptr;  // the new pipeline closes on return
  auto [it, inserted] = pipelines_.try_emplace(name, std::move(opened.value()));
  return it->second.get();
}

Status RedisClusterRouter::Refresh() {
  std::lock_guard refresh_lock(refresh_mutex_);
  std::vector<RedisAddress> ask;
  {
    std::lock_guard lock(mutex_);
    ask = map_.masters;
  }
  ask.insert(ask.end(), options_.seeds.addresses.begin(), options_.seeds.addresses.end());
  std::vector<std::string> problems;
  for (const RedisAddress& node : ask) {
    RedisEndpoint endpoint = options_.seeds;
    endpoint.kind = RedisEndpoint::Kind::kTcp;
    endpoint.addresses = {node};
    auto connection = RedisConnection::Open(endpoint, options_.pipeline.timeout, {}, clock_);
    if (!connection.ok()) {
      if (connection.status().code() == Status::Code::kInvalidArgument) return connection.status();
      problems.push_back(connection.status().message());
      continue;
    }
    RedisCommand slots{"CLUSTER", "SLOTS"};
    auto replies = (*connection)
                       ->Exchange(std::span<const RedisCommand>(&slots, 1),
                                  clock_.Monotonic() + options_.pipeline.timeout);
    if (!replies.ok()) {
      problems.push_back(replies.status().message());
      continue;
    }
    auto map = ParseClusterSlots(replies->front(), node);
    if (!map.ok()) {
      problems.push_back(fmt::format("{}: {}", NodeName(node), map.status().message()));
      continue;
    }
    for (const RedisAddress& master : map->masters) {
      if (PipelineFor(master) == nullptr) {
        std::lock_guard lock(mutex_);
        if (closing_) return Status::Unavailable("redis: store is closing");
      }
    }
    std::lock_guard lock(mutex_);
    map_ = std::move(map.value());
    return Status::Ok();
  }
  return Status::Unavailable(
      fmt::format("redis cluster: no node gave the slot map: {}", fmt::join(problems, "; ")));
}

void RedisClusterRouter::RequestRefresh() {
  std::lock_guard lock(mutex_);
  refresh_wanted_ = true;
  wake_.notify_all();
}

void RedisClusterRouter::Background() {
  // RedisConnection writes with write(2); see RedisPipeline::IoLoop.
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  if (int rc = pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr); rc != 0) {
    log::Error("redis cluster: cannot block SIGPIPE: {}", std::strerror(rc));
  }
  MonoTime last_refresh = clock_.Monotonic();
  std::unique_lock lock(mutex_);
  while (!closing_) {
    wake_.wait_for(lock, kTryAgainDelay);
    if (closing_) break;
    // Retries that are due.
    std::vector<Request> due;
    const MonoTime now = clock_.Monotonic();
    while (!retries_.empty() && retries_.front().due <= now) {
      due.push_back(std::move(retries_.front().request));
      retries_.pop_front();
    }
    bool degraded = false;
    for (const RedisAddress& master : map_.masters) {
      auto it = pipelines_.find(NodeName(master));
      degraded = degraded || it == pipelines_.end() || !it->second->connected();
    }
    for (int16_t owner : map_.owner) degraded = degraded || owner < 0;
    const bool refresh = (refresh_wanted_ && now - last_refresh >= kMinRefreshSpacing) ||
                         (degraded && now - last_refresh >= kDegradedRefreshPeriod);
    if (refresh) refresh_wanted_ = false;
    lock.unlock();
    for (Request& request : due) Route(std::move(request));
    if (refresh) {
      last_refresh = clock_.Monotonic();
      if (Status status = Refresh(); !status.ok() && warnings_.Allow(clock_.Monotonic())) {
        log::Warning("{}", status.message());
      }
    }
    lock.lock();
  }
}

void RedisClusterRouter::Submit(std::string_view key, std::vector<RedisCommand> commands,
                                Callback done) {
  Request request;
  request.commands = std::make_shared<const std::vector<RedisCommand>>(std::move(commands));
  request.done = std::move(done);
  request.slot = KeySlot(key);
  request.give_up = clock_.Monotonic() + options_.pipeline.timeout;
  Route(std::move(request));
}

void RedisClusterRouter::Route(Request request, const RedisAddress* to, bool asking) {
  RedisAddress node;
  {
    std::lock_guard lock(mutex_);
    if (closing_) return request.done(Status::Unavailable("redis: store is closing"));
    if (to != nullptr) {
      node = *to;
    } else if (const RedisAddress* master = map_.MasterOf(request.slot)) {
      node = *master;
    }
    routing_.fetch_add(1);
  }
  struct Done {
    std::atomic<int>& counter;
    ~Done() { counter.fetch_sub(1); }
  } routed{routing_};
  if (node.host.empty()) {
    RequestRefresh();
    return request.done(Status::Unavailable(
        fmt::format("redis cluster: no master known for slot {}", request.slot)));
  }
  RedisPipeline* pipeline = PipelineFor(node);
  if (pipeline == nullptr) {
    return request.done(
        Status::Unavailable(fmt::format("redis cluster: no connection to {}", NodeName(node))));
  }
  std::vector<RedisCommand> commands;
  if (asking) commands.push_back({"ASKING"});
  commands.insert(commands.end(), request.commands->begin(), request.commands->end());
  pipeline->Submit(std::move(commands), [this, request = std::move(request),
                                         asking](Result<std::vector<RedisReply>> replies) mutable {
    Finish(std::move(request), std::move(replies), asking);
  });
}

void RedisClusterRouter::Finish(Request request, Result<std::vector<RedisReply>> replies,
                                bool asked) {
  if (!replies.ok()) {
    RequestRefresh();  // the node may be down: its slots may have a new master
    return request.done(replies.status());
  }
  if (asked) replies->erase(replies->begin());  // ASKING's +OK
  for (const RedisReply& reply : *replies) {
    if (!reply.is_error()) continue;
    if (std::optional<Redirection> redirection = ParseRedirection(reply)) {
      if (!redirection->ask) RequestRefresh();
      if (request.redirections_left-- <= 0) {
        return request.done(Status::Unavailable("redis cluster: redirected twice: " + reply.str));
      }
      return Route(std::move(request), &redirection->to, redirection->ask);
    }
    if (reply.IsError("TRYAGAIN")) {
      MonoTime due = clock_.Monotonic() + kTryAgainDelay;
      if (due > request.give_up) {
        return request.done(Status::Unavailable("redis cluster: " + reply.str));
      }
      std::lock_guard lock(mutex_);
      if (closing_) {
        return request.done(Status::Unavailable("redis: store is closing"));
      }
      request.redirections_left = 1;  // a retry may meet an ASK again
      retries_.push_back(Retry{due, std::move(request)});
      return;
    }
    if (reply.IsError("CLUSTERDOWN") || reply.IsError("READONLY") || reply.IsError("MASTERDOWN")) {
      RequestRefresh();
      return request.done(Status::Unavailable("redis cluster: " + reply.str));
    }
  }
  request.done(std::move(replies));
}

Result<std::vector<std::string>> RedisClusterRouter::ScanTargets() {
  std::lock_guard lock(mutex_);
  if (map_.masters.empty()) return Status::Unavailable("redis cluster: no slot map yet");
  for (int16_t owner : map_.owner) {
    if (owner < 0) return Status::Unavailable("redis cluster: a slot has no master");
  }
  std::vector<std::string> targets;
  for (const RedisAddress& master : map_.masters) targets.push_back(NodeName(master));
  return targets;
}

void RedisClusterRouter::SubmitTo(const std::string& target, std::vector<RedisCommand> commands,
                                  Callback done) {
  RedisAddress node;
  {
    std::lock_guard lock(mutex_);
    for (const RedisAddress& master : map_.masters) {
      if (NodeName(master) == target) node = master;
    }
  }
  if (node.host.empty()) {
    return done(Status::Unavailable("redis cluster: " + target + " is no longer a master"));
  }
  {
    std::lock_guard lock(mutex_);
    if (closing_) return done(Status::Unavailable("redis: store is closing"));
    routing_.fetch_add(1);
  }
  RedisPipeline* pipeline = PipelineFor(node);
  if (pipeline == nullptr) {
    routing_.fetch_sub(1);
    return done(Status::Unavailable("redis cluster: no connection to " + target));
  }
  pipeline->Submit(std::move(commands), std::move(done));
  routing_.fetch_sub(1);
}

bool RedisClusterRouter::OnTransportThread() const {
  if (std::this_thread::get_id() == background_.get_id()) return true;
  std::lock_guard lock(mutex_);
  for (const auto& [name, pipeline] : pipelines_) {
    if (pipeline && pipeline->OnIoThread()) return true;
  }
  return false;
}

bool RedisClusterRouter::connected() const {
  std::lock_guard lock(mutex_);
  if (map_.masters.empty()) return false;
  for (const RedisAddress& master : map_.masters) {
    auto it = pipelines_.find(NodeName(master));
    if (it == pipelines_.end() || !it->second->connected()) return false;
  }
  return true;
}

uint64_t RedisClusterRouter::round_trips() const {
  std::lock_guard lock(mutex_);
  uint64_t total = 0;
  for (const auto& [name, pipeline] : pipelines_) {
    if (pipeline) total += pipeline->round_trips();
  }
  return total;
}

}  // namespace greylight::store
