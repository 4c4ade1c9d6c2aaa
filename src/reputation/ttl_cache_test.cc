#include "reputation/ttl_cache.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace greylight::reputation {
namespace {

using namespace std::chrono_literals;

TEST(TtlCacheTest, EntriesExpireAfterTheirTtlOnTheMonotonicClock) {
  FakeClock clock(FromUnixSeconds(1'700'000'000));
  TtlCache<int> cache(clock, 10, 3600s);
  cache.Put("short", 1, 30s);
  cache.Put("long", 2, 120s);
  ASSERT_NE(cache.Get("short"), nullptr);
  EXPECT_EQ(*cache.Get("short"), 1);

  clock.Advance(29s);
  EXPECT_NE(cache.Get("short"), nullptr);
  clock.Advance(1s);  // 30 s: gone
  EXPECT_EQ(cache.Get("short"), nullptr);
  EXPECT_EQ(cache.size(), 1u);
  ASSERT_NE(cache.Get("long"), nullptr);
  clock.Advance(90s);
  EXPECT_EQ(cache.Get("long"), nullptr);
}

TEST(TtlCacheTest, AWallClockStepDoesNotExpireOrKeepEntries) {
  FakeClock clock(FromUnixSeconds(1'700'000'000));
  TtlCache<int> cache(clock, 10, 3600s);
  cache.Put("name", 1, 60s);
  clock.Set(FromUnixSeconds(1'800'000'000));  // the wall clock jumps a few years ahead
  EXPECT_NE(cache.Get("name"), nullptr);
  clock.Set(FromUnixSeconds(1'600'000'000));  // and back
  clock.Advance(60s);
  EXPECT_EQ(cache.Get("name"), nullptr);
}

TEST(TtlCacheTest, TtlsAreCappedAndZeroIsNotStored) {
  FakeClock clock(FromUnixSeconds(1'700'000'000));
  TtlCache<std::string> cache(clock, 10, 100s);
  cache.Put("capped", "x", 86400s);
  cache.Put("zero", "y", 0s);
  cache.Put("negative", "z", -5s);
  EXPECT_EQ(cache.Get("zero"), nullptr);
  EXPECT_EQ(cache.Get("negative"), nullptr);
  clock.Advance(99s);
  EXPECT_NE(cache.Get("capped"), nullptr);
  clock.Advance(1s);
  EXPECT_EQ(cache.Get("capped"), nullptr);
}

TEST(TtlCacheTest, TheLeastRecentlyUsedEntryGoesFirst) {
  FakeClock clock(FromUnixSeconds(1'700'000'000));
  TtlCache<int> cache(clock, 2, 3600s);
  cache.Put("a", 1, 60s);
  cache.Put("b", 2, 60s);
  EXPECT_NE(cache.Get("a"), nullptr);  // b is now the least recently used
  cache.Put("c", 3, 60s);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Get("b"), nullptr);
  EXPECT_NE(cache.Get("a"), nullptr);
  EXPECT_NE(cache.Get("c"), nullptr);
  cache.Put("a", 10, 60s);  // replacing keeps one entry
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(*cache.Get("a"), 10);

  TtlCache<int> none(clock, 0, 3600s);
  none.Put("a", 1, 60s);
  EXPECT_EQ(none.Get("a"), nullptr);
}

}  // namespace
}  // namespace greylight::reputation
