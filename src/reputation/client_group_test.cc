#include "reputation/client_group.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "policy/greylist_state.h"
#include "policy/triplet_key.h"
#include "util/sha1.h"

namespace greylight::reputation {
namespace {

policy::IpAddress Ip(std::string_view text) {
  auto address = policy::IpAddress::Parse(text);
  EXPECT_TRUE(address.has_value()) << text;
  return address.value_or(policy::IpAddress{});
}

class ClientGroupTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto psl = Psl::LoadSystem();
    ASSERT_TRUE(psl.ok()) << psl.status().message();
    std::cout << "public suffix list: " << psl.value()->source() << "\n";
    psl_ = std::move(psl.value()).release();
  }
  static void TearDownTestSuite() {
    delete psl_;
    psl_ = nullptr;
  }

  ClientGroup Group(std::string_view address, std::string_view name, LookupBy by,
                    policy::KeyOptions options = {}) {
    return GroupClient(Ip(address), name, by, options, *psl_);
  }

  static const Psl* psl_;
};
const Psl* ClientGroupTest::psl_ = nullptr;

// --lookup-by=subnet must keep postgrey's keys byte for byte: the default mode is the
// compatibility mode.
TEST_F(ClientGroupTest, SubnetKeysAreExactlyPostgreysKeys) {
  for (std::string_view address : {"203.0.113.5", "2001:db8:1:2:3:4:5:6", "10.0.0.1"}) {
    for (bool privacy : {false, true}) {
      policy::KeyOptions options;
      options.privacy = privacy;
      for (std::string_view name : {"unknown", "mail-wr1-f41.google.com", ""}) {
        ClientGroup group = Group(address, name, LookupBy::kSubnet, options);
        EXPECT_EQ(group.key, policy::ClientNetwork(Ip(address), options));
        EXPECT_EQ(group.awl_key, policy::ClientKey(Ip(address), options));
        EXPECT_EQ(group.basis, KeyBasis::kSubnet);
        EXPECT_EQ(
            GroupTripletKey(group.key, "Bob+ext@Example.ORG", "Alice@example.net", options),
            policy::TripletKey(Ip(address), "Bob+ext@Example.ORG", "Alice@example.net", options));
      }
    }
  }
  EXPECT_EQ(Group("203.0.113.5", "x.example.com", LookupBy::kSubnet).key, "203.0.113.0");
  EXPECT_EQ(Group("2001:db8:1:2:3:4:5:6", "x.example.com", LookupBy::kSubnet).key,
            "2001:DB8:1:2:0:0:0:0");
}

TEST_F(ClientGroupTest, HostKeysAreExactlyPostgreysLookupByHostKeys) {
  policy::KeyOptions host_options;
  host_options.lookup_by_host = true;
  for (std::string_view address : {"203.0.113.5", "2001:db8:1:2:3:4:5:6"}) {
    ClientGroup group = Group(address, "mail-wr1-f41.google.com", LookupBy::kHost);
    EXPECT_EQ(group.key, policy::ClientNetwork(Ip(address), host_options));
    EXPECT_EQ(group.awl_key, policy::ClientKey(Ip(address), host_options));
    EXPECT_EQ(group.basis, KeyBasis::kHost);
    EXPECT_EQ(GroupTripletKey(group.key, "s@example.org", "r@example.net", host_options),
              policy::TripletKey(Ip(address), "s@example.org", "r@example.net", host_options));
  }
  EXPECT_EQ(Group("203.0.113.5", "x", LookupBy::kHost).key, "203.0.113.5/32");
}

// Real outbound names of large providers and the addresses they came from. Every name of
// one provider gets the same key, so a retry from another address of the pool matches the
// pending triplet. Documented in docs/tuning.md.
struct ProviderCase {
  const char* address;
  const char* name;
  const char* key;
};
const ProviderCase kProviders[] = {
    // Gmail: IPv4 and IPv6 outbound hosts.
    {"209.85.221.41", "mail-wr1-f41.google.com", "domain:google.com"},
    {"209.85.208.54", "mail-ed1-f54.google.com", "domain:google.com"},
    {"209.85.128.170", "mail-wm1-f170.google.com", "domain:google.com"},
    {"2607:f8b0:4864:20::1130", "mail-yw1-x1130.google.com", "domain:google.com"},
    // Office 365 / Exchange Online: outlook.com is not a public suffix, so all of
    // outbound.protection.outlook.com is one group.
    {"40.107.2.71", "mail-db8eur05on2071.outbound.protection.outlook.com", "domain:outlook.com"},
    {"40.107.21.89", "mail-am6eur05on2089.outbound.protection.outlook.com", "domain:outlook.com"},
    {"2a01:111:f400:7e1a::701", "mail-ve1eur01on0701.outbound.protection.outlook.com",
     "domain:outlook.com"},
    // Amazon SES: "a8-30" carries the last two octets of 54.240.8.30; two octets alone
    // are not enough to call a name generic, so SES stays grouped. amazonses.com is not in
    // the PSL's private section (amazonaws.com sub-zones are, which does not matter here).
    {"54.240.8.30", "a8-30.smtp-out.amazonses.com", "domain:amazonses.com"},
    {"54.240.48.112", "a48-112.smtp-out.amazonses.com", "domain:amazonses.com"},
    {"23.251.226.55", "e226-55.smtp-out.eu-west-1.amazonses.com", "domain:amazonses.com"},
    // A registrable domain under a two-label public suffix.
    {"192.0.2.10", "mx1.example.co.uk", "domain:example.co.uk"},
};

TEST_F(ClientGroupTest, ProviderOutboundNamesShareOneKeyPerProvider) {
  for (LookupBy by : {LookupBy::kDomain, LookupBy::kSmart}) {
    for (const ProviderCase& c : kProviders) {
      ClientGroup group = Group(c.address, c.name, by);
      EXPECT_EQ(group.key, c.key) << LookupByName(by) << " " << c.name << " ("
                                  << FallbackName(group.fallback) << ": " << group.evidence << ")";
      EXPECT_EQ(group.basis, KeyBasis::kDomain) << c.name;
      EXPECT_EQ(group.awl_key, group.key) << "the AWL counts per group";
    }
  }
  // The retry story at the key level: two attempts of one message from two Gmail hosts
  // in different networks share the triplet key.
  policy::KeyOptions options;
  EXPECT_EQ(GroupTripletKey(Group("209.85.221.41", "mail-wr1-f41.google.com", LookupBy::kSmart).key,
                            "someone@gmail.com", "me@example.org", options),
            GroupTripletKey(Group("209.85.208.54", "mail-ed1-f54.google.com", LookupBy::kSmart).key,
                            "someone@gmail.com", "me@example.org", options));
  EXPECT_EQ(GroupTripletKey("domain:google.com", "someone@gmail.com", "Me@Example.org", options),
            "domain:google.com/someone@gmail.com/me@example.org");
}

// The story the feature exists for, on the pure state transition: Gmail's first attempt
// comes from one network and its retry, after the delay, from another. Under smart keys
// the retry finds the pending triplet and passes; under subnet keys it starts over.
TEST_F(ClientGroupTest, ARetryFromAnotherAddressOfTheProviderPassesAfterTheDelay) {
  const policy::GreylistTiming timing;
  const UnixTime t0 = FromUnixSeconds(1'700'000'000);
  const UnixTime retry = t0 + timing.delay + Seconds(60);
  for (LookupBy by : {LookupBy::kSmart, LookupBy::kDomain, LookupBy::kSubnet}) {
    std::map<std::string, policy::TripletRecord> triplets;
    auto attempt = [&](std::string_view address, std::string_view name, UnixTime now) {
      std::string key =
          GroupTripletKey(Group(address, name, by).key, "someone@gmail.com", "me@example.org", {});
      policy::PriorState prior;
      if (auto it = triplets.find(key); it != triplets.end()) prior.triplet = it->second;
      policy::Transition t = policy::Decide(prior, now, timing);
      if (t.triplet_write) triplets[key] = *t.triplet_write;
      return t;
    };
    EXPECT_TRUE(attempt("209.85.221.41", "mail-wr1-f41.google.com", t0).greylisted());
    policy::Transition second = attempt("209.85.208.54", "mail-ed1-f54.google.com", retry);
    if (by == LookupBy::kSubnet) {
      EXPECT_TRUE(second.greylisted()) << "postgrey's keys: a new triplet";
      EXPECT_EQ(second.first, retry);
    } else {
      EXPECT_FALSE(second.greylisted()) << LookupByName(by);
      EXPECT_EQ(second.first, t0);
    }
  }
}

TEST_F(ClientGroupTest, NamesAreLowercasedAndTheTrailingDotIgnored) {
  EXPECT_EQ(Group("209.85.221.41", "MAIL-WR1-F41.Google.COM.", LookupBy::kDomain).key,
            "domain:google.com");
}

TEST_F(ClientGroupTest, DomainKeysCannotCollideWithAddressKeys) {
  ClientGroup group = Group("203.0.113.5", "mx.example.com", LookupBy::kDomain);
  EXPECT_TRUE(group.key.starts_with("domain:"));
  EXPECT_FALSE(policy::IpAddress::Parse(group.key).has_value());
  // An address-like name never reaches the PSL (which would say "3.4" for 1.2.3.4).
  EXPECT_EQ(Group("203.0.113.5", "1.2.3.4", LookupBy::kDomain).fallback, Fallback::kInvalidName);
}

struct GenericCase {
  const char* address;
  const char* name;
  Fallback fallback;
};
const GenericCase kGeneric[] = {
    {"203.0.113.5", "203-0-113-5.dsl.example.net", Fallback::kEmbedsAddress},
    {"203.0.113.5", "cpe-203-0-113-5.cable.example.com", Fallback::kEmbedsAddress},
    {"203.0.113.5", "ppp-5.113.0.203.example.net", Fallback::kEmbedsAddress},
    {"203.0.113.5", "host5.113.0.203.dyn.example.net", Fallback::kEmbedsAddress},
    {"203.0.113.5", "c-203-0-113.hsd1.example.com", Fallback::kEmbedsAddress},
    {"203.0.113.5", "pool-203-000-113-005.example.net", Fallback::kEmbedsAddress},
    {"203.0.113.5", "ip203000113005.example.net", Fallback::kEmbedsAddress},
    {"203.0.113.5", "cb007105.example.net", Fallback::kEmbedsAddress},
    {"203.0.113.5", "x3405803781.example.net", Fallback::kEmbedsAddress},
    {"2001:db8:1:2::5", "2001-db8-1-2-0-0-0-5.v6.example.net", Fallback::kEmbedsAddress},
    {"2001:db8:1:2::5", "20010db8000100020000000000000005.example.net", Fallback::kEmbedsAddress},
    {"2001:db8:1:2::5",
     "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.example.net",
     Fallback::kEmbedsAddress},
    // No digits of the address, but a pool word.
    {"198.51.100.77", "dyn-pool-a7.example.net", Fallback::kDynamicWord},
    {"198.51.100.77", "customer.isp.example", Fallback::kDynamicWord},
    {"198.51.100.77", "adsl-77.example.net", Fallback::kDynamicWord},
    {"198.51.100.77", "static.77.example.net", Fallback::kDynamicWord},
    {"198.51.100.77", "broadband.example.net", Fallback::kDynamicWord},
};

TEST_F(ClientGroupTest, GenericResidentialNamesDoNotGroupUnderSmart) {
  for (const GenericCase& c : kGeneric) {
    ClientGroup group = Group(c.address, c.name, LookupBy::kSmart);
    EXPECT_EQ(group.basis, KeyBasis::kSubnet) << c.name;
    EXPECT_EQ(group.fallback, c.fallback) << c.name << " evidence " << group.evidence;
    EXPECT_EQ(group.key, policy::ClientNetwork(Ip(c.address), {})) << c.name;
    EXPECT_EQ(group.awl_key, policy::ClientKey(Ip(c.address), {})) << c.name;
    // --lookup-by=domain groups them anyway: that is the difference between the modes.
    EXPECT_EQ(Group(c.address, c.name, LookupBy::kDomain).basis, KeyBasis::kDomain) << c.name;
  }
}

TEST_F(ClientGroupTest, UnverifiedAndUnusableNamesFallBackToTheSubnetKey) {
  struct Case {
    const char* name;
    Fallback fallback;
  };
  const Case cases[] = {
      {"unknown", Fallback::kUnverified},
      {"", Fallback::kUnverified},
      {"localhost", Fallback::kInvalidName},  // one label
      {"com", Fallback::kInvalidName},
      {"co.uk", Fallback::kNoRegistrable},  // a public suffix itself
      {"foo..example.com", Fallback::kInvalidName},
      {"host name.example.com", Fallback::kInvalidName},
      {"203.0.113.5", Fallback::kInvalidName},
      {"bad\xff.example.com", Fallback::kInvalidName},
  };
  for (LookupBy by : {LookupBy::kDomain, LookupBy::kSmart}) {
    for (const Case& c : cases) {
      ClientGroup group = Group("203.0.113.5", c.name, by);
      EXPECT_EQ(group.fallback, c.fallback) << c.name;
      EXPECT_EQ(group.key, "203.0.113.0") << c.name;
      EXPECT_EQ(group.awl_key, "203.0.113.5") << c.name;
    }
  }
  // The fallback respects the configured subnet and host options.
  policy::KeyOptions options;
  options.ipv4_cidr = 16;
  EXPECT_EQ(Group("203.0.113.5", "unknown", LookupBy::kSmart, options).key, "203.0.0.0");
}

TEST_F(ClientGroupTest, OnlyTheHostLabelsAreExamined) {
  // "dsl" and the digits in the registrable domain name the company, not the pool.
  EXPECT_EQ(Group("203.0.113.5", "mail.dsl-203-0-113.example", LookupBy::kSmart).basis,
            KeyBasis::kDomain);
  EXPECT_EQ(Group("203.0.113.5", "dsl-provider.com", LookupBy::kSmart).key,
            "domain:dsl-provider.com");
  // Whole words only: "mailhost" is not "host", "clientmail" not "client".
  EXPECT_EQ(Group("203.0.113.5", "mailhost.example.com", LookupBy::kSmart).basis,
            KeyBasis::kDomain);
  EXPECT_EQ(Group("203.0.113.5", "host.example.com", LookupBy::kSmart).fallback,
            Fallback::kDynamicWord);
}

TEST_F(ClientGroupTest, AwlKeyFollowsTheGroupAndHonoursPrivacy) {
  policy::KeyOptions options;
  options.privacy = true;
  ClientGroup group = Group("209.85.221.41", "mail-wr1-f41.google.com", LookupBy::kSmart, options);
  EXPECT_EQ(group.key, "domain:google.com");
  EXPECT_EQ(group.awl_key, Sha1Hex("domain:google.com"));
  EXPECT_EQ(GroupTripletKey(group.key, "s@example.org", "r@example.net", options),
            Sha1Hex("domain:google.com/s@example.org/r@example.net"));
  EXPECT_EQ(
      ClientAwlKey(Ip("209.85.221.41"), "mail-wr1-f41.google.com", LookupBy::kDomain, {}, *psl_),
      "domain:google.com");
  EXPECT_EQ(ClientGroupKey(Ip("209.85.221.41"), "unknown", LookupBy::kDomain, {}, *psl_),
            "209.85.221.0");
}

TEST_F(ClientGroupTest, TwoOctetsAloneDoNotMakeANameGeneric) {
  Fallback fallback = Fallback::kNone;
  std::string evidence;
  EXPECT_FALSE(LooksGeneric(Ip("54.240.8.30"), "a8-30.smtp-out.amazonses.com", "amazonses.com",
                            &fallback, &evidence));
  EXPECT_TRUE(LooksGeneric(Ip("54.240.8.30"), "a240-8-30.smtp-out.amazonses.com", "amazonses.com",
                           &fallback, &evidence));
  EXPECT_EQ(fallback, Fallback::kEmbedsAddress);
  EXPECT_EQ(evidence, "240-8-30");
}

// One Psl is shared by all connections: concurrent use must give the same keys.
TEST_F(ClientGroupTest, OnePslServesManyThreads) {
  std::vector<std::string> expected;
  for (const ProviderCase& c : kProviders) expected.push_back(c.key);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 500; ++round) {
        for (size_t i = 0; i < std::size(kProviders); ++i) {
          const ProviderCase& c = kProviders[i];
          if (GroupClient(Ip(c.address), c.name, LookupBy::kSmart, {}, *psl_).key != expected[i]) {
            ++mismatches;
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(LookupByTest, ParsesTheOptionValues) {
  EXPECT_EQ(ParseLookupBy("subnet").value(), LookupBy::kSubnet);
  EXPECT_EQ(ParseLookupBy("host").value(), LookupBy::kHost);
  EXPECT_EQ(ParseLookupBy("domain").value(), LookupBy::kDomain);
  EXPECT_EQ(ParseLookupBy("smart").value(), LookupBy::kSmart);
  EXPECT_FALSE(ParseLookupBy("Smart").ok());
  EXPECT_FALSE(ParseLookupBy("").ok());
  for (LookupBy by : {LookupBy::kSubnet, LookupBy::kHost, LookupBy::kDomain, LookupBy::kSmart}) {
    EXPECT_EQ(ParseLookupBy(LookupByName(by)).value(), by);
  }
}

TEST(PslTest, LoadsAListFromAFile) {
  char path[] = "/tmp/greylight-psl-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string text = "// test list\ncom\nexample.com\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  auto psl = Psl::LoadFile(path);
  unlink(path);
  ASSERT_TRUE(psl.ok()) << psl.status().message();
  EXPECT_EQ((*psl)->source(), path);
  // example.com is a public suffix in this list, so the registrable part is one deeper.
  EXPECT_EQ((*psl)->RegistrableDomain("a.b.example.com"), "b.example.com");
  EXPECT_EQ((*psl)->RegistrableDomain("example.com"), "");
  EXPECT_FALSE(Psl::LoadFile("/nonexistent/greylight-psl").ok());
}

}  // namespace
}  // namespace greylight::reputation
