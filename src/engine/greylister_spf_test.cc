// The SPF step of the decision (--spf-keys), with the SPF lookup and the DNS lists faked:
// which results key a client by its domain, what falls back, and that both lookups are
// asked at once.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "engine/decision_log.h"
#include "engine/greylister.h"
#include "store/memory_store.h"
#include "util/sha1.h"

namespace greylight::engine {
namespace {

using policy::GreylistTiming;
using policy::Reason;

constexpr long long T = 1800000000;

spf::SpfResult Result(spf::SpfCode code, std::string domain, std::string mechanism = "",
                      bool broad = false, std::string problem = "") {
  spf::SpfResult result;
  result.code = code;
  result.domain = std::move(domain);
  result.mechanism = std::move(mechanism);
  result.record_domain = result.mechanism.empty() ? "" : result.domain;
  result.broad = broad;
  result.problem = std::move(problem);
  return result;
}
spf::SpfResult Pass(std::string domain) {
  return Result(spf::SpfCode::kPass, std::move(domain), "ip4:198.51.100.0/23");
}

// An SPF lookup that answers only when told to (never inline, as the real checker), with
// the result set for the domain asked (none if there is none).
class FakeSpf {
 public:
  SpfLookup Lookup() {
    return [this](spf::SpfRequest request, std::function<void(spf::SpfResult)> done) {
      asked.push_back(request);
      pending.emplace_back(std::move(request), std::move(done));
    };
  }
  void AnswerAll() {
    while (!pending.empty()) {
      auto [request, done] = std::move(pending.front());
      pending.pop_front();
      auto found = results.find(request.domain);
      done(found != results.end() ? found->second : Result(spf::SpfCode::kNone, request.domain));
    }
  }

  std::map<std::string, spf::SpfResult> results;
  std::vector<spf::SpfRequest> asked;
  std::deque<std::pair<spf::SpfRequest, std::function<void(spf::SpfResult)>>> pending;
};

// A DNS list lookup that answers "not listed" only when told to.
class FakeLists {
 public:
  ListLookup Lookup() {
    return [this](const policy::IpAddress&, reputation::ListCallback done) {
      pending.push_back(std::move(done));
    };
  }
  void AnswerAll(reputation::ListVerdict verdict = {}) {
    while (!pending.empty()) {
      auto done = std::move(pending.front());
      pending.pop_front();
      done(verdict);
    }
  }
  std::deque<reputation::ListCallback> pending;
};

std::string NoticeLine(const Decision& decision, LogFormat format = LogFormat::kPostgrey) {
  LogLines lines;
  RenderDecisionLog(decision, format, {}, lines);
  for (const LogLine& line : lines) {
    if (line.level == log::Level::kNotice) return line.text;
  }
  return "";
}

class GreylisterSpfTest : public testing::Test {
 protected:
  void Configure(GreylistTiming timing = {}, EngineOptions options = {}) {
    options.hostname = "vm";
    options.version = "0.1.0";
    options.spf_keys = true;
    options.keys.decode_srs = true;
    store_ = std::make_unique<store::MemoryStore>(timing);
    greylister_ = std::make_unique<Greylister>(options, timing, *store_);
    greylister_->SetSpfLookup(spf_.Lookup());
  }
  void SetUp() override { Configure(); }

  // Starts a decision; it ends once the fakes are answered (Answer, or Ask below).
  void Start(long long now, std::map<std::string, std::string> changes) {
    std::map<std::string, std::string> attributes = {{"request", "smtpd_access_policy"},
                                                     {"client_address", "198.51.100.10"},
                                                     {"client_name", "out-1.mail.example.net"},
                                                     {"helo_name", "out-1.mail.example.net"},
                                                     {"sender", "alice@example.net"},
                                                     {"recipient", "bob@example.org"},
                                                     {"etrn_domain", ""},
                                                     {"instance", "i1"}};
    for (auto& [name, value] : changes) attributes[name] = value;
    protocol::PolicyRequest& request = wire_requests_.emplace_back();
    for (auto& [name, value] : attributes) request.Add(name, value);
    decided_.reset();
    greylister_->Decide(request, FromUnixSeconds(now), headers_,
                        [this](Decision decision) { decided_ = std::move(decision); });
  }
  Decision Ask(long long now, std::map<std::string, std::string> changes = {}) {
    Start(now, std::move(changes));
    EXPECT_FALSE(decided_) << "the lookups answer later, never inline";
    spf_.AnswerAll();
    lists_.AnswerAll();
    EXPECT_TRUE(decided_);
    return decided_.value_or(Decision{});
  }
  std::optional<std::string> Stored(store::Table table, std::string_view key) {
    return store_->Get(table, key).value();
  }

  FakeSpf spf_;
  FakeLists lists_;
  std::deque<protocol::PolicyRequest> wire_requests_;
  std::unique_ptr<store::MemoryStore> store_;
  std::unique_ptr<Greylister> greylister_;
  HeaderTracker headers_;
  std::optional<Decision> decided_;
};

TEST_F(GreylisterSpfTest, ANarrowPassMakesEveryAuthorisedAddressOneClient) {
  GreylistTiming timing;
  timing.awl_threshold = 5;
  Configure(timing);
  spf_.results["example.net"] = Pass("example.net");
  Decision first = Ask(T);
  EXPECT_EQ(first.reason, Reason::kNew);
  EXPECT_EQ(first.group, "spf:example.net");
  ASSERT_TRUE(first.spf);
  EXPECT_TRUE(spf::UsablePass(*first.spf));
  EXPECT_EQ(Stored(store::Table::kTriplets, "spf:example.net/alice@example.net/bob@example.org"),
            "1800000000,1800000000");
  EXPECT_EQ(NoticeLine(first),
            "action=greylist, reason=new, group=spf:example.net, spf=pass example.net, "
            "client_name=out-1.mail.example.net, client_address=198.51.100.10, "
            "sender=alice@example.net, recipient=bob@example.org");

  // The retry comes from another network the domain authorises: the same client.
  Decision retry = Ask(T + 300, {{"client_address", "198.51.101.77"}});
  EXPECT_EQ(retry.reason, Reason::kPassFirst);
  // The auto-whitelist counts the domain; the trap list would still name the address.
  EXPECT_EQ(Stored(store::Table::kClients, "spf:example.net"), "1,1800000300");
  EXPECT_EQ(Stored(store::Table::kClients, "198.51.101.77"), std::nullopt);
}

TEST_F(GreylisterSpfTest, TheTrapKeyStaysTheClientsOwnAddress) {
  auto traps = reputation::Greytraps::FromText("traps", "spamtrap@example.org\n");
  ASSERT_TRUE(traps.ok());
  greylister_->SetGreytraps(*traps);
  spf_.results["example.net"] = Pass("example.net");
  EXPECT_EQ(Ask(T, {{"recipient", "spamtrap@example.org"}}).reason, Reason::kGreytrap);
  EXPECT_TRUE(Stored(store::Table::kTraps, "198.51.100.10"));
  // Another address of the domain is not trapped.
  EXPECT_EQ(Ask(T + 10, {{"client_address", "198.51.101.77"}}).reason, Reason::kNew);
}

TEST_F(GreylisterSpfTest, EveryOtherResultKeepsTheLookupByKey) {
  const std::vector<spf::SpfResult> unusable = {
      Result(spf::SpfCode::kPass, "example.net", "+all", /*broad=*/true),
      Result(spf::SpfCode::kPass, "example.net", "ip4:198.0.0.0/8", /*broad=*/true),
      Result(spf::SpfCode::kFail, "example.net", "-all"),
      Result(spf::SpfCode::kSoftFail, "example.net", "~all"),
      Result(spf::SpfCode::kNeutral, "example.net"),
      Result(spf::SpfCode::kNone, "example.net", "", false, "no SPF record at example.net"),
      Result(spf::SpfCode::kTempError, "example.net", "", false, "timeout"),
      Result(spf::SpfCode::kPermError, "example.net", "", false, "several SPF records"),
  };
  long long now = T;
  for (const spf::SpfResult& result : unusable) {
    spf_.results["example.net"] = result;
    const std::string sender = fmt::format("s{}@example.net", now - T);
    Decision d = Ask(now, {{"sender", sender}});
    EXPECT_EQ(d.reason, Reason::kNew) << engine::SpfSummary(result);
    EXPECT_EQ(d.group, "") << engine::SpfSummary(result);
    EXPECT_TRUE(
        Stored(store::Table::kTriplets, fmt::format("198.51.100.0/{}/bob@example.org", sender)))
        << engine::SpfSummary(result);
    // A retry from another network is a new client: no grouping without a narrow pass.
    EXPECT_EQ(Ask(now + 300, {{"sender", sender}, {"client_address", "198.51.101.77"}}).reason,
              Reason::kNew)
        << engine::SpfSummary(result);
    now += 1000;
  }
  spf_.results["example.net"] = Result(spf::SpfCode::kTempError, "example.net", "", false,
                                       "DNS error looking up TXT example.net");
  EXPECT_EQ(NoticeLine(Ask(now)),
            "action=greylist, reason=new, spf=temperror example.net (DNS error looking up TXT "
            "example.net), client_name=out-1.mail.example.net, client_address=198.51.100.10, "
            "sender=alice@example.net, recipient=bob@example.org");
  spf_.results["example.net"] = Result(spf::SpfCode::kPass, "example.net", "+all", true);
  EXPECT_TRUE(NoticeLine(Ask(now + 1))
                  .starts_with("action=greylist, reason=early-retry (299s missing), spf=pass "
                               "example.net (broad), "));
}

TEST_F(GreylisterSpfTest, TheNullSenderIsCheckedForTheHeloName) {
  spf_.results["out-1.mail.example.net"] = Pass("out-1.mail.example.net");
  Decision d = Ask(T, {{"sender", ""}});
  ASSERT_EQ(spf_.asked.size(), 1u);
  EXPECT_EQ(spf_.asked[0].domain, "out-1.mail.example.net");
  EXPECT_EQ(spf_.asked[0].sender, "postmaster@out-1.mail.example.net");
  EXPECT_EQ(spf_.asked[0].ip.ToPostgreyString(), "198.51.100.10");
  EXPECT_EQ(d.group, "spf:out-1.mail.example.net");
  EXPECT_TRUE(Stored(store::Table::kTriplets, "spf:out-1.mail.example.net//bob@example.org"));
}

// SPF checks the envelope sender as received: an SRS sender is the forwarder's, whose
// servers SPF authorises; the triplet's sender part is the original sender.
TEST_F(GreylisterSpfTest, AnSrsSenderIsCheckedAsTheForwarderAndKeyedByTheOriginal) {
  spf_.results["fwd.example"] = Pass("fwd.example");
  Decision d = Ask(T, {{"sender", "SRS0=dV4c=3F=example.org=carol@fwd.example"}});
  ASSERT_EQ(spf_.asked.size(), 1u);
  EXPECT_EQ(spf_.asked[0].domain, "fwd.example");
  EXPECT_TRUE(Stored(store::Table::kTriplets, "spf:fwd.example/carol@example.org/bob@example.org"));
  // The next day the forwarder's hash and timestamp differ; the triplet does not.
  d = Ask(T + 300, {{"sender", "SRS0=Qw7T=3G=example.org=carol@fwd.example"},
                    {"client_address", "198.51.101.7"}});
  EXPECT_EQ(d.reason, Reason::kPassFirst);
}

TEST_F(GreylisterSpfTest, SpfAndTheDnsListsAreAskedAtOnceAndJoined) {
  greylister_->SetListLookup(lists_.Lookup());
  spf_.results["example.net"] = Pass("example.net");
  // Either may answer first; the decision waits for both.
  Start(T, {});
  EXPECT_EQ(spf_.pending.size(), 1u);
  EXPECT_EQ(lists_.pending.size(), 1u);
  spf_.AnswerAll();
  EXPECT_FALSE(decided_);
  lists_.AnswerAll();
  ASSERT_TRUE(decided_);
  EXPECT_EQ(decided_->group, "spf:example.net");

  Start(T + 1, {{"recipient", "carol@example.org"}});
  lists_.AnswerAll();
  EXPECT_FALSE(decided_);
  spf_.AnswerAll();
  ASSERT_TRUE(decided_);
  EXPECT_EQ(decided_->group, "spf:example.net");

  // An allow list passes the client; the SPF result is recorded all the same.
  Start(T + 2, {{"recipient", "dave@example.org"}});
  reputation::ListVerdict listed;
  listed.dnswl.push_back({"wl.test", "127.0.0.2"});
  lists_.AnswerAll(listed);
  spf_.AnswerAll();
  ASSERT_TRUE(decided_);
  EXPECT_EQ(decided_->reason, Reason::kDnswl);
  EXPECT_TRUE(decided_->spf);
}

TEST_F(GreylisterSpfTest, WhitelistedClientsAreNotChecked) {
  class All : public policy::WhitelistMatcher {
   public:
    std::optional<policy::WhitelistHit> MatchClient(std::string_view,
                                                    const policy::IpAddress&) const override {
      return policy::WhitelistHit{"clients", "everyone"};
    }
    std::optional<policy::WhitelistHit> MatchRecipient(std::string_view) const override {
      return std::nullopt;
    }
  };
  greylister_->SetWhitelists(std::make_shared<All>());
  Start(T, {});
  ASSERT_TRUE(decided_) << "decided at once, without asking SPF";
  EXPECT_EQ(decided_->reason, Reason::kClientWhitelist);
  EXPECT_TRUE(spf_.asked.empty());
  EXPECT_FALSE(decided_->spf);
}

TEST_F(GreylisterSpfTest, PrivacyDigestsTheSpfKeys) {
  EngineOptions options;
  options.keys.privacy = true;
  Configure({}, options);
  spf_.results["example.net"] = Pass("example.net");
  Ask(T);
  EXPECT_TRUE(Stored(store::Table::kTriplets,
                     Sha1Hex("spf:example.net/alice@example.net/bob@example.org")));
}

TEST_F(GreylisterSpfTest, JsonLogCarriesTheResult) {
  spf_.results["example.net"] = Pass("example.net");
  std::string json = NoticeLine(Ask(T), LogFormat::kJson);
  EXPECT_NE(json.find(R"("group":"spf:example.net","spf":"pass","spf_domain":"example.net")"),
            std::string::npos)
      << json;
  spf_.results["example.net"] =
      Result(spf::SpfCode::kTempError, "example.net", "", false, "timeout");
  json = NoticeLine(Ask(T + 1, {{"recipient", "x@example.org"}}), LogFormat::kJson);
  EXPECT_NE(json.find(R"("spf":"temperror","spf_domain":"example.net","spf_problem":"timeout")"),
            std::string::npos)
      << json;
  EXPECT_EQ(json.find("group"), std::string::npos) << json;
}

}  // namespace
}  // namespace greylight::engine
