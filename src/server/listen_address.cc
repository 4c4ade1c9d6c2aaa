#include "server/listen_address.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace greylight::server {

std::string ListenAddress::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<std::vector<ListenAddress>> ParseInet(std::string_view value, std::string_view option) {
  std::string_view host = "127.0.0.1";
  std::string_view port_text = value;
  size_t colon = value.rfind(':');
  if (colon != std::string_view::npos) {
    host = value.substr(0, colon);
    port_text = value.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port == 0 || port > 65535) {
    return Status::InvalidArgument(fmt::format("{}: invalid port in '{}'", option, value));
  }
  if (host.empty())
    return Status::InvalidArgument(fmt::format("{}: empty host in '{}'", option, value));
  auto make = [port](std::string_view h) {
    ListenAddress address;
    address.host = std::string(h);
    address.port = static_cast<unsigned short>(port);
    return address;
  };
  if (host == "*") return std::vector<ListenAddress>{make("0.0.0.0"), make("::")};
  if (host == "localhost") host = "127.0.0.1";
  return std::vector<ListenAddress>{make(host)};
}

}  // namespace greylight::server
