#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

#include "bench/latency_histogram.h"
#include "bench/process_cpu.h"
#include "bench/traffic_model.h"
#include "bench/wire.h"

namespace greylight::bench {
namespace {

using Attributes = std::vector<std::pair<std::string, std::string>>;

// Splits a request into its attributes; fails the test on anything Postfix would not send.
Attributes ParseRequest(std::string_view request) {
  Attributes attributes;
  EXPECT_TRUE(request.ends_with("\n\n"));
  std::string_view body = request.substr(0, request.size() - 1);
  while (!body.empty()) {
    size_t end = body.find('\n');
    std::string_view line = body.substr(0, end);
    size_t equals = line.find('=');
    EXPECT_NE(equals, std::string_view::npos) << line;
    EXPECT_GT(equals, 0u) << "empty line inside the request";
    attributes.emplace_back(std::string(line.substr(0, equals)),
                            std::string(line.substr(equals + 1)));
    body.remove_prefix(end + 1);
  }
  return attributes;
}

std::string Get(const Attributes& attributes, std::string_view name) {
  for (const auto& [key, value] : attributes) {
    if (key == name) return value;
  }
  ADD_FAILURE() << "missing " << name;
  return "";
}

std::string Triplet(const Attributes& a) {
  return Get(a, "client_address") + "/" + Get(a, "sender") + "/" + Get(a, "recipient");
}

std::string Request(const TrafficModel& model, uint64_t index) {
  std::string out;
  model.AppendRequest(index, out);
  return out;
}

TEST(RequestEndCounterTest, CountsOneRequestWhateverTheSplit) {
  const std::string request = "request=smtpd_access_policy\nsender=a@b\n\n";
  for (size_t split = 0; split <= request.size(); ++split) {
    RequestEndCounter counter;
    size_t ended = counter.Feed(std::string_view(request).substr(0, split));
    ended += counter.Feed(std::string_view(request).substr(split));
    EXPECT_EQ(ended, 1u) << "split at " << split;
  }
}

TEST(RequestEndCounterTest, CountsPipelinedRequestsByteByByte) {
  const std::string stream = "a=1\nb=2\n\nc=3\n\nd=4\n";
  RequestEndCounter whole;
  EXPECT_EQ(whole.Feed(stream), 2u);
  RequestEndCounter bytewise;
  size_t ended = 0;
  for (char c : stream) ended += bytewise.Feed(std::string_view(&c, 1));
  EXPECT_EQ(ended, 2u);
  EXPECT_EQ(bytewise.Feed("\n"), 1u);
}

TEST(ScanReplyTest, FindsTheActionWord) {
  ReplyScan scan = ScanReply("action=DEFER_IF_PERMIT 4.2.0 Greylisted\n\n");
  EXPECT_EQ(scan.status, ReplyStatus::kComplete);
  EXPECT_EQ(scan.action, "DEFER_IF_PERMIT");
  scan = ScanReply("x=1\naction=dunno\nother=2\n\n");
  EXPECT_EQ(scan.status, ReplyStatus::kComplete);
  EXPECT_EQ(scan.action, "dunno");
}

TEST(ScanReplyTest, WaitsForTheEmptyLine) {
  EXPECT_EQ(ScanReply("").status, ReplyStatus::kIncomplete);
  EXPECT_EQ(ScanReply("action=DUNNO").status, ReplyStatus::kIncomplete);
  EXPECT_EQ(ScanReply("action=DUNNO\n").status, ReplyStatus::kIncomplete);
}

TEST(ScanReplyTest, RejectsWhatPostfixWouldNotAccept) {
  EXPECT_EQ(ScanReply("hello\n\n").status, ReplyStatus::kMalformed);
  EXPECT_EQ(ScanReply("action=\n\n").status, ReplyStatus::kMalformed);
  EXPECT_EQ(ScanReply("\n").status, ReplyStatus::kMalformed);
  // One request in flight: a second reply is unsolicited.
  EXPECT_EQ(ScanReply("action=DUNNO\n\naction=DUNNO\n\n").status, ReplyStatus::kMalformed);
}

TEST(TrafficModelTest, RequestsHaveEveryPostfixAttributeInOrder) {
  const std::vector<std::string> expected = {"request",
                                             "protocol_state",
                                             "protocol_name",
                                             "client_address",
                                             "client_name",
                                             "client_port",
                                             "reverse_client_name",
                                             "server_address",
                                             "server_port",
                                             "helo_name",
                                             "sender",
                                             "recipient",
                                             "recipient_count",
                                             "queue_id",
                                             "instance",
                                             "size",
                                             "etrn_domain",
                                             "stress",
                                             "sasl_method",
                                             "sasl_username",
                                             "sasl_sender",
                                             "ccert_subject",
                                             "ccert_issuer",
                                             "ccert_fingerprint",
                                             "ccert_pubkey_fingerprint",
                                             "encryption_protocol",
                                             "encryption_cipher",
                                             "encryption_keysize",
                                             "policy_context"};
  for (TrafficMode mode : {TrafficMode::kNew, TrafficMode::kMixed, TrafficMode::kHot}) {
    TrafficModel model(mode, 7, 100);
    size_t total_bytes = 0;
    size_t v6 = 0;
    constexpr int kRequests = 5000;
    for (int i = 0; i < kRequests; ++i) {
      std::string request = Request(model, i);
      total_bytes += request.size();
      Attributes attributes = ParseRequest(request);
      std::vector<std::string> names;
      for (const auto& attribute : attributes) names.push_back(attribute.first);
      ASSERT_EQ(names, expected) << request;
      EXPECT_EQ(Get(attributes, "request"), "smtpd_access_policy");
      EXPECT_NE(Get(attributes, "recipient").find('@'), std::string::npos);
      if (Get(attributes, "client_address").find(':') != std::string::npos) ++v6;
    }
    double average = static_cast<double>(total_bytes) / kRequests;
    EXPECT_GT(average, 580) << TrafficModeName(mode);
    EXPECT_LT(average, 700) << TrafficModeName(mode);
    if (mode != TrafficMode::kHot) {
      EXPECT_NEAR(static_cast<double>(v6) / kRequests, 0.2, 0.03);
    }
  }
}

TEST(TrafficModelTest, SameSeedSameRequestsOtherSeedOtherRequests) {
  TrafficModel a(TrafficMode::kMixed, 42, 1000);
  TrafficModel b(TrafficMode::kMixed, 42, 1000);
  TrafficModel c(TrafficMode::kMixed, 43, 1000);
  int differing = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(Request(a, i), Request(b, i));
    if (Request(a, i) != Request(c, i)) ++differing;
  }
  EXPECT_EQ(differing, 1000);
}

TEST(TrafficModelTest, NewModeNeverRepeatsATriplet) {
  TrafficModel model(TrafficMode::kNew, 3, 1000);
  std::set<std::string> recipients;
  constexpr int kRequests = 100'000;
  for (int i = 0; i < kRequests; ++i) {
    recipients.insert(Get(ParseRequest(Request(model, i)), "recipient"));
  }
  EXPECT_EQ(recipients.size(), static_cast<size_t>(kRequests));
}

TEST(TrafficModelTest, MixedModeRetriesTripletsAndSendersSentBefore) {
  TrafficModel model(TrafficMode::kMixed, 5, 1000);
  std::set<std::string> triplets;
  std::set<std::string> origins;
  int retries = 0;
  int repeat_senders = 0;
  constexpr int kRequests = 50'000;
  for (int i = 0; i < kRequests; ++i) {
    Attributes a = ParseRequest(Request(model, i));
    std::string origin = Get(a, "client_address") + "/" + Get(a, "sender");
    if (!triplets.insert(Triplet(a)).second) {
      ++retries;
    } else if (!origins.insert(origin).second) {
      ++repeat_senders;
    }
  }
  EXPECT_NEAR(static_cast<double>(retries) / kRequests, 0.30, 0.03);
  EXPECT_NEAR(static_cast<double>(repeat_senders) / kRequests, 0.20, 0.03);
}

TEST(TrafficModelTest, HotModeDrawsFromTheSetThatPrimingSends) {
  constexpr uint32_t kHotSet = 50;
  TrafficModel model(TrafficMode::kHot, 9, kHotSet);
  std::set<std::string> primed;
  for (uint32_t i = 0; i < kHotSet; ++i) {
    std::string out;
    model.AppendHotSetRequest(i, out);
    primed.insert(Triplet(ParseRequest(out)));
  }
  EXPECT_EQ(primed.size(), kHotSet);
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) {
    std::string triplet = Triplet(ParseRequest(Request(model, i)));
    EXPECT_TRUE(primed.contains(triplet)) << triplet;
    seen.insert(triplet);
  }
  EXPECT_EQ(seen.size(), kHotSet);
}

TEST(LatencyHistogramTest, PercentilesWithinOnePercent) {
  LatencyHistogram histogram;
  for (int64_t micros = 1; micros <= 10'000; ++micros) {
    histogram.Record(std::chrono::microseconds(micros));
  }
  EXPECT_EQ(histogram.count(), 10'000u);
  EXPECT_EQ(histogram.max(), std::chrono::milliseconds(10));
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    double expected = p / 100.0 * 10'000'000;  // ns
    double got = static_cast<double>(histogram.Percentile(p).count());
    EXPECT_NEAR(got, expected, expected * 0.01) << p;
  }
  EXPECT_EQ(histogram.Percentile(100), histogram.max());
  EXPECT_EQ(LatencyHistogram().Percentile(50).count(), 0);
}

// utime and stime are fields 14 and 15; a command name with spaces and ')' does not shift them.
TEST(ProcessCpuTest, ParsesUtimeAndStimeAfterTheLastParenthesis) {
  const std::string line =
      "4242 (grey light) (x)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 "
      "100 123456 789 18446744073709551615\n";
  auto cpu = ParseProcStat(line, 100);
  ASSERT_TRUE(cpu.has_value());
  EXPECT_DOUBLE_EQ(cpu->user_seconds, 2.5);
  EXPECT_DOUBLE_EQ(cpu->system_seconds, 0.75);
  EXPECT_FALSE(ParseProcStat("4242 (truncated) S 1 2 3", 100).has_value());
  EXPECT_FALSE(
      ParseProcStat("no parenthesis 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15", 100).has_value());
  EXPECT_FALSE(ParseProcStat(line, 0).has_value());
}

TEST(ProcessCpuTest, ReadsThisProcessAndNotAnAbsentOne) {
  volatile double sink = 0;
  for (int i = 0; i < 20'000'000; ++i) sink = sink + i * 0.5;
  auto self = ReadProcessCpu(getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_GT(self->user_seconds + self->system_seconds, 0.0);
  auto samples = SampleProcesses({getpid(), 0x7ffffffe});
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_TRUE(samples[0].has_value());
  EXPECT_FALSE(samples[1].has_value());
}

}  // namespace
}  // namespace greylight::bench
