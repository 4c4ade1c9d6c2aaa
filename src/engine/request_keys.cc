#include "engine/request_keys.h"

#include <fmt/format.h>

#include "policy/reply_key.h"
#include "util/sha1.h"

namespace greylight::engine {

RequestKeys BuildRequestKeys(const policy::IpAddress& client, std::string_view client_name,
                             std::string_view sender, std::string_view recipient,
                             const KeyScheme& scheme, std::string_view spf_domain) {
  RequestKeys keys;
  AssignRequestKeys(keys, client, client_name, sender, recipient, scheme, spf_domain);
  return keys;
}

void AssignRequestKeys(RequestKeys& keys, const policy::IpAddress& client,
                       std::string_view client_name, std::string_view sender,
                       std::string_view recipient, const KeyScheme& scheme,
                       std::string_view spf_domain) {
  policy::AssignClientKey(keys.trap, client, scheme.keys);
  if (sender.empty()) {
    keys.reply.clear();
  } else {
    policy::AssignReplyKey(keys.reply, sender, recipient, scheme.keys);
  }
  keys.group.clear();
  if (!spf_domain.empty()) {
    // Every address the domain authorises is one client, as a domain group is.
    keys.group = fmt::format("{}{}", kSpfKeyPrefix, spf_domain);
    keys.triplet = policy::TripletKeyFromClientPart(keys.group, sender, recipient, scheme.keys);
    keys.client = scheme.keys.privacy ? Sha1Hex(keys.group) : keys.group;
    return;
  }
  if (scheme.lookup_by == reputation::LookupBy::kSubnet ||
      scheme.lookup_by == reputation::LookupBy::kHost || scheme.psl == nullptr) {
    policy::KeyOptions key_options = scheme.keys;
    if (scheme.lookup_by == reputation::LookupBy::kHost) key_options.lookup_by_host = true;
    policy::AssignTripletKey(keys.triplet, client, sender, recipient, key_options);
    keys.client.assign(keys.trap);
    return;
  }
  reputation::ClientGroup group =
      reputation::GroupClient(client, client_name, scheme.lookup_by, scheme.keys, *scheme.psl);
  keys.triplet = reputation::GroupTripletKey(group.key, sender, recipient, scheme.keys);
  keys.client = std::move(group.awl_key);
  keys.group = group.fallback == reputation::Fallback::kNone
                   ? group.key
                   : fmt::format("{} ({})", group.key, reputation::FallbackName(group.fallback));
}

}  // namespace greylight::engine
