#include "store/redis/redis_check.h"

#include <gtest/gtest.h>

#include "store/redis/redis_scripts.h"

namespace greylight::store {
namespace {

constexpr long long T = 1800000000;

RedisReply String(std::string text) {
  RedisReply reply;
  reply.type = RedisReply::Type::kString;
  reply.str = std::move(text);
  return reply;
}

// {prior triplet, prior client, written triplet, written client, prior trap, written trap}
RedisReply ScriptReply(std::vector<std::optional<std::string>> values) {
  RedisReply reply;
  reply.type = RedisReply::Type::kArray;
  for (auto& value : values) reply.elements.push_back(value ? String(*value) : RedisReply{});
  return reply;
}

// Every instant the script compares with or expires at comes from the named policy rules.
TEST(RedisCheckTest, TheCommandCarriesTheRulesInstants) {
  policy::GreylistTiming timing;  // delay 300, max-age 35 d, retry window 2 d
  RedisKeyLayout layout("gl:", RedisKeyLayout::Mode::kPlain);
  CheckKeys keys{"192.0.2.0/a@b/c@d", "192.0.2.1", "192.0.2.1", /*trap_hit=*/true};
  RedisCommand c = BuildCheckCommand(keys, FromUnixSeconds(T), timing, layout);
  const RedisCommand want{"EVALSHA",
                          CheckScript().sha1,
                          "3",
                          "gl:t:192.0.2.0/a@b/c@d",
                          "gl:c:192.0.2.1",
                          "gl:g:192.0.2.1",
                          std::to_string(T),
                          "300",
                          std::to_string(T - 35 * 86400),      // policy::Live's horizon
                          std::to_string(T - 2 * 86400),       // policy::Abandoned's
                          "5",                                 // auto-whitelist threshold
                          std::to_string(T - 3600),            // counted once per hour
                          std::to_string(T + 86400),           // a trap hit's end
                          std::to_string(T + 2 * 86400 + 1),   // ExpiresAt, pending triplet
                          std::to_string(T + 35 * 86400 + 1),  // ExpiresAt, passed triplet
                          std::to_string(T + 35 * 86400 + 1),  // ExpiresAt, client
                          std::to_string(policy::kMaxRecordField),
                          "1",
                          "2",
                          std::to_string(T - 60)};  // a passed triplet seen since: no write
  EXPECT_EQ(c, want);
  RedisCommand without = BuildCheckCommand({"192.0.2.0/k", ""}, FromUnixSeconds(T), timing, layout);
  EXPECT_EQ(without[2], "1");
  EXPECT_EQ(without[without.size() - 2], "0");
  EXPECT_EQ(without[without.size() - 3], "0");
}

TEST(RedisCheckTest, TheTransitionIsPolicyDecideOnWhatTheScriptRead) {
  policy::GreylistTiming timing;
  CheckKeys keys{"192.0.2.0/k", "192.0.2.1"};
  const std::string prior = std::to_string(T - 400) + "," + std::to_string(T - 400);
  const std::string written = std::to_string(T - 400) + "," + std::to_string(T);
  auto t = TransitionFromReply(keys, FromUnixSeconds(T), timing,
                               ScriptReply({prior, std::nullopt, written, "1," + std::to_string(T),
                                            std::nullopt, std::nullopt}));
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_FALSE(t->greylisted());
  EXPECT_EQ(t->first, FromUnixSeconds(T - 400));

  // The script wrote something Decide would not: the answer is refused.
  auto disagree = TransitionFromReply(
      keys, FromUnixSeconds(T), timing,
      ScriptReply({prior, std::nullopt, written, std::nullopt, std::nullopt, std::nullopt}));
  ASSERT_FALSE(disagree.ok());
  EXPECT_EQ(disagree.status().code(), Status::Code::kCorruption);
  EXPECT_NE(disagree.status().message().find("disagree on the clients record"), std::string::npos)
      << disagree.status().message();

  RedisReply error;
  error.type = RedisReply::Type::kError;
  error.str = "BUSY Redis is busy running a script";
  EXPECT_EQ(TransitionFromReply(keys, FromUnixSeconds(T), timing, error).status().code(),
            Status::Code::kUnavailable);
  EXPECT_EQ(TransitionFromReply(keys, FromUnixSeconds(T), timing, String("x")).status().code(),
            Status::Code::kCorruption);
}

}  // namespace
}  // namespace greylight::store
