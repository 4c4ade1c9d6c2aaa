#include "store/store_conformance.h"

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "store/memory_store.h"

namespace greylight::store {
namespace {

constexpr long long T = 1800000000;

// The keys are shaped as greylightd builds them (engine/request_keys.h): a triplet's client
// part is its client's network, so on a cluster every key of one check is in one slot.

policy::Transition CheckNow(Store& store, const CheckKeys& keys, long long now) {
  std::optional<Result<policy::Transition>> result;
  std::mutex mutex;
  std::condition_variable done;
  store.Check(keys, FromUnixSeconds(now), [&](Result<policy::Transition> r) {
    std::lock_guard lock(mutex);
    result.emplace(std::move(r));
    done.notify_one();
  });
  std::unique_lock lock(mutex);
  done.wait(lock, [&] { return result.has_value(); });
  EXPECT_TRUE(result->ok()) << result->status().message();
  return result->ok() ? result->value() : policy::Transition{};
}

policy::ReplyRecord RecordNow(Store& store, std::string_view key, long long now) {
  std::optional<Result<policy::ReplyRecord>> result;
  std::mutex mutex;
  std::condition_variable done;
  store.RecordReply(key, FromUnixSeconds(now), [&](Result<policy::ReplyRecord> r) {
    std::lock_guard lock(mutex);
    result.emplace(std::move(r));
    done.notify_one();
  });
  std::unique_lock lock(mutex);
  done.wait(lock, [&] { return result.has_value(); });
  EXPECT_TRUE(result->ok()) << result->status().message();
  return result->ok() ? result->value() : policy::ReplyRecord{};
}

std::optional<std::string> GetValue(Store& store, Table table, std::string_view key) {
  auto value = store.Get(table, key);
  EXPECT_TRUE(value.ok()) << value.status().message();
  return value.ok() ? *value : std::nullopt;
}

TEST_P(StoreConformanceTest, NewTripletIsWritten) {
  auto store = Create();
  policy::Transition t = CheckNow(*store, {"192.0.2.0/a@b/c@d", "192.0.2.4"}, T);
  EXPECT_TRUE(t.greylisted());
  EXPECT_EQ(t.first, FromUnixSeconds(T));
  EXPECT_EQ(GetValue(*store, Table::kTriplets, "192.0.2.0/a@b/c@d"), "1800000000,1800000000");
  EXPECT_EQ(GetValue(*store, Table::kClients, "192.0.2.4"), std::nullopt);
}

TEST_P(StoreConformanceTest, PassAfterDelayCountsClient) {
  auto store = Create();
  CheckNow(*store, {"192.0.2.0/k", "192.0.2.4"}, T);
  policy::Transition t = CheckNow(*store, {"192.0.2.0/k", "192.0.2.4"}, T + 300);
  EXPECT_FALSE(t.greylisted());
  EXPECT_FALSE(t.last_was_successful);
  EXPECT_EQ(GetValue(*store, Table::kTriplets, "192.0.2.0/k"), "1800000000,1800000300");
  EXPECT_EQ(GetValue(*store, Table::kClients, "192.0.2.4"), "1,1800000300");
  t = CheckNow(*store, {"192.0.2.0/k", "192.0.2.4"}, T + 400);
  EXPECT_TRUE(t.last_was_successful);
}

TEST_P(StoreConformanceTest, NoClientKeyMeansNoClientRecord) {
  auto store = Create();
  CheckNow(*store, {"192.0.2.0/k", ""}, T);
  CheckNow(*store, {"192.0.2.0/k", ""}, T + 300);
  bool any = false;
  ASSERT_TRUE(store->ForEach(Table::kClients, [&](auto, auto) { return any = true; }).ok());
  EXPECT_FALSE(any);
}

// A trap hit puts the client on the trap list; while it is there every triplet is
// greylisted (even one that passed) and nothing but the trap record is written.
TEST_P(StoreConformanceTest, GreytrapHitTrapsTheClientUntilTheTtl) {
  policy::GreylistTiming timing;
  timing.trap_ttl = Seconds(3600);
  auto store = Create(timing);
  const CheckKeys keys{"192.0.2.0/k", "192.0.2.4", "192.0.2.4"};
  CheckNow(*store, keys, T);
  EXPECT_FALSE(CheckNow(*store, keys, T + 300).greylisted());
  EXPECT_EQ(GetValue(*store, Table::kTriplets, "192.0.2.0/k"), "1800000000,1800000300");

  CheckKeys hit{"192.0.2.0/to-trap", "192.0.2.4", "192.0.2.4", /*trap_hit=*/true};
  policy::Transition t = CheckNow(*store, hit, T + 400);
  EXPECT_TRUE(t.trapped);
  EXPECT_TRUE(t.greylisted());
  EXPECT_EQ(t.missing, Seconds(3600));
  EXPECT_EQ(GetValue(*store, Table::kTraps, "192.0.2.4"), "1800004000,1800000400");
  EXPECT_EQ(GetValue(*store, Table::kTriplets, "192.0.2.0/to-trap"), std::nullopt);

  t = CheckNow(*store, keys, T + 500);
  EXPECT_TRUE(t.trapped);
  EXPECT_EQ(t.missing, Seconds(3500));
  EXPECT_EQ(GetValue(*store, Table::kTriplets, "192.0.2.0/k"),
            "1800000000,1800000300");  // untouched
  EXPECT_EQ(GetValue(*store, Table::kClients, "192.0.2.4"), "1,1800000300");

  // Another client is not affected; without a trap key nothing is trapped.
  EXPECT_FALSE(CheckNow(*store, {"192.0.2.0/k", "192.0.2.4"}, T + 600).trapped);
  EXPECT_FALSE(CheckNow(*store, {"192.0.2.0/k5", "192.0.2.5", "192.0.2.5"}, T + 600).trapped);

  t = CheckNow(*store, keys, T + 4000);
  EXPECT_FALSE(t.trapped);
  EXPECT_FALSE(t.greylisted());
  EXPECT_TRUE(t.last_was_successful);
}

// The keys of inbound mail from carol@remote.example to bob@example.org, a reply to bob's
// message to carol (its reply key is the one bob's outbound message recorded).
const std::string kReplyKey = "carol@remote.example/bob@example.org";
CheckKeys ReplyCheckKeys(std::string reply = kReplyKey) {
  return CheckKeys{"192.0.2.0/carol@remote.example/bob@example.org", "192.0.2.4", "192.0.2.4",
                   /*trap_hit=*/false, std::move(reply)};
}

// Each outbound message counts and moves the record on; inbound mail of the pair passes
// (reason reply) until max-age after the last one, writing nothing.
TEST_P(StoreConformanceTest, RecordedRepliesPassUntilMaxAgeAfterTheLastMessage) {
  policy::GreylistTiming timing;
  timing.max_age = Seconds(86400);
  auto store = Create(timing);
  EXPECT_EQ(RecordNow(*store, kReplyKey, T), (policy::ReplyRecord{1, FromUnixSeconds(T)}));
  EXPECT_EQ(RecordNow(*store, kReplyKey, T + 60),
            (policy::ReplyRecord{2, FromUnixSeconds(T + 60)}));
  EXPECT_EQ(GetValue(*store, Table::kReplies, kReplyKey), "2,1800000060");

  policy::Transition t = CheckNow(*store, ReplyCheckKeys(), T + 120);
  EXPECT_EQ(t.reason, policy::Reason::kReply);
  EXPECT_FALSE(t.greylisted());
  EXPECT_EQ(GetValue(*store, Table::kTriplets, ReplyCheckKeys().triplet), std::nullopt);
  EXPECT_EQ(GetValue(*store, Table::kClients, "192.0.2.4"), std::nullopt);

  // Another sender to the same user is no reply; nor is mail without a reply key.
  CheckKeys dave = ReplyCheckKeys("dave@remote.example/bob@example.org");
  dave.triplet = "192.0.2.0/dave@remote.example/bob@example.org";
  EXPECT_EQ(CheckNow(*store, dave, T + 120).reason, policy::Reason::kNew);
  CheckKeys no_reply = ReplyCheckKeys("");
  no_reply.triplet = "192.0.2.0//bob@example.org";
  EXPECT_EQ(CheckNow(*store, no_reply, T + 120).reason, policy::Reason::kNew);

  // Live for max-age after the last message, then gone: the pair is greylisted again, and
  // the next outbound message starts the count over.
  EXPECT_EQ(CheckNow(*store, ReplyCheckKeys(), T + 60 + 86400).reason, policy::Reason::kReply);
  EXPECT_EQ(CheckNow(*store, ReplyCheckKeys(), T + 60 + 86401).reason, policy::Reason::kNew);
  EXPECT_EQ(RecordNow(*store, kReplyKey, T + 60 + 86401),
            (policy::ReplyRecord{1, FromUnixSeconds(T + 60 + 86401)}));
  EXPECT_EQ(CheckNow(*store, ReplyCheckKeys(), T + 60 + 86402).reason, policy::Reason::kReply);
}

// A malformed reply record counts as absent, for the check and for the next message.
TEST_P(StoreConformanceTest, MalformedReplyRecordsAreAbsent) {
  auto store = Create();
  ASSERT_TRUE(store->Put(Table::kReplies, kReplyKey, "1,2,3").ok());
  EXPECT_EQ(CheckNow(*store, ReplyCheckKeys(), T).reason, policy::Reason::kNew);
  EXPECT_EQ(RecordNow(*store, kReplyKey, T + 1), (policy::ReplyRecord{1, FromUnixSeconds(T + 1)}));
}

// The order of policy::Decide: greytrap list, auto-whitelist, reply, triplet.
TEST_P(StoreConformanceTest, TrapsAndTheAutoWhitelistComeBeforeReplies) {
  policy::GreylistTiming timing;
  timing.trap_ttl = Seconds(3600);
  auto store = Create(timing);
  RecordNow(*store, kReplyKey, T);
  CheckKeys hit = ReplyCheckKeys();
  hit.trap_hit = true;
  policy::Transition t = CheckNow(*store, hit, T + 10);
  EXPECT_EQ(t.reason, policy::Reason::kGreytrap);
  EXPECT_EQ(GetValue(*store, Table::kTraps, "192.0.2.4"), "1800003610,1800000010");
  EXPECT_EQ(CheckNow(*store, ReplyCheckKeys(), T + 20).reason, policy::Reason::kGreytrap);
  EXPECT_EQ(CheckNow(*store, ReplyCheckKeys(), T + 3610).reason, policy::Reason::kReply);

  ASSERT_TRUE(store->Put(Table::kClients, "192.0.2.4", fmt::format("5,{}", T)).ok());
  t = CheckNow(*store, ReplyCheckKeys(), T + 7300);
  EXPECT_EQ(t.reason, policy::Reason::kClientAwl);
  EXPECT_EQ(GetValue(*store, Table::kClients, "192.0.2.4"), "6,1800007300");
}

TEST_P(StoreConformanceTest, RawAccessRoundTrip) {
  auto store = Create();
  ASSERT_TRUE(store->Put(Table::kTriplets, "a", "1,2").ok());
  ASSERT_TRUE(store->Put(Table::kTriplets, "b", "3,4").ok());
  ASSERT_TRUE(store->Put(Table::kClients, "a", "5,6").ok());
  EXPECT_EQ(GetValue(*store, Table::kTriplets, "a"), "1,2");
  EXPECT_EQ(GetValue(*store, Table::kClients, "a"), "5,6");
  std::map<std::string, std::string> seen;
  ASSERT_TRUE(store
                  ->ForEach(Table::kTriplets,
                            [&](std::string_view k, std::string_view v) {
                              seen[std::string(k)] = std::string(v);
                              return true;
                            })
                  .ok());
  EXPECT_EQ(seen, (std::map<std::string, std::string>{{"a", "1,2"}, {"b", "3,4"}}));
  ASSERT_TRUE(store->Delete(Table::kTriplets, "a").ok());
  ASSERT_TRUE(store->Delete(Table::kTriplets, "never-there").ok());
  EXPECT_EQ(GetValue(*store, Table::kTriplets, "a"), std::nullopt);
  EXPECT_EQ(GetValue(*store, Table::kClients, "a"), "5,6");
}

TEST_P(StoreConformanceTest, PutManyStoresEveryRecord) {
  auto store = Create();
  std::vector<std::pair<std::string, std::string>> records;
  for (int i = 0; i < 500; ++i) {
    records.emplace_back(fmt::format("net/s{}@x/r@y", i), fmt::format("{},{}", T, T + i));
  }
  ASSERT_TRUE(store->PutMany(Table::kTriplets, records).ok());
  size_t seen = 0;
  ASSERT_TRUE(store->ForEach(Table::kTriplets, [&](auto, auto) { return ++seen, true; }).ok());
  EXPECT_EQ(seen, records.size());
  EXPECT_EQ(GetValue(*store, Table::kTriplets, "net/s499@x/r@y"), "1800000000,1800000499");
}

TEST_P(StoreConformanceTest, CorruptAndExpiredRecordsAreAbsent) {
  auto store = Create();
  ASSERT_TRUE(store->Put(Table::kTriplets, "192.0.2.0/corrupt", "not,a,record").ok());
  ASSERT_TRUE(store->Put(Table::kTriplets, "192.0.2.0/old", "1000,1000").ok());
  ASSERT_TRUE(store->Put(Table::kClients, "192.0.2.9", "garbage").ok());
  EXPECT_EQ(CheckNow(*store, {"192.0.2.0/corrupt", "192.0.2.9"}, T).first, FromUnixSeconds(T));
  EXPECT_EQ(CheckNow(*store, {"192.0.2.0/old", "192.0.2.9"}, T).first, FromUnixSeconds(T));
  EXPECT_EQ(GetValue(*store, Table::kTriplets, "192.0.2.0/corrupt"), "1800000000,1800000000");
}

TEST_P(StoreConformanceTest, ExpireSomeRemovesOnlyExpiredRecords) {
  policy::GreylistTiming timing;
  auto store = Create(timing);
  const long long day = 86400;
  // live: passed recently; abandoned: never passed, older than the retry window;
  // old: passed, not seen for longer than max-age; pending: recent attempt.
  ASSERT_TRUE(
      store->Put(Table::kTriplets, "live", fmt::format("{},{}", T - 10 * day, T - day)).ok());
  ASSERT_TRUE(
      store->Put(Table::kTriplets, "abandoned", fmt::format("{},{}", T - 3 * day, T - 3 * day + 10))
          .ok());
  ASSERT_TRUE(
      store
          ->Put(Table::kTriplets, "192.0.2.0/old", fmt::format("{},{}", T - 40 * day, T - 36 * day))
          .ok());
  ASSERT_TRUE(store->Put(Table::kTriplets, "pending", fmt::format("{},{}", T - 60, T - 60)).ok());
  ASSERT_TRUE(store->Put(Table::kTriplets, "malformed", "x").ok());
  ASSERT_TRUE(store->Put(Table::kClients, "1.1.1.1", fmt::format("3,{}", T - 36 * day)).ok());
  ASSERT_TRUE(store->Put(Table::kClients, "2.2.2.2", fmt::format("3,{}", T - day)).ok());
  ASSERT_TRUE(store->Put(Table::kTraps, "3.3.3.3", fmt::format("{},{}", T, T - day)).ok());
  ASSERT_TRUE(store->Put(Table::kTraps, "4.4.4.4", fmt::format("{},{}", T + 60, T - 60)).ok());
  ASSERT_TRUE(store->Put(Table::kReplies, "old@x/me@y", fmt::format("2,{}", T - 36 * day)).ok());
  ASSERT_TRUE(store->Put(Table::kReplies, "new@x/me@y", fmt::format("2,{}", T - 34 * day)).ok());
  size_t deleted = 0;
  for (int step = 0; step < 20; ++step) {  // small batches must still cover everything
    auto n = store->ExpireSome(FromUnixSeconds(T), 2);
    ASSERT_TRUE(n.ok()) << n.status().message();
    deleted += *n;
  }
  EXPECT_EQ(deleted, 6u);
  EXPECT_TRUE(GetValue(*store, Table::kTriplets, "live"));
  EXPECT_TRUE(GetValue(*store, Table::kTriplets, "pending"));
  EXPECT_FALSE(GetValue(*store, Table::kTriplets, "abandoned"));
  EXPECT_FALSE(GetValue(*store, Table::kTriplets, "192.0.2.0/old"));
  EXPECT_FALSE(GetValue(*store, Table::kTriplets, "malformed"));
  EXPECT_FALSE(GetValue(*store, Table::kClients, "1.1.1.1"));
  EXPECT_TRUE(GetValue(*store, Table::kClients, "2.2.2.2"));
  EXPECT_FALSE(GetValue(*store, Table::kTraps, "3.3.3.3"));
  EXPECT_TRUE(GetValue(*store, Table::kTraps, "4.4.4.4"));
  EXPECT_FALSE(GetValue(*store, Table::kReplies, "old@x/me@y"));
  EXPECT_TRUE(GetValue(*store, Table::kReplies, "new@x/me@y"));
}

// How the random traffic's keys are built: by subnet (every key of a check shares the
// client's network), or by domain group (--lookup-by=domain: the trap entry is keyed by the
// client's own address, on another cluster slot than the group's triplet and client keys).
enum class KeyShape { kSubnet, kDomainGroup };

// Random traffic over a few keys must give exactly the transitions and records of the
// in-memory reference store. Some requests are outbound messages (RecordReply) whose
// reply keys later inbound requests look up; on a cluster those are on their own slot.
void MatchesReferenceOnRandomTraffic(Store& store_under_test, KeyShape shape,
                                     const policy::GreylistTiming& timing) {
  Store* store = &store_under_test;
  MemoryStore reference(timing);
  const unsigned seed = testing::UnitTest::GetInstance()->random_seed();
  std::mt19937 random(seed);
  long long now = T;
  for (int i = 0; i < 2000; ++i) {
    now += std::uniform_int_distribution<int>(0, 900)(random);
    std::string address = fmt::format("192.0.2.{}", random() % 3);
    std::string group = shape == KeyShape::kSubnet ? "192.0.2.0" : "domain:example.com";
    std::string client = shape == KeyShape::kSubnet ? address : group;
    const unsigned sender = random() % 12;
    if (random() % 10 == 0) {
      std::string reply = fmt::format("s{}@x/r@y", random() % 12);
      ASSERT_EQ(RecordNow(*store, reply, now), RecordNow(reference, reply, now))
          << "seed " << seed << " step " << i;
      continue;
    }
    CheckKeys keys{fmt::format("{}/s{}@x/r@y", group, sender), client, address,
                   /*trap_hit=*/random() % 40 == 0, fmt::format("s{}@x/r@y", sender)};
    policy::Transition got = CheckNow(*store, keys, now);
    policy::Transition want = CheckNow(reference, keys, now);
    ASSERT_EQ(got.reason, want.reason) << "seed " << seed << " step " << i;
    ASSERT_EQ(got.greylisted(), want.greylisted()) << "seed " << seed << " step " << i;
    ASSERT_EQ(got.client_awl_pass, want.client_awl_pass) << "seed " << seed << " step " << i;
    ASSERT_EQ(got.missing, want.missing) << "seed " << seed << " step " << i;
    ASSERT_EQ(got.awl_threshold_reached, want.awl_threshold_reached) << "seed " << seed;
    ASSERT_EQ(got.last_was_successful, want.last_was_successful) << "seed " << seed;
    ASSERT_EQ(got.trapped, want.trapped) << "seed " << seed << " step " << i;
  }
  for (Table table : kAllTables) {
    std::map<std::string, std::string> got, want;
    ASSERT_TRUE(store
                    ->ForEach(table,
                              [&](auto k, auto v) {
                                got[std::string(k)] = std::string(v);
                                return true;
                              })
                    .ok());
    ASSERT_TRUE(reference
                    .ForEach(table,
                             [&](auto k, auto v) {
                               want[std::string(k)] = std::string(v);
                               return true;
                             })
                    .ok());
    EXPECT_EQ(got, want) << TableName(table) << " seed " << seed;
  }
}

policy::GreylistTiming RandomTrafficTiming() {
  policy::GreylistTiming timing;
  timing.retry_window = Seconds(3000);
  timing.awl_threshold = 3;
  timing.trap_ttl = Seconds(2000);
  timing.max_age = Seconds(200000);  // reply records and triplets expire during the run
  return timing;
}

TEST_P(StoreConformanceTest, MatchesReferenceOnRandomTraffic) {
  auto store = Create(RandomTrafficTiming());
  MatchesReferenceOnRandomTraffic(*store, KeyShape::kSubnet, RandomTrafficTiming());
}

TEST_P(StoreConformanceTest, MatchesReferenceOnRandomTrafficGroupedByDomain) {
  auto store = Create(RandomTrafficTiming());
  MatchesReferenceOnRandomTraffic(*store, KeyShape::kDomainGroup, RandomTrafficTiming());
}

// Concurrent checks of one triplet: exactly one may find it absent. A store whose
// read-decide-write is not atomic lets two threads both see "absent".
TEST_P(StoreConformanceTest, ConcurrentChecksDoNotLoseUpdates) {
  auto store = Create();
  constexpr int kThreads = 4;
  constexpr int kChecksPerThread = 200;
  std::atomic<long long> clock{T};
  std::atomic<int> saw_absent{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kChecksPerThread; ++j) {
        long long now = clock.fetch_add(1);
        policy::Transition t = CheckNow(*store, {"192.0.2.0/shared", "192.0.2.1"}, now);
        if (t.first == FromUnixSeconds(now) && !t.first_corrected) saw_absent.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(saw_absent.load(), 1);
  auto value = GetValue(*store, Table::kTriplets, "192.0.2.0/shared");
  ASSERT_TRUE(value);
  EXPECT_TRUE(policy::DecodeTriplet(*value));
}

}  // namespace
}  // namespace greylight::store
