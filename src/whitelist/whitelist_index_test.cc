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

#include "whitelist/regex_entry.h"

// The whitelist indexes and the regex shortcut against plain reference implementations,
// on random and postgrey's shipped entries; matching from many threads.
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

TEST(WhitelistNetworkIndexTest, AgreesWithLinearScan) {
  uint32_t seed = std::random_device{}();
  if (const char* given = getenv("GREYLIGHT_TEST_SEED")) seed = static_cast<uint32_t>(atoll(given));
  SCOPED_TRACE("GREYLIGHT_TEST_SEED=" + std::to_string(seed));
  std::mt19937 random(seed);

  struct Net {
    IpAddress address;
    int prefix_length;
    std::string text;
  };
  // Addresses from a small pool of bytes, so that networks nest and overlap often; prefix
  // lengths are long enough that a fair share of clients is in no network.
  auto random_v4 = [&] {
    IpAddress a;
    for (int i = 0; i < 4; ++i) a.bytes[i] = static_cast<uint8_t>(random() % 4 * 64 + random() % 2);
    return a;
  };
  auto random_v6 = [&] {
    IpAddress a;
    a.is_v6 = true;
    a.bytes[0] = 0x20;  // never inside ::/96, so the linear scan can stay per family
    a.bytes[1] = 0x01;
    for (int i = 2; i < 16; ++i)
      a.bytes[i] = static_cast<uint8_t>(random() % 2 * 0x80 + random() % 2);
    return a;
  };
  std::vector<Net> nets;
  std::string text;
  for (int i = 0; i < 400; ++i) {
    Net net;
    if (random() % 2) {
      net.address = random_v4();
      net.prefix_length = 16 + static_cast<int>(random() % 17);
    } else {
      net.address = random_v6();
      net.prefix_length = 40 + static_cast<int>(random() % 89);
    }
    net.address = net.address.Masked(net.prefix_length);
    std::string address_text = net.address.ToPostgreyString();
    if (net.address.is_v6) {
      for (char& c : address_text) c = static_cast<char>(std::tolower(c));
    }
    net.text = address_text + "/" + std::to_string(net.prefix_length);
    text += net.text + "\n";
    nets.push_back(net);
  }
  auto lists = BuildClients(text);
  int whitelisted = 0;
  for (int i = 0; i < 20000; ++i) {
    IpAddress client = random() % 2 ? random_v4() : random_v6();
    std::string expected;
    for (const Net& net : nets) {
      if (client.Within(net.address, net.prefix_length)) {
        expected = net.text;
        break;
      }
    }
    std::optional<WhitelistHit> hit = lists->MatchClient("unknown", client);
    ASSERT_EQ(hit ? hit->entry : "", expected) << client.ToPostgreyString();
    whitelisted += hit ? 1 : 0;
  }
  // Both outcomes must be common for the comparison to mean something.
  EXPECT_GT(whitelisted, 1000);
  EXPECT_LT(whitelisted, 19000);
  RecordProperty("whitelisted", whitelisted);
}

// The hashed suffix and recipient indexes against postgrey's own construction: one
// regex per entry (P:64, P:100-110), tried in file order. Random entries and subjects
// over a tiny alphabet, so that dots, '+' and '@' collide in every possible way.
// Prints the seed; set GREYLIGHT_TEST_SEED to replay.
TEST(WhitelistStringIndexTest, AgreesWithPostgreysRegexes) {
  uint32_t seed = std::random_device{}();
  if (const char* given = getenv("GREYLIGHT_TEST_SEED")) seed = static_cast<uint32_t>(atoll(given));
  SCOPED_TRACE("GREYLIGHT_TEST_SEED=" + std::to_string(seed));
  std::mt19937 random(seed);
  auto random_text = [&](size_t max_length, std::string_view alphabet) {
    std::string text(1 + random() % max_length, ' ');
    for (char& c : text) c = alphabet[random() % alphabet.size()];
    return text;
  };
  auto quote = [](std::string_view literal) {  // Perl's \Q...\E for std::regex
    std::string quoted;
    for (char c : literal) {
      if (c == '.' || c == '+') quoted.push_back('\\');
      quoted.push_back(c);
    }
    return quoted;
  };
  constexpr auto kFlags = std::regex::ECMAScript | std::regex::icase;

  // Clients: host-name suffixes, postgrey's qr{(?:^|\.)\Q$_\E$}i.
  std::vector<std::pair<std::string, std::regex>> clients;
  std::string client_text;
  while (clients.size() < 150) {
    std::string entry = random_text(5, "abA.");
    // Entries of dots only are refused (see WhitelistErrorTest).
    if (entry.find_first_not_of('.') == std::string::npos) continue;
    clients.emplace_back(entry, std::regex("(?:^|\\.)" + quote(entry) + "$", kFlags));
    client_text += entry + "\n";
  }
  // Recipients: split at the first '@' into user and domain (P:94-110).
  std::vector<std::pair<std::string, std::regex>> recipients;
  std::string recipient_text;
  while (recipients.size() < 150) {
    std::string entry = random_text(6, "abA.+@");
    size_t at = entry.find('@');
    std::string pattern;
    if (at == std::string::npos) {
      pattern = "(?:@|\\.)" + quote(entry) + "$";
    } else if (at + 1 < entry.size()) {
      pattern =
          "^" + quote(entry.substr(0, at)) + "(?:\\+[^@]+)?@" + quote(entry.substr(at + 1)) + "$";
    } else {
      pattern = "^" + quote(entry.substr(0, at)) + "(?:\\+[^@]+)?@";
    }
    recipients.emplace_back(entry, std::regex(pattern, kFlags));
    recipient_text += entry + "\n";
  }
  auto client_lists = BuildClients(client_text);
  auto recipient_lists = BuildRecipients(recipient_text);
  int client_hits = 0;
  int recipient_hits = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string name = random_text(9, "abA.");
    std::string expected;
    for (const auto& [entry, regex] : clients) {
      if (std::regex_search(name, regex)) {
        expected = entry;
        break;
      }
    }
    ASSERT_EQ(ClientMatch(*client_lists, name, "192.0.2.1"), expected) << name;
    client_hits += expected.empty() ? 0 : 1;

    std::string address = random_text(10, "abA.+@");
    expected.clear();
    for (const auto& [entry, regex] : recipients) {
      if (std::regex_search(address, regex)) {
        expected = entry;
        break;
      }
    }
    ASSERT_EQ(RecipientMatch(*recipient_lists, address), expected) << address;
    recipient_hits += expected.empty() ? 0 : 1;
  }
  EXPECT_GT(client_hits, 250);
  EXPECT_LT(client_hits, 4750);
  EXPECT_GT(recipient_hits, 250);
  EXPECT_LT(recipient_hits, 4750);
  RecordProperty("client_hits", client_hits);
  RecordProperty("recipient_hits", recipient_hits);
}

// Lookups of a length no key has are skipped without hashing: keys whose lengths have no
// neighbours, and keys too long for the set of lengths, are still found.
TEST(WhitelistStringIndexTest, FindsKeysOfEveryLength) {
  const std::string long_domain = std::string(300, 'l') + ".example";
  auto clients = BuildClients("ab.example\n" + long_domain + "\n");
  EXPECT_EQ(ClientMatch(*clients, "mail.AB.example", "192.0.2.1"), "ab.example");
  EXPECT_EQ(ClientMatch(*clients, "ab.example", "192.0.2.1"), "ab.example");
  EXPECT_EQ(ClientMatch(*clients, "b.example", "192.0.2.1"), "");
  EXPECT_EQ(ClientMatch(*clients, "xab.example", "192.0.2.1"), "");
  EXPECT_EQ(ClientMatch(*clients, "mx." + long_domain, "192.0.2.1"), long_domain);
  EXPECT_EQ(ClientMatch(*clients, "mx.x" + long_domain, "192.0.2.1"), "");
  auto recipients = BuildRecipients("postmaster@\nab.example\n" + long_domain + "\n");
  EXPECT_EQ(RecipientMatch(*recipients, "postmaster+x@example.net"), "postmaster@");
  EXPECT_EQ(RecipientMatch(*recipients, "user@mail.ab.example"), "ab.example");
  EXPECT_EQ(RecipientMatch(*recipients, "user@" + long_domain), long_domain);
  EXPECT_EQ(RecipientMatch(*recipients, "user@b.example"), "");
}

// Regexes are skipped without a call when the subject lacks the text every match must end
// with, and only those whose required ending shares the subject's last two characters are
// tried. Neither shortcut may change an answer: lists of random patterns built from atoms
// that stress them (escapes, quantifiers after literals, alternation in and out of groups,
// classes holding '.' and '|', the any-character '.', a character given by code, '$'
// or not at the end) against random names, compared with a plain regex search taking the
// first pattern that matches. Prints the seed; set GREYLIGHT_TEST_SEED to replay.
TEST(WhitelistRegexShortcutTest, AgreesWithPlainRegexSearch) {
  uint32_t seed = std::random_device{}();
  if (const char* given = getenv("GREYLIGHT_TEST_SEED")) seed = static_cast<uint32_t>(atoll(given));
  SCOPED_TRACE("GREYLIGHT_TEST_SEED=" + std::to_string(seed));
  std::mt19937 random(seed);
  const std::vector<std::string> atoms = {"a",     "b",    "B",       "\\.",   ".",     "\\d",
                                          "1",     "-",    "+",       "?",     "*",     "[ab]",
                                          "[.|]",  "[^a]", "(?:a|b)", "(a|.)", "(b|x)", "|",
                                          "\\x41", "\\-",  "x",       "\\|",   "(1)",   "[a-b]"};
  auto random_pattern = [&] {
    std::string pattern = random() % 2 ? "^" : "";
    for (size_t n = 1 + random() % 6; n > 0; --n) {
      const std::string& atom = atoms[random() % atoms.size()];
      // A quantifier needs an atom before it.
      if ((atom == "+" || atom == "?" || atom == "*") &&
          (pattern.empty() || pattern.back() == '^' || pattern.back() == '|' ||
           pattern.back() == '+' || pattern.back() == '?' || pattern.back() == '*')) {
        continue;
      }
      pattern += atom;
    }
    if (random() % 4 != 0) pattern += "$";
    return pattern;
  };
  int matched = 0;
  int lists_tried = 0;
  for (int list_number = 0; list_number < 300; ++list_number) {
    // Patterns both engines accept and read alike, in list order.
    std::vector<std::pair<std::string, std::regex>> patterns;
    for (size_t wanted = 1 + random() % 4; patterns.size() < wanted;) {
      std::string pattern = random_pattern();
      try {
        std::regex oracle(pattern, std::regex::ECMAScript | std::regex::icase);
        WhitelistBuilder alone;
        alone.AddClientText("clients", "/" + pattern + "/\n");
        if (alone.Build().ok()) patterns.emplace_back(pattern, std::move(oracle));
      } catch (const std::regex_error&) {
      }
    }
    std::string text;
    for (const auto& [pattern, oracle] : patterns) text += "/" + pattern + "/\n";
    WhitelistBuilder builder;
    builder.AddClientText("clients", text);
    auto lists = builder.Build();
    ASSERT_TRUE(lists.ok()) << text;
    ++lists_tried;
    for (int i = 0; i < 60; ++i) {
      std::string name(random() % 8, ' ');
      for (char& c : name) c = "abAB.1-x|]"[random() % 10];
      std::string expected;
      for (const auto& [pattern, oracle] : patterns) {
        if (std::regex_search(name, oracle)) {
          expected = "/" + pattern + "/";
          break;
        }
      }
      ASSERT_EQ(ClientMatch(**lists, name, "192.0.2.1"), expected) << text << "on '" << name << "'";
      matched += expected.empty() ? 0 : 1;
    }
  }
  EXPECT_EQ(lists_tried, 300);
  EXPECT_GT(matched, 1000);
}

// The required endings themselves: '.' stands for any character, alternation inside a group
// leaves the ending, alternation outside one (or a form the scan does not follow) drops it.
TEST(WhitelistRegexShortcutTest, RequiredSuffixes) {
  const std::string any(1, kAnyCharacter);
  EXPECT_EQ(RequiredSuffix("^mail\\d+\\.telekom\\.de$"), ".telekom.de");
  EXPECT_EQ(RequiredSuffix("^smtp\\d+.citigroup.com$"), any + "citigroup" + any + "com");
  EXPECT_EQ(RequiredSuffix("^(?:mail|fallback-mx)\\d+.atl.registeredsite.com$"),
            any + "atl" + any + "registeredsite" + any + "com");
  EXPECT_EQ(RequiredSuffix("^[.|]x$"), "x");
  EXPECT_EQ(RequiredSuffix("^[]|]x$"), "x");
  EXPECT_EQ(RequiredSuffix("^a|bx$"), "");
  EXPECT_EQ(RequiredSuffix("^(a|b)|cx$"), "");
  EXPECT_EQ(RequiredSuffix("^a\\|bx$"), "a|bx") << "an escaped '|' is a literal";
  EXPECT_EQ(RequiredSuffix("^[^]|]x$"), "x");
  EXPECT_EQ(RequiredSuffix("^[[:alpha:]|]x$"), "") << "POSIX classes are not followed";
  // "\c(" is one character, so this is "\c(a" or "b\c)x": "ha" matches, and no suffix holds.
  EXPECT_EQ(RequiredSuffix("\\c(a|b\\c)x$"), "");
  EXPECT_EQ(RequiredSuffix("^\\Q(a|b\\E)x$"), "");
  EXPECT_EQ(ClientMatch(*BuildClients("/\\c(a|b\\c)x$/\n"), "ha", "192.0.2.1"), "/\\c(a|b\\c)x$/");
  EXPECT_EQ(RequiredSuffix("^(ax$"), "");
  EXPECT_EQ(RequiredSuffix("^a.*x$"), "x");
  EXPECT_EQ(RequiredSuffix("^a.x$"), "a" + any + "x");
  EXPECT_TRUE(EndsWithRequiredSuffix("smtp4.citigroupxcom", "citigroup" + any + "com"));
  EXPECT_FALSE(EndsWithRequiredSuffix("smtp4.citigroup.co", "citigroup" + any + "com"));
  EXPECT_FALSE(EndsWithRequiredSuffix("om", "c" + any + "om"));
}

TEST(WhitelistRegexShortcutTest, PostgreysAnchoredEntriesStillMatch) {
  auto lists = BuildClients(
      "/^mail\\d+\\.telekom\\.de$/\n/^ms-smtp.*\\.rr\\.com$/\n/^mta[12].siol.net$/\n"
      "/^(?:smtp\\w*|postfix)[0-9]+-g[0-9]+\\.free\\.fr$/\n/^smtp\\d+.citigroup.com$/\n");
  EXPECT_EQ(ClientMatch(*lists, "MAIL12.Telekom.DE", "192.0.2.1"), "/^mail\\d+\\.telekom\\.de$/");
  EXPECT_EQ(ClientMatch(*lists, "mail12.telekom.de.evil", "192.0.2.1"), "");
  EXPECT_EQ(ClientMatch(*lists, "ms-smtp-01.nyroc.rr.com", "192.0.2.1"),
            "/^ms-smtp.*\\.rr\\.com$/");
  EXPECT_EQ(ClientMatch(*lists, "mta1xsiolxnet", "192.0.2.1"), "/^mta[12].siol.net$/");
  EXPECT_EQ(ClientMatch(*lists, "postfix3-g7.free.fr", "192.0.2.1"),
            "/^(?:smtp\\w*|postfix)[0-9]+-g[0-9]+\\.free\\.fr$/");
  EXPECT_EQ(ClientMatch(*lists, "smtp4.citigroupxcom", "192.0.2.1"), "/^smtp\\d+.citigroup.com$/");
}

// Verbs change what '$' and case folding mean, or end a match before '$': such patterns
// are always run, never skipped on their literal tail.
TEST(WhitelistRegexShortcutTest, VerbsDisableTheShortcut) {
  auto lists =
      BuildClients("/^mail(*ACCEPT)\\.example\\.com$/\n/(*CR)\\.cr\\.example$/\n/(*UTF)\\.ok$/\n");
  EXPECT_EQ(ClientMatch(*lists, "mail.other.net", "192.0.2.1"),
            "/^mail(*ACCEPT)\\.example\\.com$/");
  EXPECT_EQ(ClientMatch(*lists, "a.cr.example\r", "192.0.2.1"), "/(*CR)\\.cr\\.example$/");
  EXPECT_EQ(ClientMatch(*lists, "x.o\xE2\x84\xAA", "192.0.2.1"), "/(*UTF)\\.ok$/")
      << "KELVIN SIGN folds to k under (*UTF)";
}

TEST(WhitelistConcurrencyTest, SharedListsMatchFromManyThreads) {
  auto lists = BuildClients("/^mail\\d+\\.example\\.net$/\n/^(a|b)+$/\nexample.org\n10.0.0.0/8\n");
  std::vector<std::thread> threads;
  std::vector<int> hits(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        std::string name = "mail" + std::to_string(i) + ".example.net";
        if (lists->MatchClient(name, Ip("192.0.2.1"))) ++hits[t];
        if (lists->MatchClient("abab", Ip("192.0.2.1"))) ++hits[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(hits[t], 10000);
}

}  // namespace
}  // namespace greylight::whitelist
