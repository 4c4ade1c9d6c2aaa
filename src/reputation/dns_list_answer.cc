#include "reputation/dns_list_answer.h"

#include <algorithm>

namespace greylight::reputation {

ListAnswer ListAnswerFrom(const DnsRecords& records) {
  ListAnswer answer;
  answer.ttl = records.ttl;
  switch (records.kind) {
    case DnsRecords::Kind::kFound:
      answer.kind = ListAnswer::Kind::kListed;
      for (const policy::IpAddress& address : records.addresses) {
        if (address.is_v6) continue;  // an A query's answer holds A records only
        std::array<uint8_t, 4> octets;
        std::copy_n(address.bytes.begin(), 4, octets.begin());
        answer.addresses.push_back(octets);
      }
      if (answer.addresses.empty()) answer.kind = ListAnswer::Kind::kNotListed;
      break;
    case DnsRecords::Kind::kEmpty:
    case DnsRecords::Kind::kNxDomain:
      answer.kind = ListAnswer::Kind::kNotListed;
      break;
    case DnsRecords::Kind::kFailed:
      answer.kind = ListAnswer::Kind::kFailed;
      answer.ttl = Seconds(0);
      answer.error = records.error;
      break;
  }
  return answer;
}

ListAnswer ParseListResponse(std::span<const uint8_t> message, Seconds default_negative_ttl) {
  return ListAnswerFrom(ReadRecords(DnsType::kA, message, default_negative_ttl));
}

}  // namespace greylight::reputation
