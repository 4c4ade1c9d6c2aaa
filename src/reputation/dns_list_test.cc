#include "reputation/dns_list.h"

#include <gtest/gtest.h>

#include <string_view>

namespace greylight::reputation {
namespace {

policy::IpAddress Ip(std::string_view text) {
  auto address = policy::IpAddress::Parse(text);
  EXPECT_TRUE(address.has_value()) << text;
  return address.value_or(policy::IpAddress{});
}

DnsList List(ListKind kind, std::string_view spec) {
  auto list = DnsList::Parse(kind, spec);
  EXPECT_TRUE(list.ok()) << spec << ": " << list.status().message();
  return list.ok() ? list.value() : DnsList{};
}

TEST(DnsListParseTest, ZoneAloneAcceptsLoopbackAnswersExceptTheErrorRange) {
  DnsList list = List(ListKind::kBlock, "Zen.Example.");
  EXPECT_EQ(list.zone, "zen.example");
  EXPECT_EQ(list.spec, "Zen.Example.");
  EXPECT_TRUE(list.Accepts({127, 0, 0, 2}));
  EXPECT_TRUE(list.Accepts({127, 0, 0, 255}));
  EXPECT_TRUE(list.Accepts({127, 255, 254, 1}));
  EXPECT_FALSE(list.Accepts({127, 255, 255, 254}));  // Spamhaus: query refused
  EXPECT_FALSE(list.Accepts({192, 0, 2, 1}));        // an NXDOMAIN-rewriting resolver
}

TEST(DnsListParseTest, CodesAreAddressesRangesSetsAndPrefixes) {
  DnsList list = List(ListKind::kAllow,
                      "list.dnswl.example=127.0.0.2,127.0.[0..255].[1;3;10..11],127.1.0.0/23");
  EXPECT_EQ(list.kind, ListKind::kAllow);
  EXPECT_EQ(list.codes.size(), 3u);
  EXPECT_TRUE(list.Accepts({127, 0, 0, 2}));
  EXPECT_TRUE(list.Accepts({127, 0, 9, 3}));
  EXPECT_TRUE(list.Accepts({127, 0, 200, 11}));
  EXPECT_FALSE(list.Accepts({127, 0, 9, 2}));
  EXPECT_FALSE(list.Accepts({127, 0, 9, 12}));
  EXPECT_TRUE(list.Accepts({127, 1, 1, 200}));
  EXPECT_FALSE(list.Accepts({127, 1, 2, 0}));
  EXPECT_FALSE(list.Accepts({127, 0, 0, 4}));
}

TEST(DnsListParseTest, RejectsBadSpecsWithTheOptionName) {
  for (std::string_view spec :
       {"", "=127.0.0.2", "zone=", "zone=127.0.0", "zone=127.0.0.256", "zone=127.0.0.[3..2]",
        "zone=127.0.0.[1..", "zone=127.0.0.2,", "zone=127.0.0.0/33", "zone=::1/128", "bad zone",
        "a..b", "zone=127.0.0.2.5", "-x.example=[1].0.0.1x"}) {
    auto list = DnsList::Parse(ListKind::kBlock, spec);
    EXPECT_FALSE(list.ok()) << "'" << spec << "' parsed";
    if (!list.ok()) {
      EXPECT_TRUE(list.status().message().starts_with("--dnsbl ")) << list.status().message();
    }
  }
  EXPECT_TRUE(DnsList::Parse(ListKind::kAllow, "x.example=127.0.0.1").ok());
  EXPECT_TRUE(
      DnsList::Parse(ListKind::kAllow, "bad zone").status().message().starts_with("--dnswl "));
}

TEST(ListQueryNameTest, ReversesOctetsAndNibbles) {
  EXPECT_EQ(ListQueryName(Ip("203.0.113.5"), "bl.example"), "5.113.0.203.bl.example");
  EXPECT_EQ(ListQueryName(Ip("::ffff:203.0.113.5"), "bl.example"), "5.113.0.203.bl.example");
  EXPECT_EQ(ListQueryName(Ip("2001:db8::1"), "bl.example"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example");
}

}  // namespace
}  // namespace greylight::reputation
