#include "bench/endpoint.h"

#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <charconv>

namespace greylight::bench {

std::optional<Endpoint> ParseEndpoint(std::string_view spec, std::string& error) {
  Endpoint endpoint;
  endpoint.text = std::string(spec);
  if (spec.starts_with("unix:")) {
    std::string_view path = spec.substr(5);
    // sockaddr_un has room for 107 characters plus the terminating NUL.
    if (path.empty() || path.size() > 107) {
      error = "bad UNIX socket path in '" + endpoint.text + "'";
      return std::nullopt;
    }
    endpoint.unix_path = std::string(path);
    endpoint.address = asio::local::stream_protocol::endpoint(endpoint.unix_path);
    return endpoint;
  }

  size_t colon = spec.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == spec.size()) {
    error = "expected HOST:PORT or unix:/path, got '" + endpoint.text + "'";
    return std::nullopt;
  }
  std::string_view host = spec.substr(0, colon);
  std::string_view port_text = spec.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    error = "bad port in '" + endpoint.text + "'";
    return std::nullopt;
  }

  asio::error_code resolve_error;
  asio::ip::address literal = asio::ip::make_address(std::string(host), resolve_error);
  if (!resolve_error) {
    endpoint.address = asio::ip::tcp::endpoint(literal, static_cast<unsigned short>(port));
    return endpoint;
  }
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(std::string(host), std::string(port_text), resolve_error);
  if (resolve_error || results.empty()) {
    error = "cannot resolve '" + std::string(host) + "': " + resolve_error.message();
    return std::nullopt;
  }
  endpoint.address = results.begin()->endpoint();
  return endpoint;
}

}  // namespace greylight::bench
