#pragma once

// The result of an SPF check (RFC 7208 section 2.6), with what greylight needs to know
// about a pass: which domain passed and whether the pass is too broad to stand for one
// sender.

#include <string>
#include <string_view>

namespace greylight::spf {

enum class SpfCode { kNone, kNeutral, kPass, kFail, kSoftFail, kTempError, kPermError };

// RFC 7208's name: "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror".
std::string_view SpfCodeName(SpfCode code);

// A prefix shorter than these authorises a range too wide to stand for one sender: more
// than a /16 of IPv4 (65,536 addresses) or a /32 of IPv6 (a whole provider allocation).
inline constexpr int kNarrowestBroadIpv4Prefix = 16;
inline constexpr int kNarrowestBroadIpv6Prefix = 32;

struct SpfResult {
  SpfCode code = SpfCode::kNone;
  // The domain checked: the MAIL FROM domain, or the HELO name for the null sender;
  // lowercase, without a trailing dot. Empty if it was not a domain name.
  std::string domain;
  // kPass only: the pass came from a mechanism that does not pin the client down to
  // addresses the domain names: "all", "exists" and "ptr" (the domain's owner answers
  // "exists" for any address he likes, and "ptr" trusts the client's own reverse zone),
  // or an ip4/a/mx range wider than a /16 (ip6 and AAAA: a /32). A spammer's
  // "v=spf1 +all" passes, but broadly, so it cannot make a botnet one client.
  bool broad = false;
  // The directive that decided the result, as written ("ip4:192.0.2.0/24"), and the
  // domain whose record holds it (an include's target); empty for the default result.
  std::string mechanism;
  std::string record_domain;
  // kNone, kTempError, kPermError: why, for logs.
  std::string problem;
};

// True if `result` authorises the client as one sender of `result.domain`: a pass that
// is not broad. Only such a result may stand in for the client address in keys.
bool UsablePass(const SpfResult& result);

}  // namespace greylight::spf
