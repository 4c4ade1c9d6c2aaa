#include "tools/postgrey_db.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <vector>

#include "support/temp_dir.h"
#include "tools/postgrey_test_writer.h"

namespace greylight::tools {
namespace {

using testing_postgrey::Records;
using testing_postgrey::WritePostgreyState;
using testing_support::TempDir;

Records ReadAll(PostgreyDatabase& database, store::Table table) {
  Records records;
  Status status = database.ForEach(table, [&](std::string_view key, std::string_view value) {
    records.emplace(key, value);
    return true;
  });
  EXPECT_TRUE(status.ok()) << status.message();
  return records;
}

// Reads a database file directly, without its environment, as postgreyreport does.
size_t CountDirectly(const std::filesystem::path& file) {
  DB* db = nullptr;
  if (db_create(&db, nullptr, 0) != 0) return 0;
  size_t count = 0;
  if (db->open(db, nullptr, file.c_str(), nullptr, DB_BTREE, DB_RDONLY, 0) == 0) {
    DBC* cursor = nullptr;
    if (db->cursor(db, nullptr, &cursor, 0) == 0) {
      DBT key{}, value{};
      while (cursor->get(cursor, &key, &value, DB_NEXT) == 0) ++count;
      cursor->close(cursor);
    }
  }
  db->close(db, 0);
  return count;
}

const Records kTriplets = {
    {"192.0.2.0/alice@example.net/bob@example.org", "1800000000,1800000300"},
    {"192.0.2.0/alice@example.net/pending@example.org", "1800000010,1800000010"},
    {"2001:db8:1:2:0:0:0:0/v6@example.net/bob@example.org", "1800000000,1800000400,5"},
    {"198.51.100.0/bad@example.net/bob@example.org", "not-a-record"},
};
const Records kClients = {{"192.0.2.10", "1,1800000300"}, {"2001:DB8:1:2:0:0:0:5", "7,1800000400"}};

std::vector<std::string> Listing(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(
        entry.path().filename().string() + ":" +
        std::to_string(std::filesystem::file_size(entry.path())) + ":" +
        std::to_string(std::filesystem::last_write_time(entry.path()).time_since_epoch().count()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(PostgreyDatabaseTest, ReadsACleanlyClosedDatabase) {
  TempDir postgrey, temp;
  WritePostgreyState(postgrey.path(), kTriplets, kClients, /*crash=*/false);
  auto database = PostgreyDatabase::Open(postgrey.path(), temp.path());
  ASSERT_TRUE(database.ok()) << database.status().message();
  EXPECT_TRUE((*database)->has_clients());
  EXPECT_EQ(ReadAll(**database, store::Table::kTriplets), kTriplets);
  EXPECT_EQ(ReadAll(**database, store::Table::kClients), kClients);
}

TEST(PostgreyDatabaseTest, RecoversRecordsThatAreOnlyInTheLogAfterACrash) {
  TempDir postgrey, temp;
  WritePostgreyState(postgrey.path(), kTriplets, kClients, /*crash=*/true);
  std::vector<std::string> before = Listing(postgrey.path());
  // Why Open() recovers a copy: the file alone does not have the records yet.
  EXPECT_EQ(CountDirectly(postgrey.path() / "postgrey.db"), 0u);
  {
    auto database = PostgreyDatabase::Open(postgrey.path(), temp.path());
    ASSERT_TRUE(database.ok()) << database.status().message();
    EXPECT_EQ(ReadAll(**database, store::Table::kTriplets), kTriplets);
    EXPECT_EQ(ReadAll(**database, store::Table::kClients), kClients);
    EXPECT_FALSE(std::filesystem::is_empty(temp.path())) << "the copy lives in temp_base";
  }
  EXPECT_TRUE(std::filesystem::is_empty(temp.path())) << "the copy is removed";
  EXPECT_EQ(Listing(postgrey.path()), before) << "postgrey's directory is never written";
}

TEST(PostgreyDatabaseTest, ClientsFileIsOptional) {
  TempDir postgrey, temp;
  WritePostgreyState(postgrey.path(), kTriplets, {}, /*crash=*/false);
  std::filesystem::remove(postgrey.path() / "postgrey_clients.db");
  auto database = PostgreyDatabase::Open(postgrey.path(), temp.path());
  ASSERT_TRUE(database.ok()) << database.status().message();
  EXPECT_FALSE((*database)->has_clients());
  EXPECT_EQ(ReadAll(**database, store::Table::kClients), Records{});
  EXPECT_EQ(ReadAll(**database, store::Table::kTriplets).size(), kTriplets.size());
}

TEST(PostgreyDatabaseTest, MissingDatabaseIsNotFound) {
  TempDir postgrey, temp;
  auto missing_dir = PostgreyDatabase::Open(postgrey.path() / "nope", temp.path());
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.status().code(), Status::Code::kNotFound);
  auto missing_file = PostgreyDatabase::Open(postgrey.path(), temp.path());
  ASSERT_FALSE(missing_file.ok());
  EXPECT_EQ(missing_file.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing_file.status().message().find("postgrey.db does not exist"), std::string::npos)
      << missing_file.status().message();
}

TEST(PostgreyDatabaseTest, RunningPostgreyIsBusy) {
  TempDir postgrey, temp;
  WritePostgreyState(postgrey.path(), kTriplets, kClients, /*crash=*/false);
  std::string lock = (postgrey.path() / "postgrey.lock").string();
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto database = PostgreyDatabase::Open(postgrey.path(), temp.path());
  ::close(fd);
  ASSERT_FALSE(database.ok());
  EXPECT_EQ(database.status().code(), Status::Code::kBusy);
  EXPECT_NE(database.status().message().find("stop postgrey"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(temp.path()));
  // Unlocked (postgrey stopped): the same directory opens.
  EXPECT_TRUE(PostgreyDatabase::Open(postgrey.path(), temp.path()).ok());
}

TEST(PostgreyDatabaseTest, NotABerkeleyDatabaseIsAnError) {
  TempDir postgrey, temp;
  std::ofstream(postgrey.path() / "postgrey.db") << "this is not a btree";
  auto database = PostgreyDatabase::Open(postgrey.path(), temp.path());
  ASSERT_FALSE(database.ok());
  EXPECT_NE(database.status().message().find("postgrey.db"), std::string::npos)
      << database.status().message();
}

}  // namespace
}  // namespace greylight::tools
