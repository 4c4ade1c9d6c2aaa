// `greylight explain`.
#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <memory>
#include <ostream>

#include "reputation/dns_lists.h"
#include "tools/command.h"
#include "tools/explain.h"
#include "tools/tool_store.h"

namespace greylight::tools {
namespace {

using cli::OptionSpec;
using cli::ParsedOptions;
using Arity = OptionSpec::Arity;

constexpr OptionSpec kExplainOptions[] = {
    {"--client-address", Arity::kValue, "ADDRESS", "", "the client's IP address (required)",
     "greylight"},
    kClientNameOption,
    {"--sender", Arity::kValue, "ADDRESS", "",
     "the envelope sender (required; empty or <> for the null sender)", "greylight"},
    {"--recipient", Arity::kValue, "ADDRESS", "", "the envelope recipient (required)", "greylight"},
    kAtOption,
};

int RunExplain(const ParsedOptions& o, Context& c) {
  for (std::string_view required : {"client-address", "sender", "recipient"}) {
    if (!o.Has(required)) {
      return c.Fail(kExitUsage, "--client-address, --sender and --recipient are required");
    }
  }
  auto now = TimeOption(o, c);
  if (!now.ok()) return c.Fail(kExitConfig, now.status().message());
  auto whitelists = cli::LoadWhitelists(c.config);
  if (!whitelists.ok()) return c.Fail(kExitConfig, whitelists.status().message());
  for (const std::string& warning : (*whitelists)->warnings()) c.Warn(warning);
  auto greytraps = cli::LoadGreytraps(c.config);
  if (!greytraps.ok()) return c.Fail(kExitConfig, greytraps.status().message());
  auto psl = c.PublicSuffixList();
  if (!psl.ok()) return c.Fail(kExitConfig, psl.status().message());
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());

  ExplainRequest request;
  request.client_address = std::string(o.Last("client-address"));
  request.client_name = std::string(ClientNameOption(o));
  request.sender = SenderOption(o);
  request.recipient = std::string(o.Last("recipient"));
  ExplainInputs inputs;
  inputs.whitelists = whitelists->get();
  inputs.greytraps = greytraps->get();
  inputs.psl = *psl;
  // The DNS list step, asked as greylightd asks it: the same lists, resolvers and timeout.
  asio::io_context io;
  std::unique_ptr<reputation::DnsListChecker> lists;
  if (!c.config.dns.lists.empty()) {
    auto checker = reputation::DnsListChecker::Create(io, c.config.dns, c.env.clock);
    if (!checker.ok()) return c.Fail(kExitConfig, checker.status().message());
    lists = std::move(checker.value());
    inputs.lists = [&lists](const policy::IpAddress& client, reputation::ListCallback done) {
      lists->Lookup(client, std::move(done));
    };
    inputs.run_until = [&io](const std::function<bool()>& finished) {
      while (!finished() && io.run_one() > 0) {
      }
    };
  }
  auto explanation = Explain(request, *now, c.env.clock.Now(), c.config, inputs, **store);
  if (!explanation.ok()) return c.StoreFailure(explanation.status());
  c.env.out << explanation->text;
  return kExitOk;
}

}  // namespace

constexpr Command kExplainCommand = {
    "explain",
    "--client-address=A --sender=S --recipient=R [--client-name=N] [options]",
    "what greylightd would answer for a request now, and why (read-only)",
    "Prints the whitelist entry that matches (file:line), or, in greylightd's order, the\n"
    "client group (--lookup-by=domain|smart), the greytrap entry the recipient matches and\n"
    "the client's greytrap-list record (with --greytrap-recipients), the client's\n"
    "auto-whitelist record, the reply record (a local user wrote to the sender: the mail is\n"
    "a reply), and the triplet's key and record (first and last seen, pending or passed,\n"
    "the seconds left, when it expires); then the decision and the exact action\n"
    "greylightd would send, computed as greylightd computes it but without writing\n"
    "anything. The request is taken to come from Postfix 2.3 or later (which sends\n"
    "etrn_domain).\n",
    kExplainOptions,
    true,
    RunExplain};

}  // namespace greylight::tools
