#include "tools/explain.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "engine/greylister.h"
#include "protocol/policy_request.h"
#include "reputation/client_group.h"
#include "reputation/greytrap.h"
#include "store/memory_store.h"
#include "whitelist/whitelist.h"

namespace greylight::tools {
namespace {

constexpr long long T = 1800000000;  // the compat spec's base time
constexpr std::string_view kGrey =
    "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.org.html";
const std::string kKey = "192.0.2.0/alice@example.net/bob@example.org";
const std::string kDomainKey = "domain:example.net/alice@example.net/bob@example.org";

std::map<std::string, std::string> Snapshot(store::Store& store) {
  std::map<std::string, std::string> records;
  for (store::Table table : store::kAllTables) {
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

// The system's public suffix list, as greylightd and the tool load it.
const reputation::Psl& SystemPsl() {
  static const reputation::Psl* psl = [] {
    auto loaded = reputation::Psl::LoadSystem();
    EXPECT_TRUE(loaded.ok()) << loaded.status().message();
    return loaded.ok() ? loaded.value().release() : nullptr;
  }();
  return *psl;
}

std::shared_ptr<const reputation::Greytraps> Traps(std::string_view text) {
  auto traps = reputation::Greytraps::FromText("traps", text);
  EXPECT_TRUE(traps.ok()) << traps.status().message();
  return traps.ok() ? *traps : reputation::Greytraps::Empty();
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
    ExplainInputs inputs = inputs_;
    inputs.whitelists = whitelists;
    auto before = Snapshot(*store_);
    auto result =
        Explain(request, FromUnixSeconds(now), FromUnixSeconds(now), config_, inputs, *store_);
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

  // Groups clients by domain (--lookup-by=domain or smart).
  void LookupBy(reputation::LookupBy lookup_by) {
    config_.engine.lookup_by = lookup_by;
    inputs_.psl = &SystemPsl();
  }

  cli::PolicyConfig config_;
  ExplainInputs inputs_;
  std::shared_ptr<const reputation::Greytraps> traps_ = Traps("spamtrap@example.org\nold-staff@\n");
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
  EXPECT_TRUE(
      Has(e, "decision: pass (client AWL); the reply record and the triplet are not consulted\n"))
      << e.text;
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

// bob@example.org wrote to alice@example.net: her mail to bob is a reply.
TEST_F(ExplainTest, AReplyPassesAndShowsTheRecordAndWhenItEnds) {
  Put(store::Table::kReplies, "alice@example.net/bob@example.org", "3,1800000000");
  Explanation e = Run(Request(), T + 3600);
  EXPECT_EQ(e.action, "DUNNO");
  EXPECT_TRUE(Has(e,
                  "reply tracking: key alice@example.net/bob@example.org\n"
                  "  stored: 3 outbound messages, the last 2027-01-15T08:00:00Z (1800000000)\n"
                  "  state: bob@example.org wrote to alice@example.net: replies pass until "
                  "2027-02-19T08:00:00Z (1803024000) (max-age 3024000 s (35d) after the last "
                  "message)\n"
                  "decision: pass (reply); the triplet is not consulted and the auto-whitelist "
                  "not counted\n"))
      << e.text;
  EXPECT_FALSE(Has(e, "triplet: key")) << e.text;

  // Past max-age the record counts as absent and the triplet decides.
  Explanation old = Run(Request(), T + 35 * 86400 + 1);
  EXPECT_EQ(old.action, kGrey);
  EXPECT_TRUE(Has(old, "last sent 2027-01-15T08:00:00Z (1800000000) is more than max-age"))
      << old.text;
  EXPECT_TRUE(Has(old, "triplet: key " + kKey)) << old.text;
}

TEST_F(ExplainTest, NoReplyRecordAndTheNullSender) {
  Explanation e = Run(Request(), T);
  EXPECT_TRUE(Has(e,
                  "reply tracking: key alice@example.net/bob@example.org\n  stored: none\n"
                  "triplet: key"))
      << e.text;
  Explanation bounce = Run(Request("192.0.2.10", ""), T);
  EXPECT_TRUE(Has(bounce, "reply tracking: not consulted for the null sender\n")) << bounce.text;
}

// A trapped client is greylisted even for a reply: the trap is evidence about the client.
TEST_F(ExplainTest, ATrappedClientIsGreylistedEvenForAReply) {
  inputs_.greytraps = traps_.get();
  Put(store::Table::kReplies, "alice@example.net/bob@example.org", "1,1800000000");
  Put(store::Table::kTraps, "192.0.2.10", "1800003600,1800000000");
  Explanation e = Run(Request(), T + 60);
  EXPECT_EQ(e.action, kGrey);
  EXPECT_TRUE(Has(e, "the auto-whitelist, the reply record and the triplet are not consulted"))
      << e.text;
}

TEST_F(ExplainTest, BadClientAddressIsDunno) {
  Explanation e = Run(Request("unknown"), T);
  EXPECT_EQ(e.action, "DUNNO");
  EXPECT_TRUE(Has(e, "is not an IP address")) << e.text;
}

TEST_F(ExplainTest, AwlDisabled) {
  config_.timing.awl_threshold = 0;
  Put(store::Table::kClients, "192.0.2.10", "50,1800000000");
  Explanation e = Run(Request(), T);
  EXPECT_EQ(e.action, kGrey);
  EXPECT_TRUE(Has(e, "client auto-whitelist: disabled")) << e.text;
}

TEST_F(ExplainTest, DomainModeFindsTheRecordOfTheClientsDomain) {
  LookupBy(reputation::LookupBy::kDomain);
  // greylightd keyed the triplet and the auto-whitelist by the domain of the verified name
  // when the message first came from 192.0.2.10; the retry comes from another network.
  Put(store::Table::kTriplets, kDomainKey, "1800000000,1800000300");
  Put(store::Table::kClients, "domain:example.net", "1,1800000300");
  Put(store::Table::kTriplets, kKey, "1800000000,1800000000");  // the subnet key: not used
  Explanation e = Run(Request("198.51.100.7"), T + 1000);
  EXPECT_EQ(e.action, "DUNNO");
  EXPECT_TRUE(Has(e,
                  "whitelists: none loaded\n"
                  "client group: domain:example.net (--lookup-by=domain)\n"
                  "greytraps: none (no --greytrap-recipients)\n"))
      << e.text;
  EXPECT_TRUE(Has(e,
                  "client auto-whitelist: key domain:example.net (threshold 5)\n  stored: "
                  "count 1, last seen 2027-01-15T08:05:00Z (1800000300)\n"))
      << e.text;
  EXPECT_TRUE(Has(e, "triplet: key " + kDomainKey + "\n  stored: first seen")) << e.text;
  EXPECT_TRUE(Has(e, "decision: pass (triplet found)\n")) << e.text;

  // An unverified client falls back to its subnet, and says why.
  ExplainRequest unverified = Request();
  unverified.client_name = "unknown";
  Explanation fallback = Run(unverified, T + 100);
  EXPECT_TRUE(Has(fallback, "client group: 192.0.2.0 (unverified name) (--lookup-by=domain)\n"))
      << fallback.text;
  EXPECT_TRUE(Has(fallback, "triplet: key " + kKey + "\n")) << fallback.text;
  EXPECT_EQ(fallback.action, kGrey);
}

TEST_F(ExplainTest, SmartModeKeysGenericNamesBySubnet) {
  LookupBy(reputation::LookupBy::kSmart);
  Put(store::Table::kTriplets, kDomainKey, "1800000000,1800000300");
  ExplainRequest dynamic = Request("192.0.2.10");
  dynamic.client_name = "dsl-192-0-2-10.example.net";
  Explanation e = Run(dynamic, T + 1000);
  EXPECT_TRUE(Has(e, "client group: 192.0.2.0 (name embeds address) (--lookup-by=smart)\n"))
      << e.text;
  EXPECT_TRUE(Has(e, "triplet: key " + kKey + "\n  stored: none\n")) << e.text;
  EXPECT_EQ(e.action, kGrey);
  Explanation named = Run(Request("192.0.2.10"), T + 1000);
  EXPECT_TRUE(Has(named, "client group: domain:example.net (--lookup-by=smart)\n")) << named.text;
  EXPECT_EQ(named.action, "DUNNO");
}

TEST_F(ExplainTest, DomainModeWithoutThePublicSuffixListIsRefused) {
  config_.engine.lookup_by = reputation::LookupBy::kDomain;
  auto result =
      Explain(Request(), FromUnixSeconds(T), FromUnixSeconds(T), config_, inputs_, *store_);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "--lookup-by=domain needs the public suffix list");
}

TEST_F(ExplainTest, AddressModesShowNoGroup) {
  config_.engine.lookup_by = reputation::LookupBy::kHost;
  Explanation e = Run(Request(), T);
  EXPECT_FALSE(Has(e, "client group:")) << e.text;
  EXPECT_TRUE(Has(e, "triplet: key 192.0.2.10/32/alice@example.net/bob@example.org\n")) << e.text;
}

// --spf-keys: explain asks SPF as greylightd does (here a fake that answers on the "event
// loop" run_until runs) and shows the result and the key it gives.
TEST_F(ExplainTest, SpfKeysShowTheResultAndTheDomainKey) {
  config_.engine.spf_keys = true;
  config_.engine.keys.decode_srs = true;
  spf::SpfResult result;
  std::vector<std::function<void(spf::SpfResult)>> pending;
  std::vector<spf::SpfRequest> asked;
  inputs_.spf = [&](spf::SpfRequest request, std::function<void(spf::SpfResult)> done) {
    asked.push_back(std::move(request));
    pending.push_back(std::move(done));
  };
  inputs_.run_until = [&](const std::function<bool()>& finished) {
    while (!finished() && !pending.empty()) {
      auto done = std::move(pending.back());
      pending.pop_back();
      done(result);
    }
  };
  result.code = spf::SpfCode::kPass;
  result.domain = "example.net";
  result.mechanism = "ip4:198.51.100.0/24";
  result.record_domain = "_spf.example.net";
  Put(store::Table::kTriplets, "spf:example.net/alice@example.net/bob@example.org",
      "1800000000,1800000000");
  Explanation e = Run(Request("198.51.100.7"), T + 400);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].domain, "example.net");
  EXPECT_TRUE(Has(e,
                  "SPF: pass example.net, by ip4:198.51.100.0/24 in _spf.example.net's record: "
                  "the client is keyed by the domain (spf:example.net)\n"
                  "client group: spf:example.net (--spf-keys)\n"))
      << e.text;
  EXPECT_TRUE(Has(e, "client auto-whitelist: key spf:example.net (threshold 5)\n")) << e.text;
  EXPECT_TRUE(Has(e, "state: pending, delay over")) << e.text;
  EXPECT_TRUE(e.action.starts_with("PREPEND X-Greylist:")) << e.action;

  // A broad pass and DNS trouble key by --lookup-by, and say so.
  result.broad = true;
  result.mechanism = "+all";
  result.record_domain = "example.net";
  e = Run(Request("198.51.100.7"), T + 400);
  EXPECT_TRUE(Has(e,
                  "SPF: pass example.net (broad), by +all in example.net's record: too broad to "
                  "stand for one sender, keyed by --lookup-by=subnet as without SPF\n"))
      << e.text;
  EXPECT_FALSE(Has(e, "client group:")) << e.text;
  EXPECT_EQ(e.action, kGrey);
  result = spf::SpfResult();
  result.code = spf::SpfCode::kTempError;
  result.domain = "example.net";
  result.problem = "timeout";
  e = Run(Request("198.51.100.7"), T + 400);
  EXPECT_TRUE(
      Has(e, "SPF: temperror example.net (timeout): no SPF key, keyed by --lookup-by=subnet\n"))
      << e.text;

  // An SRS sender: keyed by the original sender, SPF asked for the forwarder.
  asked.clear();
  result.code = spf::SpfCode::kSoftFail;
  e = Run(Request("198.51.100.7", "SRS0=dV4c=3F=example.org=carol@fwd.example"), T);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].domain, "fwd.example");
  EXPECT_TRUE(Has(e, "sender: an SRS address: keyed by the original sender carol@example.org\n"))
      << e.text;
  EXPECT_TRUE(Has(e, "triplet: key 198.51.100.0/carol@example.org/bob@example.org\n")) << e.text;
}

TEST_F(ExplainTest, GreytrapHitPutsTheClientOnTheTrapList) {
  inputs_.greytraps = traps_.get();
  Put(store::Table::kClients, "192.0.2.10", "5,1800000000");  // auto-whitelisted: not honoured
  ExplainRequest to_trap = Request("192.0.2.10", "alice@example.net", "SpamTrap@example.org");
  Explanation e = Run(to_trap, T + 100);
  EXPECT_EQ(e.action, kGrey);
  EXPECT_TRUE(Has(e,
                  "whitelists: none loaded\n"
                  "greytrap recipients: traps:1: spamtrap@example.org\n"
                  "greytrap list: key 192.0.2.10\n"
                  "  stored: none\n"
                  "decision: greylist (greytrap, 86400 s (1d) missing): this request puts the "
                  "client on the trap list until 2027-01-16T08:01:40Z (1800086500); the "
                  "auto-whitelist, the reply record and the triplet are not consulted\n"
                  "action=" +
                      std::string(kGrey) + "\n"))
      << e.text;
  EXPECT_FALSE(Has(e, "client auto-whitelist")) << e.text;

  // A hit never shortens a trap.
  Put(store::Table::kTraps, "192.0.2.10", "1800200000,1800000000");
  e = Run(to_trap, T + 100);
  EXPECT_TRUE(Has(e, "  state: trapped, 199900 s (2d 7h 31m 40s) left\n")) << e.text;
  EXPECT_TRUE(Has(e,
                  "this request puts the client on the trap list until 2027-01-17T15:33:20Z "
                  "(1800200000)"))
      << e.text;
}

TEST_F(ExplainTest, TrappedClientIsGreylistedForEveryTriplet) {
  inputs_.greytraps = traps_.get();
  Put(store::Table::kTriplets, kKey, "1800000000,1800000300");  // passed
  Put(store::Table::kTraps, "192.0.2.10", "1800003600,1800000000");
  Explanation e = Run(Request(), T + 600);
  EXPECT_EQ(e.action, kGrey);
  EXPECT_TRUE(
      Has(e,
          "greytrap recipients: no match\n"
          "greytrap list: key 192.0.2.10\n"
          "  stored: trapped until 2027-01-15T09:00:00Z (1800003600), last hit "
          "2027-01-15T08:00:00Z (1800000000)\n"
          "  state: trapped, 3000 s (50m) left\n"
          "decision: greylist (greytrap, 3000 s (50m) missing): the client is on the "
          "trap list until 2027-01-15T09:00:00Z (1800003600); the auto-whitelist, the reply "
          "record and the triplet are not consulted\n"))
      << e.text;

  // Another address of the same network is not trapped: the list is per address.
  Explanation neighbour = Run(Request("192.0.2.11"), T + 600);
  EXPECT_EQ(neighbour.action, "DUNNO") << neighbour.text;

  // Once the trap has ended, the triplet decides again.
  Explanation ended = Run(Request(), T + 3600);
  EXPECT_EQ(ended.action, "DUNNO");
  EXPECT_TRUE(Has(ended,
                  "  the trap ended 2027-01-15T09:00:00Z (1800003600): greylightd treats it as "
                  "absent (expired, awaiting removal)\nclient auto-whitelist:"))
      << ended.text;
  EXPECT_TRUE(Has(ended, "decision: pass (triplet found)\n")) << ended.text;
}

TEST_F(ExplainTest, TrapListIsConsultedWheneverGreytrapsAreConfigured) {
  Put(store::Table::kTriplets, kKey, "1800000000,1800000300");
  Put(store::Table::kTraps, "192.0.2.10", "1800003600,1800000000");
  Explanation none = Run(Request("192.0.2.10", "alice@example.net", "bob@example.org"), T + 600);
  EXPECT_EQ(none.action, "DUNNO");
  EXPECT_TRUE(Has(none, "greytraps: none (no --greytrap-recipients)\nclient auto-whitelist:"))
      << none.text;
  // A trap file without entries (emptied by mistake) releases nobody: the client stays
  // on the trap list until its record ends.
  auto empty = Traps("# no traps yet\n");
  inputs_.greytraps = empty.get();
  Explanation empty_list = Run(Request(), T + 600);
  EXPECT_EQ(empty_list.action, kGrey) << empty_list.text;
  EXPECT_TRUE(Has(empty_list, "greytrap recipients: no match\n")) << empty_list.text;
  EXPECT_TRUE(Has(empty_list, "decision: greylist (greytrap, 3000 s (50m) missing)"))
      << empty_list.text;
}

TEST_F(ExplainTest, WhitelistedClientNeverReachesTheTrapStep) {
  inputs_.greytraps = traps_.get();
  whitelist::WhitelistBuilder builder;
  builder.AddClientText("clients.txt", "example.net\n");
  auto lists = builder.Build();
  ASSERT_TRUE(lists.ok()) << lists.status().message();
  Put(store::Table::kTraps, "192.0.2.10", "1800003600,1800000000");
  Explanation e =
      Run(Request("192.0.2.10", "alice@example.net", "spamtrap@example.org"), T, lists->get());
  EXPECT_EQ(e.action, "DUNNO");
  EXPECT_FALSE(Has(e, "greytrap")) << e.text;
}

// The property that matters: on any state, explain predicts exactly the action the
// daemon's engine then answers. Random traffic over a few clients, names, senders and
// recipients, with whitelists, greytraps, an AWL threshold of 2 and times that cross the
// delay, the hourly AWL interval, the trap ttl and the retry window; in each --lookup-by
// mode.
void ExpectExplainPredictsTheEngine(reputation::LookupBy lookup_by) {
  SCOPED_TRACE(reputation::LookupByName(lookup_by));
  cli::PolicyConfig config;
  config.engine.hostname = "mx.test";
  config.engine.version = "0.1.0";
  config.engine.lookup_by = lookup_by;
  config.timing.awl_threshold = 2;
  config.timing.retry_window = Seconds(6 * 3600);
  config.timing.max_age = Seconds(2 * 86400);
  config.timing.trap_ttl = Seconds(2 * 3600);
  store::MemoryStore store(config.timing);
  whitelist::WhitelistBuilder builder;
  builder.AddClientText("clients", "white.example\n203.0.113.0/24\n");
  builder.AddRecipientText("recipients", "abuse@\n");
  std::shared_ptr<const whitelist::Whitelists> lists = builder.Build().value();
  std::shared_ptr<const reputation::Greytraps> traps = Traps("trap@example.org\n");
  const reputation::Psl* psl =
      lookup_by == reputation::LookupBy::kDomain || lookup_by == reputation::LookupBy::kSmart
          ? &SystemPsl()
          : nullptr;
  engine::EngineOptions options = config.engine;
  engine::Greylister greylister(options, config.timing, store, psl);
  greylister.SetWhitelists(lists);
  greylister.SetGreytraps(traps);
  const ExplainInputs inputs{lists.get(), traps.get(), psl, {}, {}};

  const std::vector<std::string> clients = {"192.0.2.10",  "192.0.2.11",  "198.51.100.7",
                                            "2001:db8::1", "203.0.113.5", "bogus"};
  const std::vector<std::string> names = {"mail.example.net", "unknown", "white.example",
                                          "mx2.example.net", "dsl-5.pool.example.com"};
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
  // Every kind of answer the traffic must reach. A few seeds take longer than 5,000
  // requests to reach them all: the run goes on until they have, within a bound.
  const std::set<policy::Reason> all_kinds = {policy::Reason::kNew,
                                              policy::Reason::kEarlyRetry,
                                              policy::Reason::kPassFirst,
                                              policy::Reason::kPassed,
                                              policy::Reason::kClientWhitelist,
                                              policy::Reason::kRecipientWhitelist,
                                              policy::Reason::kClientAwl,
                                              policy::Reason::kGreytrap,
                                              policy::Reason::kBadClientAddress};
  constexpr int kMinRequests = 5000, kMaxRequests = 50'000;
  std::set<policy::Reason> seen;
  for (int i = 0;
       i < kMaxRequests && (i < kMinRequests || !std::includes(seen.begin(), seen.end(),
                                                               all_kinds.begin(), all_kinds.end()));
       ++i) {
    now += i % 500 == 499 ? 3 * 86400 : pick(steps);
    // A trap address now and then: clients spend some of the run trapped, most not.
    std::string recipient = random() % 40 == 0 ? "trap@example.org" : pick(recipients);
    ExplainRequest request{pick(clients), pick(names), pick(senders), recipient};
    auto explained =
        Explain(request, FromUnixSeconds(now), FromUnixSeconds(now), config, inputs, store);
    ASSERT_TRUE(explained.ok()) << explained.status().message();

    protocol::PolicyRequest policy_request;
    policy_request.Add("request", "smtpd_access_policy");
    policy_request.Add("client_address", request.client_address);
    policy_request.Add("client_name", request.client_name);
    policy_request.Add("sender", request.sender);
    policy_request.Add("recipient", request.recipient);
    policy_request.Add("etrn_domain", "");
    policy_request.Add("instance", fmt::format("i{}", i));
    std::optional<engine::Decision> decision;
    greylister.Decide(policy_request, FromUnixSeconds(now), headers,
                      [&](engine::Decision d) { decision = std::move(d); });
    ASSERT_TRUE(decision.has_value());
    ASSERT_EQ(explained->action, decision->action) << "step " << i << "\n" << explained->text;
    // Same answer for the same reason: explain names the outcome the engine logs.
    if (decision->reason == policy::Reason::kGreytrap) {
      ASSERT_NE(explained->text.find("decision: greylist (greytrap, "), std::string::npos)
          << "step " << i << "\n"
          << explained->text;
    }
    seen.insert(decision->reason);
  }
  // The traffic reached every kind of answer.
  for (policy::Reason reason : all_kinds) {
    EXPECT_TRUE(seen.contains(reason)) << policy::ReasonWord(reason);
  }
}

TEST(ExplainPropertyTest, PredictsTheEngineOnRandomTrafficBySubnet) {
  ExpectExplainPredictsTheEngine(reputation::LookupBy::kSubnet);
}

TEST(ExplainPropertyTest, PredictsTheEngineOnRandomTrafficByHost) {
  ExpectExplainPredictsTheEngine(reputation::LookupBy::kHost);
}

TEST(ExplainPropertyTest, PredictsTheEngineOnRandomTrafficByDomain) {
  ExpectExplainPredictsTheEngine(reputation::LookupBy::kDomain);
}

TEST(ExplainPropertyTest, PredictsTheEngineOnRandomTrafficSmart) {
  ExpectExplainPredictsTheEngine(reputation::LookupBy::kSmart);
}

}  // namespace
}  // namespace greylight::tools
