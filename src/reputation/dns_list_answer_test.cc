#include "reputation/dns_list_answer.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string_view>
#include <vector>

namespace greylight::reputation {
namespace {

using namespace std::chrono_literals;

// A response built field by field.
struct Message {
  std::vector<uint8_t> bytes;
  void U8(unsigned v) { bytes.push_back(static_cast<uint8_t>(v)); }
  void U16(unsigned v) {
    U8(v >> 8);
    U8(v & 0xFF);
  }
  void U32(uint32_t v) {
    U16(v >> 16);
    U16(v & 0xFFFF);
  }
  void Name(std::string_view name) {
    while (!name.empty()) {
      size_t dot = name.find('.');
      std::string_view label = name.substr(0, dot);
      U8(static_cast<unsigned>(label.size()));
      bytes.insert(bytes.end(), label.begin(), label.end());
      name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    }
    U8(0);
  }
};

Message Response(unsigned rcode, unsigned answers, unsigned authorities) {
  Message m;
  m.U16(0x1234);
  m.U16(0x8180 | rcode);
  m.U16(1);
  m.U16(answers);
  m.U16(authorities);
  m.U16(0);
  m.Name("2.0.0.127.bl.example");
  m.U16(1);
  m.U16(1);
  return m;
}

void ARecord(Message& m, uint32_t ttl, std::array<uint8_t, 4> address) {
  m.U16(0xC00C);  // pointer to the question name
  m.U16(1);
  m.U16(1);
  m.U32(ttl);
  m.U16(4);
  for (uint8_t b : address) m.U8(b);
}

void SoaRecord(Message& m, uint32_t ttl, uint32_t minimum) {
  m.Name("bl.example");
  m.U16(6);
  m.U16(1);
  m.U32(ttl);
  Message rdata;
  rdata.Name("ns.bl.example");
  rdata.Name("hostmaster.bl.example");
  for (uint32_t v : {1u, 3600u, 600u, 86400u}) rdata.U32(v);
  rdata.U32(minimum);
  m.U16(static_cast<unsigned>(rdata.bytes.size()));
  m.bytes.insert(m.bytes.end(), rdata.bytes.begin(), rdata.bytes.end());
}

TEST(ParseListResponseTest, ReadsAnswersAndTtls) {
  Message listed = Response(0, 2, 0);
  ARecord(listed, 300, {127, 0, 0, 2});
  ARecord(listed, 120, {127, 0, 0, 4});
  ListAnswer answer = ParseListResponse(listed.bytes, 77s);
  ASSERT_EQ(answer.kind, ListAnswer::Kind::kListed) << answer.error;
  ASSERT_EQ(answer.addresses.size(), 2u);
  EXPECT_EQ(answer.addresses[1], (std::array<uint8_t, 4>{127, 0, 0, 4}));
  EXPECT_EQ(answer.ttl, 120s);

  Message nxdomain = Response(3, 0, 1);
  SoaRecord(nxdomain, 900, 30);
  answer = ParseListResponse(nxdomain.bytes, 77s);
  EXPECT_EQ(answer.kind, ListAnswer::Kind::kNotListed);
  EXPECT_EQ(answer.ttl, 30s);

  Message nodata = Response(0, 0, 0);
  answer = ParseListResponse(nodata.bytes, 77s);
  EXPECT_EQ(answer.kind, ListAnswer::Kind::kNotListed);
  EXPECT_EQ(answer.ttl, 77s);

  Message servfail = Response(2, 0, 0);
  answer = ParseListResponse(servfail.bytes, 77s);
  EXPECT_EQ(answer.kind, ListAnswer::Kind::kFailed);
  EXPECT_EQ(answer.error, "SERVFAIL");

  Message huge_ttl = Response(0, 1, 0);
  ARecord(huge_ttl, 0x80000000u, {127, 0, 0, 2});
  EXPECT_EQ(ParseListResponse(huge_ttl.bytes, 77s).ttl, 0s);  // RFC 2181: means 0
}

TEST(ParseListResponseTest, MalformedMessagesFailCleanly) {
  Message bad_length = Response(0, 1, 0);
  bad_length.U16(0xC00C);
  bad_length.U16(1);
  bad_length.U16(1);
  bad_length.U32(60);
  bad_length.U16(3);
  bad_length.U8(127);
  bad_length.U8(0);
  bad_length.U8(0);
  EXPECT_EQ(ParseListResponse(bad_length.bytes, 1s).error, "malformed answer");

  Message listed = Response(0, 1, 0);
  ARecord(listed, 60, {127, 0, 0, 2});
  for (size_t cut = 0; cut < listed.bytes.size(); ++cut) {
    std::vector<uint8_t> truncated(listed.bytes.begin(), listed.bytes.begin() + cut);
    EXPECT_EQ(ParseListResponse(truncated, 1s).kind, ListAnswer::Kind::kFailed) << cut;
  }

  Message query = Response(0, 0, 0);
  query.bytes[2] &= 0x7F;  // QR clear: a query, not a response
  EXPECT_EQ(ParseListResponse(query.bytes, 1s).kind, ListAnswer::Kind::kFailed);

  Message loop = Response(3, 0, 1);
  loop.U16(0xC000 | static_cast<unsigned>(loop.bytes.size()));  // a name pointing at itself
  loop.U16(6);
  EXPECT_EQ(ParseListResponse(loop.bytes, 1s).kind, ListAnswer::Kind::kFailed);
}

// Random corruption of valid messages must never read out of bounds or hang. Prints its
// seed; set GREYLIGHT_TEST_SEED to replay one.
TEST(ParseListResponseTest, SurvivesRandomGarbage) {
  unsigned seed = std::random_device{}();
  if (const char* fixed = std::getenv("GREYLIGHT_TEST_SEED")) {
    seed = static_cast<unsigned>(std::strtoul(fixed, nullptr, 10));
  }
  std::cout << "seed " << seed << "\n";
  std::mt19937 random(seed);
  Message listed = Response(0, 2, 0);
  ARecord(listed, 60, {127, 0, 0, 2});
  ARecord(listed, 60, {127, 0, 0, 3});
  Message negative = Response(3, 0, 1);
  SoaRecord(negative, 60, 60);
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> bytes = (round % 2 == 0 ? listed : negative).bytes;
    int flips = 1 + static_cast<int>(random() % 8);
    for (int i = 0; i < flips; ++i) bytes[random() % bytes.size()] = static_cast<uint8_t>(random());
    if (random() % 4 == 0) bytes.resize(random() % (bytes.size() + 1));
    if (round % 97 == 0) {
      bytes.resize(random() % 600);
      for (uint8_t& b : bytes) b = static_cast<uint8_t>(random());
    }
    ListAnswer answer = ParseListResponse(bytes, 5s);
    if (answer.kind == ListAnswer::Kind::kListed) {
      EXPECT_FALSE(answer.addresses.empty());
    }
  }
}

}  // namespace
}  // namespace greylight::reputation
