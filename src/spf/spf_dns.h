#pragma once

// What the SPF evaluator asks of DNS and what it is told back: plain data, so the
// evaluator stays free of I/O and a test can answer from a table.

#include <compare>
#include <map>
#include <string>
#include <vector>

#include "policy/ip_address.h"

namespace greylight::spf {

enum class RecordType { kTxt, kA, kAaaa, kMx, kPtr };

// One DNS question. Names are lowercase, without a trailing dot.
struct DnsQuestion {
  std::string name;
  RecordType type = RecordType::kTxt;
  friend auto operator<=>(const DnsQuestion&, const DnsQuestion&) = default;
};

// The answer to one question, as a resolver that follows CNAMEs gives it.
struct DnsAnswer {
  enum class Status {
    kRecords,   // NOERROR with records of the type asked
    kEmpty,     // NOERROR without them
    kNxDomain,  // the name does not exist
    kError,     // SERVFAIL, timeout, malformed: RFC 7208's "DNS error"
  };
  Status status = Status::kError;
  // TXT: one string per record, its character-strings joined. MX: the exchanges ("" for
  // a null MX). PTR: the names.
  std::vector<std::string> texts;
  std::vector<policy::IpAddress> addresses;  // A, AAAA

  bool void_lookup() const { return status == Status::kEmpty || status == Status::kNxDomain; }
};

// The answers known so far to one evaluation's questions.
using DnsAnswers = std::map<DnsQuestion, DnsAnswer>;

}  // namespace greylight::spf
