#include "store/redis/redis_transport.h"

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>

namespace greylight::store {
namespace {

constexpr std::string_view kBusyMessage = "redis: synchronous store call from a Check callback";

template <typename SubmitFunction>
Result<std::vector<RedisReply>> Wait(RedisTransport& transport, SubmitFunction&& submit) {
  if (transport.OnTransportThread()) return Status::Busy(std::string(kBusyMessage));
  // Shared with the job: the transport completes it even if this thread stopped caring.
  auto promise = std::make_shared<std::promise<Result<std::vector<RedisReply>>>>();
  auto result = promise->get_future();
  submit([promise](Result<std::vector<RedisReply>> replies) {
    promise->set_value(std::move(replies));
  });
  return result.get();
}

}  // namespace

Result<std::vector<RedisReply>> CallKey(RedisTransport& transport, std::string_view key,
                                        std::vector<RedisCommand> commands) {
  return Wait(transport, [&](RedisTransport::Callback done) {
    transport.Submit(key, std::move(commands), std::move(done));
  });
}

Result<std::vector<RedisReply>> CallTarget(RedisTransport& transport, const std::string& target,
                                           std::vector<RedisCommand> commands) {
  return Wait(transport, [&](RedisTransport::Callback done) {
    transport.SubmitTo(target, std::move(commands), std::move(done));
  });
}

Result<std::vector<Result<RedisReply>>> CallEachKey(
    RedisTransport& transport, std::vector<std::pair<std::string, RedisCommand>> jobs) {
  if (transport.OnTransportThread()) return Status::Busy(std::string(kBusyMessage));
  struct Shared {
    std::mutex mutex;
    std::condition_variable all_done;
    std::vector<std::optional<Result<RedisReply>>> results;
    size_t left;
  };
  auto shared = std::make_shared<Shared>();
  shared->results.resize(jobs.size());
  shared->left = jobs.size();
  for (size_t i = 0; i < jobs.size(); ++i) {
    transport.Submit(jobs[i].first, {std::move(jobs[i].second)},
                     [shared, i](Result<std::vector<RedisReply>> replies) {
                       std::lock_guard lock(shared->mutex);
                       if (replies.ok()) {
                         shared->results[i].emplace(std::move(replies->front()));
                       } else {
                         shared->results[i].emplace(replies.status());
                       }
                       if (--shared->left == 0) shared->all_done.notify_one();
                     });
  }
  std::unique_lock lock(shared->mutex);
  shared->all_done.wait(lock, [&] { return shared->left == 0; });
  std::vector<Result<RedisReply>> out;
  out.reserve(jobs.size());
  for (auto& result : shared->results) out.push_back(std::move(*result));
  return out;
}

}  // namespace greylight::store
