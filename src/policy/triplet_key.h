#pragma once

#include <optional>
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
  // Key an SRS-rewritten sender by the original sender it carries (SrsOriginalSender).
  // Off in postgrey's modes (--lookup-by=subnet|host without --spf-keys), whose keys stay
  // byte-identical to postgrey's; on in the domain modes and with --spf-keys.
  bool decode_srs = false;
};

// postgrey's sender normalisation (compat spec 4.3): BATV tag removal, "+ext" stripping
// and masking of stand-alone digit runs as '#'. Does not lowercase. With `decode_srs`, an
// SRS address is first replaced by its original sender (SrsOriginalSender), which is then
// normalised the same way.
std::string NormaliseSender(std::string_view sender, bool decode_srs = false);
// NormaliseSender appended to `out`: the key builders' path, without a string of its own.
void AppendNormalisedSender(std::string& out, std::string_view sender, bool decode_srs = false);

// The original sender carried by a Sender Rewriting Scheme address, or nullopt if `sender`
// is not one. A forwarder rewrites the envelope sender so that SPF checks its own domain:
//   SRS0=HHH=TT=orig.example=user@fwd.example                -> user@orig.example
//   SRS1=HHH=fwd.example==HHH=TT=orig.example=user@fwd2.example -> user@orig.example
// (SRS1: a second forwarder's rewrite of an SRS0 address, naming the first forwarder.)
// The tag "SRS0"/"SRS1" is matched in any case and followed by '=', '+' or '-' (the
// separators libsrs2 and postsrsd accept); HHH is a hash of base64 characters, TT a
// two-character timestamp, the original domain must be non-empty and free of '@' and
// '=', the original local part non-empty (it may contain '='). The hash is not verified:
// that needs the forwarder's secret, and the triplet's sender is the client's word anyway.
// Pure.
std::optional<std::string> SrsOriginalSender(std::string_view sender);

// The client part of the triplet key: the masked network ("192.0.2.0",
// "2001:DB8:1:2:0:0:0:0") or, with lookup_by_host, "10.0.0.1/32" as postgrey prints it.
std::string ClientNetwork(const IpAddress& client, const KeyOptions& options);

// The triplet key: lowercase "<client network>/<normalised sender>/<recipient>",
// or its SHA-1 hex with privacy.
std::string TripletKey(const IpAddress& client, std::string_view sender, std::string_view recipient,
                       const KeyOptions& options);
// TripletKey into `key`, whose buffer is reused (the engine builds keys on every request).
void AssignTripletKey(std::string& key, const IpAddress& client, std::string_view sender,
                      std::string_view recipient, const KeyOptions& options);

// The triplet key with `client_part` (a network, or a lookup-by group key) in front of the
// normalised sender and the recipient: what TripletKey builds from the client's network.
std::string TripletKeyFromClientPart(std::string_view client_part, std::string_view sender,
                                     std::string_view recipient, const KeyOptions& options);

// The client auto-whitelist key: the unmasked address in postgrey's form (IPv6 uppercase,
// not lowercased), or its SHA-1 hex with privacy.
std::string ClientKey(const IpAddress& client, const KeyOptions& options);
// ClientKey into `key`, whose buffer is reused.
void AssignClientKey(std::string& key, const IpAddress& client, const KeyOptions& options);

}  // namespace greylight::policy
