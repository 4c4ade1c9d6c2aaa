// `greylight query`.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ostream>

#include "tools/command.h"
#include "tools/policy_client.h"

namespace greylight::tools {
namespace {

using cli::OptionSpec;
using cli::ParsedOptions;
using Arity = OptionSpec::Arity;

constexpr OptionSpec kQueryOptions[] = {
    kHelpOption,
    {"--server", Arity::kValue, "inet:HOST:PORT|unix:PATH", "inet:127.0.0.1:10023",
     "the policy server to ask, as in Postfix's check_policy_service", "greylight"},
    {"--client-address", Arity::kValue, "ADDRESS", "", "the client's IP address (required)",
     "greylight"},
    kClientNameOption,
    {"--helo", Arity::kValue, "NAME", "", "the HELO/EHLO name (helo_name; not sent if not given)",
     "greylight"},
    {"--sender", Arity::kValue, "ADDRESS", "",
     "the envelope sender (required; empty or <> for the null sender)", "greylight"},
    {"--recipient", Arity::kValue, "ADDRESS", "", "the envelope recipient (required)", "greylight"},
    {"--attribute", Arity::kRepeated, "NAME=VALUE", "",
     "one more request attribute, or another value for one of the above (repeatable)", "greylight"},
    {"--timeout", Arity::kValue, "SECONDS", "10",
     "give up when connecting, sending or waiting for the answer takes longer", "greylight", 1,
     3600},
};

int RunQuery(const ParsedOptions& o, Context& c) {
  for (std::string_view required : {"client-address", "sender", "recipient"}) {
    if (!o.Has(required)) {
      return c.Fail(kExitUsage, "--client-address, --sender and --recipient are required");
    }
  }
  auto server = PolicyServerAddress::Parse(o.LastOrDefault("server"));
  if (!server.ok()) return c.Fail(kExitConfig, "--server: " + server.status().message());
  auto timeout_seconds = o.Integer("timeout");
  if (!timeout_seconds.ok()) return c.Fail(kExitConfig, timeout_seconds.status().message());
  // Postfix's attribute order; --attribute adds to them or replaces one.
  std::vector<std::pair<std::string, std::string>> attributes = {
      {"protocol_state", "RCPT"},
      {"protocol_name", "ESMTP"},
      {"client_address", std::string(o.Last("client-address"))},
      {"client_name", std::string(ClientNameOption(o))},
      {"reverse_client_name", std::string(ClientNameOption(o))},
      {"helo_name", std::string(o.Last("helo"))},
      {"sender", SenderOption(o)},
      {"recipient", std::string(o.Last("recipient"))},
      {"recipient_count", "0"},
      {"queue_id", ""},
      {"instance", fmt::format("greylight-query.{}", c.env.clock.Now().time_since_epoch().count())},
      {"etrn_domain", ""},
  };
  if (!o.Has("helo"))
    std::erase_if(attributes, [](const auto& a) { return a.first == "helo_name"; });
  for (const std::string& extra : o.All("attribute")) {
    size_t equals = extra.find('=');
    if (equals == std::string::npos || equals == 0) {
      return c.Fail(kExitConfig, fmt::format("--attribute '{}': expected NAME=VALUE", extra));
    }
    std::string name = extra.substr(0, equals);
    auto same = std::find_if(attributes.begin(), attributes.end(),
                             [&](const auto& a) { return a.first == name; });
    if (same != attributes.end()) {
      same->second = extra.substr(equals + 1);
    } else {
      attributes.emplace_back(std::move(name), extra.substr(equals + 1));
    }
  }
  auto request = FormatPolicyRequest(attributes);
  if (!request.ok()) return c.Fail(kExitConfig, request.status().message());
  auto reply = AskPolicyServer(*server, *request, std::chrono::seconds(*timeout_seconds));
  if (!reply.ok()) return c.Fail(kExitUnavailable, reply.status().message());
  c.env.out << *reply << "\n";
  return kExitOk;
}

}  // namespace

constexpr Command kQueryCommand = {
    "query",
    "--client-address=A --sender=S --recipient=R [--client-name=N] [--server=inet:H:P|unix:P]",
    "send one policy request to a running greylightd and print its answer",
    "Speaks the policy delegation protocol as Postfix's smtpd does: sends one\n"
    "smtpd_access_policy request for the RCPT stage (protocol_state=RCPT,\n"
    "protocol_name=ESMTP, an instance id) with the given client, sender and recipient to\n"
    "--server, and prints the reply line (action=...). Unlike explain, this is a real\n"
    "request: greylightd decides, records and logs it as Postfix's would be.\n",
    kQueryOptions,
    false,
    RunQuery};

}  // namespace greylight::tools
