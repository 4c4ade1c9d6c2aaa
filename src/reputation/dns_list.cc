#include "reputation/dns_list.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>
#include "util/ascii.h"

namespace greylight::reputation {
namespace {

constexpr size_t kMaxZoneLength = 200;  // leaves room for the 64-character IPv6 prefix

bool ValidZone(std::string_view zone) {
  if (zone.empty() || zone.size() > kMaxZoneLength) return false;
  size_t label = 0;
  for (char c : zone) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!allowed || ++label > 63) return false;
  }
  return label > 0;
}

std::optional<unsigned> ParseNumber(std::string_view text, unsigned max) {
  unsigned value = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

// One octet of a code pattern: "2", "[2..11]", "[2;4;10..11]".
std::optional<std::bitset<256>> ParseOctet(std::string_view text) {
  std::bitset<256> set;
  if (auto value = ParseNumber(text, 255)) {
    set.set(*value);
    return set;
  }
  if (text.size() < 3 || text.front() != '[' || text.back() != ']') return std::nullopt;
  text = text.substr(1, text.size() - 2);
  while (true) {
    size_t semicolon = text.find(';');
    std::string_view item = text.substr(0, semicolon);
    size_t dots = item.find("..");
    if (dots == std::string_view::npos) {
      auto value = ParseNumber(item, 255);
      if (!value) return std::nullopt;
      set.set(*value);
    } else {
      auto low = ParseNumber(item.substr(0, dots), 255);
      auto high = ParseNumber(item.substr(dots + 2), 255);
      if (!low || !high || *low > *high) return std::nullopt;
      for (unsigned v = *low; v <= *high; ++v) set.set(v);
    }
    if (semicolon == std::string_view::npos) return set;
    text = text.substr(semicolon + 1);
  }
}

std::optional<CodePattern> ParseCodePattern(std::string_view text) {
  CodePattern pattern;
  size_t slash = text.find('/');
  if (slash != std::string_view::npos) {
    auto prefix = ParseNumber(text.substr(slash + 1), 32);
    auto network = policy::IpAddress::Parse(text.substr(0, slash));
    if (!prefix || !network || network->is_v6) return std::nullopt;
    for (int i = 0; i < 4; ++i) {
      const int bits_here = std::clamp(static_cast<int>(*prefix) - 8 * i, 0, 8);
      const unsigned mask = bits_here == 0 ? 0 : (0xFFu << (8 - bits_here)) & 0xFFu;
      const unsigned low = network->bytes[static_cast<size_t>(i)] & mask;
      const unsigned high = low | (~mask & 0xFFu);
      for (unsigned v = low; v <= high; ++v) pattern.octets[static_cast<size_t>(i)].set(v);
    }
    return pattern;
  }
  // Split on the dots outside brackets.
  size_t octet = 0;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size()) {
      if (text[i] == '[') ++depth;
      if (text[i] == ']') --depth;
      if (text[i] != '.' || depth != 0) continue;
    }
    if (octet >= 4) return std::nullopt;
    auto set = ParseOctet(text.substr(start, i - start));
    if (!set) return std::nullopt;
    pattern.octets[octet++] = *set;
    start = i + 1;
  }
  if (octet != 4) return std::nullopt;
  return pattern;
}

// 127.0.0.0/8 without 127.255.255.0/24 (see DnsList).
std::vector<CodePattern> DefaultCodes() {
  CodePattern lower;  // 127.[0..254].*.*
  lower.octets[0].set(127);
  for (unsigned v = 0; v <= 254; ++v) lower.octets[1].set(v);
  lower.octets[2].set();
  lower.octets[3].set();
  CodePattern upper;  // 127.255.[0..254].*
  upper.octets[0].set(127);
  upper.octets[1].set(255);
  for (unsigned v = 0; v <= 254; ++v) upper.octets[2].set(v);
  upper.octets[3].set();
  return {lower, upper};
}

}  // namespace

std::string_view ListKindName(ListKind kind) {
  return kind == ListKind::kAllow ? "dnswl" : "dnsbl";
}

bool CodePattern::Matches(const std::array<uint8_t, 4>& answer) const {
  for (size_t i = 0; i < 4; ++i) {
    if (!octets[i].test(answer[i])) return false;
  }
  return true;
}

Result<DnsList> DnsList::Parse(ListKind kind, std::string_view spec) {
  DnsList list;
  list.kind = kind;
  list.spec = std::string(spec);
  auto error = [&](std::string_view why) {
    return Status::InvalidArgument("--" + std::string(ListKindName(kind)) + " " +
                                   std::string(spec) + ": " + std::string(why));
  };
  size_t equals = spec.find('=');
  std::string_view zone = spec.substr(0, equals);
  if (zone.ends_with('.')) zone.remove_suffix(1);
  list.zone.reserve(zone.size());
  for (char c : zone) list.zone.push_back(AsciiLower(c));
  if (!ValidZone(list.zone)) return error("not a valid DNS zone name");
  if (equals == std::string_view::npos) {
    list.codes = DefaultCodes();
    return list;
  }
  std::string_view codes = spec.substr(equals + 1);
  if (codes.empty()) return error("no codes after '='");
  // Commas separate patterns; a comma inside brackets would be a typo for ';'.
  while (true) {
    size_t comma = codes.find(',');
    std::string_view item = codes.substr(0, comma);
    auto pattern = ParseCodePattern(item);
    if (!pattern) {
      return error("bad code '" + std::string(item) +
                   "' (want 127.0.0.2, 127.0.0.[2..11], 127.0.[0;1].[2;4..7] or 127.0.0.0/24)");
    }
    list.codes.push_back(*pattern);
    if (comma == std::string_view::npos) break;
    codes = codes.substr(comma + 1);
  }
  return list;
}

bool DnsList::Accepts(const std::array<uint8_t, 4>& answer) const {
  return std::any_of(codes.begin(), codes.end(),
                     [&](const CodePattern& pattern) { return pattern.Matches(answer); });
}

std::string ListQueryName(const policy::IpAddress& client, std::string_view zone) {
  const auto& b = client.bytes;
  const bool mapped_v4 = client.is_v6 &&
                         std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; }) &&
                         b[10] == 0xFF && b[11] == 0xFF;
  std::string name;
  if (!client.is_v6 || mapped_v4) {
    const size_t at = mapped_v4 ? 12 : 0;
    char buffer[20];
    std::snprintf(buffer, sizeof buffer, "%u.%u.%u.%u.", b[at + 3], b[at + 2], b[at + 1], b[at]);
    name = buffer;
  } else {
    static constexpr char kHexDigits[] = "0123456789abcdef";
    name.reserve(64 + zone.size());
    for (size_t i = 16; i-- > 0;) {
      name.push_back(kHexDigits[b[i] & 0xF]);
      name.push_back('.');
      name.push_back(kHexDigits[b[i] >> 4]);
      name.push_back('.');
    }
  }
  name.append(zone);
  return name;
}

std::string AddressText(const std::array<uint8_t, 4>& a) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
  return buffer;
}

}  // namespace greylight::reputation
