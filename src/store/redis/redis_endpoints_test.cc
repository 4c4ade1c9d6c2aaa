#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/redis/redis_store.h"
#include "store/redis/redis_test_support.h"
#include "support/redis_server.h"
#include "support/temp_dir.h"

// The ways to reach a Redis server: credentials and database, a UNIX socket, Sentinel.

namespace greylight::store {
namespace {

using namespace redis_test;
using testing_support::RedisServer;
using testing_support::RespReply;
using testing_support::WaitUntil;

class RedisEndpointTest : public testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server.value());
  }
  std::unique_ptr<Store> Open(const RedisOptions& options) {
    auto store = OpenRedisStore(options, kSystemClock);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store.value()) : nullptr;
  }
  std::unique_ptr<RedisServer> server_;
};

TEST_F(RedisEndpointTest, AuthenticatesWithUserAndSelectsTheDatabase) {
  auto secured = RedisServer::Start(
      {"--requirepass", "s3cret", "--user", "mx", "on", ">mx-pw", "~*", "&*", "+@all"});
  ASSERT_TRUE(secured.ok()) << secured.status().message();
  const int port = (*secured)->port();

  RedisOptions options = OptionsFor(port);
  options.endpoint.user = "mx";
  options.endpoint.password = "mx-pw";
  options.endpoint.db = 3;
  auto store = Open(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(CheckSucceeds(*store, {"k", ""}, T));
  auto replies = testing_support::RedisCommands(
      port, {{"AUTH", "s3cret"}, {"SELECT", "3"}, {"GET", "greylight:t:k"}});
  ASSERT_TRUE(replies.ok());
  EXPECT_EQ((*replies)[2].str, "1800000000,1800000000");

  RedisOptions default_user = OptionsFor(port);
  default_user.endpoint.password = "s3cret";
  EXPECT_TRUE(OpenRedisStore(default_user, kSystemClock).ok());

  RedisOptions wrong = OptionsFor(port);
  wrong.endpoint.password = "not-the-password";
  auto refused = OpenRedisStore(wrong, kSystemClock);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("AUTH refused"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(refused.status().message().find("not-the-password"), std::string::npos)
      << "leaks the password";

  RedisOptions no_password = OptionsFor(port);
  auto unauthenticated = OpenRedisStore(no_password, kSystemClock);
  ASSERT_FALSE(unauthenticated.ok());
  EXPECT_EQ(unauthenticated.status().code(), Status::Code::kInvalidArgument);

  RedisOptions bad_db = OptionsFor(port);
  bad_db.endpoint.password = "s3cret";
  bad_db.endpoint.db = 100000;
  auto no_db = OpenRedisStore(bad_db, kSystemClock);
  ASSERT_FALSE(no_db.ok());
  EXPECT_NE(no_db.status().message().find("SELECT refused"), std::string::npos)
      << no_db.status().message();
}

TEST(RedisStoreUnixTest, ConnectsThroughAUnixSocket) {
  testing_support::TempDir socket_dir;
  std::string socket = (socket_dir.path() / "redis.sock").string();
  auto server = RedisServer::Start({"--unixsocket", socket, "--unixsocketperm", "700"});
  ASSERT_TRUE(server.ok()) << server.status().message();
  auto endpoint = ParseRedisUri("redis+unix://" + socket + "?db=2");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().message();
  RedisOptions options;
  options.endpoint = *endpoint;
  options.store.background_expiry = false;
  auto store = OpenRedisStore(options, kSystemClock);
  ASSERT_TRUE(store.ok()) << store.status().message();
  ASSERT_TRUE(CheckSucceeds(**store, {"k", ""}, T));
  auto replies = testing_support::RedisCommands((*server)->port(),
                                                {{"SELECT", "2"}, {"GET", "greylight:t:k"}});
  ASSERT_TRUE(replies.ok());
  EXPECT_EQ((*replies)[1].str, "1800000000,1800000000");
}

// One master, one replica, one sentinel (quorum 1). The master is killed; the sentinel
// promotes the replica; the store, opened through the sentinel, follows without being
// recreated, and the state written before the failover is still there.
TEST(RedisSentinelTest, FollowsAFailover) {
  constexpr std::string_view kMaster = "greylight-test";
  auto master = RedisServer::Start();
  ASSERT_TRUE(master.ok()) << master.status().message();
  auto replica = RedisServer::StartReplica((*master)->port());
  ASSERT_TRUE(replica.ok()) << replica.status().message();
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto info = (*replica)->Command({"INFO", "replication"});
        return info.ok() && info->str.find("master_link_status:up") != std::string::npos;
      },
      15s))
      << "replica never synced: " << (*replica)->LogTail();
  // Started after the replica is attached, so its first INFO of the master lists it.
  auto sentinel = RedisServer::StartSentinel(std::string(kMaster), (*master)->port());
  ASSERT_TRUE(sentinel.ok()) << sentinel.status().message();
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto replicas = (*sentinel)->Command({"SENTINEL", "replicas", std::string(kMaster)});
        return replicas.ok() && replicas->type == RespReply::Type::kArray &&
               !replicas->elements.empty();
      },
      20s))
      << "sentinel never saw the replica: " << (*sentinel)->LogTail();

  auto endpoint =
      ParseRedisUri(fmt::format("redis+sentinel://127.0.0.1:{}/{}", (*sentinel)->port(), kMaster));
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().message();
  RedisOptions options;
  options.endpoint = *endpoint;
  options.store.timeout = 500ms;
  options.store.background_expiry = false;
  auto opened = OpenRedisStore(options, kSystemClock);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  Store& store = **opened;
  ASSERT_TRUE(CheckSucceeds(store, {"before", "10.0.0.1"}, T));
  ASSERT_TRUE(CheckSucceeds(store, {"before", "10.0.0.1"}, T + 300));
  // The store's writes reach the replica before the master dies (WAIT on the test's own
  // connection would not wait for them: that connection wrote nothing).
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto client = (*replica)->Command({"GET", "greylight:c:10.0.0.1"});
        auto triplet = (*replica)->Command({"GET", "greylight:t:before"});
        return client.ok() && client->str == "1,1800000300" && triplet.ok() &&
               triplet->str == "1800000000,1800000300";
      },
      20s))
      << "the replica never received the writes";

  const int replica_port = (*replica)->port();
  (*master)->Kill();
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto addr =
            (*sentinel)->Command({"SENTINEL", "get-master-addr-by-name", std::string(kMaster)});
        return addr.ok() && addr->elements.size() == 2 &&
               addr->elements[1].str == std::to_string(replica_port);
      },
      30s))
      << "no failover: " << (*sentinel)->LogTail();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return CheckSucceeds(store, {"after", "10.0.0.1"}, T + 400);
      },
      30s))
      << "the store did not follow the failover";
  // Earlier state survived: the triplet passed before is known as passed.
  Outcome outcome = CheckWithin(store, {"before", "10.0.0.1"}, T + 500);
  ASSERT_TRUE(outcome.result && outcome.result->ok());
  EXPECT_TRUE(outcome.result->value().last_was_successful);
  EXPECT_EQ(store.Get(Table::kClients, "10.0.0.1").value(), "1,1800000300");
  auto written = (*replica)->Command({"GET", "greylight:t:after"});
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(written->str, "1800000400,1800000400");
}

}  // namespace
}  // namespace greylight::store
