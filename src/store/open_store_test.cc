#include "store/open_store.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "support/redis_server.h"
#include "support/temp_dir.h"

namespace greylight::store {
namespace {

using namespace std::chrono_literals;
using testing_support::RedisServer;
using testing_support::TempDir;

constexpr long long T = 1800000000;
const FakeClock kClock(FromUnixSeconds(T));

Result<policy::Transition> CheckAndWait(Store& store, const CheckKeys& keys, long long now) {
  std::mutex mutex;
  std::condition_variable done;
  std::optional<Result<policy::Transition>> result;
  store.Check(keys, FromUnixSeconds(now), [&](Result<policy::Transition> r) {
    std::lock_guard lock(mutex);
    result.emplace(std::move(r));
    done.notify_one();
  });
  std::unique_lock lock(mutex);
  // Every backend answers within its own bounds; this only keeps a broken one from hanging.
  if (!done.wait_for(lock, 10s, [&] { return result.has_value(); })) {
    return Status::Unavailable("no answer within 10 s");
  }
  return *result;
}

TEST(OpenStoreTest, BadUrisAreInvalidArguments) {
  struct Case {
    const char* uri;
    const char* problem;
  };
  for (const Case& c : {
           Case{"", "empty store URI"},
           Case{"/var/lib/greylight", "unknown store '/var/lib/greylight'"},
           Case{"mysql://db/greylight", "unknown store 'mysql://db/greylight'"},
           Case{"lmdb://host/path", "lmdb: takes a path, not a host"},
           Case{"redis:host", "expected redis://"},
           Case{"redis://host:99999", "bad port '99999'"},
           Case{"redis://host/db0", "bad database number 'db0'"},
           Case{"redis+unix://relative.sock", "must be absolute"},
           Case{"redis+sentinel://10.0.0.1:26379", "missing master name"},
           Case{"redis+sentinel://10.0.0.1/m?pasword=x", "unknown query parameter 'pasword'"},
       }) {
    StoreConfig config;
    config.uri = c.uri;
    config.dbdir = "/nonexistent";
    auto store = OpenStore(config, kClock);
    ASSERT_FALSE(store.ok()) << c.uri;
    EXPECT_EQ(store.status().code(), Status::Code::kInvalidArgument) << c.uri;
    EXPECT_NE(store.status().message().find(c.problem), std::string::npos)
        << c.uri << " -> " << store.status().message();
  }
}

TEST(OpenStoreTest, LmdbWithoutAnyDirectoryIsRefused) {
  StoreConfig config;
  config.uri = "lmdb:";
  auto store = OpenStore(config, kClock);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(store.status().message().find("--dbdir"), std::string::npos);
}

TEST(OpenStoreTest, NonPositiveRedisTimeoutIsRefused) {
  StoreConfig config;
  config.uri = "redis://127.0.0.1:6379";
  config.timeout = 0ms;
  auto store = OpenStore(config, kClock);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(store.status().message().find("timeout must be positive"), std::string::npos);
}

TEST(OpenStoreTest, LmdbUsesDbdirOrTheGivenPath) {
  TempDir dir;
  StoreConfig config;
  config.uri = "lmdb:";
  config.dbdir = dir.path() / "from-dbdir";
  config.commit_interval = 0ms;
  {
    auto store = OpenStore(config, kClock);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE(CheckAndWait(**store, {"k", ""}, T).ok());
  }
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "from-dbdir" / "greylight.lmdb"));

  config.uri = "lmdb:" + (dir.path() / "from-uri").string();
  auto store = OpenStore(config, kClock);
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "from-uri" / "greylight.lmdb"));
  // exclusive: a second daemon on the same directory is refused.
  auto second = OpenStore(config, kClock);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kBusy);
}

TEST(OpenStoreTest, LmdbMustExistAndIdentity) {
  TempDir dir;
  StoreConfig config;
  config.uri = "lmdb:" + (dir.path() / "missing").string();
  config.must_exist = true;
  auto missing = OpenStore(config, kClock);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("greylight.lmdb does not exist"), std::string::npos);
  // "lmdb:///abs" names "/abs", and "lmdb:" names the dbdir: the same store.
  config.uri = "lmdb:///" + (dir.path() / "x").string();
  StoreConfig other;
  other.uri = "lmdb:";
  other.dbdir = dir.path() / "y" / ".." / "x";
  EXPECT_EQ(StoreIdentity(config), StoreIdentity(other));
  EXPECT_EQ(StoreIdentity(config), "lmdb:" + (dir.path() / "x").string());
}

TEST(OpenStoreTest, RedisUsesPrefixAndTiming) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().message();
  StoreConfig config;
  config.uri = "redis://127.0.0.1:" + std::to_string((*server)->port()) + "/1";
  config.prefix = "mx:";
  config.timing.delay = Seconds(60);
  config.background_expiry = false;
  auto store = OpenStore(config, kClock);
  ASSERT_TRUE(store.ok()) << store.status().message();
  ASSERT_TRUE(CheckAndWait(**store, {"k", ""}, T).ok());
  auto passed = CheckAndWait(**store, {"k", ""}, T + 60);
  ASSERT_TRUE(passed.ok()) << passed.status().message();
  EXPECT_FALSE(passed->greylisted());
  auto replies =
      testing_support::RedisCommands((*server)->port(), {{"SELECT", "1"}, {"GET", "mx:t:k"}});
  ASSERT_TRUE(replies.ok()) << replies.status().message();
  EXPECT_EQ((*replies)[1].str, "1800000000,1800000060");
}

// An unreachable Redis does not stop the daemon from starting; requests fail fast.
TEST(OpenStoreTest, UnreachableRedisOpensAndFailsRequests) {
  StoreConfig config;
  config.uri = "redis://127.0.0.1:" + std::to_string(testing_support::FreeLoopbackPort());
  config.background_expiry = false;
  auto store = OpenStore(config, kClock);
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto result = CheckAndWait(**store, {"k", ""}, T);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kUnavailable);
}

}  // namespace
}  // namespace greylight::store
