#include "server/server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <thread>

#include "store/memory_store.h"

namespace greylight::server {
namespace {

using namespace std::chrono_literals;

constexpr long long T = 1800000000;

// A server on loopback with a fake clock: the tests move time instead of waiting for it.
class ServerTest : public testing::Test {
 protected:
  void Start(ServerOptions options) {
    store_ = std::make_unique<store::MemoryStore>(policy::GreylistTiming{});
    engine::EngineOptions engine_options;
    engine_options.hostname = "mx.test";
    greylister_ =
        std::make_unique<engine::Greylister>(engine_options, policy::GreylistTiming{}, *store_);
    if (options.listen.empty()) {
      options.listen = {ListenAddress{ListenAddress::Kind::kTcp, "127.0.0.1", 0, ""}};
    }
    server_ = std::make_unique<Server>(io_, options, clock_);
    ASSERT_TRUE(server_->Bind().ok());
    server_->Start(*greylister_);
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    if (thread_.joinable()) thread_.join();
  }

  // A connected client whose reads give up after 5 s, so a test cannot hang.
  asio::ip::tcp::socket Connect(size_t listener = 0) {
    asio::ip::tcp::socket socket(client_io_);
    socket.connect({asio::ip::make_address("127.0.0.1"), server_->bound_ports().at(listener)});
    timeval limit{5, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    return socket;
  }
  static void Send(asio::ip::tcp::socket& socket, std::string_view bytes) {
    asio::write(socket, asio::buffer(bytes));
  }
  // The next reply's action, or "" if the server closed the connection first.
  static std::string Reply(asio::ip::tcp::socket& socket) {
    std::string data;
    char buffer[512];
    while (data.find("\n\n") == std::string::npos) {
      std::error_code ec;
      size_t n = socket.read_some(asio::buffer(buffer), ec);
      if (ec) return "";
      data.append(buffer, n);
    }
    return data.substr(7, data.find("\n\n") - 7);  // after "action="
  }
  // True if the server closes `socket` within half a second (EOF or reset).
  static bool ClosedSoon(asio::ip::tcp::socket& socket) {
    pollfd fd{socket.native_handle(), POLLIN, 0};
    if (::poll(&fd, 1, 500) <= 0) return false;
    char byte;
    return ::recv(socket.native_handle(), &byte, 1, MSG_PEEK) <= 0;
  }
  static std::string Request(std::string_view recipient, std::string_view instance) {
    return fmt::format(
        "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.10\n"
        "client_name=mail.example.net\nsender=alice@example.net\nrecipient={}\n"
        "instance={}\netrn_domain=\n\n",
        recipient, instance);
  }

  FakeClock clock_{FromUnixSeconds(T)};
  asio::io_context io_;
  asio::io_context client_io_;
  std::unique_ptr<store::MemoryStore> store_;
  std::unique_ptr<engine::Greylister> greylister_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(ServerTest, IdleConnectionsCloseWhenTheClockPassesTheIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = 30s;
  Start(options);
  auto idle = Connect();
  EXPECT_TRUE(Reply((Send(idle, Request("bob@example.org", "i1")), idle)).starts_with("DEFER"));
  clock_.Advance(29s);
  server_->ExpireConnections();
  EXPECT_FALSE(ClosedSoon(idle)) << "29 s idle of 30";
  EXPECT_EQ(server_->connection_count(), 1u);
  // The server arms the idle deadline when it starts reading after the reply: move the
  // clock on until that read is covered (the first step normally is).
  bool closed = false;
  for (int step = 0; step < 5 && !closed; ++step) {
    clock_.Advance(31s);
    server_->ExpireConnections();
    closed = ClosedSoon(idle);
  }
  EXPECT_TRUE(closed);
}

TEST_F(ServerTest, AStartedRequestMustCompleteWithinTheRequestTimeout) {
  ServerOptions options;
  options.request_timeout = 10s;
  options.idle_timeout = 3600s;
  Start(options);
  auto slow = Connect();
  Send(slow, "request=smtpd_access_policy\nclient_address=192.0.2.10\n");
  auto idle = Connect();
  bool closed = false;
  for (int step = 0; step < 5 && !closed; ++step) {
    clock_.Advance(11s);
    server_->ExpireConnections();
    closed = ClosedSoon(slow);
  }
  EXPECT_TRUE(closed) << "a request started 11 s ago, with a 10 s limit";
  EXPECT_FALSE(ClosedSoon(idle)) << "an idle connection has an hour";
  Send(idle, Request("bob@example.org", "i1"));
  EXPECT_TRUE(Reply(idle).starts_with("DEFER"));
}

// With --exim each recipient comes on a connection of its own: the header memory must be
// shared, or every recipient of one message gets its own X-Greylist header.
TEST_F(ServerTest, EximConnectionsShareTheOneHeaderPerMessageMemory) {
  ServerOptions options;
  options.close_after_reply = true;
  Start(options);
  for (std::string_view recipient : {"r1@example.org", "r2@example.org"}) {
    std::string key = fmt::format("192.0.2.0/alice@example.net/{}", recipient);
    ASSERT_TRUE(
        store_->Put(store::Table::kTriplets, key, fmt::format("{},{}", T - 400, T - 400)).ok());
  }
  auto first = Connect();
  Send(first, Request("r1@example.org", "msg.1"));
  EXPECT_TRUE(Reply(first).starts_with("PREPEND X-Greylist: delayed 400 seconds"));
  EXPECT_TRUE(ClosedSoon(first)) << "--exim closes after the reply";
  auto second = Connect();
  Send(second, Request("r2@example.org", "msg.1"));
  EXPECT_EQ(Reply(second), "DUNNO");
}

TEST_F(ServerTest, PostfixConnectionsKeepTheirOwnHeaderMemory) {
  Start(ServerOptions{});
  ASSERT_TRUE(store_
                  ->Put(store::Table::kTriplets, "192.0.2.0/alice@example.net/r1@example.org",
                        fmt::format("{},{}", T - 400, T - 400))
                  .ok());
  ASSERT_TRUE(store_
                  ->Put(store::Table::kTriplets, "192.0.2.0/alice@example.net/r2@example.org",
                        fmt::format("{},{}", T - 400, T - 400))
                  .ok());
  auto smtpd = Connect();
  Send(smtpd, Request("r1@example.org", "msg.1"));
  EXPECT_TRUE(Reply(smtpd).starts_with("PREPEND"));
  Send(smtpd, Request("r2@example.org", "msg.1"));
  EXPECT_EQ(Reply(smtpd), "DUNNO") << "the same message on the same connection";
}

// The submission service asks the outbound listener: the pair is recorded and the answer is
// DUNNO; the reply, asked on the greylisting listener, passes at once. An outbound listener
// never greylists, even a pair it has never seen.
TEST_F(ServerTest, AnOutboundListenerRecordsPairsThatLetRepliesPass) {
  ServerOptions options;
  ListenAddress outbound{ListenAddress::Kind::kTcp, "127.0.0.1", 0, ""};
  outbound.role = ListenAddress::Role::kOutbound;
  options.listen = {ListenAddress{ListenAddress::Kind::kTcp, "127.0.0.1", 0, ""}, outbound};
  Start(options);
  auto submission = Connect(1);
  Send(submission,
       "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=203.0.113.7\n"
       "client_name=laptop.example.org\nsender=bob@example.org\nrecipient=carol@remote.example\n"
       "instance=o1\n\n");
  EXPECT_EQ(Reply(submission), "DUNNO");
  EXPECT_EQ(store_->Get(store::Table::kReplies, "carol@remote.example/bob@example.org").value(),
            "1,1800000000");
  EXPECT_EQ(server_->metrics().Summary(),
            "summary: requests=1, greylisted=0, passed=0, whitelisted=0, awl=0, replies=0, "
            "unanswerable=0, outbound=1, connections=1");

  auto smtpd = Connect(0);
  Send(smtpd,
       "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=198.51.100.20\n"
       "client_name=mx.remote.example\nsender=carol@remote.example\nrecipient=bob@example.org\n"
       "instance=i1\n\n");
  EXPECT_EQ(Reply(smtpd), "DUNNO");
  Send(smtpd, Request("bob@example.org", "i2"));  // alice is no correspondent of bob's
  EXPECT_TRUE(Reply(smtpd).starts_with("DEFER"));
  std::string metrics = server_->metrics().Render(store::StoreStats{});
  EXPECT_NE(metrics.find("greylight_reply_passes_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("greylight_replies_recorded_total 1\n"), std::string::npos);
  EXPECT_NE(metrics.find("greylight_requests_total{action=\"record\",reason=\"outbound\"} 1\n"),
            std::string::npos);
  EXPECT_NE(metrics.find("greylight_requests_total{action=\"pass\",reason=\"reply\"} 1\n"),
            std::string::npos);
}

}  // namespace
}  // namespace greylight::server
