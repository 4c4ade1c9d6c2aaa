#include "bench/traffic_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <iterator>

namespace greylight::bench {
namespace {

// Salts keep the random streams of origins, recipients, messages and mode decisions
// independent although they are all keyed by small integers.
constexpr uint64_t kSaltOrigin = 0x4f524947494e0001;
constexpr uint64_t kSaltRecipient = 0x5243505400000002;
constexpr uint64_t kSaltMessage = 0x4d53470000000003;
constexpr uint64_t kSaltKind = 0x4b494e4400000004;
constexpr uint64_t kSaltStep = 0x5354455000000005;
constexpr uint64_t kSaltHot = 0x484f540000000006;
constexpr uint64_t kSaltScramble = 0x5343524d00000007;

// Hot triplets and priming messages live above every index a run can reach.
constexpr uint64_t kHotIdBase = TrafficModel::kMaxIndex;
constexpr uint64_t kPrimeMessageBase = uint64_t{1} << 62;

// Mixed mode: out of 100 requests, this many carry a new triplet, a retry of an earlier
// triplet, or an earlier client and sender writing to a new recipient.
constexpr uint64_t kNewPercent = 50;
constexpr uint64_t kRetryPercent = 30;
// How far back a retry or repeat sender reaches, in requests; and a bound on the walk back
// through retries of retries (reaching it, with odds 0.5^16, makes the triplet a new one).
constexpr uint64_t kLookBackRequests = 50'000;
constexpr int kMaxChainSteps = 16;

uint64_t Mix64(uint64_t x) {
  // splitmix64's finaliser: a bijection with good avalanche, cheap enough to call per field.
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t KeyOf(uint64_t seed, uint64_t id, uint64_t salt) { return Mix64(Mix64(seed ^ salt) + id); }

// A bijection on 48-bit values, so that distinct recipient ids give distinct, random-looking
// address suffixes.
uint64_t Scramble48(uint64_t x, uint64_t seed) {
  constexpr uint64_t kMask = (uint64_t{1} << 48) - 1;
  x = (x ^ Mix64(seed ^ kSaltScramble)) & kMask;
  x = (x * 0x9e3779b97f4bULL) & kMask;
  x ^= x >> 23;
  x = (x * 0xd6e8feb86659fdULL) & kMask;
  x ^= x >> 19;
  return x;
}

class Rng {
 public:
  explicit Rng(uint64_t state) : state_(state) {}
  uint64_t Next() { return Mix64(state_ += 0x632be59bd9b4e019ULL); }
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(Next() % n); }
  uint32_t Between(uint32_t low, uint32_t high) { return low + Below(high - low + 1); }
  bool Percent(uint32_t percent) { return Below(100) < percent; }
  template <typename T, size_t N>
  T Pick(const std::array<T, N>& choices) {
    return choices[Below(static_cast<uint32_t>(N))];
  }

 private:
  uint64_t state_;
};

using Words = std::string_view;

constexpr std::array<Words, 40> kFirstNames = {
    "anna",   "james",  "maria",  "john",   "laura", "david", "sophie", "michael",
    "emma",   "thomas", "julia",  "daniel", "sarah", "peter", "lucia",  "martin",
    "chloe",  "robert", "elena",  "andrew", "nina",  "paul",  "claire", "stefan",
    "olivia", "marco",  "hannah", "lukas",  "ines",  "jonas", "eva",    "mark",
    "kate",   "pierre", "isabel", "tom",    "lea",   "oscar", "zoe",    "felix"};
constexpr std::array<Words, 40> kLastNames = {
    "smith",  "mueller", "garcia",    "rossi",   "dubois",  "jones",  "schmidt",  "martin",
    "brown",  "fischer", "lopez",     "bianchi", "moreau",  "taylor", "weber",    "silva",
    "wilson", "meyer",   "fernandez", "ricci",   "laurent", "davies", "wagner",   "santos",
    "clarke", "becker",  "romero",    "greco",   "bernard", "evans",  "hoffmann", "costa",
    "walker", "keller",  "navarro",   "conti",   "girard",  "hughes", "koch",     "pereira"};
constexpr std::array<Words, 32> kOrgFirst = {
    "blue",  "north",  "bright",  "green",  "silver",  "rapid",  "alpine", "coastal",
    "urban", "global", "prime",   "nova",   "red",     "clear",  "swift",  "iron",
    "sun",   "open",   "metro",   "star",   "pacific", "delta",  "royal",  "smart",
    "first", "united", "crystal", "golden", "summit",  "harbor", "pixel",  "atlas"};
constexpr std::array<Words, 32> kOrgSecond = {
    "river",   "media",   "bank",    "travel",  "shop",   "labs",   "mail",    "systems",
    "news",    "finance", "health",  "market",  "cloud",  "group",  "telecom", "energy",
    "books",   "motors",  "foods",   "design",  "games",  "sports", "hotels",  "airlines",
    "academy", "studio",  "network", "digital", "retail", "press",  "capital", "logistics"};
constexpr std::array<Words, 16> kTlds = {"com", "com", "com",    "com", "net", "org",
                                         "de",  "fr",  "co.uk",  "nl",  "io",  "ch",
                                         "it",  "es",  "com.br", "se"};
constexpr std::array<Words, 10> kHostPrefixes = {"mail",  "mx",      "smtp", "out",  "mta",
                                                 "relay", "mailout", "mo",   "send", "o"};
constexpr std::array<Words, 8> kPools = {"dyn",   "pool",  "static", "dsl",
                                         "cable", "fiber", "cust",   "broadband"};
constexpr std::array<Words, 8> kIsps = {"telenet-isp.net",  "vodacable.de",     "fibrelink.fr",
                                        "kabelnet-home.nl", "skyline-bb.co.uk", "netvision.it",
                                        "comhem-access.se", "speedyisp.com.br"};
constexpr std::array<Words, 12> kRoles = {"noreply", "no-reply",      "info",    "newsletter",
                                          "support", "notifications", "alerts",  "orders",
                                          "billing", "hello",         "updates", "team"};
constexpr std::array<Words, 10> kTags = {"news",   "shop",  "lists", "github",   "bank",
                                         "travel", "forum", "promo", "receipts", "work"};
constexpr std::array<Words, 6> kSenderSubdomains = {"", "", "mail.", "em.", "bounce.", "news."};
constexpr std::array<uint8_t, 48> kPublicFirstOctets = {
    5,   23,  31,  37,  45,  46,  50,  62,  64,  66,  69,  72,  74,  77,  78,  80,
    81,  82,  83,  84,  85,  87,  88,  89,  91,  93,  94,  95,  104, 109, 130, 141,
    151, 162, 176, 178, 185, 188, 193, 194, 195, 209, 212, 213, 216, 217, 46,  185};
constexpr std::array<uint16_t, 10> kV6Prefixes = {0x2001, 0x2a00, 0x2a01, 0x2a02, 0x2a03,
                                                  0x2a05, 0x2600, 0x2604, 0x2607, 0x2403};

// Local domains of the receiving MX, with weights out of 100.
struct RecipientDomain {
  Words name;
  uint32_t weight;
};
constexpr std::array<RecipientDomain, 4> kRecipientDomains = {{{"example.org", 50},
                                                               {"example.net", 25},
                                                               {"mail.example.com", 15},
                                                               {"students.example.edu", 10}}};

enum class Naming { kVerified, kReverseOnly, kUnknown };
enum class SenderStyle { kNull, kPerson, kPlusTag, kBatv, kVerp, kRole };

// Everything about a sending host and its envelope sender, derived from the origin id.
struct Origin {
  bool v6 = false;
  std::array<uint8_t, 4> v4{};
  std::array<uint16_t, 5> v6_groups{};  // Written as a:b:c:d::e.
  Naming naming = Naming::kVerified;
  Words host_prefix, org_first, org_second, tld, pool, isp;
  uint32_t host_number = 0;  // 0: no number.
  uint32_t org_number = 0;   // 0: no number.
  int helo_style = 0;
  SenderStyle sender_style = SenderStyle::kPerson;
  Words first, last, role, tag, sender_subdomain;
  uint32_t number_a = 0, number_b = 0;
  int variant = 0;
};

Origin MakeOrigin(Rng& rng) {
  Origin o;
  o.v6 = rng.Percent(20);
  if (o.v6) {
    o.v6_groups = {rng.Pick(kV6Prefixes), static_cast<uint16_t>(rng.Between(1, 0xffff)),
                   static_cast<uint16_t>(rng.Between(1, 0xffff)),
                   static_cast<uint16_t>(rng.Between(1, 0xffff)),
                   static_cast<uint16_t>(rng.Between(1, 0xffff))};
  } else {
    o.v4 = {rng.Pick(kPublicFirstOctets), static_cast<uint8_t>(rng.Below(256)),
            static_cast<uint8_t>(rng.Below(256)), static_cast<uint8_t>(rng.Between(1, 254))};
  }
  uint32_t naming = rng.Below(100);
  o.naming = naming < 65   ? Naming::kVerified
             : naming < 85 ? Naming::kReverseOnly
                           : Naming::kUnknown;
  o.host_prefix = rng.Pick(kHostPrefixes);
  o.host_number = rng.Percent(60) ? rng.Between(1, 300) : 0;
  o.org_first = rng.Pick(kOrgFirst);
  o.org_second = rng.Pick(kOrgSecond);
  o.org_number = rng.Percent(25) ? rng.Between(2, 99) : 0;
  o.tld = rng.Pick(kTlds);
  o.pool = rng.Pick(kPools);
  o.isp = rng.Pick(kIsps);
  o.helo_style = static_cast<int>(rng.Below(10));

  uint32_t style = rng.Below(100);
  o.sender_style = style < 3    ? SenderStyle::kNull
                   : style < 33 ? SenderStyle::kPerson
                   : style < 48 ? SenderStyle::kPlusTag
                   : style < 60 ? SenderStyle::kBatv
                   : style < 80 ? SenderStyle::kVerp
                                : SenderStyle::kRole;
  o.first = rng.Pick(kFirstNames);
  o.last = rng.Pick(kLastNames);
  o.role = rng.Pick(kRoles);
  o.tag = rng.Pick(kTags);
  o.sender_subdomain = rng.Pick(kSenderSubdomains);
  o.number_a = rng.Between(100, 9'999'999);
  o.number_b = static_cast<uint32_t>(rng.Next());
  o.variant = static_cast<int>(rng.Below(3));
  return o;
}

using Out = std::back_insert_iterator<std::string>;

void AppendAddress(const Origin& o, std::string& out) {
  if (o.v6) {
    fmt::format_to(Out(out), "{:x}:{:x}:{:x}:{:x}::{:x}", o.v6_groups[0], o.v6_groups[1],
                   o.v6_groups[2], o.v6_groups[3], o.v6_groups[4]);
  } else {
    fmt::format_to(Out(out), "{}.{}.{}.{}", o.v4[0], o.v4[1], o.v4[2], o.v4[3]);
  }
}

void AppendOrgDomain(const Origin& o, std::string& out) {
  out += o.org_first;
  out += o.org_second;
  if (o.org_number != 0) fmt::format_to(Out(out), "{}", o.org_number);
  out += '.';
  out += o.tld;
}

void AppendHostName(const Origin& o, std::string& out) {
  out += o.host_prefix;
  if (o.host_number != 0) fmt::format_to(Out(out), "{}", o.host_number);
  out += '.';
  AppendOrgDomain(o, out);
}

// The unverified PTR name of a host without forward-confirmed DNS: an ISP's generic name.
void AppendGenericName(const Origin& o, std::string& out) {
  if (o.v6) {
    fmt::format_to(Out(out), "host-{:x}-{:x}.{}.{}", o.v6_groups[3], o.v6_groups[4], o.pool, o.isp);
  } else {
    fmt::format_to(Out(out), "{}-{}-{}-{}.{}.{}", o.v4[0], o.v4[1], o.v4[2], o.v4[3], o.pool,
                   o.isp);
  }
}

void AppendClientName(const Origin& o, std::string& out) {
  if (o.naming == Naming::kVerified) {
    AppendHostName(o, out);
  } else {
    out += "unknown";
  }
}

void AppendReverseClientName(const Origin& o, std::string& out) {
  switch (o.naming) {
    case Naming::kVerified:
      AppendHostName(o, out);
      break;
    case Naming::kReverseOnly:
      AppendGenericName(o, out);
      break;
    case Naming::kUnknown:
      out += "unknown";
      break;
  }
}

void AppendHelo(const Origin& o, std::string& out) {
  if (o.naming == Naming::kVerified && o.helo_style < 8) {
    AppendHostName(o, out);
  } else if (o.helo_style < 5) {
    if (o.naming == Naming::kReverseOnly) {
      AppendGenericName(o, out);
    } else {
      out += o.v6 ? "[IPv6:" : "[";
      AppendAddress(o, out);
      out += ']';
    }
  } else {
    // Misconfigured hosts announce a bare workstation name or a domain.
    if (o.helo_style < 8) {
      out += o.first;
      out += "-pc";
      if (o.host_number != 0) fmt::format_to(Out(out), "{}", o.host_number);
    } else {
      AppendOrgDomain(o, out);
    }
  }
}

void AppendSenderDomain(const Origin& o, std::string& out) {
  out += o.sender_subdomain;
  AppendOrgDomain(o, out);
}

void AppendSender(const Origin& o, std::string& out) {
  switch (o.sender_style) {
    case SenderStyle::kNull:
      return;  // Bounces: MAIL FROM:<>.
    case SenderStyle::kPerson:
      fmt::format_to(Out(out), "{}.{}@", o.first, o.last);
      break;
    case SenderStyle::kPlusTag:
      if (o.variant == 0) {
        fmt::format_to(Out(out), "{}+{}@", o.first, o.tag);
      } else {
        fmt::format_to(Out(out), "{}+{:08x}@", o.role, o.number_b);
      }
      break;
    case SenderStyle::kBatv:
      // prvs=KDDDSSSSSS=local: key number, day of the year, six hex digits of signature.
      fmt::format_to(Out(out), "prvs=0{:03}{:06x}={}.{}@", o.number_a % 1000, o.number_b & 0xffffff,
                     o.first, o.last);
      break;
    case SenderStyle::kVerp:
      if (o.variant == 0) {
        fmt::format_to(Out(out), "bounce-{}-{}@", o.number_a, o.number_b % 100'000);
      } else if (o.variant == 1) {
        fmt::format_to(Out(out), "bounces+{}-{:04x}-{}={}.{}@", o.number_a, o.number_b & 0xffff,
                       o.first, o.last, o.tld);
      } else {
        fmt::format_to(Out(out), "{}.{}.{}@", o.number_a, o.number_b % 10'000, o.number_a % 97);
      }
      break;
    case SenderStyle::kRole:
      fmt::format_to(Out(out), "{}@", o.role);
      break;
  }
  AppendSenderDomain(o, out);
}

void AppendRecipient(uint64_t recipient_id, uint64_t seed, Rng& rng, std::string& out) {
  Words first = rng.Pick(kFirstNames);
  Words last = rng.Pick(kLastNames);
  uint32_t draw = rng.Below(100);
  Words domain = kRecipientDomains.back().name;
  for (const RecipientDomain& d : kRecipientDomains) {
    if (draw < d.weight) {
      domain = d.name;
      break;
    }
    draw -= d.weight;
  }
  // The scrambled id makes every recipient id a distinct mailbox; base 36 keeps it short.
  char suffix[16];
  size_t length = 0;
  uint64_t unique = Scramble48(recipient_id, seed);
  do {
    suffix[length++] = "0123456789abcdefghijklmnopqrstuvwxyz"[unique % 36];
    unique /= 36;
  } while (unique != 0);
  out += first;
  out += '.';
  out += last;
  out += '.';
  for (size_t i = length; i > 0; --i) out += suffix[i - 1];
  out += '@';
  out += domain;
}

void AppendMessageAttributes(Rng& rng, std::string& out) {
  // queue_id is empty on a message's first RCPT (smtpd_delay_open_until_valid_rcpt=yes).
  out += "\nrecipient_count=0\nqueue_id=";
  if (rng.Percent(45)) {
    fmt::format_to(Out(out), "{:X}{:09X}", rng.Between(1, 15), rng.Next() & 0xfffffffffULL);
  }
  fmt::format_to(Out(out), "\ninstance={:x}.{:x}.{:x}.{}\nsize=", rng.Between(0x400, 0x3ffff),
                 rng.Between(0x67000000, 0x6fffffff), rng.Below(1'000'000),
                 rng.Percent(80) ? 0 : rng.Between(1, 3));
  if (rng.Percent(25)) {
    out += '0';
  } else {
    // Roughly log-uniform from 1 KB to 4 MB, like real SIZE= values.
    uint32_t magnitude = rng.Between(3, 6);
    uint32_t base = 1;
    for (uint32_t i = 0; i < magnitude; ++i) base *= 10;
    fmt::format_to(Out(out), "{}", std::min<uint32_t>(base + rng.Below(base * 9), 4'000'000));
  }
  out +=
      "\netrn_domain=\nstress=\nsasl_method=\nsasl_username=\nsasl_sender=\nccert_subject="
      "\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n";
  uint32_t tls = rng.Below(100);
  if (tls < 65) {
    out +=
        "encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\n"
        "encryption_keysize=256\n";
  } else if (tls < 75) {
    out +=
        "encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_128_GCM_SHA256\n"
        "encryption_keysize=128\n";
  } else if (tls < 87) {
    out +=
        "encryption_protocol=TLSv1.2\nencryption_cipher=ECDHE-RSA-AES256-GCM-SHA384\n"
        "encryption_keysize=256\n";
  } else {
    out += "encryption_protocol=\nencryption_cipher=\nencryption_keysize=0\n";
  }
  out += "policy_context=\n\n";
}

}  // namespace

std::optional<TrafficMode> ParseTrafficMode(std::string_view name) {
  if (name == "new") return TrafficMode::kNew;
  if (name == "mixed") return TrafficMode::kMixed;
  if (name == "hot") return TrafficMode::kHot;
  return std::nullopt;
}

std::string_view TrafficModeName(TrafficMode mode) {
  switch (mode) {
    case TrafficMode::kNew:
      return "new";
    case TrafficMode::kMixed:
      return "mixed";
    case TrafficMode::kHot:
      return "hot";
  }
  return "?";
}

TrafficModel::TrafficModel(TrafficMode mode, uint64_t seed, uint32_t hot_set_size)
    : mode_(mode),
      seed_(seed),
      hot_set_size_(std::clamp<uint32_t>(hot_set_size, 1, kMaxHotSetSize)) {}

TrafficModel::TripletIds TrafficModel::TripletFor(uint64_t index) const {
  switch (mode_) {
    case TrafficMode::kNew:
      return {index, index};
    case TrafficMode::kHot: {
      uint64_t hot = KeyOf(seed_, index, kSaltHot) % hot_set_size_;
      return {kHotIdBase + hot, kHotIdBase + hot};
    }
    case TrafficMode::kMixed:
      break;
  }
  // Each index is new, a retry, or a repeat sender, decided by hashing it. A retry resends
  // the triplet of an earlier index; a repeat sender takes an earlier index's origin. Walking
  // back through those links ends at the index that first introduced the recipient, then at
  // the one that introduced the origin; both were sent before `index`.
  auto kind = [this](uint64_t i) { return KeyOf(seed_, i, kSaltKind) % 100; };
  auto step = [this](uint64_t i) {
    return 1 + KeyOf(seed_, i, kSaltStep) % std::min(i, kLookBackRequests);
  };
  int steps = 0;
  uint64_t recipient = index;
  while (recipient > 0 && steps < kMaxChainSteps) {
    uint64_t k = kind(recipient);
    if (k < kNewPercent || k >= kNewPercent + kRetryPercent) break;
    recipient -= step(recipient);
    ++steps;
  }
  uint64_t origin = recipient;
  while (origin > 0 && steps < kMaxChainSteps && kind(origin) >= kNewPercent) {
    origin -= step(origin);
    ++steps;
  }
  return {origin, recipient};
}

void TrafficModel::AppendRequest(uint64_t index, std::string& out) const {
  AppendPolicyRequest(TripletFor(index), index, out);
}

void TrafficModel::AppendHotSetRequest(uint32_t hot_index, std::string& out) const {
  AppendPolicyRequest({kHotIdBase + hot_index, kHotIdBase + hot_index},
                      kPrimeMessageBase + hot_index, out);
}

void TrafficModel::AppendPolicyRequest(TripletIds triplet, uint64_t message_key,
                                       std::string& out) const {
  Rng origin_rng(KeyOf(seed_, triplet.origin, kSaltOrigin));
  Rng recipient_rng(KeyOf(seed_, triplet.recipient, kSaltRecipient));
  Rng message(KeyOf(seed_, message_key, kSaltMessage));
  Origin o = MakeOrigin(origin_rng);

  out += "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=";
  out += message.Percent(95) ? "ESMTP" : "SMTP";
  out += "\nclient_address=";
  AppendAddress(o, out);
  out += "\nclient_name=";
  AppendClientName(o, out);
  fmt::format_to(Out(out), "\nclient_port={}\nreverse_client_name=", message.Between(1024, 65535));
  AppendReverseClientName(o, out);
  out += o.v6 ? "\nserver_address=2001:db8:25::25" : "\nserver_address=192.0.2.25";
  out += "\nserver_port=25\nhelo_name=";
  AppendHelo(o, out);
  out += "\nsender=";
  AppendSender(o, out);
  out += "\nrecipient=";
  AppendRecipient(triplet.recipient, seed_, recipient_rng, out);
  AppendMessageAttributes(message, out);
}

}  // namespace greylight::bench
