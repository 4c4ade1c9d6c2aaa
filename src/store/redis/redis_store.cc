#include "store/redis/redis_store.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <future>

#include "store/record_access.h"
#include "store/redis/redis_scripts.h"
#include "util/log.h"

namespace greylight::store {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Jobs sent in one pipelined write. Bounds the memory of one batch and the work lost when
// a batch times out; later jobs go in the next batch.
constexpr size_t kMaxBatchJobs = 512;
// SCAN's COUNT hint: slots examined per round trip by ForEach and ExpireSome.
constexpr size_t kScanCount = 1000;

std::string_view TablePrefix(Table table) {
  switch (table) {
    case Table::kTriplets:
      return "t:";
    case Table::kClients:
      return "c:";
    case Table::kTraps:
      return "g:";
  }
  return "";
}

// Escapes the glob characters of SCAN MATCH, so a prefix is matched literally.
std::string GlobEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string SecondsArgument(greylight::Seconds seconds) { return std::to_string(seconds.count()); }

// The reply of a single-command Call, or the error it carries.
Result<RedisReply> Single(Result<std::vector<RedisReply>> replies) {
  if (!replies.ok()) return replies.status();
  RedisReply& reply = replies->front();
  if (reply.is_error()) {
    if (reply.IsError("WRONGTYPE")) return Status::Corruption("redis: " + reply.str);
    return Status::IoError("redis: " + reply.str);
  }
  return std::move(reply);
}

// The policy decodes fields up to 2^63-1, the script only up to 2^53-1 (kMaxExactLuaInteger);
// both must see the same records, so the C++ side applies the script's bound too.
std::optional<std::string_view> WithinLuaRange(Table table, std::string_view key,
                                               std::optional<std::string_view> value) {
  if (!value) return value;
  long long a = 0, b = 0;
  switch (table) {
    case Table::kTriplets: {
      auto record = policy::DecodeTriplet(*value);
      if (!record) return value;  // malformed either way; ReadPrior warns
      a = ToUnixSeconds(record->first);
      b = ToUnixSeconds(record->last);
      break;
    }
    case Table::kClients: {
      auto record = policy::DecodeClient(*value);
      if (!record) return value;
      a = record->count;
      b = ToUnixSeconds(record->last);
      break;
    }
    case Table::kTraps: {
      auto record = policy::DecodeTrap(*value);
      if (!record) return value;
      a = ToUnixSeconds(record->until);
      b = ToUnixSeconds(record->last_hit);
      break;
    }
  }
  if (a <= kMaxExactLuaInteger && b <= kMaxExactLuaInteger) return value;
  log::Warning("ignoring {} record {} with a field beyond 2^53: '{}'", TableName(table),
               log::Escaped(key), log::Escaped(value->substr(0, 64)));
  return std::nullopt;
}

std::optional<std::string_view> ReplyValue(const RedisReply& reply) {
  if (reply.type != RedisReply::Type::kString) return std::nullopt;
  return std::string_view(reply.str);
}

// The TTL a Check would give `value` if it were written now, by the rules in
// redis_scripts.cc; nullopt if the value is malformed or already expired.
std::optional<std::chrono::seconds> TtlFor(Table table, std::string_view value, UnixTime now,
                                           const policy::GreylistTiming& timing) {
  UnixTime dies;
  switch (table) {
    case Table::kTriplets: {
      auto record = policy::DecodeTriplet(value);
      if (!record) return std::nullopt;
      bool passed = record->last - record->first >= timing.delay;
      dies = record->last +
             (passed ? timing.max_age : std::min(timing.max_age, timing.retry_window)) +
             std::chrono::seconds(1);
      break;
    }
    case Table::kClients: {
      auto record = policy::DecodeClient(value);
      if (!record) return std::nullopt;
      dies = record->last + timing.max_age + std::chrono::seconds(1);
      break;
    }
    case Table::kTraps: {
      auto record = policy::DecodeTrap(value);
      if (!record) return std::nullopt;
      dies = record->until + std::chrono::seconds(1);
      break;
    }
  }
  if (dies <= now) return std::nullopt;
  return dies - now;
}

}  // namespace

// At most one warning per interval, so an outage logs a few lines, not one per request;
// the next warning says how many were suppressed.
class RedisStore::WarningLimiter {
 public:
  explicit WarningLimiter(std::chrono::milliseconds interval) : interval_(interval) {}

  void Warn(std::string_view message) {
    std::lock_guard lock(mutex_);
    auto now = SteadyClock::now();
    if (last_ && now - *last_ < interval_) {
      ++suppressed_;
      return;
    }
    if (suppressed_ > 0) {
      log::Warning("{} ({} similar warnings suppressed)", message, suppressed_);
    } else {
      log::Warning("{}", message);
    }
    suppressed_ = 0;
    last_ = now;
  }

 private:
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::optional<SteadyClock::time_point> last_;
  uint64_t suppressed_ = 0;
};

RedisStore::RedisStore(RedisOptions options)
    : options_(std::move(options)),
      clock_(options_.clock),
      backoff_(options_.min_reconnect_delay),
      warnings_(std::make_unique<WarningLimiter>(options_.warning_interval)) {
  for (const RedisScript* script : {&CheckScript(), &DeleteIfUnchangedScript()}) {
    setup_commands_.push_back({"SCRIPT", "LOAD", std::string(script->text)});
  }
  const policy::GreylistTiming& t = options_.timing;
  check_arguments_ = {SecondsArgument(t.delay),
                      SecondsArgument(t.max_age),
                      SecondsArgument(t.retry_window),
                      std::to_string(t.awl_threshold),
                      SecondsArgument(policy::GreylistTiming::kAwlCountInterval),
                      SecondsArgument(t.trap_ttl)};
}

Result<std::unique_ptr<RedisStore>> RedisStore::Open(RedisOptions options) {
  if (options.timeout.count() <= 0) {
    return Status::InvalidArgument("redis: the timeout must be positive");
  }
  if (options.min_reconnect_delay.count() <= 0 ||
      options.max_reconnect_delay < options.min_reconnect_delay) {
    return Status::InvalidArgument("redis: bad reconnect delays");
  }
  static const SystemClock kSystemClock;
  if (options.clock == nullptr) options.clock = &kSystemClock;
  std::unique_ptr<RedisStore> store(new RedisStore(std::move(options)));
  std::promise<Status> first;
  auto first_result = first.get_future();
  store->io_thread_ = std::thread(
      [raw = store.get(), &first] { raw->IoLoop([&first](Status s) { first.set_value(s); }); });
  Status status = first_result.get();
  if (status.code() == Status::Code::kInvalidArgument) return status;  // the destructor joins
  if (store->options_.background_expiry) {
    store->sweeper_ = std::thread([raw = store.get()] { raw->SweepLoop(); });
  }
  return store;
}

RedisStore::~RedisStore() {
  if (sweeper_.joinable()) {
    {
      std::lock_guard lock(sweep_mutex_);
      sweep_stopping_ = true;
    }
    sweep_wake_.notify_all();
    sweeper_.join();
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (io_thread_.joinable()) io_thread_.join();
}

std::string RedisStore::RedisKey(Table table, std::string_view key) const {
  std::string out;
  out.reserve(options_.prefix.size() + 2 + key.size());
  out.append(options_.prefix).append(TablePrefix(table)).append(key);
  return out;
}

std::string RedisStore::ScanPattern(Table table) const {
  return GlobEscape(options_.prefix) + std::string(TablePrefix(table)) + "*";
}

RedisStore::Job RedisStore::MakeJob(std::vector<RedisCommand> commands, JobCallback done) const {
  return Job{std::move(commands), std::move(done), SteadyClock::now() + options_.timeout};
}

// ---- Check ----------------------------------------------------------------------------

void RedisStore::Check(const CheckKeys& keys, UnixTime now, CheckCallback done) {
  const bool has_client = !keys.client.empty();
  const bool has_trap = !keys.trap.empty();
  RedisCommand command;
  command.reserve(14);
  command.push_back("EVALSHA");
  command.push_back(CheckScript().sha1);
  command.push_back(std::to_string(1 + int{has_client} + int{has_trap}));
  command.push_back(RedisKey(Table::kTriplets, keys.triplet));
  if (has_client) command.push_back(RedisKey(Table::kClients, keys.client));
  if (has_trap) command.push_back(RedisKey(Table::kTraps, keys.trap));
  command.push_back(std::to_string(ToUnixSeconds(now)));
  command.insert(command.end(), check_arguments_.begin(), check_arguments_.end());
  command.push_back(has_client ? "1" : "0");
  command.push_back(!has_trap ? "0" : keys.trap_hit ? "2" : "1");

  // Why rerun the decision here: the script is a transcription of policy::Decide, which
  // stays the one definition of greylisting. Rebuilding the Transition from the records the
  // script read, and comparing what it wrote with what Decide would write, makes any
  // divergence an error instead of silently different greylisting.
  auto finish = [this, keys, now, done = std::move(done)](Result<std::vector<RedisReply>> replies) {
    if (!replies.ok()) {
      done(replies.status());
      return;
    }
    const RedisReply& reply = replies->front();
    if (reply.is_error()) {
      warnings_->Warn(fmt::format("redis: check failed: {}", reply.str));
      done(Status::Unavailable("redis: " + reply.str));
      return;
    }
    if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 6) {
      done(Status::Corruption("redis: unexpected reply to the check script"));
      return;
    }
    // Where each table's prior and written values sit in the reply.
    auto prior_index = [](Table table) -> size_t {
      return table == Table::kTriplets ? 0 : table == Table::kClients ? 1 : 4;
    };
    auto written_index = [](Table table) -> size_t {
      return table == Table::kTriplets ? 2 : table == Table::kClients ? 3 : 5;
    };
    auto read = [&](Table table, const std::string& key) -> std::optional<std::string_view> {
      return WithinLuaRange(table, key, ReplyValue(reply.elements[prior_index(table)]));
    };
    policy::PriorState prior = ReadPrior(keys, now, options_.timing, read);
    policy::Transition transition = DecideFor(keys, prior, now, options_.timing);
    std::array<std::optional<std::string>, kAllTables.size()> want;
    ApplyTransition(keys, transition, [&](Table table, const std::string&, std::string value) {
      want[TableIndex(table)] = std::move(value);
    });
    for (Table table : kAllTables) {
      auto got = ReplyValue(reply.elements[written_index(table)]);
      const std::optional<std::string>& wanted = want[TableIndex(table)];
      if (wanted != got) {
        std::string message = fmt::format(
            "redis: the check script and policy::Decide disagree on the {} record of triplet "
            "{}: script wrote '{}', Decide wants '{}'",
            TableName(table), log::Escaped(keys.triplet), got.value_or("-"), wanted.value_or("-"));
        log::Error("{}", message);
        done(Status::Corruption(std::move(message)));
        return;
      }
    }
    done(std::move(transition));
  };
  Submit(MakeJob({std::move(command)}, std::move(finish)));
}

// ---- Raw access ----------------------------------------------------------------------

Result<std::optional<std::string>> RedisStore::Get(Table table, std::string_view key) {
  auto reply = Single(Call({{"GET", RedisKey(table, key)}}));
  if (!reply.ok()) return reply.status();
  if (reply->type == RedisReply::Type::kNil) return std::optional<std::string>();
  return std::optional<std::string>(std::move(reply->str));
}

Status RedisStore::Put(Table table, std::string_view key, std::string_view value) {
  RedisCommand command{"SET", RedisKey(table, key), std::string(value)};
  if (auto ttl = TtlFor(table, value, clock_->Now(), options_.timing)) {
    command.push_back("EX");
    command.push_back(std::to_string(ttl->count()));
  }
  auto reply = Single(Call({std::move(command)}));
  return reply.ok() ? Status::Ok() : reply.status();
}

Status RedisStore::Delete(Table table, std::string_view key) {
  auto reply = Single(Call({{"DEL", RedisKey(table, key)}}));
  return reply.ok() ? Status::Ok() : reply.status();
}

Status RedisStore::ForEach(Table table, const VisitFunction& visit) {
  const std::string pattern = ScanPattern(table);
  const size_t strip = options_.prefix.size() + TablePrefix(table).size();
  std::string cursor = "0";
  do {
    auto scanned =
        Single(Call({{"SCAN", cursor, "MATCH", pattern, "COUNT", std::to_string(kScanCount)}}));
    if (!scanned.ok()) return scanned.status();
    if (scanned->type != RedisReply::Type::kArray || scanned->elements.size() != 2) {
      return Status::IoError("redis: unexpected reply to SCAN");
    }
    cursor = scanned->elements[0].str;
    const std::vector<RedisReply>& keys = scanned->elements[1].elements;
    if (keys.empty()) continue;
    RedisCommand mget{"MGET"};
    for (const RedisReply& k : keys) mget.push_back(k.str);
    auto values = Single(Call({std::move(mget)}));
    if (!values.ok()) return values.status();
    if (values->elements.size() != keys.size()) return Status::IoError("redis: short MGET reply");
    for (size_t i = 0; i < keys.size(); ++i) {
      // Gone since the SCAN, or not a string: not a record.
      if (values->elements[i].type != RedisReply::Type::kString) continue;
      if (!visit(std::string_view(keys[i].str).substr(strip), values->elements[i].str)) {
        return Status::Ok();
      }
    }
  } while (cursor != "0");
  return Status::Ok();
}

Result<size_t> RedisStore::ExpireSome(UnixTime now, size_t max_records) {
  std::lock_guard lock(expiry_mutex_);
  return ExpireBatch(now, max_records);
}

// REQUIRES: expiry_mutex_ held.
Result<size_t> RedisStore::ExpireBatch(UnixTime now, size_t max_records) {
  size_t deleted = 0;
  for (Table table : kAllTables) {
    ExpiryScan& scan = expiry_[TableIndex(table)];
    bool cycle_done = false;
    while (deleted < max_records) {
      if (scan.backlog.empty()) {
        if (cycle_done) break;
        auto scanned = Single(Call({{"SCAN", scan.cursor, "MATCH", ScanPattern(table), "COUNT",
                                     std::to_string(kScanCount)}}));
        if (!scanned.ok()) return scanned.status();
        if (scanned->type != RedisReply::Type::kArray || scanned->elements.size() != 2) {
          return Status::IoError("redis: unexpected reply to SCAN");
        }
        scan.cursor = scanned->elements[0].str;
        for (RedisReply& k : scanned->elements[1].elements)
          scan.backlog.push_back(std::move(k.str));
        if (scan.cursor == "0") {
          cycle_done = true;  // the next call starts a new cycle
          ++scan.cycles;
        }
        continue;
      }
      // Examine a chunk of the backlog; keys after the last deletion this call may make stay
      // in the backlog for the next call.
      size_t chunk = std::min(scan.backlog.size(), kScanCount);
      RedisCommand mget{"MGET"};
      mget.insert(mget.end(), scan.backlog.begin(), scan.backlog.begin() + chunk);
      auto values = Single(Call({std::move(mget)}));
      if (!values.ok()) return values.status();
      if (values->elements.size() != chunk) return Status::IoError("redis: short MGET reply");
      std::vector<RedisCommand> deletes;
      size_t examined = 0;
      for (; examined < chunk && deleted + deletes.size() < max_records; ++examined) {
        const RedisReply& value = values->elements[examined];
        if (value.type != RedisReply::Type::kString) continue;
        if (ShouldExpire(table, value.str, now, options_.timing)) {
          deletes.push_back(
              {"EVALSHA", DeleteIfUnchangedScript().sha1, "1", scan.backlog[examined], value.str});
        }
      }
      scan.backlog.erase(scan.backlog.begin(), scan.backlog.begin() + examined);
      if (deletes.empty()) continue;
      auto results = Call(std::move(deletes));
      if (!results.ok()) return results.status();
      for (const RedisReply& result : *results) {
        if (result.is_error()) return Status::IoError("redis: " + result.str);
        if (result.integer == 1) ++deleted;
      }
    }
  }
  return deleted;
}

Status RedisStore::Flush() { return Status::Ok(); }

// ---- The I/O thread --------------------------------------------------------------------

void RedisStore::Submit(Job job) {
  std::string error;
  {
    std::lock_guard lock(mutex_);
    if (connected_.load() && !stopping_) {
      queue_.push_back(std::move(job));
      if (queue_.size() == 1) wake_.notify_one();
      return;
    }
    error = stopping_ ? "redis: store is closing" : "redis unavailable: " + last_error_;
  }
  warnings_->Warn(error);
  job.done(Status::Unavailable(std::move(error)));
}

Result<std::vector<RedisReply>> RedisStore::Call(std::vector<RedisCommand> commands) {
  if (std::this_thread::get_id() == io_thread_.get_id()) {
    return Status::Busy("redis: synchronous store call from a Check callback");
  }
  // Shared with the job: the I/O thread completes it even if this thread stopped caring.
  auto promise = std::make_shared<std::promise<Result<std::vector<RedisReply>>>>();
  auto result = promise->get_future();
  Submit(MakeJob(std::move(commands), [promise](Result<std::vector<RedisReply>> replies) {
    promise->set_value(std::move(replies));
  }));
  return result.get();
}

Status RedisStore::Connect() {
  auto connection = RedisConnection::Open(options_.endpoint, options_.timeout, setup_commands_);
  if (!connection.ok()) {
    std::lock_guard lock(mutex_);
    last_error_ = connection.status().message();
    return connection.status();
  }
  connection_ = std::move(connection.value());
  log::Notice("redis: connected to {} ({})", connection_->peer(), options_.endpoint.Describe());
  backoff_ = options_.min_reconnect_delay;
  {
    std::lock_guard lock(mutex_);
    last_error_.clear();
    connected_ = true;
  }
  return Status::Ok();
}

void RedisStore::Disconnect(const Status& why, bool warn) {
  connection_.reset();
  auto now = SteadyClock::now();
  {
    std::lock_guard lock(mutex_);
    connected_ = false;
    last_error_ = why.message();
    reconnect_due_ = now + backoff_;
  }
  if (warn) {
    warnings_->Warn(fmt::format("{}; reconnecting in {} ms", why.message(), backoff_.count()));
  }
  backoff_ = std::min(backoff_ * 2, options_.max_reconnect_delay);
}

void RedisStore::IoLoop(std::function<void(Status)> first_attempt) {
  // hiredis writes with write(2): a peer that went away would raise SIGPIPE and kill the
  // process. Blocked in this thread (which does all Redis I/O), the write fails with EPIPE.
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);

  Status first = Connect();
  // A refused configuration is reported by Open() instead, which then closes the store.
  if (!first.ok()) Disconnect(first, first.code() != Status::Code::kInvalidArgument);
  first_attempt(first);

  std::vector<Job> batch;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      auto ready = [this] { return stopping_ || !queue_.empty(); };
      if (connected_.load()) {
        wake_.wait(lock, ready);
      } else {
        wake_.wait_until(lock, reconnect_due_, ready);
      }
      if (stopping_ && queue_.empty()) break;
      while (!queue_.empty() && batch.size() < kMaxBatchJobs) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (connection_ == nullptr) {
      bool stopping;
      {
        std::lock_guard lock(mutex_);
        stopping = stopping_;
      }
      if (!stopping && SteadyClock::now() >= reconnect_due_) {
        Status status = Connect();
        if (!status.ok()) Disconnect(status);
      }
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

// Sends every job of `batch` in one pipelined write and completes each with its replies.
void RedisStore::RunBatch(std::vector<Job>& batch) {
  auto now = SteadyClock::now();
  std::vector<RedisCommand> commands;
  std::vector<Job*> live;
  for (Job& job : batch) {
    // Waited in the queue past its deadline (e.g. behind a reconnection attempt).
    if (job.deadline < now) {
      job.done(Status::Unavailable("redis: timed out waiting for the connection"));
      continue;
    }
    live.push_back(&job);
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
    std::vector<RedisCommand> again;
    for (size_t i : missing) {
      RedisCommand command = commands[i];
      command[0] = "EVAL";
      for (const RedisScript* script : {&CheckScript(), &DeleteIfUnchangedScript()}) {
        if (command[1] == script->sha1) command[1] = std::string(script->text);
      }
      again.push_back(std::move(command));
    }
    auto retried = connection_->Exchange(again, SteadyClock::now() + options_.timeout);
    round_trips_.fetch_add(1);
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

// ---- Background expiry ----------------------------------------------------------------

void RedisStore::SweepLoop() {
  std::unique_lock lock(sweep_mutex_);
  while (!sweep_wake_.wait_for(lock, options_.expiry_period, [this] { return sweep_stopping_; })) {
    lock.unlock();
    // One full cycle over every table, in batches, stopping early when the store closes.
    std::unique_lock expiry_lock(expiry_mutex_);
    std::array<uint64_t, kAllTables.size()> start;
    for (size_t i = 0; i < start.size(); ++i) start[i] = expiry_[i].cycles;
    auto cycle_done = [&] {
      for (size_t i = 0; i < start.size(); ++i) {
        if (expiry_[i].cycles == start[i]) return false;
      }
      return true;
    };
    size_t deleted = 0;
    while (!cycle_done()) {
      auto n = ExpireBatch(clock_->Now(), options_.expiry_batch);
      if (!n.ok()) {
        warnings_->Warn(fmt::format("redis: expiry sweep stopped: {}", n.status().message()));
        break;
      }
      deleted += *n;
      std::lock_guard stop_lock(sweep_mutex_);
      if (sweep_stopping_) break;
    }
    expiry_lock.unlock();
    if (deleted > 0) log::Info("redis: expiry sweep deleted {} records", deleted);
    lock.lock();
  }
}

}  // namespace greylight::store
