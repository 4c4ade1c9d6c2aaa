#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "util/status.h"

namespace greylight::testing_support {

// Starts `program` with `args` (args[0] is argv[0]), stdout and stderr appended to
// `log_path`, as a child that dies with the test process (PR_SET_PDEATHSIG) and inherits
// none of the test's descriptors beyond the standard ones. Returns the child's pid; the
// caller stops it by that pid.
inline Result<pid_t> SpawnWithLog(const std::string& program, std::vector<std::string> args,
                                  const std::string& log_path) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return Status::IoError("open " + log_path + ": " + std::strerror(errno));
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Status::IoError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec (the test process has threads).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
    if (::getppid() != parent) ::_exit(127);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    // Do not leak the test's sockets (e.g. a store's connections) into the server.
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  return pid;
}

// Stops a child started by SpawnWithLog: SIGTERM (and SIGCONT, for a suspended one), then
// SIGKILL if it has not exited within `timeout`; reaps it either way.
inline void StopChild(pid_t pid, std::chrono::milliseconds timeout) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  ::kill(pid, SIGCONT);  // a suspended process handles SIGTERM only once resumed
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (::waitpid(pid, nullptr, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The last `max_bytes` of a child's log file, for failure messages.
inline std::string FileTail(const std::string& path, size_t max_bytes = 2000) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  std::string text = content.str();
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

}  // namespace greylight::testing_support
