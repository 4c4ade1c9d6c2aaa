#include "tools/commands.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "policy/records.h"
#include "store/lmdb/lmdb_store.h"
#include "support/temp_dir.h"
#include "tools/postgrey_test_writer.h"
#include "tools/tool_store.h"

namespace greylight::tools {
namespace {

using testing_support::TempDir;

constexpr long long T = 1800000000;
const std::string kKey = "192.0.2.0/alice@example.net/bob@example.org";

struct Outcome {
  int status;
  std::string out;
  std::string err;
};

class CommandsTest : public testing::Test {
 protected:
  void SetUp() override {
    dbdir_ = dir_.path() / "db";
    // A store greylightd would have written.
    store::LmdbOptions options;
    options.dbdir = dbdir_;
    options.commit_interval = std::chrono::milliseconds(0);
    auto store = store::LmdbStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->Put(store::Table::kTriplets, kKey, "1800000000,1800000300").ok());
    ASSERT_TRUE((*store)
                    ->Put(store::Table::kTriplets,
                          "192.0.2.0/alice@example.net/pending@example.org",
                          "1800000010,1800000010")
                    .ok());
    ASSERT_TRUE((*store)->Put(store::Table::kClients, "192.0.2.10", "1,1800000300").ok());
  }

  Outcome Run(std::vector<std::string> args, bool with_dbdir = true, std::string input = "") {
    if (with_dbdir) {
      args.push_back("--dbdir=" + dbdir_.string());
      args.push_back("--whitelist-clients=/dev/null");
      args.push_back("--whitelist-recipients=/dev/null");
    }
    std::istringstream in(input);
    std::ostringstream out, err;
    FakeClock clock(FromUnixSeconds(T + 400));
    ToolEnvironment env{in, out, err, clock, dir_.path()};
    int status = RunTool(args, env);
    return {status, out.str(), err.str()};
  }

  std::optional<std::string> Stored(const std::filesystem::path& dbdir, store::Table table,
                                    const std::string& key) {
    cli::PolicyConfig config;
    auto store = OpenToolStore("lmdb:" + dbdir.string(), config);
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (!store.ok()) return std::nullopt;
    return (*store)->Get(table, key).value();
  }

  TempDir dir_;
  std::filesystem::path dbdir_;
};

TEST_F(CommandsTest, HelpAndUsageErrors) {
  Outcome help = Run({"--help"}, false);
  EXPECT_EQ(help.status, kExitOk);
  for (std::string_view command :
       {"explain", "stats", "list", "delete", "pass", "report", "migrate", "import-postgrey"}) {
    EXPECT_NE(help.out.find(fmt::format("\n  {} ", command)), std::string::npos) << command;
    Outcome command_help = Run({std::string(command), "--help"}, false);
    EXPECT_EQ(command_help.status, kExitOk) << command;
    EXPECT_TRUE(command_help.out.starts_with("Usage: greylight " + std::string(command)))
        << command_help.out;
  }
  EXPECT_NE(Run({"list", "--help"}, false).out.find("--delay=SECONDS"), std::string::npos);
  EXPECT_EQ(Run({}, false).status, kExitUsage);

  Outcome unknown = Run({"frobnicate"}, false);
  EXPECT_EQ(unknown.status, kExitUsage);
  EXPECT_EQ(unknown.err, "greylight: unknown command 'frobnicate' (see greylight --help)\n");
  Outcome bad_option = Run({"stats", "--nope"});
  EXPECT_EQ(bad_option.status, kExitUsage);
  EXPECT_EQ(bad_option.err, "greylight stats: Unknown option: nope (see greylight stats --help)\n");
  EXPECT_EQ(Run({"stats", "--delay=0"}).status, kExitUsage);
  EXPECT_EQ(Run({"stats", "--format=csv"}).status, kExitUsage);
  EXPECT_EQ(Run({"list", "--state=maybe"}).status, kExitUsage);
  EXPECT_EQ(Run({"explain", "--client-address=192.0.2.10"}).status, kExitUsage);
  EXPECT_EQ(Run({"pass", "--key=k", "--sender=a@b"}).status, kExitUsage);
  EXPECT_EQ(Run({"delete"}).status, kExitUsage);
  EXPECT_EQ(Run({"migrate", "--from=lmdb:"}).status, kExitUsage);
  EXPECT_EQ(Run({"import-postgrey"}, false).status, kExitUsage);
  Outcome privacy = Run({"list", "--privacy", "--sender=a@b"});
  EXPECT_EQ(privacy.status, kExitUsage);
  EXPECT_NE(privacy.err.find("need clear keys"), std::string::npos) << privacy.err;
}

TEST_F(CommandsTest, MissingStoreAndUnsupportedUris) {
  Outcome missing = Run({"stats", "--store=lmdb:" + (dir_.path() / "nowhere").string()});
  EXPECT_EQ(missing.status, kExitStore);
  EXPECT_EQ(missing.err, fmt::format("greylight stats: no greylight store at {0}/nowhere: "
                                     "{0}/nowhere/greylight.lmdb does not exist\n",
                                     dir_.path().string()));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "nowhere")) << "reading creates nothing";
  Outcome redis = Run({"list", "--store=redis://"});
  EXPECT_EQ(redis.status, kExitUsage) << redis.err;
  EXPECT_EQ(Run({"list", "--store=mysql://x"}).status, kExitUsage);
}

TEST_F(CommandsTest, StatsUsesTheClock) {
  Outcome stats = Run({"stats", "--format=json"});
  EXPECT_EQ(stats.status, kExitOk) << stats.err;
  EXPECT_EQ(stats.out,
            "{\"at\":1800000400,\"triplets\":{\"total\":2,\"pending\":1,\"passed\":1,\"expired\":0,"
            "\"malformed\":0,\"age_by_last_seen\":{\"lt_1h\":2,\"lt_1d\":0,\"lt_7d\":0,"
            "\"lt_35d\":0,\"older\":0}},\"clients\":{\"total\":1,\"auto_whitelisted\":0,"
            "\"below_threshold\":1,\"expired\":0,\"malformed\":0,\"threshold\":5}}\n");
  Outcome later = Run({"stats", "--format=json", "--at=" + std::to_string(T + 3 * 86400)});
  EXPECT_NE(later.out.find("\"expired\":1,"), std::string::npos) << later.out;
  EXPECT_NE(later.out.find("\"lt_7d\":2"), std::string::npos) << later.out;
}

TEST_F(CommandsTest, PassThenRefuseASecondTime) {
  const std::string pending = "192.0.2.0/alice@example.net/pending@example.org";
  Outcome passed = Run({"pass", "--client-address=192.0.2.77", "--sender=Alice+x@example.net",
                        "--recipient=Pending@Example.org"});
  EXPECT_EQ(passed.status, kExitOk) << passed.err;
  EXPECT_EQ(passed.out, "passed triplet " + pending +
                            ": first and last seen set to 2027-01-15T08:01:40Z (1800000100) (now "
                            "- delay 300 s (5m)); its next request within 172500 s (1d 23h 55m) "
                            "is its first accepted delivery\n");
  EXPECT_EQ(Stored(dbdir_, store::Table::kTriplets, pending), "1800000100,1800000100");
  Outcome again = Run({"pass", "--key=" + kKey});
  EXPECT_EQ(again.status, kExitRefused);
  EXPECT_NE(again.err.find("has already passed"), std::string::npos) << again.err;
  Outcome absent = Run({"pass", "--key=192.0.2.0/x@y/z@w"});
  EXPECT_EQ(absent.status, kExitRefused);
  EXPECT_EQ(absent.err, "greylight pass: no triplet 192.0.2.0/x@y/z@w\n");
}

TEST_F(CommandsTest, DeleteTripletAndClient) {
  Outcome deleted = Run({"delete", "--key=" + kKey});
  EXPECT_EQ(deleted.status, kExitOk) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted triplet " + kKey + " (was 1800000000,1800000300)\n");
  EXPECT_EQ(Stored(dbdir_, store::Table::kTriplets, kKey), std::nullopt);
  EXPECT_EQ(Run({"delete", "--key=" + kKey}).status, kExitRefused);
  Outcome client = Run({"delete", "--client=192.0.2.10"});
  EXPECT_EQ(client.status, kExitOk) << client.err;
  EXPECT_EQ(Stored(dbdir_, store::Table::kClients, "192.0.2.10"), std::nullopt);
  EXPECT_EQ(Run({"delete", "--client=192.0.2.10"}).status, kExitRefused);
}

TEST_F(CommandsTest, MigrateCopiesEverythingAndRefusesItself) {
  const std::string target = (dir_.path() / "copy").string();
  Outcome migrated = Run({"migrate", "--from=lmdb:", "--to=lmdb:" + target});
  EXPECT_EQ(migrated.status, kExitOk) << migrated.err;
  EXPECT_EQ(migrated.out,
            "migrated 2 triplets and 1 client records from lmdb: to lmdb:" + target + "\n");
  EXPECT_EQ(Stored(target, store::Table::kTriplets, kKey), "1800000000,1800000300");
  EXPECT_EQ(Stored(target, store::Table::kClients, "192.0.2.10"), "1,1800000300");
  Outcome same = Run({"migrate", "--from=lmdb:", "--to=lmdb:" + dbdir_.string() + "/."});
  EXPECT_EQ(same.status, kExitUsage);
  EXPECT_NE(same.err.find("name the same store"), std::string::npos) << same.err;
  Outcome missing = Run({"migrate", "--from=lmdb:" + target + "-none", "--to=lmdb:" + target});
  EXPECT_EQ(missing.status, kExitStore);
}

TEST_F(CommandsTest, StoreCreatedByRootGoesToTheDirectoryOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  constexpr uid_t kNobody = 65534;
  const std::filesystem::path target = dir_.path() / "daemon-owned";
  std::filesystem::create_directory(target);
  ASSERT_EQ(::chown(target.c_str(), kNobody, kNobody), 0);
  Outcome migrated = Run({"migrate", "--from=lmdb:", "--to=lmdb:" + target.string()});
  ASSERT_EQ(migrated.status, kExitOk) << migrated.err;
  for (std::string_view name : {"greylight.lmdb", "greylight.lmdb-lock"}) {
    struct stat file;
    ASSERT_EQ(::stat((target / name).c_str(), &file), 0) << name;
    EXPECT_EQ(file.st_uid, kNobody) << name;
    EXPECT_EQ(file.st_gid, kNobody) << name;
  }
  // The source store, which existed, keeps its owner.
  struct stat source;
  ASSERT_EQ(::stat((dbdir_ / "greylight.lmdb").c_str(), &source), 0);
  EXPECT_EQ(source.st_uid, 0u);
}

TEST_F(CommandsTest, ReportReadsStandardInput) {
  std::string log =
      "mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 450 4.2.0 "
      "<bob@example.org>: Recipient address rejected: Greylisted, see "
      "http://postgrey.schweikert.ch/help/example.org.html; from=<spam@example.com> "
      "to=<bob@example.org> proto=ESMTP helo=<x>\n"
      "mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from mail.example.net[192.0.2.10]: 450 4.2.0 "
      "<bob@example.org>: Recipient address rejected: Greylisted, see "
      "http://postgrey.schweikert.ch/help/example.org.html; from=<alice@example.net> "
      "to=<bob@example.org> proto=ESMTP helo=<x>\r\n"
      "mx greylightd[2]: action=pass, reason=triplet found, delay=300, client_name=m\n";
  Outcome report = Run({"report"}, true, log);
  EXPECT_EQ(report.status, kExitOk) << report.err;
  EXPECT_EQ(report.out,
            "198.51.100.7 unknown spam@example.com bob@example.org\n"
            "\n"
            "summary:\n"
            "  messages delayed: 1 (median 300 s, p90 300 s)\n"
            "  greylisted triplets: 2, never came back: 1\n"
            "  greylisted clients: 2, never retried: 1 (50.0%)\n");
  Outcome no_file = Run({"report", "--log=" + (dir_.path() / "no.log").string()});
  EXPECT_EQ(no_file.status, kExitUsage);
}

TEST_F(CommandsTest, ImportPostgreyReportsMissingFiles) {
  Outcome missing = Run({"import-postgrey", "--dbdir=" + (dir_.path() / "pg").string(),
                         "--store=lmdb:" + (dir_.path() / "target").string()},
                        false);
  EXPECT_EQ(missing.status, kExitStore);
  EXPECT_NE(missing.err.find("is not a directory"), std::string::npos) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "target"));
}

TEST_F(CommandsTest, ImportPostgreySkipsMalformedRecordsWithAWarning) {
  const std::filesystem::path postgrey = dir_.path() / "pg";
  std::filesystem::create_directory(postgrey);
  testing_postgrey::WritePostgreyState(
      postgrey,
      {{"192.0.2.0/alice@example.net/bob@example.org", "1800000000,1800000300"},
       {"192.0.2.0/old@example.net/bob@example.org", "1800000000,1800000010,7"},
       {"192.0.2.0/bad@example.net/bob@example.org", "garbage"}},
      {{"192.0.2.10", "5,1800000300"}, {"198.51.100.7", "x,y"}}, /*crash=*/true);
  const std::filesystem::path target = dir_.path() / "imported";
  Outcome imported =
      Run({"import-postgrey", "--dbdir=" + postgrey.string(), "--store=lmdb:" + target.string()},
          false);
  EXPECT_EQ(imported.status, kExitOk) << imported.err;
  EXPECT_EQ(imported.out,
            fmt::format("imported 2 triplets and 1 client records from postgrey at {} "
                        "into lmdb:{} (2 malformed records skipped)\n",
                        postgrey.string(), target.string()));
  EXPECT_EQ(imported.err,
            "greylight import-postgrey: warning: skipping malformed triplet record "
            "'192.0.2.0/bad@example.net/bob@example.org': value 'garbage'\n"
            "greylight import-postgrey: warning: skipping malformed client record "
            "'198.51.100.7': value 'x,y'\n");
  EXPECT_EQ(Stored(target, store::Table::kTriplets, "192.0.2.0/alice@example.net/bob@example.org"),
            "1800000000,1800000300");
  // An old postgrey's third field is dropped.
  EXPECT_EQ(Stored(target, store::Table::kTriplets, "192.0.2.0/old@example.net/bob@example.org"),
            "1800000000,1800000010");
  EXPECT_EQ(Stored(target, store::Table::kClients, "192.0.2.10"), "5,1800000300");
  EXPECT_EQ(Stored(target, store::Table::kTriplets, "192.0.2.0/bad@example.net/bob@example.org"),
            std::nullopt);
}

}  // namespace
}  // namespace greylight::tools
