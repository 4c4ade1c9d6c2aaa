#include "spf/spf_record.h"

#include <algorithm>
#include "util/ascii.h"

namespace greylight::spf {
namespace {

constexpr std::string_view kVersion = "v=spf1";

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return AsciiLower(x) == AsciiLower(y);
         });
}

// A CIDR length: "0", or digits without a leading zero, at most `max`.
std::optional<int> PrefixLength(std::string_view digits, int max) {
  if (digits.empty() || digits.size() > 3 || !std::all_of(digits.begin(), digits.end(), IsDigit)) {
    return std::nullopt;
  }
  if (digits.size() > 1 && digits.front() == '0') return std::nullopt;
  int value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  if (value > max) return std::nullopt;
  return value;
}

// ip4-network: four qnums, each 0-255 without leading zeros.
std::optional<policy::IpAddress> Ip4Network(std::string_view text) {
  policy::IpAddress address;
  for (int octet = 0; octet < 4; ++octet) {
    const size_t dot = octet < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos) return std::nullopt;
    auto value = PrefixLength(text.substr(0, dot), 255);
    if (!value) return std::nullopt;
    address.bytes[static_cast<size_t>(octet)] = static_cast<uint8_t>(*value);
    text = octet < 3 ? text.substr(dot + 1) : std::string_view();
  }
  return address;
}

// The part after a mechanism's name: "" or ":domain-spec", with dual CIDR lengths for
// a and mx ("/24", "//64", "/24//64").
struct Argument {
  std::optional<MacroString> domain;
  int ipv4_prefix = 32;
  int ipv6_prefix = 128;
};

std::optional<MacroString> DomainSpec(std::string_view text) {
  auto spec = MacroString::Parse(text, MacroString::Letters::kDomainSpec);
  if (!spec || !spec->IsDomainSpec()) return std::nullopt;
  return spec;
}

// Cuts a trailing "/digits" from `rest`; nullopt if the digits are not a CIDR length.
bool CutPrefix(std::string_view& rest, std::string_view slashes, int max, int& prefix) {
  const size_t at = rest.rfind(slashes);
  if (at == std::string_view::npos) return true;
  std::string_view digits = rest.substr(at + slashes.size());
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), IsDigit)) return true;
  if (slashes.size() == 1 && at > 0 && rest[at - 1] == '/') return true;  // part of "//"
  auto value = PrefixLength(digits, max);
  if (!value) return false;
  prefix = *value;
  rest = rest.substr(0, at);
  return true;
}

std::optional<Argument> DomainArgument(std::string_view rest, bool dual_cidr, bool required) {
  Argument argument;
  if (dual_cidr) {
    if (!CutPrefix(rest, "//", 128, argument.ipv6_prefix)) return std::nullopt;
    if (!CutPrefix(rest, "/", 32, argument.ipv4_prefix)) return std::nullopt;
  }
  if (rest.empty()) {
    if (required) return std::nullopt;
    return argument;
  }
  if (rest.front() != ':') return std::nullopt;
  argument.domain = DomainSpec(rest.substr(1));
  if (!argument.domain) return std::nullopt;
  return argument;
}

Result<Directive> ParseDirective(std::string_view term) {
  Directive directive;
  if (std::string_view("+-~?").find(term.front()) != std::string_view::npos) {
    directive.qualifier = term.front();
    term.remove_prefix(1);
  }
  directive.text = std::string(term);
  const size_t name_end = std::min(term.find(':'), term.find('/'));
  const std::string_view name = term.substr(0, name_end);
  const std::string_view rest = name_end == std::string_view::npos ? "" : term.substr(name_end);
  auto bad = [&] { return Status::InvalidArgument("bad mechanism '" + std::string(term) + "'"); };

  if (EqualsIgnoringCase(name, "all")) {
    if (!rest.empty()) return bad();
    directive.mechanism = Mechanism::kAll;
  } else if (EqualsIgnoringCase(name, "include") || EqualsIgnoringCase(name, "exists")) {
    directive.mechanism =
        EqualsIgnoringCase(name, "include") ? Mechanism::kInclude : Mechanism::kExists;
    auto argument = DomainArgument(rest, false, true);
    if (!argument) return bad();
    directive.domain = std::move(argument->domain);
  } else if (EqualsIgnoringCase(name, "a") || EqualsIgnoringCase(name, "mx") ||
             EqualsIgnoringCase(name, "ptr")) {
    const bool ptr = EqualsIgnoringCase(name, "ptr");
    directive.mechanism = ptr                             ? Mechanism::kPtr
                          : EqualsIgnoringCase(name, "a") ? Mechanism::kA
                                                          : Mechanism::kMx;
    auto argument = DomainArgument(rest, !ptr, false);
    if (!argument) return bad();
    directive.domain = std::move(argument->domain);
    directive.ipv4_prefix = argument->ipv4_prefix;
    directive.ipv6_prefix = argument->ipv6_prefix;
  } else if (EqualsIgnoringCase(name, "ip4") || EqualsIgnoringCase(name, "ip6")) {
    const bool v6 = EqualsIgnoringCase(name, "ip6");
    directive.mechanism = v6 ? Mechanism::kIp6 : Mechanism::kIp4;
    // ip6 addresses hold colons: the network runs from the first ':' to the first '/'.
    const size_t colon = term.find(':');
    if (colon != name.size()) return bad();
    std::string_view network = term.substr(colon + 1);
    const size_t slash = network.find('/');
    if (slash != std::string_view::npos) {
      auto prefix = PrefixLength(network.substr(slash + 1), v6 ? 128 : 32);
      if (!prefix) return bad();
      (v6 ? directive.ipv6_prefix : directive.ipv4_prefix) = *prefix;
      network = network.substr(0, slash);
    }
    std::optional<policy::IpAddress> address;
    if (v6) {
      address = policy::IpAddress::Parse(network);
      if (address && !address->is_v6) address.reset();
    } else {
      address = Ip4Network(network);
    }
    if (!address) return bad();
    directive.network = *address;
  } else {
    return Status::InvalidArgument("unknown mechanism '" + std::string(term) + "'");
  }
  return directive;
}

// name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
bool IsModifierName(std::string_view name) {
  return !name.empty() && IsAlpha(name.front()) &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return IsAlpha(c) || IsDigit(c) || c == '-' || c == '_' || c == '.';
         });
}

}  // namespace

bool IsSpfRecord(std::string_view txt) {
  return txt.size() >= kVersion.size() &&
         EqualsIgnoringCase(txt.substr(0, kVersion.size()), kVersion) &&
         (txt.size() == kVersion.size() || txt[kVersion.size()] == ' ');
}

Result<SpfRecord> SpfRecord::Parse(std::string_view text) {
  if (!IsSpfRecord(text)) return Status::InvalidArgument("not an SPF record");
  if (std::any_of(text.begin(), text.end(), [](char c) { return (c & 0x80) != 0; })) {
    return Status::InvalidArgument("record is not 7-bit ASCII");
  }
  SpfRecord record;
  std::string_view terms = text.substr(kVersion.size());
  while (!terms.empty()) {
    const size_t start = terms.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    terms.remove_prefix(start);
    const size_t end = terms.find(' ');
    const std::string_view term = terms.substr(0, end);
    terms = end == std::string_view::npos ? std::string_view() : terms.substr(end);

    // A modifier has '=' right after its name, before any ':' or '/' (section 4.6.1).
    const size_t equals = term.find('=');
    if (equals != std::string_view::npos && equals < term.find(':') && equals < term.find('/')) {
      const std::string_view name = term.substr(0, equals);
      const std::string_view value = term.substr(equals + 1);
      if (!IsModifierName(name)) {
        return Status::InvalidArgument("bad modifier '" + std::string(term) + "'");
      }
      const bool redirect = EqualsIgnoringCase(name, "redirect");
      if (redirect || EqualsIgnoringCase(name, "exp")) {
        std::optional<MacroString>& slot = redirect ? record.redirect : record.explanation;
        if (slot) return Status::InvalidArgument(std::string(name) + "= appears twice");
        slot = DomainSpec(value);
        if (!slot) return Status::InvalidArgument("bad modifier '" + std::string(term) + "'");
      } else if (!MacroString::Parse(value, MacroString::Letters::kAll)) {
        return Status::InvalidArgument("bad modifier '" + std::string(term) + "'");
      }
      continue;
    }
    auto directive = ParseDirective(term);
    if (!directive.ok()) return directive.status();
    record.directives.push_back(std::move(directive.value()));
  }
  return record;
}

}  // namespace greylight::spf
