#include "store/redis/redis_keys.h"

#include <gtest/gtest.h>

namespace greylight::store {
namespace {

TEST(RedisKeyLayoutTest, PlainKeysAreThePrefixTableAndKey) {
  RedisKeyLayout layout("site:", RedisKeyLayout::Mode::kPlain);
  EXPECT_EQ(layout.Key(Table::kTriplets, "192.0.2.0/a@b/c@d"), "site:t:192.0.2.0/a@b/c@d");
  EXPECT_EQ(layout.Key(Table::kClients, "x"), "site:c:x");
  EXPECT_EQ(layout.Key(Table::kTraps, "192.0.2.1"), "site:g:192.0.2.1");
  EXPECT_EQ(layout.ScanPattern(Table::kClients), "site:c:*");
  EXPECT_EQ(RedisKeyLayout("a*[b]:", RedisKeyLayout::Mode::kPlain).ScanPattern(Table::kTraps),
            "a\\*\\[b\\]:g:*");
  EXPECT_EQ(layout.RecordKey(Table::kClients, "site:c:x"), "x");
  EXPECT_EQ(layout.RecordKey(Table::kTriplets, "site:c:x"), std::nullopt);
  EXPECT_EQ(layout.RecordKey(Table::kClients, "other:c:x"), std::nullopt);
}

TEST(RedisKeyLayoutTest, ClusterKeysCarryTheHashTag) {
  RedisKeyLayout layout("gl:", RedisKeyLayout::Mode::kCluster);
  EXPECT_EQ(layout.Key(Table::kTriplets, "192.0.2.0/a@b/c@d"), "gl:t:{192.0.0.0}192.0.2.0/a@b/c@d");
  EXPECT_EQ(layout.Key(Table::kClients, "192.0.2.1"), "gl:c:{192.0.0.0}192.0.2.1");
  EXPECT_EQ(layout.Key(Table::kTraps, "192.0.2.1"), "gl:g:{192.0.0.0}192.0.2.1");
  EXPECT_EQ(layout.ScanPattern(Table::kTriplets), "gl:t:{*");
  EXPECT_EQ(layout.RecordKey(Table::kTriplets, "gl:t:{192.0.0.0}192.0.2.0/a@b/c@d"),
            "192.0.2.0/a@b/c@d");
  EXPECT_EQ(layout.RecordKey(Table::kTriplets, "gl:t:192.0.2.0/a@b/c@d"), std::nullopt);
  EXPECT_EQ(layout.RecordKey(Table::kTriplets, "gl:t:{unterminated"), std::nullopt);
}

// The keys one check touches share a tag in every mode that can: subnet (any --ipv4cidr
// from 16), host, domain groups with their auto-whitelist key.
TEST(ClusterHashTagTest, TheKeysOfOneCheckShareATag) {
  struct Case {
    std::string triplet, client;
  };
  for (const Case& c : {
           Case{"192.0.2.0/alice@example.org/bob@example.net", "192.0.2.77"},
           Case{"192.0.0.0/alice@example.org/bob@example.net", "192.0.2.77"},  // --ipv4cidr=16
           Case{"192.0.2.77/32/alice@example.org/bob@example.net", "192.0.2.77"},
           Case{"2001:DB8:1:2:0:0:0:0/a@b/c@d", "2001:DB8:1:2:0:0:0:1"},
           Case{"domain:example.com/a@b/c@d", "domain:example.com"},
           Case{"spf:example.com/a@b/c@d", "spf:example.com"},  // --spf-keys
       }) {
    EXPECT_EQ(ClusterHashTag(Table::kTriplets, c.triplet),
              ClusterHashTag(Table::kClients, c.client))
        << c.triplet;
  }
  EXPECT_EQ(ClusterHashTag(Table::kTraps, "192.0.2.77"), "192.0.0.0");
  EXPECT_EQ(ClusterHashTag(Table::kTraps, "2001:DB8:1:2:0:0:0:1"), "2001:DB8:0:0:0:0:0:0");
  // A domain group's trap entry stays with the client's address: another slot.
  EXPECT_NE(ClusterHashTag(Table::kTriplets, "domain:example.com/a@b/c@d"),
            ClusterHashTag(Table::kTraps, "192.0.2.77"));
  // So does an SPF-keyed client's; its tag is the whole client part, as Redis reads it back.
  RedisKeyLayout layout("gl:", RedisKeyLayout::Mode::kCluster);
  const std::string redis_key = layout.Key(Table::kTriplets, "spf:mail.example.com/a@b/c@d");
  EXPECT_EQ(redis_key, "gl:t:{spf:mail.example.com}spf:mail.example.com/a@b/c@d");
  EXPECT_EQ(layout.RecordKey(Table::kTriplets, redis_key), "spf:mail.example.com/a@b/c@d");
  EXPECT_EQ(layout.Key(Table::kClients, "spf:mail.example.com"),
            "gl:c:{spf:mail.example.com}spf:mail.example.com");
}

// Reply records hold no client: their tag is the remote address' domain, and a '}' in it
// (any byte can come in an address) cannot end the tag early.
TEST(ClusterHashTagTest, ReplyKeysAreTaggedByTheRemoteDomain) {
  RedisKeyLayout layout("gl:", RedisKeyLayout::Mode::kCluster);
  EXPECT_EQ(ClusterHashTag(Table::kReplies, "carol@remote.example/bob@example.org"),
            "remote.example");
  EXPECT_EQ(layout.Key(Table::kReplies, "carol@remote.example/bob@example.org"),
            "gl:r:{remote.example}carol@remote.example/bob@example.org");
  EXPECT_EQ(RedisKeyLayout("gl:", RedisKeyLayout::Mode::kPlain)
                .Key(Table::kReplies, "carol@remote.example/bob@example.org"),
            "gl:r:carol@remote.example/bob@example.org");
  const std::string odd = "x@do}m{ain/bob@example.org";
  EXPECT_EQ(ClusterHashTag(Table::kReplies, odd), "dom{ain");
  EXPECT_EQ(layout.RecordKey(Table::kReplies, layout.Key(Table::kReplies, odd)), odd);
  const std::string digest = "0123456789abcdef0123456789abcdef01234567";  // --privacy
  EXPECT_EQ(ClusterHashTag(Table::kReplies, digest), digest);
  EXPECT_EQ(layout.RecordKey(Table::kReplies, layout.Key(Table::kReplies, digest)), digest);
  EXPECT_EQ(layout.ScanPattern(Table::kReplies), "gl:r:{*");
}

}  // namespace
}  // namespace greylight::store
