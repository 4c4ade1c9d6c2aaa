#include "store/redis/recent_passes.h"

#include <gtest/gtest.h>

#include <memory>

namespace greylight::store {
namespace {

constexpr long long T = 1800000000;

TEST(RecentPassesTest, APassIsRecentForTheLastSeenRefreshWindow) {
  auto passes = std::make_unique<RecentPasses>();
  EXPECT_FALSE(passes->Recent("192.0.2.0/a@b/c@d", FromUnixSeconds(T)));
  passes->Note("192.0.2.0/a@b/c@d", FromUnixSeconds(T));
  EXPECT_TRUE(passes->Recent("192.0.2.0/a@b/c@d", FromUnixSeconds(T)));
  EXPECT_TRUE(passes->Recent("192.0.2.0/a@b/c@d", FromUnixSeconds(T + 59)));
  EXPECT_FALSE(passes->Recent("192.0.2.0/a@b/c@d", FromUnixSeconds(T + 60)));
  // A clock that went back is no evidence of a recent pass.
  EXPECT_FALSE(passes->Recent("192.0.2.0/a@b/c@d", FromUnixSeconds(T - 1)));
  EXPECT_FALSE(passes->Recent("192.0.2.0/a@b/other@d", FromUnixSeconds(T + 1)));
}

TEST(RecentPassesTest, MemoryIsFixedWhateverTheTraffic) {
  auto passes = std::make_unique<RecentPasses>();
  // Many more keys than slots: the newest pass of a bucket wins, nothing grows.
  for (size_t i = 0; i < 4 * RecentPasses::kSlots; ++i) {
    passes->Note("key" + std::to_string(i), FromUnixSeconds(T));
  }
  EXPECT_TRUE(
      passes->Recent("key" + std::to_string(4 * RecentPasses::kSlots - 1), FromUnixSeconds(T + 1)));
  size_t remembered = 0;
  for (size_t i = 0; i < 4 * RecentPasses::kSlots; ++i) {
    remembered += passes->Recent("key" + std::to_string(i), FromUnixSeconds(T + 1)) ? 1 : 0;
  }
  EXPECT_LE(remembered, RecentPasses::kSlots);
  EXPECT_EQ(sizeof(RecentPasses), RecentPasses::kSlots * sizeof(uint64_t));
}

}  // namespace
}  // namespace greylight::store
