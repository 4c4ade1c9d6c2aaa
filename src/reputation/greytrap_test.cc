#include "reputation/greytrap.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace greylight::reputation {
namespace {

TEST(GreytrapsTest, MatchesTheRecipientWhitelistSyntax) {
  auto traps = Greytraps::FromText("traps", R"(# trap addresses
spamtrap@example.org
honeypot@
dead.example.net
/^old-[0-9]+@example\.com$/
)");
  ASSERT_TRUE(traps.ok()) << traps.status().message();
  EXPECT_EQ((*traps)->entry_count(), 4u);
  auto hit = (*traps)->Match("SpamTrap@Example.ORG");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->source, "traps:2");
  EXPECT_EQ(hit->entry, "spamtrap@example.org");
  EXPECT_TRUE((*traps)->Match("honeypot@anywhere.example").has_value());
  EXPECT_TRUE((*traps)->Match("anyone@dead.example.net").has_value());
  EXPECT_TRUE((*traps)->Match("anyone@mx.dead.example.net").has_value());
  EXPECT_TRUE((*traps)->Match("old-17@example.com").has_value());
  EXPECT_FALSE((*traps)->Match("postmaster@example.org").has_value());
  EXPECT_FALSE((*traps)->Match("old-x@example.com").has_value());
  EXPECT_FALSE(Greytraps::Empty()->Match("spamtrap@example.org").has_value());
}

TEST(GreytrapsTest, LoadsFilesAndRejectsMissingOnesAndBadLines) {
  testing_support::TempDir dir;
  std::string good = (dir.path() / "traps").string();
  std::string more = (dir.path() / "traps2").string();
  std::ofstream(good) << "trap1@example.org\n";
  std::ofstream(more) << "trap2@example.org\n";
  std::vector<std::string> files{good, more};
  auto traps = Greytraps::Load(files);
  ASSERT_TRUE(traps.ok()) << traps.status().message();
  EXPECT_TRUE((*traps)->Match("trap2@example.org").has_value());
  EXPECT_EQ((*traps)->Match("trap1@example.org")->source, good + ":1");

  std::vector<std::string> missing{good, (dir.path() / "absent").string()};
  auto failed = Greytraps::Load(missing);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("absent"), std::string::npos);

  std::string bad = (dir.path() / "bad").string();
  std::ofstream(bad) << "ok@example.org\n/unterminated(@example.org/\n";
  std::vector<std::string> bad_files{bad};
  auto invalid = Greytraps::Load(bad_files);
  ASSERT_FALSE(invalid.ok());
  EXPECT_NE(invalid.status().message().find(bad + " line 2"), std::string::npos)
      << invalid.status().message();
}

}  // namespace
}  // namespace greylight::reputation
