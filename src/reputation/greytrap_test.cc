#include "reputation/greytrap.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "policy/greylist_state.h"
#include "support/temp_dir.h"

namespace greylight::reputation {
namespace {

using namespace std::chrono_literals;

const UnixTime T0 = FromUnixSeconds(1'700'000'000);

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

TEST(TrapRecordTest, EncodesAsUntilCommaLastHit) {
  TrapRecord record{T0 + 86400s, T0};
  EXPECT_EQ(EncodeTrap(record), "1700086400,1700000000");
  EXPECT_EQ(DecodeTrap("1700086400,1700000000"), record);
  for (std::string_view bad : {"", "1", "1,", ",1", "1,2,3", "-1,2", "a,1", "1, 2", "1,2x"}) {
    EXPECT_FALSE(DecodeTrap(bad).has_value()) << bad;
  }
}

// The whole life of a trap on a fake timeline: hit, trapped, extended, expired.
TEST(TrapRulesTest, AHitTrapsTheClientUntilTheTtlRunsOut) {
  const Seconds ttl = 3600s;
  std::optional<TrapRecord> record;
  EXPECT_FALSE(Trapped(record, T0));

  record = RecordTrapHit(record, T0, ttl);
  EXPECT_EQ(record->until, T0 + ttl);
  EXPECT_EQ(record->last_hit, T0);
  EXPECT_TRUE(Trapped(record, T0));
  EXPECT_TRUE(Trapped(record, T0 + ttl - 1s));
  EXPECT_FALSE(Trapped(record, T0 + ttl));
  EXPECT_FALSE(TrapExpired(*record, T0 + ttl - 1s));
  EXPECT_TRUE(TrapExpired(*record, T0 + ttl));

  // Another hit later extends the trap; a hit with a shorter ttl never shortens it.
  record = RecordTrapHit(record, T0 + 1000s, ttl);
  EXPECT_EQ(record->until, T0 + 1000s + ttl);
  record = RecordTrapHit(record, T0 + 1001s, 10s);
  EXPECT_EQ(record->until, T0 + 1000s + ttl);
  EXPECT_EQ(record->last_hit, T0 + 1001s);
  // A hit after expiry starts a new trap.
  record = RecordTrapHit(record, T0 + 100000s, ttl);
  EXPECT_EQ(record->until, T0 + 100000s + ttl);
}

// A trapped client is greylisted even for a triplet that passed and even though its
// auto-whitelist count is far over the threshold, and the request writes nothing, so it
// cannot earn the auto-whitelist while trapped.
TEST(TrapRulesTest, TrappedClientsAreGreylistedForPassedTripletsAndNeverAutoWhitelisted) {
  policy::GreylistTiming timing;
  policy::PriorState prior;
  prior.triplet = policy::TripletRecord{T0 - 86400s, T0 - 60s};  // passed long ago
  prior.client = policy::ClientRecord{50, T0 - 60s};             // auto-whitelisted
  const UnixTime now = T0;

  policy::Transition normal = policy::Decide(prior, now, timing);
  ASSERT_TRUE(normal.client_awl_pass);  // without the trap: passes on the AWL

  TrapRecord trap = RecordTrapHit(std::nullopt, now - 100s, 3600s);
  ASSERT_TRUE(Trapped(trap, now));
  policy::Transition t = TrappedTransition(prior, trap, now);
  EXPECT_TRUE(t.greylisted());
  EXPECT_FALSE(t.client_awl_pass);
  EXPECT_FALSE(t.awl_threshold_reached);
  EXPECT_FALSE(t.client_write.has_value());
  EXPECT_FALSE(t.triplet_write.has_value());
  EXPECT_EQ(t.missing, 3500s);
  EXPECT_EQ(t.first, prior.triplet->first);

  // A new triplet while trapped: greylisted, still nothing written.
  policy::Transition fresh = TrappedTransition({}, trap, now);
  EXPECT_TRUE(fresh.greylisted());
  EXPECT_EQ(fresh.first, now);
  EXPECT_FALSE(fresh.triplet_write.has_value());

  // Once the trap has expired the normal rules apply again.
  EXPECT_FALSE(Trapped(trap, now + 3500s));
  EXPECT_TRUE(policy::Decide(prior, now + 3500s, timing).client_awl_pass);
}

}  // namespace
}  // namespace greylight::reputation
