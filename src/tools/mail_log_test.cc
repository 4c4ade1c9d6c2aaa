#include "tools/mail_log.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>

#include "policy/reply_text.h"
#include "reputation/client_group.h"

namespace greylight::tools {
namespace {

const std::string kPrefix = GreylistTextPrefix(policy::kDefaultGreylistText);

std::string RejectLine(std::string_view client, std::string_view sender, std::string_view recipient,
                       std::string_view queue = "NOQUEUE") {
  return fmt::format(
      "Nov 29 09:21:33 mx postfix/smtpd[4711]: {}: reject: RCPT from {}: 450 4.2.0 <{}>: "
      "Recipient address rejected: Greylisted, see "
      "http://postgrey.schweikert.ch/help/example.org.html; from=<{}> to=<{}> proto=ESMTP "
      "helo=<mail.example.net>",
      queue, client, recipient, sender, recipient);
}

TEST(GreylistTextPrefixTest, LiteralTextBeforeTheFirstPlaceholder) {
  EXPECT_EQ(kPrefix, "Greylisted, see http://postgrey.schweikert.ch/help/");
  EXPECT_EQ(GreylistTextPrefix("Try again in %s seconds"), "Try again in");
  EXPECT_EQ(GreylistTextPrefix("no placeholder"), "no placeholder");
  EXPECT_EQ(GreylistTextPrefix("%s seconds left"), "Greylisted");
}

TEST(ParseGreylistRejectTest, Ipv4NoQueue) {
  auto reject = ParseGreylistReject(
      RejectLine("mail.example.net[192.0.2.10]", "alice@example.net", "bob@example.org"), kPrefix);
  ASSERT_TRUE(reject);
  EXPECT_EQ(reject->client_name, "mail.example.net");
  EXPECT_EQ(reject->client_address, "192.0.2.10");
  EXPECT_EQ(reject->address, *policy::IpAddress::Parse("192.0.2.10"));
  EXPECT_EQ(reject->sender, "alice@example.net");
  EXPECT_EQ(reject->recipient, "bob@example.org");
  EXPECT_EQ(reject->helo, "mail.example.net");
}

TEST(ParseGreylistRejectTest, Ipv6QueueIdNullSenderAndUnknownName) {
  auto reject = ParseGreylistReject(
      RejectLine("unknown[2001:db8::5]", "", "Carol@Example.org", "4F1A2B3C4D"), kPrefix);
  ASSERT_TRUE(reject);
  EXPECT_EQ(reject->client_name, "unknown");
  EXPECT_EQ(reject->client_address, "2001:db8::5");
  EXPECT_TRUE(reject->address.is_v6);
  EXPECT_EQ(reject->sender, "");
  EXPECT_EQ(reject->recipient, "Carol@Example.org");
  auto tagged = ParseGreylistReject(RejectLine("unknown[IPv6:2001:db8::6]", "a@b", "c@d"), kPrefix);
  ASSERT_TRUE(tagged);
  EXPECT_EQ(tagged->client_address, "2001:db8::6");
}

TEST(ParseGreylistRejectTest, Rfc5424TimestampAndNoHelo) {
  auto reject = ParseGreylistReject(
      "2026-11-29T09:21:33.123456+00:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from "
      "x.example[198.51.100.7]: 450 4.2.0 <r@example.org>: Recipient address rejected: "
      "Greylisted, see http://postgrey.schweikert.ch/help/example.org.html; from=<s@example.net> "
      "to=<r@example.org> proto=SMTP",
      kPrefix);
  ASSERT_TRUE(reject);
  EXPECT_EQ(reject->recipient, "r@example.org");
  EXPECT_EQ(reject->sender, "s@example.net");
}

TEST(ParseGreylistRejectTest, IgnoresOtherLines) {
  const std::string good =
      RejectLine("mail.example.net[192.0.2.10]", "alice@example.net", "bob@example.org");
  std::vector<std::string> lines = {
      "",
      "Nov 29 09:21:33 mx postfix/smtpd[1]: connect from mail.example.net[192.0.2.10]",
      // Permanent rejection.
      "mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: 554 5.7.1 <r@x>: Relay "
      "access denied; from=<s@y> to=<r@x> proto=ESMTP helo=<a>",
      // A 450 for another reason.
      "mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: 450 4.1.2 <r@x>: Recipient "
      "address rejected: Domain not found; from=<s@y> to=<r@x> proto=ESMTP helo=<a>",
      // Unparsable address.
      "mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[not-an-ip]: 450 4.2.0 <r@x>: Recipient "
      "address rejected: Greylisted, see http://postgrey.schweikert.ch/help/x.html; from=<s@y> "
      "to=<r@x> proto=ESMTP helo=<a>",
      good.substr(0, good.find("; from=")),
  };
  for (const std::string& line : lines) EXPECT_FALSE(ParseGreylistReject(line, kPrefix)) << line;
  EXPECT_FALSE(ParseGreylistReject(good, "Other text"));
  EXPECT_TRUE(ParseGreylistReject(good, "Greylisted"));
}

TEST(ParsePassDelayTest, PostgreyAndGreylightdLines) {
  EXPECT_EQ(ParsePassDelay("Nov 29 09:26:33 mx postgrey[77]: action=pass, reason=triplet found, "
                           "delay=300, client_name=a, client_address=192.0.2.10"),
            300);
  EXPECT_EQ(ParsePassDelay("greylightd[5]: ABC123: action=pass, reason=triplet found, delay=42, "
                           "client_name=a"),
            42);
  EXPECT_EQ(ParsePassDelay("{\"action\":\"pass\",\"reason\":\"triplet found\",\"client_name\":"
                           "\"a\",\"delay\":777,\"key\":\"k\"}"),
            777);
  EXPECT_FALSE(ParsePassDelay("action=pass, reason=triplet found, client_name=a"));
  EXPECT_FALSE(ParsePassDelay("action=greylist, reason=new, client_name=a"));
  EXPECT_FALSE(ParsePassDelay("{\"action\":\"greylist\",\"reason\":\"new\",\"missing\":300}"));
}

TEST(NearestRankPercentileTest, Values) {
  std::vector<long long> one = {7};
  EXPECT_EQ(NearestRankPercentile(one, 50), 7);
  EXPECT_EQ(NearestRankPercentile(one, 90), 7);
  std::vector<long long> four = {1, 2, 3, 4};
  EXPECT_EQ(NearestRankPercentile(four, 50), 2);
  EXPECT_EQ(NearestRankPercentile(four, 90), 4);
  std::vector<long long> ten = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(NearestRankPercentile(ten, 50), 5);
  EXPECT_EQ(NearestRankPercentile(ten, 90), 9);
  EXPECT_EQ(NearestRankPercentile(ten, 100), 10);
}

// A lookup in `store`, a map from key to value.
TripletLookup LookupIn(const std::map<std::string, std::string, std::less<>>& store) {
  return [&store](std::string_view key) -> Result<std::optional<std::string>> {
    auto it = store.find(key);
    if (it == store.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  };
}

TEST(MailLogScannerTest, ReportsTripletsThatNeverCameBack) {
  MailLogScanner scanner(policy::kDefaultGreylistText, engine::KeyScheme{});
  // Passed: came back. Pending: never. Absent: never. A second rejection of one triplet
  // (an early retry) and one from another address in the same /24 for another triplet.
  scanner.AddLine(RejectLine("a.example[192.0.2.10]", "alice@example.net", "bob@example.org"));
  scanner.AddLine(RejectLine("a.example[192.0.2.10]", "alice@example.net", "bob@example.org"));
  scanner.AddLine(RejectLine("a.example[192.0.2.10]", "alice@example.net", "carol@example.org"));
  scanner.AddLine(RejectLine("unknown[198.51.100.7]", "", "bob@example.org"));
  scanner.AddLine(RejectLine("v6.example[2001:db8::5]", "spam@example.com", "bob@example.org"));
  scanner.AddLine("mx greylightd[9]: action=pass, reason=triplet found, delay=300, client_name=x");
  scanner.AddLine("mx greylightd[9]: action=pass, reason=triplet found, delay=900, client_name=x");
  scanner.AddLine("mx greylightd[9]: action=pass, reason=triplet found, delay=360, client_name=x");
  std::map<std::string, std::string, std::less<>> store = {
      {"192.0.2.0/alice@example.net/bob@example.org", "1800000000,1800000300"},
      {"192.0.2.0/alice@example.net/carol@example.org", "1800000000,1800000100"},
  };
  auto report = scanner.Finish(LookupIn(store), policy::GreylistTiming{});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->greylisted_triplets, 4u);
  EXPECT_EQ(report->greylisted_clients, 3u);
  EXPECT_EQ(report->clients_never_retried, 2u);
  ASSERT_EQ(report->never_came_back.size(), 3u);
  EXPECT_EQ(report->never_came_back[0].key, "192.0.2.0/alice@example.net/carol@example.org");
  EXPECT_TRUE(report->never_came_back[0].stored);
  EXPECT_EQ(report->never_came_back[1].reject.client_address, "198.51.100.7");
  EXPECT_FALSE(report->never_came_back[1].stored);
  EXPECT_EQ(report->never_came_back[2].reject.client_address, "2001:db8::5");
  EXPECT_EQ(report->delays, (std::vector<long long>{300, 360, 900}));

  EXPECT_EQ(FormatReportText(*report),
            "192.0.2.10 a.example alice@example.net carol@example.org\n"
            "198.51.100.7 unknown <> bob@example.org\n"
            "2001:db8::5 v6.example spam@example.com bob@example.org\n"
            "\n"
            "summary:\n"
            "  messages delayed: 3 (median 360 s, p90 900 s)\n"
            "  greylisted triplets: 4, never came back: 3\n"
            "  greylisted clients: 3, never retried: 2 (66.7%)\n");
  std::string json = FormatReportJson(*report);
  EXPECT_NE(json.find("{\"client_address\":\"198.51.100.7\",\"client_name\":\"unknown\","
                      "\"sender\":\"\",\"recipient\":\"bob@example.org\",\"key\":"
                      "\"198.51.100.0//bob@example.org\",\"stored\":\"absent\"}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"summary\":{\"messages_delayed\":3,\"delay_median\":360,\"delay_p90\":900,"
                      "\"greylisted_triplets\":4,\"never_came_back\":3,\"greylisted_clients\":3,"
                      "\"clients_never_retried\":2,\"clients_never_retried_share\":0.6667}}"),
            std::string::npos)
      << json;
}

// With --lookup-by=domain greylightd keys a verified client by its domain, so the report
// must too: the retry from another network of the same provider came back.
TEST(MailLogScannerTest, DomainModeKeysTripletsByTheLoggedClientName) {
  auto psl = reputation::Psl::LoadSystem();
  ASSERT_TRUE(psl.ok()) << psl.status().message();
  engine::KeyScheme scheme;
  scheme.lookup_by = reputation::LookupBy::kDomain;
  scheme.psl = psl->get();
  MailLogScanner scanner(policy::kDefaultGreylistText, scheme);
  scanner.AddLine(
      RejectLine("mail.example.net[192.0.2.10]", "alice@example.net", "bob@example.org"));
  scanner.AddLine(RejectLine("unknown[198.51.100.7]", "spam@example.com", "bob@example.org"));
  std::map<std::string, std::string, std::less<>> store = {
      {"domain:example.net/alice@example.net/bob@example.org", "1800000000,1800000300"},
      // The subnet key of the unverified client: it did not come back either.
      {"198.51.100.0/spam@example.com/bob@example.org", "1800000000,1800000000"},
  };
  auto report = scanner.Finish(LookupIn(store), policy::GreylistTiming{});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->greylisted_triplets, 2u);
  ASSERT_EQ(report->never_came_back.size(), 1u);
  EXPECT_EQ(report->never_came_back[0].key, "198.51.100.0/spam@example.com/bob@example.org");
  EXPECT_TRUE(report->never_came_back[0].stored);
  EXPECT_EQ(report->clients_never_retried, 1u);
}

// With --spf-keys the log does not say whether SPF passed: a triplet also came back when
// its SPF-keyed twin (the sender's domain; the HELO name for <>) passed.
TEST(MailLogScannerTest, SpfKeysCountTheSpfKeyedTwin) {
  MailLogScanner scanner(policy::kDefaultGreylistText, engine::KeyScheme{}, /*spf_keys=*/true);
  scanner.AddLine(RejectLine("a.example[192.0.2.10]", "alice@Example.NET", "bob@example.org"));
  scanner.AddLine(RejectLine("unknown[198.51.100.7]", "", "bob@example.org"));
  scanner.AddLine(RejectLine("unknown[203.0.113.9]", "spam@example.com", "bob@example.org"));
  std::map<std::string, std::string, std::less<>> store = {
      {"spf:example.net/alice@example.net/bob@example.org", "1800000000,1800000300"},
      {"spf:mail.example.net//bob@example.org", "1800000000,1800000400"},
      // Pending under its SPF key: reported under that key.
      {"spf:example.com/spam@example.com/bob@example.org", "1800000000,1800000000"},
  };
  auto report = scanner.Finish(LookupIn(store), policy::GreylistTiming{});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->greylisted_triplets, 3u);
  ASSERT_EQ(report->never_came_back.size(), 1u);
  EXPECT_EQ(report->never_came_back[0].key, "spf:example.com/spam@example.com/bob@example.org");
  EXPECT_TRUE(report->never_came_back[0].stored);

  // Without --spf-keys the twins are not looked at.
  MailLogScanner plain(policy::kDefaultGreylistText, engine::KeyScheme{});
  plain.AddLine(RejectLine("a.example[192.0.2.10]", "alice@example.net", "bob@example.org"));
  auto without = plain.Finish(LookupIn(store), policy::GreylistTiming{});
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(without->never_came_back.size(), 1u);
}

TEST(MailLogScannerTest, LookupErrorsAreReturned) {
  MailLogScanner scanner(policy::kDefaultGreylistText, {});
  scanner.AddLine(RejectLine("a[192.0.2.10]", "a@b", "c@d"));
  auto report = scanner.Finish(
      [](std::string_view) -> Result<std::optional<std::string>> {
        return Status::Unavailable("store down");
      },
      {});
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().message(), "store down");
}

TEST(MailLogScannerTest, EmptyLogGivesAnEmptySummary) {
  MailLogScanner scanner(policy::kDefaultGreylistText, {});
  auto report = scanner.Finish(
      [](std::string_view) -> Result<std::optional<std::string>> {
        return std::optional<std::string>();
      },
      {});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(FormatReportText(*report),
            "summary:\n"
            "  messages delayed: 0\n"
            "  greylisted triplets: 0, never came back: 0\n"
            "  greylisted clients: 0, never retried: 0 (0.0%)\n");
}

}  // namespace
}  // namespace greylight::tools
