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

// The prefix of the client part of SPF-keyed triplets and auto-whitelist records
// (--spf-keys): "spf:example.com". An address key never contains it, nor does a domain
// group key ("domain:"), so the forms cannot collide.
inline constexpr std::string_view kSpfKeyPrefix = "spf:";

// The store keys of one request. The daemon and the greylight tool both build them here,
// so `greylight explain` and friends find exactly the records greylightd writes.
struct RequestKeys {
  std::string triplet;
  std::string client;  // the client auto-whitelist key (per group in the domain modes)
  // The greytrap-list key: always the client's own address (policy::ClientKey), never its
  // group, so one trap hit through a big provider does not trap the whole provider.
  std::string trap;
  // The client part of the keys when it is not the client's own network or address, for
  // the logs: the SPF domain ("spf:example.com"), or in the domain modes the group
  // ("domain:google.com") and why it fell back to the subnet if it did
  // ("203.0.113.0 (unverified)"). Empty in the subnet and host modes without an SPF key.
  std::string group;
  // The reply-tracking key of (sender, recipient) (policy::ReplyKey); empty for the null
  // sender, which is never a reply.
  std::string reply;
};

// The keys of a request from `client` (verified name `client_name`) for `sender` and
// `recipient`. `spf_domain`, when not empty, is a domain that authorises the client
// (--spf-keys and spf::UsablePass: lowercase, a valid domain name): the client part of the
// triplet and auto-whitelist keys is then "spf:<spf_domain>" whatever the --lookup-by mode;
// otherwise the mode's key. The trap key is the client's own address either way.
RequestKeys BuildRequestKeys(const policy::IpAddress& client, std::string_view client_name,
                             std::string_view sender, std::string_view recipient,
                             const KeyScheme& scheme, std::string_view spf_domain = {});
// BuildRequestKeys into `keys`, every field set, their buffers reused: the daemon's path,
// which builds keys on every request.
void AssignRequestKeys(RequestKeys& keys, const policy::IpAddress& client,
                       std::string_view client_name, std::string_view sender,
                       std::string_view recipient, const KeyScheme& scheme,
                       std::string_view spf_domain = {});

}  // namespace greylight::engine
