#pragma once

// SPF records (RFC 7208 sections 4.5, 4.6 and 12): which TXT records are SPF records,
// and the grammar of one, checked whole before anything is evaluated. No I/O.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/ip_address.h"
#include "spf/spf_macro.h"
#include "util/status.h"

namespace greylight::spf {

// True if `txt` is an SPF version 1 record: "v=spf1" (any case) alone or followed by a
// space.
bool IsSpfRecord(std::string_view txt);

enum class Mechanism { kAll, kInclude, kA, kMx, kPtr, kIp4, kIp6, kExists };

struct Directive {
  char qualifier = '+';  // '+' pass, '-' fail, '~' softfail, '?' neutral
  Mechanism mechanism = Mechanism::kAll;
  // include, exists: required; a, mx, ptr: optional (the current domain otherwise).
  std::optional<MacroString> domain;
  // a, mx: the dual CIDR lengths; ip4: ipv4_prefix; ip6: ipv6_prefix.
  int ipv4_prefix = 32;
  int ipv6_prefix = 128;
  policy::IpAddress network;  // ip4, ip6
  std::string text;           // the term as written, without its qualifier
};

struct SpfRecord {
  std::vector<Directive> directives;  // in order
  std::optional<MacroString> redirect;
  // Parsed so that a malformed one is a permerror; greylight never fetches explanations.
  std::optional<MacroString> explanation;

  // Parses a whole record ("v=spf1 ..."). Fails, with a message for logs, on anything
  // RFC 7208 makes a permerror at parse time: an unknown mechanism, a bad domain-spec,
  // address or CIDR length, a malformed modifier, redirect or exp twice, a character
  // outside 7-bit ASCII.
  static Result<SpfRecord> Parse(std::string_view text);
};

}  // namespace greylight::spf
