#include "reputation/dns_records.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace greylight::reputation {
namespace {

using namespace std::chrono_literals;

// A response built field by field: the question, then records.
class Response {
 public:
  Response(std::string_view question, DnsType type, unsigned rcode = 0) {
    U16(0x1234);
    U16(0x8180 | rcode);
    U16(1);
    U16(0);  // answers, counted by Record
    U16(0);  // authorities
    U16(0);
    Name(question);
    U16(static_cast<unsigned>(type));
    U16(1);
  }
  // Appends a record to the answer section (or the authority section).
  Response& Record(std::string_view owner, unsigned type, uint32_t ttl,
                   const std::vector<uint8_t>& rdata, bool authority = false) {
    Name(owner);
    U16(type);
    U16(1);
    U16(ttl >> 16);
    U16(ttl & 0xFFFF);
    U16(static_cast<unsigned>(rdata.size()));
    bytes_.insert(bytes_.end(), rdata.begin(), rdata.end());
    const size_t count_at = authority ? 8 : 6;
    const unsigned count = ((bytes_[count_at] << 8) | bytes_[count_at + 1]) + 1;
    bytes_[count_at] = static_cast<uint8_t>(count >> 8);
    bytes_[count_at + 1] = static_cast<uint8_t>(count & 0xFF);
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

  static std::vector<uint8_t> EncodedName(std::string_view name) {
    Response r;
    r.Name(name);
    return r.bytes_;
  }
  static std::vector<uint8_t> Strings(const std::vector<std::string>& strings) {
    std::vector<uint8_t> out;
    for (const std::string& s : strings) {
      out.push_back(static_cast<uint8_t>(s.size()));
      out.insert(out.end(), s.begin(), s.end());
    }
    return out;
  }

 private:
  Response() = default;
  void U16(unsigned v) {
    bytes_.push_back(static_cast<uint8_t>(v >> 8));
    bytes_.push_back(static_cast<uint8_t>(v & 0xFF));
  }
  void Name(std::string_view name) {
    while (!name.empty()) {
      size_t dot = name.find('.');
      std::string_view label = name.substr(0, dot);
      bytes_.push_back(static_cast<uint8_t>(label.size()));
      bytes_.insert(bytes_.end(), label.begin(), label.end());
      name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    }
    bytes_.push_back(0);
  }
  std::vector<uint8_t> bytes_;
};

std::vector<uint8_t> Soa(uint32_t minimum) {
  std::vector<uint8_t> rdata = Response::EncodedName("ns.example");
  std::vector<uint8_t> mailbox = Response::EncodedName("hostmaster.example");
  rdata.insert(rdata.end(), mailbox.begin(), mailbox.end());
  for (uint32_t v : {1u, 3600u, 600u, 86400u, minimum}) {
    for (int shift = 24; shift >= 0; shift -= 8) rdata.push_back(static_cast<uint8_t>(v >> shift));
  }
  return rdata;
}

TEST(ReadRecordsTest, TxtRecordsJoinTheirStringsAndKeepTheSmallestTtl) {
  Response r("example.com", DnsType::kTxt);
  r.Record("example.com", 16, 300, Response::Strings({"v=spf1 ip4:", "192.0.2.0/24 -all"}));
  r.Record("example.com", 16, 60, Response::Strings({"another record"}));
  DnsRecords records = ReadRecords(DnsType::kTxt, r.bytes(), 77s);
  ASSERT_EQ(records.kind, DnsRecords::Kind::kFound) << records.error;
  ASSERT_EQ(records.texts.size(), 2u);
  EXPECT_EQ(records.texts[0], "v=spf1 ip4:192.0.2.0/24 -all");
  EXPECT_EQ(records.texts[1], "another record");
  EXPECT_EQ(records.ttl, 60s);
}

TEST(ReadRecordsTest, MxAndPtrGiveTheirNamesInOrder) {
  Response mx("example.com", DnsType::kMx);
  std::vector<uint8_t> first{0, 10};
  std::vector<uint8_t> name = Response::EncodedName("mx1.example.com");
  first.insert(first.end(), name.begin(), name.end());
  std::vector<uint8_t> null_mx{0, 0, 0};  // RFC 7505: "."
  mx.Record("example.com", 15, 120, first).Record("example.com", 15, 90, null_mx);
  DnsRecords records = ReadRecords(DnsType::kMx, mx.bytes(), 77s);
  ASSERT_EQ(records.kind, DnsRecords::Kind::kFound) << records.error;
  EXPECT_EQ(records.texts, (std::vector<std::string>{"mx1.example.com", ""}));
  EXPECT_EQ(records.ttl, 90s);

  Response ptr("4.3.2.1.in-addr.arpa", DnsType::kPtr);
  ptr.Record("4.3.2.1.in-addr.arpa", 12, 600, Response::EncodedName("a.example.com"));
  ptr.Record("4.3.2.1.IN-ADDR.arpa", 12, 600, Response::EncodedName("b.example.com"));
  records = ReadRecords(DnsType::kPtr, ptr.bytes(), 77s);
  ASSERT_EQ(records.kind, DnsRecords::Kind::kFound) << records.error;
  EXPECT_EQ(records.texts, (std::vector<std::string>{"a.example.com", "b.example.com"}));
  EXPECT_EQ(records.ttl, 600s);
}

TEST(ReadRecordsTest, AddressesFollowCnamesAndTakeTheSmallerTtl) {
  Response r("www.example.com", DnsType::kAaaa);
  r.Record("www.example.com", 5, 30, Response::EncodedName("host.example.com"));
  std::vector<uint8_t> v6(16, 0);
  v6[0] = 0x20;
  v6[1] = 0x01;
  v6[15] = 1;
  r.Record("host.example.com", 28, 300, v6);
  DnsRecords records = ReadRecords(DnsType::kAaaa, r.bytes(), 77s);
  ASSERT_EQ(records.kind, DnsRecords::Kind::kFound) << records.error;
  ASSERT_EQ(records.addresses.size(), 1u);
  EXPECT_EQ(records.addresses[0], *policy::IpAddress::Parse("2001::1"));
  EXPECT_EQ(records.ttl, 30s);
}

TEST(ReadRecordsTest, NegativeAnswersCarryTheSoaTtl) {
  Response nx("none.example.com", DnsType::kTxt, 3);
  nx.Record("example.com", 6, 900, Soa(45), true);
  DnsRecords records = ReadRecords(DnsType::kTxt, nx.bytes(), 77s);
  EXPECT_EQ(records.kind, DnsRecords::Kind::kNxDomain);
  EXPECT_EQ(records.ttl, 45s);

  Response nodata("example.com", DnsType::kMx);
  nodata.Record("example.com", 6, 20, Soa(45), true);  // a decremented SOA TTL wins
  records = ReadRecords(DnsType::kMx, nodata.bytes(), 77s);
  EXPECT_EQ(records.kind, DnsRecords::Kind::kEmpty);
  EXPECT_EQ(records.ttl, 20s);

  Response bare("example.com", DnsType::kA);
  records = ReadRecords(DnsType::kA, bare.bytes(), 77s);
  EXPECT_EQ(records.kind, DnsRecords::Kind::kEmpty);
  EXPECT_EQ(records.ttl, 77s);

  // Records of another type only (a TXT answer to an A query) are no A records.
  Response other("example.com", DnsType::kA);
  other.Record("example.com", 16, 60, Response::Strings({"text"}));
  EXPECT_EQ(ReadRecords(DnsType::kA, other.bytes(), 77s).kind, DnsRecords::Kind::kEmpty);
}

TEST(ReadRecordsTest, WrongSizedAddressesAndBadRcodesFail) {
  Response short_aaaa("example.com", DnsType::kAaaa);
  short_aaaa.Record("example.com", 28, 60, std::vector<uint8_t>(15, 1));
  DnsRecords records = ReadRecords(DnsType::kAaaa, short_aaaa.bytes(), 1s);
  EXPECT_EQ(records.kind, DnsRecords::Kind::kFailed);
  EXPECT_EQ(records.error, "malformed answer");

  EXPECT_EQ(ReadRecords(DnsType::kTxt, Response("example.com", DnsType::kTxt, 5).bytes(), 1s).error,
            "REFUSED");
  EXPECT_EQ(ReadRecords(DnsType::kTxt, Response("example.com", DnsType::kTxt, 9).bytes(), 1s).error,
            "rcode 9");

  Response txt("example.com", DnsType::kTxt);
  txt.Record("example.com", 16, 60, Response::Strings({"v=spf1 -all"}));
  for (size_t cut = 0; cut < txt.bytes().size(); ++cut) {
    std::vector<uint8_t> truncated(txt.bytes().begin(),
                                   txt.bytes().begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_EQ(ReadRecords(DnsType::kTxt, truncated, 1s).kind, DnsRecords::Kind::kFailed) << cut;
  }
}

// Random corruption of valid responses of every type must never read out of bounds, hang
// or yield records from a failed answer. Prints its seed; set GREYLIGHT_TEST_SEED to
// replay one.
TEST(ReadRecordsTest, SurvivesRandomGarbage) {
  unsigned seed = std::random_device{}();
  if (const char* fixed = std::getenv("GREYLIGHT_TEST_SEED")) {
    seed = static_cast<unsigned>(std::strtoul(fixed, nullptr, 10));
  }
  std::cout << "seed " << seed << "\n";
  std::mt19937 random(seed);
  std::vector<std::pair<DnsType, std::vector<uint8_t>>> valid;
  {
    Response r("example.com", DnsType::kTxt);
    r.Record("example.com", 16, 60, Response::Strings({"v=spf1", " -all"}));
    valid.emplace_back(DnsType::kTxt, r.bytes());
  }
  {
    Response r("example.com", DnsType::kMx);
    std::vector<uint8_t> rdata{0, 10};
    std::vector<uint8_t> name = Response::EncodedName("mx.example.com");
    rdata.insert(rdata.end(), name.begin(), name.end());
    r.Record("example.com", 15, 60, rdata);
    valid.emplace_back(DnsType::kMx, r.bytes());
  }
  {
    Response r("1.2.0.192.in-addr.arpa", DnsType::kPtr);
    r.Record("1.2.0.192.in-addr.arpa", 12, 60, Response::EncodedName("host.example.com"));
    valid.emplace_back(DnsType::kPtr, r.bytes());
  }
  {
    Response r("example.com", DnsType::kAaaa, 3);
    r.Record("example.com", 6, 60, Soa(30), true);
    valid.emplace_back(DnsType::kAaaa, r.bytes());
  }
  for (int round = 0; round < 20000; ++round) {
    const auto& [type, original] = valid[static_cast<size_t>(round) % valid.size()];
    std::vector<uint8_t> bytes = original;
    const int flips = 1 + static_cast<int>(random() % 8);
    for (int i = 0; i < flips; ++i) bytes[random() % bytes.size()] = static_cast<uint8_t>(random());
    if (random() % 4 == 0) bytes.resize(random() % (bytes.size() + 1));
    DnsRecords records = ReadRecords(type, bytes, 5s);
    if (records.kind == DnsRecords::Kind::kFailed) {
      EXPECT_TRUE(records.texts.empty() && records.addresses.empty());
      EXPECT_FALSE(records.error.empty());
    }
  }
}

}  // namespace
}  // namespace greylight::reputation
