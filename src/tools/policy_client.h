#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace greylight::tools {

// Where a policy server listens, in Postfix's check_policy_service notation:
// "inet:HOST:PORT" ("inet:[::1]:10023" for IPv6) or "unix:/path/to/socket". "HOST:PORT" and
// an absolute path are accepted too.
struct PolicyServerAddress {
  enum class Kind { kInet, kUnix };
  Kind kind = Kind::kInet;
  std::string host;  // kInet, without brackets
  std::string port;  // kInet
  std::string path;  // kUnix

  static Result<PolicyServerAddress> Parse(std::string_view text);
  std::string ToString() const;
};

// The policy request text for `attributes` (name, value): "request=smtpd_access_policy",
// then each attribute as a line, then the empty line that ends the request. Values with a
// newline cannot be sent (InvalidArgument).
Result<std::string> FormatPolicyRequest(
    const std::vector<std::pair<std::string, std::string>>& attributes);

// Sends `request` to the server at `address` on a new connection and returns its reply
// without the empty line that ends it ("action=DUNNO"). Blocking, bounded by `timeout` in
// all; IoError when the server cannot be reached, closes early or does not answer in time.
Result<std::string> AskPolicyServer(const PolicyServerAddress& address, std::string_view request,
                                    std::chrono::milliseconds timeout);

}  // namespace greylight::tools
