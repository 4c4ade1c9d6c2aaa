#include "policy/reply_text.h"

#include <gtest/gtest.h>

namespace greylight::policy {
namespace {

TEST(ReplyTextTest, DefaultTextWithEtrnGetsDsnPrefix) {
  EXPECT_EQ(GreylistAction("DEFER_IF_PERMIT", kDefaultGreylistText, true, Seconds(300),
                           "bob@example.org"),
            "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/"
            "example.org.html");
}

TEST(ReplyTextTest, NoEtrnNoPrefix) {
  EXPECT_EQ(GreylistAction("DEFER_IF_PERMIT", kDefaultGreylistText, false, Seconds(300),
                           "bob@example.org"),
            "DEFER_IF_PERMIT Greylisted, see http://postgrey.schweikert.ch/help/example.org.html");
}

TEST(ReplyTextTest, TextStartingWithDigitGetsNoPrefix) {
  EXPECT_EQ(GreylistAction("DEFER", "4.7.1 wait", true, Seconds(1), "a@b"), "DEFER 4.7.1 wait");
}

TEST(ReplyTextTest, OnlyFirstPlaceholdersReplaced) {
  EXPECT_EQ(
      GreylistAction("DEFER", "%s sec left for %r %s %r", false, Seconds(60), "bob@example.org"),
      "DEFER 60 sec left for example.org %s %r");
}

TEST(ReplyTextTest, PlaceholdersAreLookedForInTheTextOnly) {
  EXPECT_EQ(GreylistAction("X%s%r", "%s %r", false, Seconds(5), "a@b"), "X%s%r 5 b");
  EXPECT_EQ(GreylistAction("DEFER", "%s", false, Seconds(-3), "a@b"), "DEFER -3");
}

TEST(ReplyTextTest, RecipientDomainKeepsCaseAndUsesLastAt) {
  EXPECT_EQ(GreylistAction("DEFER", "%r", false, Seconds(1), "Bob+ext@Example.ORG"),
            "DEFER Example.ORG");
  EXPECT_EQ(GreylistAction("DEFER", "%r", false, Seconds(1), "a@b@c"), "DEFER c");
  EXPECT_EQ(GreylistAction("DEFER", "[%r]", false, Seconds(1), ""), "DEFER []");
}

TEST(ReplyTextTest, Header) {
  EXPECT_EQ(XGreylistHeader(kDefaultXGreylistHeader, Seconds(300), "0.1.0",
                            "Sun, 29 Nov 2026 07:58:41 UTC", "vm"),
            "X-Greylist: delayed 300 seconds by greylight-0.1.0 at vm; Sun, 29 Nov 2026 07:58:41 "
            "UTC");
}

TEST(ReplyTextTest, HeaderDateIsEnglishRfc2822Style) {
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(HeaderDate(FromUnixSeconds(1800000000)), "Fri, 15 Jan 2027 08:00:00 UTC");
}

}  // namespace
}  // namespace greylight::policy
