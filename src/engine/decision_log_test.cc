#include "engine/decision_log.h"

#include <gtest/gtest.h>

namespace greylight::engine {
namespace {

using namespace std::chrono_literals;
using policy::Reason;

class DecisionLogTest : public testing::Test {
 protected:
  void SetUp() override { log::Configure(log::Level::kInfo, log::Sink::kStderr); }

  Decision Decided(Reason reason, const protocol::PolicyRequest& wire) {
    ReadResult read = ReadRequest(wire, FromUnixSeconds(1800000000), false);
    EXPECT_TRUE(read.request.has_value());
    Decision d;
    d.request = read.request;
    d.reason = reason;
    d.action = "DUNNO";
    return d;
  }
  std::vector<LogLine> Render(const Decision& d, LogFormat format = LogFormat::kPostgrey) {
    LogLines lines;
    RenderDecisionLog(d, format, 42us, lines);
    return {lines.begin(), lines.end()};
  }
};

protocol::PolicyRequest Wire(
    std::initializer_list<std::pair<std::string_view, std::string_view>> a) {
  protocol::PolicyRequest wire;
  for (auto [name, value] : a) wire.Add(name, value);
  return wire;
}

TEST_F(DecisionLogTest, PostgreyLineLikePostgrey) {
  auto wire = Wire({{"queue_id", "ABC123"},
                    {"client_name", "mail.example.net"},
                    {"client_address", "192.0.2.10"},
                    {"sender", ""},
                    {"recipient", "bob@example.org"}});
  Decision d = Decided(Reason::kPassFirst, wire);
  d.delayed = 300s;
  d.header_added = true;
  EXPECT_EQ(PostgreyDecisionLine(d),
            "ABC123: action=pass, reason=triplet found, delay=300, client_name=mail.example.net, "
            "client_address=192.0.2.10, recipient=bob@example.org");
  d.header_added = false;  // a further recipient of the same delivery: no header, no delay
  EXPECT_EQ(PostgreyDecisionLine(d),
            "ABC123: action=pass, reason=triplet found, client_name=mail.example.net, "
            "client_address=192.0.2.10, recipient=bob@example.org");
}

TEST_F(DecisionLogTest, PostgreyLineEscapesForgedFields) {
  auto wire = Wire({{"client_name", "0"},
                    {"client_address", "192.0.2.10"},
                    {"sender", "a, recipient=forged@x\n%"},
                    {"recipient", ""}});
  Decision d = Decided(Reason::kNew, wire);
  EXPECT_EQ(PostgreyDecisionLine(d),
            "action=greylist, reason=new, client_address=192.0.2.10, "
            "sender=a%2C recipient=forged@x%0A%");
}

TEST_F(DecisionLogTest, EarlyRetryAndAbandonedAsPostgreyWordsThem) {
  auto wire = Wire({{"client_name", "unknown"},
                    {"client_address", "192.0.2.10"},
                    {"sender", "a@example.net"},
                    {"recipient", "b@example.org"}});
  Decision d = Decided(Reason::kEarlyRetry, wire);
  d.missing = 240s;
  d.group = "example.net";
  EXPECT_EQ(PostgreyDecisionLine(d),
            "action=greylist, reason=early-retry (240s missing), group=example.net, "
            "client_name=unknown, client_address=192.0.2.10, sender=a@example.net, "
            "recipient=b@example.org");
  d.reason = Reason::kAbandoned;
  d.group.clear();
  EXPECT_TRUE(PostgreyDecisionLine(d).starts_with("action=greylist, reason=new, client_name"));
}

TEST_F(DecisionLogTest, JsonLineHasTheSameFieldsPlusKeyNumbersAndDuration) {
  auto wire = Wire({{"client_name", "mail.example.net"},
                    {"client_address", "192.0.2.10"},
                    {"sender", "alice@example.net"},
                    {"recipient", "bob@example.org"},
                    {"queue_id", ""},
                    {"instance", "i1"}});
  Decision d = Decided(Reason::kEarlyRetry, wire);
  d.missing = 240s;
  d.key = "192.0.2.0/alice@example.net/bob@example.org";
  EXPECT_EQ(JsonDecisionLine(d, 17us),
            "{\"action\":\"greylist\",\"reason\":\"early-retry\",\"queue_id\":\"\","
            "\"client_name\":\"mail.example.net\",\"client_address\":\"192.0.2.10\","
            "\"sender\":\"alice@example.net\",\"recipient\":\"bob@example.org\","
            "\"instance\":\"i1\",\"missing\":240,"
            "\"key\":\"192.0.2.0/alice@example.net/bob@example.org\",\"decision_us\":17}");
  d.reason = Reason::kClientWhitelist;
  d.key.clear();
  auto lines = Render(d, LogFormat::kJson);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].text,
            "{\"action\":\"pass\",\"reason\":\"client whitelist\",\"queue_id\":\"\","
            "\"client_name\":\"mail.example.net\",\"client_address\":\"192.0.2.10\","
            "\"sender\":\"alice@example.net\",\"recipient\":\"bob@example.org\","
            "\"instance\":\"i1\",\"decision_us\":42}");
}

TEST_F(DecisionLogTest, StepLinesComeInPostgreysOrderBeforeTheDecisionLine) {
  auto wire = Wire({{"client_name", "mail.example.net"},
                    {"client_address", "192.0.2.10"},
                    {"sender", "alice@example.net"},
                    {"recipient", "trap@example.org"}});
  Decision d = Decided(Reason::kGreytrap, wire);
  d.list_failures = {"bl.test: timeout"};
  d.trap_hit = policy::WhitelistHit{"traps:3", "trap@"};
  d.missing = 86400s;
  auto lines = Render(d);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].level, log::Level::kWarning);
  EXPECT_TRUE(lines[0].rate_limited);
  EXPECT_EQ(lines[0].text,
            "DNS list lookup for 192.0.2.10 failed, treated as not listed: bl.test: timeout");
  EXPECT_EQ(lines[1].text,
            "greytrap hit: mail.example.net[192.0.2.10] sent to trap@example.org (traps:3: trap@)");
  EXPECT_EQ(lines[2].text,
            "action=greylist, reason=greytrap, client_name=mail.example.net, "
            "client_address=192.0.2.10, sender=alice@example.net, recipient=trap@example.org");

  Decision failed = Decided(Reason::kStoreError, wire);
  failed.store_error = "backend down";
  lines = Render(failed);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].text, "store error, answering DUNNO: backend down");
  EXPECT_TRUE(lines[0].rate_limited);

  Decision first = Decided(Reason::kPassFirst, wire);
  first.first_corrected = true;
  first.client_whitelisted = true;
  lines = Render(first);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, "correcting date for first seen in the future!");
  EXPECT_EQ(lines[1].text, "whitelisted: mail.example.net[192.0.2.10]");
  EXPECT_EQ(lines[2].level, log::Level::kNotice);
}

// A connection keeps one LogLines for all its decisions: each decision's lines are its own,
// whatever the previous one left in the buffers.
TEST_F(DecisionLogTest, ReusedLogLinesCarryNothingOver) {
  auto wire = Wire({{"client_name", "mail.example.net"},
                    {"client_address", "192.0.2.10"},
                    {"sender", "alice@example.net"},
                    {"recipient", "trap@example.org"}});
  Decision trapped = Decided(Reason::kGreytrap, wire);
  trapped.list_failures = {"bl.test: timeout"};
  trapped.trap_hit = policy::WhitelistHit{"traps:3", "trap@"};
  Decision passed = Decided(Reason::kPassed, wire);
  LogLines lines;
  RenderDecisionLog(trapped, LogFormat::kPostgrey, 42us, lines);
  ASSERT_EQ(lines.size(), 3u);
  lines.Clear();
  RenderDecisionLog(passed, LogFormat::kPostgrey, 42us, lines);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, log::Level::kNotice);
  EXPECT_FALSE(lines[0].rate_limited);
  EXPECT_EQ(std::vector<LogLine>(lines.begin(), lines.end())[0].text, Render(passed)[0].text);

  // Dropping the rate-limited lines keeps the others, in order, and reuse goes on after it.
  lines.Clear();
  RenderDecisionLog(trapped, LogFormat::kPostgrey, 42us, lines);
  lines.EraseRateLimited();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0].text.starts_with("greytrap hit: "));
  EXPECT_TRUE(lines[1].text.starts_with("action=greylist, reason=greytrap"));
  lines.Add(log::Level::kWarning) = "(1 more store or DNS errors not logged)";
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2].text, "(1 more store or DNS errors not logged)");
  lines.Clear();
  EXPECT_TRUE(lines.empty());
  EXPECT_EQ(lines.Add(log::Level::kNotice), "");
}

TEST_F(DecisionLogTest, UnreadableRequestsGetOneWarningAndNoDecisionLine) {
  Decision d;
  d.action = "DUNNO";
  d.reason = Reason::kMissingAttribute;
  d.unreadable_detail = "client_name";
  auto lines = Render(d);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].text, "attribute missing: client_name");
  d.reason = Reason::kBadClientAddress;
  d.unreadable_detail = "not,an address";
  EXPECT_EQ(Render(d)[0].text, "can't parse client_address from postfix: not%2Can address");
  d.reason = Reason::kBadTestTime;
  d.unreadable_detail = "x";
  EXPECT_EQ(Render(d)[0].text, "can't parse policy_test_time: x");
}

TEST_F(DecisionLogTest, NothingIsRenderedBelowTheLogLevel) {
  auto wire = Wire({{"client_name", "n"},
                    {"client_address", "192.0.2.10"},
                    {"sender", "a@b"},
                    {"recipient", "c@d"}});
  log::Configure(log::Level::kWarning, log::Sink::kStderr);
  EXPECT_TRUE(Render(Decided(Reason::kPassed, wire)).empty());
  log::Configure(log::Level::kInfo, log::Sink::kStderr);
}

}  // namespace
}  // namespace greylight::engine
