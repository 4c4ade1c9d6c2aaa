#include "store/redis/redis_pipeline.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <cstring>
#include <future>

namespace greylight::store {
namespace {

// Jobs sent in one pipelined write. Bounds the memory of one batch and the work lost when
// a batch times out; later jobs go in the next batch.
constexpr size_t kMaxBatchJobs = 512;

// How long the I/O thread sleeps before `due` (on the real clock, since the store's clock
// may be a test's FakeClock that only moves when told to). At least 1 ms, so a due time in
// the past never makes the thread spin.
std::chrono::milliseconds WaitUntilDue(MonoTime due, MonoTime now) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(due - now);
  return std::max(left, std::chrono::milliseconds(1));
}

}  // namespace

RedisPipeline::RedisPipeline(RedisPipelineOptions options, const Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      warnings_(options_.warning_interval),
      backoff_(options_.min_reconnect_delay, options_.max_reconnect_delay) {
  for (const RedisScript* script : options_.scripts) {
    setup_commands_.push_back({"SCRIPT", "LOAD", std::string(script->text)});
  }
}

Result<std::unique_ptr<RedisPipeline>> RedisPipeline::Open(RedisPipelineOptions options,
                                                           const Clock& clock) {
  if (options.timeout.count() <= 0) {
    return Status::InvalidArgument("redis: the timeout must be positive");
  }
  if (options.min_reconnect_delay.count() <= 0 ||
      options.max_reconnect_delay < options.min_reconnect_delay) {
    return Status::InvalidArgument("redis: bad reconnect delays");
  }
  std::unique_ptr<RedisPipeline> pipeline(new RedisPipeline(std::move(options), clock));
  std::promise<Status> first;
  auto first_result = first.get_future();
  pipeline->io_thread_ = std::thread(
      [raw = pipeline.get(), &first] { raw->IoLoop([&first](Status s) { first.set_value(s); }); });
  Status status = first_result.get();
  if (status.code() == Status::Code::kInvalidArgument) return status;  // the destructor joins
  return pipeline;
}

RedisPipeline::~RedisPipeline() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (io_thread_.joinable()) io_thread_.join();
}

void RedisPipeline::Warn(std::string_view message) {
  std::optional<uint64_t> suppressed = warnings_.Allow(clock_.Monotonic());
  if (!suppressed) return;
  if (*suppressed > 0) {
    log::Warning("{} ({} similar warnings suppressed)", message, *suppressed);
  } else {
    log::Warning("{}", message);
  }
}

void RedisPipeline::Submit(std::vector<RedisCommand> commands, Callback done) {
  std::string error;
  {
    std::lock_guard lock(mutex_);
    if (connected_.load() && !stopping_) {
      queue_.push_back(
          Job{std::move(commands), std::move(done), clock_.Monotonic() + options_.timeout});
      if (queue_.size() == 1) wake_.notify_one();
      return;
    }
    error = stopping_ ? "redis: store is closing" : "redis unavailable: " + last_error_;
  }
  Warn(error);
  done(Status::Unavailable(std::move(error)));
}

Result<std::vector<RedisReply>> RedisPipeline::Call(std::vector<RedisCommand> commands) {
  if (OnIoThread()) return Status::Busy("redis: synchronous store call from a Check callback");
  // Shared with the job: the I/O thread completes it even if this thread stopped caring.
  auto promise = std::make_shared<std::promise<Result<std::vector<RedisReply>>>>();
  auto result = promise->get_future();
  Submit(std::move(commands), [promise](Result<std::vector<RedisReply>> replies) {
    promise->set_value(std::move(replies));
  });
  return result.get();
}

Status RedisPipeline::Connect() {
  auto connection =
      RedisConnection::Open(options_.endpoint, options_.timeout, setup_commands_, clock_);
  if (!connection.ok()) {
    std::lock_guard lock(mutex_);
    last_error_ = connection.status().message();
    return connection.status();
  }
  connection_ = std::move(connection.value());
  log::Notice("redis: connected to {} ({})", connection_->peer(), options_.endpoint.Describe());
  backoff_.Succeeded();
  std::lock_guard lock(mutex_);
  last_error_.clear();
  connected_ = true;
  return Status::Ok();
}

void RedisPipeline::Disconnect(const Status& why, bool warn) {
  connection_.reset();
  std::chrono::milliseconds wait = backoff_.Failed(clock_.Monotonic());
  {
    std::lock_guard lock(mutex_);
    connected_ = false;
    last_error_ = why.message();
  }
  if (warn) Warn(fmt::format("{}; reconnecting in {} ms", why.message(), wait.count()));
}

void RedisPipeline::IoLoop(std::function<void(Status)> first_attempt) {
  // hiredis writes with write(2): a peer that went away would raise SIGPIPE and kill the
  // process. Blocked in this thread (which does all Redis I/O), the write fails with EPIPE.
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  if (int rc = pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr); rc != 0) {
    // Only with an invalid argument, which the code above cannot pass; say so loudly.
    log::Error("redis: cannot block SIGPIPE in the I/O thread: {}", std::strerror(rc));
  }

  Status first = Connect();
  // A refused configuration is reported by Open() instead, which then closes the pipeline.
  if (!first.ok()) Disconnect(first, first.code() != Status::Code::kInvalidArgument);
  first_attempt(first);

  std::vector<Job> batch;
  while (true) {
    bool stopping;
    {
      std::unique_lock lock(mutex_);
      auto ready = [this] { return stopping_ || !queue_.empty(); };
      if (connected_.load()) {
        wake_.wait(lock, ready);
      } else {
        wake_.wait_for(lock, WaitUntilDue(backoff_.next_attempt(), clock_.Monotonic()), ready);
      }
      if (stopping_ && queue_.empty()) break;
      while (!queue_.empty() && batch.size() < kMaxBatchJobs) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stopping = stopping_;
    }
    if (connection_ == nullptr && !stopping && backoff_.Due(clock_.Monotonic())) {
      if (Status status = Connect(); !status.ok()) Disconnect(status);
    }
    if (batch.empty()) continue;
    if (connection_ == nullptr) {
      std::string error;
      {
        std::lock_guard lock(mutex_);
        error = "redis unavailable: " + last_error_;
      }
      for (Job& job : batch) job.done(Status::Unavailable(error));
    } else {
      RunBatch(batch);
    }
    batch.clear();
  }
  connection_.reset();
  connected_ = false;
}

Result<std::vector<RedisReply>> RedisPipeline::RetryAsEval(
    const std::vector<RedisCommand>& commands, const std::vector<size_t>& missing) {
  std::vector<RedisCommand> again;
  for (size_t i : missing) {
    RedisCommand command = commands[i];
    command[0] = "EVAL";
    for (const RedisScript* script : options_.scripts) {
      if (command[1] == script->sha1) command[1] = std::string(script->text);
    }
    again.push_back(std::move(command));
  }
  round_trips_.fetch_add(1);
  return connection_->Exchange(again, clock_.Monotonic() + options_.timeout);
}

// Sends every job of `batch` in one pipelined write and completes each with its replies.
void RedisPipeline::RunBatch(std::vector<Job>& batch) {
  const MonoTime now = clock_.Monotonic();
  std::vector<RedisCommand> commands;
  std::vector<Job*> live;
  for (Job& job : batch) {
    // Waited in the queue past its deadline (e.g. behind a reconnection attempt).
    if (job.deadline < now) {
      job.done(Status::Unavailable("redis: timed out waiting for the connection"));
      continue;
    }
    live.push_back(&job);
    // Moved out: job.commands keeps its size, which splits the replies below.
    commands.insert(commands.end(), std::make_move_iterator(job.commands.begin()),
                    std::make_move_iterator(job.commands.end()));
  }
  if (live.empty()) return;
  auto replies = connection_->Exchange(commands, now + options_.timeout);
  round_trips_.fetch_add(1);

  // NOSCRIPT: the server lost its script cache (SCRIPT FLUSH, a restart, a promoted
  // replica that never saw SCRIPT LOAD). Run those commands again with EVAL, which also
  // caches the script, in a second round trip.
  std::vector<size_t> missing;
  if (replies.ok()) {
    for (size_t i = 0; i < replies->size(); ++i) {
      if ((*replies)[i].IsError("NOSCRIPT")) missing.push_back(i);
    }
  }
  if (!missing.empty()) {
    auto retried = RetryAsEval(commands, missing);
    if (retried.ok()) {
      for (size_t j = 0; j < missing.size(); ++j) (*replies)[missing[j]] = std::move((*retried)[j]);
    } else {
      replies = retried.status();
    }
  }

  // READONLY / MASTERDOWN: we are talking to a replica, or a replica whose master is down;
  // after a failover the old master comes back as a replica. Reconnect, which asks the
  // sentinels again for a sentinel endpoint.
  std::optional<Status> lost;
  if (!replies.ok()) {
    lost = replies.status();
  } else {
    for (const RedisReply& reply : *replies) {
      if (reply.IsError("READONLY") || reply.IsError("MASTERDOWN")) {
        lost = Status::Unavailable(fmt::format("redis {}: {}", connection_->peer(), reply.str));
        break;
      }
    }
  }
  if (lost) Disconnect(*lost);

  if (!replies.ok()) {
    for (Job* job : live) job->done(replies.status());
    return;
  }
  size_t next = 0;
  for (Job* job : live) {
    std::vector<RedisReply> mine(
        std::make_move_iterator(replies->begin() + next),
        std::make_move_iterator(replies->begin() + next + job->commands.size()));
    next += job->commands.size();
    job->done(std::move(mine));
  }
}

}  // namespace greylight::store
