#pragma once

// The `greylight` admin tool: `greylight COMMAND [options]`. Every command takes the
// store and policy options of greylightd (PolicyOptionTable()), so it sees the same
// records with the same rules, and works beside a running greylightd.

#include <filesystem>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "cli/exit_status.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::tools {

// Exit statuses of the tool: cli/exit_status.h, shared with greylightd.
using cli::kExitAbsent;
using cli::kExitConfig;
using cli::kExitOk;
using cli::kExitUnavailable;
using cli::kExitUsage;

// Where a command reads, writes and gets the time. The streams and the clock must outlive
// the RunTool call.
struct ToolEnvironment {
  std::istream& in;   // `report --log -`
  std::ostream& out;  // results
  std::ostream& err;  // errors and warnings
  const Clock& clock;
  // Where `import-postgrey` makes its temporary copy of postgrey's files.
  std::filesystem::path temp_dir = "/tmp";
};

// Runs `greylight` with `args` (without the program name) and returns the exit status.
int RunTool(const std::vector<std::string>& args, ToolEnvironment& env);

// The text of `greylight --help`.
std::string ToolUsage();

// The text of `greylight COMMAND --help`; NotFound for an unknown command.
Result<std::string> CommandUsage(std::string_view command);

}  // namespace greylight::tools
