#include "engine/greylister.h"
#include "engine/decision_log.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "store/memory_store.h"
#include "util/sha1.h"

namespace greylight::engine {
namespace {

using policy::GreylistTiming;
using policy::Reason;

constexpr long long T = 1800000000;  // the compat spec's base time
constexpr std::string_view kGreyText =
    "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html";

// Compat spec section 13's base request.
std::map<std::string, std::string> BaseRequest() {
  return {{"request", "smtpd_access_policy"},
          {"protocol_state", "RCPT"},
          {"protocol_name", "ESMTP"},
          {"client_address", "192.0.2.10"},
          {"client_name", "mail.example.net"},
          {"sender", "alice@example.net"},
          {"recipient", "bob@example.org"},
          {"etrn_domain", ""},
          {"instance", "i1"}};
}

// The log lines greylightd writes for `decision`, in postgrey's format.
std::vector<LogLine> Logs(const Decision& decision) {
  LogLines lines;
  RenderDecisionLog(decision, LogFormat::kPostgrey, {}, lines);
  return {lines.begin(), lines.end()};
}

class GreylisterTest : public testing::Test {
 protected:
  void Configure(GreylistTiming timing = {}, EngineOptions options = {}) {
    timing_ = timing;
    options.hostname = "vm";
    options.version = "0.1.0";
    store_ = std::make_unique<store::MemoryStore>(timing);
    greylister_ = std::make_unique<Greylister>(options, timing, *store_);
  }
  void SetUp() override { Configure(); }

  Decision Ask(long long now, std::map<std::string, std::string> changes = {},
               std::vector<std::string> remove = {}) {
    auto attributes = BaseRequest();
    for (auto& [name, value] : changes) attributes[name] = value;
    for (auto& name : remove) attributes.erase(name);
    // The decision's request fields point into the wire request: keep each one alive.
    protocol::PolicyRequest& request = wire_requests_.emplace_back();
    for (auto& [name, value] : attributes) request.Add(name, value);
    std::optional<Decision> result;
    greylister_->Decide(request, FromUnixSeconds(now), headers_,
                        [&](Decision decision) { result = std::move(decision); });
    EXPECT_TRUE(result.has_value()) << "LMDB and memory stores decide before returning";
    return result.value_or(Decision{});
  }

  std::optional<std::string> Stored(store::Table table, std::string_view key) {
    return store_->Get(table, key).value();
  }

  static std::string NoticeLine(const Decision& decision) {
    for (const LogLine& line : Logs(decision)) {
      if (line.level == log::Level::kNotice) return line.text;
    }
    return "";
  }
  static bool HasLog(const Decision& decision, log::Level level, std::string_view text) {
    for (const LogLine& line : Logs(decision)) {
      if (line.level == level && line.text == text) return true;
    }
    return false;
  }

  GreylistTiming timing_;
  std::deque<protocol::PolicyRequest> wire_requests_;
  std::unique_ptr<store::MemoryStore> store_;
  std::unique_ptr<Greylister> greylister_;
  HeaderTracker headers_;
};

const std::string kKey = "192.0.2.0/alice@example.net/bob@example.org";
const std::string kTail =
    ", client_name=mail.example.net, client_address=192.0.2.10, sender=alice@example.net, "
    "recipient=bob@example.org";

TEST_F(GreylisterTest, CompatRows1To6) {
  Decision d = Ask(T);  // row 1
  EXPECT_EQ(d.action, kGreyText);
  EXPECT_EQ(NoticeLine(d), "action=greylist, reason=new" + kTail);
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800000000,1800000000");

  EXPECT_EQ(d.reason, Reason::kNew);
  d = Ask(T + 60);  // row 2
  EXPECT_EQ(d.reason, Reason::kEarlyRetry);
  EXPECT_EQ(d.action, kGreyText);
  EXPECT_EQ(NoticeLine(d), "action=greylist, reason=early-retry (240s missing)" + kTail);
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800000000,1800000060");

  d = Ask(T + 299);  // row 3
  EXPECT_EQ(NoticeLine(d), "action=greylist, reason=early-retry (1s missing)" + kTail);

  d = Ask(T + 300, {{"queue_id", "ABC123"}, {"instance", "abc.4"}});  // row 4
  EXPECT_TRUE(
      d.action.starts_with("PREPEND X-Greylist: delayed 300 seconds by greylight-0.1.0 at vm; "))
      << d.action;
  EXPECT_EQ(NoticeLine(d), "ABC123: action=pass, reason=triplet found, delay=300" + kTail);
  EXPECT_EQ(d.reason, Reason::kPassFirst);
  EXPECT_EQ(d.delayed, Seconds(300));
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800000000,1800000300");
  EXPECT_EQ(Stored(store::Table::kClients, "192.0.2.10"), "1,1800000300");

  d = Ask(T + 301, {{"recipient", "carol@example.org"}, {"instance", "abc.4"}});  // row 5
  EXPECT_EQ(d.action, kGreyText);
  EXPECT_TRUE(NoticeLine(d).starts_with("action=greylist, reason=new"));
  EXPECT_EQ(Stored(store::Table::kTriplets, "192.0.2.0/alice@example.net/carol@example.org"),
            "1800000301,1800000301");

  d = Ask(T + 302, {{"instance", "abc.5"}});  // row 6
  EXPECT_EQ(d.action, "DUNNO");
  EXPECT_EQ(d.reason, Reason::kPassed);
  EXPECT_EQ(NoticeLine(d), "action=pass, reason=triplet found" + kTail);
  // postgrey writes last=T+302 here; greylight skips writing a passed triplet seen again
  // within GreylistTiming::kLastSeenRefresh (60 s) of its last sighting (issue 15; the
  // compat spec allows it for <= 60 s). A minute later it is written again.
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800000000,1800000300");
  Ask(T + 360, {{"instance", "abc.6"}});
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800000000,1800000360");
}

TEST_F(GreylisterTest, Row7NoEtrnDomainNoDsnPrefix) {
  Decision d = Ask(T, {}, {"etrn_domain"});
  EXPECT_EQ(d.action,
            "DEFER_IF_PERMIT Greylisted, see http://postgrey.schweikert.ch/help/example.org.html");
}

TEST_F(GreylisterTest, Row8MissingAttributeAnswersDunnoWithWarning) {
  for (std::string name : {"client_name", "client_address", "sender", "recipient"}) {
    Decision d = Ask(T, {}, {name});
    EXPECT_EQ(d.action, "DUNNO");
    EXPECT_TRUE(HasLog(d, log::Level::kWarning, "attribute missing: " + name)) << name;
    EXPECT_EQ(NoticeLine(d), "");
  }
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), std::nullopt);
}

TEST_F(GreylisterTest, Row10RetryWindowRestartsTheClock) {
  GreylistTiming timing;
  timing.retry_window = Seconds(6 * 3600);
  Configure(timing);
  EXPECT_TRUE(NoticeLine(Ask(T)).starts_with("action=greylist, reason=new"));
  EXPECT_TRUE(NoticeLine(Ask(T + 21601)).starts_with("action=greylist, reason=new"));
  EXPECT_TRUE(
      NoticeLine(Ask(T + 21700)).starts_with("action=greylist, reason=early-retry (201s missing)"));
  Decision d = Ask(T + 21901);
  EXPECT_TRUE(d.action.starts_with("PREPEND X-Greylist: delayed 300 seconds"));
  EXPECT_TRUE(NoticeLine(d).starts_with("action=pass, reason=triplet found, delay=300"));
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800021601,1800021901");
}

TEST_F(GreylisterTest, Row11AutoWhitelistAfterFiveHourlySuccesses) {
  const std::map<std::string, std::string> client = {{"client_address", "198.51.100.7"},
                                                     {"client_name", "unknown"}};
  long long now = T;
  for (int i = 1; i <= 5; ++i) {
    auto request = client;
    request["recipient"] = "user" + std::to_string(i) + "@example.org";
    request["instance"] = "m" + std::to_string(i);
    Ask(now, request);
    Decision d = Ask(now + 300, request);
    EXPECT_TRUE(d.action.starts_with("PREPEND")) << i;
    EXPECT_EQ(HasLog(d, log::Level::kWarning, "whitelisted: unknown[198.51.100.7]"), i == 5) << i;
    if (i == 5) {  // logged before the pass line, as postgrey does
      EXPECT_EQ(Logs(d).front().text, "whitelisted: unknown[198.51.100.7]");
    }
    EXPECT_EQ(Stored(store::Table::kClients, "198.51.100.7"),
              std::to_string(i) + "," + std::to_string(now + 300));
    now += 3600;
  }
  auto request = client;
  request["recipient"] = "brand-new@example.org";
  Decision d = Ask(now, request);
  EXPECT_EQ(d.action, "DUNNO");
  EXPECT_TRUE(NoticeLine(d).starts_with("action=pass, reason=client AWL"));
  EXPECT_EQ(Stored(store::Table::kTriplets, "198.51.100.0/alice@example.net/brand-new@example.org"),
            std::nullopt)
      << "auto-whitelisted clients never touch the triplet table";
  // The pass is recorded at most hourly ("for statistics"): 300 s after the last count
  // nothing changes, an hour after it the count and time move.
  EXPECT_EQ(Stored(store::Table::kClients, "198.51.100.7"), "5," + std::to_string(now - 3300));
  Ask(now + 300, request);
  EXPECT_EQ(Stored(store::Table::kClients, "198.51.100.7"), "6," + std::to_string(now + 300));
  Ask(now + 400, request);
  EXPECT_EQ(Stored(store::Table::kClients, "198.51.100.7"), "6," + std::to_string(now + 300));
}

TEST_F(GreylisterTest, AwlCountsOnlyFirstSuccessesAndOncePerHour) {
  Ask(T);
  Ask(T + 300);   // first success: count 1
  Ask(T + 4000);  // repeat delivery of a passed triplet: not counted
  EXPECT_EQ(Stored(store::Table::kClients, "192.0.2.10"), "1,1800000300");
  Ask(T + 400, {{"recipient", "carol@example.org"}});
  Ask(T + 700, {{"recipient", "carol@example.org"}});  // first success, but within the hour
  EXPECT_EQ(Stored(store::Table::kClients, "192.0.2.10"), "1,1800000300");
}

TEST_F(GreylisterTest, AwlDisabledWritesNoClientRecords) {
  GreylistTiming timing;
  timing.awl_threshold = 0;
  Configure(timing);
  Ask(T);
  Ask(T + 300);
  EXPECT_EQ(Stored(store::Table::kClients, "192.0.2.10"), std::nullopt);
}

TEST_F(GreylisterTest, Row12LookupByHostKey) {
  EngineOptions options;
  options.keys.lookup_by_host = true;
  Configure({}, options);
  Ask(T, {{"client_address", "10.0.0.1"}, {"sender", "b@c"}, {"recipient", "d@e"}});
  EXPECT_EQ(Stored(store::Table::kTriplets, "10.0.0.1/32/b@c/d@e"), "1800000000,1800000000");
}

TEST_F(GreylisterTest, Row13PrivacyKeys) {
  EngineOptions options;
  options.keys.privacy = true;
  Configure({}, options);
  Ask(T, {{"client_address", "10.0.0.1"}, {"sender", "b@c"}, {"recipient", "d@e"}});
  Ask(T + 300, {{"client_address", "10.0.0.1"}, {"sender", "b@c"}, {"recipient", "d@e"}});
  EXPECT_EQ(Stored(store::Table::kTriplets, Sha1Hex("10.0.0.0/b@c/d@e")), "1800000000,1800000300");
  EXPECT_EQ(Stored(store::Table::kClients, Sha1Hex("10.0.0.1")), "1,1800000300");
}

TEST_F(GreylisterTest, Row14UnparsableClientAddressAnswersDunno) {
  for (std::string address : {"", "unknown", "not an ip"}) {
    Decision d = Ask(T, {{"client_address", address}});
    EXPECT_EQ(d.action, "DUNNO");
    EXPECT_TRUE(
        HasLog(d, log::Level::kWarning, "can't parse client_address from postfix: " + address));
  }
}

TEST_F(GreylisterTest, RetryExactlyAtDelayPasses) {
  Ask(T);
  EXPECT_TRUE(Ask(T + 300).action.starts_with("PREPEND"));
}

TEST_F(GreylisterTest, GreylistedRetriesMoveLastButOnlyFirstDecides) {
  Ask(T);
  Ask(T + 100);
  Ask(T + 200);
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800000000,1800000200");
  EXPECT_TRUE(Ask(T + 300).action.starts_with("PREPEND"));
}

TEST_F(GreylisterTest, MaxAgeIsEnforcedAtLookup) {
  Ask(T);
  Ask(T + 300);
  long long last = T + 300;
  EXPECT_EQ(Ask(last + 35 * 86400).action, "DUNNO") << "exactly max-age is still live";
  last += 35 * 86400;
  Decision d = Ask(last + 35 * 86400 + 1);
  EXPECT_EQ(d.action, kGreyText);
  EXPECT_TRUE(NoticeLine(d).starts_with("action=greylist, reason=new"));
}

TEST_F(GreylisterTest, ExpiredAwlRecordCountsFromZero) {
  ASSERT_TRUE(store_->Put(store::Table::kClients, "192.0.2.10", "9,1800000000").ok());
  EXPECT_EQ(Ask(T + 10).action, "DUNNO");  // auto-whitelisted
  Decision d = Ask(T + 10 + 35 * 86400 + 1);
  EXPECT_EQ(d.action, kGreyText);
}

TEST_F(GreylisterTest, FirstSeenInTheFutureIsCorrected) {
  ASSERT_TRUE(store_->Put(store::Table::kTriplets, kKey, "1800001000,1800001000").ok());
  Decision d = Ask(T);
  EXPECT_TRUE(HasLog(d, log::Level::kWarning, "correcting date for first seen in the future!"));
  EXPECT_TRUE(NoticeLine(d).starts_with("action=greylist, reason=new"));
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800000000,1800000000");
}

TEST_F(GreylisterTest, CorruptRecordIsTreatedAsAbsent) {
  ASSERT_TRUE(store_->Put(store::Table::kTriplets, kKey, "garbage").ok());
  Decision d = Ask(T);
  EXPECT_TRUE(NoticeLine(d).starts_with("action=greylist, reason=new"));
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800000000,1800000000");
}

TEST_F(GreylisterTest, OneHeaderPerInstance) {
  Ask(T);
  Ask(T, {{"recipient", "carol@example.org"}});
  EXPECT_TRUE(Ask(T + 300, {{"instance", "msg"}}).action.starts_with("PREPEND"));
  Decision second = Ask(T + 300, {{"instance", "msg"}, {"recipient", "carol@example.org"}});
  EXPECT_EQ(second.action, "DUNNO");
  EXPECT_EQ(NoticeLine(second),
            "action=pass, reason=triplet found, client_name=mail.example.net, "
            "client_address=192.0.2.10, sender=alice@example.net, recipient=carol@example.org");
}

TEST_F(GreylisterTest, MissingInstanceAlwaysGetsAHeader) {
  Ask(T, {}, {"instance"});
  Ask(T, {{"recipient", "carol@example.org"}}, {"instance"});
  EXPECT_TRUE(Ask(T + 300, {}, {"instance"}).action.starts_with("PREPEND"));
  EXPECT_TRUE(Ask(T + 300, {{"recipient", "carol@example.org"}}, {"instance"})
                  .action.starts_with("PREPEND"));
}

TEST_F(GreylisterTest, PolicyTestTimeIgnoredUnlessAllowed) {
  Decision d = Ask(T, {{"policy_test_time", std::to_string(T + 1000)}});
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800000000,1800000000");
  EngineOptions options;
  options.allow_policy_test_time = true;
  Configure({}, options);
  Ask(T, {{"policy_test_time", std::to_string(T + 1000)}});
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800001000,1800001000");
  d = Ask(T, {{"policy_test_time", "yesterday"}});
  EXPECT_EQ(d.action, "DUNNO");
  EXPECT_TRUE(HasLog(d, log::Level::kWarning, "can't parse policy_test_time: yesterday"));
}

TEST_F(GreylisterTest, CustomActionAndText) {
  EngineOptions options;
  options.greylist_action = "451";
  options.greylist_text = "wait %s seconds for %r";
  Configure({}, options);
  EXPECT_EQ(Ask(T).action, "451 4.2.0 wait 300 seconds for example.org");
}

class FailingStore final : public store::Store {
 public:
  void Check(const store::CheckKeys&, UnixTime, store::CheckCallback done) override {
    done(Status::Unavailable("backend down"));
  }
  void RecordReply(std::string_view, UnixTime, store::ReplyCallback done) override {
    done(Status::Unavailable("backend down"));
  }
  Result<std::optional<std::string>> Get(store::Table, std::string_view) override {
    return Status::Unavailable("down");
  }
  Status Put(store::Table, std::string_view, std::string_view) override {
    return Status::Unavailable("down");
  }
  Status Delete(store::Table, std::string_view) override { return Status::Unavailable("down"); }
  Status ForEach(store::Table, const store::VisitFunction&) override {
    return Status::Unavailable("down");
  }
  Result<size_t> ExpireSome(UnixTime, size_t) override { return Status::Unavailable("down"); }
  Status Flush() override { return Status::Unavailable("down"); }
};

TEST(GreylisterStoreFailureTest, FailsOpenWithStoreErrorAction) {
  FailingStore store;
  EngineOptions options;
  Greylister greylister(options, GreylistTiming{}, store);
  HeaderTracker headers;
  protocol::PolicyRequest request;
  for (auto& [name, value] : BaseRequest()) request.Add(name, value);
  std::optional<Decision> decision;
  greylister.Decide(request, FromUnixSeconds(T), headers, [&](Decision d) { decision = d; });
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->action, "DUNNO");
  EXPECT_TRUE(decision->store_failed());
  ASSERT_FALSE(Logs(*decision).empty());
  EXPECT_EQ(Logs(*decision)[0].text, "store error, answering DUNNO: backend down");
}

class FixedWhitelist final : public policy::WhitelistMatcher {
 public:
  std::optional<policy::WhitelistHit> MatchClient(std::string_view name,
                                                  const policy::IpAddress&) const override {
    if (name == "ok.example") return policy::WhitelistHit{"test:1", "ok.example"};
    return std::nullopt;
  }
  std::optional<policy::WhitelistHit> MatchRecipient(std::string_view recipient) const override {
    if (recipient == "postmaster@example.org") return policy::WhitelistHit{"test:2", "postmaster@"};
    return std::nullopt;
  }
};

TEST_F(GreylisterTest, WhitelistsPassWithPostgreysReasons) {
  greylister_->SetWhitelists(std::make_shared<FixedWhitelist>());
  Decision d = Ask(T, {{"client_name", "ok.example"}});
  EXPECT_EQ(d.action, "DUNNO");
  EXPECT_TRUE(
      NoticeLine(d).starts_with("action=pass, reason=client whitelist, client_name=ok.example"));
  d = Ask(T, {{"recipient", "postmaster@example.org"}});
  EXPECT_EQ(d.action, "DUNNO");
  EXPECT_TRUE(NoticeLine(d).starts_with("action=pass, reason=recipient whitelist"));
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), std::nullopt);
}

std::shared_ptr<const reputation::Greytraps> TestTraps() {
  auto traps = reputation::Greytraps::FromText("traps", "spamtrap@example.org\nold-staff@\n");
  EXPECT_TRUE(traps.ok()) << traps.status().message();
  return traps.ok() ? *traps : nullptr;
}

// The trap-list line is logged before the decision; it names the trap entry that matched.
std::string TrapHitLine(const Decision& decision) {
  for (const LogLine& line : Logs(decision)) {
    if (line.text.starts_with("greytrap hit: ")) return line.text;
  }
  return "";
}

TEST_F(GreylisterTest, GreytrapHitTrapsTheClientForEveryTriplet) {
  GreylistTiming timing;
  timing.trap_ttl = Seconds(7200);
  Configure(timing);
  greylister_->SetGreytraps(TestTraps());
  Ask(T);
  ASSERT_TRUE(Ask(T + 300).action.starts_with("PREPEND"));  // the triplet passed

  Decision hit = Ask(T + 400, {{"recipient", "spamtrap@example.org"}});
  EXPECT_EQ(hit.reason, Reason::kGreytrap);
  EXPECT_TRUE(hit.trap_hit);
  EXPECT_EQ(hit.action,
            "DEFER_IF_PERMIT 4.2.0 Greylisted, see "
            "http://postgrey.schweikert.ch/help/example.org.html");
  EXPECT_EQ(TrapHitLine(hit),
            "greytrap hit: mail.example.net[192.0.2.10] sent to spamtrap@example.org (traps:1: "
            "spamtrap@example.org)");
  EXPECT_EQ(NoticeLine(hit).substr(0, TrapHitLine(hit).size()), TrapHitLine(hit));
  EXPECT_EQ(Stored(store::Table::kTraps, "192.0.2.10"), "1800007600,1800000400");
  EXPECT_EQ(Stored(store::Table::kTriplets, "192.0.2.0/alice@example.net/spamtrap@example.org"),
            std::nullopt);

  // The triplet that passed is greylisted now, and not advanced.
  Decision trapped = Ask(T + 500, {{"instance", "i2"}});
  EXPECT_EQ(trapped.reason, Reason::kGreytrap);
  EXPECT_FALSE(trapped.trap_hit);
  bool logged = false;
  for (const LogLine& line : Logs(trapped)) {
    logged |= line.text == "action=greylist, reason=greytrap" + kTail;
  }
  EXPECT_TRUE(logged);
  EXPECT_EQ(Stored(store::Table::kTriplets, kKey), "1800000000,1800000300");

  // Another address of the same /24 is not trapped: the list is per address.
  EXPECT_NE(Ask(T + 500, {{"client_address", "192.0.2.11"}}).reason, Reason::kGreytrap);

  // After the ttl the client passes again.
  Decision after = Ask(T + 400 + 7200, {{"instance", "i3"}});
  EXPECT_EQ(after.reason, Reason::kPassed);
}

TEST_F(GreylisterTest, TrappedClientIsNeitherAutoWhitelistedNorCounted) {
  GreylistTiming timing;
  timing.awl_threshold = 1;
  Configure(timing);
  greylister_->SetGreytraps(TestTraps());
  Ask(T);
  Ask(T + 300);  // count 1: auto-whitelisted
  EXPECT_EQ(Ask(T + 400, {{"recipient", "new@example.org"}}).reason, Reason::kClientAwl);

  Ask(T + 500, {{"recipient", "old-staff@example.org"}});
  Decision d = Ask(T + 600, {{"recipient", "new2@example.org"}});
  EXPECT_EQ(d.reason, Reason::kGreytrap) << "the auto-whitelist does not apply while trapped";
  EXPECT_EQ(Stored(store::Table::kClients, "192.0.2.10"), "1,1800000300");
}

TEST_F(GreylisterTest, WhitelistedClientsAndDisabledTrapsAreNotTrapped) {
  greylister_->SetWhitelists(std::make_shared<FixedWhitelist>());
  greylister_->SetGreytraps(TestTraps());
  Decision d = Ask(T, {{"client_name", "ok.example"}, {"recipient", "spamtrap@example.org"}});
  EXPECT_EQ(d.reason, Reason::kClientWhitelist);
  EXPECT_EQ(Stored(store::Table::kTraps, "192.0.2.10"), std::nullopt);

  greylister_->SetGreytraps(nullptr);
  d = Ask(T, {{"recipient", "spamtrap@example.org"}});
  EXPECT_EQ(d.reason, Reason::kNew);
  EXPECT_EQ(Stored(store::Table::kTraps, "192.0.2.10"), std::nullopt);
}

// A reload that leaves the trap files without entries stops new hits but releases nobody.
TEST_F(GreylisterTest, AnEmptyTrapListKeepsTrappedClientsTrapped) {
  greylister_->SetGreytraps(TestTraps());
  Ask(T, {{"recipient", "spamtrap@example.org"}});
  auto empty = reputation::Greytraps::FromText("traps", "# none\n");
  ASSERT_TRUE(empty.ok());
  greylister_->SetGreytraps(*empty);
  EXPECT_EQ(Ask(T + 400).reason, Reason::kGreytrap);
  EXPECT_EQ(
      Ask(T + 400, {{"client_address", "198.51.100.1"}, {"recipient", "spamtrap@example.org"}})
          .reason,
      Reason::kNew);
}

}  // namespace
}  // namespace greylight::engine
