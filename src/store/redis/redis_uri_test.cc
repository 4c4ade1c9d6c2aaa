#include "store/redis/redis_uri.h"

#include <gtest/gtest.h>

namespace greylight::store {
namespace {

using Kind = RedisEndpoint::Kind;

TEST(RedisUriTest, Tcp) {
  auto e = ParseRedisUri("redis://127.0.0.1:6380/2");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->kind, Kind::kTcp);
  EXPECT_EQ(e->addresses, (std::vector<RedisAddress>{{"127.0.0.1", 6380}}));
  EXPECT_EQ(e->db, 2);
  EXPECT_EQ(e->password, "");

  e = ParseRedisUri("redis://redis.example.net");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->addresses, (std::vector<RedisAddress>{{"redis.example.net", 6379}}));
  EXPECT_EQ(e->db, 0);

  e = ParseRedisUri("redis://[::1]:7000/");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->addresses, (std::vector<RedisAddress>{{"::1", 7000}}));
}

TEST(RedisUriTest, Credentials) {
  auto e = ParseRedisUri("redis://mx1:p%40ss%3Aw%2Fd@10.0.0.5:6379/1");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->user, "mx1");
  EXPECT_EQ(e->password, "p@ss:w/d");
  EXPECT_EQ(e->addresses.front().host, "10.0.0.5");

  e = ParseRedisUri("redis://:secret@host:1");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->user, "");
  EXPECT_EQ(e->password, "secret");

  e = ParseRedisUri("redis://secret@host:1");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->password, "secret");

  e = ParseRedisUri("redis://host:1?password=x&user=u&db=4");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->user, "u");
  EXPECT_EQ(e->password, "x");
  EXPECT_EQ(e->db, 4);
}

TEST(RedisUriTest, Unix) {
  auto e = ParseRedisUri("redis+unix:///run/redis/redis.sock?db=3&password=pw");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->kind, Kind::kUnix);
  EXPECT_EQ(e->unix_path, "/run/redis/redis.sock");
  EXPECT_EQ(e->db, 3);
  EXPECT_EQ(e->password, "pw");
}

TEST(RedisUriTest, Sentinel) {
  auto e = ParseRedisUri(
      "redis+sentinel://10.0.0.1:26379,10.0.0.2,[fd00::3]:26380/mymaster?db=1&password=pw"
      "&sentinel_password=spw");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->kind, Kind::kSentinel);
  EXPECT_EQ(e->addresses, (std::vector<RedisAddress>{
                              {"10.0.0.1", 26379}, {"10.0.0.2", 26379}, {"fd00::3", 26380}}));
  EXPECT_EQ(e->master_name, "mymaster");
  EXPECT_EQ(e->db, 1);
  EXPECT_EQ(e->password, "pw");
  EXPECT_EQ(e->sentinel_password, "spw");
  EXPECT_EQ(e->Describe(),
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,[fd00::3]:26380/mymaster?db=1");
}

TEST(RedisUriTest, Cluster) {
  auto e = ParseRedisUri("redis+cluster://10.0.0.1:7000,10.0.0.2,[fd00::3]:7001?password=p%40w");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->kind, Kind::kCluster);
  EXPECT_EQ(e->addresses,
            (std::vector<RedisAddress>{{"10.0.0.1", 7000}, {"10.0.0.2", 6379}, {"fd00::3", 7001}}));
  EXPECT_EQ(e->password, "p@w");
  EXPECT_EQ(e->Describe(), "redis+cluster://10.0.0.1:7000,10.0.0.2:6379,[fd00::3]:7001");
  for (std::string_view bad : {"redis+cluster://", "redis+cluster://h:1/0",
                               "redis+cluster://u:p@h:1", "redis+cluster://h:1?db=2"}) {
    EXPECT_FALSE(ParseRedisUri(bad).ok()) << bad;
  }
}

TEST(RedisUriTest, DescribeHidesThePassword) {
  auto e = ParseRedisUri("redis://mx1:hunter2@host:6379/5");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->Describe(), "redis://mx1@host:6379/5");
}

TEST(RedisUriTest, ErrorsNameTheProblem) {
  struct Case {
    const char* uri;
    const char* problem;
  };
  for (const Case& c : {
           Case{"redis://", "missing host"},
           Case{"redis://:6379", "missing host"},
           Case{"redis://host:0", "bad port '0'"},
           Case{"redis://host:65536", "bad port '65536'"},
           Case{"redis://host:port", "bad port 'port'"},
           Case{"redis://host:", "empty port"},
           Case{"redis://host/x", "bad database number 'x'"},
           Case{"redis://host/-1", "bad database number '-1'"},
           Case{"redis://host/1?db=2", "database given twice"},
           Case{"redis://::1:6379", "IPv6 addresses must be in brackets"},
           Case{"redis://[::1:6379", "unterminated '['"},
           Case{"redis://u:p%zz@host", "bad percent-encoding"},
           Case{"redis://host?passwd=x", "unknown query parameter 'passwd'"},
           Case{"redis://host?password", "has no value"},
           Case{"redis+unix://", "missing socket path"},
           Case{"redis+unix://run/redis.sock", "must be absolute"},
           Case{"redis+unix:///run/redis.sock?sentinel_password=x", "unknown query parameter"},
           Case{"redis+sentinel://", "missing sentinel host"},
           Case{"redis+sentinel://h:26379", "missing master name"},
           Case{"redis+sentinel://h:26379/", "missing master name"},
           Case{"redis+sentinel://h:26379,/m", "missing host"},
           Case{"redis+sentinel://h:x/m", "bad port 'x'"},
           Case{"redis+sentinel://u:p@h/m", "credentials go in the query"},
           Case{"redis+sentinel://h/m/1", "may not contain '/'"},
           Case{"redis+sentinel://h/m?foo=bar", "unknown query parameter 'foo'"},
           Case{"rediss://host", "expected redis://"},
       }) {
    auto e = ParseRedisUri(c.uri);
    ASSERT_FALSE(e.ok()) << c.uri;
    EXPECT_EQ(e.status().code(), Status::Code::kInvalidArgument) << c.uri;
    EXPECT_NE(e.status().message().find(c.problem), std::string::npos)
        << c.uri << " -> " << e.status().message();
  }
}

}  // namespace
}  // namespace greylight::store
