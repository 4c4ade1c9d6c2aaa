#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cli/option_table.h"
#include "engine/greylister.h"
#include "policy/greylist_state.h"
#include "reputation/dns_lists.h"
#include "reputation/spf_checker.h"
#include "store/open_store.h"
#include "util/status.h"
#include "whitelist/whitelist.h"

namespace greylight::cli {

// The options greylightd and the greylight tool share: where the state is, the
// greylisting rules, key construction, whitelists and texts. The tool works on the same
// store with the same rules as the daemon by taking the same options.
std::span<const OptionSpec> PolicyOptionTable();

struct PolicyConfig {
  policy::GreylistTiming timing;
  engine::EngineOptions engine;
  std::filesystem::path dbdir = "/var/lib/greylight";
  // The backend (--store, --store-prefix, --store-timeout; dbdir and timing filled in).
  store::StoreConfig store;
  std::vector<std::string> whitelist_clients;     // as given; empty means the defaults
  std::vector<std::string> whitelist_recipients;  // as given; empty means the defaults
  std::vector<std::string> greytrap_recipients;   // empty: greytraps disabled
  reputation::DnsListOptions dns;                 // lists empty: no DNS list step
  // The SPF checker's --dns-timeout and --dns-servers; used with engine.spf_keys.
  reputation::SpfCheckerOptions spf;
};

// Fills `config` from the options of PolicyOptionTable() in `options`.
Status ParsePolicyConfig(const ParsedOptions& options, PolicyConfig& config);

// Resolves the whitelist files (given ones, else greylight's, else postgrey's) and loads
// them. Warnings (missing files) are returned in the lists' warnings().
Result<std::shared_ptr<const whitelist::Whitelists>> LoadWhitelists(const PolicyConfig& config);

// Loads the --greytrap-recipients files; nullptr when none are configured. A missing or
// malformed file is an error (a trap list that silently went empty would go unnoticed).
Result<std::shared_ptr<const reputation::Greytraps>> LoadGreytraps(const PolicyConfig& config);

// The public suffix list if config's --lookup-by needs one (domain, smart); nullptr for the
// address modes. A load failure is InvalidArgument: a configuration error, for greylightd
// (which refuses to start) and the tool alike.
Result<std::unique_ptr<const reputation::Psl>> LoadPsl(const PolicyConfig& config);

// Checks that a Postfix action given to `option` is non-empty and on one line.
Status CheckAction(std::string_view option, std::string_view action);

}  // namespace greylight::cli
