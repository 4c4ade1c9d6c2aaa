#pragma once

// What one DNS response says, read with c-ares' own parsers (ares_parse_a_reply,
// ares_parse_aaaa_reply, ares_parse_txt_reply_ext, ares_parse_mx_reply,
// ares_parse_ptr_reply). No I/O.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/ip_address.h"
#include "util/clock.h"

namespace greylight::reputation {

// The record types greylight asks for.
enum class DnsType : uint16_t { kA = 1, kPtr = 12, kMx = 15, kTxt = 16, kAaaa = 28 };
std::string_view DnsTypeName(DnsType type);  // "A", "PTR", ...

// The answer to one query.
struct DnsRecords {
  enum class Kind {
    kFound,     // NOERROR with records of the type asked
    kEmpty,     // NOERROR without them (NODATA)
    kNxDomain,  // the name does not exist
    kFailed,    // no usable answer: timeout, SERVFAIL, REFUSED, malformed, shut down...
  };
  Kind kind = Kind::kFailed;
  std::vector<policy::IpAddress> addresses;  // A, AAAA
  // TXT: one string per record, its character-strings joined without separator
  // (RFC 7208 section 3.3). MX: the exchanges, in the order received (preferences are
  // not kept: nobody here delivers mail). PTR: the names.
  std::vector<std::string> texts;
  // How long the answer may be cached: kFound, the smallest TTL of the answer records;
  // kEmpty and kNxDomain, the negative TTL (RFC 2308: min(TTL, MINIMUM) of the SOA in the
  // authority section, else the default); kFailed, 0.
  Seconds ttl{0};
  std::string error;  // kFailed: why, for logs ("SERVFAIL", "timeout", "malformed answer")

  // A failed answer saying `why`.
  static DnsRecords Failed(std::string why);
};

// Reads a complete DNS response message to a query of `type`. An rcode other than
// NOERROR and NXDOMAIN is kFailed, named ("SERVFAIL", "REFUSED", "rcode 9"); a message
// that is not a response (QR clear), is truncated, or holds a name c-ares cannot decode
// or an A/AAAA/SOA record of the wrong size is kFailed "malformed answer". Never reads
// outside `message`. A TTL with the top bit set counts as 0 (RFC 2181 section 8). Pure;
// thread-safe.
DnsRecords ReadRecords(DnsType type, std::span<const uint8_t> message,
                       Seconds default_negative_ttl);

}  // namespace greylight::reputation
