#include "tools/record_filter.h"

#include <gtest/gtest.h>

#include "policy/reply_key.h"
#include "util/sha1.h"

namespace greylight::tools {
namespace {

policy::IpAddress Ip(std::string_view text) { return *policy::IpAddress::Parse(text); }

TEST(ParseReplyKeyTest, SplitsAtTheLastSlashAndMatchesKeysBuiltByReplyKey) {
  auto fields = ParseReplyKey(policy::ReplyKey("Carol+x@Remote.Example", "bob@example.org", {}));
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->remote, "carol@remote.example");
  EXPECT_EQ(fields->local, "bob@example.org");
  auto odd = ParseReplyKey("a/b@remote.example/bob@example.org");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->remote, "a/b@remote.example");
  EXPECT_FALSE(ParseReplyKey("0123456789abcdef0123456789abcdef01234567"));
}

TEST(ParseTripletKeyTest, SplitsIpv4Key) {
  auto fields = ParseTripletKey("192.0.2.0/alice@example.net/bob@example.org", {});
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->client, "192.0.2.0");
  EXPECT_EQ(fields->network, Ip("192.0.2.0"));
  EXPECT_EQ(fields->prefix_length, 24);
  EXPECT_EQ(fields->sender, "alice@example.net");
  EXPECT_EQ(fields->recipient, "bob@example.org");
}

TEST(ParseTripletKeyTest, SplitsIpv6KeyWithConfiguredPrefix) {
  policy::KeyOptions options;
  options.ipv6_cidr = 48;
  auto fields = ParseTripletKey("2001:db8:1:0:0:0:0:0/v6@example.net/bob@example.org", options);
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->client, "2001:db8:1:0:0:0:0:0");
  EXPECT_EQ(fields->network, Ip("2001:db8:1::"));
  EXPECT_EQ(fields->prefix_length, 48);
  EXPECT_EQ(fields->sender, "v6@example.net");
}

TEST(ParseTripletKeyTest, NullSenderIsEmpty) {
  auto fields = ParseTripletKey("192.0.2.0//bob+ext@example.org", {});
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->sender, "");
  EXPECT_EQ(fields->recipient, "bob+ext@example.org");
}

TEST(ParseTripletKeyTest, LookupByHostKeysKeepTheirHostPrefix) {
  auto v4 = ParseTripletKey("10.0.0.1/32/b@c/d@e", {});
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->client, "10.0.0.1/32");
  EXPECT_EQ(v4->prefix_length, 32);
  EXPECT_EQ(v4->sender, "b@c");
  EXPECT_EQ(v4->recipient, "d@e");
  auto v6 = ParseTripletKey("2001:db8:0:0:0:0:0:1/128/alice@example.net/bob@example.org", {});
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->client, "2001:db8:0:0:0:0:0:1/128");
  EXPECT_EQ(v6->prefix_length, 128);
  EXPECT_EQ(v6->sender, "alice@example.net");
}

TEST(ParseTripletKeyTest, MatchesKeysBuiltByTripletKey) {
  for (bool by_host : {false, true}) {
    policy::KeyOptions options;
    options.lookup_by_host = by_host;
    for (std::string_view address : {"192.0.2.10", "2001:db8:1:2::5"}) {
      std::string key =
          policy::TripletKey(Ip(address), "Alice+tag@Example.NET", "Bob@Example.org", options);
      auto fields = ParseTripletKey(key, options);
      ASSERT_TRUE(fields) << key;
      EXPECT_EQ(fields->sender, SenderKeyPart("Alice+tag@Example.NET")) << key;
      EXPECT_EQ(fields->recipient, RecipientKeyPart("Bob@Example.org")) << key;
      ASSERT_TRUE(fields->network) << key;
      EXPECT_TRUE(Ip(address).Within(*fields->network, fields->prefix_length)) << key;
    }
  }
}

// --lookup-by=domain|smart: a client grouped by its domain. Its sender and recipient are
// read back; no client network matches it.
TEST(ParseTripletKeyTest, SplitsDomainGroupKey) {
  auto fields = ParseTripletKey("domain:example.co.uk/alice@example.net/bob@example.org", {});
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->client, "domain:example.co.uk");
  EXPECT_FALSE(fields->network);
  EXPECT_EQ(fields->sender, "alice@example.net");
  EXPECT_EQ(fields->recipient, "bob@example.org");
  TripletFilter by_sender;
  by_sender.sender = "alice@example.net";
  EXPECT_TRUE(by_sender.Matches(&*fields, TripletState::kPending));
  TripletFilter by_network;
  by_network.client = ParseNetworkOption("client", "0.0.0.0/0").value();
  EXPECT_FALSE(by_network.Matches(&*fields, TripletState::kPending));
  EXPECT_FALSE(ParseTripletKey("domain:example.net", {}));
  EXPECT_FALSE(ParseTripletKey("domain:example.net/no-recipient", {}));
}

// --spf-keys: a client keyed by the domain that authorised it, read back the same way.
TEST(ParseTripletKeyTest, SplitsSpfKey) {
  auto fields = ParseTripletKey("spf:example.net/alice@example.net/bob@example.org", {});
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->client, "spf:example.net");
  EXPECT_FALSE(fields->network);
  EXPECT_EQ(fields->sender, "alice@example.net");
  EXPECT_EQ(fields->recipient, "bob@example.org");
  EXPECT_FALSE(ParseTripletKey("spf:example.net", {}));
}

TEST(ParseTripletKeyTest, SenderWithSlashKeepsRecipientAfterLastSlash) {
  auto fields = ParseTripletKey("192.0.2.0//c=us/o=x@example.net/bob@example.org", {});
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->sender, "/c=us/o=x@example.net");
  EXPECT_EQ(fields->recipient, "bob@example.org");
}

TEST(ParseTripletKeyTest, PrivacyDigestsAndGarbageAreNotParsed) {
  EXPECT_FALSE(ParseTripletKey(Sha1Hex("10.0.0.0/b@c/d@e"), {}));
  EXPECT_FALSE(ParseTripletKey("", {}));
  EXPECT_FALSE(ParseTripletKey("not-an-ip/a@b/c@d", {}));
  EXPECT_FALSE(ParseTripletKey("192.0.2.0/only-one-part", {}));
}

TEST(SenderKeyPartTest, NormalisesAndLowercasesLikeTheKey) {
  EXPECT_EQ(SenderKeyPart("Alice+x@Example.net"), "alice@example.net");
  EXPECT_EQ(SenderKeyPart("prvs=1234567890=User@X"), "user@x");
  EXPECT_EQ(SenderKeyPart("bounce-123-456+foo@l"), "bounce-#-#@l");
  EXPECT_EQ(SenderKeyPart("<>"), "");
  EXPECT_EQ(SenderKeyPart(""), "");
  EXPECT_EQ(RecipientKeyPart("Bob+Ext@Example.ORG"), "bob+ext@example.org");
}

TEST(NetworkFilterTest, ParsesAddressesAndNetworks) {
  auto address = ParseNetworkOption("client", "192.0.2.10");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->prefix_length, 32);
  auto network = ParseNetworkOption("client", "2001:db8::/32");
  ASSERT_TRUE(network.ok());
  EXPECT_EQ(network->prefix_length, 32);
  EXPECT_TRUE(network->address.is_v6);
  for (std::string_view bad : {"", "192.0.2.0/33", "192.0.2.0/", "192.0.2/24", "host.example",
                               "2001:db8::/129", "192.0.2.0/2x"}) {
    auto parsed = ParseNetworkOption("client", bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find("--client"), std::string::npos);
    }
  }
}

TEST(NetworkFilterTest, OverlapsInBothDirections) {
  auto address = ParseNetworkOption("client", "192.0.2.10").value();
  auto wide = ParseNetworkOption("client", "192.0.0.0/16").value();
  auto other = ParseNetworkOption("client", "198.51.100.0/24").value();
  auto v6 = ParseNetworkOption("client", "::/0").value();
  // A stored /24 contains the address; the /16 contains the stored /24.
  EXPECT_TRUE(address.Overlaps(policy::Network{Ip("192.0.2.0"), 24}));
  EXPECT_TRUE(wide.Overlaps(policy::Network{Ip("192.0.2.0"), 24}));
  EXPECT_FALSE(other.Overlaps(policy::Network{Ip("192.0.2.0"), 24}));
  EXPECT_FALSE(address.Overlaps(policy::Network{Ip("192.0.3.0"), 24}));
  // A host key (/32) must be the address itself.
  EXPECT_FALSE(address.Overlaps(policy::Network{Ip("192.0.2.11"), 32}));
  EXPECT_TRUE(address.Overlaps(policy::Network{Ip("192.0.2.10"), 32}));
  // Families never overlap.
  EXPECT_FALSE(v6.Overlaps(policy::Network{Ip("192.0.2.0"), 24}));
  EXPECT_TRUE(v6.Overlaps(policy::Network{Ip("2001:db8::"), 64}));
}

TEST(TripletFilterTest, MatchesEveryFilterTogether) {
  TripletFields fields = *ParseTripletKey("192.0.2.0/alice@example.net/bob@example.org", {});
  TripletFilter all;
  EXPECT_TRUE(all.Matches(&fields, TripletState::kPending));
  EXPECT_TRUE(all.Matches(nullptr, TripletState::kPassed));

  TripletFilter filter;
  filter.client = ParseNetworkOption("client", "192.0.2.77").value();
  filter.sender = SenderKeyPart("Alice+x@Example.net");
  filter.recipient = RecipientKeyPart("BOB@example.org");
  filter.state = TripletState::kPending;
  EXPECT_TRUE(filter.NeedsClearKeys());
  EXPECT_TRUE(filter.Matches(&fields, TripletState::kPending));
  EXPECT_FALSE(filter.Matches(&fields, TripletState::kPassed));
  EXPECT_FALSE(filter.Matches(nullptr, TripletState::kPending));
  filter.recipient = "carol@example.org";
  EXPECT_FALSE(filter.Matches(&fields, TripletState::kPending));

  TripletFilter state_only;
  state_only.state = TripletState::kPassed;
  EXPECT_FALSE(state_only.NeedsClearKeys());
  EXPECT_TRUE(state_only.Matches(nullptr, TripletState::kPassed));
}

TEST(StateOfTest, PassedOnceLastMinusFirstReachesTheDelay) {
  policy::GreylistTiming timing;
  EXPECT_EQ(StateOf({FromUnixSeconds(100), FromUnixSeconds(399)}, timing), TripletState::kPending);
  EXPECT_EQ(StateOf({FromUnixSeconds(100), FromUnixSeconds(400)}, timing), TripletState::kPassed);
  EXPECT_EQ(StateName(TripletState::kPassed), "passed");
  EXPECT_EQ(StateName(TripletState::kPending), "pending");
}

}  // namespace
}  // namespace greylight::tools
