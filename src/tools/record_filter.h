#pragma once

// Reading stored records back into their parts, and the filters of `greylight list`.
//
// A triplet key is "<client network>/<normalised sender>/<recipient>", lowercased
// (compat spec 4.4, 4.5, 8.2); with --lookup-by-host the network carries postgrey's
// "/32" or "/128" suffix, and with --lookup-by=domain|smart the client part of a client
// grouped by its domain is "domain:<registrable domain>" (reputation/client_group.h).
// With --privacy keys are SHA-1 digests and cannot be read back.

#include <optional>
#include <string>
#include <string_view>

#include "policy/greylist_state.h"
#include "policy/ip_address.h"
#include "policy/records.h"
#include "policy/triplet_key.h"
#include "util/status.h"

namespace greylight::tools {

// The codec of policy/records.h by record type, for code generic over the tables:
// DecodeRecord<policy::TrapRecord>(value) is policy::DecodeTrap(value).
template <typename Record>
std::optional<Record> DecodeRecord(std::string_view value);
template <>
std::optional<policy::TripletRecord> DecodeRecord(std::string_view value);
template <>
std::optional<policy::ClientRecord> DecodeRecord(std::string_view value);
template <>
std::optional<policy::TrapRecord> DecodeRecord(std::string_view value);
template <>
std::optional<policy::ReplyRecord> DecodeRecord(std::string_view value);

// The parts of a clear reply key (policy::ReplyKey): "<remote address>/<local user>".
struct ReplyFields {
  std::string remote;  // normalised as a sender, lowercased
  std::string local;   // lowercased
};
// Splits a clear reply key at its last '/' (the local user is one of the site's own
// addresses, as a triplet's recipient is). nullopt for a key without '/' (a --privacy
// digest).
std::optional<ReplyFields> ParseReplyKey(std::string_view key);

// The parts of a clear triplet key.
struct TripletFields {
  // The client part as stored ("192.0.2.0", "10.0.0.1/32", "domain:example.net").
  std::string client;
  std::optional<policy::IpAddress> network;  // its address; absent for a domain group
  int prefix_length = 0;                     // the bits of `network` the key keeps
  std::string sender;                        // normalised and lowercased; empty for the null sender
  std::string recipient;                     // lowercased
};

// Splits a clear triplet key. The prefix length is the one of postgrey's "/32" or
// "/128" suffix (--lookup-by-host keys), else the --ipv4cidr/--ipv6cidr of `options`.
// Both addresses may contain '/', so the split is ambiguous in theory; the recipient is
// taken to be the part after the last '/', as recipients are the site's own addresses.
// A domain group key's client part ("domain:", "spf:") ends at the first '/' (a domain
// name has none).
// Returns nullopt for keys that start with neither an IP address nor a domain group (e.g.
// --privacy digests).
std::optional<TripletFields> ParseTripletKey(std::string_view key,
                                             const policy::KeyOptions& options);

// Whether a triplet has had its first accepted delivery (postgrey's last_was_successful:
// last - first >= delay).
enum class TripletState { kPending, kPassed };
TripletState StateOf(const policy::TripletRecord& record, const policy::GreylistTiming& timing);
std::string_view StateName(TripletState state);

// The sender part of a key for a sender as written by a user: "<>" or empty is the null
// sender; otherwise postgrey's normalisation, then lowercased, as TripletKey does.
std::string SenderKeyPart(std::string_view sender);
// The recipient part of a key: the recipient lowercased (recipients are not normalised).
std::string RecipientKeyPart(std::string_view recipient);

// Parses "192.0.2.10", "192.0.2.0/24", "2001:db8::/32" (policy::ParseNetwork). Errors
// name `option`.
Result<policy::Network> ParseNetworkOption(std::string_view option, std::string_view text);

// The filters of `greylight list` for triplets. Empty members match everything.
struct TripletFilter {
  std::optional<policy::Network> client;
  std::optional<std::string> sender;     // as SenderKeyPart() returns it
  std::optional<std::string> recipient;  // lowercased
  std::optional<TripletState> state;

  // True if a filter needs the key's parts (client, sender or recipient).
  bool NeedsClearKeys() const { return client || sender || recipient; }
  // `fields` is nullptr for keys that could not be parsed; they match only filters that
  // do not need clear keys. Domain groups match no client network.
  bool Matches(const TripletFields* fields, TripletState record_state) const;
};

}  // namespace greylight::tools
