#include "reputation/dns_resolver.h"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "reputation/test_dns_server.h"

namespace greylight::reputation {
namespace {

using namespace std::chrono_literals;
using testing_support::BlackholeDns;

// Runs `io` until `done` or ten seconds pass.
void RunUntil(asio::io_context& io, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
}

TEST(DnsResolverTest, QueriesInFlightAreSharedAndShutdownAnswersThemAll) {
  BlackholeDns blackhole;
  ASSERT_NE(blackhole.port(), 0);
  asio::io_context io;
  DnsResolverOptions options;
  options.servers = blackhole.servers();
  options.query_timeout = 5000ms;
  auto resolver = DnsResolver::Create(io, options);
  ASSERT_TRUE(resolver.ok()) << resolver.status().message();
  DnsResolver& dns = *resolver.value();

  std::vector<std::string> errors;
  std::vector<bool> sent;
  bool asked_again = false;
  std::string again_error;
  asio::post(dns.strand(), [&] {
    sent.push_back(dns.Query("example.com", DnsType::kTxt, [&](const DnsRecords& records) {
      errors.push_back(records.error);
      // Asking again from inside the shutdown fails at once, inside the call.
      asked_again = true;
      dns.Query("example.com", DnsType::kA,
                [&](const DnsRecords& again) { again_error = again.error; });
    }));
    sent.push_back(dns.Query("example.com", DnsType::kTxt,
                             [&](const DnsRecords& records) { errors.push_back(records.error); }));
    sent.push_back(dns.Query("example.com", DnsType::kMx,
                             [&](const DnsRecords& records) { errors.push_back(records.error); }));
  });
  RunUntil(io, [&] { return sent.size() == 3; });
  EXPECT_EQ(sent, (std::vector<bool>{true, false, true}));  // the second joined the first
  EXPECT_TRUE(errors.empty());

  asio::post(dns.strand(), [&] { dns.Shutdown(); });
  RunUntil(io, [&] { return errors.size() == 3; });
  EXPECT_EQ(errors, (std::vector<std::string>(3, "shut down")));
  EXPECT_TRUE(asked_again);
  EXPECT_EQ(again_error, "shut down");
}

TEST(DnsResolverTest, RejectsABadServerListAndANonPositiveTimeout) {
  asio::io_context io;
  DnsResolverOptions options;
  options.servers = "not a server list";
  EXPECT_FALSE(DnsResolver::Create(io, options).ok());
  options.servers = "";
  options.query_timeout = 0ms;
  EXPECT_FALSE(DnsResolver::Create(io, options).ok());
}

}  // namespace
}  // namespace greylight::reputation
