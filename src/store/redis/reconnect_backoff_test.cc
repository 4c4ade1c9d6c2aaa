#include "store/redis/reconnect_backoff.h"

#include <gtest/gtest.h>

namespace greylight::store {
namespace {

using namespace std::chrono_literals;

TEST(ReconnectBackoffTest, DoublesUpToTheMaximumAndStartsOverOnSuccess) {
  FakeClock clock(FromUnixSeconds(1800000000));
  ReconnectBackoff backoff(100ms, 1000ms);
  EXPECT_TRUE(backoff.Due(clock.Monotonic()));  // nothing failed yet

  EXPECT_EQ(backoff.Failed(clock.Monotonic()), 100ms);
  EXPECT_EQ(backoff.next_attempt(), clock.Monotonic() + 100ms);
  EXPECT_FALSE(backoff.Due(clock.Monotonic()));
  clock.Advance(99ms);
  EXPECT_FALSE(backoff.Due(clock.Monotonic()));
  clock.Advance(1ms);
  EXPECT_TRUE(backoff.Due(clock.Monotonic()));

  for (auto want : {200ms, 400ms, 800ms, 1000ms, 1000ms}) {
    EXPECT_EQ(backoff.Failed(clock.Monotonic()), want);
    EXPECT_EQ(backoff.next_attempt(), clock.Monotonic() + want);
    clock.Advance(want);
  }
  backoff.Succeeded();
  EXPECT_TRUE(backoff.Due(clock.Monotonic()));
  EXPECT_EQ(backoff.Failed(clock.Monotonic()), 100ms);
}

}  // namespace
}  // namespace greylight::store
