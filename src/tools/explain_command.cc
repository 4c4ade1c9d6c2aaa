// `greylight explain`.
#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <memory>
#include <ostream>

#include "reputation/dns_lists.h"
#include "reputation/spf_checker.h"
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
    {"--helo-name", Arity::kValue, "NAME", "",
     "the client's HELO name (with --spf-keys: the identity SPF checks for the null sender)",
     "greylight"},
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
  request.helo_name = std::string(o.Last("helo-name"));
  ExplainInputs inputs;
  inputs.whitelists = whitelists->get();
  inputs.greytraps = greytraps->get();
  inputs.psl = *psl;
  // The DNS list and SPF steps, asked as greylightd asks them: the same lists, resolvers
  // and timeout.
  asio::io_context io;
  std::unique_ptr<reputation::DnsListChecker> lists;
  if (!c.config.dns.lists.empty()) {
    auto checker = reputation::DnsListChecker::Create(io, c.config.dns, c.env.clock);
    if (!checker.ok()) return c.Fail(kExitConfig, checker.status().message());
    lists = std::move(checker.value());
    inputs.lists = [&lists](const policy::IpAddress& client, reputation::ListCallback done) {
      lists->Lookup(client, std::move(done));
    };
  }
  std::unique_ptr<reputation::SpfChecker> spf_checker;
  if (c.config.engine.spf_keys) {
    auto checker = reputation::SpfChecker::Create(io, c.config.spf, c.env.clock);
    if (!checker.ok()) return c.Fail(kExitConfig, checker.status().message());
    spf_checker = std::move(checker.value());
    inputs.spf = [&spf_checker](spf::SpfRequest spf_request, reputation::SpfCallback done) {
      spf_checker->Check(std::move(spf_request), std::move(done));
    };
  }
  if (inputs.lists || inputs.spf) {
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
    "--client-address=A --sender=S --recipient=R [--client-name=N] [--helo-name=H] [options]",
    "what greylightd would answer for a request now, and why (read-only)",
    "Prints the whitelist entry that matches (file:line), or, in greylightd's order, the\n"
    "DNS lists' answers and the SPF result (--spf-keys; both asked as greylightd asks\n"
    "them), the client group (--lookup-by=domain|smart, or spf:DOMAIN), the greytrap entry\n"
    "the recipient matches and the client's greytrap-list record (with\n"
    "--greytrap-recipients), the client's auto-whitelist record, the reply record (a local\n"
    "user wrote to the sender: the mail is a reply), and the triplet's key and record (first\n"
    "and last seen, pending or passed, the seconds left, when it expires); then the decision\n"
    "and the exact action\n"
    "greylightd would send, computed as greylightd computes it but without writing\n"
    "anything. The request is taken to come from Postfix 2.3 or later (which sends\n"
    "etrn_domain).\n",
    kExplainOptions,
    true,
    RunExplain};

}  // namespace greylight::tools
