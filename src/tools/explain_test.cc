#include "tools/explain.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "engine/greylister.h"
#include "protocol/policy_request.h"
#include "store/memory_store.h"
#include "whitelist/whitelist.h"

namespace greylight::tools {
namespace {

constexpr long long T = 1800000000;  // the compat spec's base time
constexpr std::string_view kGrey =
    "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html";
const std::string kKey = "192.0.2.0/alice@example.net/bob@example.org";

std::map<std::string, std::string> Snapshot(store::Store& store) {
  std::map<std::string, std::string> records;
  for (store::Table table : {store::Table::kTriplets, store::Table::kClients}) {
    EXPECT_TRUE(
        store
            .ForEach(table,
                     [&](std::string_view key, std::string_view value) {
                       records[std::string(store::TableName(table)) + ":" + std::string(key)] =
                           std::string(value);
                       return true;
                     })
            .ok());
  }
  return records;
}

class ExplainTest : public testing::Test {
 protected:
  void SetUp() override {
    config_.engine.hostname = "mx.test";
    config_.engine.version = "0.1.0";
    store_ = std::make_unique<store::MemoryStore>(config_.timing);
  }

  ExplainRequest Request(std::string client = "192.0.2.10",
                         std::string sender = "alice@example.net",
                         std::string recipient = "bob@example.org") {
    return {client, "mail.example.net", sender, recipient};
  }

  Explanation Run(const ExplainRequest& request, long long now,
                  const policy::WhitelistMatcher* whitelists = nullptr) {
    auto before = Snapshot(*store_);
    auto result =
        Explain(request, FromUnixSeconds(now), FromUnixSeconds(now), config_, whitelists, *store_);
    EXPECT_TRUE(result.ok()) << result.status().message();
    EXPECT_EQ(Snapshot(*store_), before) << "explain must not write";
    return result.ok() ? result.value() : Explanation{};
  }

  void Put(store::Table table, const std::string& key, const std::string& value) {
    ASSERT_TRUE(store_->Put(table, key, value).ok());
  }

  static bool Has(const Explanation& e, std::string_view text) {
    return e.text.find(text) != std::string::npos;
  }

  cli::PolicyConfig config_;
  std::unique_ptr<store::MemoryStore> store_;
};

TEST_F(ExplainTest, NewTriplet) {
  Explanation e = Run(Request(), T);
  EXPECT_EQ(e.action, kGrey);
  EXPECT_TRUE(Has(e, "triplet: key " + kKey + "\n  stored: none\n  state: new\n")) << e.text;
  EXPECT_TRUE(Has(e, "decision: greylist (new, 300 s (5m) missing)")) << e.text;
  EXPECT_TRUE(e.text.ends_with("action=" + std::string(kGrey) + "\n")) << e.text;
}

TEST_F(ExplainTest, PendingTripletShowsSecondsLeft) {
  Put(store::Table::kTriplets, kKey, "1800000000,1800000000");
  Explanation e = Run(Request(), T + 60);
  EXPECT_EQ(e.action, kGrey);
  EXPECT_TRUE(Has(e,
                  "  stored: first seen 2027-01-15T08:00:00Z (1800000000), last seen "
                  "2027-01-15T08:00:00Z (1800000000)\n"))
      << e.text;
  EXPECT_TRUE(Has(e,
                  "  state: pending, 240 s (4m) left: a retry passes from "
                  "2027-01-15T08:05:00Z (1800000300)\n"))
      << e.text;
  EXPECT_TRUE(Has(e, "decision: greylist (early-retry, 240 s (4m) missing)")) << e.text;
}

TEST_F(ExplainTest, FirstAcceptanceGetsTheHeaderAndCountsTowardTheAwl) {
  Put(store::Table::kTriplets, kKey, "1800000000,1800000060");
  Explanation e = Run(Request(), T + 300);
  EXPECT_TRUE(
      e.action.starts_with("PREPEND X-Greylist: delayed 300 seconds by greylight-0.1.0 at "
                           "mx.test; "))
      << e.action;
  EXPECT_TRUE(Has(e, "decision: pass (triplet found, delay=300): the first accepted delivery"))
      << e.text;
  EXPECT_TRUE(Has(e, "  client auto-whitelist: this delivery counts: count becomes 1 of 5\n"))
      << e.text;
}

TEST_F(ExplainTest, PassedTriplet) {
  Put(store::Table::kTriplets, kKey, "1800000000,1800000300");
  Explanation e = Run(Request(), T + 1000);
  EXPECT_EQ(e.action, "DUNNO");
  EXPECT_TRUE(Has(e, "  state: passed")) << e.text;
  EXPECT_TRUE(Has(e, "  expires: removed after 2027-02-19T08:05:00Z (1803024300)")) << e.text;
  EXPECT_TRUE(Has(e, "decision: pass (triplet found)\n")) << e.text;
}

TEST_F(ExplainTest, AutoWhitelistedClient) {
  Put(store::Table::kClients, "192.0.2.10", "5,1800000000");
  Put(store::Table::kTriplets, kKey, "1800000000,1800000000");
  Explanation e = Run(Request(), T + 10);
  EXPECT_EQ(e.action, "DUNNO");
  EXPECT_TRUE(Has(e,
                  "client auto-whitelist: key 192.0.2.10 (threshold 5)\n  stored: count 5, "
                  "last seen 2027-01-15T08:00:00Z (1800000000)\n  state: auto-whitelisted\n"))
      << e.text;
  EXPECT_TRUE(Has(e, "decision: pass (client AWL); the triplet is not consulted\n")) << e.text;
  EXPECT_FALSE(Has(e, "triplet: key")) << e.text;
}

TEST_F(ExplainTest, WhitelistHitsNameFileLineAndEntry) {
  whitelist::WhitelistBuilder builder;
  builder.AddClientText("clients.txt", "# comment\nexample.net\n");
  builder.AddRecipientText("recipients.txt", "postmaster@\n");
  auto lists = builder.Build();
  ASSERT_TRUE(lists.ok()) << lists.status().message();
  Explanation client = Run(Request(), T, lists->get());
  EXPECT_EQ(client.action, "DUNNO");
  EXPECT_TRUE(Has(client, "client whitelist: clients.txt:2: example.net\n")) << client.text;
  EXPECT_TRUE(Has(client, "decision: pass (client whitelist)")) << client.text;

  ExplainRequest to_postmaster = Request("198.51.100.7", "a@b.example", "postmaster@example.org");
  to_postmaster.client_name = "unknown";
  Explanation recipient = Run(to_postmaster, T, lists->get());
  EXPECT_EQ(recipient.action, "DUNNO");
  EXPECT_TRUE(Has(recipient,
                  "client whitelist: no match\nrecipient whitelist: recipients.txt:1: "
                  "postmaster@\n"))
      << recipient.text;
}

TEST_F(ExplainTest, MalformedAndExpiredRecordsCountAsAbsent) {
  Put(store::Table::kTriplets, kKey, "garbage");
  Explanation malformed = Run(Request(), T);
  EXPECT_EQ(malformed.action, kGrey);
  EXPECT_TRUE(Has(malformed, "stored value 'garbage' is malformed")) << malformed.text;
  EXPECT_TRUE(Has(malformed, "decision: greylist (new,")) << malformed.text;

  Put(store::Table::kTriplets, kKey, "1700000000,1700000300");  // passed, long ago
  Explanation expired = Run(Request(), T);
  EXPECT_EQ(expired.action, kGrey);
  EXPECT_TRUE(Has(expired,
                  "is more than max-age (3024000 s (35d)) ago: greylightd treats it as "
                  "absent"))
      << expired.text;
}

TEST_F(ExplainTest, AbandonedAttemptStartsOver) {
  Put(store::Table::kTriplets, kKey, "1800000000,1800000000");
  Explanation e = Run(Request(), T + 3 * 86400);
  EXPECT_EQ(e.action, kGrey);
  EXPECT_TRUE(Has(e, "state: pending, abandoned")) << e.text;
  EXPECT_TRUE(Has(e, "decision: greylist (new,")) << e.text;
}

TEST_F(ExplainTest, BadClientAddressIsDunno) {
  Explanation e = Run(Request("unknown"), T);
  EXPECT_EQ(e.action, "DUNNO");
  EXPECT_TRUE(Has(e, "is not an IP address")) << e.text;
}

TEST_F(ExplainTest, AwlDisabled) {
  config_.timing.awl_threshold = 0;
  config_.engine.awl_enabled = false;
  Put(store::Table::kClients, "192.0.2.10", "50,1800000000");
  Explanation e = Run(Request(), T);
  EXPECT_EQ(e.action, kGrey);
  EXPECT_TRUE(Has(e, "client auto-whitelist: disabled")) << e.text;
}

// The property that matters: on any state, explain predicts exactly the action the
// daemon's engine then answers. Random traffic over a few clients, senders and
// recipients, with whitelists, an AWL threshold of 2 and times that cross the delay, the
// hourly AWL interval and the retry window.
TEST_F(ExplainTest, PredictsTheEngineOnRandomTraffic) {
  config_.timing.awl_threshold = 2;
  config_.timing.retry_window = Seconds(6 * 3600);
  config_.timing.max_age = Seconds(2 * 86400);
  store_ = std::make_unique<store::MemoryStore>(config_.timing);
  whitelist::WhitelistBuilder builder;
  builder.AddClientText("clients", "white.example\n203.0.113.0/24\n");
  builder.AddRecipientText("recipients", "abuse@\n");
  std::shared_ptr<const whitelist::Whitelists> lists = builder.Build().value();
  engine::EngineOptions options = config_.engine;
  options.awl_enabled = true;
  engine::Greylister greylister(options, *store_);
  greylister.SetWhitelists(lists);

  const std::vector<std::string> clients = {"192.0.2.10",  "192.0.2.11",  "198.51.100.7",
                                            "2001:db8::1", "203.0.113.5", "bogus"};
  const std::vector<std::string> names = {"mail.example.net", "unknown", "white.example"};
  const std::vector<std::string> senders = {"alice@example.net", "Alice+x@Example.net", "",
                                            "bounce-12@example.com"};
  const std::vector<std::string> recipients = {"bob@example.org", "carol@example.org",
                                               "abuse@example.org"};
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 random(seed);
  auto pick = [&](const auto& list) { return list[random() % std::size(list)]; };
  // Short steps, so that clients collect first deliveries an hour apart, some past the
  // retry window; every 500 requests a jump past max-age.
  const long long steps[] = {0, 1, 59, 299, 300, 301, 300, 600, 1800, 3600, 7200, 6 * 3600, 86400};
  long long now = T;
  engine::HeaderTracker headers;
  std::set<engine::Outcome> seen;
  for (int i = 0; i < 5000; ++i) {
    now += i % 500 == 499 ? 3 * 86400 : pick(steps);
    ExplainRequest request{pick(clients), pick(names), pick(senders), pick(recipients)};
    auto explained =
        Explain(request, FromUnixSeconds(now), FromUnixSeconds(now), config_, lists.get(), *store_);
    ASSERT_TRUE(explained.ok());

    protocol::PolicyRequest policy_request;
    policy_request.Add("request", "smtpd_access_policy");
    policy_request.Add("client_address", request.client_address);
    policy_request.Add("client_name", request.client_name);
    policy_request.Add("sender", request.sender);
    policy_request.Add("recipient", request.recipient);
    policy_request.Add("etrn_domain", "");
    policy_request.Add("instance", "i" + std::to_string(i));
    std::optional<engine::Decision> decision;
    greylister.Decide(policy_request, FromUnixSeconds(now), headers,
                      [&](engine::Decision d) { decision = std::move(d); });
    ASSERT_TRUE(decision.has_value());
    ASSERT_EQ(explained->action, decision->action) << "step " << i << "\n" << explained->text;
    seen.insert(decision->outcome);
  }
  // The traffic reached every kind of answer.
  for (engine::Outcome outcome :
       {engine::Outcome::kGreylistNew, engine::Outcome::kGreylistEarlyRetry,
        engine::Outcome::kPassFirst, engine::Outcome::kPassTriplet,
        engine::Outcome::kClientWhitelist, engine::Outcome::kRecipientWhitelist,
        engine::Outcome::kClientAwl, engine::Outcome::kBadClientAddress}) {
    EXPECT_TRUE(seen.contains(outcome)) << engine::OutcomeReason(outcome);
  }
}

}  // namespace
}  // namespace greylight::tools
