#pragma once

#include <string>
#include <string_view>

#include "policy/ip_address.h"

namespace greylight::policy {

// How the client part of the triplet key is built (postgrey section 4.4/4.5).
struct KeyOptions {
  static constexpr int kDefaultIpv4Cidr = 24;
  static constexpr int kDefaultIpv6Cidr = 64;

  int ipv4_cidr = kDefaultIpv4Cidr;
  int ipv6_cidr = kDefaultIpv6Cidr;
  bool lookup_by_host = false;  // postgrey --lookup-by-host: no masking, CIDR-style key
  bool privacy = false;         // store SHA-1 hex digests instead of clear keys
};

// postgrey's sender normalisation (compat spec 4.3): BATV tag removal, "+ext" stripping
// and masking of stand-alone digit runs as '#'. Does not lowercase.
std::string NormaliseSender(std::string_view sender);

// The client part of the triplet key: the masked network ("192.0.2.0",
// "2001:DB8:1:2:0:0:0:0") or, with lookup_by_host, "10.0.0.1/32" as postgrey prints it.
std::string ClientNetwork(const IpAddress& client, const KeyOptions& options);

// The triplet key: lowercase "<client network>/<normalised sender>/<recipient>",
// or its SHA-1 hex with privacy.
std::string TripletKey(const IpAddress& client, std::string_view sender, std::string_view recipient,
                       const KeyOptions& options);

// The triplet key with `client_part` (a network, or a lookup-by group key) in front of the
// normalised sender and the recipient: what TripletKey builds from the client's network.
std::string TripletKeyFromClientPart(std::string_view client_part, std::string_view sender,
                                     std::string_view recipient, const KeyOptions& options);

// The client auto-whitelist key: the unmasked address in postgrey's form (IPv6 uppercase,
// not lowercased), or its SHA-1 hex with privacy.
std::string ClientKey(const IpAddress& client, const KeyOptions& options);

}  // namespace greylight::policy
