#include "policy/reply_key.h"

#include <gtest/gtest.h>

#include "util/sha1.h"

namespace greylight::policy {
namespace {

// The outbound message records (its recipient, its sender); the reply looks up (its sender,
// its recipient): the same key whatever the remote side does to its address on the way back.
TEST(ReplyKeyTest, TheReplyFindsTheKeyItsOutboundMessageRecorded) {
  const KeyOptions options;
  const std::string recorded = ReplyKey("Carol+Lists@Remote.Example", "Bob@Example.ORG", options);
  EXPECT_EQ(recorded, "carol@remote.example/bob@example.org");
  EXPECT_EQ(ReplyKey("carol@remote.example", "bob@example.org", options), recorded);
  EXPECT_EQ(ReplyKey("prvs=1234567890=carol@remote.example", "BOB@example.org", options), recorded);
  // The local user is kept as a triplet's recipient: an extension is another user.
  EXPECT_NE(ReplyKey("carol@remote.example", "bob+list@example.org", options), recorded);
  EXPECT_NE(ReplyKey("dave@remote.example", "bob@example.org", options), recorded);
}

TEST(ReplyKeyTest, PrivacyStoresTheDigestOfTheClearKey) {
  KeyOptions options;
  options.privacy = true;
  EXPECT_EQ(ReplyKey("carol@remote.example", "bob@example.org", options),
            Sha1Hex("carol@remote.example/bob@example.org"));
}

}  // namespace
}  // namespace greylight::policy
