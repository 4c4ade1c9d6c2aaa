#pragma once

#include <filesystem>

#include "util/status.h"

namespace greylight::store {

// The files of an LMDB dbdir other than the database itself: the directory, the daemon's
// lock, and their owner. Internal to the LMDB backend (lmdb_store.cc).

// Takes <dir>/`lock_name` exclusively (flock) and keeps it while the object lives, so only
// one daemon owns a dbdir.
class DbdirLock {
 public:
  // kBusy ("locked: PATH") if another process holds it, kIoError if it cannot be opened.
  static Result<DbdirLock> Acquire(const std::filesystem::path& path);
  DbdirLock(DbdirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DbdirLock& operator=(DbdirLock&& other) noexcept;
  ~DbdirLock();

 private:
  explicit DbdirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Creates `dir` (and its parents) if missing. kIoError naming the directory otherwise.
Status CreateDbdir(const std::filesystem::path& dir);

// Why: greylightd runs as its own user (greylight) after dropping privileges, while an
// admin typically runs `greylight import-postgrey` or `migrate` as root into
// /var/lib/greylight, a directory that user owns. Files created there by root with mode 0600
// would lock the daemon out, so files a root process has just created go to the
// directory's owner. Does nothing unless running as root and the directory is owned by
// another user or group; a missing file is skipped.
Status HandToDirectoryOwner(const std::filesystem::path& dir,
                            std::initializer_list<std::filesystem::path> files);

}  // namespace greylight::store
