#pragma once

// Reading postgrey's Berkeley DB state (compat spec 8.1, 8.2) for
// `greylight import-postgrey`, through Debian's libdb5.3 C API.
//
// postgrey keeps its records in a transactional BDB environment: committed updates may
// still sit only in the environment's log and memory pool, not in postgrey.db (after a
// crash or a kill -9 the file alone can even be empty). Reading the file directly, as
// postgreyreport does, can therefore miss records; joining postgrey's environment would
// write to it. So Open() copies the database files and logs into a private temporary
// directory and runs BDB recovery there, exactly what postgrey itself does at its next
// start, and reads the recovered copy. postgrey's directory is never written.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "store/store.h"
#include "util/status.h"

typedef struct __db_env DB_ENV;
typedef struct __db DB;

namespace greylight::tools {

class PostgreyDatabase {
 public:
  static constexpr std::string_view kTripletsFile = "postgrey.db";
  static constexpr std::string_view kClientsFile = "postgrey_clients.db";
  static constexpr std::string_view kLockFile = "postgrey.lock";

  // Opens postgrey's state in `dbdir`, recovered in a copy made under `temp_base`.
  // Fails with NotFound if `dbdir` has no postgrey.db, with Busy if a running postgrey
  // holds postgrey.lock, and with IoError or Corruption if copying, recovery or opening
  // fails. postgrey_clients.db is optional (postgrey with --auto-whitelist-clients=0).
  static Result<std::unique_ptr<PostgreyDatabase>> Open(const std::filesystem::path& dbdir,
                                                        const std::filesystem::path& temp_base);
  // Closes the databases and removes the temporary copy.
  ~PostgreyDatabase();
  PostgreyDatabase(const PostgreyDatabase&) = delete;
  PostgreyDatabase& operator=(const PostgreyDatabase&) = delete;

  bool has_clients() const { return clients_ != nullptr; }

  // Calls `visit` with every raw key and value of postgrey.db (kTriplets) or
  // postgrey_clients.db (kClients), in key order, until it returns false.
  Status ForEach(store::Table table, const store::VisitFunction& visit);

 private:
  PostgreyDatabase() = default;
  Status OpenCopy(const std::filesystem::path& dbdir);

  std::filesystem::path copy_dir_;
  std::string last_error_;  // the latest message of BDB's error callback
  DB_ENV* env_ = nullptr;
  DB* triplets_ = nullptr;
  DB* clients_ = nullptr;
};

}  // namespace greylight::tools
