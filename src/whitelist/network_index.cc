#include "whitelist/network_index.h"

#include <algorithm>
#include <set>
#include <string>

#include "util/ascii.h"

namespace greylight::whitelist {
namespace {

using policy::IpAddress;

std::optional<int> ParseSmallDecimal(std::string_view digits) {
  if (digits.empty() || digits.size() > 3 ||
      !std::all_of(digits.begin(), digits.end(), AsciiIsDigit)) {
    return std::nullopt;
  }
  int value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  return value;
}

// Splits at '.', true if there are exactly `count` groups of 1-3 ASCII digits
// (postgrey's \d{1,3} groups).
bool IsDottedDigits(std::string_view text, int count, std::vector<std::string_view>& groups) {
  groups.clear();
  while (true) {
    size_t dot = text.find('.');
    std::string_view group = text.substr(0, dot);
    if (group.empty() || group.size() > 3 ||
        !std::all_of(group.begin(), group.end(), AsciiIsDigit)) {
      return false;
    }
    groups.push_back(group);
    if (dot == std::string_view::npos) break;
    text.remove_prefix(dot + 1);
  }
  return static_cast<int>(groups.size()) == count;
}

}  // namespace

// Sweeps the interval end points in order, keeping the set of entries covering the current
// point; its minimum owns the segment that starts there.
void NetworkIndex::Finish() {
  struct Event {
    Address128 at;
    bool opens;
    EntryId id;
  };
  std::vector<Event> events;
  events.reserve(ranges_.size() * 2);
  for (const Range& range : ranges_) {
    events.push_back({range.first, true, range.id});
    if (range.last != kAllOnes) events.push_back({range.last + 1, false, range.id});
  }
  std::sort(events.begin(), events.end(),
            [](const Event& a, const Event& b) { return a.at < b.at; });
  std::set<EntryId> active;
  starts_.assign(1, 0);
  owners_.assign(1, kNoEntry);
  for (size_t i = 0; i < events.size();) {
    Address128 at = events[i].at;
    for (; i < events.size() && events[i].at == at; ++i) {
      if (events[i].opens) {
        active.insert(events[i].id);
      } else {
        active.erase(events[i].id);
      }
    }
    EntryId owner = active.empty() ? kNoEntry : *active.begin();
    if (owner == owners_.back()) continue;  // the current segment goes on
    if (starts_.back() == at) {
      owners_.back() = owner;  // only at address 0, where the initial segment starts
    } else {
      starts_.push_back(at);
      owners_.push_back(owner);
    }
  }
  ranges_.clear();
  ranges_.shrink_to_fit();
}

EntryId NetworkIndex::Find(Address128 address) const {
  auto it = std::upper_bound(starts_.begin(), starts_.end(), address);
  return owners_[static_cast<size_t>(it - starts_.begin()) - 1];
}

Network MakeNetwork(Address128 address, int prefix_length) {
  Address128 mask = PrefixMask(prefix_length);
  return {address & mask, (address & mask) | ~mask};
}

std::optional<Result<Network>> ParseIpv4Entry(std::string_view entry) {
  std::string_view address_text = entry;
  std::optional<int> prefix_length;
  size_t slash = entry.find('/');
  std::vector<std::string_view> groups;
  if (slash != std::string_view::npos) {
    std::string_view length_text = entry.substr(slash + 1);
    address_text = entry.substr(0, slash);
    if (length_text.empty() || length_text.size() > 2 || !IsDottedDigits(address_text, 4, groups)) {
      return std::nullopt;
    }
    prefix_length = ParseSmallDecimal(length_text);
    if (!prefix_length) return std::nullopt;
  } else if (IsDottedDigits(entry, 4, groups)) {
    prefix_length = 32;
  } else if (IsDottedDigits(entry, 3, groups)) {
    prefix_length = 24;
  } else if (IsDottedDigits(entry, 2, groups)) {
    prefix_length = 16;  // FIX: postgrey documents /16 but builds a /24
  } else {
    return std::nullopt;
  }
  uint32_t value = 0;
  for (std::string_view group : groups) {
    if (group.size() > 1 && group.front() == '0') {
      // NetAddr::IP reads 010 as octal 8, most readers expect 10: refuse to guess.
      return Result<Network>(Status::InvalidArgument(
          "leading zero in IPv4 address '" + std::string(address_text) +
          "' is ambiguous (postgrey reads such octets as octal); write it without leading zeros"));
    }
    int octet = *ParseSmallDecimal(group);
    if (octet > 255) {
      return Result<Network>(
          Status::InvalidArgument("invalid IPv4 address '" + std::string(address_text) + "'"));
    }
    value = value << 8 | static_cast<uint32_t>(octet);
  }
  value <<= 8 * (4 - groups.size());
  if (*prefix_length > 32) {
    return Result<Network>(Status::InvalidArgument(
        "invalid IPv4 prefix length /" + std::to_string(*prefix_length) + " (must be 0-32)"));
  }
  return Result<Network>(MakeNetwork(value, kIpv4InIpv6PrefixOffset + *prefix_length));
}

Result<Network> ParseIpv6Entry(std::string_view entry) {
  size_t slash = entry.find('/');
  int prefix_length = 128;
  if (slash != std::string_view::npos) {
    std::optional<int> parsed = ParseSmallDecimal(entry.substr(slash + 1));
    if (!parsed || *parsed > 128) {
      return Status::InvalidArgument("invalid IPv6 prefix length in '" + std::string(entry) +
                                     "' (must be /0-/128)");
    }
    prefix_length = *parsed;
  }
  std::optional<IpAddress> address = IpAddress::Parse(entry.substr(0, slash));
  if (!address || !address->is_v6) {
    return Status::InvalidArgument("invalid IPv6 address or network '" + std::string(entry) + "'");
  }
  return MakeNetwork(ToAddress128(*address), prefix_length);
}

}  // namespace greylight::whitelist
