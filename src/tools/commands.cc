#include "tools/commands.h"

#include <fmt/format.h>

#include <ostream>
#include <vector>

#include "tools/command.h"
#include "tools/tool_store.h"
#include "version.h"

namespace greylight::tools {
namespace {

using cli::OptionSpec;

// Every command, in the order `greylight --help` lists them.
constexpr const Command* kCommands[] = {
    &kExplainCommand, &kQueryCommand,  &kStatsCommand,   &kListCommand,          &kDeleteCommand,
    &kPassCommand,    &kReportCommand, &kMigrateCommand, &kImportPostgreyCommand};

const Command* FindCommand(std::string_view name) {
  for (const Command* command : kCommands) {
    if (command->name == name) return command;
  }
  return nullptr;
}

std::vector<OptionSpec> OptionTableFor(const Command& command) {
  std::vector<OptionSpec> table(command.options.begin(), command.options.end());
  if (command.policy_options) {
    table.push_back(kHelpOption);
    for (const OptionSpec& spec : cli::PolicyOptionTable()) table.push_back(spec);
  }
  return table;
}

std::string UsageOf(const Command& command) {
  std::string summary(command.summary);
  if (!summary.empty() && summary[0] >= 'a' && summary[0] <= 'z') summary[0] -= 'a' - 'A';
  std::string usage = fmt::format("Usage: greylight {} {}\n\n{}.\n\n{}\nOptions:\n", command.name,
                                  command.synopsis, summary, command.description);
  usage += cli::FormatOptionHelp(command.options);
  if (command.policy_options) {
    std::vector<OptionSpec> shared = {kHelpOption};
    usage += cli::FormatOptionHelp(shared);
    usage += "\nStore and policy options, as given to greylightd:\n";
    usage += cli::FormatOptionHelp(cli::PolicyOptionTable());
  }
  usage +=
      "\nExit status: 0 success, 1 usage (unknown command or option, missing option),\n"
      "2 invalid value, 3 store (query: policy server) unreachable or unreadable,\n"
      "4 record absent or already passed.\n";
  return usage;
}

}  // namespace

std::string ToolUsage() {
  std::string usage =
      "Usage: greylight COMMAND [options]\n"
      "       greylight COMMAND --help\n\n"
      "Inspects and maintains greylightd's greylisting state. Commands work on the store\n"
      "greylightd uses (--store, or LMDB at --dbdir), while greylightd runs, and take\n"
      "greylightd's policy options (--delay, --max-age, --ipv4cidr, --privacy, whitelists...)\n"
      "so they see the records as greylightd does: give them the same values.\n\n"
      "Commands:\n";
  for (const Command* command : kCommands) {
    usage += fmt::format("  {:<16} {}\n", command->name, command->summary);
  }
  usage +=
      "\nStore URIs: lmdb: (LMDB at --dbdir), lmdb:/path/to/dbdir, redis://host:port[/db],\n"
      "redis+unix:///path[?db=N], redis+sentinel://host:port[,...]/mastername.\n\n"
      "Exit status: 0 success, 1 usage (unknown command or option, missing option),\n"
      "2 invalid value, 3 store (query: policy server) unreachable or unreadable,\n"
      "4 record absent or already passed.\n";
  return usage;
}

Result<std::string> CommandUsage(std::string_view name) {
  const Command* command = FindCommand(name);
  if (command == nullptr) return Status::NotFound(fmt::format("unknown command '{}'", name));
  return UsageOf(*command);
}

int RunTool(const std::vector<std::string>& args, ToolEnvironment& env) {
  if (args.empty()) {
    env.err << ToolUsage();
    return kExitUsage;
  }
  std::string_view first = args[0];
  if (first == "-h" || first == "--help" || first == "help") {
    if (first == "help" && args.size() > 1) {
      auto usage = CommandUsage(args[1]);
      if (!usage.ok()) {
        env.err << "greylight: " << usage.status().message() << " (see greylight --help)\n";
        return kExitUsage;
      }
      env.out << *usage;
      return kExitOk;
    }
    env.out << ToolUsage();
    return kExitOk;
  }
  if (first == "--version") {
    env.out << "greylight " << kGreylightVersion << "\n";
    return kExitOk;
  }
  const Command* command = FindCommand(first);
  if (command == nullptr) {
    env.err << "greylight: unknown command '" << first << "' (see greylight --help)\n";
    return kExitUsage;
  }
  Context context(*command, env);
  std::vector<OptionSpec> table = OptionTableFor(*command);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  auto parsed = cli::ParseOptions(table, rest);
  if (!parsed.ok()) {
    return context.Fail(
        cli::ExitStatusFor(parsed.status()),
        fmt::format("{} (see greylight {} --help)", parsed.status().message(), command->name));
  }
  if (parsed->Has("help")) {
    env.out << UsageOf(*command);
    return kExitOk;
  }
  if (command->policy_options) {
    if (Status status = cli::ParsePolicyConfig(*parsed, context.config); !status.ok()) {
      return context.Fail(kExitConfig, status.message());
    }
  }
  context.config.engine.version = kGreylightVersion;
  context.store_uri = std::string(parsed->Last("store", DefaultStoreUri(context.config)));
  return command->run(*parsed, context);
}

}  // namespace greylight::tools
