#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cli/option_table.h"
#include "cli/policy_config.h"
#include "engine/greylister.h"
#include "policy/greylist_state.h"
#include "server/server.h"
#include "util/log.h"
#include "util/status.h"

namespace greylight::cli {

// greylightd's options: every postgrey 1.37 option with its spelling and default, then
// greylight's own; includes PolicyOptionTable().
std::span<const OptionSpec> DaemonOptionTable();

// Everything greylightd needs to start, validated.
struct DaemonConfig {
  enum class Mode { kRun, kHelp, kVersion };
  Mode mode = Mode::kRun;

  server::ServerOptions server;
  PolicyConfig policy;  // policy.store owns the store's settings (--commit-interval too)

  std::optional<server::ListenAddress> metrics_listen;

  bool daemonize = false;
  std::string pidfile;
  std::string user = "greylight";
  std::string group = "greylight";
  bool user_given = false;
  log::Level log_level = log::Level::kNotice;
  std::chrono::seconds summary_interval{3600};
  int syslog_facility = 0;
  std::vector<std::string> original_args;
};

// Parses and validates greylightd's command line. Errors name the option and the value.
Result<DaemonConfig> ParseDaemonConfig(const std::vector<std::string>& args);

// The --help text.
std::string DaemonUsage();

}  // namespace greylight::cli
