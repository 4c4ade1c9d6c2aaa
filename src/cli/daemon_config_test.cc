#include "cli/daemon_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace greylight::cli {
namespace {

using namespace std::chrono_literals;

Result<DaemonConfig> Parse(std::vector<std::string> extra) {
  std::vector<std::string> args = {"--inet=127.0.0.1:10023"};
  args.insert(args.end(), extra.begin(), extra.end());
  return ParseDaemonConfig(args);
}

// Every numeric option's default is the one --help shows (the option table).
TEST(DaemonConfigTest, NumericDefaultsAreTheDocumentedOnes) {
  auto parsed = Parse({});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const DaemonConfig& c = *parsed;
  EXPECT_EQ(c.policy.timing.delay, Seconds(300));
  EXPECT_EQ(c.policy.timing.max_age, Seconds(35 * 86400));
  EXPECT_EQ(c.policy.timing.retry_window, Seconds(2 * 86400));
  EXPECT_EQ(c.policy.timing.awl_threshold, 5);
  EXPECT_EQ(c.policy.timing.trap_ttl, Seconds(86400));
  EXPECT_EQ(c.policy.engine.keys.ipv4_cidr, 24);
  EXPECT_EQ(c.policy.engine.keys.ipv6_cidr, 64);
  EXPECT_EQ(c.policy.store.timeout, 200ms);
  EXPECT_EQ(c.server.socket_mode, 0666u);
  EXPECT_EQ(c.server.listen_backlog, 1024);
  EXPECT_EQ(c.server.idle_timeout, 3600s);
  EXPECT_EQ(c.server.request_timeout, 60s);
  EXPECT_EQ(c.server.max_connections, 4000u);
  EXPECT_EQ(c.server.max_connections_per_peer, 1000u);
  EXPECT_EQ(c.server.parser_limits.max_line_bytes, 8192u);
  EXPECT_EQ(c.server.parser_limits.max_attributes, 128u);
  EXPECT_EQ(c.server.parser_limits.max_request_bytes, 65536u);
  EXPECT_EQ(c.policy.dns.timeout, 1000ms);
  EXPECT_EQ(c.policy.store.commit_interval, 50ms);
  EXPECT_EQ(c.policy.store.commit_interval, store::StoreConfig::kDefaultCommitInterval);
  EXPECT_EQ(c.policy.store.pending_commit_interval, 1000ms);
  EXPECT_EQ(c.policy.store.pending_commit_interval,
            store::StoreConfig::kDefaultPendingCommitInterval);
  EXPECT_EQ(c.policy.store.timeout, store::StoreConfig::kDefaultTimeout);
  EXPECT_EQ(c.policy.store.prefix, store::StoreConfig::kDefaultPrefix);
  EXPECT_EQ(c.summary_interval, 3600s);
}

TEST(DaemonConfigTest, GivenValuesAreConvertedToTheirUnits) {
  auto parsed = Parse({"--delay=60",
                       "--max-age=7",
                       "--retry-window=6h",
                       "--auto-whitelist-clients",
                       "--greytrap-ttl=600",
                       "--ipv4cidr=16",
                       "--ipv6cidr=48",
                       "--store-timeout=50",
                       "--socketmode=0600",
                       "--listen-queue-size=10",
                       "--idle-timeout=300",
                       "--request-timeout=5",
                       "--max-connections=10",
                       "--max-connections-per-peer=2",
                       "--max-line-length=1024",
                       "--max-attributes=16",
                       "--max-request-size=4096",
                       "--dns-timeout=250",
                       "--commit-interval=0",
                       "--summary-interval=0"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const DaemonConfig& c = *parsed;
  EXPECT_EQ(c.policy.timing.delay, Seconds(60));
  EXPECT_EQ(c.policy.timing.max_age, Seconds(7 * 86400));
  EXPECT_EQ(c.policy.timing.retry_window, Seconds(6 * 3600));
  EXPECT_EQ(c.policy.timing.awl_threshold, 5);  // the option without a value
  EXPECT_EQ(c.policy.timing.trap_ttl, Seconds(600));
  EXPECT_EQ(c.policy.store.timing.trap_ttl, Seconds(600)) << "the store gets the same timing";
  EXPECT_EQ(c.policy.engine.keys.ipv4_cidr, 16);
  EXPECT_EQ(c.policy.engine.keys.ipv6_cidr, 48);
  EXPECT_EQ(c.policy.store.timeout, 50ms);
  EXPECT_EQ(c.server.socket_mode, 0600u);
  EXPECT_EQ(c.server.listen_backlog, 10);
  EXPECT_EQ(c.server.idle_timeout, 300s);
  EXPECT_EQ(c.server.request_timeout, 5s);
  EXPECT_EQ(c.server.max_connections, 10u);
  EXPECT_EQ(c.server.max_connections_per_peer, 2u);
  EXPECT_EQ(c.server.parser_limits.max_line_bytes, 1024u);
  EXPECT_EQ(c.server.parser_limits.max_attributes, 16u);
  EXPECT_EQ(c.server.parser_limits.max_request_bytes, 4096u);
  EXPECT_EQ(c.policy.dns.timeout, 250ms);
  EXPECT_EQ(c.policy.store.commit_interval, 0ms);
  EXPECT_EQ(c.summary_interval, 0s);
}

// Out-of-range and malformed numbers are errors that name the option and its range.
TEST(DaemonConfigTest, BadNumbersNameTheOptionAndTheRange) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--delay=0", "--delay: '0' is not a number from 1 to 86400"},
      {"--max-age=3651", "--max-age: '3651' is not a number from 1 to 3650"},
      {"--greytrap-ttl=59", "--greytrap-ttl: '59' is not a number from 60 to 31536000"},
      {"--auto-whitelist-clients=-1",
       "--auto-whitelist-clients: '-1' is not a number from 0 to 1000000"},
      {"--ipv4cidr=33", "--ipv4cidr: '33' is not a number from 1 to 32"},
      {"--ipv6cidr=x", "--ipv6cidr: 'x' is not a number from 1 to 128"},
      {"--store-timeout=0", "--store-timeout: '0' is not a number from 1 to 60000"},
      {"--socketmode=0999", "--socketmode: '0999' is not a number from 0 to 4095"},
      {"--listen-queue-size=0", "--listen-queue-size: '0' is not a number from 1 to 65535"},
      {"--idle-timeout=", "--idle-timeout: '' is not a number from 1 to 604800"},
      {"--request-timeout=3601", "--request-timeout: '3601' is not a number from 1 to 3600"},
      {"--max-connections=0", "--max-connections: '0' is not a number from 1 to 1000000"},
      {"--max-connections-per-peer=1000001",
       "--max-connections-per-peer: '1000001' is not a number from 1 to 1000000"},
      {"--max-line-length=255", "--max-line-length: '255' is not a number from 256 to 1048576"},
      {"--max-attributes=7", "--max-attributes: '7' is not a number from 8 to 4096"},
      {"--max-request-size=1023",
       "--max-request-size: '1023' is not a number from 1024 to 16777216"},
      {"--dns-timeout=60001", "--dns-timeout: '60001' is not a number from 1 to 60000"},
      {"--commit-interval=10001", "--commit-interval: '10001' is not a number from 0 to 10000"},
      {"--summary-interval=1x", "--summary-interval: '1x' is not a number from 0 to 604800"},
  };
  for (const auto& [option, message] : cases) {
    auto parsed = Parse({option});
    ASSERT_FALSE(parsed.ok()) << option;
    EXPECT_EQ(parsed.status().message(), message) << option;
  }
  auto window = Parse({"--retry-window=0"});
  ASSERT_FALSE(window.ok());
  EXPECT_NE(window.status().message().find("--retry-window"), std::string::npos);
}

// --spf-keys shares the DNS lists' resolvers and timeout, and turns on SRS decoding, which
// postgrey's modes (subnet, host) keep off so their keys stay byte-identical to postgrey's.
TEST(DaemonConfigTest, SpfKeysAndSrsDecodingByMode) {
  auto plain = Parse({});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->policy.engine.spf_keys);
  EXPECT_FALSE(plain->policy.engine.keys.decode_srs);
  auto host = Parse({"--lookup-by-host"});
  ASSERT_TRUE(host.ok());
  EXPECT_FALSE(host->policy.engine.keys.decode_srs);
  for (const char* mode : {"--lookup-by=domain", "--lookup-by=smart"}) {
    auto grouped = Parse({mode});
    ASSERT_TRUE(grouped.ok()) << mode;
    EXPECT_TRUE(grouped->policy.engine.keys.decode_srs) << mode;
    EXPECT_FALSE(grouped->policy.engine.spf_keys) << mode;
  }
  auto spf = Parse({"--spf-keys", "--dns-timeout=300", "--dns-servers=127.0.0.1:5353"});
  ASSERT_TRUE(spf.ok()) << spf.status().message();
  EXPECT_TRUE(spf->policy.engine.spf_keys);
  EXPECT_TRUE(spf->policy.engine.keys.decode_srs);
  EXPECT_EQ(spf->policy.spf.timeout, 300ms);
  EXPECT_EQ(spf->policy.spf.servers, "127.0.0.1:5353");
}

// A cluster check is one script on one slot, which --privacy digests and client networks
// wider than the hash tag's /16 (/32) would break: refused when the options are read,
// not left to fail each request.
TEST(DaemonConfigTest, ClusterStoreRefusesKeysThatSpanSlots) {
  const std::string cluster = "--store=redis+cluster://127.0.0.1:7000,127.0.0.1:7001";
  auto privacy = Parse({cluster, "--privacy"});
  ASSERT_FALSE(privacy.ok());
  EXPECT_EQ(privacy.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(privacy.status().message(),
            "--privacy: not supported with a Redis Cluster store: a triplet's and its client's "
            "digests would be on different slots");
  auto wide = Parse({cluster, "--ipv4cidr=8"});
  ASSERT_FALSE(wide.ok());
  EXPECT_EQ(wide.status().message(),
            "--ipv4cidr=8 --ipv6cidr=64: a Redis Cluster store needs at least 16 and 32 (the "
            "hash tag is the client's /16 or /32 network)");
  EXPECT_FALSE(Parse({cluster, "--ipv6cidr=31"}).ok());
  EXPECT_TRUE(Parse({cluster, "--ipv4cidr=16", "--ipv6cidr=32"}).ok());
  // The same keys are fine on one Redis and on LMDB.
  EXPECT_TRUE(Parse({"--store=redis://127.0.0.1:6379", "--privacy", "--ipv4cidr=8"}).ok());
  EXPECT_TRUE(Parse({"--privacy", "--ipv4cidr=8"}).ok());
}

// --outbound-inet and --outbound-unix add listeners of the outbound role (reply tracking),
// after the greylisting ones; an outbound listener alone is a valid configuration (a
// submission-only host sharing the store).
TEST(DaemonConfigTest, OutboundListenersCarryTheirRole) {
  using Role = server::ListenAddress::Role;
  auto parsed = Parse({"--outbound-inet=10024", "--outbound-unix=/run/greylight/outbound.sock"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const auto& listen = parsed->server.listen;
  ASSERT_EQ(listen.size(), 3u);
  EXPECT_EQ(listen[0].role, Role::kGreylist);
  EXPECT_EQ(listen[1].role, Role::kOutbound);
  EXPECT_EQ(listen[1].ToString(), "127.0.0.1:10024");
  EXPECT_EQ(listen[2].role, Role::kOutbound);
  EXPECT_EQ(listen[2].path, "/run/greylight/outbound.sock");

  auto alone = ParseDaemonConfig({"--outbound-inet=*:10024"});
  ASSERT_TRUE(alone.ok()) << alone.status().message();
  EXPECT_EQ(alone->server.listen.size(), 2u);  // 0.0.0.0 and ::

  auto bad = Parse({"--outbound-inet=127.0.0.1:0"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--outbound-inet: invalid port in '127.0.0.1:0'");
  EXPECT_FALSE(Parse({"--outbound-unix="}).ok());
}

}  // namespace
}  // namespace greylight::cli
