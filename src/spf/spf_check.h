#pragma once

// RFC 7208's check_host(), sans I/O: the evaluator reads DNS answers from a table and,
// when one it needs is missing, stops and names the questions to ask. The caller asks
// them (a fake resolver in tests, c-ares in the daemon: reputation/spf_checker.h), adds
// the answers and calls again; the evaluation starts over and gets further each time,
// so it is a pure function of the request and the answers.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/ip_address.h"
#include "spf/spf_dns.h"
#include "spf/spf_result.h"

namespace greylight::spf {

// RFC 7208 section 4.6.4's processing limits.
inline constexpr int kMaxDnsTerms = 10;     // include, a, mx, ptr, exists, redirect
inline constexpr int kMaxVoidLookups = 2;   // terms whose lookup found nothing
inline constexpr size_t kMaxMxNames = 10;   // more is a permerror
inline constexpr size_t kMaxPtrNames = 10;  // the rest are ignored

// The identity to check (RFC 7208 section 2.4 and 4.1).
struct SpfRequest {
  policy::IpAddress ip;  // the client; an IPv4-mapped IPv6 address counts as IPv4
  std::string domain;    // <domain>: the sender's domain, or the HELO name
  std::string sender;    // <sender>: "local-part@domain"
  std::string helo;      // the HELO/EHLO name, for the "h" macro

  // The MAIL FROM identity: the domain of `mail_from`, with "postmaster" for an empty
  // local part; for the null sender (empty `mail_from`), "postmaster@" the HELO name.
  static SpfRequest ForMailFrom(const policy::IpAddress& ip, std::string_view mail_from,
                                std::string_view helo);
};

// One step of an evaluation: the result, or the questions whose answers it needs next.
struct SpfStep {
  std::optional<SpfResult> result;
  std::vector<DnsQuestion> questions;  // when !result: distinct, none in the answers
};

// Evaluates check_host(request.ip, request.domain, request.sender) as far as `answers`
// allow. Deterministic; no I/O. Each call that returns questions needs at least one new
// answer, and the RFC's limits bound the questions an evaluation can ask.
SpfStep CheckHost(const SpfRequest& request, const DnsAnswers& answers);

}  // namespace greylight::spf
