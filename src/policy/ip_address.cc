#include "policy/ip_address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace greylight::policy {

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; addresses are short, so copy to the stack.
  char buffer[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buffer)) return std::nullopt;
  text.copy(buffer, text.size());
  buffer[text.size()] = '\0';
  IpAddress address;
  if (inet_pton(AF_INET, buffer, address.bytes.data()) == 1) return address;
  address.is_v6 = true;
  if (inet_pton(AF_INET6, buffer, address.bytes.data()) == 1) return address;
  return std::nullopt;
}

IpAddress IpAddress::Masked(int prefix_length) const {
  IpAddress masked = *this;
  int byte_count = bits() / 8;
  for (int i = 0; i < byte_count; ++i) {
    int keep = prefix_length - i * 8;
    if (keep >= 8) continue;
    masked.bytes[i] &= keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
  }
  return masked;
}

bool IpAddress::Within(const IpAddress& network, int prefix_length) const {
  return is_v6 == network.is_v6 && Masked(prefix_length) == network.Masked(prefix_length);
}

bool IpAddress::IsLoopback() const {
  if (!is_v6) return bytes[0] == 127;
  static constexpr std::array<uint8_t, 16> kV6Loopback = {0, 0, 0, 0, 0, 0, 0, 0,
                                                          0, 0, 0, 0, 0, 0, 0, 1};
  static constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0,    0,
                                                              0, 0, 0, 0, 0xff, 0xff};
  if (bytes == kV6Loopback) return true;
  return std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), bytes.begin()) &&
         bytes[12] == 127;
}

bool Network::Overlaps(const Network& other) const {
  if (address.is_v6 != other.address.is_v6) return false;
  return other.address.Within(address, std::min(prefix_length, other.prefix_length));
}

std::optional<Network> ParseNetwork(std::string_view text) {
  size_t slash = text.find('/');
  std::optional<IpAddress> address = IpAddress::Parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  int length = address->bits();
  if (slash != std::string_view::npos) {
    std::string_view bits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), length);
    if (bits.empty() || ec != std::errc() || end != bits.data() + bits.size() || length < 0 ||
        length > address->bits()) {
      return std::nullopt;
    }
  }
  return Network{address->Masked(length), length};
}

void IpAddress::AppendPostgreyString(std::string& out) const {
  // Hand-written rather than fmt: this runs for every key of every request.
  static constexpr char kHex[] = "0123456789ABCDEF";
  char text[40];
  char* at = text;
  if (!is_v6) {
    for (int i = 0; i < 4; ++i) {
      if (i > 0) *at++ = '.';
      unsigned value = bytes[i];
      if (value >= 100) *at++ = static_cast<char>('0' + value / 100);
      if (value >= 10) *at++ = static_cast<char>('0' + value / 10 % 10);
      *at++ = static_cast<char>('0' + value % 10);
    }
  } else {
    for (int group = 0; group < 8; ++group) {
      if (group > 0) *at++ = ':';
      unsigned value = static_cast<unsigned>(bytes[2 * group]) << 8 | bytes[2 * group + 1];
      bool started = false;
      for (int shift = 12; shift >= 0; shift -= 4) {
        unsigned digit = value >> shift & 0xF;
        if (digit != 0 || started || shift == 0) {
          *at++ = kHex[digit];
          started = true;
        }
      }
    }
  }
  out.append(text, static_cast<size_t>(at - text));
}

std::string IpAddress::ToPostgreyString() const {
  std::string text;
  AppendPostgreyString(text);
  return text;
}

}  // namespace greylight::policy
