#include "tools/commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "policy/ip_address.h"
#include "policy/records.h"
#include "policy/triplet_key.h"
#include "store/lmdb/lmdb_store.h"
#include "support/temp_dir.h"
#include "tools/postgrey_test_writer.h"
#include "tools/tool_store.h"

namespace greylight::tools {
namespace {

using testing_support::TempDir;

constexpr long long T = 1800000000;
const std::string kKey = "192.0.2.0/alice@example.net/bob@example.org";
const std::string kReplyKey = "carol@remote.example/bob@example.org";

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
    options.store.dbdir = dbdir_;
    options.store.commit_interval = std::chrono::milliseconds(0);
    auto store = store::OpenLmdbStore(options, store_clock_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->Put(store::Table::kTriplets, kKey, "1800000000,1800000300").ok());
    ASSERT_TRUE((*store)
                    ->Put(store::Table::kTriplets,
                          "192.0.2.0/alice@example.net/pending@example.org",
                          "1800000010,1800000010")
                    .ok());
    ASSERT_TRUE((*store)->Put(store::Table::kClients, "192.0.2.10", "1,1800000300").ok());
    // One client trapped at the clock's time (T + 400), one whose trap has ended.
    ASSERT_TRUE((*store)->Put(store::Table::kTraps, "192.0.2.10", "1800003600,1800000000").ok());
    ASSERT_TRUE((*store)->Put(store::Table::kTraps, "198.51.100.7", "1800000100,1799990000").ok());
    // bob wrote twice to carol (replies pass), once to dave, more than max-age ago.
    ASSERT_TRUE((*store)->Put(store::Table::kReplies, kReplyKey, "2,1800000000").ok());
    ASSERT_TRUE(
        (*store)
            ->Put(store::Table::kReplies, "dave@old.example/bob@example.org", "1,1796000000")
            .ok());
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

  // The test's store, opened as the tool opens it.
  std::unique_ptr<store::Store> Store() {
    cli::PolicyConfig config;
    auto store = OpenToolStore("lmdb:" + dbdir_.string(), config, store_clock_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store.value()) : nullptr;
  }

  std::optional<std::string> Stored(const std::filesystem::path& dbdir, store::Table table,
                                    const std::string& key) {
    cli::PolicyConfig config;
    auto store = OpenToolStore("lmdb:" + dbdir.string(), config, store_clock_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (!store.ok()) return std::nullopt;
    return (*store)->Get(table, key).value();
  }

  FakeClock store_clock_{FromUnixSeconds(T + 400)};  // the stores' clock, as in Run()
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
  EXPECT_EQ(Run({"stats", "--delay=0"}).status, kExitConfig);
  EXPECT_EQ(Run({"stats", "--format=csv"}).status, kExitConfig);
  EXPECT_EQ(Run({"list", "--state=maybe"}).status, kExitConfig);
  EXPECT_EQ(Run({"explain", "--client-address=192.0.2.10"}).status, kExitUsage);
  EXPECT_EQ(Run({"pass", "--key=k", "--sender=a@b"}).status, kExitConfig);
  EXPECT_EQ(Run({"delete"}).status, kExitConfig);
  EXPECT_EQ(Run({"migrate", "--from=lmdb:"}).status, kExitUsage);
  EXPECT_EQ(Run({"import-postgrey"}, false).status, kExitUsage);
  Outcome privacy = Run({"list", "--privacy", "--sender=a@b"});
  EXPECT_EQ(privacy.status, kExitConfig);
  EXPECT_NE(privacy.err.find("need clear keys"), std::string::npos) << privacy.err;
}

TEST_F(CommandsTest, MissingStoreAndUnsupportedUris) {
  Outcome missing = Run({"stats", "--store=lmdb:" + (dir_.path() / "nowhere").string()});
  EXPECT_EQ(missing.status, kExitUnavailable);
  EXPECT_EQ(missing.err, fmt::format("greylight stats: no greylight store at {0}/nowhere: "
                                     "{0}/nowhere/greylight.lmdb does not exist\n",
                                     dir_.path().string()));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "nowhere")) << "reading creates nothing";
  Outcome redis = Run({"list", "--store=redis://"});
  EXPECT_EQ(redis.status, kExitConfig) << redis.err;
  EXPECT_EQ(Run({"list", "--store=mysql://x"}).status, kExitConfig);
}

TEST_F(CommandsTest, StatsUsesTheClock) {
  Outcome stats = Run({"stats", "--format=json"});
  EXPECT_EQ(stats.status, kExitOk) << stats.err;
  EXPECT_EQ(stats.out,
            "{\"at\":1800000400,\"triplets\":{\"total\":2,\"pending\":1,\"passed\":1,\"expired\":0,"
            "\"malformed\":0,\"age_by_last_seen\":{\"lt_1h\":2,\"lt_1d\":0,\"lt_7d\":0,"
            "\"lt_35d\":0,\"older\":0}},\"clients\":{\"total\":1,\"auto_whitelisted\":0,"
            "\"below_threshold\":1,\"expired\":0,\"malformed\":0,\"threshold\":5},"
            "\"traps\":{\"total\":2,\"trapping\":1,\"expired\":1,\"malformed\":0},"
            "\"replies\":{\"total\":2,\"live\":1,\"expired\":1,\"malformed\":0}}\n");
  Outcome later = Run({"stats", "--format=json", "--at=" + std::to_string(T + 3 * 86400)});
  EXPECT_NE(later.out.find("\"expired\":1,"), std::string::npos) << later.out;
  EXPECT_NE(later.out.find("\"lt_7d\":2"), std::string::npos) << later.out;
  EXPECT_NE(later.out.find("\"traps\":{\"total\":2,\"trapping\":0,\"expired\":2,"),
            std::string::npos)
      << later.out;
}

TEST_F(CommandsTest, StatsTextCountsTraps) {
  Outcome stats = Run({"stats"});
  EXPECT_EQ(stats.status, kExitOk) << stats.err;
  EXPECT_TRUE(
      stats.out.ends_with("traps: 2\n"
                          "  trapping now: 1\n"
                          "  expired, awaiting removal: 1\n"
                          "  malformed: 0\n"
                          "replies: 2\n"
                          "  live: 1\n"
                          "  expired, awaiting removal: 1\n"
                          "  malformed: 0\n"))
      << stats.out;
}

TEST_F(CommandsTest, ListTraps) {
  Outcome text = Run({"list", "--traps"});
  EXPECT_EQ(text.status, kExitOk) << text.err;
  EXPECT_EQ(text.out,
            "STATE   UNTIL                LAST HIT             CLIENT\n"
            "trapped 2027-01-15T09:00:00Z 2027-01-15T08:00:00Z 192.0.2.10\n"
            "expired 2027-01-15T08:01:40Z 2027-01-15T05:13:20Z 198.51.100.7\n");
  Outcome csv = Run({"list", "--traps", "--format=csv", "--at=1800000050"});
  EXPECT_EQ(csv.out,
            "client,until,last_hit,state\n"
            "192.0.2.10,1800003600,1800000000,trapped\n"
            "198.51.100.7,1800000100,1799990000,trapped\n");
  Outcome json = Run({"list", "--traps", "--format=json", "--client=198.51.100.0/24"});
  EXPECT_EQ(json.out,
            "[\n  {\"client\":\"198.51.100.7\",\"until\":1800000100,\"last_hit\":1799990000,"
            "\"state\":\"expired\"}\n]\n");
  EXPECT_EQ(Run({"list", "--traps", "--client=10.0.0.0/8", "--format=json"}).out, "[]\n");

  EXPECT_EQ(Run({"list", "--traps", "--clients"}).status, kExitUsage);
  EXPECT_EQ(Run({"list", "--traps", "--state=pending"}).status, kExitConfig);
  Outcome at_alone = Run({"list", "--at=1800000050"});
  EXPECT_EQ(at_alone.status, kExitUsage);
  EXPECT_EQ(at_alone.err, "greylight list: --at goes with --traps or --replies\n");
}

TEST_F(CommandsTest, ListReplies) {
  Outcome text = Run({"list", "--replies"});
  EXPECT_EQ(text.status, kExitOk) << text.err;
  EXPECT_EQ(text.out,
            "STATE   COUNT LAST SENT            REMOTE LOCAL\n"
            "live        2 2027-01-15T08:00:00Z carol@remote.example bob@example.org\n"
            "expired     1 2026-11-30T00:53:20Z dave@old.example bob@example.org\n");
  Outcome csv = Run({"list", "--replies", "--format=csv", "--at=1799000000"});
  EXPECT_EQ(csv.out,
            "key,remote,local,count,last,state\n"
            "carol@remote.example/bob@example.org,carol@remote.example,bob@example.org,2,"
            "1800000000,live\n"
            "dave@old.example/bob@example.org,dave@old.example,bob@example.org,1,1796000000,"
            "live\n");
  Outcome json = Run({"list", "--replies", "--format=json", "--privacy"});
  EXPECT_EQ(json.status, kExitOk) << json.err;
  EXPECT_NE(json.out.find("{\"key\":\"carol@remote.example/bob@example.org\",\"remote\":null,"
                          "\"local\":null,\"count\":2,\"last\":1800000000,\"state\":\"live\"}"),
            std::string::npos)
      << json.out;
  EXPECT_EQ(Run({"list", "--replies", "--traps"}).status, kExitUsage);
  EXPECT_EQ(Run({"list", "--replies", "--sender=a@b"}).status, kExitConfig);
  EXPECT_EQ(Run({"list", "--replies", "--client=192.0.2.0/24"}).status, kExitConfig);
}

TEST_F(CommandsTest, DeleteRepliesByTheMailTheyLetThrough) {
  // The reply record that lets carol's mail to bob pass, named as that mail's addresses.
  Outcome deleted = Run(
      {"delete", "--replies", "--sender=Carol+x@remote.example", "--recipient=bob@example.org"});
  EXPECT_EQ(deleted.status, kExitOk) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted reply record " + kReplyKey + " (was 2,1800000000)\n");
  EXPECT_EQ(Stored(dbdir_, store::Table::kReplies, kReplyKey), std::nullopt);
  Outcome again =
      Run({"delete", "--replies", "--sender=carol@remote.example", "--recipient=bob@example.org"});
  EXPECT_EQ(again.status, kExitAbsent);
  EXPECT_EQ(again.err, "greylight delete: no reply record " + kReplyKey + "\n");
  Outcome by_key = Run({"delete", "--replies", "--key=dave@old.example/bob@example.org"});
  EXPECT_EQ(by_key.status, kExitOk) << by_key.err;
  for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
           {"delete", "--replies"},
           {"delete", "--replies", "--sender=a@b"},
           {"delete", "--replies", "--sender=<>", "--recipient=c@d"},
           {"delete", "--replies", "--key=k", "--sender=a@b", "--recipient=c@d"},
           {"delete", "--replies", "--traps", "--key=k"},
           {"delete", "--replies", "--client-address=192.0.2.1", "--sender=a@b", "--recipient=c@d"},
       }) {
    EXPECT_EQ(Run(bad).status, kExitConfig) << fmt::format("{}", fmt::join(bad, " "));
  }
}

TEST_F(CommandsTest, DeleteTrapTakesTheClientOffTheList) {
  Outcome deleted = Run({"delete", "--trap=192.0.2.10"});
  EXPECT_EQ(deleted.status, kExitOk) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted trap record 192.0.2.10 (was 1800003600,1800000000)\n");
  EXPECT_EQ(Stored(dbdir_, store::Table::kTraps, "192.0.2.10"), std::nullopt);
  Outcome again = Run({"delete", "--trap=192.0.2.10"});
  EXPECT_EQ(again.status, kExitAbsent);
  EXPECT_EQ(again.err, "greylight delete: no trap record 192.0.2.10\n");
  // The other records of that client stay.
  EXPECT_EQ(Stored(dbdir_, store::Table::kClients, "192.0.2.10"), "1,1800000300");

  // By stored key, as `list --traps` shows it.
  Outcome by_key = Run({"delete", "--key=198.51.100.7", "--traps"});
  EXPECT_EQ(by_key.status, kExitOk) << by_key.err;
  EXPECT_EQ(Stored(dbdir_, store::Table::kTraps, "198.51.100.7"), std::nullopt);

  // The trap key is the client's own address in every --lookup-by mode, hashed with
  // --privacy as greylightd hashes it.
  policy::KeyOptions private_keys;
  private_keys.privacy = true;
  const std::string hashed =
      policy::ClientKey(*policy::IpAddress::Parse("2001:db8::5"), private_keys);
  ASSERT_TRUE(Store()->Put(store::Table::kTraps, hashed, "1800003600,1800000000").ok());
  Outcome private_trap = Run({"delete", "--trap=2001:db8::5", "--privacy", "--lookup-by=domain"});
  EXPECT_EQ(private_trap.status, kExitOk) << private_trap.err;
  EXPECT_EQ(private_trap.out, "deleted trap record " + hashed + " (was 1800003600,1800000000)\n");

  for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
           {"delete", "--trap=not-an-address"},
           {"delete", "--trap=192.0.2.10", "--client=192.0.2.10"},
           {"delete", "--trap=192.0.2.10", "--traps"},
           {"delete", "--key=k", "--traps", "--clients"},
           {"delete", "--key=k", "--client-name=mail.example.net"},
       }) {
    EXPECT_EQ(Run(bad).status, kExitConfig) << fmt::format("{}", fmt::join(bad, " "));
  }
}

// With --lookup-by=domain the tool builds the keys greylightd builds from the verified
// client name: the records of the domain are found from any of its addresses.
TEST_F(CommandsTest, DomainModeKeysFollowTheClientName) {
  const std::string domain_key = "domain:example.net/alice@example.net/pending@example.org";
  ASSERT_TRUE(Store()->Put(store::Table::kTriplets, domain_key, "1800000010,1800000010").ok());
  ASSERT_TRUE(Store()->Put(store::Table::kClients, "domain:example.net", "2,1800000300").ok());

  Outcome passed = Run({"pass", "--lookup-by=domain", "--client-address=198.51.100.99",
                        "--client-name=mx2.example.net", "--sender=alice@example.net",
                        "--recipient=pending@example.org"});
  EXPECT_EQ(passed.status, kExitOk) << passed.err;
  EXPECT_TRUE(passed.out.starts_with("passed triplet " + domain_key + ": ")) << passed.out;
  EXPECT_EQ(Stored(dbdir_, store::Table::kTriplets, domain_key), "1800000100,1800000100");
  // The subnet triplet of the same request is untouched.
  EXPECT_EQ(
      Stored(dbdir_, store::Table::kTriplets, "192.0.2.0/alice@example.net/pending@example.org"),
      "1800000010,1800000010");

  Outcome explained = Run({"explain", "--lookup-by=smart", "--client-address=203.0.113.1",
                           "--client-name=mail.example.net", "--sender=alice@example.net",
                           "--recipient=pending@example.org"});
  EXPECT_EQ(explained.status, kExitOk) << explained.err;
  EXPECT_NE(explained.out.find("client group: domain:example.net (--lookup-by=smart)\n"),
            std::string::npos)
      << explained.out;
  EXPECT_NE(explained.out.find("client auto-whitelist: key domain:example.net (threshold 5)\n"
                               "  stored: count 2,"),
            std::string::npos)
      << explained.out;
  EXPECT_NE(explained.out.find("triplet: key " + domain_key + "\n  stored: first seen"),
            std::string::npos)
      << explained.out;

  // Unverified (the default client name): the subnet key, as greylightd falls back to it.
  Outcome unverified = Run({"delete", "--lookup-by=domain", "--client-address=192.0.2.99",
                            "--sender=alice@example.net", "--recipient=pending@example.org"});
  EXPECT_EQ(unverified.status, kExitOk) << unverified.err;
  EXPECT_EQ(unverified.out,
            "deleted triplet 192.0.2.0/alice@example.net/pending@example.org (was "
            "1800000010,1800000010)\n");

  Outcome client = Run(
      {"delete", "--lookup-by=domain", "--client=198.51.100.99", "--client-name=mail.example.net"});
  EXPECT_EQ(client.status, kExitOk) << client.err;
  EXPECT_EQ(client.out, "deleted client record domain:example.net (was 2,1800000300)\n");
  // In the address modes --client is the client's address whatever its name.
  Outcome by_address = Run({"delete", "--client=192.0.2.10", "--client-name=mail.example.net"});
  EXPECT_EQ(by_address.status, kExitOk) << by_address.err;
  EXPECT_EQ(by_address.out, "deleted client record 192.0.2.10 (was 1,1800000300)\n");
}

TEST_F(CommandsTest, ExplainLoadsTheGreytraps) {
  const std::filesystem::path traps = dir_.path() / "traps";
  std::ofstream(traps) << "# trap addresses\nspamtrap@example.org\n";
  Outcome hit =
      Run({"explain", "--greytrap-recipients=" + traps.string(), "--client-address=198.51.100.7",
           "--sender=a@example.com", "--recipient=spamtrap@example.org"});
  EXPECT_EQ(hit.status, kExitOk) << hit.err;
  EXPECT_NE(hit.out.find("greytrap recipients: " + traps.string() +
                         ":2: spamtrap@example.org\ngreytrap list: key 198.51.100.7\n"
                         "  stored: trapped until 2027-01-15T08:01:40Z (1800000100), last hit "
                         "2027-01-15T05:13:20Z (1799990000)\n"
                         "  the trap ended 2027-01-15T08:01:40Z (1800000100): greylightd treats "
                         "it as absent (expired, awaiting removal)\n"
                         "decision: greylist (greytrap, 86400 s (1d) missing): this request puts "
                         "the client on the trap list until 2027-01-16T08:06:40Z (1800086800)"),
            std::string::npos)
      << hit.out;
  // explain writes nothing: the trap record is as it was.
  EXPECT_EQ(Stored(dbdir_, store::Table::kTraps, "198.51.100.7"), "1800000100,1799990000");

  Outcome trapped =
      Run({"explain", "--greytrap-recipients=" + traps.string(), "--client-address=192.0.2.10",
           "--sender=alice@example.net", "--recipient=bob@example.org"});
  EXPECT_EQ(trapped.status, kExitOk) << trapped.err;
  EXPECT_TRUE(trapped.out.ends_with(
      "decision: greylist (greytrap, 3200 s (53m 20s) missing): the client is on the trap list "
      "until 2027-01-15T09:00:00Z (1800003600); the auto-whitelist, the reply record and the "
      "triplet are not consulted\n"
      "action=DEFER_IF_PERMIT 4.2.0 Greylisted, see "
      "http://postgrey.schweikert.ch/help/example.org.html\n"))
      << trapped.out;

  Outcome missing = Run({"explain", "--greytrap-recipients=" + (dir_.path() / "none").string(),
                         "--client-address=192.0.2.10", "--sender=a@b", "--recipient=c@d"});
  EXPECT_EQ(missing.status, kExitConfig);
  EXPECT_NE(missing.err.find("greylight explain: "), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find((dir_.path() / "none").string()), std::string::npos) << missing.err;
  EXPECT_EQ(missing.out, "");
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
  EXPECT_EQ(again.status, kExitAbsent);
  EXPECT_NE(again.err.find("has already passed"), std::string::npos) << again.err;
  Outcome absent = Run({"pass", "--key=192.0.2.0/x@y/z@w"});
  EXPECT_EQ(absent.status, kExitAbsent);
  EXPECT_EQ(absent.err, "greylight pass: no triplet 192.0.2.0/x@y/z@w\n");
}

TEST_F(CommandsTest, DeleteTripletAndClient) {
  Outcome deleted = Run({"delete", "--key=" + kKey});
  EXPECT_EQ(deleted.status, kExitOk) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted triplet " + kKey + " (was 1800000000,1800000300)\n");
  EXPECT_EQ(Stored(dbdir_, store::Table::kTriplets, kKey), std::nullopt);
  EXPECT_EQ(Run({"delete", "--key=" + kKey}).status, kExitAbsent);
  Outcome client = Run({"delete", "--client=192.0.2.10"});
  EXPECT_EQ(client.status, kExitOk) << client.err;
  EXPECT_EQ(Stored(dbdir_, store::Table::kClients, "192.0.2.10"), std::nullopt);
  EXPECT_EQ(Run({"delete", "--client=192.0.2.10"}).status, kExitAbsent);
}

// With --spf-keys a record may be keyed by the SPF domain, which only explain (it asks SPF)
// can tell: an absent record built from addresses says so; one named by --key does not.
TEST_F(CommandsTest, SpfKeysHintWhereToFindTheKey) {
  Outcome by_request = Run({"delete", "--spf-keys", "--client-address=198.51.100.7",
                            "--sender=a@example.net", "--recipient=b@example.org"});
  EXPECT_EQ(by_request.status, kExitAbsent);
  EXPECT_EQ(by_request.err,
            "greylight delete: no triplet 198.51.100.0/a@example.net/b@example.org (with "
            "--spf-keys, a client that passed SPF is keyed spf:DOMAIN instead: `greylight "
            "explain` shows the key, which --key takes)\n");
  Outcome by_key = Run({"pass", "--spf-keys", "--key=spf:example.net/a@example.net/b@example.org"});
  EXPECT_EQ(by_key.status, kExitAbsent);
  EXPECT_EQ(by_key.err, "greylight pass: no triplet spf:example.net/a@example.net/b@example.org\n");
  EXPECT_EQ(Run({"delete", "--spf-keys", "--trap=198.51.100.9"}).err,
            "greylight delete: no trap record 198.51.100.9\n");
}

TEST_F(CommandsTest, MigrateCopiesEverythingAndRefusesItself) {
  const std::string target = (dir_.path() / "copy").string();
  Outcome migrated = Run({"migrate", "--from=lmdb:", "--to=lmdb:" + target});
  EXPECT_EQ(migrated.status, kExitOk) << migrated.err;
  EXPECT_EQ(migrated.out,
            "migrated 2 triplets, 1 client records, 2 trap records and 2 reply records from "
            "lmdb: to lmdb:" +
                target + "\n");
  EXPECT_EQ(Stored(target, store::Table::kReplies, kReplyKey), "2,1800000000");
  EXPECT_EQ(Stored(target, store::Table::kTriplets, kKey), "1800000000,1800000300");
  EXPECT_EQ(Stored(target, store::Table::kClients, "192.0.2.10"), "1,1800000300");
  // Trap records are copied as they are, ended ones too (greylightd's expiry removes them).
  EXPECT_EQ(Stored(target, store::Table::kTraps, "192.0.2.10"), "1800003600,1800000000");
  EXPECT_EQ(Stored(target, store::Table::kTraps, "198.51.100.7"), "1800000100,1799990000");
  Outcome same = Run({"migrate", "--from=lmdb:", "--to=lmdb:" + dbdir_.string() + "/."});
  EXPECT_EQ(same.status, kExitConfig);
  EXPECT_NE(same.err.find("name the same store"), std::string::npos) << same.err;
  Outcome missing = Run({"migrate", "--from=lmdb:" + target + "-none", "--to=lmdb:" + target});
  EXPECT_EQ(missing.status, kExitUnavailable);
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
  EXPECT_EQ(no_file.status, kExitConfig);
}

TEST_F(CommandsTest, ImportPostgreyReportsMissingFiles) {
  Outcome missing = Run({"import-postgrey", "--dbdir=" + (dir_.path() / "pg").string(),
                         "--store=lmdb:" + (dir_.path() / "target").string()},
                        false);
  EXPECT_EQ(missing.status, kExitUnavailable);
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
