// Reply tracking through the engine: an outbound listener's requests record pairs
// (Greylister::RecordOutbound), and the replies pass (Greylister::Decide, reason reply).
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

// bob@example.org, a local user, writes to carol@remote.example through the submission
// service: the request Postfix sends to the outbound listener.
std::map<std::string, std::string> OutboundRequest() {
  return {{"request", "smtpd_access_policy"},
          {"protocol_state", "RCPT"},
          {"client_address", "203.0.113.7"},
          {"client_name", "laptop.example.org"},
          {"sender", "Bob@example.org"},
          {"recipient", "carol+work@remote.example"},
          {"etrn_domain", ""},
          {"instance", "o1"}};
}

// carol's reply to bob, from her provider's server, on the main port.
std::map<std::string, std::string> ReplyRequest() {
  return {{"request", "smtpd_access_policy"},
          {"protocol_state", "RCPT"},
          {"client_address", "198.51.100.20"},
          {"client_name", "mx.remote.example"},
          {"sender", "carol@remote.example"},
          {"recipient", "bob@example.org"},
          {"etrn_domain", ""},
          {"instance", "i1"}};
}

std::string NoticeLine(const Decision& decision) {
  LogLines lines;
  RenderDecisionLog(decision, LogFormat::kPostgrey, {}, lines);
  for (const LogLine& line : lines) {
    if (line.level == log::Level::kNotice) return line.text;
  }
  return "";
}

class GreylisterReplyTest : public testing::Test {
 protected:
  void Configure(EngineOptions options = {}, GreylistTiming timing = {}) {
    options.hostname = "vm";
    store_ = std::make_unique<store::MemoryStore>(timing);
    greylister_ = std::make_unique<Greylister>(options, timing, *store_);
  }
  void SetUp() override { Configure(); }

  protocol::PolicyRequest& Wire(std::map<std::string, std::string> attributes,
                                const std::map<std::string, std::string>& changes) {
    for (auto& [name, value] : changes) attributes[name] = value;
    protocol::PolicyRequest& request = wire_.emplace_back();
    for (auto& [name, value] : attributes) request.Add(name, value);
    return request;
  }
  Decision Outbound(long long now, const std::map<std::string, std::string>& changes = {}) {
    std::optional<Decision> result;
    greylister_->RecordOutbound(Wire(OutboundRequest(), changes), FromUnixSeconds(now),
                                [&](Decision d) { result = std::move(d); });
    EXPECT_TRUE(result.has_value());
    return result.value_or(Decision{});
  }
  Decision Inbound(long long now, const std::map<std::string, std::string>& changes = {}) {
    std::optional<Decision> result;
    greylister_->Decide(Wire(ReplyRequest(), changes), FromUnixSeconds(now), headers_,
                        [&](Decision d) { result = std::move(d); });
    EXPECT_TRUE(result.has_value());
    return result.value_or(Decision{});
  }
  std::optional<std::string> Stored(store::Table table, std::string_view key) {
    return store_->Get(table, key).value();
  }

  std::deque<protocol::PolicyRequest> wire_;
  std::unique_ptr<store::MemoryStore> store_;
  std::unique_ptr<Greylister> greylister_;
  HeaderTracker headers_;
};

const std::string kReplyKey = "carol@remote.example/bob@example.org";

TEST_F(GreylisterReplyTest, TheReplyToARecordedMessagePassesAtOnce) {
  Decision recorded = Outbound(T);
  EXPECT_EQ(recorded.reason, Reason::kOutbound);
  EXPECT_EQ(recorded.action, "DUNNO");
  EXPECT_EQ(NoticeLine(recorded),
            "action=record, reason=outbound, client_name=laptop.example.org, "
            "client_address=203.0.113.7, sender=Bob@example.org, "
            "recipient=carol+work@remote.example");
  EXPECT_EQ(Stored(store::Table::kReplies, kReplyKey), "1,1800000000");
  EXPECT_EQ(
      Stored(store::Table::kTriplets, "203.0.113.0/bob@example.org/carol+work@remote.example"),
      std::nullopt)
      << "an outbound request is not greylisted";

  Decision reply = Inbound(T + 3600);
  EXPECT_EQ(reply.reason, Reason::kReply);
  EXPECT_EQ(reply.action, "DUNNO");
  EXPECT_EQ(NoticeLine(reply),
            "action=pass, reason=reply, client_name=mx.remote.example, "
            "client_address=198.51.100.20, sender=carol@remote.example, "
            "recipient=bob@example.org");
  EXPECT_EQ(Stored(store::Table::kTriplets, "198.51.100.0/carol@remote.example/bob@example.org"),
            std::nullopt);
  EXPECT_EQ(Stored(store::Table::kClients, "198.51.100.20"), std::nullopt);

  // An unrelated sender to the same user is greylisted; so is carol writing to someone else.
  EXPECT_EQ(Inbound(T + 3600, {{"sender", "mallory@remote.example"}}).reason, Reason::kNew);
  EXPECT_EQ(Inbound(T + 3600, {{"recipient", "alice@example.org"}}).reason, Reason::kNew);
  // The null sender (a bounce) is never a reply.
  EXPECT_EQ(Inbound(T + 3600, {{"sender", ""}}).reason, Reason::kNew);
}

TEST_F(GreylisterReplyTest, OutboundRequestsWithoutAPairRecordNothing) {
  Decision bounce = Outbound(T, {{"sender", ""}});
  EXPECT_EQ(bounce.reason, Reason::kNotRecorded);
  EXPECT_EQ(bounce.action, "DUNNO");
  EXPECT_TRUE(NoticeLine(bounce).starts_with("action=dunno, reason=not recorded, "));
  Decision data_stage = Outbound(T, {{"recipient", ""}, {"protocol_state", "DATA"}});
  EXPECT_EQ(data_stage.reason, Reason::kNotRecorded);
  size_t records = 0;
  ASSERT_TRUE(
      store_->ForEach(store::Table::kReplies, [&](auto, auto) { return ++records, true; }).ok());
  EXPECT_EQ(records, 0u);
  // An unreadable request is answered DUNNO with the usual warning.
  Decision unreadable = Outbound(T, {{"client_address", "not-an-address"}});
  EXPECT_EQ(unreadable.reason, Reason::kBadClientAddress);
  EXPECT_EQ(unreadable.action, "DUNNO");
}

TEST_F(GreylisterReplyTest, PrivacyHashesTheReplyKey) {
  EngineOptions options;
  options.keys.privacy = true;
  Configure(options);
  Outbound(T);
  EXPECT_EQ(Stored(store::Table::kReplies, Sha1Hex(kReplyKey)), "1,1800000000");
  EXPECT_EQ(Inbound(T + 60).reason, Reason::kReply);
}

class DownStore final : public store::Store {
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

// An outbound message is never deferred for reply tracking's sake: a store fault is
// answered DUNNO whatever --store-error-action says, with a rate-limited warning.
TEST(GreylisterReplyStoreFailureTest, OutboundRequestsFailOpenWithDunno) {
  DownStore store;
  EngineOptions options;
  options.store_error_action = "DEFER store trouble";
  Greylister greylister(options, GreylistTiming{}, store);
  protocol::PolicyRequest request;
  for (auto& [name, value] : OutboundRequest()) request.Add(name, value);
  std::optional<Decision> decision;
  greylister.RecordOutbound(request, FromUnixSeconds(T), [&](Decision d) { decision = d; });
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->action, "DUNNO");
  EXPECT_TRUE(decision->store_failed());
  LogLines lines;
  RenderDecisionLog(*decision, LogFormat::kPostgrey, {}, lines);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].text, "store error, answering DUNNO: backend down");
  EXPECT_TRUE(lines[0].rate_limited);
}

}  // namespace
}  // namespace greylight::engine
