#include "store/lmdb/lmdb_dbdir.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/log.h"

namespace greylight::store {

Result<DbdirLock> DbdirLock::Acquire(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IoError(
        fmt::format("can't open lock file: {}: {}", path.string(), std::strerror(errno)));
  }
  DbdirLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status::Busy(fmt::format("locked: {}", path.string()));
    return Status::IoError(fmt::format("can't lock {}: {}", path.string(), std::strerror(errno)));
  }
  return lock;
}

DbdirLock& DbdirLock::operator=(DbdirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

DbdirLock::~DbdirLock() {
  // close(2) of a descriptor only ever read: an error here loses nothing.
  if (fd_ >= 0 && ::close(fd_) != 0) {
    log::Debug("lmdb: closing the dbdir lock: {}", std::strerror(errno));
  }
}

Status CreateDbdir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError(fmt::format("can't create {}: {}", dir.string(), ec.message()));
  return Status::Ok();
}

Status HandToDirectoryOwner(const std::filesystem::path& dir,
                            std::initializer_list<std::filesystem::path> files) {
  if (::geteuid() != 0) return Status::Ok();
  struct stat dir_stat;
  if (::stat(dir.c_str(), &dir_stat) != 0) {
    return Status::IoError(fmt::format("can't stat {}: {}", dir.string(), std::strerror(errno)));
  }
  if (dir_stat.st_uid == 0 && dir_stat.st_gid == 0) return Status::Ok();
  for (const std::filesystem::path& file : files) {
    if (::lchown(file.c_str(), dir_stat.st_uid, dir_stat.st_gid) != 0 && errno != ENOENT) {
      return Status::IoError(fmt::format("can't hand {} to the owner of {}: {}", file.string(),
                                         dir.string(), std::strerror(errno)));
    }
  }
  return Status::Ok();
}

}  // namespace greylight::store
