#include "policy/records.h"

#include <gtest/gtest.h>

namespace greylight::policy {
namespace {

TEST(RecordsTest, TripletRoundTrip) {
  TripletRecord record{FromUnixSeconds(1800000000), FromUnixSeconds(1800000302)};
  EXPECT_EQ(EncodeTriplet(record), "1800000000,1800000302");
  EXPECT_EQ(DecodeTriplet("1800000000,1800000302"), record);
}

TEST(RecordsTest, TripletToleratesPostgreysOldThirdField) {
  EXPECT_EQ(DecodeTriplet("1,2,10"), (TripletRecord{FromUnixSeconds(1), FromUnixSeconds(2)}));
}

TEST(RecordsTest, ClientRoundTrip) {
  ClientRecord record{7, FromUnixSeconds(1800124000)};
  EXPECT_EQ(EncodeClient(record), "7,1800124000");
  EXPECT_EQ(DecodeClient("7,1800124000"), record);
}

TEST(RecordsTest, MalformedValuesAreRejected) {
  for (std::string_view bad : {"", ",", "1", "1,", ",2", "a,b", "1,2x", "-1,2", "1,2,3,", " 1,2"}) {
    EXPECT_FALSE(DecodeClient(bad).has_value()) << bad;
  }
  for (std::string_view bad : {"", "1", "1,", "x,1", "1;2"}) {
    EXPECT_FALSE(DecodeTriplet(bad).has_value()) << bad;
  }
  EXPECT_FALSE(DecodeClient("1,2,3").has_value());
}

TEST(RecordsTest, FieldsBeyondTwoToTheFiftyThreeAreMalformedEverywhere) {
  EXPECT_TRUE(DecodeTriplet("9007199254740991,9007199254740991").has_value());
  EXPECT_FALSE(DecodeTriplet("9007199254740992,1800000000").has_value());
  EXPECT_FALSE(DecodeClient("1,9007199254740992").has_value());
  EXPECT_FALSE(DecodeTrap("9223372036854775807,1").has_value());
}

TEST(RecordsTest, TrapRoundTripAndRejectsMalformed) {
  TrapRecord record{FromUnixSeconds(1700086400), FromUnixSeconds(1700000000)};
  EXPECT_EQ(EncodeTrap(record), "1700086400,1700000000");
  EXPECT_EQ(DecodeTrap("1700086400,1700000000"), record);
  for (std::string_view bad : {"", "1", "1,", ",1", "1,2,3", "-1,2", "a,1", "1, 2", "1,2x"}) {
    EXPECT_FALSE(DecodeTrap(bad).has_value()) << bad;
  }
}

TEST(RecordsTest, ReplyRoundTripAndRejectsMalformed) {
  ReplyRecord record{3, FromUnixSeconds(1700000000)};
  EXPECT_EQ(EncodeReply(record), "3,1700000000");
  EXPECT_EQ(DecodeReply("3,1700000000"), record);
  for (std::string_view bad :
       {"", "1", "1,", ",1", "1,2,3", "-1,2", "a,1", "1, 2", "1,2x", "9007199254740992,1"}) {
    EXPECT_FALSE(DecodeReply(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace greylight::policy
