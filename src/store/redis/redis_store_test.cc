#include "store/redis/redis_store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>

#include "store/memory_store.h"
#include "store/redis/redis_check.h"
#include "store/redis/redis_keys.h"
#include "store/redis/redis_scripts.h"
#include "store/redis/redis_test_support.h"
#include "store/store_conformance.h"
#include "support/redis_server.h"
#include "util/log.h"

namespace greylight::store {
namespace {

using namespace std::chrono_literals;
using namespace redis_test;
using testing_support::RedisServer;
using testing_support::RespReply;
using testing_support::WaitUntil;

// A store standing in for Redis when no redis-server could be started: every operation
// fails with the reason, so each test fails with a message saying what is missing.
class UnavailableStore final : public Store {
 public:
  explicit UnavailableStore(std::string why) : why_(std::move(why)) {}
  void Check(const CheckKeys&, UnixTime, CheckCallback done) override { done(Error()); }
  void RecordReply(std::string_view, UnixTime, ReplyCallback done) override { done(Error()); }
  Result<std::optional<std::string>> Get(Table, std::string_view) override { return Error(); }
  Status Put(Table, std::string_view, std::string_view) override { return Error(); }
  Status Delete(Table, std::string_view) override { return Error(); }
  Status ForEach(Table, const VisitFunction&) override { return Error(); }
  Result<size_t> ExpireSome(UnixTime, size_t) override { return Error(); }
  Status Flush() override { return Error(); }

 private:
  Status Error() const { return Status::Unavailable(why_); }
  std::string why_;
};

// One redis-server per test process for the conformance suite, stopped at exit; each store
// gets a prefix of its own, which is the isolation the store promises.
Result<RedisServer*> SharedServer() {
  static Result<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  if (!server.ok()) return server.status();
  return server->get();
}

std::unique_ptr<Store> CreateForConformance(const policy::GreylistTiming& timing) {
  static std::atomic<int> next_prefix{0};
  auto server = SharedServer();
  if (!server.ok()) {
    ADD_FAILURE() << server.status().message();
    return std::make_unique<UnavailableStore>(server.status().message());
  }
  RedisOptions options =
      OptionsFor((*server)->port(), fmt::format("conformance{}:", next_prefix++));
  options.store.timing = timing;
  options.store.timeout = 2000ms;  // loopback; generous so that a loaded test machine is no fault
  auto store = OpenRedisStore(options, kSystemClock);
  if (!store.ok()) {
    ADD_FAILURE() << store.status().message();
    return std::make_unique<UnavailableStore>(store.status().message());
  }
  return std::move(store.value());
}

INSTANTIATE_TEST_SUITE_P(Redis, StoreConformanceTest,
                         testing::Values(StoreFactory{"redis", CreateForConformance}),
                         [](const auto& info) { return info.param.name; });

long long Ttl(const RedisServer& server, const std::string& key) {
  auto reply = server.Command({"TTL", key});
  EXPECT_TRUE(reply.ok()) << reply.status().message();
  return reply.ok() ? reply->integer : -3;
}

RedisReply FromResp(const RespReply& resp) {
  RedisReply reply;
  reply.type = static_cast<RedisReply::Type>(resp.type);
  reply.str = resp.str;
  reply.integer = resp.integer;
  for (const RespReply& element : resp.elements) reply.elements.push_back(FromResp(element));
  return reply;
}

// Runs the check script itself (a store decides most checks in C++ on a read, and runs the
// script only for trap hits and writes that find their keys changed), keys prefixed
// "greylight:". What it writes is verified against policy::Decide on the values it read.
Result<policy::Transition> RunCheckScriptOn(const RedisServer& server, const CheckKeys& keys,
                                            long long now, const policy::GreylistTiming& timing) {
  RedisCommand command =
      BuildCheckCommand(keys, FromUnixSeconds(now), timing,
                        RedisKeyLayout("greylight:", RedisKeyLayout::Mode::kPlain));
  command[0] = "EVAL";
  command[1] = std::string(CheckScript().text);
  auto reply = server.Command(command);
  if (!reply.ok()) return reply.status();
  return TransitionFromReply(keys, FromUnixSeconds(now), timing, FromResp(*reply), std::nullopt);
}

class RedisStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server.value());
  }

  std::unique_ptr<Store> Open(const RedisOptions& options, const Clock& clock = kSystemClock) {
    auto store = OpenRedisStore(options, clock);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store.value()) : nullptr;
  }

  // `count` stores on the test's server; empty if one failed to open.
  std::vector<std::unique_ptr<Store>> OpenStores(int count) {
    std::vector<std::unique_ptr<Store>> stores;
    for (int i = 0; i < count; ++i) {
      stores.push_back(Open(OptionsFor(server_->port())));
      if (!stores.back()) return {};
    }
    return stores;
  }

  std::unique_ptr<RedisServer> server_;
};

// Every store checks "triplet0".."triplet<triplets-1>" at once (all queued before the
// first answer), store i checking triplet t at instant(i, t). `answered` gets each answer,
// its triplet and its instant, under one lock. True once every check answered (30 s at most).
bool RaceOnTriplets(const std::vector<std::unique_ptr<Store>>& stores, int triplets,
                    const std::function<long long(int store, int triplet)>& instant,
                    const std::function<void(int triplet, long long now,
                                             const Result<policy::Transition>&)>& answered) {
  const int checks = static_cast<int>(stores.size()) * triplets;
  std::mutex mutex;
  std::condition_variable all_done;
  int done = 0;
  for (int t = 0; t < triplets; ++t) {
    for (size_t i = 0; i < stores.size(); ++i) {
      const long long now = instant(static_cast<int>(i), t);
      stores[i]->Check({fmt::format("triplet{}", t), ""}, FromUnixSeconds(now),
                       [&, t, now](Result<policy::Transition> r) {
                         std::lock_guard lock(mutex);
                         answered(t, now, r);
                         if (++done == checks) all_done.notify_one();
                       });
    }
  }
  std::unique_lock lock(mutex);
  return all_done.wait_for(lock, 30s, [&] { return done == checks; });
}

TEST_F(RedisStoreTest, RecordsUsePrefixedKeysAndPostgreyValues) {
  auto store = Open(OptionsFor(server_->port(), "site:"));
  ASSERT_TRUE(store);
  ASSERT_TRUE(CheckSucceeds(*store, {"192.0.2.0/a@b/c@d", "192.0.2.1"}, T));
  ASSERT_TRUE(CheckSucceeds(*store, {"192.0.2.0/a@b/c@d", "192.0.2.1"}, T + 300));
  EXPECT_EQ(server_->Command({"GET", "site:t:192.0.2.0/a@b/c@d"})->str, "1800000000,1800000300");
  EXPECT_EQ(server_->Command({"GET", "site:c:192.0.2.1"})->str, "1,1800000300");
  EXPECT_EQ(RedisKeyLayout("site:", RedisKeyLayout::Mode::kPlain).Key(Table::kClients, "x"),
            "site:c:x");
}

// TTLs let Redis do the expiry: pending triplets live for min(max-age, retry window) after
// their last update, passed ones and clients for max-age; one second of margin each.
TEST_F(RedisStoreTest, TtlsFollowTheExpiryRules) {
  RedisOptions options = OptionsFor(server_->port());
  options.store.timing.max_age = Seconds(35 * 86400);
  options.store.timing.retry_window = Seconds(2 * 86400);
  FakeClock clock(FromUnixSeconds(T));
  auto store = Open(options, clock);
  ASSERT_TRUE(store);
  const long long max_age = 35 * 86400, retry_window = 2 * 86400;
  auto near = [](long long ttl, long long want) { return ttl == want || ttl == want - 1; };

  ASSERT_TRUE(CheckSucceeds(*store, {"k", "10.0.0.1"}, T));
  EXPECT_PRED2(near, Ttl(*server_, "greylight:t:k"), retry_window + 1);
  EXPECT_EQ(Ttl(*server_, "greylight:c:10.0.0.1"), -2);  // no client record yet

  ASSERT_TRUE(CheckSucceeds(*store, {"k", "10.0.0.1"}, T + 300));  // passes
  EXPECT_PRED2(near, Ttl(*server_, "greylight:t:k"), max_age + 1);
  EXPECT_PRED2(near, Ttl(*server_, "greylight:c:10.0.0.1"), max_age + 1);

  // max-age shorter than the retry window: pending triplets go at max-age.
  RedisOptions short_options = OptionsFor(server_->port(), "short:");
  short_options.store.timing.max_age = Seconds(3600);
  short_options.store.timing.retry_window = Seconds(7200);
  auto short_store = Open(short_options);
  ASSERT_TRUE(short_store);
  ASSERT_TRUE(CheckSucceeds(*short_store, {"k", ""}, T));
  EXPECT_PRED2(near, Ttl(*server_, "short:t:k"), 3600 + 1);

  // Put counts the TTL from the record's last-seen time by the store's clock.
  ASSERT_TRUE(store->Put(Table::kTriplets, "pending", fmt::format("{},{}", T - 100, T - 50)).ok());
  EXPECT_PRED2(near, Ttl(*server_, "greylight:t:pending"), retry_window + 1 - 50);
  ASSERT_TRUE(store->Put(Table::kTriplets, "passed", fmt::format("{},{}", T - 1000, T - 10)).ok());
  EXPECT_PRED2(near, Ttl(*server_, "greylight:t:passed"), max_age + 1 - 10);
  ASSERT_TRUE(store->Put(Table::kClients, "10.0.0.2", fmt::format("3,{}", T - 86400)).ok());
  EXPECT_PRED2(near, Ttl(*server_, "greylight:c:10.0.0.2"), max_age + 1 - 86400);
  // Already expired, or malformed: stored without TTL (-1), left to ExpireSome.
  ASSERT_TRUE(
      store->Put(Table::kTriplets, "dead", fmt::format("{},{}", T - 3 * 86400, T - 3 * 86400))
          .ok());
  EXPECT_EQ(Ttl(*server_, "greylight:t:dead"), -1);
  ASSERT_TRUE(store->Put(Table::kTriplets, "junk", "junk").ok());
  EXPECT_EQ(Ttl(*server_, "greylight:t:junk"), -1);
  auto deleted = store->ExpireSome(FromUnixSeconds(T), 100);
  ASSERT_TRUE(deleted.ok()) << deleted.status().message();
  EXPECT_EQ(*deleted, 2u);
}

TEST_F(RedisStoreTest, PrefixesAreIsolated) {
  auto a = Open(OptionsFor(server_->port(), "a:"));
  auto b = Open(OptionsFor(server_->port(), "b:"));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(CheckSucceeds(*a, {"k", "10.0.0.1"}, T));
  ASSERT_TRUE(CheckSucceeds(*a, {"k", "10.0.0.1"}, T + 300));
  EXPECT_EQ(b->Get(Table::kTriplets, "k").value(), std::nullopt);
  EXPECT_EQ(b->Get(Table::kClients, "10.0.0.1").value(), std::nullopt);
  for (Table table : {Table::kTriplets, Table::kClients}) {
    int seen = 0;
    ASSERT_TRUE(b->ForEach(table, [&](auto, auto) { return ++seen > 0; }).ok());
    EXPECT_EQ(seen, 0) << TableName(table);
  }
  // b greylists the triplet afresh; a's record is untouched.
  Outcome outcome = CheckWithin(*b, {"k", "10.0.0.1"}, T + 400);
  ASSERT_TRUE(outcome.result && outcome.result->ok());
  EXPECT_TRUE(outcome.result->value().greylisted());
  EXPECT_EQ(a->Get(Table::kTriplets, "k").value(), "1800000000,1800000300");
  EXPECT_EQ(b->ExpireSome(FromUnixSeconds(T + 100 * 86400), 100).value(), 1u);  // only b's triplet
  EXPECT_EQ(a->Get(Table::kTriplets, "k").value(), "1800000000,1800000300");
}

// The script must accept exactly the values policy::DecodeTriplet / DecodeClient accept:
// for each tricky stored value, Redis and the in-memory reference give the same answer and
// write the same records. (A disagreement between the script and policy::Decide would also
// show as a failed Check: the store verifies every answer.)
TEST_F(RedisStoreTest, ScriptDecodesValuesLikeTheCodec) {
  policy::GreylistTiming timing;
  timing.awl_threshold = 3;
  RedisOptions options = OptionsFor(server_->port());
  options.store.timing = timing;
  auto store = Open(options);
  ASSERT_TRUE(store);
  const long long now = T + 4000;
  struct Case {
    Table table;
    std::string value;
  };
  const std::vector<Case> cases = {
      {Table::kTriplets, "1799999000,1800000000"},
      {Table::kTriplets, "0001799999000,01800000000"},
      {Table::kTriplets, "1799999000,1800000000,extra"},
      {Table::kTriplets, "1799999000,1800000000,"},
      {Table::kTriplets, "1799999000,1800000000x"},
      {Table::kTriplets, "1799999000,1800000000\n"},
      {Table::kTriplets, "-0,1800000000"},
      {Table::kTriplets, "-00,1800000000"},
      {Table::kTriplets, "-1,1800000000"},
      {Table::kTriplets, "1799999000,-1800000000"},
      {Table::kTriplets, "+1799999000,1800000000"},
      {Table::kTriplets, " 1799999000,1800000000"},
      {Table::kTriplets, "1799999000 ,1800000000"},
      {Table::kTriplets, "1799999000,,1800000000"},
      {Table::kTriplets, "-,1800000000"},
      {Table::kTriplets, ""},
      {Table::kTriplets, ","},
      {Table::kTriplets, "1800000000"},
      {Table::kTriplets, "abc"},
      {Table::kTriplets, "1800003999,1800003999"},  // pending
      {Table::kTriplets, "1800009000,1800009000"},  // first in the future: corrected
      {Table::kTriplets, "1700000000,1700000100"},  // older than max-age
      {Table::kTriplets, "9007199254740991,1800000000"},
      {Table::kClients, "5,1800000000"},
      {Table::kClients, "05,1800000000"},
      {Table::kClients, "-0,1800000000"},
      {Table::kClients, "2,1800000000"},
      {Table::kClients, "2,1799990000"},
      {Table::kClients, "5,1800000000,1"},
      {Table::kClients, "5,1800000000x"},
      {Table::kClients, "5,"},
      {Table::kClients, "9007199254740991,1800000000"},
  };
  MemoryStore reference(timing);
  int index = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("{} value '{}'", TableName(c.table), c.value));
    std::string triplet = fmt::format("triplet{}", index);
    std::string client = fmt::format("client{}", index++);
    // A triplet that has waited long enough, so the client record matters too.
    std::string triplet_value = c.table == Table::kTriplets ? c.value : "1799990000,1799990000";
    const CheckKeys scripted_keys{"s" + triplet, "s" + client};
    for (const CheckKeys& keys : {CheckKeys{triplet, client}, scripted_keys}) {
      ASSERT_TRUE(store->Put(Table::kTriplets, keys.triplet, triplet_value).ok());
      if (c.table == Table::kClients) {
        ASSERT_TRUE(store->Put(Table::kClients, keys.client, c.value).ok());
      }
    }
    ASSERT_TRUE(reference.Put(Table::kTriplets, triplet, triplet_value).ok());
    if (c.table == Table::kClients) {
      ASSERT_TRUE(reference.Put(Table::kClients, client, c.value).ok());
    }
    auto scripted = RunCheckScriptOn(*server_, scripted_keys, now, timing);
    ASSERT_TRUE(scripted.ok()) << scripted.status().message();
    Outcome got = CheckWithin(*store, {triplet, client}, now);
    Outcome want = CheckWithin(reference, {triplet, client}, now);
    ASSERT_TRUE(got.result && got.result->ok())
        << (got.result ? got.result->status().message() : "no answer");
    const policy::Transition& g = got.result->value();
    const policy::Transition& w = want.result->value();
    EXPECT_EQ(g.client_awl_pass, w.client_awl_pass);
    EXPECT_EQ(g.first, w.first);
    EXPECT_EQ(g.first_corrected, w.first_corrected);
    EXPECT_EQ(g.last_was_successful, w.last_was_successful);
    EXPECT_EQ(g.missing, w.missing);
    EXPECT_EQ(g.awl_threshold_reached, w.awl_threshold_reached);
    EXPECT_EQ(store->Get(Table::kTriplets, triplet).value(),
              reference.Get(Table::kTriplets, triplet).value());
    EXPECT_EQ(store->Get(Table::kClients, client).value(),
              reference.Get(Table::kClients, client).value());
    EXPECT_EQ(scripted->first, w.first);
    EXPECT_EQ(scripted->client_awl_pass, w.client_awl_pass);
    EXPECT_EQ(store->Get(Table::kTriplets, scripted_keys.triplet).value(),
              reference.Get(Table::kTriplets, triplet).value());
    EXPECT_EQ(store->Get(Table::kClients, scripted_keys.client).value(),
              reference.Get(Table::kClients, client).value());
  }
}

Result<policy::ReplyRecord> RecordWithin(Store& store, std::string_view key, long long now) {
  struct Shared {
    std::mutex mutex;
    std::condition_variable done;
    std::optional<Result<policy::ReplyRecord>> result;
  };
  auto shared = std::make_shared<Shared>();  // the callback may outlive a timed-out wait
  store.RecordReply(key, FromUnixSeconds(now), [shared](Result<policy::ReplyRecord> r) {
    std::lock_guard lock(shared->mutex);
    shared->result.emplace(std::move(r));
    shared->done.notify_one();
  });
  std::unique_lock lock(shared->mutex);
  if (!shared->done.wait_for(lock, 5s, [&] { return shared->result.has_value(); })) {
    return Status::Unavailable("no answer within 5 s");
  }
  return *shared->result;
}

// Reply records live in "<prefix>r:<key>" with the TTL of policy::ExpiresAt (max-age after
// the last message), and both scripts (the check's reply step and the reply-record script)
// read the stored values exactly as policy::DecodeReply and policy::Live do.
TEST_F(RedisStoreTest, ReplyRecordsHaveTheirTtlAndDecodeLikeTheCodec) {
  policy::GreylistTiming timing;
  timing.max_age = Seconds(86400);
  RedisOptions options = OptionsFor(server_->port());
  options.store.timing = timing;
  FakeClock clock(FromUnixSeconds(T));
  auto store = Open(options, clock);
  ASSERT_TRUE(store);
  auto recorded = RecordWithin(*store, "carol@remote.example/bob@example.org", T);
  ASSERT_TRUE(recorded.ok()) << recorded.status().message();
  const std::string redis_key = "greylight:r:carol@remote.example/bob@example.org";
  EXPECT_EQ(server_->Command({"GET", redis_key})->str, "1,1800000000");
  long long ttl = Ttl(*server_, redis_key);
  EXPECT_TRUE(ttl == 86401 || ttl == 86400) << ttl;

  const long long now = T + 1000;
  const std::vector<std::string> values = {
      "1,1800000000",       "01,1800000000",
      "-0,1800000000",      "1,1800000000,1",
      "1,1800000000x",      "1,",
      ",1800000000",        "9007199254740991,1800000000",
      "9007199254740992,1", "1,1799914600",
      "1,1799914599",  // live to the second, and one second too old
      "2,1800009000",  // last message in the future (clock stepped back)
  };
  MemoryStore reference(timing);
  int index = 0;
  for (const std::string& value : values) {
    SCOPED_TRACE(fmt::format("reply value '{}'", value));
    std::string reply = fmt::format("s{}@remote.example/bob@example.org", index++);
    CheckKeys keys{"192.0.2.0/" + reply, "192.0.2.9", "", false, reply};
    for (Store* s : std::initializer_list<Store*>{store.get(), &reference}) {
      ASSERT_TRUE(s->Put(Table::kReplies, reply, value).ok());
    }
    const std::string scripted_reply = "x" + reply;
    const CheckKeys scripted_keys{"192.0.2.0/" + scripted_reply, "192.0.2.9", "", false,
                                  scripted_reply};
    ASSERT_TRUE(store->Put(Table::kReplies, scripted_reply, value).ok());
    auto scripted = RunCheckScriptOn(*server_, scripted_keys, now, timing);
    Outcome got = CheckWithin(*store, keys, now);
    Outcome want = CheckWithin(reference, keys, now);
    ASSERT_TRUE(got.result && got.result->ok())
        << (got.result ? got.result->status().message() : "no answer");
    EXPECT_EQ(got.result->value().reason, want.result->value().reason);
    ASSERT_TRUE(scripted.ok()) << scripted.status().message();
    EXPECT_EQ(scripted->reason, want.result->value().reason);
    auto got_record = RecordWithin(*store, reply, now);
    auto want_record = RecordWithin(reference, reply, now);
    ASSERT_TRUE(got_record.ok()) << got_record.status().message();
    EXPECT_EQ(*got_record, *want_record);
  }
}

// Fields beyond 2^53 cannot be exact in Redis' Lua: the codec (policy::kMaxRecordField)
// makes such records malformed for every backend, and the script follows it.
TEST_F(RedisStoreTest, FieldsBeyondTwoToThe53AreMalformed) {
  auto store = Open(OptionsFor(server_->port()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Put(Table::kTriplets, "k", "9007199254740992,1800000000").ok());
  ASSERT_TRUE(store->Put(Table::kClients, "c", "9007199254740992,1800000000").ok());
  Outcome outcome = CheckWithin(*store, {"k", "c"}, T);
  ASSERT_TRUE(outcome.result && outcome.result->ok()) << outcome.result->status().message();
  EXPECT_FALSE(outcome.result->value().client_awl_pass);
  EXPECT_EQ(outcome.result->value().first, FromUnixSeconds(T));
  EXPECT_EQ(store->Get(Table::kTriplets, "k").value(), "1800000000,1800000000");

  ASSERT_TRUE(store->Put(Table::kTriplets, "sk", "9007199254740992,1800000000").ok());
  ASSERT_TRUE(store->Put(Table::kClients, "sc", "9007199254740992,1800000000").ok());
  auto scripted = RunCheckScriptOn(*server_, {"sk", "sc"}, T, policy::GreylistTiming{});
  ASSERT_TRUE(scripted.ok()) << scripted.status().message();
  EXPECT_FALSE(scripted->client_awl_pass);
  EXPECT_EQ(scripted->first, FromUnixSeconds(T));
  EXPECT_EQ(store->Get(Table::kTriplets, "sk").value(), "1800000000,1800000000");
}

TEST_F(RedisStoreTest, SurvivesAFlushedScriptCache) {
  auto store = Open(OptionsFor(server_->port()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(CheckSucceeds(*store, {"k", "10.0.0.1"}, T));
  ASSERT_EQ(server_->Command({"SCRIPT", "FLUSH"})->str, "OK");
  Outcome outcome = CheckWithin(*store, {"k", "10.0.0.1"}, T + 300);  // NOSCRIPT, then EVAL
  ASSERT_TRUE(outcome.result && outcome.result->ok()) << outcome.result->status().message();
  EXPECT_FALSE(outcome.result->value().greylisted());
  ASSERT_TRUE(store->Put(Table::kTriplets, "old", "1,1").ok());
  ASSERT_EQ(server_->Command({"SCRIPT", "FLUSH"})->str, "OK");
  EXPECT_EQ(store->ExpireSome(FromUnixSeconds(T), 10).value(), 1u);  // the delete script, too
}

// Records without TTL (Put of dead or malformed values, e.g. by a migration) are removed by
// the background sweep.
TEST_F(RedisStoreTest, BackgroundSweepRemovesRecordsWithoutTtl) {
  RedisOptions options = OptionsFor(server_->port());
  options.store.background_expiry = true;
  options.expiry_period = 50ms;
  options.expiry_batch = 2;
  auto store = Open(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Put(Table::kTriplets, "junk", "junk").ok());
  ASSERT_TRUE(store->Put(Table::kTriplets, "dead", "1000,1000").ok());
  ASSERT_TRUE(store->Put(Table::kClients, "dead", "3,1000").ok());
  ASSERT_TRUE(store->Put(Table::kTriplets, "live", "1800000000,1800000000").ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto keys = server_->Command({"KEYS", "greylight:*"});
        return keys.ok() && keys->elements.size() == 1;
      },
      10s));
  EXPECT_EQ(store->Get(Table::kTriplets, "live").value(), "1800000000,1800000000");
}

// A server that is not the master (here: a plain URI pointing at a replica) answers
// READONLY: the request fails and the store reconnects, without crashing or hanging.
TEST_F(RedisStoreTest, ReadOnlyReplicaFailsRequests) {
  auto replica = RedisServer::StartReplica(server_->port());
  ASSERT_TRUE(replica.ok()) << replica.status().message();
  RedisOptions options = OptionsFor((*replica)->port());
  auto store = Open(options);
  ASSERT_TRUE(store);
  for (int i = 0; i < 3; ++i) {
    Outcome outcome = CheckWithin(*store, {"k", ""}, T);
    ASSERT_TRUE(outcome.result);
    ASSERT_FALSE(outcome.result->ok());
    EXPECT_EQ(outcome.result->status().code(), Status::Code::kUnavailable);
  }
  EXPECT_TRUE(CheckSucceeds(*Open(OptionsFor(server_->port())), {"k", ""}, T));
}

// Many requests in flight share round trips (pipelining) and all get their answer.
TEST_F(RedisStoreTest, QueuedChecksArePipelined) {
  auto store = Open(OptionsFor(server_->port()));
  ASSERT_TRUE(store);
  constexpr int kRequests = 2000;
  std::mutex mutex;
  std::condition_variable all_done;
  int done = 0, failed = 0;
  for (int i = 0; i < kRequests; ++i) {
    store->Check({fmt::format("triplet{}", i), "10.0.0.1"}, FromUnixSeconds(T),
                 [&](Result<policy::Transition> r) {
                   std::lock_guard lock(mutex);
                   if (!r.ok()) ++failed;
                   if (++done == kRequests) all_done.notify_one();
                 });
  }
  std::unique_lock lock(mutex);
  ASSERT_TRUE(all_done.wait_for(lock, 30s, [&] { return done == kRequests; }));
  EXPECT_EQ(failed, 0);
  ASSERT_TRUE(store->Stats().round_trips.has_value());
  EXPECT_LT(*store->Stats().round_trips, static_cast<uint64_t>(kRequests / 2));
}

// A check reads its records with one MGET and decides in C++: a pass within the last-seen
// refresh window writes nothing, a new triplet is created with SET NX, and an update is
// committed by the compare-and-set script; the check script runs for none of them.
TEST_F(RedisStoreTest, ChecksDecideOnAReadAndCommitWithoutTheCheckScript) {
  auto store = Open(OptionsFor(server_->port()));
  ASSERT_TRUE(store);
  const CheckKeys keys{"192.0.2.0/a@b/c@d", "192.0.2.1"};
  auto calls = [&](std::string_view command) {
    auto stats = server_->Command({"INFO", "commandstats"});
    EXPECT_TRUE(stats.ok());
    std::string text = stats.ok() ? stats->str : "";
    std::string field = fmt::format("cmdstat_{}:calls=", command);
    size_t at = text.find(field);
    return at == std::string::npos ? 0L : std::stol(text.substr(at + field.size()));
  };
  auto expect_counts = [&](uint64_t scriptless, long evalsha, long set) {
    EXPECT_EQ(store->Stats().scriptless_checks, scriptless);
    EXPECT_EQ(store->Stats().check_script_runs, 0u);
    EXPECT_EQ(calls("evalsha"), evalsha);
    EXPECT_EQ(calls("set"), set);  // the script's own SETs count too
  };
  auto stored = [&] { return server_->Command({"GET", "greylight:t:192.0.2.0/a@b/c@d"})->str; };

  Outcome created = CheckWithin(*store, keys, T);
  ASSERT_TRUE(created.result && created.result->ok());
  EXPECT_EQ((*created.result)->reason, policy::Reason::kNew);
  expect_counts(1, 0, 1);
  EXPECT_EQ(stored(), "1800000000,1800000000");

  // Passes: the triplet and the client's auto-whitelist count, committed together.
  ASSERT_TRUE(CheckSucceeds(*store, keys, T + 300));
  expect_counts(2, 1, 3);
  EXPECT_EQ(server_->Command({"GET", "greylight:c:192.0.2.1"})->str, "1,1800000300");
  EXPECT_EQ(stored(), "1800000000,1800000300");
  long long ttl = Ttl(*server_, "greylight:t:192.0.2.0/a@b/c@d");
  EXPECT_LE(ttl, 35 * 86400 + 1);  // policy::ExpiresAt of a passed triplet, on the system clock
  EXPECT_GT(ttl, 35 * 86400 + 1 - 3600);

  Outcome again = CheckWithin(*store, keys, T + 310);
  ASSERT_TRUE(again.result && again.result->ok());
  EXPECT_EQ((*again.result)->reason, policy::Reason::kPassed);
  EXPECT_FALSE((*again.result)->triplet_write.has_value());
  expect_counts(3, 1, 3);
  EXPECT_EQ(stored(), "1800000000,1800000300");

  // 61 s after the last write the record is due for its refresh: committed again.
  Outcome refresh = CheckWithin(*store, keys, T + 361);
  ASSERT_TRUE(refresh.result && refresh.result->ok());
  EXPECT_EQ((*refresh.result)->reason, policy::Reason::kPassed);
  expect_counts(4, 2, 4);
  EXPECT_EQ(stored(), "1800000000,1800000361");
}

// The compare-and-set script writes only if every key still holds what was read (absent
// compares as absent), and then writes each value with its TTL.
TEST_F(RedisStoreTest, TheCommitScriptWritesOnlyOverWhatWasRead) {
  auto commit = [&](std::vector<std::string> arguments) {
    std::vector<std::string> command{"EVAL", std::string(CommitIfUnchangedScript().text), "2", "t",
                                     "c"};
    command.insert(command.end(), arguments.begin(), arguments.end());
    auto reply = server_->Command(command);
    EXPECT_TRUE(reply.ok() && !reply->is_error()) << (reply.ok() ? reply->str : "");
    return reply.ok() ? reply->integer : -1;
  };
  ASSERT_EQ(server_->Command({"SET", "t", "1,1"})->str, "OK");
  // The triplet changed since it was read: nothing is written.
  EXPECT_EQ(commit({"1", "1,0", "1,2", "100", "0", "", "5,2", "200"}), 0);
  // The client was read absent but is there now.
  ASSERT_EQ(server_->Command({"SET", "c", "4,1"})->str, "OK");
  EXPECT_EQ(commit({"1", "1,1", "1,2", "100", "0", "", "5,2", "200"}), 0);
  EXPECT_EQ(server_->Command({"GET", "t"})->str, "1,1");
  EXPECT_EQ(server_->Command({"GET", "c"})->str, "4,1");
  // Both as read: both written, each with its TTL; a key read but not written stays.
  EXPECT_EQ(commit({"1", "1,1", "1,2", "100", "1", "4,1", "5,2", "200"}), 1);
  EXPECT_EQ(server_->Command({"GET", "t"})->str, "1,2");
  EXPECT_EQ(server_->Command({"GET", "c"})->str, "5,2");
  EXPECT_EQ(Ttl(*server_, "t"), 100);
  EXPECT_EQ(Ttl(*server_, "c"), 200);
  EXPECT_EQ(commit({"1", "1,2", "", "0", "1", "5,2", "6,3", "300"}), 1);
  EXPECT_EQ(server_->Command({"GET", "t"})->str, "1,2");
  EXPECT_EQ(server_->Command({"GET", "c"})->str, "6,3");
  // A key of another type reads as absent (MGET reads nil there too).
  ASSERT_TRUE(server_->Command({"DEL", "c"}).ok());
  ASSERT_TRUE(server_->Command({"LPUSH", "c", "x"}).ok());
  EXPECT_EQ(commit({"1", "1,2", "", "0", "0", "", "1,3", "300"}), 1);
  EXPECT_EQ(server_->Command({"GET", "c"})->str, "1,3");
}

// Many stores passing the same triplets at the same instant (their reads all see them
// pending): each triplet is written by exactly one check; the others find it changed,
// and the check script, deciding again, finds a pass that needs no write.
TEST_F(RedisStoreTest, RacingUpdatesOfOneTripletCommitOnce) {
  constexpr int kStores = 4;
  constexpr int kTriplets = 200;
  std::vector<std::unique_ptr<Store>> stores = OpenStores(kStores);
  ASSERT_EQ(stores.size(), size_t{kStores});
  for (int t = 0; t < kTriplets; ++t) {
    ASSERT_TRUE(stores[0]
                    ->Put(Table::kTriplets, fmt::format("triplet{}", t), "1800000000,1800000000")
                    .ok());
  }
  int failed = 0, greylisted = 0;
  std::map<int, int> writers;
  ASSERT_TRUE(RaceOnTriplets(
      stores, kTriplets, [](int, int) { return T + 300; },
      [&](int t, long long, const Result<policy::Transition>& r) {
        if (!r.ok()) return void(++failed);
        if (r->greylisted()) ++greylisted;
        if (r->triplet_write) ++writers[t];
      }));
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(greylisted, 0);
  for (int t = 0; t < kTriplets; ++t) {
    EXPECT_EQ(writers[t], 1) << "triplet" << t;
    EXPECT_EQ(stores[0]->Get(Table::kTriplets, fmt::format("triplet{}", t)).value(),
              "1800000000,1800000300");
  }
  uint64_t reruns = 0;
  for (auto& store : stores) reruns += store->Stats().check_script_runs.value_or(0);
  std::cout << "checks that found their triplet changed and ran the check script: " << reruns
            << " of " << kStores * kTriplets << "\n";
}

// What another host wrote since (a trap, a deletion, the same new triplet) decides.
TEST_F(RedisStoreTest, AReadSeesWhatOtherHostsChanged) {
  auto store = Open(OptionsFor(server_->port()));
  ASSERT_TRUE(store);
  CheckKeys keys{"192.0.2.0/a@b/c@d", "192.0.2.1", "192.0.2.1"};
  ASSERT_TRUE(CheckSucceeds(*store, keys, T));
  ASSERT_TRUE(CheckSucceeds(*store, keys, T + 300));

  // Another host trapped the client: the read finds the trap, which writes nothing.
  ASSERT_TRUE(store->Put(Table::kTraps, "192.0.2.1", "1800003600,1800000305").ok());
  Outcome trapped = CheckWithin(*store, keys, T + 310);
  ASSERT_TRUE(trapped.result && trapped.result->ok());
  EXPECT_EQ((*trapped.result)->reason, policy::Reason::kGreytrap);
  EXPECT_TRUE((*trapped.result)->greylisted());
  ASSERT_TRUE(store->Delete(Table::kTraps, "192.0.2.1").ok());

  // An admin deleted the triplet: it is new again.
  ASSERT_TRUE(store->Delete(Table::kTriplets, keys.triplet).ok());
  Outcome deleted = CheckWithin(*store, keys, T + 320);
  ASSERT_TRUE(deleted.result && deleted.result->ok());
  EXPECT_EQ((*deleted.result)->reason, policy::Reason::kNew);
  EXPECT_EQ(server_->Command({"GET", "greylight:t:192.0.2.0/a@b/c@d"})->str,
            "1800000320,1800000320");
}

// Many stores racing on new triplets (the reads of several see them absent): each triplet
// is created once, and every other check finds it, through the script.
TEST_F(RedisStoreTest, RacingCreatorsOfOneTripletCreateItOnce) {
  constexpr int kStores = 4;
  constexpr int kTriplets = 200;
  std::vector<std::unique_ptr<Store>> stores = OpenStores(kStores);
  ASSERT_EQ(stores.size(), size_t{kStores});
  int failed = 0;
  std::map<int, int> new_answers;
  // Each store at its own instant: only the creator sees the triplet first seen "now".
  ASSERT_TRUE(RaceOnTriplets(
      stores, kTriplets, [](int i, int t) { return T + 10 * t + i; },
      [&](int t, long long now, const Result<policy::Transition>& r) {
        if (!r.ok()) return void(++failed);
        if (r->first == FromUnixSeconds(now) && !r->first_corrected) {
          ++new_answers[t];
        }
      }));
  EXPECT_EQ(failed, 0);
  for (int t = 0; t < kTriplets; ++t) EXPECT_EQ(new_answers[t], 1) << "triplet" << t;
}

TEST_F(RedisStoreTest, SynchronousCallsFromACheckCallbackAreRefused) {
  auto store = Open(OptionsFor(server_->port()));
  ASSERT_TRUE(store);
  std::optional<Status> inner;
  std::mutex mutex;
  std::condition_variable done;
  store->Check({"k", ""}, FromUnixSeconds(T), [&](Result<policy::Transition>) {
    auto value = store->Get(Table::kTriplets, "k");
    std::lock_guard lock(mutex);
    inner = value.status();
    done.notify_one();
  });
  std::unique_lock lock(mutex);
  ASSERT_TRUE(done.wait_for(lock, 5s, [&] { return inner.has_value(); }));
  EXPECT_EQ(inner->code(), Status::Code::kBusy);
}

// Redis dies: requests fail within the timeout (the engine then answers DUNNO), nothing
// hangs or crashes; Redis returns on the same port: the same store resumes by itself.
TEST_F(RedisStoreTest, ResumesAfterRedisIsKilledAndRestarted) {
  RedisOptions options = OptionsFor(server_->port());
  options.store.timeout = 200ms;
  auto store = Open(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(CheckSucceeds(*store, {"k", "10.0.0.1"}, T));

  server_->Kill();
  for (int i = 0; i < 20; ++i) {
    Outcome outcome = CheckWithin(*store, {"k", "10.0.0.1"}, T + i);
    ASSERT_TRUE(outcome.result) << "no answer within 5 s while Redis is down";
    EXPECT_FALSE(outcome.result->ok());
    EXPECT_EQ(outcome.result->status().code(), Status::Code::kUnavailable);
    EXPECT_LE(outcome.elapsed, 2 * options.store.timeout + 100ms) << "request " << i;
  }
  EXPECT_FALSE(store->Get(Table::kTriplets, "k").ok());
  EXPECT_FALSE(Connected(*store));

  ASSERT_TRUE(server_->Restart().ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return CheckSucceeds(*store, {"k", "10.0.0.1"}, T + 100);
      },
      15s))
      << "the store did not reconnect";
  EXPECT_TRUE(Connected(*store));
  EXPECT_EQ(store->Get(Table::kTriplets, "k").value(), "1800000100,1800000100");
}

// An outage logs a few warnings, not one per request, and says how many it left out. The
// store's clock is a FakeClock: the interval passes when the test says so, not by sleeping.
TEST_F(RedisStoreTest, WarningsAreRateLimited) {
  RedisOptions options = OptionsFor(server_->port());
  options.store.timeout = 200ms;
  options.warning_interval = 10s;
  FakeClock clock(FromUnixSeconds(T));
  auto store = Open(options, clock);
  ASSERT_TRUE(store);
  ASSERT_TRUE(CheckSucceeds(*store, {"k", ""}, T));
  server_->Kill();
  log::Flush();  // informational lines buffered earlier must not land in the capture
  testing::internal::CaptureStderr();
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(CheckSucceeds(*store, {"k", ""}, T));
  clock.Advance(options.warning_interval);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(CheckSucceeds(*store, {"k", ""}, T));
  std::string logged = testing::internal::GetCapturedStderr();
  // The outage warnings of this store; other lines (another test's store) do not count.
  size_t lines = 0;
  std::istringstream stream(logged);
  for (std::string line; std::getline(stream, line);) {
    if (line.find(std::to_string(server_->port())) != std::string::npos &&
        line.find("connected to") == std::string::npos) {
      ++lines;
    }
  }
  // One warning when the outage starts, one more once the interval has passed (counting
  // the 99 held back in the first), none in between.
  EXPECT_GE(lines, 2u) << logged;
  EXPECT_LE(lines, 2u) << logged;
  EXPECT_NE(logged.find("(99 similar warnings suppressed)"), std::string::npos) << logged;
}

// Redis hangs (accepts connections, never answers): requests time out instead of waiting.
TEST_F(RedisStoreTest, TimesOutWhileRedisHangsThenResumes) {
  RedisOptions options = OptionsFor(server_->port());
  options.store.timeout = 200ms;
  auto store = Open(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(CheckSucceeds(*store, {"k", ""}, T));

  server_->Suspend();
  for (int i = 0; i < 5; ++i) {
    Outcome outcome = CheckWithin(*store, {"k", ""}, T + i);
    ASSERT_TRUE(outcome.result) << "no answer within 5 s while Redis hangs";
    EXPECT_FALSE(outcome.result->ok());
    // At worst a reconnection attempt (connect, then setup) and the request's own round trip.
    EXPECT_LE(outcome.elapsed, 3 * options.store.timeout + 200ms) << "request " << i;
  }
  server_->Resume();
  EXPECT_TRUE(WaitUntil([&] { return CheckSucceeds(*store, {"k", ""}, T + 10); }, 15s));
}

// Greylightd may start before Redis: opening succeeds, requests fail fast, and the store
// connects once Redis is up.
TEST_F(RedisStoreTest, OpensBeforeRedisIsUp) {
  const int port = testing_support::FreeLoopbackPort();
  RedisOptions options = OptionsFor(port);
  options.store.timeout = 200ms;
  auto store = Open(options);
  ASSERT_TRUE(store);
  EXPECT_FALSE(Connected(*store));
  Outcome outcome = CheckWithin(*store, {"k", ""}, T);
  ASSERT_TRUE(outcome.result);
  EXPECT_EQ(outcome.result->status().code(), Status::Code::kUnavailable);

  auto late = RedisServer::Start({}, port);
  ASSERT_TRUE(late.ok()) << late.status().message();
  EXPECT_TRUE(WaitUntil([&] { return CheckSucceeds(*store, {"k", ""}, T); }, 15s));
}

}  // namespace
}  // namespace greylight::store
