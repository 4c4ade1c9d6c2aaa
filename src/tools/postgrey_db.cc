#include "tools/postgrey_db.h"

#include <db.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>
#include <vector>

namespace greylight::tools {
namespace {

constexpr int kFileMode = 0600;

void RecordError(const DB_ENV* env, const char* /*prefix*/, const char* message) {
  auto* sink = static_cast<std::string*>(env->app_private);
  if (sink != nullptr) *sink = message;
}

// A BDB transaction log file: "log." followed by ten digits.
bool IsLogFile(const std::string& name) {
  if (name.size() != 14 || !name.starts_with("log.")) return false;
  for (char c : std::string_view(name).substr(4)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Holds a shared flock on postgrey.lock while postgrey's files are copied, so a postgrey
// that starts meanwhile fails to lock instead of writing under the copy.
class LockGuard {
 public:
  ~LockGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Busy if postgrey holds the lock; Ok if it is free or there is no lock file.
  Status Acquire(const std::filesystem::path& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      return errno == ENOENT ? Status::Ok()
                             : Status::IoError(fmt::format("can't open {}: {}", path.string(),
                                                           std::strerror(errno)));
    }
    if (::flock(fd_, LOCK_SH | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return Status::Busy(
            fmt::format("postgrey is running on {} ({} is locked): stop postgrey before importing",
                        path.parent_path().string(), path.string()));
      }
      return Status::IoError(fmt::format("can't lock {}: {}", path.string(), std::strerror(errno)));
    }
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

}  // namespace

Result<std::unique_ptr<PostgreyDatabase>> PostgreyDatabase::Open(
    const std::filesystem::path& dbdir, const std::filesystem::path& temp_base) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dbdir, ec)) {
    return Status::NotFound(fmt::format("postgrey dbdir {} is not a directory", dbdir.string()));
  }
  if (!std::filesystem::exists(dbdir / kTripletsFile, ec)) {
    return Status::NotFound(fmt::format("no postgrey database in {}: {} does not exist",
                                        dbdir.string(), (dbdir / kTripletsFile).string()));
  }
  LockGuard lock;
  if (Status locked = lock.Acquire(dbdir / kLockFile); !locked.ok()) return locked;

  std::string pattern = (temp_base / "greylight-import-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Status::IoError(fmt::format("can't create a temporary directory under {}: {}",
                                       temp_base.string(), std::strerror(errno)));
  }
  std::unique_ptr<PostgreyDatabase> database(new PostgreyDatabase());
  database->copy_dir_ = pattern;
  if (Status opened = database->OpenCopy(dbdir); !opened.ok()) return opened;
  return database;
}

Status PostgreyDatabase::OpenCopy(const std::filesystem::path& dbdir) {
  std::error_code ec;
  std::vector<std::string> files = {std::string(kTripletsFile)};
  const bool has_clients_file = std::filesystem::exists(dbdir / kClientsFile, ec);
  if (has_clients_file) files.emplace_back(kClientsFile);
  for (const auto& entry : std::filesystem::directory_iterator(dbdir, ec)) {
    std::string name = entry.path().filename().string();
    if (IsLogFile(name)) files.push_back(name);
  }
  if (ec) return Status::IoError(fmt::format("can't list {}: {}", dbdir.string(), ec.message()));
  for (const std::string& name : files) {
    std::filesystem::copy_file(dbdir / name, copy_dir_ / name, ec);
    if (ec) {
      return Status::IoError(fmt::format("can't copy {} to {}: {}", (dbdir / name).string(),
                                         copy_dir_.string(), ec.message()));
    }
  }

  int rc = db_env_create(&env_, 0);
  if (rc != 0) return Status::IoError(fmt::format("db_env_create: {}", db_strerror(rc)));
  env_->app_private = &last_error_;
  env_->set_errcall(env_, RecordError);
  // postgrey's own flags (P:700-705) plus DB_PRIVATE: the copy is ours alone, so the
  // environment's regions live in this process's memory and nothing is shared.
  rc = env_->open(env_, copy_dir_.c_str(),
                  DB_CREATE | DB_RECOVER | DB_INIT_TXN | DB_INIT_MPOOL | DB_INIT_LOG | DB_PRIVATE,
                  kFileMode);
  if (rc != 0) {
    return Status::Corruption(fmt::format("Berkeley DB recovery of {} failed: {}{}", dbdir.string(),
                                          db_strerror(rc),
                                          last_error_.empty() ? "" : " (" + last_error_ + ")"));
  }
  std::vector<std::pair<std::string_view, DB**>> databases = {{kTripletsFile, &triplets_}};
  if (has_clients_file) databases.emplace_back(kClientsFile, &clients_);
  for (auto [name, slot] : databases) {
    DB*& db = *slot;
    if ((rc = db_create(&db, env_, 0)) != 0) {
      return Status::IoError(fmt::format("db_create: {}", db_strerror(rc)));
    }
    rc = db->open(db, nullptr, std::string(name).c_str(), nullptr, DB_BTREE, DB_RDONLY, 0);
    if (rc != 0) {
      return Status::Corruption(fmt::format("can't open {} as a Berkeley DB BTree: {}{}",
                                            (dbdir / name).string(), db_strerror(rc),
                                            last_error_.empty() ? "" : " (" + last_error_ + ")"));
    }
  }
  return Status::Ok();
}

PostgreyDatabase::~PostgreyDatabase() {
  for (DB* db : {triplets_, clients_}) {
    if (db != nullptr) db->close(db, 0);
  }
  if (env_ != nullptr) env_->close(env_, 0);
  if (!copy_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(copy_dir_, ignored);
  }
}

Status PostgreyDatabase::ForEach(store::Table table, const store::VisitFunction& visit) {
  DB* db = table == store::Table::kTriplets ? triplets_ : clients_;
  if (db == nullptr) return Status::Ok();
  DBC* cursor = nullptr;
  int rc = db->cursor(db, nullptr, &cursor, 0);
  if (rc != 0) return Status::IoError(fmt::format("cursor: {}", db_strerror(rc)));
  DBT key{};
  DBT value{};
  while ((rc = cursor->get(cursor, &key, &value, DB_NEXT)) == 0) {
    std::string_view k(static_cast<const char*>(key.data), key.size);
    std::string_view v(static_cast<const char*>(value.data), value.size);
    if (!visit(k, v)) break;
  }
  cursor->close(cursor);
  if (rc != 0 && rc != DB_NOTFOUND) {
    return Status::Corruption(
        fmt::format("reading {}: {}", store::TableName(table), db_strerror(rc)));
  }
  return Status::Ok();
}

}  // namespace greylight::tools
