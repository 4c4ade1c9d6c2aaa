#include "store/redis/redis_connection.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "store/redis/redis_test_support.h"
#include "support/redis_server.h"

// RedisConnection against a real redis-server: commands go out in RESP formatted by us and
// replies come back built by hiredis' reader straight into RedisReply, with every reply
// type, nesting and binary-safe strings.

namespace greylight::store {
namespace {

using namespace std::chrono_literals;
using testing_support::RedisServer;
using Type = RedisReply::Type;

class RedisConnectionTest : public testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server.value());
    auto connection =
        RedisConnection::Open(redis_test::LoopbackEndpoint(server_->port()), 5000ms, {}, clock_);
    ASSERT_TRUE(connection.ok()) << connection.status().message();
    connection_ = std::move(connection.value());
  }

  Result<std::vector<RedisReply>> Exchange(const std::vector<RedisCommand>& commands) {
    return connection_->Exchange(commands, clock_.Monotonic() + 5s);
  }

  const SystemClock clock_;
  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<RedisConnection> connection_;
};

TEST_F(RedisConnectionTest, ArgumentsAndStringsAreBinarySafe) {
  const std::string awkward("a\r\nb\0c$*\n", 10);
  const std::string large(1 << 20, 'x');
  auto replies = Exchange({{"SET", awkward, awkward},
                           {"GET", awkward},
                           {"SET", "empty", ""},
                           {"GET", "empty"},
                           {"SET", "large", large},
                           {"GET", "large"}});
  ASSERT_TRUE(replies.ok()) << replies.status().message();
  ASSERT_EQ(replies->size(), 6u);
  EXPECT_EQ((*replies)[0].type, Type::kStatus);
  EXPECT_EQ((*replies)[0].str, "OK");
  EXPECT_EQ((*replies)[1].type, Type::kString);
  EXPECT_EQ((*replies)[1].str, awkward);
  EXPECT_EQ((*replies)[3].type, Type::kString);
  EXPECT_EQ((*replies)[3].str, "");
  EXPECT_EQ((*replies)[5].str, large);
}

TEST_F(RedisConnectionTest, EveryReplyTypeAndNestedArraysArriveWhole) {
  // A script's table becomes nested arrays; false becomes nil, numbers integers.
  const std::string script =
      "return {1, {'a', false, {KEYS[1], -7}}, {}, redis.status_reply('FINE'), 'z'}";
  auto replies = Exchange({{"EVAL", script, "1", "k"},
                           {"GET", "absent"},
                           {"INCRBY", "n", "-5"},
                           {"NO-SUCH-COMMAND"},
                           {"RPUSH", "list", "p", "q"},
                           {"LRANGE", "list", "0", "-1"}});
  ASSERT_TRUE(replies.ok()) << replies.status().message();
  ASSERT_EQ(replies->size(), 6u);
  const RedisReply& table = (*replies)[0];
  ASSERT_EQ(table.type, Type::kArray);
  ASSERT_EQ(table.elements.size(), 5u);
  EXPECT_EQ(table.elements[0].type, Type::kInteger);
  EXPECT_EQ(table.elements[0].integer, 1);
  const RedisReply& inner = table.elements[1];
  ASSERT_EQ(inner.type, Type::kArray);
  ASSERT_EQ(inner.elements.size(), 3u);
  EXPECT_EQ(inner.elements[0].str, "a");
  EXPECT_EQ(inner.elements[1].type, Type::kNil);
  ASSERT_EQ(inner.elements[2].elements.size(), 2u);
  EXPECT_EQ(inner.elements[2].elements[0].str, "k");
  EXPECT_EQ(inner.elements[2].elements[1].integer, -7);
  EXPECT_EQ(table.elements[2].type, Type::kArray);
  EXPECT_TRUE(table.elements[2].elements.empty());
  EXPECT_EQ(table.elements[3].type, Type::kStatus);
  EXPECT_EQ(table.elements[3].str, "FINE");
  EXPECT_EQ(table.elements[4].str, "z");
  EXPECT_EQ((*replies)[1].type, Type::kNil);
  EXPECT_EQ((*replies)[2].type, Type::kInteger);
  EXPECT_EQ((*replies)[2].integer, -5);
  EXPECT_TRUE((*replies)[3].IsError("ERR"));
  EXPECT_EQ((*replies)[4].integer, 2);
  ASSERT_EQ((*replies)[5].elements.size(), 2u);
  EXPECT_EQ((*replies)[5].elements[1].str, "q");
}

// Many commands in one write, with replies that arrive over many reads.
TEST_F(RedisConnectionTest, ALongPipelineGetsOneReplyPerCommandInOrder) {
  std::vector<RedisCommand> commands;
  constexpr int kCommands = 5000;
  for (int i = 0; i < kCommands; ++i) {
    commands.push_back({"SET", "key" + std::to_string(i), std::string(100, 'a' + i % 26)});
    commands.push_back({"MGET", "key" + std::to_string(i), "absent"});
  }
  auto replies = Exchange(commands);
  ASSERT_TRUE(replies.ok()) << replies.status().message();
  ASSERT_EQ(replies->size(), commands.size());
  for (int i = 0; i < kCommands; ++i) {
    const RedisReply& read = (*replies)[2 * i + 1];
    ASSERT_EQ(read.elements.size(), 2u) << i;
    EXPECT_EQ(read.elements[0].str, std::string(100, 'a' + i % 26)) << i;
    EXPECT_EQ(read.elements[1].type, Type::kNil) << i;
  }
}

// The server closes the connection after the first reply (it kills its own client), before
// the second: the exchange fails as a broken connection.
TEST_F(RedisConnectionTest, AConnectionClosedBeforeEveryReplyFailsTheExchange) {
  auto killed = Exchange({{"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"}, {"PING"}});
  EXPECT_FALSE(killed.ok());
  EXPECT_EQ(killed.status().code(), Status::Code::kUnavailable);
}

// A listener on 127.0.0.1 that answers the first request of its one connection with
// `reply`, whatever was asked, then waits (at most 5 s) for the client to close.
class CannedServer {
 public:
  explicit CannedServer(std::string reply) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    port_ = testing_support::BindLoopbackAnyPort(listener_);
    if (port_ != 0 && ::listen(listener_, 1) != 0) port_ = 0;
    thread_ = std::thread([this, reply = std::move(reply)] { Serve(reply); });
  }
  ~CannedServer() {
    thread_.join();
    ::close(listener_);
  }
  int port() const { return port_; }

 private:
  // Waits at most 5 s for `fd` to be readable.
  static bool Readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 5000) == 1;
  }
  void Serve(const std::string& reply) {
    if (port_ == 0 || !Readable(listener_)) return;
    int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    char buffer[4096];
    if (Readable(fd) && ::read(fd, buffer, sizeof buffer) > 0) {
      (void)::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      while (Readable(fd) && ::read(fd, buffer, sizeof buffer) > 0) {
      }
    }
    ::close(fd);
  }

  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// A peer that is not the Redis server we asked for may announce any array size; the reader
// refuses an absurd one instead of allocating its elements, and the exchange fails.
TEST(RedisConnectionLimitsTest, AnAbsurdArrayHeaderFailsTheExchange) {
  for (std::string header : {"*2000000000\r\n", "*1\r\n*1048577\r\n"}) {
    SCOPED_TRACE(header);
    CannedServer server(header + ":1\r\n");
    ASSERT_NE(server.port(), 0);
    const SystemClock clock;
    auto connection =
        RedisConnection::Open(redis_test::LoopbackEndpoint(server.port()), 5000ms, {}, clock);
    ASSERT_TRUE(connection.ok()) << connection.status().message();
    const std::vector<RedisCommand> ping{{"PING"}};
    auto replies = (*connection)->Exchange(ping, clock.Monotonic() + 5s);
    ASSERT_FALSE(replies.ok());
    EXPECT_EQ(replies.status().code(), Status::Code::kUnavailable);
    EXPECT_NE(replies.status().message().find("an array of more than 1048576 elements"),
              std::string::npos)
        << replies.status().message();
  }
}

}  // namespace
}  // namespace greylight::store
