#include "engine/request.h"

#include <gtest/gtest.h>

namespace greylight::engine {
namespace {

const UnixTime kNow = FromUnixSeconds(1800000000);

protocol::PolicyRequest Wire(
    std::initializer_list<std::pair<std::string_view, std::string_view>> a) {
  protocol::PolicyRequest wire;
  for (auto [name, value] : a) wire.Add(name, value);
  return wire;
}

TEST(ReadRequestTest, ReadsEveryAttributeTheDecisionUsesOnce) {
  auto wire = Wire({{"request", "smtpd_access_policy"},
                    {"queue_id", "ABC"},
                    {"client_address", "2001:db8::1"},
                    {"client_name", "mail.example.net"},
                    {"sender", ""},
                    {"recipient", "bob@example.org"},
                    {"helo_name", "mx.example.net"},
                    {"instance", "i.1"},
                    {"etrn_domain", ""}});
  ReadResult read = ReadRequest(wire, kNow, false);
  ASSERT_TRUE(read.request.has_value());
  const Request& r = *read.request;
  EXPECT_EQ(r.client, *policy::IpAddress::Parse("2001:db8::1"));
  EXPECT_EQ(r.client_address, "2001:db8::1");
  EXPECT_EQ(r.client_name, "mail.example.net");
  EXPECT_EQ(r.sender, "");
  EXPECT_EQ(r.recipient, "bob@example.org");
  EXPECT_EQ(r.helo_name, "mx.example.net");
  EXPECT_EQ(r.queue_id, "ABC");
  EXPECT_EQ(r.instance, "i.1");
  EXPECT_TRUE(r.etrn_domain_sent);
  EXPECT_EQ(r.now, kNow);
  EXPECT_EQ(r.real_now, kNow);
}

TEST(ReadRequestTest, OptionalAttributesMayBeAbsentAndTheLastValueWins) {
  auto wire = Wire({{"client_address", "192.0.2.1"},
                    {"client_name", "first"},
                    {"sender", "a@b"},
                    {"recipient", "c@d"},
                    {"client_name", "second"}});
  ReadResult read = ReadRequest(wire, kNow, false);
  ASSERT_TRUE(read.request.has_value());
  EXPECT_EQ(read.request->client_name, "second");
  EXPECT_FALSE(read.request->queue_id.has_value());
  EXPECT_FALSE(read.request->instance.has_value());
  EXPECT_FALSE(read.request->etrn_domain_sent);
  EXPECT_EQ(read.request->helo_name, "");
}

TEST(ReadRequestTest, UnreadableRequestsSayWhyInPostgreysOrder) {
  ReadResult missing =
      ReadRequest(Wire({{"client_address", "192.0.2.1"}, {"sender", "a@b"}}), kNow, false);
  EXPECT_FALSE(missing.request.has_value());
  EXPECT_EQ(missing.unreadable.reason, policy::Reason::kMissingAttribute);
  EXPECT_EQ(missing.unreadable.detail, "client_name");

  auto unparsable = Wire({{"client_address", "unknown"},
                          {"client_name", "n"},
                          {"sender", "a@b"},
                          {"recipient", "c@d"}});
  ReadResult bad = ReadRequest(unparsable, kNow, false);
  EXPECT_EQ(bad.unreadable.reason, policy::Reason::kBadClientAddress);
  EXPECT_EQ(bad.unreadable.detail, "unknown");
}

TEST(ReadRequestTest, PolicyTestTimeOnlyWhenAllowed) {
  auto wire = Wire({{"client_address", "192.0.2.1"},
                    {"client_name", "n"},
                    {"sender", "a@b"},
                    {"recipient", "c@d"},
                    {"policy_test_time", "1700000000"}});
  EXPECT_EQ(ReadRequest(wire, kNow, false).request->now, kNow);
  ReadResult allowed = ReadRequest(wire, kNow, true);
  EXPECT_EQ(allowed.request->now, FromUnixSeconds(1700000000));
  EXPECT_EQ(allowed.request->real_now, kNow);

  auto garbage = Wire({{"policy_test_time", "soon"}});
  ReadResult bad = ReadRequest(garbage, kNow, true);
  EXPECT_EQ(bad.unreadable.reason, policy::Reason::kBadTestTime);
  EXPECT_EQ(bad.unreadable.detail, "soon");
}

}  // namespace
}  // namespace greylight::engine
