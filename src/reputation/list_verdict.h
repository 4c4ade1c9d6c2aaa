#pragma once

// The result of the DNS list step, apart from the resolver (dns_lists.h), so the engine
// that consumes it does not depend on Asio or c-ares.

#include <functional>
#include <string>
#include <vector>

namespace greylight::reputation {

// What the lists said about one client.
struct ListVerdict {
  struct Hit {
    std::string zone;
    std::string answer;  // the first accepted A record, "127.0.0.2"
  };
  std::vector<Hit> dnswl;  // allow lists that list the client, in configuration order
  std::vector<Hit> dnsbl;  // block lists that list the client
  // Lists that could not be asked, as "<zone>: <reason>" (reason "timeout", "SERVFAIL",
  // "REFUSED", "malformed answer", ...). Such a list counts as not listing the client.
  std::vector<std::string> failures;

  bool dnswl_listed() const { return !dnswl.empty(); }
  bool dnsbl_listed() const { return !dnsbl.empty(); }
  bool any_failed() const { return !failures.empty(); }
};

using ListCallback = std::function<void(ListVerdict)>;

}  // namespace greylight::reputation
