#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace greylight::policy {

// An IPv4 or IPv6 address. IPv4 is kept in the first 4 bytes.
struct IpAddress {
  bool is_v6 = false;
  std::array<uint8_t, 16> bytes{};

  int bits() const { return is_v6 ? 128 : 32; }
  // Parses the dotted quad or IPv6 text Postfix sends in client_address. Stricter than
  // postgrey's NetAddr::IP: no host names, no octal octets.
  static std::optional<IpAddress> Parse(std::string_view text);
  // The address with all bits after the first `prefix_length` cleared.
  // REQUIRES: 0 <= prefix_length <= bits().
  IpAddress Masked(int prefix_length) const;
  // True if the first `prefix_length` bits equal those of `network`, same family only.
  bool Within(const IpAddress& network, int prefix_length) const;
  // True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104 (an IPv4 loopback peer on a dual-stack
  // socket): an address only this host can connect from.
  bool IsLoopback() const;
  // NetAddr::IP's addr() text: dotted quad, or IPv6 fully expanded, no leading zeros,
  // uppercase hex ("2001:DB8:0:0:0:0:0:1"). postgrey stores keys in this form.
  std::string ToPostgreyString() const;
  // Appends ToPostgreyString() to `out` (no temporary: keys are built on every request).
  void AppendPostgreyString(std::string& out) const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

// An address block: "192.0.2.0/24", "2001:db8::/32", or one address (all bits).
struct Network {
  IpAddress address;  // with the bits after prefix_length cleared
  int prefix_length = 0;
  bool Contains(const IpAddress& ip) const { return ip.Within(address, prefix_length); }
  // True if the two blocks share an address (one contains the other). Families never do.
  bool Overlaps(const Network& other) const;
};

// Parses "ADDRESS" or "ADDRESS/BITS" with 0 <= BITS <= the family's bits; nullopt otherwise.
std::optional<Network> ParseNetwork(std::string_view text);

}  // namespace greylight::policy
