#include "policy/greylist_state.h"

#include <gtest/gtest.h>

#include <random>

namespace greylight::policy {
namespace {

using namespace std::chrono_literals;

const UnixTime T0 = FromUnixSeconds(1'700'000'000);

TEST(RecordRulesTest, PassedAbandonedAndExpiresAtAgreeWithExpiredAndDecide) {
  GreylistTiming timing;  // delay 300 s, retry window 2 days, max-age 35 days
  TripletRecord pending{T0, T0 + 10s};
  TripletRecord passed{T0, T0 + 300s};
  EXPECT_FALSE(Passed(pending, timing));
  EXPECT_TRUE(Passed(passed, timing));
  EXPECT_FALSE(Abandoned(pending, T0 + 2 * 86400s, timing));
  EXPECT_TRUE(Abandoned(pending, T0 + 2 * 86400s + 1s, timing));
  EXPECT_FALSE(Abandoned(passed, T0 + 30 * 86400s, timing));

  EXPECT_EQ(ExpiresAt(pending, timing), pending.last + timing.retry_window + 1s);
  EXPECT_EQ(ExpiresAt(passed, timing), passed.last + timing.max_age + 1s);
  ClientRecord client{3, T0};
  EXPECT_EQ(ExpiresAt(client, timing), T0 + timing.max_age + 1s);
  TrapRecord trap{T0 + 600s, T0};
  EXPECT_EQ(ExpiresAt(trap), T0 + 600s);
  // Expired is exactly "now >= ExpiresAt", on both sides of the boundary.
  for (const TripletRecord& record : {pending, passed}) {
    UnixTime at = ExpiresAt(record, timing);
    EXPECT_FALSE(Expired(record, at - 1s, timing));
    EXPECT_TRUE(Expired(record, at, timing));
  }
  EXPECT_FALSE(Expired(client, ExpiresAt(client, timing) - 1s, timing));
  EXPECT_TRUE(Expired(client, ExpiresAt(client, timing), timing));
  EXPECT_FALSE(Expired(trap, T0 + 599s));
  EXPECT_TRUE(Expired(trap, T0 + 600s));
  // A retry of an abandoned triplet starts over, as Decide applies it.
  Transition t =
      Decide(PriorState{std::nullopt, pending, std::nullopt}, T0 + 2 * 86400s + 1s, timing);
  EXPECT_EQ(t.first, T0 + 2 * 86400s + 1s);
}

TEST(LastSeenRefreshTest, ATripletSeenWithinAMinuteIsNotWrittenUnlessItPassesOrStartsOver) {
  GreylistTiming timing;
  PriorState prior{std::nullopt, TripletRecord{T0, T0 + 300s}, std::nullopt};
  Transition soon = Decide(prior, T0 + 359s, timing);
  EXPECT_EQ(soon.reason, Reason::kPassed);
  EXPECT_FALSE(soon.triplet_write.has_value()) << "59 s after the last sighting";
  Transition later = Decide(prior, T0 + 360s, timing);
  ASSERT_TRUE(later.triplet_write.has_value()) << "60 s after";
  EXPECT_EQ(*later.triplet_write, (TripletRecord{T0, T0 + 360s}));
  // A pending triplet retried early within a minute stays pending with its first sighting:
  // not written. Its answer is postgrey's (the time missing counts from `first`).
  PriorState pending{std::nullopt, TripletRecord{T0, T0 + 10s}, std::nullopt};
  Transition early = Decide(pending, T0 + 69s, timing);
  EXPECT_EQ(early.reason, Reason::kEarlyRetry);
  EXPECT_EQ(early.missing, 231s);
  EXPECT_FALSE(early.triplet_write.has_value()) << "59 s after the last sighting";
  Transition minute = Decide(pending, T0 + 70s, timing);
  ASSERT_TRUE(minute.triplet_write.has_value()) << "60 s after";
  EXPECT_EQ(*minute.triplet_write, (TripletRecord{T0, T0 + 70s}));
  // The same request second again (a second recipient's twin, a client's quick retry).
  PriorState created{std::nullopt, TripletRecord{T0, T0}, std::nullopt};
  EXPECT_FALSE(Decide(created, T0, timing).triplet_write.has_value());
  // A pending triplet that passes now is written, however soon after its last sighting:
  // that write is what makes it passed.
  PriorState almost{std::nullopt, TripletRecord{T0, T0 + 290s}, std::nullopt};
  Transition passes = Decide(almost, T0 + 300s, timing);
  EXPECT_EQ(passes.reason, Reason::kPassFirst);
  ASSERT_TRUE(passes.triplet_write.has_value());
  EXPECT_EQ(*passes.triplet_write, (TripletRecord{T0, T0 + 300s}));
  // An abandoned triplet starts over (a new first sighting): written.
  GreylistTiming short_window = timing;
  short_window.retry_window = 30s;
  PriorState stale{std::nullopt, TripletRecord{T0, T0 + 20s}, std::nullopt};
  Transition over = Decide(stale, T0 + 31s, short_window);
  EXPECT_EQ(over.reason, Reason::kAbandoned);
  ASSERT_TRUE(over.triplet_write.has_value());
  EXPECT_EQ(*over.triplet_write, (TripletRecord{T0 + 31s, T0 + 31s}));
  // A last sighting in the future (the clock stepped back) is corrected by a write.
  PriorState future{std::nullopt, TripletRecord{T0, T0 + 400s}, std::nullopt};
  EXPECT_TRUE(Decide(future, T0 + 350s, timing).triplet_write.has_value());
  // A first sighting in the future is corrected to now: written.
  PriorState ahead{std::nullopt, TripletRecord{T0 + 10s, T0 + 10s}, std::nullopt};
  Transition corrected = Decide(ahead, T0, timing);
  EXPECT_TRUE(corrected.first_corrected);
  ASSERT_TRUE(corrected.triplet_write.has_value());
  EXPECT_EQ(*corrected.triplet_write, (TripletRecord{T0, T0}));
}

// The whole life of a trap on a fake timeline: hit, trapped, extended, expired.
TEST(GreytrapRulesTest, AHitTrapsTheClientUntilTheTtlRunsOut) {
  GreylistTiming timing;
  timing.trap_ttl = 3600s;
  PriorState prior;

  Transition hit = Decide(prior, T0, timing, /*trap_hit=*/true);
  ASSERT_TRUE(hit.trap_write.has_value());
  EXPECT_EQ(*hit.trap_write, (TrapRecord{T0 + 3600s, T0}));
  EXPECT_TRUE(hit.trapped);
  EXPECT_TRUE(hit.greylisted());
  EXPECT_EQ(hit.missing, 3600s);
  EXPECT_FALSE(hit.triplet_write.has_value());

  prior.trap = Live(hit.trap_write, T0 + 3599s);
  ASSERT_TRUE(prior.trap.has_value());
  Transition trapped = Decide(prior, T0 + 3599s, timing);
  EXPECT_TRUE(trapped.trapped);
  EXPECT_EQ(trapped.missing, 1s);
  EXPECT_FALSE(trapped.trap_write.has_value());
  EXPECT_FALSE(Expired(*prior.trap, T0 + 3599s));
  EXPECT_TRUE(Expired(*prior.trap, T0 + 3600s));
  EXPECT_FALSE(Live(hit.trap_write, T0 + 3600s).has_value());

  // Another hit later extends the trap; a hit with a shorter ttl never shortens it.
  prior.trap = TrapRecord{T0 + 3600s, T0};
  Transition again = Decide(prior, T0 + 1000s, timing, true);
  EXPECT_EQ(*again.trap_write, (TrapRecord{T0 + 4600s, T0 + 1000s}));
  GreylistTiming short_ttl = timing;
  short_ttl.trap_ttl = 10s;
  prior.trap = again.trap_write;
  Transition shorter = Decide(prior, T0 + 1001s, short_ttl, true);
  EXPECT_EQ(*shorter.trap_write, (TrapRecord{T0 + 4600s, T0 + 1001s}));
}

// A trapped client is greylisted even for a triplet that passed and even though its
// auto-whitelist count is far over the threshold, and the request writes nothing, so it
// cannot earn the auto-whitelist while trapped.
TEST(GreytrapRulesTest, TrappedClientsAreGreylistedForPassedTripletsAndNeverAutoWhitelisted) {
  GreylistTiming timing;
  PriorState prior;
  prior.triplet = TripletRecord{T0 - 86400s, T0 - 60s};    // passed long ago
  prior.client = ClientRecord{50, T0 - 60s};               // auto-whitelisted
  ASSERT_TRUE(Decide(prior, T0, timing).client_awl_pass);  // without the trap

  prior.trap = TrapRecord{T0 + 3500s, T0 - 100s};
  Transition t = Decide(prior, T0, timing);
  EXPECT_TRUE(t.trapped);
  EXPECT_TRUE(t.greylisted());
  EXPECT_FALSE(t.client_awl_pass);
  EXPECT_FALSE(t.awl_threshold_reached);
  EXPECT_FALSE(t.client_write.has_value());
  EXPECT_FALSE(t.triplet_write.has_value());
  EXPECT_EQ(t.missing, 3500s);
  EXPECT_EQ(t.first, prior.triplet->first);

  // A triplet that would pass now (waited the delay) stays greylisted and is not advanced,
  // so the client earns no auto-whitelist count.
  prior.client.reset();
  prior.triplet = TripletRecord{T0 - 400s, T0 - 400s};
  t = Decide(prior, T0, timing);
  EXPECT_TRUE(t.greylisted());
  EXPECT_FALSE(t.client_write.has_value());
  EXPECT_FALSE(t.triplet_write.has_value());

  // Once the trap has expired the normal rules apply again.
  prior.trap = Live(prior.trap, T0 + 3500s);
  EXPECT_FALSE(prior.trap.has_value());
  Transition after = Decide(prior, T0 + 3500s, timing);
  EXPECT_FALSE(after.trapped);
  EXPECT_FALSE(after.greylisted());
}

// A reply record passes the request without writing anything: the triplet is neither
// consulted nor created, and the pass does not count toward the client's auto-whitelist.
TEST(ReplyRulesTest, ALiveReplyPassesWithoutWritingOrCounting) {
  GreylistTiming timing;
  PriorState prior;
  prior.reply = ReplyRecord{1, T0 - 86400s};
  Transition t = Decide(prior, T0, timing);
  EXPECT_EQ(t.reason, Reason::kReply);
  EXPECT_EQ(VerdictOf(t.reason), Verdict::kPass);
  EXPECT_FALSE(t.greylisted());
  EXPECT_FALSE(t.triplet_write.has_value());
  EXPECT_FALSE(t.client_write.has_value());
  EXPECT_FALSE(t.awl_threshold_reached);
  EXPECT_FALSE(t.client_awl_pass);

  // A pending triplet (first attempt before the reply was recorded) does not matter: the
  // reply passes and leaves it as it is.
  prior.triplet = TripletRecord{T0 - 10s, T0 - 10s};
  prior.client = ClientRecord{timing.awl_threshold - 1, T0 - 7200s};
  t = Decide(prior, T0, timing);
  EXPECT_EQ(t.reason, Reason::kReply);
  EXPECT_FALSE(t.triplet_write.has_value());
  EXPECT_FALSE(t.client_write.has_value());

  // Without the reply the same request is an early retry.
  prior.reply.reset();
  EXPECT_EQ(Decide(prior, T0, timing).reason, Reason::kEarlyRetry);
}

// The order of the steps: greytrap list, auto-whitelist, reply, triplet.
TEST(ReplyRulesTest, TrapsWinOverRepliesAndTheAutoWhitelistComesFirst) {
  GreylistTiming timing;
  timing.trap_ttl = 3600s;
  PriorState prior;
  prior.reply = ReplyRecord{4, T0 - 60s};

  // A trapped client is greylisted even for a reply; a trap hit is recorded as usual.
  prior.trap = TrapRecord{T0 + 600s, T0 - 100s};
  Transition trapped = Decide(prior, T0, timing);
  EXPECT_EQ(trapped.reason, Reason::kGreytrap);
  EXPECT_TRUE(trapped.greylisted());
  PriorState reply_only;
  reply_only.reply = prior.reply;
  Transition hit = Decide(reply_only, T0, timing, /*trap_hit=*/true);
  EXPECT_EQ(hit.reason, Reason::kGreytrap);
  ASSERT_TRUE(hit.trap_write.has_value());

  // An auto-whitelisted client passes as such (and its record is refreshed hourly).
  prior.trap.reset();
  prior.client = ClientRecord{timing.awl_threshold, T0 - 7200s};
  Transition awl = Decide(prior, T0, timing);
  EXPECT_EQ(awl.reason, Reason::kClientAwl);
  ASSERT_TRUE(awl.client_write.has_value());
  EXPECT_EQ(awl.client_write->count, timing.awl_threshold + 1);
}

// Whatever the stored triplet, Decide answers and writes the same when ReadsTriplet says it
// does not read it; so stores may skip that read. Random records around the rules' edges.
TEST(ReadsTripletTest, DecideIgnoresTheTripletExactlyWhereItIsNotRead) {
  GreylistTiming timing;
  timing.trap_ttl = 3600s;
  std::mt19937_64 random(20261205);
  auto pick = [&](std::initializer_list<Seconds> offsets) {
    return T0 + *(offsets.begin() + random() % offsets.size());
  };
  int skipped = 0, read = 0;
  for (int i = 0; i < 20'000; ++i) {
    PriorState prior;
    if (random() % 2) {
      prior.client = ClientRecord{static_cast<long long>(random() % (timing.awl_threshold + 2)),
                                  pick({-7200s, -60s, 0s})};
    }
    if (random() % 4 == 0) prior.trap = TrapRecord{pick({-10s, 0s, 600s}), pick({-100s})};
    if (random() % 3 == 0) prior.reply = ReplyRecord{1, pick({-60s})};
    const bool trap_hit = random() % 8 == 0;
    const bool reads = ReadsTriplet(prior, T0, timing, trap_hit);
    (reads ? read : skipped) += 1;
    if (reads) continue;
    const Transition without = Decide(prior, T0, timing, trap_hit);
    for (const TripletRecord& triplet :
         {TripletRecord{T0 - 600s, T0 - 600s}, TripletRecord{T0 - 100s, T0 - 100s},
          TripletRecord{T0 - 86400s, T0 - 3600s}, TripletRecord{T0 + 60s, T0 + 60s}}) {
      PriorState with = prior;
      with.triplet = triplet;
      EXPECT_TRUE(Decide(with, T0, timing, trap_hit) == without)
          << "case " << i << ": " << ReasonWord(without.reason);
    }
  }
  // Both sides of the rule were reached: auto-whitelisted clients and replies skip the read,
  // traps and everything else read.
  EXPECT_GT(skipped, 1000);
  EXPECT_GT(read, 1000);
}

// A reply record lives max-age after the last outbound message; each outbound message
// counts and moves it on.
TEST(ReplyRulesTest, OutboundMessagesCountAndKeepTheRecordAliveForMaxAge) {
  GreylistTiming timing;
  ReplyRecord first = RecordOutbound(std::nullopt, T0);
  EXPECT_EQ(first, (ReplyRecord{1, T0}));
  ReplyRecord second = RecordOutbound(first, T0 + 86400s);
  EXPECT_EQ(second, (ReplyRecord{2, T0 + 86400s}));
  EXPECT_EQ(ExpiresAt(second, timing), T0 + 86400s + timing.max_age + 1s);
  EXPECT_TRUE(Live(std::optional(second), T0 + 86400s + timing.max_age, timing).has_value());
  EXPECT_FALSE(Live(std::optional(second), T0 + 86400s + timing.max_age + 1s, timing));
  EXPECT_FALSE(Expired(second, ExpiresAt(second, timing) - 1s, timing));
  EXPECT_TRUE(Expired(second, ExpiresAt(second, timing), timing));
  // The count stops at the largest field every backend stores exactly.
  EXPECT_EQ(RecordOutbound(ReplyRecord{kMaxRecordField, T0}, T0 + 1s).count, kMaxRecordField);
}

}  // namespace
}  // namespace greylight::policy
