// greylight: the admin tool of greylightd. All logic is in tools/commands.cc; main() only
// supplies the process's streams and clock.

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "util/clock.h"
#include "util/log.h"

int main(int argc, char** argv) {
  // Records and temporary copies of postgrey's files stay private, as greylightd's do.
  ::umask(0077);
  greylight::log::Configure(greylight::log::Level::kWarning, greylight::log::Sink::kStderr,
                            "greylight");
  std::vector<std::string> args(argv + 1, argv + argc);
  greylight::SystemClock clock;
  greylight::tools::ToolEnvironment env{std::cin, std::cout, std::cerr, clock};
  const char* tmpdir = std::getenv("TMPDIR");
  if (tmpdir != nullptr && *tmpdir != '\0') env.temp_dir = tmpdir;
  // SIGPIPE keeps its default action, so `greylight list | head` ends quietly.
  int status = greylight::tools::RunTool(args, env);
  std::cout.flush();
  if (!std::cout.good()) {
    std::cerr << "greylight: error writing the output\n";
    return status != 0 ? status : greylight::tools::kExitUnavailable;
  }
  return status;
}
