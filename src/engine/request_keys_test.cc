#include "engine/request_keys.h"

#include <gtest/gtest.h>

#include "util/sha1.h"

namespace greylight::engine {
namespace {

policy::IpAddress Ip(std::string_view text) { return *policy::IpAddress::Parse(text); }

// An SPF domain replaces the client part of the triplet and auto-whitelist keys in every
// --lookup-by mode; the trap key stays the client's own address.
TEST(BuildRequestKeysTest, AnSpfDomainIsTheClientPartInEveryMode) {
  for (reputation::LookupBy mode : {reputation::LookupBy::kSubnet, reputation::LookupBy::kHost,
                                    reputation::LookupBy::kDomain, reputation::LookupBy::kSmart}) {
    KeyScheme scheme;
    scheme.lookup_by = mode;  // no public suffix list needed: the SPF key comes first
    RequestKeys keys = BuildRequestKeys(Ip("198.51.100.10"), "unknown", "Alice@Example.net",
                                        "bob@example.org", scheme, "example.net");
    EXPECT_EQ(keys.triplet, "spf:example.net/alice@example.net/bob@example.org");
    EXPECT_EQ(keys.client, "spf:example.net");
    EXPECT_EQ(keys.trap, "198.51.100.10");
    EXPECT_EQ(keys.group, "spf:example.net");
  }
}

// The daemon builds each request's keys in the buffers of the last request's: every field
// is the fresh build's, whatever was there (a group, a reply key, privacy digests).
TEST(BuildRequestKeysTest, AssigningOverUsedKeysGivesTheFreshKeys) {
  KeyScheme scheme;
  KeyScheme host;
  host.lookup_by = reputation::LookupBy::kHost;
  KeyScheme privacy;
  privacy.keys.privacy = true;
  struct Ask {
    const KeyScheme& scheme;
    std::string client, sender, spf_domain;
  };
  const Ask asks[] = {
      {scheme, "198.51.100.10", "Alice@Example.net", "example.net"},
      {scheme, "2001:db8::1", "", ""},
      {privacy, "198.51.100.10", "a+tag@b.example", ""},
      {host, "192.0.2.1", "prvs=1234567890=c@d.example", ""},
      {scheme, "198.51.100.77", "x@y.example", ""},
  };
  RequestKeys reused;
  for (const Ask& ask : asks) {
    SCOPED_TRACE(ask.client + " " + ask.sender);
    RequestKeys fresh = BuildRequestKeys(Ip(ask.client), "unknown", ask.sender, "Bob@Example.org",
                                         ask.scheme, ask.spf_domain);
    AssignRequestKeys(reused, Ip(ask.client), "unknown", ask.sender, "Bob@Example.org", ask.scheme,
                      ask.spf_domain);
    EXPECT_EQ(reused.triplet, fresh.triplet);
    EXPECT_EQ(reused.client, fresh.client);
    EXPECT_EQ(reused.trap, fresh.trap);
    EXPECT_EQ(reused.group, fresh.group);
    EXPECT_EQ(reused.reply, fresh.reply);
  }
}

TEST(BuildRequestKeysTest, WithoutAnSpfDomainTheModesKeysAreUnchanged) {
  KeyScheme scheme;
  RequestKeys keys = BuildRequestKeys(Ip("198.51.100.10"), "unknown", "alice@example.net",
                                      "bob@example.org", scheme, /*spf_domain=*/"");
  EXPECT_EQ(keys.triplet, "198.51.100.0/alice@example.net/bob@example.org");
  EXPECT_EQ(keys.client, "198.51.100.10");
  EXPECT_EQ(keys.group, "");
  scheme.lookup_by = reputation::LookupBy::kHost;
  EXPECT_EQ(BuildRequestKeys(Ip("198.51.100.10"), "unknown", "a@b", "c@d", scheme).triplet,
            "198.51.100.10/32/a@b/c@d");
}

TEST(BuildRequestKeysTest, PrivacyDigestsSpfKeysAsDomainGroups) {
  KeyScheme scheme;
  scheme.keys.privacy = true;
  RequestKeys keys = BuildRequestKeys(Ip("198.51.100.10"), "unknown", "a@example.net",
                                      "b@example.org", scheme, "example.net");
  EXPECT_EQ(keys.triplet, Sha1Hex("spf:example.net/a@example.net/b@example.org"));
  EXPECT_EQ(keys.client, Sha1Hex("spf:example.net"));
  EXPECT_EQ(keys.trap, Sha1Hex("198.51.100.10"));
}

TEST(BuildRequestKeysTest, SrsSendersAreDecodedOnlyWhenTheSchemeSaysSo) {
  KeyScheme scheme;
  const std::string_view srs = "SRS0=dV4c=3F=example.org=carol@fwd.example";
  EXPECT_EQ(BuildRequestKeys(Ip("198.51.100.10"), "unknown", srs, "b@example.net", scheme).triplet,
            "198.51.100.0/srs0=dv4c=3f=example.org=carol@fwd.example/b@example.net");
  scheme.keys.decode_srs = true;
  EXPECT_EQ(
      BuildRequestKeys(Ip("198.51.100.10"), "unknown", srs, "b@example.net", scheme, "fwd.example")
          .triplet,
      "spf:fwd.example/carol@example.org/b@example.net");
}

}  // namespace
}  // namespace greylight::engine
