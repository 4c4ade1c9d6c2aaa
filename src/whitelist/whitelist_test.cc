#include "whitelist/whitelist.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace greylight::whitelist {
namespace {

using policy::IpAddress;
using policy::WhitelistHit;

IpAddress Ip(std::string_view text) {
  std::optional<IpAddress> address = IpAddress::Parse(text);
  EXPECT_TRUE(address.has_value()) << text;
  return address.value_or(IpAddress{});
}

std::shared_ptr<const Whitelists> BuildClients(std::string_view text) {
  WhitelistBuilder builder;
  builder.AddClientText("clients", text);
  auto lists = builder.Build();
  EXPECT_TRUE(lists.ok()) << lists.status().message();
  return lists.ok() ? lists.value() : Whitelists::Empty();
}

std::shared_ptr<const Whitelists> BuildRecipients(std::string_view text) {
  WhitelistBuilder builder;
  builder.AddRecipientText("recipients", text);
  auto lists = builder.Build();
  EXPECT_TRUE(lists.ok()) << lists.status().message();
  return lists.ok() ? lists.value() : Whitelists::Empty();
}

// The matched entry's text, or "" for no match.
std::string ClientMatch(const Whitelists& lists, std::string_view name, std::string_view address) {
  std::optional<WhitelistHit> hit = lists.MatchClient(name, Ip(address));
  return hit ? hit->entry : "";
}

std::string RecipientMatch(const Whitelists& lists, std::string_view recipient) {
  std::optional<WhitelistHit> hit = lists.MatchRecipient(recipient);
  return hit ? hit->entry : "";
}

struct ClientCase {
  const char* list;
  const char* client_name;
  const char* client_address;
  const char* expected_entry;  // "" = not whitelisted
};

void PrintTo(const ClientCase& c, std::ostream* os) {
  *os << "{list \"" << c.list << "\", client " << c.client_name << "[" << c.client_address << "]}";
}

class WhitelistClientFormTest : public testing::TestWithParam<ClientCase> {};

TEST_P(WhitelistClientFormTest, MatchesLikePostgrey) {
  const ClientCase& c = GetParam();
  auto lists = BuildClients(c.list);
  EXPECT_EQ(ClientMatch(*lists, c.client_name, c.client_address), c.expected_entry)
      << "list: " << c.list << "\nclient: " << c.client_name << "[" << c.client_address << "]";
}

// Every client entry form of compat spec 6.2, and the quirks kept.
INSTANTIATE_TEST_SUITE_P(
    Forms, WhitelistClientFormTest,
    testing::Values(
        // Host-name suffix: the name itself or anything ending in "." + entry, any case.
        ClientCase{"example.com", "example.com", "192.0.2.1", "example.com"},
        ClientCase{"example.com", "mail.example.com", "192.0.2.1", "example.com"},
        ClientCase{"example.com", "A.B.MAIL.Example.COM", "192.0.2.1", "example.com"},
        ClientCase{"Example.COM", "mx.example.com", "192.0.2.1", "Example.COM"},
        ClientCase{"example.com", "badexample.com", "192.0.2.1", ""},
        ClientCase{"example.com", "example.com.evil.test", "192.0.2.1", ""},
        ClientCase{"example.com", "example.co", "192.0.2.1", ""},
        ClientCase{"example.com", "unknown", "192.0.2.1", ""},
        ClientCase{"mail.example.com", "example.com", "192.0.2.1", ""},
        // Regex metacharacters in a suffix are literal (postgrey's \Q...\E).
        ClientCase{"ex-ample.com", "mx.ex-ample.com", "192.0.2.1", "ex-ample.com"},
        ClientCase{"a.b", "mx.axb", "192.0.2.1", ""},
        // /regex/: Perl syntax, case-insensitive, unanchored, against the raw name.
        ClientCase{"/^mail\\d+\\.example\\.net$/", "mail12.example.net", "192.0.2.1",
                   "/^mail\\d+\\.example\\.net$/"},
        ClientCase{"/^mail\\d+\\.example\\.net$/", "MAIL7.EXAMPLE.NET", "192.0.2.1",
                   "/^mail\\d+\\.example\\.net$/"},
        ClientCase{"/^mail\\d+\\.example\\.net$/", "xmail1.example.net", "192.0.2.1", ""},
        ClientCase{"/smtp/", "out.smtp.example.org", "192.0.2.1", "/smtp/"},
        ClientCase{"/^(?!bad)\\w+\\.example\\.org$/", "good.example.org", "192.0.2.1",
                   "/^(?!bad)\\w+\\.example\\.org$/"},
        ClientCase{"/^(?!bad)\\w+\\.example\\.org$/", "bad1.example.org", "192.0.2.1", ""},
        ClientCase{"/^(?:smtp\\w*|postfix)[0-9]+-g[0-9]+\\.free\\.fr$/", "smtp3-g21.free.fr",
                   "192.0.2.1", "/^(?:smtp\\w*|postfix)[0-9]+-g[0-9]+\\.free\\.fr$/"},
        // A regex body may contain '/': postgrey's /^\/(\S+)\/$/ is greedy.
        ClientCase{"/a/b/", "xa/bx", "192.0.2.1", "/a/b/"},
        // IPv4 address and CIDR network.
        ClientCase{"192.0.2.1", "unknown", "192.0.2.1", "192.0.2.1"},
        ClientCase{"192.0.2.1", "unknown", "192.0.2.2", ""},
        ClientCase{"198.51.100.0/24", "unknown", "198.51.100.77", "198.51.100.0/24"},
        ClientCase{"198.51.100.0/24", "unknown", "198.51.101.1", ""},
        ClientCase{"198.51.100.77/24", "unknown", "198.51.100.1", "198.51.100.77/24"},
        ClientCase{"198.51.100.0/31", "unknown", "198.51.100.1", "198.51.100.0/31"},
        ClientCase{"198.51.100.0/31", "unknown", "198.51.100.2", ""},
        ClientCase{"0.0.0.0/0", "unknown", "203.0.113.9", "0.0.0.0/0"},
        ClientCase{"255.255.255.255", "unknown", "255.255.255.255", "255.255.255.255"},
        // a.b.c is a /24.
        ClientCase{"203.0.113", "unknown", "203.0.113.200", "203.0.113"},
        ClientCase{"203.0.113", "unknown", "203.0.114.1", ""},
        // a.b is a /16 (FIX: postgrey builds a.b.0.0/24).
        ClientCase{"10.20", "unknown", "10.20.0.1", "10.20"},
        ClientCase{"10.20", "unknown", "10.20.200.1", "10.20"},
        ClientCase{"10.20", "unknown", "10.21.0.1", ""},
        // IPv6 addresses and networks.
        ClientCase{"2001:db8::/32", "unknown", "2001:db8:ffff::1", "2001:db8::/32"},
        ClientCase{"2001:db8::/32", "unknown", "2001:db9::1", ""},
        ClientCase{"2001:db8::25", "unknown", "2001:db8::25", "2001:db8::25"},
        ClientCase{"2001:db8::25", "unknown", "2001:db8::26", ""},
        ClientCase{"2a01:4180:4051:0800::/64", "unknown", "2a01:4180:4051:800::1",
                   "2a01:4180:4051:0800::/64"},
        ClientCase{"2A01:4180:4051:0800::/64", "unknown", "2a01:4180:4051:801::1", ""},
        ClientCase{"::ffff:192.0.2.0/120", "unknown", "::ffff:192.0.2.5", "::ffff:192.0.2.0/120"},
        ClientCase{"2001:db8::/32", "unknown", "192.0.2.1", ""},
        ClientCase{"192.0.2.0/24", "unknown", "2001:db8::1", ""},
        ClientCase{"0.0.0.0/0", "unknown", "2001:db8::1", ""},
        // Quirk kept: NetAddr::IP compares IPv4 a.b.c.d as ::a.b.c.d, so an IPv4 client is
        // inside ::/0 and ::/96 (but not inside the v4-mapped ::ffff:0:0/96) ...
        ClientCase{"::/0", "unknown", "192.0.2.1", "::/0"},
        ClientCase{"::/96", "unknown", "192.0.2.1", "::/96"},
        ClientCase{"::192.0.2.0/120", "unknown", "192.0.2.1", "::192.0.2.0/120"},
        ClientCase{"::ffff:0:0/96", "unknown", "192.0.2.1", ""},
        // ... and the deprecated IPv4-compatible IPv6 ::a.b.c.d is inside IPv4 entries.
        ClientCase{"192.0.2.0/24", "unknown", "::192.0.2.1", "192.0.2.0/24"},
        // Comments, blank lines, surrounding whitespace.
        ClientCase{"example.com   # sends from a pool\n", "mx.example.com", "192.0.2.1",
                   "example.com"},
        ClientCase{"\n   \n# example.com\n\t \t", "example.com", "192.0.2.1", ""},
        ClientCase{"  \texample.com \r\n", "mx.example.com", "192.0.2.1", "example.com"},
        ClientCase{"192.0.2.0/24#no space before the comment", "unknown", "192.0.2.1",
                   "192.0.2.0/24"}));

TEST(WhitelistClientOrderTest, NamesAreTriedBeforeNetworks) {
  auto lists = BuildClients("192.0.2.0/24\nexample.com\n");
  std::optional<WhitelistHit> hit = lists->MatchClient("mx.example.com", Ip("192.0.2.1"));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->entry, "example.com");
  EXPECT_EQ(hit->source, "clients:2");
}

TEST(WhitelistClientOrderTest, EarliestMatchingEntryIsReported) {
  EXPECT_EQ(
      ClientMatch(*BuildClients("example.com\nmail.example.com"), "mail.example.com", "192.0.2.1"),
      "example.com");
  EXPECT_EQ(
      ClientMatch(*BuildClients("mail.example.com\nexample.com"), "mail.example.com", "192.0.2.1"),
      "mail.example.com");
  EXPECT_EQ(ClientMatch(*BuildClients("/^mail/\nexample.com"), "mail.example.com", "192.0.2.1"),
            "/^mail/");
  EXPECT_EQ(ClientMatch(*BuildClients("example.com\n/^mail/"), "mail.example.com", "192.0.2.1"),
            "example.com");
  auto nested = BuildClients("10.0.0.0/8\n10.1.0.0/16\n10.1.2.0/24\n");
  EXPECT_EQ(ClientMatch(*nested, "unknown", "10.1.2.3"), "10.0.0.0/8");
  auto inner_first = BuildClients("10.1.2.0/24\n10.1.0.0/16\n10.0.0.0/8\n");
  EXPECT_EQ(ClientMatch(*inner_first, "unknown", "10.1.2.3"), "10.1.2.0/24");
  EXPECT_EQ(ClientMatch(*inner_first, "unknown", "10.1.3.3"), "10.1.0.0/16");
  EXPECT_EQ(ClientMatch(*inner_first, "unknown", "10.2.3.3"), "10.0.0.0/8");
  EXPECT_EQ(ClientMatch(*inner_first, "unknown", "11.0.0.0"), "");
  EXPECT_EQ(ClientMatch(*inner_first, "unknown", "9.255.255.255"), "");
}

TEST(WhitelistClientOrderTest, HitNamesSourceLineAndEntryAsWritten) {
  auto lists = BuildClients("# header\n\n  Example.COM   # why\n");
  std::optional<WhitelistHit> hit = lists->MatchClient("MX.example.com", Ip("192.0.2.1"));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->source, "clients:3");
  EXPECT_EQ(hit->entry, "Example.COM");
  EXPECT_EQ(lists->client_entry_count(), 1u);
}

struct RecipientCase {
  const char* list;
  const char* recipient;
  const char* expected_entry;
};

void PrintTo(const RecipientCase& c, std::ostream* os) {
  *os << "{list \"" << c.list << "\", recipient " << c.recipient << "}";
}

class WhitelistRecipientFormTest : public testing::TestWithParam<RecipientCase> {};

TEST_P(WhitelistRecipientFormTest, MatchesLikePostgrey) {
  const RecipientCase& c = GetParam();
  auto lists = BuildRecipients(c.list);
  EXPECT_EQ(RecipientMatch(*lists, c.recipient), c.expected_entry)
      << "list: " << c.list << "\nrecipient: " << c.recipient;
}

INSTANTIATE_TEST_SUITE_P(
    Forms, WhitelistRecipientFormTest,
    testing::Values(
        // user@ : that user, with or without +extension, at any domain.
        RecipientCase{"postmaster@", "postmaster@example.org", "postmaster@"},
        RecipientCase{"postmaster@", "PostMaster@Example.ORG", "postmaster@"},
        RecipientCase{"postmaster@", "postmaster+tag@example.org", "postmaster@"},
        RecipientCase{"postmaster@", "postmaster+a+b@example.org", "postmaster@"},
        RecipientCase{"postmaster@", "postmaster+@example.org", ""},
        RecipientCase{"postmaster@", "postmasterx@example.org", ""},
        RecipientCase{"postmaster@", "xpostmaster@example.org", ""},
        RecipientCase{"postmaster@", "postmaster", ""},
        // user@domain : exactly, also user+ext@domain.
        RecipientCase{"abuse@example.org", "abuse@example.org", "abuse@example.org"},
        RecipientCase{"abuse@example.org", "ABUSE+x@EXAMPLE.org", "abuse@example.org"},
        RecipientCase{"abuse@example.org", "abuse@sub.example.org", ""},
        RecipientCase{"abuse@example.org", "abuse@example.org.test", ""},
        RecipientCase{"abuse@example.org", "abuse@other.org", ""},
        RecipientCase{"abuse@example.org", "xabuse@example.org", ""},
        RecipientCase{"a+b@example.org", "a+b@example.org", "a+b@example.org"},
        RecipientCase{"a+b@example.org", "a+b+c@example.org", "a+b@example.org"},
        RecipientCase{"a+b@example.org", "a@example.org", ""},
        // domain : the domain and all its sub-domains.
        RecipientCase{"example.net", "bob@example.net", "example.net"},
        RecipientCase{"example.net", "bob@lists.EXAMPLE.net", "example.net"},
        RecipientCase{"example.net", "bob@badexample.net", ""},
        RecipientCase{"example.net", "bob@example.network", ""},
        RecipientCase{"example.net", "example.net@other.org", ""},
        // /regex/ anywhere in the raw address, case-insensitive.
        RecipientCase{"/^bob\\d+@/", "bob12@example.org", "/^bob\\d+@/"},
        RecipientCase{"/^bob\\d+@/", "BOB3@example.org", "/^bob\\d+@/"},
        RecipientCase{"/^bob\\d+@/", "bob@example.org", ""},
        RecipientCase{"/example/", "x@sub.example.test", "/example/"},
        // Comments and whitespace as for clients.
        RecipientCase{"  abuse@   # RFC 2142\n", "abuse@example.org", "abuse@"},
        // Earliest entry wins.
        RecipientCase{"example.org\nabuse@", "abuse@example.org", "example.org"},
        RecipientCase{"abuse@\nexample.org", "abuse@example.org", "abuse@"},
        RecipientCase{"/^abuse/\nabuse@example.org", "abuse@example.org", "/^abuse/"},
        RecipientCase{"abuse+x@example.org\nabuse@", "abuse+x@example.org",
                      "abuse+x@example.org"}));

struct ErrorCase {
  bool recipients;
  const char* list;
  const char* expected_message;  // a substring of Status::message()
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << "{" << (c.recipients ? "recipients" : "clients") << " \"" << c.list << "\"}";
}

class WhitelistErrorTest : public testing::TestWithParam<ErrorCase> {};

// postgrey silently drops (or turns into dead host names) what these tests refuse.
TEST_P(WhitelistErrorTest, InvalidEntryFailsWithFileAndLine) {
  const ErrorCase& c = GetParam();
  WhitelistBuilder builder;
  if (c.recipients) {
    builder.AddRecipientText("f", c.list);
  } else {
    builder.AddClientText("f", c.list);
  }
  auto lists = builder.Build();
  ASSERT_FALSE(lists.ok()) << c.list;
  EXPECT_EQ(lists.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(lists.status().message().find(c.expected_message), std::string::npos)
      << lists.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Entries, WhitelistErrorTest,
    testing::Values(
        ErrorCase{false, "1.2.3.4/33", "f line 1: invalid IPv4 prefix length /33"},
        ErrorCase{false, "300.1.1.1", "f line 1: invalid IPv4 address '300.1.1.1'"},
        ErrorCase{false, "1.2.3.256/24", "f line 1: invalid IPv4 address '1.2.3.256'"},
        ErrorCase{false, "1.2.999", "f line 1: invalid IPv4 address '1.2.999'"},
        ErrorCase{false, "010.1.2.3", "f line 1: leading zero in IPv4 address '010.1.2.3'"},
        ErrorCase{false, "10.1.2.03/32", "leading zero in IPv4 address '10.1.2.03'"},
        ErrorCase{false, "10.01.2", "leading zero in IPv4 address '10.01.2'"},
        ErrorCase{false, "1.2.3.4.5", "f line 1: '1.2.3.4.5' is not an IPv4 address"},
        ErrorCase{false, "1234", "f line 1: '1234' is not an IPv4 address"},
        ErrorCase{false, "...", "f line 1: '...' is not an IPv4 address"},
        ErrorCase{false, "1.2.3.4/", "f line 1: '1.2.3.4/' is neither a /regex/"},
        ErrorCase{false, "1.2.3.4/123", "'1.2.3.4/123' is neither a /regex/"},
        ErrorCase{false, "1.2.3/24", "'1.2.3/24' is neither"},
        ErrorCase{false, "1.2.3.4/ab", "'1.2.3.4/ab' is neither"},
        ErrorCase{false, "2001:db8::/129", "f line 1: invalid IPv6 prefix length"},
        ErrorCase{false, "2001:zz8::1", "f line 1: invalid IPv6 address or network '2001:zz8::1'"},
        ErrorCase{false, "fe80::1%eth0", "invalid IPv6 address or network"},
        ErrorCase{false, "a: b: c", "invalid IPv6 address or network 'a: b: c'"},
        ErrorCase{false, "/foo(/", "f line 1: invalid regex /foo(/: missing closing parenthesis"},
        ErrorCase{false, "/a#b/", "f line 1: a /regex/ entry must start and end with '/'"},
        ErrorCase{false, "//", "a /regex/ entry must start and end with '/'"},
        ErrorCase{false, "/^mail", "a /regex/ entry must start and end with '/'"},
        ErrorCase{false, "/foo bar/", "f line 1: doesn't look like a hostname"},
        ErrorCase{false, "mail.example.com extra", "f line 1: doesn't look like a hostname"},
        ErrorCase{false, "ok.example\n\n# comment\n300.1.1.1\n", "f line 4: invalid IPv4"},
        ErrorCase{false, "300.1.1.1\n1.2.3.4/40\n/(/\n",
                  "f line 1: invalid IPv4 address '300.1.1.1' (and 2 more errors)"},
        ErrorCase{false, "300.1.1.1\nok.example\n1.2.3.4/40", "'300.1.1.1' (and 1 more error)"},
        ErrorCase{true, "abuse @example.org", "f line 1: doesn't look like an address"},
        ErrorCase{true, "/(/", "f line 1: invalid regex /(/"},
        ErrorCase{true, "//", "f line 1: a /regex/ entry must start and end with '/'"},
        ErrorCase{true, "ok@\n/[a-/\n", "f line 2: invalid regex"}));

TEST(WhitelistErrorTest, AnErrorRejectsTheWholeSet) {
  WhitelistBuilder builder;
  builder.AddClientText("a", "example.com\n");
  builder.AddRecipientText("b", "postmaster@\nbad entry\n");
  auto lists = builder.Build();
  ASSERT_FALSE(lists.ok());
  EXPECT_EQ(lists.status().message(), "b line 2: doesn't look like an address");
}

TEST(WhitelistEmptyTest, MatchesNothing) {
  auto lists = Whitelists::Empty();
  EXPECT_FALSE(lists->MatchClient("mail.example.com", Ip("192.0.2.1")));
  EXPECT_FALSE(lists->MatchClient("", Ip("::")));
  EXPECT_FALSE(lists->MatchRecipient("postmaster@example.org"));
  EXPECT_EQ(lists->client_entry_count(), 0u);
}

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "gl_whitelist_XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, std::string_view contents) const {
    std::string file = path_ + "/" + name;
    std::ofstream(file) << contents;
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(WhitelistLoadTest, ConcatenatesFilesInOrderAndNamesThem) {
  TempDir dir;
  std::string first = dir.Write("clients", "example.com\n10.0.0.0/8\n");
  std::string second = dir.Write("clients.local", "\nexample.org\n10.1.0.0/16\n");
  std::string recipients = dir.Write("recipients", "postmaster@\n");
  auto lists =
      Whitelists::Load({{FileFromPath(first), FileFromPath(second)}, {FileFromPath(recipients)}});
  ASSERT_TRUE(lists.ok()) << lists.status().message();
  EXPECT_TRUE(lists.value()->warnings().empty());
  EXPECT_EQ(lists.value()->client_entry_count(), 4u);
  EXPECT_EQ(lists.value()->recipient_entry_count(), 1u);
  auto hit = lists.value()->MatchClient("mx.example.org", Ip("192.0.2.1"));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->source, second + ":2");
  hit = lists.value()->MatchClient("unknown", Ip("10.1.0.1"));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->source, first + ":2");
  hit = lists.value()->MatchRecipient("postmaster@example.net");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->source, recipients + ":1");
}

TEST(WhitelistLoadTest, MissingFileWarnsUnlessItEndsInDotLocal) {
  TempDir dir;
  std::string present = dir.Write("whitelist_clients", "example.com\n");
  auto lists = Whitelists::Load({{FileFromPath(present), FileFromPath(dir.path() + "/absent"),
                                  FileFromPath(dir.path() + "/absent.local")},
                                 {FileFromPath(dir.path() + "/whitelist_recipients.local")}});
  ASSERT_TRUE(lists.ok()) << lists.status().message();
  EXPECT_EQ(
      lists.value()->warnings(),
      std::vector<std::string>{"can't open " + dir.path() + "/absent: No such file or directory"});
  EXPECT_TRUE(lists.value()->MatchClient("example.com", Ip("192.0.2.1")));
}

TEST(WhitelistLoadTest, MissingOkFlagIsHonoured) {
  TempDir dir;
  auto lists =
      Whitelists::Load({{{dir.path() + "/absent", true}}, {{dir.path() + "/absent.local", false}}});
  ASSERT_TRUE(lists.ok());
  EXPECT_EQ(lists.value()->warnings(),
            std::vector<std::string>{"can't open " + dir.path() +
                                     "/absent.local: No such file or directory"});
}

TEST(WhitelistLoadTest, UnreadableFileIsAnError) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() + "/whitelist_clients.local");
  auto lists = Whitelists::Load({{FileFromPath(dir.path() + "/whitelist_clients.local")}, {}});
  ASSERT_FALSE(lists.ok());
  EXPECT_EQ(lists.status().message(),
            "can't read " + dir.path() + "/whitelist_clients.local: Is a directory");
}

TEST(WhitelistLoadTest, ErrorNamesTheFileAndLine) {
  TempDir dir;
  std::string good = dir.Write("a", "example.com\n");
  std::string bad = dir.Write("b", "# comment\nexample.org\n192.0.2.0/33\n");
  auto lists = Whitelists::Load({{FileFromPath(good), FileFromPath(bad)}, {}});
  ASSERT_FALSE(lists.ok());
  EXPECT_EQ(lists.status().message(),
            bad + " line 3: invalid IPv4 prefix length /33 (must be 0-32)");
}

TEST(WhitelistResolveTest, GivenFilesReplaceTheDefaultsWithoutLocalCompanions) {
  TempDir dir;
  dir.Write("whitelist_clients", "");
  std::vector<std::string> clients = {"/x/one", "/x/two.local"};
  WhitelistFiles files = ResolveWhitelistFiles(clients, {}, {dir.path(), "/nonexistent"});
  ASSERT_EQ(files.clients.size(), 2u);
  EXPECT_EQ(files.clients[0].path, "/x/one");
  EXPECT_FALSE(files.clients[0].missing_ok);
  EXPECT_EQ(files.clients[1].path, "/x/two.local");
  EXPECT_TRUE(files.clients[1].missing_ok);
  // Recipients were not given: defaults, independently of the clients.
  ASSERT_EQ(files.recipients.size(), 2u);
  EXPECT_EQ(files.recipients[0].path, "/nonexistent/whitelist_recipients");
}

TEST(WhitelistResolveTest, GreylightFilesWinWhenTheyExistOtherwisePostgreys) {
  TempDir greylight;
  TempDir postgrey;
  greylight.Write("whitelist_clients", "example.com\n");
  // greylight has no whitelist_recipients (a .local alone does not count).
  greylight.Write("whitelist_recipients.local", "abuse@\n");
  WhitelistFiles files = ResolveWhitelistFiles({}, {}, {greylight.path(), postgrey.path()});
  ASSERT_EQ(files.clients.size(), 2u);
  EXPECT_EQ(files.clients[0].path, greylight.path() + "/whitelist_clients");
  EXPECT_FALSE(files.clients[0].missing_ok);
  EXPECT_EQ(files.clients[1].path, greylight.path() + "/whitelist_clients.local");
  EXPECT_TRUE(files.clients[1].missing_ok);
  ASSERT_EQ(files.recipients.size(), 2u);
  EXPECT_EQ(files.recipients[0].path, postgrey.path() + "/whitelist_recipients");
  EXPECT_FALSE(files.recipients[0].missing_ok);
  EXPECT_EQ(files.recipients[1].path, postgrey.path() + "/whitelist_recipients.local");
  EXPECT_TRUE(files.recipients[1].missing_ok);
}

TEST(WhitelistResolveTest, DefaultDirsAreTheSystemOnes) {
  DefaultDirs dirs;
  EXPECT_EQ(dirs.greylight, "/etc/greylight");
  EXPECT_EQ(dirs.postgrey, "/etc/postgrey");
  EXPECT_TRUE(FileFromPath("/etc/postgrey/whitelist_clients.local").missing_ok);
  EXPECT_FALSE(FileFromPath("/etc/postgrey/whitelist_clients").missing_ok);
  EXPECT_FALSE(FileFromPath("/etc/postgrey/local").missing_ok);
}

// postgrey's shipped lists (Debian package postgrey) must load without a single error
// under greylight's stricter parser, and whitelist what they list.
TEST(WhitelistPostgreyShippedListTest, LoadsAndWhitelistsWellKnownSenders) {
  const std::string clients = "/etc/postgrey/whitelist_clients";
  const std::string recipients = "/etc/postgrey/whitelist_recipients";
  if (!std::filesystem::exists(clients) || !std::filesystem::exists(recipients)) {
    GTEST_SKIP() << clients << " not installed (Debian package postgrey)";
  }
  auto loaded = Whitelists::Load({{FileFromPath(clients)}, {FileFromPath(recipients)}});
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const Whitelists& lists = *loaded.value();
  EXPECT_TRUE(lists.warnings().empty());
  EXPECT_GT(lists.client_entry_count(), 150u);

  auto expect_client = [&](std::string_view name, std::string_view address,
                           std::string_view entry) {
    std::optional<WhitelistHit> hit = lists.MatchClient(name, Ip(address));
    ASSERT_TRUE(hit) << name << "[" << address << "]";
    EXPECT_EQ(hit->entry, entry) << name << "[" << address << "]";
    EXPECT_EQ(hit->source.rfind(clients + ":", 0), 0u) << hit->source;
  };
  expect_client("mail-wr1-f54.google.com", "192.0.2.1", "google.com");
  expect_client("mail-eopbgr80054.outbound.protection.OUTLOOK.com", "192.0.2.1", "outlook.com");
  expect_client("a8-31.smtp-out.amazonses.com", "192.0.2.1", "amazonses.com");
  expect_client("out-21.smtp.github.com", "192.0.2.1", "github.com");
  expect_client("mail12.telekom.de", "192.0.2.1", "/^mail\\d+\\.telekom\\.de$/");
  expect_client("smtp3-g21.free.fr", "192.0.2.1",
                "/^(?:smtp\\w*|postfix)[0-9]+-g[0-9]+\\.free\\.fr$/");
  expect_client("unknown", "205.201.130.5", "205.201.128.0/20");  // Mailchimp
  expect_client("unknown", "198.2.180.1", "198.2.128.0/18");      // Mailchimp
  expect_client("unknown", "148.105.8.9", "148.105.0.0/16");      // Mailchimp
  expect_client("unknown", "51.4.72.10", "51.4.72.0/24");         // Office 365
  expect_client("unknown", "2a01:4180:4051:800::25", "2a01:4180:4051:0800::/64");
  expect_client("unknown", "195.235.39.7", "195.235.39");  // a.b.c form
  expect_client("unknown", "66.216.126.174", "66.216.126.174");

  EXPECT_FALSE(lists.MatchClient("mail.example.com", Ip("192.0.2.1")));
  EXPECT_FALSE(lists.MatchClient("google.com.example", Ip("2001:db8::1")));
  EXPECT_FALSE(lists.MatchClient("unknown", Ip("51.4.73.1")));

  std::optional<WhitelistHit> hit = lists.MatchRecipient("postmaster@example.org");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->entry, "postmaster@");
  EXPECT_TRUE(lists.MatchRecipient("abuse+spam@example.org"));
  EXPECT_FALSE(lists.MatchRecipient("bob@example.org"));
}

// greylight's own default lists (etc/ in the source tree) load cleanly.
TEST(WhitelistGreylightShippedListTest, LoadsAndWhitelistsWellKnownSenders) {
  std::filesystem::path etc = std::filesystem::path(__FILE__).parent_path() / "../../etc";
  std::string clients = (etc / "whitelist_clients").lexically_normal().string();
  std::string recipients = (etc / "whitelist_recipients").lexically_normal().string();
  if (!std::filesystem::exists(clients)) GTEST_SKIP() << clients << " not found";
  auto loaded = Whitelists::Load({{FileFromPath(clients)}, {FileFromPath(recipients)}});
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const Whitelists& lists = *loaded.value();
  EXPECT_TRUE(lists.warnings().empty());
  EXPECT_TRUE(lists.MatchClient("mail-wr1-f54.google.com", Ip("192.0.2.1")));
  EXPECT_TRUE(
      lists.MatchClient("mail-eopbgr80054.outbound.protection.outlook.com", Ip("192.0.2.1")));
  EXPECT_TRUE(lists.MatchClient("a8-31.smtp-out.amazonses.com", Ip("192.0.2.1")));
  EXPECT_TRUE(lists.MatchClient("unknown", Ip("205.201.130.5")));  // Mailchimp
  EXPECT_TRUE(lists.MatchClient("unknown", Ip("40.107.22.54")));   // Exchange Online
  EXPECT_FALSE(lists.MatchClient("mail.example.com", Ip("192.0.2.1")));
  EXPECT_TRUE(lists.MatchRecipient("postmaster@example.org"));
  EXPECT_TRUE(lists.MatchRecipient("abuse@example.org"));
  EXPECT_FALSE(lists.MatchRecipient("bob@example.org"));
}

// The flattened network index against a linear scan in file order, on random networks.
// Prints the seed; set GREYLIGHT_TEST_SEED to replay.
}  // namespace
}  // namespace greylight::whitelist
