#pragma once

// Test helper (header-only, for *_test.cc): writes Berkeley DB state the way postgrey
// does, to exercise the import without a running postgrey.

#include <db.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>

namespace greylight::tools::testing_postgrey {

using Records = std::map<std::string, std::string>;

// Writes `triplets` to postgrey.db and `clients` to postgrey_clients.db in `dir` like
// postgrey (P:690-721): a transactional environment with logging, each put its own
// auto-committed transaction. With `crash`, the writer exits without closing anything,
// as postgrey killed by SIGKILL would: the records are then only in the transaction log,
// not in the database files. Runs in a child process so that the crash is real.
inline void WritePostgreyState(const std::filesystem::path& dir, const Records& triplets,
                               const Records& clients, bool crash) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    DB_ENV* env = nullptr;
    if (db_env_create(&env, 0) != 0) _exit(10);
    env->set_flags(env, DB_AUTO_COMMIT, 1);
    if (env->open(env, dir.c_str(),
                  DB_CREATE | DB_RECOVER | DB_INIT_TXN | DB_INIT_MPOOL | DB_INIT_LOG, 0600) != 0) {
      _exit(11);
    }
    for (const auto& [file, records] :
         {std::pair{"postgrey.db", &triplets}, std::pair{"postgrey_clients.db", &clients}}) {
      DB* db = nullptr;
      if (db_create(&db, env, 0) != 0) _exit(12);
      if (db->open(db, nullptr, file, nullptr, DB_BTREE, DB_CREATE, 0600) != 0) _exit(13);
      for (const auto& [key, value] : *records) {
        DBT k{}, v{};
        k.data = const_cast<char*>(key.data());
        k.size = static_cast<u_int32_t>(key.size());
        v.data = const_cast<char*>(value.data());
        v.size = static_cast<u_int32_t>(value.size());
        if (db->put(db, nullptr, &k, &v, 0) != 0) _exit(14);
      }
      if (!crash) db->close(db, 0);
    }
    if (!crash) env->close(env, 0);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace greylight::tools::testing_postgrey
