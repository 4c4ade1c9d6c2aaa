#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/ip_address.h"

namespace greylight::policy {

// Where a whitelist match came from, for logs and `greylight explain`.
struct WhitelistHit {
  std::string source;  // "<file>:<line>"
  std::string entry;   // the entry as written
};

// The client and recipient whitelists as the decision engine sees them. Implementations
// are immutable once built, so one instance may be shared by all threads; a reload swaps
// in a new instance.
class WhitelistMatcher {
 public:
  virtual ~WhitelistMatcher() = default;
  // postgrey's order: client name patterns first, then client networks.
  virtual std::optional<WhitelistHit> MatchClient(std::string_view client_name,
                                                  const IpAddress& address) const = 0;
  virtual std::optional<WhitelistHit> MatchRecipient(std::string_view recipient) const = 0;
};

}  // namespace greylight::policy
