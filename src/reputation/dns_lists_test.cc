#include "reputation/dns_lists.h"

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "reputation/test_dns_server.h"

namespace greylight::reputation {
namespace {

using namespace std::chrono_literals;
using testing_support::BlackholeDns;
using testing_support::ScriptedDns;
using testing_support::UnboundServer;

policy::IpAddress Ip(std::string_view text) {
  auto address = policy::IpAddress::Parse(text);
  EXPECT_TRUE(address.has_value()) << text;
  return address.value_or(policy::IpAddress{});
}

DnsList List(ListKind kind, std::string_view spec) {
  auto list = DnsList::Parse(kind, spec);
  EXPECT_TRUE(list.ok()) << spec << ": " << list.status().message();
  return list.ok() ? list.value() : DnsList{};
}

// ---------------------------------------------------------------------------------------
// Against a real DNS server (unbound) on a loopback port.

// The test zones: bl.test lists 127.0.0.2 (code .2) and 127.0.0.3 (code .3), and the IPv6
// address 2001:db8::1 (code .2); wl.test lists 127.0.0.4 (code .4, TTL 120). Negative
// answers carry an SOA whose minimum is 30 s. sf.test always fails (SERVFAIL); names
// outside these zones are refused (REFUSED), except under "test." which unbound answers
// NXDOMAIN by default (RFC 6761).
const char* const kZones = R"(
  local-zone: "bl.test." static
  local-data: "bl.test. 60 IN SOA ns.bl.test. hostmaster.bl.test. 1 3600 600 86400 30"
  local-data: "2.0.0.127.bl.test. 120 IN A 127.0.0.2"
  local-data: "3.0.0.127.bl.test. 120 IN A 127.0.0.3"
  local-data: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test. 120 IN A 127.0.0.2"
  local-zone: "wl.test." static
  local-data: "wl.test. 60 IN SOA ns.wl.test. hostmaster.wl.test. 1 3600 600 86400 30"
  local-data: "4.0.0.127.wl.test. 120 IN A 127.0.0.4"
  local-zone: "sf.test." transparent
)";
const char* const kStubs = R"(
stub-zone:
  name: "sf.test."
  stub-addr: 127.0.0.1@9
)";

class DnsListCheckerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = UnboundServer::Start(kZones, kStubs);
    if (!server.ok()) {
      start_error_ = new std::string(server.status().message());
      return;
    }
    server_ = server.value().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << (start_error_ != nullptr ? *start_error_ : "");
  }

  DnsListOptions Options(std::vector<DnsList> lists, std::string servers = "") {
    DnsListOptions options;
    options.lists = std::move(lists);
    options.servers = servers.empty() ? server_->servers() : std::move(servers);
    options.timeout = 2000ms;
    return options;
  }

  std::unique_ptr<DnsListChecker> Checker(DnsListOptions options) {
    auto checker = DnsListChecker::Create(io_, std::move(options), clock_);
    EXPECT_TRUE(checker.ok()) << checker.status().message();
    return checker.ok() ? std::move(checker.value()) : nullptr;
  }

  // Runs the io_context until `done` or `limit` passes.
  void RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    io_.restart();
    while (!done() && std::chrono::steady_clock::now() < deadline) io_.run_one_for(50ms);
  }

  ListVerdict Lookup(DnsListChecker& checker, std::string_view address) {
    std::optional<ListVerdict> verdict;
    checker.Lookup(Ip(address), [&](ListVerdict v) { verdict = std::move(v); });
    RunUntil([&] { return verdict.has_value(); });
    EXPECT_TRUE(verdict.has_value()) << "no answer for " << address;
    return verdict.value_or(ListVerdict{});
  }

  static UnboundServer* server_;
  static std::string* start_error_;
  // The clock is declared first so that it outlives the io_context, whose destruction
  // may release the last handlers of a checker.
  FakeClock clock_{FromUnixSeconds(1'700'000'000)};
  asio::io_context io_;
};
UnboundServer* DnsListCheckerTest::server_ = nullptr;
std::string* DnsListCheckerTest::start_error_ = nullptr;

TEST_F(DnsListCheckerTest, ListedNotListedAndCodesNotAccepted) {
  auto checker = Checker(Options({List(ListKind::kBlock, "bl.test=127.0.0.2")}));
  ASSERT_TRUE(checker);

  ListVerdict listed = Lookup(*checker, "127.0.0.2");
  ASSERT_EQ(listed.dnsbl.size(), 1u);
  EXPECT_EQ(listed.dnsbl[0].zone, "bl.test");
  EXPECT_EQ(listed.dnsbl[0].answer, "127.0.0.2");
  EXPECT_FALSE(listed.dnswl_listed());
  EXPECT_FALSE(listed.any_failed());

  ListVerdict nxdomain = Lookup(*checker, "127.0.0.9");
  EXPECT_FALSE(nxdomain.dnsbl_listed());
  EXPECT_FALSE(nxdomain.any_failed());

  // Listed with 127.0.0.3, which this configuration does not accept.
  ListVerdict other_code = Lookup(*checker, "127.0.0.3");
  EXPECT_FALSE(other_code.dnsbl_listed());
  EXPECT_FALSE(other_code.any_failed());

  ListVerdict v6 = Lookup(*checker, "2001:db8::1");
  EXPECT_TRUE(v6.dnsbl_listed());
}

TEST_F(DnsListCheckerTest, AllowAndBlockListsAreAskedTogether) {
  auto checker = Checker(Options(
      {List(ListKind::kBlock, "bl.test"), List(ListKind::kAllow, "wl.test=127.0.0.[4..5]")}));
  ASSERT_TRUE(checker);
  ListVerdict wl = Lookup(*checker, "127.0.0.4");
  ASSERT_EQ(wl.dnswl.size(), 1u);
  EXPECT_EQ(wl.dnswl[0].zone, "wl.test");
  EXPECT_FALSE(wl.dnsbl_listed());
  ListVerdict bl = Lookup(*checker, "127.0.0.3");
  EXPECT_TRUE(bl.dnsbl_listed());  // the default codes accept .3
  EXPECT_FALSE(bl.dnswl_listed());
  EXPECT_EQ(checker->Stats().queries, 4u);
}

TEST_F(DnsListCheckerTest, ServfailAndRefusedCountAsFailedNotListed) {
  auto checker =
      Checker(Options({List(ListKind::kBlock, "sf.test"), List(ListKind::kBlock, "refused.example"),
                       List(ListKind::kBlock, "bl.test")}));
  ASSERT_TRUE(checker);
  auto start = std::chrono::steady_clock::now();
  ListVerdict verdict = Lookup(*checker, "127.0.0.2");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);  // errors are not timeouts
  std::string failures;
  for (const std::string& failure : verdict.failures) failures += failure + "; ";
  ASSERT_EQ(verdict.failures.size(), 2u) << failures << verdict.dnsbl.size();
  EXPECT_EQ(verdict.failures[0], "sf.test: SERVFAIL");
  EXPECT_EQ(verdict.failures[1], "refused.example: REFUSED");
  ASSERT_EQ(verdict.dnsbl.size(), 1u);  // the working list still counts
  EXPECT_EQ(checker->Stats().failures, 2u);
  // Failures are not cached: asked again next time.
  Lookup(*checker, "127.0.0.2");
  EXPECT_EQ(checker->Stats().queries, 5u);
}

TEST_F(DnsListCheckerTest, AnswersAreCachedForTheirTtl) {
  auto checker = Checker(Options({List(ListKind::kBlock, "bl.test")}));
  ASSERT_TRUE(checker);
  EXPECT_TRUE(Lookup(*checker, "127.0.0.2").dnsbl_listed());   // TTL 120
  EXPECT_FALSE(Lookup(*checker, "127.0.0.9").dnsbl_listed());  // negative TTL 30
  EXPECT_EQ(checker->Stats().queries, 2u);

  clock_.Advance(29s);
  EXPECT_TRUE(Lookup(*checker, "127.0.0.2").dnsbl_listed());
  EXPECT_FALSE(Lookup(*checker, "127.0.0.9").dnsbl_listed());
  EXPECT_EQ(checker->Stats().queries, 2u);
  EXPECT_EQ(checker->Stats().cache_hits, 2u);

  clock_.Advance(1s);  // 30 s: the negative answer has expired
  Lookup(*checker, "127.0.0.9");
  Lookup(*checker, "127.0.0.2");
  EXPECT_EQ(checker->Stats().queries, 3u);

  clock_.Advance(90s);  // 120 s: so has the positive one
  Lookup(*checker, "127.0.0.2");
  EXPECT_EQ(checker->Stats().queries, 4u);
}

TEST_F(DnsListCheckerTest, TheCacheIsBounded) {
  DnsListOptions options = Options({List(ListKind::kBlock, "bl.test")});
  options.cache_entries = 2;
  auto checker = Checker(std::move(options));
  ASSERT_TRUE(checker);
  Lookup(*checker, "127.0.0.2");
  Lookup(*checker, "127.0.0.3");
  Lookup(*checker, "127.0.0.2");  // hit; .3 is now the least recently used
  Lookup(*checker, "127.0.0.9");  // evicts .3
  EXPECT_EQ(checker->Stats().queries, 3u);
  Lookup(*checker, "127.0.0.2");
  EXPECT_EQ(checker->Stats().queries, 3u);
  Lookup(*checker, "127.0.0.3");
  EXPECT_EQ(checker->Stats().queries, 4u);
}

TEST_F(DnsListCheckerTest, ConcurrentLookupsOfOneNameShareAQueryAndManyClientsRunAtOnce) {
  auto checker = Checker(Options({List(ListKind::kBlock, "bl.test")}));
  ASSERT_TRUE(checker);
  constexpr int kClients = 200;
  int answered = 0;
  int listed = 0;
  for (int i = 0; i < kClients; ++i) {
    std::string address = "127.0." + std::to_string(i / 100) + "." + std::to_string(i % 100);
    checker->Lookup(Ip(address), [&](ListVerdict v) {
      ++answered;
      listed += v.dnsbl_listed() ? 1 : 0;
      EXPECT_FALSE(v.any_failed());
    });
  }
  checker->Lookup(Ip("127.0.0.2"), [&](ListVerdict v) {
    ++answered;
    listed += v.dnsbl_listed() ? 1 : 0;
  });
  RunUntil([&] { return answered == kClients + 1; });
  EXPECT_EQ(answered, kClients + 1);
  EXPECT_EQ(listed, 3);  // 127.0.0.2 twice and 127.0.0.3
  EXPECT_EQ(checker->Stats().queries, static_cast<uint64_t>(kClients));
}

// A server that never answers: the lookup ends at the configured timeout (plus a
// margin for scheduling), with the list counted as failed, never later.
TEST_F(DnsListCheckerTest, ADeadServerTimesOutWithinTheConfiguredTimeout) {
  BlackholeDns blackhole;
  ASSERT_NE(blackhole.port(), 0);
  DnsListOptions options = Options(
      {List(ListKind::kAllow, "wl.test"), List(ListKind::kBlock, "bl.test")}, blackhole.servers());
  options.timeout = 300ms;
  auto checker = Checker(std::move(options));
  ASSERT_TRUE(checker);
  auto start = std::chrono::steady_clock::now();
  ListVerdict verdict = Lookup(*checker, "127.0.0.2");
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 300ms + 500ms);
  ASSERT_EQ(verdict.failures.size(), 2u);
  EXPECT_EQ(verdict.failures[0], "wl.test: timeout");
  EXPECT_EQ(verdict.failures[1], "bl.test: timeout");
  EXPECT_FALSE(verdict.dnsbl_listed());
  EXPECT_EQ(checker->Stats().timeouts, 2u);
}

// No request waits on another's lookup: while a lookup hangs on a dead server, lookups
// on the same io_context against a live one complete at once.
TEST_F(DnsListCheckerTest, ASlowListDoesNotHoldUpOtherLookups) {
  BlackholeDns blackhole;
  DnsListOptions slow_options = Options({List(ListKind::kBlock, "bl.test")}, blackhole.servers());
  slow_options.timeout = 1500ms;
  auto slow = Checker(std::move(slow_options));
  auto fast = Checker(Options({List(ListKind::kBlock, "bl.test")}));
  ASSERT_TRUE(slow && fast);

  std::optional<ListVerdict> slow_verdict;
  slow->Lookup(Ip("127.0.0.2"), [&](ListVerdict v) { slow_verdict = std::move(v); });
  int fast_answers = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    fast->Lookup(Ip("127.0.0.2"), [&](ListVerdict v) {
      EXPECT_TRUE(v.dnsbl_listed());
      ++fast_answers;
    });
  }
  RunUntil([&] { return fast_answers == 5; });
  EXPECT_EQ(fast_answers, 5);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);
  EXPECT_FALSE(slow_verdict.has_value());
  RunUntil([&] { return slow_verdict.has_value(); });
  ASSERT_TRUE(slow_verdict.has_value());
  EXPECT_EQ(slow_verdict->failures.size(), 1u);
}

// The daemon may run its io_context on several threads and call Lookup from any of
// them: the checker's strand keeps c-ares single-threaded.
TEST_F(DnsListCheckerTest, WorksWithSeveralThreadsRunningTheIoContext) {
  auto checker =
      Checker(Options({List(ListKind::kBlock, "bl.test"), List(ListKind::kAllow, "wl.test")}));
  ASSERT_TRUE(checker);
  constexpr int kLookups = 300;
  std::atomic<int> answered{0};
  std::atomic<int> listed{0};
  std::atomic<int> failed{0};
  auto guard = asio::make_work_guard(io_);
  io_.restart();
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io_.run(); });
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&, c] {
      for (int i = c; i < kLookups; i += 3) {
        std::string address = "127.0.0." + std::to_string(i % 8);
        checker->Lookup(Ip(address), [&](ListVerdict v) {
          if (v.dnsbl_listed() || v.dnswl_listed()) ++listed;
          if (v.any_failed()) ++failed;
          ++answered;
        });
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (answered < kLookups && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);  // waiting on other threads, not on a clock
  }
  guard.reset();
  io_.stop();
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(answered.load(), kLookups);
  EXPECT_EQ(failed.load(), 0);
  // 127.0.0.2 and .3 are on bl.test, .4 on wl.test.
  int expected = 0;
  for (int i = 0; i < kLookups; ++i) expected += (i % 8 >= 2 && i % 8 <= 4) ? 1 : 0;
  EXPECT_EQ(listed.load(), expected);
}

TEST_F(DnsListCheckerTest, NoListsAnswersAtOnceAndTheCallbackNeverRunsInsideLookup) {
  auto checker = Checker(Options({}));
  ASSERT_TRUE(checker);
  bool called = false;
  checker->Lookup(Ip("127.0.0.2"), [&](ListVerdict v) {
    called = true;
    EXPECT_FALSE(v.dnsbl_listed() || v.dnswl_listed() || v.any_failed());
  });
  EXPECT_FALSE(called);
  RunUntil([&] { return called; });
  EXPECT_TRUE(called);
}

TEST_F(DnsListCheckerTest, DestroyingTheCheckerAnswersPendingLookups) {
  BlackholeDns blackhole;
  DnsListOptions options = Options({List(ListKind::kBlock, "bl.test")}, blackhole.servers());
  options.timeout = 5000ms;
  auto checker = Checker(std::move(options));
  ASSERT_TRUE(checker);
  std::optional<ListVerdict> verdict;
  checker->Lookup(Ip("127.0.0.2"), [&](ListVerdict v) { verdict = std::move(v); });
  io_.restart();
  for (int i = 0; i < 5; ++i) io_.poll();  // the query is sent
  checker.reset();
  auto start = std::chrono::steady_clock::now();
  RunUntil([&] { return verdict.has_value(); });
  ASSERT_TRUE(verdict.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);
  ASSERT_EQ(verdict->failures.size(), 1u);
  EXPECT_EQ(verdict->failures[0], "bl.test: shut down");
}

TEST_F(DnsListCheckerTest, RejectsABadServerList) {
  DnsListOptions options = Options({List(ListKind::kBlock, "bl.test")}, "not a server list");
  EXPECT_FALSE(DnsListChecker::Create(io_, std::move(options), clock_).ok());
  DnsListOptions zero = Options({});
  zero.timeout = 0ms;
  EXPECT_FALSE(DnsListChecker::Create(io_, std::move(zero), clock_).ok());
}

// ---------------------------------------------------------------------------------------
// DNS garbage from a scripted server: always a failed (never a listed) verdict, no crash.

// The query's header and question with QR set, followed by `body`; `answers` is the
// ANCOUNT claimed.
std::vector<uint8_t> ReplyWith(const std::vector<uint8_t>& query, unsigned rcode, unsigned answers,
                               const std::vector<uint8_t>& body) {
  if (query.size() < 12) return {};
  std::vector<uint8_t> reply = query;
  reply[2] = 0x81;
  reply[3] = static_cast<uint8_t>(0x80 | rcode);
  reply[6] = static_cast<uint8_t>(answers >> 8);
  reply[7] = static_cast<uint8_t>(answers & 0xFF);
  reply.insert(reply.end(), body.begin(), body.end());
  return reply;
}

TEST_F(DnsListCheckerTest, GarbageAnswersFailCleanly) {
  struct Case {
    const char* what;
    ScriptedDns::Responder respond;
  };
  std::vector<Case> cases = {
      {"answers promised, none sent",
       [](const std::vector<uint8_t>& q) { return ReplyWith(q, 0, 3, {}); }},
      {"A record with 3 bytes of data",
       [](const std::vector<uint8_t>& q) {
         return ReplyWith(q, 0, 1, {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 127, 0, 0});
       }},
      {"rdlength past the end",
       [](const std::vector<uint8_t>& q) {
         return ReplyWith(q, 0, 1, {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0xFF, 0xFF, 127});
       }},
      {"answer name pointing at itself",
       [](const std::vector<uint8_t>& q) {
         auto at = static_cast<uint8_t>(q.size());
         return ReplyWith(q, 0, 1, {0xC0, at, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 2});
       }},
      {"rcode 9 (NOTAUTH)", [](const std::vector<uint8_t>& q) { return ReplyWith(q, 9, 0, {}); }},
      {"header only",
       [](const std::vector<uint8_t>& q) {
         auto reply = ReplyWith(q, 0, 0, {});
         reply.resize(std::min<size_t>(reply.size(), 12));
         return reply;
       }},
  };
  for (const Case& c : cases) {
    ScriptedDns dns(c.respond);
    ASSERT_NE(dns.port(), 0);
    DnsListOptions options = Options({List(ListKind::kBlock, "bl.test")}, dns.servers());
    options.timeout = 500ms;
    auto checker = Checker(std::move(options));
    ASSERT_TRUE(checker);
    auto start = std::chrono::steady_clock::now();
    ListVerdict verdict = Lookup(*checker, "127.0.0.2");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms + 500ms) << c.what;
    EXPECT_FALSE(verdict.dnsbl_listed()) << c.what;
    EXPECT_EQ(verdict.failures.size(), 1u) << c.what;
    EXPECT_GE(dns.queries(), 1) << c.what;
    if (!verdict.failures.empty()) std::cout << c.what << " -> " << verdict.failures[0] << "\n";
  }
}

}  // namespace
}  // namespace greylight::reputation
