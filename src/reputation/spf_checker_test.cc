#include "reputation/spf_checker.h"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "reputation/test_dns_server.h"

namespace greylight::reputation {
namespace {

using namespace std::chrono_literals;
using testing_support::BlackholeDns;
using testing_support::UnboundServer;

// SPF zones under "spf.test." served by a real unbound on loopback (a TXT record's
// data in single quotes: unbound keeps the double quotes inside as zone-file quoting). Records with
// TTL 60 except the include target's, 30; negative answers carry an SOA minimum of 30 s.
const char* const kZones = R"(
  local-zone: "spf.test." static
  local-data: "spf.test. 60 IN SOA ns.spf.test. hostmaster.spf.test. 1 3600 600 86400 30"
  local-data: 'pass.spf.test. 60 IN TXT "v=spf1 ip4:127.0.0.0/24 include:inc.spf.test -all"'
  local-data: 'pass.spf.test. 60 IN TXT "some other text"'
  local-data: 'inc.spf.test. 30 IN TXT "v=spf1 a:host.inc.spf.test -all"'
  local-data: "host.inc.spf.test. 60 IN A 127.0.1.9"
  local-data: 'mx.spf.test. 60 IN TXT "v=spf1 mx -all"'
  local-data: "mx.spf.test. 60 IN MX 10 mail.mx.spf.test."
  local-data: "mx.spf.test. 60 IN MX 20 mail2.mx.spf.test."
  local-data: "mail2.mx.spf.test. 60 IN A 127.0.2.2"
  local-data: 'split.spf.test. 60 IN TXT "v=spf1 ip4:127.0.3.0/24 " "-all"'
  local-data: 'v6.spf.test. 60 IN TXT "v=spf1 a -all"'
  local-data: "v6.spf.test. 60 IN AAAA 2001:db8::5"
  local-data: 'all.spf.test. 60 IN TXT "v=spf1 +all"'
  local-data: 'ptr.spf.test. 60 IN TXT "v=spf1 ptr -all"'
  local-data: "host.ptr.spf.test. 60 IN A 127.0.4.4"
  local-data: 'broken.spf.test. 60 IN TXT "v=spf1 include:sf.test -all"'
  local-zone: "4.0.127.in-addr.arpa." static
  local-data: "4.4.0.127.in-addr.arpa. 60 IN PTR host.ptr.spf.test."
  local-zone: "sf.test." transparent
)";
const char* const kStubs = R"(
stub-zone:
  name: "sf.test."
  stub-addr: 127.0.0.1@9
)";

class SpfCheckerTest : public ::testing::Test {
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

  std::unique_ptr<SpfChecker> Checker(std::string servers = "",
                                      std::chrono::milliseconds timeout = 2000ms) {
    SpfCheckerOptions options;
    options.servers = servers.empty() ? server_->servers() : std::move(servers);
    options.timeout = timeout;
    auto checker = SpfChecker::Create(io_, std::move(options), clock_);
    EXPECT_TRUE(checker.ok()) << checker.status().message();
    return checker.ok() ? std::move(checker.value()) : nullptr;
  }

  spf::SpfResult Check(SpfChecker& checker, std::string_view ip, std::string_view mail_from,
                       std::string_view helo = "helo.spf.test") {
    std::optional<spf::SpfResult> result;
    auto address = policy::IpAddress::Parse(ip);
    EXPECT_TRUE(address.has_value()) << ip;
    checker.Check(spf::SpfRequest::ForMailFrom(*address, mail_from, helo),
                  [&](spf::SpfResult r) { result = std::move(r); });
    EXPECT_FALSE(result.has_value());  // never inside Check
    auto deadline = std::chrono::steady_clock::now() + 10s;
    io_.restart();
    while (!result && std::chrono::steady_clock::now() < deadline) io_.run_one_for(50ms);
    EXPECT_TRUE(result.has_value()) << "no result for " << mail_from;
    return result.value_or(spf::SpfResult{});
  }

  static UnboundServer* server_;
  static std::string* start_error_;
  FakeClock clock_{FromUnixSeconds(1'700'000'000)};  // outlives the io_context
  asio::io_context io_;
};
UnboundServer* SpfCheckerTest::server_ = nullptr;
std::string* SpfCheckerTest::start_error_ = nullptr;

TEST_F(SpfCheckerTest, EvaluatesRecordsServedByARealResolver) {
  auto checker = Checker();
  ASSERT_TRUE(checker);

  spf::SpfResult direct = Check(*checker, "127.0.0.7", "alice@pass.spf.test");
  EXPECT_EQ(direct.code, spf::SpfCode::kPass) << direct.problem;
  EXPECT_EQ(direct.domain, "pass.spf.test");
  EXPECT_EQ(direct.mechanism, "ip4:127.0.0.0/24");
  EXPECT_TRUE(spf::UsablePass(direct));

  spf::SpfResult included = Check(*checker, "127.0.1.9", "alice@pass.spf.test");
  EXPECT_EQ(included.code, spf::SpfCode::kPass) << included.problem;
  EXPECT_EQ(included.mechanism, "a:host.inc.spf.test");
  EXPECT_EQ(included.record_domain, "inc.spf.test");

  EXPECT_EQ(Check(*checker, "127.0.9.9", "alice@pass.spf.test").code, spf::SpfCode::kFail);
  EXPECT_EQ(Check(*checker, "127.0.2.2", "bob@mx.spf.test").code, spf::SpfCode::kPass);
  EXPECT_EQ(Check(*checker, "127.0.3.3", "carol@split.spf.test").code, spf::SpfCode::kPass);
  EXPECT_EQ(Check(*checker, "2001:db8::5", "dave@v6.spf.test").code, spf::SpfCode::kPass);
  EXPECT_EQ(Check(*checker, "2001:db8::6", "dave@v6.spf.test").code, spf::SpfCode::kFail);

  spf::SpfResult ptr = Check(*checker, "127.0.4.4", "erin@ptr.spf.test");
  EXPECT_EQ(ptr.code, spf::SpfCode::kPass) << ptr.problem;
  EXPECT_TRUE(ptr.broad);

  spf::SpfResult all = Check(*checker, "127.0.5.5", "spam@all.spf.test");
  EXPECT_EQ(all.code, spf::SpfCode::kPass);
  EXPECT_TRUE(all.broad);
  EXPECT_FALSE(spf::UsablePass(all));

  // The null sender checks the HELO name.
  spf::SpfResult bounce = Check(*checker, "127.0.0.8", "", "pass.spf.test");
  EXPECT_EQ(bounce.code, spf::SpfCode::kPass);
  EXPECT_EQ(bounce.domain, "pass.spf.test");

  EXPECT_EQ(Check(*checker, "127.0.0.1", "x@nothing.spf.test").code, spf::SpfCode::kNone);
  // SERVFAIL inside an include: temperror, so the caller falls back.
  EXPECT_EQ(Check(*checker, "127.0.0.1", "x@broken.spf.test").code, spf::SpfCode::kTempError);
}

TEST_F(SpfCheckerTest, AnswersAreCachedForTheirTtl) {
  auto checker = Checker();
  ASSERT_TRUE(checker);
  EXPECT_EQ(Check(*checker, "127.0.1.9", "a@pass.spf.test").code, spf::SpfCode::kPass);
  const uint64_t first = checker->Stats().queries;
  EXPECT_EQ(first, 3u);  // pass TXT, inc TXT, host A
  EXPECT_EQ(Check(*checker, "127.0.1.9", "b@pass.spf.test").code, spf::SpfCode::kPass);
  EXPECT_EQ(checker->Stats().queries, first);
  EXPECT_EQ(checker->Stats().cache_hits, 3u);

  clock_.Advance(30s);  // the include's TXT (TTL 30) has expired, the others have not
  EXPECT_EQ(Check(*checker, "127.0.1.9", "c@pass.spf.test").code, spf::SpfCode::kPass);
  EXPECT_EQ(checker->Stats().queries, first + 1);
  clock_.Advance(30s);  // 60 s: all three have expired (the include's was asked again at 30 s)
  EXPECT_EQ(Check(*checker, "127.0.1.9", "d@pass.spf.test").code, spf::SpfCode::kPass);
  EXPECT_EQ(checker->Stats().queries, first + 1 + 3);
}

TEST_F(SpfCheckerTest, ConcurrentChecksShareQueries) {
  auto checker = Checker();
  ASSERT_TRUE(checker);
  constexpr int kChecks = 50;
  int passed = 0;
  int answered = 0;
  for (int i = 0; i < kChecks; ++i) {
    checker->Check(
        spf::SpfRequest::ForMailFrom(*policy::IpAddress::Parse("127.0.1.9"),
                                     "user" + std::to_string(i) + "@pass.spf.test", "helo"),
        [&](spf::SpfResult r) {
          ++answered;
          passed += r.code == spf::SpfCode::kPass ? 1 : 0;
        });
  }
  auto deadline = std::chrono::steady_clock::now() + 10s;
  io_.restart();
  while (answered < kChecks && std::chrono::steady_clock::now() < deadline) io_.run_one_for(50ms);
  EXPECT_EQ(answered, kChecks);
  EXPECT_EQ(passed, kChecks);
  EXPECT_EQ(checker->Stats().checks, static_cast<uint64_t>(kChecks));
  EXPECT_EQ(checker->Stats().queries, 3u);  // pass TXT, inc TXT, host A: once each
}

TEST_F(SpfCheckerTest, ADeadResolverEndsInTempErrorAtTheTimeout) {
  BlackholeDns blackhole;
  ASSERT_NE(blackhole.port(), 0);
  auto checker = Checker(blackhole.servers(), 300ms);
  ASSERT_TRUE(checker);
  auto start = std::chrono::steady_clock::now();
  spf::SpfResult result = Check(*checker, "127.0.0.7", "alice@pass.spf.test");
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.code, spf::SpfCode::kTempError);
  EXPECT_EQ(result.problem, "timeout");
  EXPECT_FALSE(spf::UsablePass(result));
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 300ms + 500ms);
  EXPECT_EQ(checker->Stats().timeouts, 1u);
}

TEST_F(SpfCheckerTest, DestroyingTheCheckerAnswersPendingChecks) {
  BlackholeDns blackhole;
  auto checker = Checker(blackhole.servers(), 5000ms);
  ASSERT_TRUE(checker);
  std::optional<spf::SpfResult> result;
  checker->Check(spf::SpfRequest::ForMailFrom(*policy::IpAddress::Parse("127.0.0.7"),
                                              "alice@pass.spf.test", "helo"),
                 [&](spf::SpfResult r) { result = std::move(r); });
  io_.restart();
  for (int i = 0; i < 5; ++i) io_.poll();  // the query is sent
  checker.reset();
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!result && std::chrono::steady_clock::now() < deadline) io_.run_one_for(50ms);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->code, spf::SpfCode::kTempError);
}

}  // namespace
}  // namespace greylight::reputation
