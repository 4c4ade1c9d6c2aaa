#pragma once

#include <string>
#include <string_view>

#include "policy/ip_address.h"
#include "policy/triplet_key.h"
#include "reputation/client_group.h"

namespace greylight::engine {

// How a request's store keys are built: postgrey's key options and the --lookup-by mode.
struct KeyScheme {
  policy::KeyOptions keys;
  reputation::LookupBy lookup_by = reputation::LookupBy::kSubnet;
  // The public suffix list, required by the domain modes; without one they key by subnet.
  const reputation::Psl* psl = nullptr;
};

// The store keys of one request. The daemon and the greylight tool both build them here,
// so `greylight explain` and friends find exactly the records greylightd writes.
struct RequestKeys {
  std::string triplet;
  std::string client;  // the client auto-whitelist key (per group in the domain modes)
  // The greytrap-list key: always the client's own address (policy::ClientKey), never its
  // group, so one trap hit through a big provider does not trap the whole provider.
  std::string trap;
  // Domain modes: the group key the triplet used, and why it fell back to the subnet if it
  // did ("203.0.113.0 (unverified)"), for the logs. Empty in the subnet and host modes.
  std::string group;
  // The reply-tracking key of (sender, recipient) (policy::ReplyKey); empty for the null
  // sender, which is never a reply.
  std::string reply;
};

RequestKeys BuildRequestKeys(const policy::IpAddress& client, std::string_view client_name,
                             std::string_view sender, std::string_view recipient,
                             const KeyScheme& scheme);

}  // namespace greylight::engine
