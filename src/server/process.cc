#include "server/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace greylight::server {

Status DropPrivileges(const std::string& user, const std::string& group,
                      const std::vector<std::string>& socket_paths) {
  if (::geteuid() != 0) return Status::Ok();
  const struct passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) return Status::InvalidArgument(fmt::format("unknown user: {}", user));
  uid_t uid = pw->pw_uid;
  const struct group* gr = ::getgrnam(group.c_str());
  if (gr == nullptr) return Status::InvalidArgument(fmt::format("unknown group: {}", group));
  gid_t gid = gr->gr_gid;
  for (const std::string& path : socket_paths) {
    if (::chown(path.c_str(), uid, gid) != 0) {
      return Status::IoError(fmt::format("can't chown {}: {}", path, std::strerror(errno)));
    }
  }
  if (uid == 0) return Status::Ok();  // --user=root: explicitly asked to stay root
  if (::setgid(gid) != 0 || ::initgroups(user.c_str(), gid) != 0 || ::setuid(uid) != 0) {
    return Status::IoError(
        fmt::format("can't switch to {}:{}: {}", user, group, std::strerror(errno)));
  }
  if (::setuid(0) == 0) return Status::IoError("privileges could be regained after setuid");
  return Status::Ok();
}

Status Daemonize() {
  pid_t pid = ::fork();
  if (pid < 0) return Status::IoError(fmt::format("fork: {}", std::strerror(errno)));
  if (pid > 0) std::_Exit(0);
  if (::setsid() < 0) return Status::IoError(fmt::format("setsid: {}", std::strerror(errno)));
  pid = ::fork();  // not a session leader: can never reacquire a terminal
  if (pid < 0) return Status::IoError(fmt::format("fork: {}", std::strerror(errno)));
  if (pid > 0) std::_Exit(0);
  if (::chdir("/") != 0) return Status::IoError(fmt::format("chdir /: {}", std::strerror(errno)));
  int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd < 0) return Status::IoError(fmt::format("open /dev/null: {}", std::strerror(errno)));
  ::dup2(null_fd, STDIN_FILENO);
  ::dup2(null_fd, STDOUT_FILENO);
  ::dup2(null_fd, STDERR_FILENO);
  if (null_fd > STDERR_FILENO) ::close(null_fd);
  return Status::Ok();
}

Result<size_t> RaiseDescriptorLimit() {
  struct rlimit files;
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0) {
    return Status::IoError(fmt::format("getrlimit(RLIMIT_NOFILE): {}", std::strerror(errno)));
  }
  if (files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &files) != 0) {
      return Status::IoError(
          fmt::format("setrlimit(RLIMIT_NOFILE, {}): {}", files.rlim_max, std::strerror(errno)));
    }
  }
  return static_cast<size_t>(files.rlim_cur);
}

Status WritePidFile(const std::string& path) {
  std::string temporary = path + ".tmp";
  FILE* file = std::fopen(temporary.c_str(), "w");
  if (file == nullptr) {
    return Status::IoError(fmt::format("can't write pid file {}: {}", path, std::strerror(errno)));
  }
  std::fprintf(file, "%d\n", static_cast<int>(::getpid()));
  bool ok = std::fclose(file) == 0 && std::rename(temporary.c_str(), path.c_str()) == 0;
  if (!ok)
    return Status::IoError(fmt::format("can't write pid file {}: {}", path, std::strerror(errno)));
  return Status::Ok();
}

}  // namespace greylight::server
