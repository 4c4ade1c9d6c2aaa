#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace greylight::server {

// One endpoint to listen on: a TCP host and port, or a UNIX socket path.
struct ListenAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // numeric address or host name; "" never
  unsigned short port = 0;
  std::string path;  // kUnix

  std::string ToString() const;
};

// Parses a postgrey --inet value: "PORT" (localhost, i.e. 127.0.0.1), "HOST:PORT",
// "[IPV6]:PORT" or "*:PORT" (all IPv4 and IPv6 addresses; yields two addresses).
Result<std::vector<ListenAddress>> ParseInet(std::string_view value);

}  // namespace greylight::server
