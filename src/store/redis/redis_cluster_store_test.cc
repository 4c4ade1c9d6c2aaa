#include "store/redis/redis_cluster_store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "store/open_store.h"
#include "store/redis/redis_cluster_map.h"
#include "store/redis/redis_keys.h"
#include "store/store_conformance.h"
#include "support/redis_cluster.h"
#include "support/redis_server.h"

namespace greylight::store {
namespace {

using namespace std::chrono_literals;
using testing_support::LocalRedisCluster;
using testing_support::RedisServer;
using testing_support::WaitUntil;

constexpr long long T = 1800000000;
const SystemClock kSystemClock;

// ---- Without a cluster ----------------------------------------------------------------

TEST(RedisClusterMapTest, KeySlotsFollowTheHashTag) {
  // The examples of the Redis Cluster specification.
  EXPECT_EQ(KeySlot("123456789"), 0x31C3 & 16383);
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot("foo{}{bar}"));
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));  // empty first tag: the whole key
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  EXPECT_EQ(KeySlot("gl:t:{192.0.0.0}192.0.2.0/a@b/c@d"), KeySlot("gl:c:{192.0.0.0}192.0.2.7"));
}

RedisReply Reply(RedisReply::Type type, std::string str = "", long long integer = 0,
                 std::vector<RedisReply> elements = {}) {
  RedisReply reply;
  reply.type = type;
  reply.str = std::move(str);
  reply.integer = integer;
  reply.elements = std::move(elements);
  return reply;
}
RedisReply Error(std::string text) { return Reply(RedisReply::Type::kError, std::move(text)); }
RedisReply Integer(long long n) { return Reply(RedisReply::Type::kInteger, "", n); }
RedisReply Array(std::vector<RedisReply> elements) {
  return Reply(RedisReply::Type::kArray, "", 0, std::move(elements));
}

TEST(RedisClusterMapTest, ParsesRedirectionsAndSlotMaps) {
  auto r = ParseRedirection(Error("MOVED 3999 127.0.0.1:6381"));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->ask);
  EXPECT_EQ(r->slot, 3999);
  EXPECT_EQ(r->to, (RedisAddress{"127.0.0.1", 6381}));
  auto ask = ParseRedirection(Error("ASK 3999 ::1:6382"));
  ASSERT_TRUE(ask);
  EXPECT_TRUE(ask->ask);
  EXPECT_EQ(ask->to, (RedisAddress{"::1", 6382}));
  EXPECT_FALSE(ParseRedirection(Error("ERR wrong")));
  EXPECT_FALSE(ParseRedirection(Error("MOVED x 1.2.3.4:5")));

  auto node = [](std::string host, long long port) {
    return Array({Reply(RedisReply::Type::kString, std::move(host)), Integer(port)});
  };
  auto range = [](long long first, long long last, RedisReply master) {
    return Array({Integer(first), Integer(last), std::move(master)});
  };
  RedisReply slots =
      Array({range(0, 8191, node("127.0.0.1", 7001)), range(8192, 16383, node("", 7002))});
  auto map = ParseClusterSlots(slots, RedisAddress{"10.1.1.1", 7000});
  ASSERT_TRUE(map.ok()) << map.status().message();
  ASSERT_EQ(map->masters.size(), 2u);
  EXPECT_EQ(*map->MasterOf(0), (RedisAddress{"127.0.0.1", 7001}));
  EXPECT_EQ(*map->MasterOf(16383), (RedisAddress{"10.1.1.1", 7002}));  // empty host: asked
  EXPECT_FALSE(ParseClusterSlots(Array({range(0, 16384, node("127.0.0.1", 7001))}), {}).ok());
  EXPECT_FALSE(ParseClusterSlots(Error("ERR This instance has cluster support disabled"), {}).ok());
}

// ---- Against a real cluster ------------------------------------------------------------

// One cluster per test process for the tests that do not break it; each store gets a
// prefix of its own.
Result<LocalRedisCluster*> SharedCluster() {
  static Result<std::unique_ptr<LocalRedisCluster>> cluster =
      LocalRedisCluster::Start(/*replicas=*/0);
  if (!cluster.ok()) return cluster.status();
  return cluster->get();
}

RedisClusterOptions OptionsFor(const LocalRedisCluster& cluster, std::string prefix) {
  auto endpoint = ParseRedisUri("redis+cluster://" + cluster.Seeds());
  EXPECT_TRUE(endpoint.ok()) << endpoint.status().message();
  RedisClusterOptions options;
  options.endpoint = endpoint.ok() ? *endpoint : RedisEndpoint{};
  options.store.prefix = std::move(prefix);
  options.store.background_expiry = false;
  options.store.timeout = 2000ms;  // loopback; generous so that a loaded machine is no fault
  return options;
}

class FailingStore final : public Store {
 public:
  explicit FailingStore(std::string why) : why_(std::move(why)) {}
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

std::unique_ptr<Store> CreateForConformance(const policy::GreylistTiming& timing) {
  static std::atomic<int> next_prefix{0};
  auto cluster = SharedCluster();
  if (!cluster.ok()) {
    ADD_FAILURE() << cluster.status().message();
    return std::make_unique<FailingStore>(cluster.status().message());
  }
  RedisClusterOptions options = OptionsFor(**cluster, fmt::format("conformance{}:", next_prefix++));
  options.store.timing = timing;
  auto store = OpenRedisClusterStore(options, kSystemClock);
  if (!store.ok()) {
    ADD_FAILURE() << store.status().message();
    return std::make_unique<FailingStore>(store.status().message());
  }
  return std::move(store.value());
}

INSTANTIATE_TEST_SUITE_P(RedisCluster, StoreConformanceTest,
                         testing::Values(StoreFactory{"redis_cluster", CreateForConformance}),
                         [](const auto& info) { return info.param.name; });

Result<policy::Transition> CheckAndWait(Store& store, const CheckKeys& keys, long long now,
                                        std::chrono::milliseconds limit = 10s) {
  struct Shared {
    std::mutex mutex;
    std::condition_variable done;
    std::optional<Result<policy::Transition>> result;
  };
  auto shared = std::make_shared<Shared>();  // the callback may outlive a timed-out wait
  store.Check(keys, FromUnixSeconds(now), [shared](Result<policy::Transition> r) {
    std::lock_guard lock(shared->mutex);
    shared->result.emplace(std::move(r));
    shared->done.notify_one();
  });
  std::unique_lock lock(shared->mutex);
  if (!shared->done.wait_for(lock, limit, [&] { return shared->result.has_value(); })) {
    return Status::Unavailable("no answer within the limit");
  }
  return *shared->result;
}

// The keys of client `i` (i < 51200): 200 networks, spread over every master's slots.
CheckKeys KeysOf(int i) {
  std::string client = fmt::format("10.{}.{}.7", i % 200, i / 200);
  return CheckKeys{
      fmt::format("10.{}.{}.0/sender{}@example.org/rcpt@example.net", i % 200, i / 200, i), client,
      client};
}

// Counts the keys of `prefix` on each master.
std::map<int, long long> KeysPerMaster(const LocalRedisCluster& cluster,
                                       const std::string& prefix) {
  std::map<int, long long> counts;
  for (RedisServer* master : cluster.Masters()) {
    auto keys = master->Command({"KEYS", prefix + "*"});
    counts[master->port()] = keys.ok() ? static_cast<long long>(keys->elements.size()) : -1;
  }
  return counts;
}

// Two MX hosts (two stores) share state: what one greylisted, the other lets pass after
// the delay, on every master.
TEST(RedisClusterStoreTest, TwoHostsShareStateAcrossSlotsOnAllMasters) {
  auto cluster = SharedCluster();
  ASSERT_TRUE(cluster.ok()) << cluster.status().message();
  auto a = OpenRedisClusterStore(OptionsFor(**cluster, "shared:"), kSystemClock);
  auto b = OpenRedisClusterStore(OptionsFor(**cluster, "shared:"), kSystemClock);
  ASSERT_TRUE(a.ok() && b.ok());
  constexpr int kClients = 300;
  for (int i = 0; i < kClients; ++i) {
    auto first = CheckAndWait(**a, KeysOf(i), T);
    ASSERT_TRUE(first.ok()) << first.status().message();
    EXPECT_TRUE(first->greylisted());
  }
  for (int i = 0; i < kClients; ++i) {
    auto again = CheckAndWait(**b, KeysOf(i), T + 300);
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_FALSE(again->greylisted()) << i;
  }
  std::map<int, long long> counts = KeysPerMaster(**cluster, "shared:");
  ASSERT_EQ(counts.size(), 3u);
  for (auto [port, count] : counts) EXPECT_GT(count, 0) << "master " << port;
  // The tool's view: every record, from every master.
  size_t triplets = 0;
  ASSERT_TRUE((*b)->ForEach(Table::kTriplets, [&](auto, auto) { return ++triplets, true; }).ok());
  EXPECT_EQ(triplets, static_cast<size_t>(kClients));
  EXPECT_EQ((*b)->Stats().connected, true);
}

Result<policy::ReplyRecord> RecordAndWait(Store& store, const std::string& key, long long now) {
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
  if (!shared->done.wait_for(lock, 10s, [&] { return shared->result.has_value(); })) {
    return Status::Unavailable("no answer within the limit");
  }
  return *shared->result;
}

// Reply records hold no client and live on their own slot (the remote domain's): the
// outbound listener of one MX host records them, and a check on another host reads them by
// a separate call before its check script, on whichever master holds each slot.
TEST(RedisClusterStoreTest, ReplyRecordsOnTheirOwnSlotsLetRepliesPassOnAnotherHost) {
  auto cluster = SharedCluster();
  ASSERT_TRUE(cluster.ok()) << cluster.status().message();
  auto submission = OpenRedisClusterStore(OptionsFor(**cluster, "replies:"), kSystemClock);
  auto mx = OpenRedisClusterStore(OptionsFor(**cluster, "replies:"), kSystemClock);
  ASSERT_TRUE(submission.ok() && mx.ok());
  RedisKeyLayout layout("replies:", RedisKeyLayout::Mode::kCluster);
  constexpr int kPairs = 60;
  int other_slot = 0;
  for (int i = 0; i < kPairs; ++i) {
    const std::string reply = fmt::format("carol@remote{}.example/bob@example.org", i);
    const CheckKeys keys{fmt::format("10.{}.0.0/{}", i, reply), fmt::format("10.{}.0.7", i),
                         fmt::format("10.{}.0.7", i), false, reply};
    auto recorded = RecordAndWait(**submission, reply, T);
    ASSERT_TRUE(recorded.ok()) << recorded.status().message();
    auto passed = CheckAndWait(**mx, keys, T + 60);
    ASSERT_TRUE(passed.ok()) << passed.status().message();
    EXPECT_EQ(passed->reason, policy::Reason::kReply) << reply;
    CheckKeys stranger = keys;
    stranger.triplet = fmt::format("10.{}.0.0/mallory@remote{}.example/bob@example.org", i, i);
    stranger.reply = fmt::format("mallory@remote{}.example/bob@example.org", i);
    auto greylisted = CheckAndWait(**mx, stranger, T + 60);
    ASSERT_TRUE(greylisted.ok()) << greylisted.status().message();
    EXPECT_EQ(greylisted->reason, policy::Reason::kNew);
    if (KeySlot(layout.Key(Table::kReplies, reply)) !=
        KeySlot(layout.Key(Table::kTriplets, keys.triplet))) {
      ++other_slot;
    }
  }
  EXPECT_GT(other_slot, kPairs / 2) << "the test must exercise the separate read";
  // The reply records are spread over the masters, and the tool's walk finds them all.
  size_t masters_with_replies = 0;
  for (RedisServer* master : (*cluster)->Masters()) {
    auto keys = master->Command({"KEYS", "replies:r:*"});
    ASSERT_TRUE(keys.ok()) << keys.status().message();
    masters_with_replies += keys->elements.empty() ? 0 : 1;
  }
  EXPECT_EQ(masters_with_replies, 3u);
  size_t replies = 0;
  ASSERT_TRUE((*mx)->ForEach(Table::kReplies, [&](auto, auto) { return ++replies, true; }).ok());
  EXPECT_EQ(replies, static_cast<size_t>(kPairs));
}

// The store through OpenStore and its URI, with a password.
TEST(RedisClusterStoreTest, OpensFromTheUri) {
  auto cluster = SharedCluster();
  ASSERT_TRUE(cluster.ok()) << cluster.status().message();
  StoreConfig config;
  config.uri = "redis+cluster://" + (*cluster)->Seeds();
  config.prefix = "uri:";
  config.background_expiry = false;
  auto store = OpenStore(config, kSystemClock);
  ASSERT_TRUE(store.ok()) << store.status().message();
  ASSERT_TRUE(CheckAndWait(**store, KeysOf(1), T).ok());
  EXPECT_EQ((*store)->Get(Table::kClients, KeysOf(1).client).value(), std::nullopt);
  EXPECT_TRUE((*store)->Get(Table::kTriplets, KeysOf(1).triplet).value());
  config.prefix = "bad{prefix}:";
  auto refused = OpenStore(config, kSystemClock);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
}

// Load from a few threads, each remembering what was acknowledged.
class Load {
 public:
  Load(Store& store, int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, &store, t] {
        for (int i = t; !stop_.load() && i < kMaxRequests; i += kThreads) {
          auto result = CheckAndWait(store, KeysOf(i), T);
          std::lock_guard lock(mutex_);
          if (result.ok()) {
            acknowledged_.insert(i);
          } else {
            failures_.push_back(result.status().message());
          }
        }
      });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  std::set<int> acknowledged() {
    std::lock_guard lock(mutex_);
    return acknowledged_;
  }
  std::vector<std::string> failures() {
    std::lock_guard lock(mutex_);
    return failures_;
  }
  static constexpr int kThreads = 4;
  static constexpr int kMaxRequests = 40000;  // bounds the load whatever happens

 private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::set<int> acknowledged_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

// A slot moves to another master (redis-cli --cluster reshard) while checks run: every
// check is answered (ASK, TRYAGAIN and MOVED are followed) and no record is lost.
TEST(RedisClusterStoreTest, ReshardUnderLoadLosesNothing) {
  auto started = LocalRedisCluster::Start(/*replicas=*/0);
  ASSERT_TRUE(started.ok()) << started.status().message();
  LocalRedisCluster& cluster = **started;
  auto store = OpenRedisClusterStore(OptionsFor(cluster, "reshard:"), kSystemClock);
  ASSERT_TRUE(store.ok()) << store.status().message();
  std::vector<RedisServer*> masters = cluster.Masters();
  ASSERT_EQ(masters.size(), 3u);
  auto from = masters[0]->Command({"CLUSTER", "MYID"});
  auto to = masters[1]->Command({"CLUSTER", "MYID"});
  ASSERT_TRUE(from.ok() && to.ok());

  Load load(**store, Load::kThreads);
  ASSERT_TRUE(WaitUntil([&] { return load.acknowledged().size() >= 200; }, 30s));
  Status moved = cluster.RunCli({"redis-cli", "--cluster", "reshard",
                                 "127.0.0.1:" + std::to_string(masters[0]->port()),
                                 "--cluster-from", from->str, "--cluster-to", to->str,
                                 "--cluster-slots", "1000", "--cluster-yes"});
  load.Stop();
  ASSERT_TRUE(moved.ok()) << moved.message();
  EXPECT_TRUE(load.failures().empty())
      << load.failures().size() << " failed, first: " << load.failures().front();
  std::set<int> acknowledged = load.acknowledged();
  for (int i : acknowledged) {
    auto value = (*store)->Get(Table::kTriplets, KeysOf(i).triplet);
    ASSERT_TRUE(value.ok()) << value.status().message();
    EXPECT_EQ(*value, "1800000000,1800000000") << "record " << i << " lost";
  }
}

// A master is killed under load: requests for its slots fail fast (the daemon answers
// DUNNO), its replica is promoted, and decisions resume with every record that was
// acknowledged and replicated (WAIT) before the kill.
TEST(RedisClusterStoreTest, MasterKilledUnderLoadFailsOverWithoutLoss) {
  auto started = LocalRedisCluster::Start();
  ASSERT_TRUE(started.ok()) << started.status().message();
  LocalRedisCluster& cluster = **started;
  RedisClusterOptions options = OptionsFor(cluster, "failover:");
  options.store.timeout = 500ms;
  auto store = OpenRedisClusterStore(options, kSystemClock);
  ASSERT_TRUE(store.ok()) << store.status().message();
  std::vector<RedisServer*> masters = cluster.Masters();
  ASSERT_EQ(masters.size(), 3u);
  RedisServer* victim = masters[2];

  Load load(**store, Load::kThreads);
  ASSERT_TRUE(WaitUntil([&] { return load.acknowledged().size() >= 300; }, 30s));
  std::set<int> before = load.acknowledged();
  // Everything acknowledged so far is on the victim's replica once the replica has
  // acknowledged the master's replication offset of now.
  auto info_field = [&](std::string_view name) -> long long {
    auto info = victim->Command({"INFO", "replication"});
    if (!info.ok()) return -1;
    size_t at = info->str.find(name);
    if (at == std::string::npos) return -1;
    return std::atoll(info->str.c_str() + at + name.size());
  };
  const long long offset = info_field("master_repl_offset:");
  ASSERT_GT(offset, 0);
  ASSERT_TRUE(WaitUntil([&] { return info_field(",offset=") >= offset; }, 10s))
      << "the replica did not catch up";
  victim->Kill();

  // Requests for the dead master's slots fail (the daemon answers DUNNO), and fail fast;
  // of 50 clients, some are on its slots (each with odds 1/3).
  int failed = 0;
  for (int i = 0; i < 50; ++i) {
    auto sent = std::chrono::steady_clock::now();
    auto result = CheckAndWait(**store, KeysOf(Load::kMaxRequests + 200 + i), T, 10s);
    EXPECT_LT(std::chrono::steady_clock::now() - sent, 5s) << "request " << i;
    if (!result.ok()) {
      EXPECT_EQ(result.status().code(), Status::Code::kUnavailable) << result.status().message();
      ++failed;
    }
  }
  EXPECT_GT(failed, 0) << "no request met the dead master";

  ASSERT_TRUE(WaitUntil([&] { return cluster.Healthy(); }, 30s)) << "no failover";
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (int i = 0; i < 200; ++i) {
          if (!CheckAndWait(**store, KeysOf(Load::kMaxRequests + i), T + 1).ok()) return false;
        }
        return true;
      },
      30s))
      << "decisions did not resume on every slot";
  load.Stop();
  for (int i : before) {
    auto value = (*store)->Get(Table::kTriplets, KeysOf(i).triplet);
    ASSERT_TRUE(value.ok()) << value.status().message();
    EXPECT_EQ(*value, "1800000000,1800000000") << "acknowledged record " << i << " lost";
  }
}

}  // namespace
}  // namespace greylight::store
