#pragma once

// The meaning of one DNS response to a list query (listed, not listed, failed). No I/O.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "reputation/dns_records.h"
#include "util/clock.h"

namespace greylight::reputation {

struct ListAnswer {
  enum class Kind { kListed, kNotListed, kFailed };
  Kind kind = Kind::kFailed;
  std::vector<std::array<uint8_t, 4>> addresses;  // kListed: the A records
  Seconds ttl{0};                                 // how long the answer may be cached (kFailed: 0)
  std::string error;                              // kFailed: why
};

// The list answer an A query's records give: A records are kListed (TTL: the smallest of
// theirs), NXDOMAIN or NOERROR without A records kNotListed (TTL: the negative TTL),
// anything else kFailed with the records' error.
ListAnswer ListAnswerFrom(const DnsRecords& records);

// Reads a complete DNS response message to a list query: ReadRecords (dns_records.h)
// for type A, then ListAnswerFrom. Never reads outside `message`. Pure; thread-safe.
ListAnswer ParseListResponse(std::span<const uint8_t> message, Seconds default_negative_ttl);

}  // namespace greylight::reputation
