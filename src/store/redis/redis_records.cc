#include "store/redis/redis_records.h"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "store/record_access.h"
#include "store/redis/background_sweep.h"
#include "store/redis/redis_check.h"
#include "store/redis/redis_scan.h"
#include "store/redis/redis_scripts.h"
#include "util/log.h"

namespace greylight::store {
namespace {

constexpr std::chrono::seconds kErrorLogInterval{10};

// The reply of a single-command call, or the error it carries.
Result<RedisReply> Single(Result<std::vector<RedisReply>> replies) {
  if (!replies.ok()) return replies.status();
  RedisReply& reply = replies->front();
  if (reply.is_error()) {
    if (reply.IsError("WRONGTYPE")) return Status::Corruption("redis: " + reply.str);
    return Status::IoError("redis: " + reply.str);
  }
  return std::move(reply);
}

class RedisRecordStore final : public Store {
 public:
  RedisRecordStore(std::unique_ptr<RedisTransport> transport, RedisKeyLayout layout,
                   const RedisRecordOptions& options, const Clock& clock)
      : transport_(std::move(transport)),
        layout_(std::move(layout)),
        options_(options),
        timing_(options_.store.timing),
        clock_(clock),
        errors_(kErrorLogInterval) {
    for (Table table : kAllTables) {
      expiry_[TableIndex(table)].scan.emplace(layout_.ScanPattern(table));
    }
    if (options_.store.background_expiry) {
      sweep_.emplace(options_.expiry_period,
                     [this](const BackgroundSweep::Stopping& stopping) { Sweep(stopping); });
    }
  }
  // The sweep stops first. Then the transport closes while every other member still lives:
  // it completes or fails the requests still queued, running their callbacks, which use
  // this store (and may submit again: the closing transport fails that at once). So it is
  // deleted through the pointer it keeps, not reset() (which would clear it first).
  ~RedisRecordStore() override {
    sweep_.reset();
    delete transport_.get();
    (void)transport_.release();
  }

  void Check(const CheckKeys& keys, UnixTime now, CheckCallback done) override;
  void RecordReply(std::string_view key, UnixTime now, ReplyCallback done) override;
  Result<std::optional<std::string>> Get(Table table, std::string_view key) override;
  Status Put(Table table, std::string_view key, std::string_view value) override;
  Status Delete(Table table, std::string_view key) override;
  Status ForEach(Table table, const VisitFunction& visit) override;
  Result<size_t> ExpireSome(UnixTime now, size_t max_records) override;
  Status Flush() override { return Status::Ok(); }
  StoreStats Stats() override {
    StoreStats stats;
    stats.expired_total = expired_total_.load();
    stats.connected = transport_->connected();
    stats.round_trips = transport_->round_trips();
    stats.scriptless_checks = scriptless_checks_.load();
    stats.check_script_runs = check_script_runs_.load();
    return stats;
  }

 private:
  struct ExpiryState {
    std::optional<KeyScan> scan;
    std::deque<std::string> backlog;  // keys scanned, not yet examined
    uint64_t cycles = 0;              // full SCAN cycles completed
  };

  // One check's state across its round trips: every step's callback holds it, so a step
  // passes it on instead of copying the keys.
  struct InFlightCheck {
    CheckKeys keys;
    UnixTime now{};
    // The reply record's value read on its own cluster slot, or nullopt when the check
    // reads it with its other records (one server).
    std::optional<RawValue> reply_elsewhere;
    CheckCallback done;
    // What CheckByReading's MGET read, in the command's order (the triplet first: it routes
    // the command): the table and Redis key of each value. A commit compares and writes
    // exactly these keys.
    std::array<Table, kAllTables.size()> read_tables{};
    std::array<std::string, kAllTables.size()> read_keys;
    size_t read_count = 0;
  };
  using CheckState = std::shared_ptr<InFlightCheck>;
  // The records a transition writes, by TableIndex.
  using Writes = std::array<std::optional<AnyRecord>, kAllTables.size()>;

  // On a cluster, true if the key of `table` lies in another slot than the triplet's.
  bool OtherSlot(const CheckKeys& keys, Table table, const std::string& key) const {
    return layout_.mode() == RedisKeyLayout::Mode::kCluster &&
           ClusterHashTag(table, key) != ClusterHashTag(Table::kTriplets, keys.triplet);
  }
  // The check once the reply record is known (read on its own slot, or left to the read).
  void CheckSlot(const CheckState& check);
  // The check script: one atomic read-decide-write on the triplet's slot.
  void RunCheckScript(const CheckState& check);
  // Reads the check's records with one MGET (atomic) and decides in C++ on them: the check
  // is then serialisable as having happened at the read if whatever it writes goes in while
  // every key it read still holds what was read.
  // - It writes nothing (a pass or an early retry within the last-seen refresh window, a
  //   trapped client): the decision is the answer.
  // - It only creates the triplet over an absent key: SET NX, which writes only if the key
  //   is still absent. The other keys are not compared (the new record takes nothing from
  //   them): if one changed in between (a trap put, a client counted), the check is as if
  //   it ran just before that change. Not strictly serialisable when the triplet was also
  //   created and deleted again in between; the answer is a greylist either way, and at
  //   worst a trapped client leaves a pending triplet, which expires.
  // - Anything else: CommitIfUnchanged compares every key read and writes in one script.
  // When a write finds a key changed, the check script decides again, atomically.
  void CheckByReading(const CheckState& check);
  void CreateTriplet(const CheckState& check, policy::Transition transition);
  // `read` is the MGET's reply, `writes` what `transition` writes.
  void CommitIfUnchanged(const CheckState& check, policy::Transition transition,
                         const Writes& writes, const RedisReply& read);
  // Answers the check with `transition` once a conditional write committed, or runs the
  // check script when it found its keys changed (`changed`).
  void FinishWrite(const CheckState& check, policy::Transition transition,
                   Result<std::vector<RedisReply>> replies, bool (*changed)(const RedisReply&));
  // Seconds until policy::ExpiresAt of `record` on the store's clock: the TTL a write gives
  // it. nullopt once that instant has passed.
  std::optional<int64_t> SecondsToExpiry(const AnyRecord& record, UnixTime now) const {
    const int64_t seconds = (ExpiresAt(record, timing_) - now).count();
    return seconds > 0 ? std::optional<int64_t>(seconds) : std::nullopt;
  }
  void CheckWithTrapElsewhere(const CheckState& check);
  void Fail(CheckCallback& done, Status status) {
    if (errors_.Allow(clock_.Monotonic())) log::Error("{}", status.message());
    done(std::move(status));
  }
  // REQUIRES: expiry_mutex_ held.
  Result<size_t> ExpireBatch(UnixTime now, size_t max_records);
  void Sweep(const BackgroundSweep::Stopping& stopping);

  std::unique_ptr<RedisTransport> transport_;
  const RedisKeyLayout layout_;
  const RedisRecordOptions options_;
  const policy::GreylistTiming& timing_;
  const Clock& clock_;
  log::RateLimiter errors_;
  std::atomic<uint64_t> expired_total_{0};
  std::atomic<uint64_t> scriptless_checks_{0};
  std::atomic<uint64_t> check_script_runs_{0};

  std::mutex expiry_mutex_;  // serialises ExpireSome
  std::array<ExpiryState, kAllTables.size()> expiry_;
  std::optional<BackgroundSweep> sweep_;  // last: stops first
};

void RedisRecordStore::Check(const CheckKeys& keys, UnixTime now, CheckCallback done) {
  if (!keys.client.empty() && OtherSlot(keys, Table::kClients, keys.client)) {
    return Fail(done, Status::InvalidArgument(fmt::format(
                          "redis+cluster: the triplet {} and the client {} hash to different "
                          "slots (--privacy, or --ipv4cidr below 16 / --ipv6cidr below 32?)",
                          log::Escaped(keys.triplet), log::Escaped(keys.client))));
  }
  auto check = std::make_shared<InFlightCheck>();
  check->keys = keys;
  check->now = now;
  check->done = std::move(done);
  if (keys.reply.empty() || !OtherSlot(keys, Table::kReplies, keys.reply)) {
    return CheckSlot(check);
  }
  // A reply record holds no client, so on a cluster it has a slot of its own: it is read
  // first, by a plain GET. Only its liveness goes into the check, and nothing writes it
  // there, so the two calls need no atomicity: an outbound message recorded between them
  // counts from the next request, as if it had come a moment later.
  std::string reply_key = layout_.Key(Table::kReplies, keys.reply);
  transport_->Submit(reply_key, {{"GET", reply_key}},
                     [this, check](Result<std::vector<RedisReply>> replies) {
                       if (!replies.ok()) return check->done(replies.status());
                       const RedisReply& reply = replies->front();
                       if (reply.is_error()) {
                         return check->done(Status::Unavailable("redis: " + reply.str));
                       }
                       RawValue value;
                       if (reply.type == RedisReply::Type::kString) value = reply.str;
                       check->reply_elsewhere = std::move(value);
                       CheckSlot(check);
                     });
}

void RedisRecordStore::CheckSlot(const CheckState& check) {
  const CheckKeys& keys = check->keys;
  if (!keys.trap.empty() && OtherSlot(keys, Table::kTraps, keys.trap)) {
    return CheckWithTrapElsewhere(check);
  }
  // A trap hit always writes the trap record: straight to the script.
  if (keys.trap_hit) return RunCheckScript(check);
  CheckByReading(check);
}

void RedisRecordStore::RunCheckScript(const CheckState& check) {
  check_script_runs_.fetch_add(1, std::memory_order_relaxed);
  RedisCommand command =
      BuildCheckCommand(check->keys, check->now, timing_, layout_, check->reply_elsewhere);
  std::string route = command[3];  // the triplet's Redis key
  transport_->Submit(route, {std::move(command)},
                     [this, check](Result<std::vector<RedisReply>> replies) {
                       if (!replies.ok()) return check->done(replies.status());
                       check->done(TransitionFromReply(check->keys, check->now, timing_,
                                                       replies->front(), check->reply_elsewhere));
                     });
}

void RedisRecordStore::CheckByReading(const CheckState& check) {
  InFlightCheck& c = *check;
  c.read_count = 0;
  auto add = [&](Table table) {
    c.read_tables[c.read_count] = table;
    c.read_keys[c.read_count] = layout_.Key(table, c.keys.Of(table));
    ++c.read_count;
  };
  add(Table::kTriplets);
  if (!c.keys.client.empty()) add(Table::kClients);
  if (!c.keys.trap.empty()) add(Table::kTraps);
  if (!c.keys.reply.empty() && !c.reply_elsewhere) add(Table::kReplies);
  RedisCommand command{"MGET"};
  command.insert(command.end(), c.read_keys.begin(), c.read_keys.begin() + c.read_count);
  transport_->Submit(
      c.read_keys[0], {std::move(command)}, [this, check](Result<std::vector<RedisReply>> replies) {
        InFlightCheck& c = *check;
        if (!replies.ok()) return c.done(replies.status());
        const RedisReply& reply = replies->front();
        if (reply.is_error()) return c.done(Status::Unavailable("redis: " + reply.str));
        if (reply.type != RedisReply::Type::kArray || reply.elements.size() != c.read_count) {
          return c.done(Status::Corruption("redis: unexpected reply to MGET"));
        }
        auto read = [&](Table table, const std::string&) -> std::optional<std::string_view> {
          if (table == Table::kReplies && c.reply_elsewhere) {
            if (!*c.reply_elsewhere) return std::nullopt;
            return std::string_view(**c.reply_elsewhere);
          }
          for (size_t i = 0; i < c.read_count; ++i) {
            const RedisReply& value = reply.elements[i];
            if (c.read_tables[i] == table && value.type == RedisReply::Type::kString)
              return value.str;
          }
          return std::nullopt;
        };
        policy::Transition transition =
            DecideFor(c.keys, ReadPrior(c.keys, c.now, timing_, read), c.now, timing_);
        Writes writes;
        size_t write_count = 0;
        ForEachWrite(c.keys, transition,
                     [&](Table table, const std::string&, const AnyRecord& record) {
                       writes[TableIndex(table)] = record;
                       ++write_count;
                     });
        if (write_count == 0) {
          scriptless_checks_.fetch_add(1, std::memory_order_relaxed);
          return c.done(std::move(transition));
        }
        const bool triplet_absent = reply.elements[0].type == RedisReply::Type::kNil;
        if (write_count == 1 && transition.triplet_write && triplet_absent) {
          return CreateTriplet(check, std::move(transition));
        }
        CommitIfUnchanged(check, std::move(transition), writes, reply);
      });
}

void RedisRecordStore::CreateTriplet(const CheckState& check, policy::Transition transition) {
  const AnyRecord record(*transition.triplet_write);
  const std::string& key = check->read_keys[0];  // the triplet's, as read
  RedisCommand command{"SET",
                       key,
                       EncodeRecord(record),
                       "EX",
                       std::to_string(SecondsToExpiry(record, check->now).value_or(1)),
                       "NX"};
  transport_->Submit(
      key, {std::move(command)},
      [this, check,
       transition = std::move(transition)](Result<std::vector<RedisReply>> replies) mutable {
        FinishWrite(check, std::move(transition), std::move(replies),
                    [](const RedisReply& reply) { return reply.type == RedisReply::Type::kNil; });
      });
}

void RedisRecordStore::CommitIfUnchanged(const CheckState& check, policy::Transition transition,
                                         const Writes& writes, const RedisReply& read) {
  const InFlightCheck& c = *check;
  RedisCommand command;
  command.reserve(3 + 5 * c.read_count);
  command.push_back("EVALSHA");
  command.push_back(CommitIfUnchangedScript().sha1);
  command.push_back(std::to_string(c.read_count));
  command.insert(command.end(), c.read_keys.begin(), c.read_keys.begin() + c.read_count);
  for (size_t i = 0; i < c.read_count; ++i) {
    const RedisReply& value = read.elements[i];
    const bool held = value.type == RedisReply::Type::kString;
    command.push_back(held ? "1" : "0");
    command.push_back(held ? value.str : std::string());
    const std::optional<AnyRecord>& record = writes[TableIndex(c.read_tables[i])];
    command.push_back(record ? EncodeRecord(*record) : std::string());
    command.push_back(record ? std::to_string(SecondsToExpiry(*record, c.now).value_or(1)) : "0");
  }
  transport_->Submit(
      c.read_keys[0], {std::move(command)},
      [this, check,
       transition = std::move(transition)](Result<std::vector<RedisReply>> replies) mutable {
        FinishWrite(check, std::move(transition), std::move(replies), [](const RedisReply& reply) {
          return reply.type == RedisReply::Type::kInteger && reply.integer == 0;
        });
      });
}

void RedisRecordStore::FinishWrite(const CheckState& check, policy::Transition transition,
                                   Result<std::vector<RedisReply>> replies,
                                   bool (*changed)(const RedisReply&)) {
  if (!replies.ok()) return check->done(replies.status());
  const RedisReply& reply = replies->front();
  if (reply.is_error()) return check->done(Status::Unavailable("redis: " + reply.str));
  if (changed(reply)) return RunCheckScript(check);
  scriptless_checks_.fetch_add(1, std::memory_order_relaxed);
  check->done(std::move(transition));
}

void RedisRecordStore::RecordReply(std::string_view key, UnixTime now, ReplyCallback done) {
  RedisCommand command = BuildRecordReplyCommand(key, now, timing_, layout_);
  std::string route = command[3];  // the reply's Redis key
  transport_->Submit(route, {std::move(command)},
                     [this, key = std::string(key), now,
                      done = std::move(done)](Result<std::vector<RedisReply>> replies) mutable {
                       if (!replies.ok()) return done(replies.status());
                       done(ReplyRecordFromReply(key, now, timing_, replies->front()));
                     });
}

// A trap entry on another slot than the triplet (--lookup-by=domain or smart on a cluster):
// the trap script runs on the trap's slot first, then, unless the client is trapped, the
// check script without the trap key on the triplet's. The two are not one atomic step: a
// trap hit landing between them lets this one request go on as if it came just before the
// hit, which is what it would have been had it arrived a moment sooner.
void RedisRecordStore::CheckWithTrapElsewhere(const CheckState& check) {
  const CheckKeys& keys = check->keys;
  const bool hit = keys.trap_hit;
  RedisCommand trap_command{"EVALSHA",
                            TrapScript().sha1,
                            "1",
                            layout_.Key(Table::kTraps, keys.trap),
                            std::to_string(ToUnixSeconds(check->now)),
                            std::to_string(ToUnixSeconds(check->now + timing_.trap_ttl)),
                            std::to_string(policy::kMaxRecordField),
                            hit ? "1" : "0"};
  std::string route = trap_command[3];
  transport_->Submit(
      route, {std::move(trap_command)},
      [this, check, hit](Result<std::vector<RedisReply>> replies) {
        const UnixTime now = check->now;
        if (!replies.ok()) return check->done(replies.status());
        const RedisReply& reply = replies->front();
        if (reply.is_error()) return check->done(Status::Unavailable("redis: " + reply.str));
        if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 2) {
          return check->done(Status::Corruption("redis: unexpected reply to the trap script"));
        }
        auto raw = [](const RedisReply& r) -> std::optional<std::string_view> {
          if (r.type != RedisReply::Type::kString) return std::nullopt;
          return std::string_view(r.str);
        };
        std::optional<policy::TrapRecord> trap =
            policy::Live(DecodeOrWarn<policy::TrapRecord>(Table::kTraps, check->keys.trap,
                                                          raw(reply.elements[0])),
                         now);
        if (hit) {
          policy::TrapRecord want{std::max(now + timing_.trap_ttl, trap ? trap->until : now), now};
          if (raw(reply.elements[1]) != std::optional<std::string_view>(policy::EncodeTrap(want))) {
            return check->done(
                Status::Corruption("redis: the trap script and policy::Decide disagree"));
          }
        }
        if (!hit && !trap) {
          // Not trapped: the rest of the check runs on the triplet's slot without the trap.
          check->keys.trap.clear();
          check->keys.trap_hit = false;
          return CheckSlot(check);
        }
        // Trapped: nothing else is written; the prior triplet only feeds the log line's `first`.
        std::string triplet_key = layout_.Key(Table::kTriplets, check->keys.triplet);
        transport_->Submit(triplet_key, {{"GET", triplet_key}},
                           [this, check, trap](Result<std::vector<RedisReply>> got) {
                             if (!got.ok()) return check->done(got.status());
                             policy::PriorState prior;
                             if (got->front().type == RedisReply::Type::kString) {
                               prior.triplet = policy::Live(
                                   DecodeOrWarn<policy::TripletRecord>(
                                       Table::kTriplets, check->keys.triplet, got->front().str),
                                   check->now, timing_);
                             }
                             prior.trap = trap;
                             check->done(DecideFor(check->keys, prior, check->now, timing_));
                           });
      });
}

// ---- Raw access ----------------------------------------------------------------------

Result<std::optional<std::string>> RedisRecordStore::Get(Table table, std::string_view key) {
  std::string redis_key = layout_.Key(table, key);
  auto reply = Single(CallKey(*transport_, redis_key, {{"GET", redis_key}}));
  if (!reply.ok()) return reply.status();
  if (reply->type == RedisReply::Type::kNil) return std::optional<std::string>();
  return std::optional<std::string>(std::move(reply->str));
}

Status RedisRecordStore::Put(Table table, std::string_view key, std::string_view value) {
  std::string redis_key = layout_.Key(table, key);
  RedisCommand command{"SET", redis_key, std::string(value)};
  // The TTL a Check would give the record: until policy::ExpiresAt, counted on the store's
  // clock. Malformed or already expired: no TTL, left to ExpireSome().
  if (std::optional<AnyRecord> record = DecodeRecord(table, value)) {
    if (std::optional<int64_t> ttl = SecondsToExpiry(*record, clock_.Now())) {
      command.push_back("EX");
      command.push_back(std::to_string(*ttl));
    }
  }
  auto reply = Single(CallKey(*transport_, redis_key, {std::move(command)}));
  return reply.ok() ? Status::Ok() : reply.status();
}

Status RedisRecordStore::Delete(Table table, std::string_view key) {
  std::string redis_key = layout_.Key(table, key);
  auto reply = Single(CallKey(*transport_, redis_key, {{"DEL", redis_key}}));
  return reply.ok() ? Status::Ok() : reply.status();
}

Status RedisRecordStore::ForEach(Table table, const VisitFunction& visit) {
  KeyScan scan(layout_.ScanPattern(table));
  while (true) {
    auto page = scan.Next(*transport_);
    if (!page.ok()) return page.status();
    auto values = ReadValues(*transport_, page->keys);
    if (!values.ok()) return values.status();
    for (size_t i = 0; i < page->keys.size(); ++i) {
      std::optional<std::string_view> key = layout_.RecordKey(table, page->keys[i]);
      // Gone since the SCAN, or not a record of this table.
      if (!key || !(*values)[i]) continue;
      if (!visit(*key, *(*values)[i])) return Status::Ok();
    }
    if (page->cycle_done) return Status::Ok();
  }
}

// ---- Expiry ----------------------------------------------------------------------------

Result<size_t> RedisRecordStore::ExpireSome(UnixTime now, size_t max_records) {
  std::lock_guard lock(expiry_mutex_);
  return ExpireBatch(now, max_records);
}

Result<size_t> RedisRecordStore::ExpireBatch(UnixTime now, size_t max_records) {
  size_t deleted = 0;
  for (Table table : kAllTables) {
    ExpiryState& state = expiry_[TableIndex(table)];
    bool cycle_done = false;
    while (deleted < max_records) {
      if (state.backlog.empty()) {
        if (cycle_done) break;
        auto page = state.scan->Next(*transport_);
        if (!page.ok()) return page.status();
        for (std::string& key : page->keys) {
          if (layout_.RecordKey(table, key)) state.backlog.push_back(std::move(key));
        }
        if (page->cycle_done) {
          cycle_done = true;  // the next call starts a new cycle
          ++state.cycles;
        }
        continue;
      }
      // Examine a chunk of the backlog; keys after the last deletion this call may make stay
      // in the backlog for the next call.
      size_t chunk = std::min(state.backlog.size(), KeyScan::kScanCount);
      std::vector<std::string> keys(state.backlog.begin(), state.backlog.begin() + chunk);
      auto values = ReadValues(*transport_, keys);
      if (!values.ok()) return values.status();
      std::vector<std::pair<std::string, RedisCommand>> deletes;
      size_t examined = 0;
      for (; examined < chunk && deleted + deletes.size() < max_records; ++examined) {
        const std::optional<std::string>& value = (*values)[examined];
        if (value && ShouldExpire(table, *value, now, timing_)) {
          deletes.push_back(
              {keys[examined],
               {"EVALSHA", DeleteIfUnchangedScript().sha1, "1", keys[examined], *value}});
        }
      }
      state.backlog.erase(state.backlog.begin(), state.backlog.begin() + examined);
      if (deletes.empty()) continue;
      auto results = CallEachKey(*transport_, std::move(deletes));
      if (!results.ok()) return results.status();
      for (const Result<RedisReply>& result : *results) {
        if (!result.ok()) return result.status();
        if (result->is_error()) return Status::IoError("redis: " + result->str);
        if (result->integer == 1) ++deleted;
      }
    }
  }
  expired_total_.fetch_add(deleted);
  return deleted;
}

// One full cycle over every table, in batches, stopping early when the store closes.
void RedisRecordStore::Sweep(const BackgroundSweep::Stopping& stopping) {
  std::lock_guard lock(expiry_mutex_);
  std::array<uint64_t, kAllTables.size()> start;
  for (size_t i = 0; i < start.size(); ++i) start[i] = expiry_[i].cycles;
  auto cycle_done = [&] {
    for (size_t i = 0; i < start.size(); ++i) {
      if (expiry_[i].cycles == start[i]) return false;
    }
    return true;
  };
  size_t deleted = 0;
  while (!cycle_done() && !stopping()) {
    // At least one record per batch, or a zero batch would never move the scan on.
    auto n = ExpireBatch(clock_.Now(), std::max<size_t>(options_.expiry_batch, 1));
    if (!n.ok()) {
      log::Warning("redis: expiry sweep stopped: {}", n.status().message());
      break;
    }
    deleted += *n;
  }
  if (deleted > 0) log::Info("redis: expiry sweep deleted {} records", deleted);
}

}  // namespace

std::unique_ptr<Store> MakeRedisRecordStore(std::unique_ptr<RedisTransport> transport,
                                            RedisKeyLayout layout,
                                            const RedisRecordOptions& options, const Clock& clock) {
  return std::make_unique<RedisRecordStore>(std::move(transport), std::move(layout), options,
                                            clock);
}

}  // namespace greylight::store
