#include "bench/client.h"

#include <asio/connect.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <thread>

#include "bench/wire.h"

namespace greylight::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Socket = asio::generic::stream_protocol::socket;

// Housekeeping period: timeouts, reconnects and phase changes are checked this often, so a
// timeout fires up to this late. Cheaper than one timer per request.
constexpr auto kTickPeriod = std::chrono::milliseconds(10);
// Pause before reconnecting a failed connection, so a dead server costs few attempts.
constexpr auto kReconnectDelay = std::chrono::milliseconds(200);
// Priming the hot set is bounded too: a server that stalls must not hang the run.
constexpr auto kMaxPrimingTime = std::chrono::seconds(120);
// Replies are about 20 to 200 bytes; anything this long without an end is malformed.
constexpr size_t kReplyBufferBytes = 4096;
constexpr size_t kRequestReserveBytes = 2048;
// Longer action words are counted under their first this many bytes.
constexpr size_t kMaxActionWordBytes = 48;

enum class Phase { kConnecting, kPriming, kWarmup, kMeasuring, kDone };

enum class ErrorKind { kConnect, kClosed, kTimeout, kMalformed };

struct ShardStats {
  LatencyHistogram latency;
  ErrorCounts errors;
  std::vector<std::pair<std::string, uint64_t>> actions;
  uint64_t requests = 0;
  uint64_t warmup_requests = 0;
  uint64_t request_bytes = 0;

  void CountError(ErrorKind kind) {
    switch (kind) {
      case ErrorKind::kConnect:
        ++errors.connect;
        break;
      case ErrorKind::kClosed:
        ++errors.closed;
        break;
      case ErrorKind::kTimeout:
        ++errors.timeout;
        break;
      case ErrorKind::kMalformed:
        ++errors.malformed;
        break;
    }
  }

  void CountAction(std::string_view word) {
    // Action words are case-insensitive (access(5)); count "dunno" and "DUNNO" together.
    std::array<char, kMaxActionWordBytes> upper;
    size_t length = std::min(word.size(), upper.size());
    for (size_t i = 0; i < length; ++i) {
      char c = word[i];
      upper[i] = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    }
    std::string_view key(upper.data(), length);
    for (auto& [name, count] : actions) {
      if (name == key) {
        ++count;
        return;
      }
    }
    actions.emplace_back(std::string(key), 1);
  }
};

class Shard;

// What every shard shares: options, the traffic model, the phase and the request counters.
// The deadlines are written only by the controlling thread (shard 0) before it publishes a
// phase with a release store, and read after an acquire load of that phase.
class RunState {
 public:
  explicit RunState(const ClientOptions& options)
      : options(options), model(options.mode, options.seed, options.hot_set_size) {}

  // Moves the run through its phases; called by shard 0's tick.
  void Control(Clock::time_point now);
  // Ends the run (once) and stops every shard. Thread-safe.
  void Finish(Clock::time_point now);
  void Abort(Clock::time_point now, std::string reason);

  const ClientOptions& options;
  const TrafficModel model;
  std::vector<Shard*> shards;

  std::atomic<Phase> phase{Phase::kConnecting};
  std::atomic<uint64_t> next_index{0};
  std::atomic<uint64_t> measured_issued{0};
  std::atomic<uint64_t> measured_answered{0};
  std::atomic<uint32_t> next_prime{0};
  std::atomic<uint32_t> prime_finished{0};
  std::atomic<int> connections_settled{0};  // Connected, or failed, at least once.
  std::atomic<int> connections_ever_up{0};

  Clock::time_point start;
  Clock::time_point phase_start;
  Clock::time_point warmup_end;
  Clock::time_point measure_start;
  Clock::time_point measure_deadline;
  Clock::time_point measure_end;  // Written by whichever thread finishes the run.
  std::vector<std::optional<CpuTimes>> cpu_at_start;  // options.cpu_pids at measure_start
  std::vector<std::optional<CpuTimes>> cpu_at_end;    // and at measure_end
  std::string failure;

 private:
  void StartMeasuring(Clock::time_point now);
};

// One persistent policy connection with at most one request in flight, as one smtpd
// process keeps. Every asynchronous handler carries the generation it was started in;
// closing the socket bumps the generation, so handlers of a closed socket do nothing.
class Connection {
 public:
  Connection(RunState& run, ShardStats& stats, asio::io_context& io)
      : run_(run), stats_(stats), socket_(io) {
    request_.reserve(kRequestReserveBytes);
  }

  void Connect(Clock::time_point now);
  void OnTick(Clock::time_point now);

 private:
  enum class State { kDown, kConnecting, kIdle, kBusy };
  enum class RequestKind { kPrime, kWarmup, kMeasured };

  void OnConnected(const asio::error_code& error);
  void SendNext();
  void OnWritten(const asio::error_code& error);
  void Read();
  void OnRead(const asio::error_code& error, size_t bytes);
  void Fail(ErrorKind kind);
  void Settle(bool connected);

  RunState& run_;
  ShardStats& stats_;
  Socket socket_;
  State state_ = State::kDown;
  uint64_t generation_ = 0;
  bool settled_ = false;
  Clock::time_point deadline_;  // Of the connect attempt or the request in flight.
  Clock::time_point retry_at_;
  Clock::time_point sent_at_;
  RequestKind kind_ = RequestKind::kWarmup;
  std::string request_;
  std::array<char, kReplyBufferBytes> reply_;
  size_t reply_length_ = 0;
};

class Shard {
 public:
  Shard(RunState& run, bool controller, int connections)
      : run_(run), controller_(controller), tick_(io_) {
    for (int i = 0; i < connections; ++i) {
      connections_.push_back(std::make_unique<Connection>(run, stats_, io_));
    }
  }

  void Start() {
    Clock::time_point now = Clock::now();
    for (auto& connection : connections_) connection->Connect(now);
    ArmTick();
  }
  void Run() { io_.run(); }
  void Stop() { io_.stop(); }
  const ShardStats& stats() const { return stats_; }

 private:
  void ArmTick() {
    tick_.expires_after(kTickPeriod);
    tick_.async_wait([this](const asio::error_code& error) {
      if (error) return;
      Clock::time_point now = Clock::now();
      if (controller_) run_.Control(now);
      if (run_.phase.load(std::memory_order_acquire) == Phase::kDone) return;
      for (auto& connection : connections_) connection->OnTick(now);
      ArmTick();
    });
  }

  RunState& run_;
  const bool controller_;
  // The io_context is declared first so that it outlives the sockets and timer using it.
  asio::io_context io_{1};
  asio::steady_timer tick_;
  ShardStats stats_;
  std::vector<std::unique_ptr<Connection>> connections_;
};

void RunState::Control(Clock::time_point now) {
  switch (phase.load(std::memory_order_acquire)) {
    case Phase::kConnecting: {
      bool all_settled = connections_settled.load() >= options.connections;
      if (!all_settled && now < start + options.timeout + kTickPeriod) return;
      if (connections_ever_up.load() == 0) {
        Abort(now, "could not connect to " + options.target.text);
        return;
      }
      phase_start = now;
      if (options.mode == TrafficMode::kHot) {
        phase.store(Phase::kPriming, std::memory_order_release);
      } else if (options.warmup.count() > 0) {
        warmup_end = now + std::chrono::duration_cast<Clock::duration>(options.warmup);
        phase.store(Phase::kWarmup, std::memory_order_release);
      } else {
        StartMeasuring(now);
      }
      return;
    }
    case Phase::kPriming:
      if (prime_finished.load() >= model.hot_set_size()) {
        // The warm-up counts from the end of priming, so every hot triplet is at least
        // that old when measuring starts, however long priming took.
        warmup_end = now + std::chrono::duration_cast<Clock::duration>(options.warmup);
        if (options.warmup.count() > 0) {
          phase.store(Phase::kWarmup, std::memory_order_release);
        } else {
          StartMeasuring(now);
        }
      } else if (now > phase_start + kMaxPrimingTime) {
        Abort(now, "priming the hot set did not finish within 120 s");
      }
      return;
    case Phase::kWarmup:
      if (now >= warmup_end) StartMeasuring(now);
      return;
    case Phase::kMeasuring:
      if (now >= measure_deadline) Finish(now);
      return;
    case Phase::kDone:
      return;
  }
}

void RunState::StartMeasuring(Clock::time_point now) {
  cpu_at_start = SampleProcesses(options.cpu_pids);
  measure_start = now;
  measure_deadline = now + std::chrono::duration_cast<Clock::duration>(options.duration);
  phase.store(Phase::kMeasuring, std::memory_order_release);
}

void RunState::Finish(Clock::time_point now) {
  Phase expected = Phase::kMeasuring;
  if (phase.compare_exchange_strong(expected, Phase::kDone, std::memory_order_acq_rel)) {
    measure_end = now;
    cpu_at_end = SampleProcesses(options.cpu_pids);
  }
  for (Shard* shard : shards) shard->Stop();
}

void RunState::Abort(Clock::time_point now, std::string reason) {
  failure = std::move(reason);
  measure_start = now;
  measure_end = now;
  phase.store(Phase::kDone, std::memory_order_release);
  for (Shard* shard : shards) shard->Stop();
}

void Connection::Connect(Clock::time_point now) {
  asio::error_code error;
  socket_.open(run_.options.target.address.protocol(), error);
  if (error) {
    Fail(ErrorKind::kConnect);
    return;
  }
  state_ = State::kConnecting;
  deadline_ = now + std::chrono::duration_cast<Clock::duration>(run_.options.timeout);
  socket_.async_connect(run_.options.target.address,
                        [this, generation = generation_](const asio::error_code& error) {
                          if (generation == generation_) OnConnected(error);
                        });
}

void Connection::OnConnected(const asio::error_code& error) {
  if (error) {
    Fail(ErrorKind::kConnect);
    return;
  }
  Settle(true);
  state_ = State::kIdle;
  SendNext();
}

void Connection::Settle(bool connected) {
  if (connected && !settled_) ++run_.connections_ever_up;
  if (!settled_) ++run_.connections_settled;
  settled_ = true;
}

void Connection::OnTick(Clock::time_point now) {
  switch (state_) {
    case State::kDown:
      if (now >= retry_at_) Connect(now);
      break;
    case State::kConnecting:
      if (now >= deadline_) Fail(ErrorKind::kConnect);
      break;
    case State::kBusy:
      if (now >= deadline_) Fail(ErrorKind::kTimeout);
      break;
    case State::kIdle:
      SendNext();
      break;
  }
}

void Connection::SendNext() {
  request_.clear();
  const TrafficModel& model = run_.model;
  switch (run_.phase.load(std::memory_order_acquire)) {
    case Phase::kPriming: {
      // Load before incrementing so idle connections polling on every tick do not run the
      // counter up.
      if (run_.next_prime.load() >= model.hot_set_size()) return;
      uint32_t hot_index = run_.next_prime.fetch_add(1);
      if (hot_index >= model.hot_set_size()) return;
      model.AppendHotSetRequest(hot_index, request_);
      kind_ = RequestKind::kPrime;
      break;
    }
    case Phase::kWarmup: {
      if (model.mode() == TrafficMode::kHot) return;  // Waiting for the delay to pass.
      uint64_t index = run_.next_index.fetch_add(1);
      if (index >= TrafficModel::kMaxIndex) return;
      model.AppendRequest(index, request_);
      kind_ = RequestKind::kWarmup;
      break;
    }
    case Phase::kMeasuring: {
      const std::optional<uint64_t>& max_requests = run_.options.max_requests;
      if (max_requests) {
        if (run_.measured_issued.load() >= *max_requests) return;
        if (run_.measured_issued.fetch_add(1) >= *max_requests) return;
      }
      uint64_t index = run_.next_index.fetch_add(1);
      if (index >= TrafficModel::kMaxIndex) return;
      model.AppendRequest(index, request_);
      kind_ = RequestKind::kMeasured;
      break;
    }
    case Phase::kConnecting:
    case Phase::kDone:
      return;
  }

  state_ = State::kBusy;
  reply_length_ = 0;
  sent_at_ = Clock::now();
  deadline_ = sent_at_ + std::chrono::duration_cast<Clock::duration>(run_.options.timeout);
  asio::async_write(socket_, asio::buffer(request_),
                    [this, generation = generation_](const asio::error_code& error, size_t) {
                      if (generation == generation_) OnWritten(error);
                    });
}

void Connection::OnWritten(const asio::error_code& error) {
  if (error) {
    Fail(ErrorKind::kClosed);
    return;
  }
  Read();
}

void Connection::Read() {
  socket_.async_read_some(
      asio::buffer(reply_.data() + reply_length_, reply_.size() - reply_length_),
      [this, generation = generation_](const asio::error_code& error, size_t bytes) {
        if (generation == generation_) OnRead(error, bytes);
      });
}

void Connection::OnRead(const asio::error_code& error, size_t bytes) {
  if (error) {
    Fail(ErrorKind::kClosed);
    return;
  }
  reply_length_ += bytes;
  ReplyScan scan = ScanReply(std::string_view(reply_.data(), reply_length_));
  if (scan.status == ReplyStatus::kIncomplete) {
    if (reply_length_ == reply_.size()) {
      Fail(ErrorKind::kMalformed);
    } else {
      Read();
    }
    return;
  }
  if (scan.status == ReplyStatus::kMalformed) {
    Fail(ErrorKind::kMalformed);
    return;
  }

  Clock::time_point now = Clock::now();
  switch (kind_) {
    case RequestKind::kPrime:
      ++run_.prime_finished;
      ++stats_.warmup_requests;
      break;
    case RequestKind::kWarmup:
      ++stats_.warmup_requests;
      break;
    case RequestKind::kMeasured:
      // A reply that lands after the end of the window is not counted, so that requests
      // and the window's length agree.
      if (run_.phase.load(std::memory_order_acquire) != Phase::kMeasuring) break;
      stats_.latency.Record(now - sent_at_);
      stats_.CountAction(scan.action);
      stats_.request_bytes += request_.size();
      ++stats_.requests;
      if (run_.options.max_requests &&
          run_.measured_answered.fetch_add(1) + 1 >= *run_.options.max_requests) {
        run_.Finish(now);
      }
      break;
  }
  state_ = State::kIdle;
  SendNext();
}

void Connection::Fail(ErrorKind kind) {
  stats_.CountError(kind);
  if (state_ == State::kBusy && kind_ == RequestKind::kPrime) ++run_.prime_finished;
  if (kind == ErrorKind::kConnect) Settle(false);
  ++generation_;
  asio::error_code ignored;
  socket_.close(ignored);
  state_ = State::kDown;
  retry_at_ = Clock::now() + kReconnectDelay;
}

}  // namespace

void ErrorCounts::Add(const ErrorCounts& other) {
  connect += other.connect;
  closed += other.closed;
  timeout += other.timeout;
  malformed += other.malformed;
}

double ClientReport::RequestsPerSecond() const {
  return measured.count() > 0 ? static_cast<double>(requests) / measured.count() : 0.0;
}

ClientReport RunClient(const ClientOptions& options) {
  RunState run(options);
  int threads = std::clamp(options.threads, 1, std::max(1, options.connections));
  std::vector<std::unique_ptr<Shard>> shards;
  for (int t = 0; t < threads; ++t) {
    // Spread connections evenly: shard t gets connections t, t + threads, ...
    int count = options.connections / threads + (t < options.connections % threads ? 1 : 0);
    shards.push_back(std::make_unique<Shard>(run, t == 0, count));
    run.shards.push_back(shards.back().get());
  }

  run.start = Clock::now();
  for (auto& shard : shards) shard->Start();
  std::vector<std::thread> workers;
  for (size_t t = 1; t < shards.size(); ++t) {
    workers.emplace_back([shard = shards[t].get()] { shard->Run(); });
  }
  shards[0]->Run();
  for (std::thread& worker : workers) worker.join();

  ClientReport report;
  report.failure = run.failure;
  report.measured = run.measure_end - run.measure_start;
  for (size_t i = 0; i < run.cpu_at_end.size() && i < run.cpu_at_start.size(); ++i) {
    const auto& before = run.cpu_at_start[i];
    const auto& after = run.cpu_at_end[i];
    if (before && after) {
      report.server_cpu.push_back(CpuTimes{after->user_seconds - before->user_seconds,
                                           after->system_seconds - before->system_seconds});
    } else {
      report.server_cpu.push_back(std::nullopt);
    }
  }
  for (const auto& shard : shards) {
    const ShardStats& stats = shard->stats();
    report.requests += stats.requests;
    report.warmup_requests += stats.warmup_requests;
    report.request_bytes += stats.request_bytes;
    report.latency.Merge(stats.latency);
    report.errors.Add(stats.errors);
    for (const auto& [word, count] : stats.actions) {
      auto it = std::find_if(report.actions.begin(), report.actions.end(),
                             [&word = word](const auto& entry) { return entry.first == word; });
      if (it == report.actions.end()) {
        report.actions.emplace_back(word, count);
      } else {
        it->second += count;
      }
    }
  }
  std::sort(report.actions.begin(), report.actions.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return report;
}

}  // namespace greylight::bench
