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
  // What the listener serves: greylisting (--inet, --unix), or an outbound listener
  // (--outbound-inet, --outbound-unix) for Postfix's submission service, whose requests
  // record reply pairs and are answered DUNNO (engine::Greylister::RecordOutbound).
  enum class Role { kGreylist, kOutbound };
  Role role = Role::kGreylist;

  std::string ToString() const;
};

// Parses a postgrey --inet value: "PORT" (localhost, i.e. 127.0.0.1), "HOST:PORT",
// "[IPV6]:PORT" or "*:PORT" (all IPv4 and IPv6 addresses; yields two addresses). Errors
// name `option` ("--inet: invalid port in 'x'").
Result<std::vector<ListenAddress>> ParseInet(std::string_view value,
                                             std::string_view option = "--inet");

}  // namespace greylight::server
