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

// {prior triplet, prior client, written triplet, written client, prior trap, written trap,
// prior reply}; values left out are nil.
RedisReply ScriptReply(std::vector<std::optional<std::string>> values) {
  values.resize(7);
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
                          std::to_string(T - 60),  // a passed triplet seen since: no write
                          "0"};
  EXPECT_EQ(c, want);
  RedisCommand without = BuildCheckCommand({"192.0.2.0/k", ""}, FromUnixSeconds(T), timing, layout);
  EXPECT_EQ(without[2], "1");
  EXPECT_EQ(without.back(), "0");               // no reply key
  EXPECT_EQ(without[without.size() - 3], "0");  // no trap key
  EXPECT_EQ(without[without.size() - 4], "0");  // no client key
}

// The reply record: read by the script on one server (its key last), or read by the caller
// on its own cluster slot, whose liveness (policy::Live) the script is told.
TEST(RedisCheckTest, TheReplyRecordIsReadByTheScriptOrPassedAsLive) {
  policy::GreylistTiming timing;
  RedisKeyLayout layout("gl:", RedisKeyLayout::Mode::kPlain);
  CheckKeys keys{"192.0.2.0/c@r.example/b@l.example", "192.0.2.1", "", false,
                 "c@r.example/b@l.example"};
  RedisCommand in_script = BuildCheckCommand(keys, FromUnixSeconds(T), timing, layout);
  EXPECT_EQ(in_script[2], "3");
  EXPECT_EQ(in_script[5], "gl:r:c@r.example/b@l.example");
  EXPECT_EQ(in_script.back(), "1");
  const std::string live = "1," + std::to_string(T - 35 * 86400);
  const std::string dead = "1," + std::to_string(T - 35 * 86400 - 1);
  for (auto [elsewhere, mode] : {std::pair{RawValue(live), "2"}, std::pair{RawValue(dead), "0"},
                                 std::pair{RawValue(), "0"}, std::pair{RawValue("junk"), "0"}}) {
    RedisCommand c = BuildCheckCommand(keys, FromUnixSeconds(T), timing, layout, elsewhere);
    EXPECT_EQ(c[2], "2") << "the reply key is not among the script's keys";
    EXPECT_EQ(c.back(), mode) << elsewhere.value_or("(absent)");
  }

  // The transition is Decide's over the reply the script read, or the one read elsewhere.
  auto passed = TransitionFromReply(keys, FromUnixSeconds(T), timing,
                                    ScriptReply({std::nullopt, std::nullopt, std::nullopt,
                                                 std::nullopt, std::nullopt, std::nullopt, live}));
  ASSERT_TRUE(passed.ok()) << passed.status().message();
  EXPECT_EQ(passed->reason, policy::Reason::kReply);
  auto elsewhere = TransitionFromReply(keys, FromUnixSeconds(T), timing, ScriptReply({}), live);
  ASSERT_TRUE(elsewhere.ok()) << elsewhere.status().message();
  EXPECT_EQ(elsewhere->reason, policy::Reason::kReply);
  // A script that ignored a live reply and wrote the triplet disagrees with Decide.
  auto ignored = TransitionFromReply(
      keys, FromUnixSeconds(T), timing,
      ScriptReply({std::nullopt, std::nullopt, std::to_string(T) + "," + std::to_string(T),
                   std::nullopt, std::nullopt, std::nullopt, live}));
  EXPECT_EQ(ignored.status().code(), Status::Code::kCorruption);
}

TEST(RedisCheckTest, TheReplyRecordScriptIsCheckedAgainstRecordOutbound) {
  policy::GreylistTiming timing;
  RedisKeyLayout layout("gl:", RedisKeyLayout::Mode::kCluster);
  RedisCommand c =
      BuildRecordReplyCommand("c@r.example/b@l.example", FromUnixSeconds(T), timing, layout);
  const RedisCommand want{"EVALSHA",
                          RecordReplyScript().sha1,
                          "1",
                          "gl:r:{r.example}c@r.example/b@l.example",
                          std::to_string(T),
                          std::to_string(T - 35 * 86400),      // policy::Live's horizon
                          std::to_string(T + 35 * 86400 + 1),  // ExpiresAt of the record
                          std::to_string(policy::kMaxRecordField)};
  EXPECT_EQ(c, want);
  auto reply = [](std::optional<std::string> prior, std::string written) {
    RedisReply r;
    r.type = RedisReply::Type::kArray;
    r.elements.push_back(prior ? String(*prior) : RedisReply{});
    r.elements.push_back(String(std::move(written)));
    return r;
  };
  auto counted =
      ReplyRecordFromReply("k", FromUnixSeconds(T), timing,
                           reply("2," + std::to_string(T - 60), "3," + std::to_string(T)));
  ASSERT_TRUE(counted.ok()) << counted.status().message();
  EXPECT_EQ(*counted, (policy::ReplyRecord{3, FromUnixSeconds(T)}));
  EXPECT_EQ(ReplyRecordFromReply("k", FromUnixSeconds(T), timing,
                                 reply("2," + std::to_string(T - 60), "1," + std::to_string(T)))
                .status()
                .code(),
            Status::Code::kCorruption);
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
