#include "engine/request_keys.h"

#include <fmt/format.h>

#include "policy/reply_key.h"

namespace greylight::engine {

RequestKeys BuildRequestKeys(const policy::IpAddress& client, std::string_view client_name,
                             std::string_view sender, std::string_view recipient,
                             const KeyScheme& scheme) {
  RequestKeys keys;
  keys.trap = policy::ClientKey(client, scheme.keys);
  if (!sender.empty()) keys.reply = policy::ReplyKey(sender, recipient, scheme.keys);
  if (scheme.lookup_by == reputation::LookupBy::kSubnet ||
      scheme.lookup_by == reputation::LookupBy::kHost || scheme.psl == nullptr) {
    policy::KeyOptions key_options = scheme.keys;
    if (scheme.lookup_by == reputation::LookupBy::kHost) key_options.lookup_by_host = true;
    keys.triplet = policy::TripletKey(client, sender, recipient, key_options);
    keys.client = keys.trap;
    return keys;
  }
  reputation::ClientGroup group =
      reputation::GroupClient(client, client_name, scheme.lookup_by, scheme.keys, *scheme.psl);
  keys.triplet = reputation::GroupTripletKey(group.key, sender, recipient, scheme.keys);
  keys.client = std::move(group.awl_key);
  keys.group = group.fallback == reputation::Fallback::kNone
                   ? group.key
                   : fmt::format("{} ({})", group.key, reputation::FallbackName(group.fallback));
  return keys;
}

}  // namespace greylight::engine
