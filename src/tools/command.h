#pragma once

// One `greylight` command: its name, help texts and options, the function that runs it,
// and the context every command runs in. Each command lives in its own <name>_command.cc;
// tools/commands.cc holds the registry, the usage texts and RunTool.

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cli/option_table.h"
#include "cli/policy_config.h"
#include "engine/request_keys.h"
#include "policy/ip_address.h"
#include "reputation/client_group.h"
#include "store/store.h"
#include "tools/commands.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::tools {

struct Context;
using CommandFunction = int (*)(const cli::ParsedOptions& options, Context& context);

struct Command {
  std::string_view name;
  std::string_view synopsis;
  std::string_view summary;
  std::string_view description;
  std::span<const cli::OptionSpec> options;
  // Takes --help, --store and greylightd's policy options besides its own.
  bool policy_options;
  CommandFunction run;
};

// The registered commands, in `greylight --help` order; each is defined in its own file.
extern const Command kExplainCommand;
extern const Command kQueryCommand;
extern const Command kStatsCommand;
extern const Command kListCommand;
extern const Command kDeleteCommand;
extern const Command kPassCommand;
extern const Command kReportCommand;
extern const Command kMigrateCommand;
extern const Command kImportPostgreyCommand;

// What one run of a command works with: its environment and the policy options parsed.
struct Context {
  Context(const Command& command, ToolEnvironment& env) : command(command), env(env) {}

  const Command& command;
  ToolEnvironment& env;
  cli::PolicyConfig config;
  std::string store_uri;

  // Prints "greylight COMMAND: message" on stderr and returns `code`.
  int Fail(int code, std::string_view message);
  void Warn(std::string_view message);
  // The exit status for a failed store operation: bad URIs are usage errors.
  int StoreFailure(const Status& status);

  // The public suffix list --lookup-by=domain|smart needs (nullptr in the address modes),
  // loaded on first use. A load failure is a configuration error (InvalidArgument).
  Result<const reputation::Psl*> PublicSuffixList();
  // The key scheme greylightd uses with these options.
  Result<engine::KeyScheme> Scheme();
  // The keys greylightd builds for a request (engine::BuildRequestKeys).
  Result<engine::RequestKeys> Keys(const policy::IpAddress& client, std::string_view client_name,
                                   std::string_view sender, std::string_view recipient);

 private:
  std::unique_ptr<const reputation::Psl> psl_;
  bool psl_loaded_ = false;
};

// The largest --at: 9999-12-31T23:59:59Z.
inline constexpr long long kMaxUnixTime = 253402300799;

// Options several commands take.
inline constexpr cli::OptionSpec kHelpOption = {
    "-h,--help", cli::OptionSpec::Arity::kFlag, "", "", "show the options of this command and exit",
    "greylight"};
inline constexpr cli::OptionSpec kAtOption = {
    "--at",
    cli::OptionSpec::Arity::kValue,
    "UNIXTIME",
    "the current time",
    "judge the records at this Unix time instead of now (e.g. to match requests replayed "
    "with policy_test_time)",
    "greylight",
    0,
    kMaxUnixTime};
inline constexpr cli::OptionSpec kClientNameOption = {
    "--client-name",
    cli::OptionSpec::Arity::kValue,
    "NAME",
    "unknown",
    "the client's verified host name, as Postfix sends it; keys depend on it with "
    "--lookup-by=domain|smart",
    "greylight"};

// Readers of the options above and of the request options several commands share.
// --at, or the clock's time.
Result<UnixTime> TimeOption(const cli::ParsedOptions& o, Context& c);
// --sender, with "<>" meaning the null sender.
std::string SenderOption(const cli::ParsedOptions& o);
// Parses a request address option; errors name it.
Result<policy::IpAddress> AddressOption(const cli::ParsedOptions& o, std::string_view name);
// --client-name, or "unknown" (what Postfix sends for an unverified client).
std::string_view ClientNameOption(const cli::ParsedOptions& o);
// The triplet key named by --key, or built from --client-address, --client-name, --sender
// and --recipient as greylightd builds it.
Result<std::string> TripletKeyOption(const cli::ParsedOptions& o, Context& c);
// For a record not found under a key built from a request's addresses: with --spf-keys,
// the hint that greylightd may have keyed it by the SPF domain, which only `explain` (it
// asks SPF) can tell; otherwise empty.
std::string SpfKeyHint(const cli::ParsedOptions& o, const Context& c);
// What a record of `table` is called in messages.
std::string_view RecordNoun(store::Table table);

}  // namespace greylight::tools
