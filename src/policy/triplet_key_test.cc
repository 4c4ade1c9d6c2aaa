#include "policy/triplet_key.h"

#include <gtest/gtest.h>

#include "util/sha1.h"

namespace greylight::policy {
namespace {

struct SenderCase {
  std::string_view raw;
  std::string_view normalised;
};

class NormaliseSenderTest : public testing::TestWithParam<SenderCase> {};

TEST_P(NormaliseSenderTest, MatchesPostgrey) {
  EXPECT_EQ(NormaliseSender(GetParam().raw), GetParam().normalised);
}

// Every example of compat spec 4.3 (before the key's lowercasing).
INSTANTIATE_TEST_SUITE_P(CompatSpec, NormaliseSenderTest,
                         testing::Values(SenderCase{"nodomain", "nodomain"}, SenderCase{"", ""},
                                         SenderCase{"prvs=1234567890=user@x", "user@x"},
                                         SenderCase{"prvs=user=1234567890@x", "user@x"},
                                         SenderCase{"prvs=0123456789=9876543210@x", "#@x"},
                                         SenderCase{"bounce-123-456+foo@l", "bounce-#-#@l"},
                                         SenderCase{"user_12@x", "user_12@x"},
                                         SenderCase{"a.12.b-34_c@x", "a.#.b-34_c@x"},
                                         SenderCase{"user123@x", "user123@x"},
                                         SenderCase{"PRVS=1234567890=u@x", "PRVS=#=u@x"},
                                         SenderCase{"SRS0=HHH=12=orig.example=user@fwd.example",
                                                    "SRS0=HHH=#=orig.example=user@fwd.example"},
                                         SenderCase{"alice+tag@example.net", "alice@example.net"},
                                         SenderCase{"user@", "user@"}, SenderCase{"a@b@c", "a@b@c"},
                                         SenderCase{"123@x", "#@x"},
                                         SenderCase{"prvs=abc=@x", "prvs=abc=@x"},
                                         SenderCase{"prvs=short=user@x", "user@x"},
                                         SenderCase{"12+34@dom-56.example", "#@dom-56.example"}));

struct SrsCase {
  std::string_view sender;
  std::optional<std::string_view> original;  // nullopt: not an SRS address
};

class SrsOriginalSenderTest : public testing::TestWithParam<SrsCase> {};

TEST_P(SrsOriginalSenderTest, DecodesOnlyWellFormedSrsAddresses) {
  std::optional<std::string> got = SrsOriginalSender(GetParam().sender);
  if (GetParam().original) {
    EXPECT_EQ(got, std::string(*GetParam().original)) << GetParam().sender;
  } else {
    EXPECT_EQ(got, std::nullopt) << GetParam().sender;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, SrsOriginalSenderTest,
    testing::Values(
        // libsrs2/postsrsd's form, and its other separators after the tag.
        SrsCase{"SRS0=HHH=TT=orig.example=user@fwd.example", "user@orig.example"},
        SrsCase{"SRS0=dV4c=3F=example.org=alice@forwarder.example", "alice@example.org"},
        SrsCase{"SRS0+dV4c=3F=example.org=alice@forwarder.example", "alice@example.org"},
        SrsCase{"SRS0-dV4c=3F=example.org=alice@forwarder.example", "alice@example.org"},
        SrsCase{"srs0=dV4c=3f=example.org=alice@forwarder.example", "alice@example.org"},
        // A base64 hash may hold '+' and '/'; the original local part may hold '='.
        SrsCase{"SRS0=a+/9=ZZ=example.org=a=b=c@fwd.example", "a=b=c@example.org"},
        SrsCase{"SRS0=dV4c=3F=example.org=prvs=1234567890=bob@fwd.example",
                "prvs=1234567890=bob@example.org"},
        // SRS1: a second forwarder's rewrite, naming the first one.
        SrsCase{"SRS1=X9yz=first.example==dV4c=3F=example.org=alice@second.example",
                "alice@example.org"},
        SrsCase{"SRS1=X9yz=first.example=+dV4c=3F=example.org=alice@second.example",
                "alice@example.org"},
        // Not SRS, or malformed: left to postgrey's normalisation.
        SrsCase{"alice@example.org", std::nullopt}, SrsCase{"", std::nullopt},
        SrsCase{"SRS0=dV4c=3F=example.org=alice", std::nullopt},   // no forwarder
        SrsCase{"SRS0=dV4c=3F=example.org=alice@", std::nullopt},  // empty forwarder
        SrsCase{"SRS0=dV4c=3F=example.org=@fwd.example", std::nullopt},
        SrsCase{"SRS0=dV4c=3F==alice@fwd.example", std::nullopt},
        SrsCase{"SRS0==3F=example.org=alice@fwd.example", std::nullopt},
        SrsCase{"SRS0=d.c=3F=example.org=alice@fwd.example", std::nullopt},
        SrsCase{"SRS0=dV4c=3FF=example.org=alice@fwd.example", std::nullopt},
        SrsCase{"SRS0=dV4c=3=example.org=alice@fwd.example", std::nullopt},
        SrsCase{"SRS0=dV4c=3F=example.org@fwd.example", std::nullopt},
        SrsCase{"SRS0xdV4c=3F=example.org=alice@fwd.example", std::nullopt},
        SrsCase{"SRS2=dV4c=3F=example.org=alice@fwd.example", std::nullopt},
        SrsCase{"xSRS0=dV4c=3F=example.org=alice@fwd.example", std::nullopt},
        SrsCase{"SRS1=X9yz=first.example=dV4c=3F=example.org=alice@second.example",
                std::nullopt},  // the SRS0 part lost its separator
        SrsCase{"SRS1=X9yz==dV4c=3F=example.org=alice@second.example", std::nullopt}));

TEST(NormaliseSenderTest, SrsDecodingIsOptInAndNormalisesTheOriginal) {
  const std::string_view srs = "SRS0=dV4c=3F=example.org=bounce-42+tag@fwd.example";
  // postgrey's rules alone (the default): the SRS address as it is, digits masked.
  EXPECT_EQ(NormaliseSender(srs), "SRS0=dV4c=3F=example.org=bounce-#@fwd.example");
  EXPECT_EQ(NormaliseSender(srs, /*decode_srs=*/true), "bounce-#@example.org");
  EXPECT_EQ(NormaliseSender("SRS0=dV4c=3F=example.org=prvs=1234567890=bob@fwd.example", true),
            "bob@example.org");
  EXPECT_EQ(NormaliseSender("alice+x@example.net", true), "alice@example.net");
}

TEST(TripletKeyTest, SrsSendersShareTheOriginalSendersKeyWhenDecoding) {
  KeyOptions options;
  options.decode_srs = true;
  // The hash and timestamp change every day; the key does not.
  const std::string monday = TripletKeyFromClientPart(
      "spf:fwd.example", "SRS0=dV4c=3F=Example.org=Alice@fwd.example", "bob@example.net", options);
  EXPECT_EQ(monday, "spf:fwd.example/alice@example.org/bob@example.net");
  EXPECT_EQ(
      TripletKeyFromClientPart("spf:fwd.example", "SRS0=Qw7T=3G=example.org=alice@fwd.example",
                               "bob@example.net", options),
      monday);
  options.decode_srs = false;
  EXPECT_EQ(TripletKeyFromClientPart("192.0.2.0", "SRS0=dV4c=3F=example.org=alice@fwd.example",
                                     "bob@example.net", options),
            "192.0.2.0/srs0=dv4c=3f=example.org=alice@fwd.example/bob@example.net");
}

IpAddress Ip(std::string_view text) { return *IpAddress::Parse(text); }

TEST(TripletKeyTest, Ipv4MaskedTo24AndLowercased) {
  EXPECT_EQ(TripletKey(Ip("192.0.2.10"), "Alice@Example.NET", "Bob@Example.org", {}),
            "192.0.2.0/alice@example.net/bob@example.org");
}

TEST(TripletKeyTest, EmptySender) {
  EXPECT_EQ(TripletKey(Ip("192.0.2.10"), "", "bob+ext@example.org", {}),
            "192.0.2.0//bob+ext@example.org");
}

TEST(TripletKeyTest, Ipv6MaskedTo64Expanded) {
  EXPECT_EQ(TripletKey(Ip("2001:db8:1:2::5"), "v6@example.net", "bob@example.org", {}),
            "2001:db8:1:2:0:0:0:0/v6@example.net/bob@example.org");
}

TEST(TripletKeyTest, CustomCidrs) {
  KeyOptions options;
  options.ipv4_cidr = 16;
  options.ipv6_cidr = 48;
  EXPECT_EQ(ClientNetwork(Ip("192.0.2.10"), options), "192.0.0.0");
  EXPECT_EQ(ClientNetwork(Ip("2001:db8:1:2::5"), options), "2001:DB8:1:0:0:0:0:0");
}

TEST(TripletKeyTest, LookupByHostKeepsPostgreysCidrFormat) {
  KeyOptions options;
  options.lookup_by_host = true;
  EXPECT_EQ(TripletKey(Ip("10.0.0.1"), "b@c", "d@e", options), "10.0.0.1/32/b@c/d@e");
  EXPECT_EQ(TripletKey(Ip("2001:db8::1"), "alice@example.net", "bob@example.org", options),
            "2001:db8:0:0:0:0:0:1/128/alice@example.net/bob@example.org");
}

TEST(TripletKeyTest, PrivacyHashesTheLowercasedKey) {
  KeyOptions options;
  options.privacy = true;
  EXPECT_EQ(TripletKey(Ip("10.0.0.1"), "B@C", "d@e", options), Sha1Hex("10.0.0.0/b@c/d@e"));
  EXPECT_EQ(ClientKey(Ip("10.0.0.1"), options), Sha1Hex("10.0.0.1"));
}

TEST(TripletKeyTest, ClientKeyIsUnmaskedAndIpv6Uppercase) {
  EXPECT_EQ(ClientKey(Ip("198.51.100.7"), {}), "198.51.100.7");
  EXPECT_EQ(ClientKey(Ip("2001:db8::1"), {}), "2001:DB8:0:0:0:0:0:1");
}

TEST(TripletKeyTest, MappedIpv4IsIpv6) {
  EXPECT_EQ(ClientNetwork(Ip("::ffff:1.2.3.4"), {}), "0:0:0:0:0:0:0:0");
}

TEST(IpAddressTest, RejectsWhatPostfixNeverSends) {
  for (std::string_view bad : {"", "unknown", "localhost", "1.2.3", "1.2.3.4.5", "::g", "[::1]"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).has_value()) << bad;
  }
}

TEST(IpAddressTest, Within) {
  EXPECT_TRUE(Ip("192.0.2.77").Within(Ip("192.0.2.0"), 24));
  EXPECT_FALSE(Ip("192.0.3.77").Within(Ip("192.0.2.0"), 24));
  EXPECT_TRUE(Ip("2001:db8::77").Within(Ip("2001:db8::"), 32));
  EXPECT_FALSE(Ip("192.0.2.77").Within(Ip("2001:db8::"), 0));
}

TEST(IpAddressTest, LoopbackIsWhatOnlyThisHostConnectsFrom) {
  for (std::string_view local :
       {"127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(Ip(local).IsLoopback()) << local;
  }
  for (std::string_view remote : {"10.0.0.1", "128.0.0.1", "126.255.255.255", "::2",
                                  "::", "::ffff:10.0.0.1", "::127.0.0.1", "2001:db8::1"}) {
    EXPECT_FALSE(Ip(remote).IsLoopback()) << remote;
  }
}

}  // namespace
}  // namespace greylight::policy
