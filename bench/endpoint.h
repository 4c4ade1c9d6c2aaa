#pragma once

#include <asio/generic/stream_protocol.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace greylight::bench {

// A stream socket address given on the command line, in the forms Postfix's
// check_policy_service uses: HOST:PORT, [IPV6]:PORT, or unix:/absolute/path.
struct Endpoint {
  asio::generic::stream_protocol::endpoint address;
  std::string unix_path;  // Non-empty for a UNIX-domain socket.
  std::string text;       // As given, for reports.
};

// Parses `spec` and resolves a host name (blocking, first address wins).
// Returns nullopt and sets `error` when `spec` is malformed or does not resolve.
// Thread-safe.
std::optional<Endpoint> ParseEndpoint(std::string_view spec, std::string& error);

}  // namespace greylight::bench
