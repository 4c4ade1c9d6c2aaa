#include "tools/record_filter.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "engine/request_keys.h"
#include "reputation/client_group.h"
#include "util/ascii.h"

namespace greylight::tools {
namespace {}  // namespace

template <>
std::optional<policy::TripletRecord> DecodeRecord(std::string_view value) {
  return policy::DecodeTriplet(value);
}
template <>
std::optional<policy::ClientRecord> DecodeRecord(std::string_view value) {
  return policy::DecodeClient(value);
}
template <>
std::optional<policy::TrapRecord> DecodeRecord(std::string_view value) {
  return policy::DecodeTrap(value);
}

template <>
std::optional<policy::ReplyRecord> DecodeRecord(std::string_view value) {
  return policy::DecodeReply(value);
}

std::optional<ReplyFields> ParseReplyKey(std::string_view key) {
  size_t slash = key.rfind('/');
  if (slash == std::string_view::npos) return std::nullopt;
  return ReplyFields{std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

std::optional<TripletFields> ParseTripletKey(std::string_view key,
                                             const policy::KeyOptions& options) {
  size_t slash = key.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  TripletFields fields;
  size_t client_length = slash;
  std::string_view rest = key.substr(slash + 1);
  if (!key.starts_with(reputation::kDomainKeyPrefix) && !key.starts_with(engine::kSpfKeyPrefix)) {
    std::optional<policy::IpAddress> address = policy::IpAddress::Parse(key.substr(0, slash));
    if (!address) return std::nullopt;
    fields.network = *address;
    fields.prefix_length = address->is_v6 ? options.ipv6_cidr : options.ipv4_cidr;
    // --lookup-by-host keys: postgrey printed the address object as CIDR, "/32" or "/128".
    // A sender that is literally "32" (no '@') would be misread; real senders have a domain.
    std::string_view host_suffix = address->is_v6 ? "128/" : "32/";
    if (rest.starts_with(host_suffix) &&
        rest.find('/', host_suffix.size()) != std::string_view::npos) {
      fields.prefix_length = address->bits();
      client_length += host_suffix.size();
      rest.remove_prefix(host_suffix.size());
    }
  }
  size_t last = rest.rfind('/');
  if (last == std::string_view::npos) return std::nullopt;
  fields.client = std::string(key.substr(0, client_length));
  fields.sender = std::string(rest.substr(0, last));
  fields.recipient = std::string(rest.substr(last + 1));
  return fields;
}

TripletState StateOf(const policy::TripletRecord& record, const policy::GreylistTiming& timing) {
  return policy::Passed(record, timing) ? TripletState::kPassed : TripletState::kPending;
}

std::string_view StateName(TripletState state) {
  return state == TripletState::kPassed ? "passed" : "pending";
}

std::string SenderKeyPart(std::string_view sender) {
  if (sender == "<>") return "";
  return AsciiLowered(policy::NormaliseSender(sender));
}

std::string RecipientKeyPart(std::string_view recipient) { return AsciiLowered(recipient); }

Result<policy::Network> ParseNetworkOption(std::string_view option, std::string_view text) {
  std::optional<policy::Network> network = policy::ParseNetwork(text);
  if (!network) {
    return Status::InvalidArgument(fmt::format(
        "--{}: '{}' is not an IP address or network (ADDRESS or ADDRESS/BITS)", option, text));
  }
  return *network;
}

bool TripletFilter::Matches(const TripletFields* fields, TripletState record_state) const {
  if (state && *state != record_state) return false;
  if (!NeedsClearKeys()) return true;
  if (fields == nullptr) return false;
  if (client && (!fields->network ||
                 !client->Overlaps(policy::Network{*fields->network, fields->prefix_length}))) {
    return false;
  }
  if (sender && *sender != fields->sender) return false;
  if (recipient && *recipient != fields->recipient) return false;
  return true;
}

}  // namespace greylight::tools
